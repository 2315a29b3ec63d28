/**
 * A packed micro-batch on the GPU (batch.ts gives the layout): the model's inputs (tokens,
 * positions, key mask), the loss's per-row inputs (targets, loss mask, weights, sampler
 * log-probs, advantages), the logits, their gradient and the loss kernel's per-row statistics.
 * Sized for the largest batch seen at the current width.
 */
import { createStorageBuffer, writeBuffer } from '../gpu/buffers';
import { LOSS_STATS } from '../kernels/train/loss';
import type { GraphBatch } from '../models/family';
import type { PackedBatch } from './batch';

export interface BatchBuffers {
  batch: number;
  width: number;
  tokens: GPUBuffer;
  positions: GPUBuffer;
  keyMask: GPUBuffer;
  targets: GPUBuffer;
  lossMask: GPUBuffer;
  weights: GPUBuffer;
  oldLogprobs: GPUBuffer;
  advantages: GPUBuffer;
  logits: GPUBuffer;
  dlogits: GPUBuffer;
  stats: GPUBuffer;
  all: GPUBuffer[];
}

/** Buffers for up to `batch` × `width` rows of a model with `vocab` logits per row. */
export function createBatchBuffers(device: GPUDevice, batch: number, width: number, vocab: number): BatchBuffers {
  const N = batch * width;
  const all: GPUBuffer[] = [];
  const f32 = (count: number, label: string) => {
    const b = createStorageBuffer(device, Math.max(1, count) * 4, label);
    all.push(b);
    return b;
  };
  return {
    batch, width,
    logits: f32(N * vocab, 'logits'), dlogits: f32(N * vocab, 'dlogits'), stats: f32(N * LOSS_STATS.length, 'loss stats'),
    tokens: f32(N, 'tokens'), positions: f32(N, 'positions'), keyMask: f32(N, 'key mask'), targets: f32(N, 'targets'),
    lossMask: f32(N, 'loss mask'), weights: f32(N, 'weights'), oldLogprobs: f32(N, 'old logprobs'), advantages: f32(N, 'advantages'),
    all,
  };
}

export function uploadBatch(device: GPUDevice, b: BatchBuffers, p: PackedBatch): void {
  writeBuffer(device, b.tokens, p.tokens);
  writeBuffer(device, b.positions, p.positions);
  writeBuffer(device, b.keyMask, p.keyMask);
  writeBuffer(device, b.targets, p.targets);
  writeBuffer(device, b.lossMask, Uint32Array.from(p.weights, (w) => (w !== 0 ? 1 : 0)));
  writeBuffer(device, b.weights, p.weights);
  writeBuffer(device, b.oldLogprobs, p.oldLogprobs);
  writeBuffer(device, b.advantages, p.advantages);
}

/** The family graph's view of the batch. */
export function graphBatch(b: BatchBuffers, p: PackedBatch): GraphBatch {
  return {
    batch: p.batch, width: p.width, rows: p.rows,
    tokens: b.tokens, positions: b.positions, keyMask: b.keyMask,
    tokenIds: p.tokens, positionIds: p.positions,
    logits: b.logits, dlogits: b.dlogits,
  };
}
