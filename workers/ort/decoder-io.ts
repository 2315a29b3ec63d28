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
export function emptyPastFeeds(shape: DecoderShape, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const dims = [batch, shape.kvHeads, 0, shape.headDim];
  for (let l = 0; l < shape.layers; l++) {
    feeds[pastKeyName(l)] = new ort.Tensor('float32', new Float32Array(0), dims);
    feeds[pastValueName(l)] = new ort.Tensor('float32', new Float32Array(0), dims);
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
