/**
 * GPU memory a model of any registered family needs for a batch, estimated before any session
 * exists, and checked against the adapter's limits: every tensor the runtime binds must fit one
 * storage binding (maxStorageBufferBindingSize) and one buffer (maxBufferSize). A model that
 * cannot fit gets a sentence saying which tensor, how large, and what to change — not a lost
 * device. The family gives its parameters, its KV cache's shape and its largest activations.
 */
import { numel, type FamilyConfig } from './family';
import { familyFor } from './registry';
import type { GpuLimitsSummary } from '../contract/adapter';
import { formatBytes } from '../contract/format';

export interface MemoryEstimate {
  weightsBytes: number;
  /** Keys and values of every layer for the whole batch at full length. */
  kvCacheBytes: number;
  /** Logits of every position of the batch (scoring keeps them all on the GPU). */
  logitsBytes: number;
  /** The largest intermediate of one layer (e.g. MLP activations or attention scores). */
  activationBytes: number;
  totalBytes: number;
  /** The largest single tensors, by name, for the limit check. */
  tensors: { name: string; bytes: number }[];
}

export function estimateMemory(config: FamilyConfig, batch: number, sequence: number): MemoryEstimate {
  const F = 4;
  const family = familyFor(config);
  const tensors = family.paramSpecs(config).map((s) => ({ name: s.name, bytes: numel(s.shape) * F }));
  const weightsBytes = tensors.reduce((a, t) => a + t.bytes, 0);
  const shape = family.decoderShape(config);
  const kvLayer = batch * shape.kvHeads * sequence * shape.headDim * F;
  const logitsBytes = batch * sequence * config.vocabSize * F;
  const activations = family.activationTensors(config, batch, sequence);
  tensors.push({ name: 'logits', bytes: logitsBytes }, { name: 'present key/value (one layer)', bytes: kvLayer }, ...activations);
  tensors.sort((a, b) => b.bytes - a.bytes);
  const activationBytes = Math.max(0, ...activations.map((t) => t.bytes));
  const kvCacheBytes = 2 * shape.layers * kvLayer;
  return { weightsBytes, kvCacheBytes, logitsBytes, activationBytes, totalBytes: weightsBytes + kvCacheBytes + logitsBytes + 3 * activationBytes, tensors };
}

export class ModelTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelTooLargeError';
  }
}

/** Throws ModelTooLargeError when a tensor cannot be bound on this device; returns the estimate otherwise. */
export function checkModelFits(config: FamilyConfig, batch: number, sequence: number, limits: Pick<GpuLimitsSummary, 'maxBufferSize' | 'maxStorageBufferBindingSize'>, what = 'the model'): MemoryEstimate {
  const estimate = estimateMemory(config, batch, sequence);
  const cap = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const over = estimate.tensors.filter((t) => t.bytes > cap);
  if (over.length) {
    const params = new Set(familyFor(config).paramSpecs(config).map((s) => s.name));
    const list = over.slice(0, 3).map((t) => `${t.name} needs ${formatBytes(t.bytes)}`).join(', ');
    const advice = over.some((t) => params.has(t.name))
      ? 'the model itself is too large for this GPU'
      : 'use a smaller batch or fewer tokens';
    throw new ModelTooLargeError(
      `${what} does not fit this GPU for a batch of ${batch} × ${sequence} tokens: ${list}, but the adapter binds at most ${formatBytes(cap)} per tensor; ${advice}.`,
    );
  }
  return estimate;
}
