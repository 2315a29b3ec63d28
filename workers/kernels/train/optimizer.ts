/**
 * The optimizer side of the training engine: gradient norms and global-norm clipping, AdamW with
 * decoupled weight decay, the learning-rate schedule, the GPU half of the numerics guard, and
 * LoRA adapters (merge into an effective weight; gradients of A and B from the effective
 * weight's gradient).
 *
 * Every parameter tensor is its own GPUBuffer, as are its gradient and its Adam moments m and v.
 * Element counts are always passed in (buffers are padded to 16 bytes, so buffer.size overstates
 * them). One training step records, into the caller's encoder:
 *
 *   for each tensor i:  encodeSumSquares({input: grad_i, count_i, norms, slot: i})
 *   once:               encodeClipScale({norms, count: tensors, clip, maxNorm})
 *   for each tensor i:  encodeAdamW({param, grad, m, v, count, weightDecay}, {clip, lr, step, …})
 *
 * and the guard reads `clip` (16 bytes: is the step applied?) and, when it is not, `norms`, to
 * name the tensors whose gradient is NaN/Inf (`nonFiniteTensors`, `nonFiniteMessage`).
 *
 * Clip buffer layout (16 bytes; `decodeClip`):
 *   word 0  scale      f32  factor applied to every gradient (1 when not clipping)
 *   word 1  norm       f32  global L2 norm of all gradients, before clipping (NaN/Inf when so)
 *   word 2  finite     u32  1: every gradient finite, the step is applied; 0: AdamW skips it
 *   word 3  nonFinite  u32  how many tensors have a NaN/Inf sum of squares
 */
import { createStorageBuffer, readBuffer } from '../../gpu/buffers';
import { GPU_OPTIMIZER_TUNING, optimizerTuning, type OptimizerTuning } from '../../gpu/tuning';
import { groups, launch } from '../../gpu/launch';
import { withGridPrelude, withTrainPrelude } from './prelude';
import { deviceScratch } from './scratch';
import sumSquaresKernel from './sum_squares.wgsl?raw';
import clipScaleKernel from './clip_scale.wgsl?raw';
import adamwKernel from './adamw.wgsl?raw';
import loraMergeKernel from './lora_merge.wgsl?raw';
import loraGradKernel from './lora_grad.wgsl?raw';

const sumSquaresWgsl = withTrainPrelude(sumSquaresKernel);
const clipScaleWgsl = withTrainPrelude(clipScaleKernel);
const adamwWgsl = withGridPrelude(adamwKernel);
/** lora_merge.wgsl for a frozen base W stored in f32, or in f16 (needs the device's shader-f16). */
const loraMergeWgsl = {
  f32: withGridPrelude(`alias Base = f32;\n${loraMergeKernel}`),
  f16: `enable f16;\n${withGridPrelude(`alias Base = f16;\n${loraMergeKernel}`)}`,
} as const;
const loraGradWgsl = withGridPrelude(loraGradKernel);

// ---------------------------------------------------------------------------------------------
// Hyper-parameters and schedule

export interface AdamWHyperparameters {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay for tensors that decay (see `weightDecayFor`). */
  weightDecay: number;
  /** Global L2 norm the gradients are clipped to; 0 (or less) disables clipping. */
  maxGradNorm: number;
}

export const DEFAULT_ADAMW: Readonly<AdamWHyperparameters> = Object.freeze({
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1.0,
});

/**
 * What a parameter tensor is, as the optimizer sees it: model families label every parameter
 * with one of these (workers/models/family.ts), and the role decides its weight decay.
 */
export type ParamRole = 'embedding' | 'norm-weight' | 'norm-bias' | 'linear-weight' | 'linear-bias';

/**
 * The weight decay a tensor gets: `weightDecay` for linear weights, 0 for biases, norm
 * parameters and embeddings (the usual convention; an embedding may also be a tied LM head).
 */
export function weightDecayFor(role: ParamRole, weightDecay: number): number {
  return role === 'linear-weight' ? weightDecay : 0;
}

export type LrScheduleKind = 'constant' | 'linear' | 'cosine';

export interface LrSchedule {
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warm-up from 0 to `lr`; 0 for none. */
  warmupSteps: number;
  /** Steps of the whole run (warm-up included); the decay reaches lr·minLrRatio there. */
  totalSteps: number;
  schedule: LrScheduleKind;
  /** Floor of the decay as a fraction of `lr` (linear and cosine). Default 0. */
  minLrRatio?: number;
}

/**
 * The learning rate of optimizer step `step`, counted from 0 (the first step is step 0).
 *   warm-up (step < warmupSteps):  lr·(step + 1)/warmupSteps — a line from 0 at step −1, reaching
 *                                  lr at the last warm-up step, so no step is wasted at lr 0;
 *   then, with p = (step − warmupSteps)/(totalSteps − warmupSteps) clamped to [0, 1]:
 *     constant  lr
 *     linear    lr·(min + (1 − min)·(1 − p))
 *     cosine    lr·(min + (1 − min)·(1 + cos πp)/2)
 * so the first step after warm-up runs at lr and the decay would reach lr·min at step
 * totalSteps (one past the last step); steps beyond stay at lr·min.
 */
export function learningRate(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 0) throw new OptimizerInputError('bad-parameter', `learning rate asked for step ${step}; steps count from 0`);
  if (!(s.lr >= 0) || !Number.isFinite(s.lr)) throw new OptimizerInputError('bad-parameter', `learning rate ${s.lr} must be a finite number ≥ 0`);
  const warmup = Math.max(0, Math.floor(s.warmupSteps));
  if (step < warmup) return (s.lr * (step + 1)) / warmup;
  if (s.schedule === 'constant') return s.lr;
  const min = s.minLrRatio ?? 0;
  if (!(min >= 0 && min <= 1)) throw new OptimizerInputError('bad-parameter', `minLrRatio ${min} must lie in [0, 1]`);
  const span = s.totalSteps - warmup;
  const p = span <= 0 ? 1 : Math.min(1, (step - warmup) / span);
  const shape = s.schedule === 'linear' ? 1 - p : 0.5 * (1 + Math.cos(Math.PI * p));
  return s.lr * (min + (1 - min) * shape);
}

// ---------------------------------------------------------------------------------------------
// Errors, tuning, small helpers

export class OptimizerInputError extends Error {
  constructor(
    readonly code: 'bad-shape' | 'bad-parameter' | 'buffer-too-small' | 'aliased-buffers',
    message: string,
  ) {
    super(message);
    this.name = 'OptimizerInputError';
  }
}

/** Each stage-1 invocation of sum_squares handles at least this many elements. */
const MIN_ELEMENTS_PER_INVOCATION = 4;
export const CLIP_BYTES = 16;

/**
 * The stage-1 partial sums of sum_squares. One per device is enough: each tensor's two stages
 * are recorded back to back, and the queue runs dispatches in order.
 */
function partialsScratch(device: GPUDevice, partials: number): GPUBuffer {
  return deviceScratch(device, 'sum_squares partials', Math.max(partials, GPU_OPTIMIZER_TUNING.maxPartials) * 4);
}

function checkCount(what: string, count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) throw new OptimizerInputError('bad-shape', `${what}: element count ${count} is not a u32`);
}

function checkSize(what: string, buffer: GPUBuffer, bytes: number): void {
  if (buffer.size < bytes) throw new OptimizerInputError('buffer-too-small', `${what}: buffer "${buffer.label}" holds ${buffer.size} bytes, needs ${bytes}`);
}

function checkDistinct(what: string, named: Record<string, GPUBuffer>): void {
  const seen = new Map<GPUBuffer, string>();
  for (const [name, buffer] of Object.entries(named)) {
    const other = seen.get(buffer);
    if (other) throw new OptimizerInputError('aliased-buffers', `${what}: ${other} and ${name} are the same buffer "${buffer.label}"`);
    seen.set(buffer, name);
  }
}

/** A zeroed `norms` buffer with one f32 slot per tensor. */
export function createNormsBuffer(device: GPUDevice, tensors: number, label = 'gradient norms'): GPUBuffer {
  return createStorageBuffer(device, Math.max(1, tensors) * 4, label);
}

/** A clip buffer (16 bytes, layout above), zeroed (finite = 0 until encodeClipScale writes it). */
export function createClipBuffer(device: GPUDevice, label = 'gradient clip'): GPUBuffer {
  return createStorageBuffer(device, CLIP_BYTES, label);
}

// ---------------------------------------------------------------------------------------------
// Gradient norms and clipping

export interface SumSquaresArgs {
  /** The tensor (a gradient), `count` f32 values. */
  input: GPUBuffer;
  count: number;
  /** f32 per tensor; slot `slot` receives Σ input². Must not be `input`. */
  norms: GPUBuffer;
  slot: number;
}

/**
 * Records Σ x² of one tensor into norms[slot]: one dispatch for tensors of up to
 * workgroupSize·4 elements, else two (partial sums, then their total). A NaN or ±Inf element
 * makes the slot NaN or +Inf; so does a sum beyond float32's range (a norm above ~1.8e19).
 */
export function encodeSumSquares(device: GPUDevice, encoder: GPUCommandEncoder, args: SumSquaresArgs, tuning = optimizerTuning(device)): void {
  const { input, count, norms, slot } = args;
  checkCount('sum of squares', count);
  if (!Number.isInteger(slot) || slot < 0) throw new OptimizerInputError('bad-parameter', `sum of squares: slot ${slot} is not an index`);
  checkSize('sum of squares input', input, count * 4);
  checkSize('sum of squares norms', norms, (slot + 1) * 4);
  checkDistinct('sum of squares', { input, norms });
  const wg = tuning.workgroupSize;
  const partials = Math.max(1, Math.min(tuning.maxPartials, groups(count, wg * MIN_ELEMENTS_PER_INVOCATION)));
  // One sum_squares stage: Σ x² (square) or Σ x over `n` values of `from`, into to[at].
  const stage = (label: string, square: boolean, from: GPUBuffer, to: GPUBuffer, n: number, at: number, workgroups: number) =>
    launch(device, encoder, {
      code: sumSquaresWgsl,
      label,
      constants: { WG: wg, SQUARE: square ? 1 : 0 },
      buffers: [from, to],
      uniforms: [n, at],
      workgroups: [workgroups],
    });
  if (partials === 1) {
    stage('sum_squares', true, input, norms, count, slot, 1);
    return;
  }
  const scratch = partialsScratch(device, partials);
  stage('sum_squares partials', true, input, scratch, count, 0, partials);
  stage('sum_squares total', false, scratch, norms, partials, slot, 1);
}

export interface ClipScaleArgs {
  /** Sums of squares norms[0..count), one per tensor (encodeSumSquares). */
  norms: GPUBuffer;
  count: number;
  /** 16-byte clip buffer (createClipBuffer), written whole. */
  clip: GPUBuffer;
  /** Clip the global norm to this; 0 or less: never clip (scale 1; the finite flag still holds). */
  maxNorm: number;
}

/**
 * Records the global norm √Σ norms, the clipping factor min(1, maxNorm/(norm + 1e-6)) and the
 * finite flag into `clip` (layout in the header).
 */
export function encodeClipScale(device: GPUDevice, encoder: GPUCommandEncoder, args: ClipScaleArgs, tuning = optimizerTuning(device)): void {
  const { norms, count, clip, maxNorm } = args;
  checkCount('clip scale', count);
  if (!Number.isFinite(maxNorm)) throw new OptimizerInputError('bad-parameter', `clip scale: maxNorm ${maxNorm} is not finite`);
  checkSize('clip scale norms', norms, count * 4);
  checkSize('clip scale clip', clip, CLIP_BYTES);
  checkDistinct('clip scale', { norms, clip });
  launch(device, encoder, {
    code: clipScaleWgsl,
    label: 'clip_scale',
    constants: { WG: tuning.workgroupSize },
    buffers: [norms, clip],
    uniforms: [count, { f32: Math.max(0, maxNorm) }],
    workgroups: [1],
  });
}

export interface ClipState {
  /** Factor applied to every gradient this step. */
  scale: number;
  /** Global gradient norm before clipping. */
  norm: number;
  /** False: some gradient was NaN/Inf (or the norm overflowed float32) and the step was skipped. */
  finite: boolean;
  /** Tensors whose sum of squares is NaN/Inf. */
  nonFinite: number;
}

export function decodeClip(bytes: ArrayBuffer): ClipState {
  const view = new DataView(bytes);
  return {
    scale: view.getFloat32(0, true),
    norm: view.getFloat32(4, true),
    finite: view.getUint32(8, true) !== 0,
    nonFinite: view.getUint32(12, true),
  };
}

export async function readClip(device: GPUDevice, clip: GPUBuffer): Promise<ClipState> {
  return decodeClip(await readBuffer(device, clip, CLIP_BYTES));
}

export interface NonFiniteTensor {
  index: number;
  name: string;
  /** What its sum of squares is: NaN (some element NaN), or Infinity (some element ±Inf, or Σx² overflows). */
  value: 'NaN' | 'Infinity';
}

/** The tensors whose read-back sum of squares (norms[i], tensor names[i]) is not finite. */
export function nonFiniteTensors(norms: ArrayLike<number>, names: readonly string[]): NonFiniteTensor[] {
  if (names.length > norms.length) throw new OptimizerInputError('bad-shape', `${names.length} tensor names but only ${norms.length} norms`);
  const found: NonFiniteTensor[] = [];
  for (let i = 0; i < names.length; i++) {
    const x = norms[i];
    if (Number.isNaN(x)) found.push({ index: i, name: names[i], value: 'NaN' });
    else if (!Number.isFinite(x)) found.push({ index: i, name: names[i], value: 'Infinity' });
  }
  return found;
}

/**
 * One sentence for the guard: "gradient of transformer.h.0.attn.c_attn.weight is NaN", several
 * joined with "; " (the first `limit`, then how many more).
 */
export function nonFiniteMessage(tensors: readonly NonFiniteTensor[], what = 'gradient', limit = 5): string {
  const parts = tensors.slice(0, limit).map((t) => `${what} of ${t.name} is ${t.value === 'NaN' ? 'NaN' : 'infinite'}`);
  if (tensors.length > limit) parts.push(`and ${tensors.length - limit} more tensor(s)`);
  return parts.join('; ');
}

// ---------------------------------------------------------------------------------------------
// AdamW

export interface AdamWTensor {
  param: GPUBuffer;
  grad: GPUBuffer;
  /** First and second moments, zero before the first step. */
  m: GPUBuffer;
  v: GPUBuffer;
  count: number;
  /** This tensor's decoupled weight decay (0 for biases, norms, embeddings: `weightDecayFor`). */
  weightDecay: number;
}

export interface AdamWStepOptions {
  /** The clip buffer written by encodeClipScale this step. */
  clip: GPUBuffer;
  /** This step's learning rate (`learningRate`). */
  lr: number;
  /** Steps applied so far including this one (1 on the first): the bias corrections' t. */
  step: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Also zero the gradient (also on a skipped step), for the next step's accumulation. */
  zeroGrad?: boolean;
}

/** The AdamW kernel's uniform words, computed in float64 (rounded to f32 only when packed). */
export function adamWUniforms(count: number, weightDecay: number, o: Pick<AdamWStepOptions, 'lr' | 'step' | 'beta1' | 'beta2' | 'eps'>) {
  if (!Number.isInteger(o.step) || o.step < 1) throw new OptimizerInputError('bad-parameter', `AdamW: step ${o.step} must be an integer ≥ 1 (steps applied, this one included)`);
  for (const [name, value] of [['beta1', o.beta1], ['beta2', o.beta2]] as const) {
    if (!(value >= 0 && value < 1)) throw new OptimizerInputError('bad-parameter', `AdamW: ${name} ${value} must lie in [0, 1)`);
  }
  for (const [name, value] of [['lr', o.lr], ['eps', o.eps], ['weightDecay', weightDecay]] as const) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new OptimizerInputError('bad-parameter', `AdamW: ${name} ${value} must be a finite number ≥ 0`);
  }
  const bc1 = 1 - Math.pow(o.beta1, o.step);
  const bc2 = 1 - Math.pow(o.beta2, o.step);
  return [
    count,
    { f32: o.lr },
    { f32: o.beta1 },
    { f32: 1 - o.beta1 },
    { f32: o.beta2 },
    { f32: 1 - o.beta2 },
    { f32: o.eps },
    { f32: weightDecay },
    { f32: 1 / bc1 },
    { f32: 1 / Math.sqrt(bc2) },
  ] as const;
}

/**
 * Records one AdamW step on one tensor (kernel header: adamw.wgsl). Skipped, leaving param, m
 * and v bit-identical, when the clip buffer's finite flag is 0.
 */
export function encodeAdamW(device: GPUDevice, encoder: GPUCommandEncoder, t: AdamWTensor, o: AdamWStepOptions, tuning = optimizerTuning(device)): void {
  checkCount('AdamW', t.count);
  const bytes = t.count * 4;
  checkSize('AdamW param', t.param, bytes);
  checkSize('AdamW grad', t.grad, bytes);
  checkSize('AdamW m', t.m, bytes);
  checkSize('AdamW v', t.v, bytes);
  checkSize('AdamW clip', o.clip, CLIP_BYTES);
  checkDistinct('AdamW', { param: t.param, grad: t.grad, m: t.m, v: t.v, clip: o.clip });
  const uniforms = adamWUniforms(t.count, t.weightDecay, o);
  const wg = tuning.workgroupSize;
  launch(device, encoder, {
    code: adamwWgsl,
    label: 'adamw',
    constants: { WG: wg, ZERO_GRAD: o.zeroGrad ? 1 : 0 },
    buffers: [t.param, t.grad, t.m, t.v, o.clip],
    uniforms,
    workgroups: [strideGroups(device, t.count, tuning)],
  });
}

// ---------------------------------------------------------------------------------------------
// LoRA

/** s = α / r, the factor of A·B in W_eff = W + s·A·B. */
export const loraScale = (alpha: number, rank: number): number => alpha / rank;

export interface LoraShape {
  /** W and W_eff are [inDim, outDim] (HF Conv1D layout), A [inDim, rank], B [rank, outDim]. */
  inDim: number;
  outDim: number;
  /** r ≥ 1 (LoRA ranks are small: 4..64). */
  rank: number;
  /** s = α / r (`loraScale`). */
  scale: number;
}

function checkLoraShape(what: string, s: LoraShape): void {
  for (const [name, value] of [['inDim', s.inDim], ['outDim', s.outDim]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptimizerInputError('bad-shape', `${what}: ${name} ${value} must be a positive integer`);
  }
  if (!Number.isInteger(s.rank) || s.rank < 1) throw new OptimizerInputError('bad-shape', `${what}: rank ${s.rank} must be a positive integer`);
  if (s.inDim * s.outDim > 0xffffffff || s.inDim * s.rank > 0xffffffff || s.rank * s.outDim > 0xffffffff) {
    throw new OptimizerInputError('bad-shape', `${what}: ${s.inDim}×${s.outDim} rank ${s.rank} exceeds u32 indexing`);
  }
  if (!Number.isFinite(s.scale)) throw new OptimizerInputError('bad-parameter', `${what}: scale ${s.scale} is not finite`);
}

/** Workgroups for a grid-stride kernel over `n` items: one item per invocation, up to the caps. */
function strideGroups(device: GPUDevice, n: number, tuning: OptimizerTuning): number {
  const cap = Math.min(tuning.maxWorkgroups, device.limits.maxComputeWorkgroupsPerDimension);
  return Math.max(1, Math.min(groups(n, tuning.workgroupSize), cap));
}

/** How a frozen base weight is stored: f32, or f16 (LoRA runs on devices with shader-f16). */
export type BaseDtype = 'f32' | 'f16';

export interface LoraMergeArgs extends LoraShape {
  /** Frozen base weight W [in, out], stored as `weightDtype`. */
  weight: GPUBuffer;
  /** Default 'f32'; 'f16' needs a device created with the shader-f16 feature. */
  weightDtype?: BaseDtype;
  a: GPUBuffer;
  b: GPUBuffer;
  /** W_eff [in, out]; a buffer of its own (not `weight`). */
  merged: GPUBuffer;
}

/** Records W_eff = W + s·A·B (lora_merge.wgsl), W read as f32 or f16, W_eff written as f32. */
export function encodeLoraMerge(device: GPUDevice, encoder: GPUCommandEncoder, args: LoraMergeArgs, tuning = optimizerTuning(device)): void {
  checkLoraShape('LoRA merge', args);
  const { inDim, outDim, rank } = args;
  const dtype = args.weightDtype ?? 'f32';
  if (dtype === 'f16' && !device.features.has('shader-f16')) {
    throw new OptimizerInputError('bad-parameter', 'LoRA merge: an f16 base needs a device created with the shader-f16 feature, and this one has none');
  }
  checkSize('LoRA merge W', args.weight, inDim * outDim * (dtype === 'f16' ? 2 : 4));
  checkSize('LoRA merge W_eff', args.merged, inDim * outDim * 4);
  checkSize('LoRA merge A', args.a, inDim * rank * 4);
  checkSize('LoRA merge B', args.b, rank * outDim * 4);
  checkDistinct('LoRA merge', { W: args.weight, A: args.a, B: args.b, W_eff: args.merged });
  const wg = tuning.workgroupSize;
  launch(device, encoder, {
    code: loraMergeWgsl[dtype],
    label: dtype === 'f16' ? 'lora_merge (f16 base)' : 'lora_merge',
    constants: { WG: wg },
    buffers: [args.weight, args.a, args.b, args.merged],
    uniforms: [inDim, outDim, rank, { f32: args.scale }],
    workgroups: [strideGroups(device, inDim * outDim, tuning)],
  });
}

export interface LoraGradArgs extends LoraShape {
  /** ∂L/∂W_eff [in, out], from the ordinary backward of the layer. */
  dW: GPUBuffer;
  a: GPUBuffer;
  b: GPUBuffer;
  /** ∂L/∂A [in, r] and ∂L/∂B [r, out]. */
  dA: GPUBuffer;
  dB: GPUBuffer;
  /** dA += …, dB += … (gradient accumulation) instead of =. */
  accumulate?: boolean;
}

/** Records dA (=|+=) s·dW·Bᵀ and dB (=|+=) s·Aᵀ·dW (lora_grad.wgsl, two dispatches). */
export function encodeLoraGrad(device: GPUDevice, encoder: GPUCommandEncoder, args: LoraGradArgs, tuning = optimizerTuning(device)): void {
  checkLoraShape('LoRA grad', args);
  const { inDim, outDim, rank } = args;
  checkSize('LoRA grad dW', args.dW, inDim * outDim * 4);
  checkSize('LoRA grad A', args.a, inDim * rank * 4);
  checkSize('LoRA grad B', args.b, rank * outDim * 4);
  checkSize('LoRA grad dA', args.dA, inDim * rank * 4);
  checkSize('LoRA grad dB', args.dB, rank * outDim * 4);
  checkDistinct('LoRA grad', { dW: args.dW, A: args.a, B: args.b, dA: args.dA, dB: args.dB });
  const wg = tuning.workgroupSize;
  const uniforms = [inDim, outDim, rank, { f32: args.scale }, args.accumulate ? 1 : 0] as const;
  launch(device, encoder, {
    code: loraGradWgsl,
    label: 'lora_grad dA',
    entryPoint: 'grad_a',
    constants: { WG: wg },
    buffers: [args.dW, args.b, args.dA],
    uniforms,
    workgroups: [strideGroups(device, inDim * rank, tuning)],
  });
  launch(device, encoder, {
    code: loraGradWgsl,
    label: 'lora_grad dB',
    entryPoint: 'grad_b',
    constants: { WG: wg },
    buffers: [args.dW, args.a, args.dB],
    uniforms,
    workgroups: [strideGroups(device, rank * outDim, tuning)],
  });
}
