/**
 * Running a GPT-2 decoder model.onnx on the lab's device: creating the ORT session with errors
 * that name the file (a corrupt model, or an ONNX model that is not a GPT-2 decoder of this
 * config), and building its feeds — token batches with their attention mask and position ids,
 * an empty KV cache, and the weights straight from the trainer's GPU buffers.
 */
import { headDim, type Gpt2Config } from './config';
import { gpt2ParamSpecs } from './params';
import { createSession, ort, type SessionOptions } from '../../ort/runtime';
import { gpt2DecoderDataInputs, gpt2DecoderOutputs } from '../../onnx/gpt2-decoder';

export class Gpt2ModelFileError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'Gpt2ModelFileError';
  }
}

export interface Gpt2DecoderSession {
  session: ort.InferenceSession;
  /** True when the weights are graph inputs (fed per run), false when they are in the file. */
  weightsAreInputs: boolean;
}

/**
 * Creates the session and checks its signature against the config: the data inputs and outputs
 * of a GPT-2 decoder with the config's head count, head size and vocabulary, and either every
 * weight as an input (with its shape) or none.
 */
export async function createGpt2DecoderSession(
  device: GPUDevice,
  config: Gpt2Config,
  model: Uint8Array,
  options: SessionOptions & { file?: string } = {},
): Promise<Gpt2DecoderSession> {
  const file = options.file ?? 'onnx/model.onnx';
  if (model.byteLength === 0) throw new Gpt2ModelFileError(file, 'is empty');
  let session: ort.InferenceSession;
  try {
    session = await createSession(device, model, options);
  } catch (e) {
    throw new Gpt2ModelFileError(file, `is not a loadable ONNX model (onnxruntime: ${e instanceof Error ? e.message : String(e)})`);
  }
  const problems = signatureProblems(config, session);
  if (problems.length) {
    await session.release();
    throw new Gpt2ModelFileError(file, `is not a GPT-2 decoder for this config.json (n_layer ${config.nLayer}): it ${problems.join('; ')}`);
  }
  return { session, weightsAreInputs: session.inputNames.includes(gpt2ParamSpecs(config)[0].name) };
}

type Expected = { type: 'int64' | 'float32'; dims: (number | null)[] }; // null: any size (symbolic)

/** What a GPT-2 decoder's signature must be for this config, as short sentences (none when it fits). */
function signatureProblems(config: Gpt2Config, session: ort.InferenceSession): string[] {
  const H = config.nHead;
  const D = headDim(config);
  const expected = new Map<string, Expected>();
  for (const name of gpt2DecoderDataInputs(config)) {
    expected.set(name, name.startsWith('past_key_values.') ? { type: 'float32', dims: [null, H, null, D] } : { type: 'int64', dims: [null, null] });
  }
  for (const name of gpt2DecoderOutputs(config)) {
    expected.set(name, name === 'logits' ? { type: 'float32', dims: [null, null, config.vocabSize] } : { type: 'float32', dims: [null, H, null, D] });
  }
  const specs = gpt2ParamSpecs(config);
  const weightInputs = specs.filter((s) => session.inputNames.includes(s.name));
  for (const spec of weightInputs) expected.set(spec.name, { type: 'float32', dims: spec.shape });

  const problems: string[] = [];
  const missing = (names: string[]) => (names.length > 4 ? `${names.slice(0, 4).join(', ')}…` : names.join(', '));
  const missingInputs = gpt2DecoderDataInputs(config).filter((n) => !session.inputNames.includes(n));
  const missingOutputs = gpt2DecoderOutputs(config).filter((n) => !session.outputNames.includes(n));
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
export function gpt2WeightFeedsFromGpu(config: Gpt2Config, buffers: ReadonlyMap<string, GPUBuffer>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of gpt2ParamSpecs(config)) {
    const buffer = buffers.get(spec.name);
    if (!buffer) throw new Error(`GPT-2 weight feeds: no GPU buffer for ${spec.name}`);
    feeds[spec.name] = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: spec.shape });
  }
  return feeds;
}

/** past_key_values.* with zero past positions, for the first run of a sequence. */
export function emptyPastFeeds(config: Gpt2Config, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const dims = [batch, config.nHead, 0, headDim(config)];
  for (const name of gpt2DecoderDataInputs(config).filter((n) => n.startsWith('past_key_values.'))) {
    feeds[name] = new ort.Tensor('float32', new Float32Array(0), dims);
  }
  return feeds;
}

/** present.{i}.* of one run as past_key_values.{i}.* of the next (no copies: same tensors). */
export function presentAsPast(config: Gpt2Config, outputs: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let l = 0; l < config.nLayer; l++) {
    feeds[`past_key_values.${l}.key`] = outputs[`present.${l}.key`];
    feeds[`past_key_values.${l}.value`] = outputs[`present.${l}.value`];
  }
  return feeds;
}

export function int64Tensor(rows: readonly (readonly number[])[]): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== width)) throw new Error('int64Tensor: rows of unequal length');
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat().map((v) => BigInt(v))), [rows.length, width]);
}

/**
 * position_ids from an attention mask over past+new positions, as HF computes them for padded
 * batches: a real token's position is the number of real tokens before it in its row (so left
 * padding does not shift positions); padding gets 1. Returns the last `seqLength` columns.
 */
export function positionIdsFromMask(mask: readonly (readonly number[])[], seqLength: number): number[][] {
  return mask.map((row) => {
    let real = 0;
    const positions = row.map((m) => (m ? real++ : 1));
    return positions.slice(row.length - seqLength);
  });
}
