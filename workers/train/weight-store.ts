/**
 * The student's weights on the GPU, for any model family: every parameter in its own buffer
 * (the buffers the sampler's decoder reads in place), and the tensors the optimizer updates —
 * every parameter (full fine-tuning) or LoRA's factors (the parameters frozen). It is what the
 * family's training graph reads weights from and writes gradients to (GraphWeights).
 */
import { createStorageBuffer, readFloat32, writeBuffer } from '../gpu/buffers';
import { weightDecayFor } from '../kernels/train/optimizer';
import { numel, type GraphWeights, type ModelParams, type ParamSpec } from '../models/family';
import { LoraAdapters, type LoraOptions } from './lora';
import { TrainerError } from './trainer-error';
import { createTrainTensor, destroyTrainTensor, type TrainTensor } from './train-tensor';

/** A trainable tensor's values and AdamW moments, as read for a checkpoint. */
export interface TensorState {
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

export class WeightStore implements GraphWeights {
  private readonly base = new Map<string, GPUBuffer>();
  /** The tensors the optimizer updates, in order. */
  readonly tensors: TrainTensor[] = [];
  private readonly byName = new Map<string, TrainTensor>();
  readonly lora?: LoraAdapters;

  constructor(
    private readonly device: GPUDevice,
    readonly specs: readonly ParamSpec[],
    params: ModelParams,
    options: { lora?: LoraOptions; seed: number; weightDecay: number },
  ) {
    for (const spec of specs) {
      const data = params.get(spec.name);
      if (!data) throw new TrainerError(`the parameter ${spec.name} is missing`);
      if (data.length !== numel(spec.shape)) throw new TrainerError(`${spec.name} has ${data.length} values, expected ${numel(spec.shape)} for shape [${spec.shape.join(', ')}]`);
      this.base.set(spec.name, createStorageBuffer(device, data, spec.name));
    }
    if (options.lora) {
      this.lora = new LoraAdapters(device, specs, options.lora, options.seed);
      this.lora.tensors.forEach((t) => this.add(t));
    } else {
      for (const spec of specs) this.add(createTrainTensor(device, spec.name, spec.shape, this.base.get(spec.name)!, weightDecayFor(spec.role, options.weightDecay)));
    }
  }

  private add(t: TrainTensor): void {
    this.tensors.push(t);
    this.byName.set(t.name, t);
  }

  /** Names of the tensors the optimizer updates, in order (model parameters or LoRA factors). */
  get trainableNames(): string[] {
    return this.tensors.map((t) => t.name);
  }

  get trainableParameters(): number {
    return this.tensors.reduce((a, t) => a + t.count, 0);
  }

  /** The weight the model computes with: W_eff for LoRA-adapted matrices, else the parameter. */
  weight(name: string): GPUBuffer {
    const buffer = this.lora?.merged(name) ?? this.base.get(name);
    if (!buffer) throw new TrainerError(`no weight named ${name}`);
    return buffer;
  }

  /**
   * Where the gradient of parameter `name` goes this micro-batch, and whether to add to it:
   * the tensor's own gradient (accumulating after the first micro-batch), LoRA's scratch dW_eff
   * (always overwritten, then turned into dA, dB), or nowhere (frozen).
   */
  gradient(name: string, first: boolean): { buffer: GPUBuffer; accumulate: boolean } | undefined {
    const own = this.byName.get(name);
    if (own) return { buffer: own.grad, accumulate: !first };
    if (this.lora?.has(name)) return { buffer: this.lora.scratch(), accumulate: false };
    return undefined;
  }

  afterWeightGradient(encoder: GPUCommandEncoder, name: string, first: boolean): void {
    this.lora?.encodeBackward(encoder, name, first);
  }

  /** Re-merges LoRA's effective weights (recorded into `encoder`); nothing without LoRA. */
  encodeMerge(encoder: GPUCommandEncoder): void {
    this.lora?.encodeMerge(encoder, (name) => this.base.get(name)!);
  }

  /** Re-merges now (its own submit). */
  merge(): void {
    this.lora?.merge((name) => this.base.get(name)!);
  }

  /** Every effective weight, by name in the specs' order (the sampler's feeds). */
  effectiveBuffers(): Map<string, GPUBuffer> {
    return new Map(this.specs.map((s) => [s.name, this.weight(s.name)]));
  }

  /** The effective weights, copied to the CPU (export, tests). */
  async readWeights(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const spec of this.specs) out.set(spec.name, await readFloat32(this.device, this.weight(spec.name), numel(spec.shape)));
    return out;
  }

  /** The base (not LoRA-merged) parameters, copied to the CPU. */
  async readBase(): Promise<Map<string, Float32Array>> {
    const base = new Map<string, Float32Array>();
    for (const spec of this.specs) base.set(spec.name, await readFloat32(this.device, this.base.get(spec.name)!, numel(spec.shape)));
    return base;
  }

  /** Each trainable tensor's values, moments and shape. */
  async readTrainable(): Promise<Map<string, TensorState & { shape: number[] }>> {
    const trainable = new Map<string, TensorState & { shape: number[] }>();
    for (const t of this.tensors) {
      trainable.set(t.name, {
        shape: t.shape,
        param: await readFloat32(this.device, t.param, t.count),
        m: await readFloat32(this.device, t.m, t.count),
        v: await readFloat32(this.device, t.v, t.count),
      });
    }
    return trainable;
  }

  /** Writes trainable tensors and moments read by readTrainable (same shapes), then re-merges LoRA. */
  writeTrainable(trainable: ReadonlyMap<string, TensorState>): void {
    for (const t of this.tensors) {
      const s = trainable.get(t.name);
      if (!s) throw new TrainerError(`the checkpoint has no tensor ${t.name}`);
      for (const [what, data, buffer] of [['weights', s.param, t.param], ['AdamW m', s.m, t.m], ['AdamW v', s.v, t.v]] as const) {
        if (data.length !== t.count) throw new TrainerError(`the checkpoint's ${what} of ${t.name} have ${data.length} values, expected ${t.count}`);
        writeBuffer(this.device, buffer, data);
      }
    }
  }

  destroy(): void {
    for (const b of this.base.values()) b.destroy();
    for (const t of this.tensors) destroyTrainTensor(t);
    this.lora?.destroy();
  }
}
