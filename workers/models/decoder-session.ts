/**
 * Running a family's decoder model.onnx on the lab's device: creating the ORT session with
 * errors that name the file (a corrupt model, or an ONNX model that is not a decoder of this
 * config; for a model of no known family, the KV layout read from the graph), and building its feeds — token batches with their attention mask and position ids,
 * an empty KV cache, and the weights straight from the trainer's GPU buffers. The family comes
 * from the registry by the config's model_type.
 */
import { createSession, float16Refusal, ort, type SessionOptions } from '../ort/runtime';
import * as io from '../ort/decoder-io';
import type { FamilyConfig } from './family';
import { familyFor } from './registry';

export { int64Tensor, positionIdsFromMask } from '../ort/decoder-io';

export class ModelFileError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'ModelFileError';
  }
}

export interface DecoderSession {
  session: ort.InferenceSession;
  /** True when the weights are graph inputs (fed per run), false when they are in the file. */
  weightsAreInputs: boolean;
  /** The device the session runs on (our kernels may read its GPU outputs in place). */
  device?: GPUDevice;
  /** The type of its key-values and logits: float16 for onnx-community's fp16/q4f16 graphs (the runner converts the logits). */
  kvType?: io.KvType;
  /** Its KV cache's layout: the family's (decoderShapeOf), or read from the graph for a model of no known family. */
  shape: io.DecoderShape;
  /** The vocabulary its logits declare when fixed (a graph of no known family); the family's config says it otherwise. */
  graphVocabSize?: number;
}

/** The KV cache's shape of this config's decoder. */
export function decoderShapeOf(config: FamilyConfig): io.DecoderShape {
  return familyFor(config).decoderShape(config);
}

/** The ORT session of a decoder file, or a ModelFileError naming `file` when it is empty or not a loadable ONNX model. */
async function openDecoderFile(device: GPUDevice, model: Uint8Array, file: string, options: SessionOptions): Promise<ort.InferenceSession> {
  if (model.byteLength === 0) throw new ModelFileError(file, 'is empty');
  try {
    return await createSession(device, model, options);
  } catch (e) {
    throw new ModelFileError(file, `is not a loadable ONNX model (onnxruntime: ${e instanceof Error ? e.message : String(e)})`);
  }
}

/**
 * Creates the session and checks its signature against the config: the data inputs and outputs
 * of a decoder with the config's KV heads, head size and vocabulary, and either every weight as
 * an input (with its shape) or none.
 */
export async function createDecoderSession(
  device: GPUDevice,
  config: FamilyConfig,
  model: Uint8Array,
  options: SessionOptions & { file?: string } = {},
): Promise<DecoderSession> {
  const file = options.file ?? 'onnx/model.onnx';
  const session = await openDecoderFile(device, model, file, options);
  const family = familyFor(config);
  const kvType = io.pastTypeOf(session);
  const problems = signatureProblems(config, session, kvType);
  if (problems.length) {
    await session.release();
    throw new ModelFileError(file, `is not a ${family.name} decoder for this config.json (${family.describeSize(config)}): it ${problems.join('; ')}`);
  }
  const f16 = kvType === 'float16' ? float16Refusal(device) : null;
  if (f16) {
    await session.release();
    throw new ModelFileError(file, f16);
  }
  return { session, weightsAreInputs: session.inputNames.includes(family.paramSpecs(config)[0].name), device, kvType, shape: family.decoderShape(config) };
}

/**
 * A decoder graph of no family the lab knows (config.json's model_type is none of the registry's):
 * its KV layout read from the graph (io.decoderShapeFromGraph), checked for the inputs and outputs
 * the sampler feeds and reads (input_ids, attention_mask, logits; position_ids and
 * use_cache_branch when it takes them), every output left on the GPU.
 */
export async function createGraphDecoderSession(device: GPUDevice, model: Uint8Array, options: SessionOptions & { file?: string } = {}): Promise<DecoderSession> {
  const file = options.file ?? 'onnx/model.onnx';
  const session = await openDecoderFile(device, model, file, { outputsOnGpu: true, ...options });
  const fail = async (problem: string): Promise<never> => {
    await session.release();
    throw new ModelFileError(file, problem);
  };
  for (const name of ['input_ids', 'attention_mask']) {
    if (!session.inputNames.includes(name)) await fail(`has no ${name} input (its inputs: ${session.inputNames.slice(0, 6).join(', ')}…): the sampler feeds input_ids and attention_mask`);
  }
  const logits = session.outputMetadata.find((m) => m.name === 'logits');
  if (!logits) await fail(`has no logits output (its outputs: ${session.outputNames.slice(0, 6).join(', ')}…)`);
  const shape = io.decoderShapeFromGraph(session);
  if (typeof shape === 'string') return fail(shape);
  const kvType = io.pastTypeOf(session);
  const f16 = kvType === 'float16' || (logits!.isTensor && logits!.type === 'float16') ? float16Refusal(device) : null;
  if (f16) await fail(f16);
  const vocab = logits!.isTensor ? logits!.shape[2] : undefined;
  return { session, weightsAreInputs: false, device, kvType, shape, ...(typeof vocab === 'number' && vocab > 0 ? { graphVocabSize: vocab } : {}) };
}

type Expected = { type: 'int64' | 'float32' | 'float16'; dims: (number | null)[] }; // null: any size (symbolic)

/**
 * What a decoder's signature must be for this config, as short sentences (none when it fits).
 * Key-values and logits are float32, or all float16 (`kvType`, onnx-community's fp16 graphs).
 */
function signatureProblems(config: FamilyConfig, session: ort.InferenceSession, kvType: io.KvType = 'float32'): string[] {
  const family = familyFor(config);
  const shape = family.decoderShape(config);
  const H = shape.kvHeads;
  const D = shape.headDim;
  const expected = new Map<string, Expected>();
  for (const name of io.decoderDataInputs(shape)) {
    expected.set(name, name.startsWith('past_key_values.') ? { type: kvType, dims: [null, H, null, D] } : { type: 'int64', dims: [null, null] });
  }
  for (const name of io.decoderOutputs(shape)) {
    expected.set(name, name === 'logits' ? { type: kvType, dims: [null, null, config.vocabSize] } : { type: kvType, dims: [null, H, null, D] });
  }
  const specs = family.paramSpecs(config);
  const weightInputs = specs.filter((s) => session.inputNames.includes(s.name));
  for (const spec of weightInputs) expected.set(spec.name, { type: 'float32', dims: spec.shape });

  const problems: string[] = [];
  const missing = (names: string[]) => (names.length > 4 ? `${names.slice(0, 4).join(', ')}…` : names.join(', '));
  const missingInputs = io.decoderDataInputs(shape).filter((n) => !session.inputNames.includes(n));
  const missingOutputs = io.decoderOutputs(shape).filter((n) => !session.outputNames.includes(n));
  if (missingInputs.length) problems.push(`lacks input(s) ${missing(missingInputs)}`);
  if (missingOutputs.length) problems.push(`lacks output(s) ${missing(missingOutputs)}`);
  if (weightInputs.length !== 0 && weightInputs.length !== specs.length) {
    problems.push(`takes ${weightInputs.length} of the ${specs.length} weights as inputs (all or none)`);
  }
  const metadata = [...session.inputMetadata, ...session.outputMetadata];
  for (const [name, want] of expected) {
    const meta = metadata.find((m) => m.name === name);
    if (!meta || !meta.isTensor) continue; // missing ones are reported above
    const dimsFit = meta.shape.length === want.dims.length && want.dims.every((d, i) => d === null || typeof meta.shape[i] !== 'number' || meta.shape[i] === d);
    if (meta.type !== want.type || !dimsFit) {
      const show = (dims: readonly (number | string | null)[]) => `[${dims.map((d) => (d === null ? '?' : d)).join(', ')}]`;
      problems.push(`declares ${name} as ${meta.type} ${show(meta.shape)}, the config implies ${want.type} ${show(want.dims)}`);
    }
  }
  return problems;
}

/** The weights as feeds, read in place from GPU buffers (each padded to 16 bytes; see gpu/buffers). */
export function weightFeedsFromGpu(config: FamilyConfig, buffers: ReadonlyMap<string, GPUBuffer>): Record<string, ort.Tensor> {
  return familyFor(config).weightFeeds(config, buffers);
}

/** past_key_values.* with zero past positions, for the first run of a sequence. */
export function emptyPastFeeds(config: FamilyConfig, batch: number): Record<string, ort.Tensor> {
  return io.emptyPastFeeds(decoderShapeOf(config), batch);
}

/** present.{i}.* of one run as past_key_values.{i}.* of the next (no copies: same tensors). */
export function presentAsPast(config: FamilyConfig, outputs: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  return io.presentAsPast(decoderShapeOf(config), outputs);
}
