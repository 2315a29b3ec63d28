/**
 * The decoder input/output layout transformers.js uses, for any decoder-only family:
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
 *            position_ids [batch, seq] int64,
 *            past_key_values.{i}.key|value [batch, kv_heads, past, head_dim] float32
 *   outputs  logits [batch, seq, vocab] float32,
 *            present.{i}.key|value [batch, kv_heads, past+seq, head_dim] float32
 *
 * Names, feeds (token batches with their attention mask and position ids, an empty KV cache,
 * one run's present as the next run's past) and nothing about any one architecture.
 */
import { ort } from './runtime';

/** The KV cache of a decoder: per layer, keys and values of [batch, kvHeads, positions, headDim]. */
export interface DecoderShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export const pastKeyName = (layer: number): string => `past_key_values.${layer}.key`;
export const pastValueName = (layer: number): string => `past_key_values.${layer}.value`;
export const presentKeyName = (layer: number): string => `present.${layer}.key`;
export const presentValueName = (layer: number): string => `present.${layer}.value`;

/** The decoder's inputs that are not weights, in graph order. */
export function decoderDataInputs(shape: DecoderShape): string[] {
  const names = ['input_ids', 'attention_mask', 'position_ids'];
  for (let l = 0; l < shape.layers; l++) names.push(pastKeyName(l), pastValueName(l));
  return names;
}

export function decoderOutputs(shape: DecoderShape): string[] {
  const names = ['logits'];
  for (let l = 0; l < shape.layers; l++) names.push(presentKeyName(l), presentValueName(l));
  return names;
}

/** past_key_values.* with zero past positions, for the first run of a sequence. */
export function emptyPastFeeds(shape: DecoderShape, batch: number, type: KvType = 'float32'): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const dims = [batch, shape.kvHeads, 0, shape.headDim];
  for (let l = 0; l < shape.layers; l++) {
    feeds[pastKeyName(l)] = emptyPast(type, dims);
    feeds[pastValueName(l)] = emptyPast(type, dims);
  }
  return feeds;
}

/** present.{i}.* of one run as past_key_values.{i}.* of the next (no copies: same tensors). */
export function presentAsPast(shape: DecoderShape, outputs: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let l = 0; l < shape.layers; l++) {
    feeds[pastKeyName(l)] = outputs[presentKeyName(l)];
    feeds[pastValueName(l)] = outputs[presentValueName(l)];
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

/**
 * onnx-community exports beyond the float32 layout above, handled where the lab runs a decoder:
 *   - float16 graphs (model_fp16.onnx, model_q4f16.onnx): past/present key-values and logits in
 *     float16; the empty past is made in the graph's own type, the logits converted to float32;
 *   - merged decoders (optimum): a bool [1] input `use_cache_branch`, false on a run with no past
 *     positions, true after.
 */
export const USE_CACHE_BRANCH = 'use_cache_branch';

type DecoderGraph = Pick<ort.InferenceSession, 'inputNames' | 'inputMetadata'>;
export type KvType = 'float32' | 'float16';

/**
 * The KV cache's layout read from a decoder graph itself, for a model of no family the lab knows:
 * the layers are the past_key_values.{i}.key|value input pairs from 0 up, each declared
 * [batch, kv_heads, past, head_dim] with kv_heads and head_dim fixed (as optimum and onnx-community
 * export them), the same in every layer, with present.{i}.key|value outputs beside them. Returns
 * the shape, or a sentence (for "<file> …") saying what does not fit.
 */
export function decoderShapeFromGraph(session: DecoderGraph & Pick<ort.InferenceSession, 'outputNames'>): DecoderShape | string {
  let layers = 0;
  while (session.inputNames.includes(pastKeyName(layers))) layers++;
  if (layers === 0) return `has no ${pastKeyName(0)} input: sampling needs a decoder with its own KV cache (past_key_values.{i}.key|value in, present.{i}.key|value out), as onnx-community exports it`;
  let found: { kvHeads: number; headDim: number; from: string } | null = null;
  for (let l = 0; l < layers; l++) {
    for (const name of [pastKeyName(l), pastValueName(l)]) {
      const meta = session.inputMetadata.find((m) => m.name === name);
      if (!meta) return `has ${pastKeyName(l)} but no ${pastValueName(l)} input`;
      const dims = meta.isTensor ? meta.shape : [];
      if (dims.length !== 4 || typeof dims[1] !== 'number' || typeof dims[3] !== 'number') {
        return `declares ${name} as [${dims.join(', ')}]: the lab reads the KV cache's layout from fixed heads and head_dim ([batch, heads, past, head_dim])`;
      }
      if (found && (dims[1] !== found.kvHeads || dims[3] !== found.headDim)) {
        return `declares ${name} with ${dims[1]} heads of ${dims[3]}, where ${found.from} has ${found.kvHeads} of ${found.headDim}: the lab needs one KV layout for every layer`;
      }
      found ??= { kvHeads: dims[1], headDim: dims[3], from: name };
    }
    for (const name of [presentKeyName(l), presentValueName(l)]) {
      if (!session.outputNames.includes(name)) return `takes ${pastKeyName(l)} but gives no ${name} output: the sampler feeds each step's present key-values back as the next step's past`;
    }
  }
  return { layers, kvHeads: found!.kvHeads, headDim: found!.headDim };
}

/** The element type of the graph's past key-values (float32 when it declares none or another). */
export function pastTypeOf(session: DecoderGraph): KvType {
  const meta = session.inputMetadata.find((m) => m.name.startsWith('past_key_values.'));
  return meta && meta.isTensor && meta.type === 'float16' ? 'float16' : 'float32';
}

export function emptyPast(type: KvType, dims: readonly number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims);
}

export function useCacheBranchTensor(on: boolean): ort.Tensor {
  return new ort.Tensor('bool', new Uint8Array([on ? 1 : 0]), [1]);
}

/**
 * The feeds of the float32, unmerged layout made fit for `session`: an empty past in the graph's
 * own type, `use_cache_branch` (true when the past has positions) where the graph takes it, and
 * no feed the graph does not take.
 */
export function fitDecoderFeeds(session: DecoderGraph, feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const pastType = pastTypeOf(session);
  const merged = session.inputNames.includes(USE_CACHE_BRANCH);
  // A graph of no known family may compute positions itself (no position_ids input): what it does not take is not fed.
  const unused = Object.keys(feeds).filter((name) => !session.inputNames.includes(name));
  if (pastType === 'float32' && !merged && unused.length === 0) return feeds;
  const out: Record<string, ort.Tensor> = { ...feeds };
  for (const name of unused) delete out[name];
  let pastPositions = 0;
  for (const [name, tensor] of Object.entries(feeds)) {
    if (!name.startsWith('past_key_values.')) continue;
    pastPositions = Math.max(pastPositions, tensor.dims[2] ?? 0);
    if (tensor.type !== pastType && tensor.size === 0) out[name] = emptyPast(pastType, tensor.dims);
  }
  if (merged && !(USE_CACHE_BRANCH in feeds)) out[USE_CACHE_BRANCH] = useCacheBranchTensor(pastPositions > 0);
  return out;
}

/** IEEE half-precision bits to float32 values. */
export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    out[i] = exponent === 0
      ? sign * mantissa * 2 ** -24
      : exponent === 31
        ? (mantissa ? NaN : sign * Infinity)
        : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

/** float16 logits (on the GPU or not) as a float32 tensor on the CPU; float32 ones as they are. The float16 tensor is released. */
export async function logitsAsFloat32(logits: ort.Tensor): Promise<ort.Tensor> {
  if (logits.type !== 'float16') return logits;
  const data = logits.location === 'cpu' ? logits.data : await logits.getData(true);
  const values = data instanceof Uint16Array ? float16BitsToFloat32(data) : Float32Array.from(data as ArrayLike<number>);
  if (logits.location !== 'cpu') logits.dispose();
  return new ort.Tensor('float32', values, logits.dims);
}
