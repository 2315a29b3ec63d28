/**
 * The student's weights on the GPU, for any model family: every parameter in its own buffer
 * (the buffers the sampler's decoder reads in place), and the tensors the optimizer updates —
 * every parameter (full fine-tuning) or LoRA's factors (the parameters frozen). It is what the
 * family's training graph reads weights from and writes gradients to (GraphWeights).
 *
 * In LoRA runs on a device with shader-f16, the frozen base of every adapted weight is stored in
 * f16 (half the bytes; rounded to nearest, ties to even, on upload): the graph never reads it,
 * only the merge does, which writes the f32 W_eff the graph computes with. Every other base
 * weight (embeddings, norms, biases, weights LoRA does not adapt) stays f32, since the graph
 * reads it directly. Reading the base back (checkpoints) widens f16 to f32 exactly, so a
 * checkpoint holds the rounded base the run trained on.
 */
import { createStorageBuffer, readBuffer, readFloat32, writeBuffer } from '../gpu/buffers';
import { weightDecayFor, type BaseDtype } from '../kernels/train/optimizer';
import { numel, type GraphWeights, type ModelParams, type ParamSpec } from '../models/family';
import { fromHalfBits, HalfRangeError, toHalfBits } from './half';
import { LoraAdapters, type LoraOptions } from './lora';
import { TrainerError } from './trainer-error';
import { createTrainTensor, destroyTrainTensor, type TrainTensor } from './train-tensor';

/** A trainable tensor's values and AdamW moments, as read for a checkpoint. */
export interface TensorState {
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** One base weight's GPU buffer: how it is stored and its size (tests, memory accounting). */
export interface BaseStorage {
  name: string;
  dtype: BaseDtype;
  bytes: number;
}

export class WeightStore implements GraphWeights {
  private readonly base = new Map<string, GPUBuffer>();
  /** Base weights stored in f16 (LoRA-adapted weights' frozen bases, with shader-f16). */
  private readonly halfBase = new Set<string>();
  /** Whether this store keeps LoRA's frozen bases in f16. */
  readonly f16Base: boolean;
  /** The tensors the optimizer updates, in order. */
  readonly tensors: TrainTensor[] = [];
  private readonly byName = new Map<string, TrainTensor>();
  readonly lora?: LoraAdapters;

  constructor(
    private readonly device: GPUDevice,
    readonly specs: readonly ParamSpec[],
    params: ModelParams,
    options: { lora?: LoraOptions; seed: number; weightDecay: number; decayEveryTensor?: boolean },
  ) {
    this.f16Base = Boolean(options.lora) && options.lora?.f16Base !== false && device.features.has('shader-f16');
    for (const spec of specs) {
      const data = params.get(spec.name);
      if (!data) throw new TrainerError(`the parameter ${spec.name} is missing`);
      if (data.length !== numel(spec.shape)) throw new TrainerError(`${spec.name} has ${data.length} values, expected ${numel(spec.shape)} for shape [${spec.shape.join(', ')}]`);
      if (this.f16Base && spec.loraTarget) {
        this.base.set(spec.name, createStorageBuffer(device, halfOrRefuse(data, spec.name), `${spec.name} (f16 base)`));
        this.halfBase.add(spec.name);
      } else {
        this.base.set(spec.name, createStorageBuffer(device, data, spec.name));
      }
    }
    if (options.lora) {
      this.lora = new LoraAdapters(device, specs, options.lora, options.seed);
      this.lora.tensors.forEach((t) => this.add(t));
    } else {
      for (const spec of specs) this.add(createTrainTensor(device, spec.name, spec.shape, this.base.get(spec.name)!, weightDecayFor(spec.role, options.weightDecay)));
    }
    // torch.optim.AdamW given every parameter decays all of them (what a comparison with it needs).
    if (options.decayEveryTensor) for (const t of this.tensors) t.weightDecay = options.weightDecay;
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

  /** A frozen base weight and how it is stored, for the LoRA merge. */
  private baseOf = (name: string): { buffer: GPUBuffer; dtype: BaseDtype } => ({ buffer: this.base.get(name)!, dtype: this.halfBase.has(name) ? 'f16' : 'f32' });

  /** Re-merges LoRA's effective weights (recorded into `encoder`); nothing without LoRA. */
  encodeMerge(encoder: GPUCommandEncoder): void {
    this.lora?.encodeMerge(encoder, this.baseOf);
  }

  /** Re-merges now (its own submit). */
  merge(): void {
    this.lora?.merge(this.baseOf);
  }

  /** Every base weight's buffer: stored as f32 or f16, and its size in bytes (padded to 16). */
  baseStorage(): BaseStorage[] {
    return this.specs.map((s) => ({ name: s.name, dtype: this.halfBase.has(s.name) ? 'f16' : 'f32', bytes: this.base.get(s.name)!.size }));
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

  /** The base (not LoRA-merged) parameters, copied to the CPU as float32 (an f16 base widened exactly). */
  async readBase(): Promise<Map<string, Float32Array>> {
    const base = new Map<string, Float32Array>();
    for (const spec of this.specs) {
      const buffer = this.base.get(spec.name)!;
      const n = numel(spec.shape);
      base.set(spec.name, this.halfBase.has(spec.name) ? fromHalfBits(new Uint16Array(await readBuffer(this.device, buffer, n * 2))) : await readFloat32(this.device, buffer, n));
    }
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

/** A weight's values as f16 bits, or a TrainerError saying which value cannot be and what to do. */
function halfOrRefuse(data: Float32Array, name: string): Uint16Array {
  try {
    return toHalfBits(data, name);
  } catch (e) {
    if (e instanceof HalfRangeError) throw new TrainerError(`${e.message}; train with an f32 base instead (LoRA option f16Base: false)`);
    throw e;
  }
}
