/**
 * LoRA: rank-r adapters on the linear weights the model family marks as LoRA targets. The base
 * weights stay frozen; the model computes with W_eff = W + (α/r)·A·B, merged into its own buffer
 * after every change of A or B. The backward writes dW_eff into one scratch buffer, and A and B
 * get their gradients from it (dA = s·dW·Bᵀ, dB = s·Aᵀ·dW). The frozen W may be stored in f16
 * (weight-store.ts decides); the merge reads it as such and writes an f32 W_eff.
 */
import { createStorageBuffer } from '../gpu/buffers';
import { encodeLoraGrad, encodeLoraMerge, loraScale, type BaseDtype } from '../kernels/train/optimizer';
import type { ParamSpec } from '../models/family';
import { seededRandom } from '../random/seeded-normal';
import { TrainerError } from './trainer-error';
import { createTrainTensor, type TrainTensor } from './train-tensor';

export interface LoraOptions {
  rank: number;
  /** W_eff = W + (alpha/rank)·A·B. Default: alpha = rank (scale 1). */
  alpha?: number;
  /**
   * Store each adapted weight's frozen base in f16 (half the bytes) where the device has
   * shader-f16; f32 otherwise. Default true; false keeps f32 everywhere. The run then trains on
   * the f16-rounded base (workers/train/README.md).
   */
  f16Base?: boolean;
}

interface LoraAdapter {
  weight: string;
  inDim: number;
  outDim: number;
  a: TrainTensor;
  b: TrainTensor;
  merged: GPUBuffer;
}

export class LoraAdapters {
  private readonly adapters = new Map<string, LoraAdapter>();
  private gradScratch?: GPUBuffer;
  /** The trainable factors, A then B of each adapted weight, in the specs' order. */
  readonly tensors: TrainTensor[] = [];

  /** Adapters on every LoRA target of `specs`: A ~ N(0, 1/in) (seeded), B = 0, so W_eff = W at the start. */
  constructor(
    private readonly device: GPUDevice,
    specs: readonly ParamSpec[],
    private readonly options: LoraOptions,
    seed: number,
  ) {
    if (!Number.isInteger(options.rank) || options.rank < 1) throw new TrainerError(`LoRA rank ${options.rank} must be a positive integer`);
    const rank = options.rank;
    const rng = seededRandom(seed).normal;
    for (const spec of specs.filter((s) => s.loraTarget)) {
      const [inDim, outDim] = spec.shape;
      // A ~ N(0, 1/in) (kaiming-like), B = 0: W_eff = W at the start.
      const a = new Float32Array(inDim * rank).map(() => rng() / Math.sqrt(inDim));
      const adapter: LoraAdapter = {
        weight: spec.name, inDim, outDim,
        a: createTrainTensor(device, `${spec.name}.lora_A`, [inDim, rank], a, 0),
        b: createTrainTensor(device, `${spec.name}.lora_B`, [rank, outDim], new Float32Array(rank * outDim), 0),
        merged: createStorageBuffer(device, inDim * outDim * 4, `${spec.name} (merged)`),
      };
      this.tensors.push(adapter.a, adapter.b);
      this.adapters.set(spec.name, adapter);
    }
  }

  /** W_eff of an adapted weight, or undefined. */
  merged(name: string): GPUBuffer | undefined {
    return this.adapters.get(name)?.merged;
  }

  has(name: string): boolean {
    return this.adapters.has(name);
  }

  private get scale(): number {
    return loraScale(this.options.alpha ?? this.options.rank, this.options.rank);
  }

  /** Records W_eff = W + s·A·B for every adapter; `base` gives each frozen W and how it is stored. */
  encodeMerge(encoder: GPUCommandEncoder, base: (name: string) => { buffer: GPUBuffer; dtype: BaseDtype }): void {
    const rank = this.options.rank;
    for (const a of this.adapters.values()) {
      const w = base(a.weight);
      encodeLoraMerge(this.device, encoder, { inDim: a.inDim, outDim: a.outDim, rank, scale: this.scale, weight: w.buffer, weightDtype: w.dtype, a: a.a.param, b: a.b.param, merged: a.merged });
    }
  }

  /** Merges now (its own submit). */
  merge(base: (name: string) => { buffer: GPUBuffer; dtype: BaseDtype }): void {
    const encoder = this.device.createCommandEncoder({ label: 'LoRA merge' });
    this.encodeMerge(encoder, base);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Where the backward writes dW_eff of any adapted weight (overwritten each time). */
  scratch(): GPUBuffer {
    if (!this.gradScratch) {
      const largest = Math.max(...[...this.adapters.values()].map((a) => a.inDim * a.outDim));
      this.gradScratch = createStorageBuffer(this.device, largest * 4, 'LoRA dW_eff');
    }
    return this.gradScratch;
  }

  /** After dW_eff of adapted weight `name` was written into the scratch: dA, dB (= or += after the first micro-batch). */
  encodeBackward(encoder: GPUCommandEncoder, name: string, first: boolean): void {
    const adapter = this.adapters.get(name);
    if (!adapter) return;
    const rank = this.options.rank;
    encodeLoraGrad(this.device, encoder, { inDim: adapter.inDim, outDim: adapter.outDim, rank, scale: this.scale, dW: this.scratch(), a: adapter.a.param, b: adapter.b.param, dA: adapter.a.grad, dB: adapter.b.grad, accumulate: !first });
  }

  /** Frees the merged weights and the scratch (the factors are the weight store's tensors). */
  destroy(): void {
    for (const a of this.adapters.values()) a.merged.destroy();
    this.gradScratch?.destroy();
  }
}
