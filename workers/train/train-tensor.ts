/**
 * One tensor the optimizer updates — a model parameter, or a LoRA factor — with its gradient,
 * its AdamW moments and the copies the numerics guard restores, each its own GPU buffer.
 */
import { createStorageBuffer } from '../gpu/buffers';
import { numel } from '../models/family';

export interface TrainTensor {
  name: string;
  shape: number[];
  count: number;
  param: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  weightDecay: number;
  /** Copies taken before each update, restored when the update produced a non-finite weight. */
  backup: { param: GPUBuffer; m: GPUBuffer; v: GPUBuffer };
}

/** A tensor over `param` (an existing buffer) or over a new buffer holding `param`'s values. */
export function createTrainTensor(device: GPUDevice, name: string, shape: number[], param: GPUBuffer | Float32Array, weightDecay: number): TrainTensor {
  const count = numel(shape);
  const bytes = count * 4;
  return {
    name, shape, count, weightDecay,
    param: param instanceof Float32Array ? createStorageBuffer(device, param, name) : param,
    grad: createStorageBuffer(device, bytes, `${name} grad`),
    m: createStorageBuffer(device, bytes, `${name} adam m`),
    v: createStorageBuffer(device, bytes, `${name} adam v`),
    backup: {
      param: createStorageBuffer(device, bytes, `${name} backup`),
      m: createStorageBuffer(device, bytes, `${name} adam m backup`),
      v: createStorageBuffer(device, bytes, `${name} adam v backup`),
    },
  };
}

/** Frees every buffer of the tensor (its parameter too: the weight store frees base weights once). */
export function destroyTrainTensor(t: TrainTensor): void {
  [t.param, t.grad, t.m, t.v, t.backup.param, t.backup.m, t.backup.v].forEach((b) => b.destroy());
}
