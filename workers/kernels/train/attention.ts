/**
 * Causal multi-head self-attention of the training engine, forward and backward, with a key mask
 * (1 = real token, 0 = padding; left and right padding both work). GPT-2's layout throughout:
 * qkv [B·T, 3E] is c_attn's output (q | k | v per row, head h at columns h·D..(h+1)·D of each),
 * ctx [B·T, E] goes into c_proj. The forward saves the softmax probabilities for the backward.
 *
 *   encodeAttentionForward   qkv, keyMask        → ctx, probs [B, H, T, T]
 *   encodeAttentionBackward  dctx, probs, qkv    → dqkv (overwritten), via a scratch dscores
 *
 * Both record into the caller's encoder (see gpu/launch.ts); nothing is submitted here.
 * Float64 references: test/reference/attention.ts.
 *
 * Two implementations of the same contract (`AttentionPath`):
 *   'fused'  attention_forward.wgsl / attention_backward.wgsl: one workgroup per query (or key)
 *            row of one head, workgroup reductions. The default on GPUs until pickAttentionPath
 *            has timed both there (the trainer does when it is created).
 *   'matmul' the batched matrix products of matmul.ts (the register kernel, the fast one on CPU
 *            adapters) between small permutation and row kernels (attention_heads.wgsl,
 *            attention_rows.wgsl), no workgroup barriers anywhere. The default on CPU adapters:
 *            on SwiftShader (2 cores), 4 × 64 tokens, 4 heads of 32, the forward took ~10 ms
 *            against ~160 ms for 'fused', the backward ~12 ms against ~170 ms (SwiftShader pays a
 *            thread switch per invocation at every barrier, and 'fused' has ~15 per row).
 *            Per sequence b and head h, with q, k, v, dO the head's [T, D] slices:
 *              forward   split qkv → q, k, v (padding rows read as 0); S = q·kᵀ/√D into probs;
 *                        softmax rows in place (causal + key mask); ctx_h = P·v; merge → ctx
 *              backward  split qkv, dctx → q, k, v, dO; dv = Pᵀ·dO; dP = dO·vᵀ into the scratch;
 *                        dS = P ⊙ (dP − Σ_j P·dP) in place; dq = dS·k/√D; dk = dSᵀ·q/√D;
 *                        merge → dqkv
 *            It needs per-head copies (`AttentionWork`, attentionWorkBytes) besides the
 *            backward's scratch. Its products cover the whole T×T square, the zeros above the
 *            diagonal included (a causal-aware product could skip up to half of that work).
 */
import { createStorageBuffer } from '../../gpu/buffers';
import { attentionTuning, matmulTuning, type MatmulTuning } from '../../gpu/tuning';
import { groups, launch } from '../../gpu/launch';
import { withGridPrelude, withTrainPrelude } from './prelude';
import { encodeMatmul, type MatmulShape } from './matmul';
import { deviceScratch } from './scratch';
import forwardKernel from './attention_forward.wgsl?raw';
import backwardKernel from './attention_backward.wgsl?raw';
import attentionCommon from './attention_common.wgsl?raw';
import headsKernel from './attention_heads.wgsl?raw';
import rowsKernel from './attention_rows.wgsl?raw';

const forwardWgsl = withTrainPrelude(`${attentionCommon}\n${forwardKernel}`);
const backwardWgsl = withTrainPrelude(`${attentionCommon}\n${backwardKernel}`);
const headsWgsl = withGridPrelude(headsKernel);
const rowsWgsl = withGridPrelude(rowsKernel);

export interface AttentionDims {
  batch: number;
  /** T, positions per sequence (≤ MAX_ATTENTION_SEQ). */
  seq: number;
  heads: number;
  /** D, per head (≤ MAX_ATTENTION_HEAD_DIM); E = heads·headDim. */
  headDim: number;
}

/** Which implementation runs (see the top of this file); both give the same results within f32 rounding. */
export type AttentionPath = 'fused' | 'matmul';

export interface AttentionOptions {
  /** The fused kernels' invocations per workgroup (rounded down to a power of two ≤ 256); default 64 on CPU adapters, 256 on GPUs. */
  workgroupSize?: number;
  /** Default: attentionPath(device). */
  path?: AttentionPath;
}

const chosenPath = new WeakMap<GPUDevice, AttentionPath>();
const pathPick = new WeakMap<GPUDevice, Promise<AttentionPath>>();

/**
 * The implementation used on `device` unless `options.path` says otherwise: the picked or forced
 * one (pickAttentionPath, setAttentionPath), else 'matmul' on CPU adapters and 'fused' on GPUs.
 */
export function attentionPath(device: GPUDevice, options: AttentionOptions = {}): AttentionPath {
  return options.path ?? chosenPath.get(device) ?? attentionTuning(device).defaultPath;
}

/** Forces the path used on `device` (and what pickAttentionPath answers from now on). */
export function setAttentionPath(device: GPUDevice, path: AttentionPath): void {
  chosenPath.set(device, path);
  pathPick.set(device, Promise.resolve(path));
}

/**
 * The matmul path's per-head matrices, each [B·H, T, D] f32 (attentionWorkBytes; see
 * createAttentionWork), shared by the forward and the backward (e.g. one set per trainer for all
 * layers). Seven distinct buffers, because the matrix products bind whole buffers and a dispatch
 * may not write a buffer it also reads.
 */
export interface AttentionWork {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  /** dO in the backward; the per-head ctx in the forward. */
  o: GPUBuffer;
  dq: GPUBuffer;
  dk: GPUBuffer;
  dv: GPUBuffer;
}

const WORK_NAMES = ['q', 'k', 'v', 'o', 'dq', 'dk', 'dv'] as const;

/** The WGSL kernels' workgroup arrays hold at most this many scores (MAX_T) and head dims (MAX_D). */
export const MAX_ATTENTION_SEQ = 1024;
export const MAX_ATTENTION_HEAD_DIM = 256;

/**
 * The kernels' override constants: WG, and the capacities of their workgroup arrays in two
 * buckets each (T ≤ 256 or ≤ 1024, D ≤ 64 or ≤ 256), so that every batch shape of a model runs
 * one pipeline (SwiftShader compiles one in ~0.5 s, the 1024-score variant in ~1 s).
 */
function attentionConstants(device: GPUDevice, dims: AttentionDims, options: AttentionOptions): Record<string, number> {
  return { WG: attentionWorkgroupSize(device, options), MAX_T: dims.seq <= 256 ? 256 : MAX_ATTENTION_SEQ, MAX_D: dims.headDim <= 64 ? 64 : MAX_ATTENTION_HEAD_DIM };
}

export interface AttentionForwardBuffers {
  /** [B·T, 3E] f32 (read). */
  qkv: GPUBuffer;
  /** [B·T] u32: 1 = real token, 0 = padding (read). */
  keyMask: GPUBuffer;
  /** [B·T, E] f32 (written; rows of masked queries are 0). */
  ctx: GPUBuffer;
  /** [B, H, T, T] f32 (written): P[b, h, i, j], 0 for j > i, masked keys and masked queries. */
  probs: GPUBuffer;
  /** The matmul path's per-head matrices; absent: a set kept per device, grown as needed. Unused by 'fused'. */
  work?: AttentionWork;
}

export interface AttentionBackwardBuffers {
  /** [B·T, E] f32: the gradient of ctx (read). */
  dctx: GPUBuffer;
  /** [B, H, T, T] f32 as written by the forward (read). */
  probs: GPUBuffer;
  /** [B·T, 3E] f32, the forward's input (read). */
  qkv: GPUBuffer;
  /** [B·T, 3E] f32 (overwritten); must be none of the inputs. */
  dqkv: GPUBuffer;
  /**
   * [B, H, T, T] f32 scratch (attentionScratchBytes), e.g. one per trainer shared by all layers.
   * Absent: a buffer kept per device, grown as needed.
   */
  scratch?: GPUBuffer;
  /**
   * [B·T] u32, the forward's key mask (read by the matmul path only): rows of qkv and dctx at
   * padding positions are then read as 0, so that nothing stored there (even a non-finite value)
   * can reach dqkv, as on the fused path. Without it the matmul path multiplies those rows by
   * exact zeros, which keeps finite values out but not NaN or ∞.
   */
  keyMask?: GPUBuffer;
  /** The matmul path's per-head matrices; absent: a set kept per device, grown as needed. Unused by 'fused'. */
  work?: AttentionWork;
}

/** Bytes of each of ctx, probs, … for `dims` (what callers allocate with createStorageBuffer). */
export function attentionBufferBytes(dims: AttentionDims): { qkv: number; keyMask: number; ctx: number; probs: number; dqkv: number; dctx: number } {
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  const E = H * D;
  return { qkv: B * T * 3 * E * 4, keyMask: B * T * 4, ctx: B * T * E * 4, probs: B * H * T * T * 4, dqkv: B * T * 3 * E * 4, dctx: B * T * E * 4 };
}

/** Bytes of the backward's scratch (dscores, the layout of probs). */
export function attentionScratchBytes(dims: AttentionDims): number {
  return attentionBufferBytes(dims).probs;
}

/** Bytes of each buffer of an AttentionWork: B·T·E f32. */
export function attentionWorkBytes(dims: AttentionDims): number {
  return attentionBufferBytes(dims).ctx;
}

/** A new AttentionWork for `dims` (the caller destroys its buffers). */
export function createAttentionWork(device: GPUDevice, dims: AttentionDims, label = 'attention'): AttentionWork {
  const bytes = Math.max(16, attentionWorkBytes(dims));
  return Object.fromEntries(WORK_NAMES.map((name) => [name, createStorageBuffer(device, bytes, `${label} ${name} per head`)])) as unknown as AttentionWork;
}

function checkDims(dims: AttentionDims, what: string): void {
  for (const key of ['batch', 'seq', 'heads', 'headDim'] as const) {
    const v = dims[key];
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${key} = ${v} must be a positive integer`);
  }
  if (dims.seq > MAX_ATTENTION_SEQ) throw new Error(`${what}: seq = ${dims.seq} exceeds the kernel's ${MAX_ATTENTION_SEQ}`);
  if (dims.headDim > MAX_ATTENTION_HEAD_DIM) throw new Error(`${what}: headDim = ${dims.headDim} exceeds the kernel's ${MAX_ATTENTION_HEAD_DIM}`);
}

function checkSize(buffer: GPUBuffer, bytes: number, name: string, what: string): void {
  if (buffer.size < bytes) throw new Error(`${what}: ${name} holds ${buffer.size} bytes, needs ${bytes}`);
}

const largestPowerOfTwoAtMost = (n: number): number => 2 ** Math.floor(Math.log2(Math.max(1, n)));

/**
 * A power of two: the device default (64 on CPU adapters, 256 on GPUs) or the option, within the
 * device's limits. Deliberately independent of T and D: one pipeline per device serves every
 * batch shape (a new one costs seconds to compile on SwiftShader).
 */
export function attentionWorkgroupSize(device: GPUDevice, options: AttentionOptions = {}): number {
  const limit = Math.min(256, device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX);
  return largestPowerOfTwoAtMost(Math.min(options.workgroupSize ?? attentionTuning(device).workgroupSize, limit));
}

function uniforms(dims: AttentionDims) {
  return [dims.batch, dims.seq, dims.heads, dims.headDim, { f32: 1 / Math.sqrt(dims.headDim) }] as const;
}

/**
 * ms per forward + backward of `path` on `dims` (random operands, every key real): one warm-up
 * (pipeline compilation), then `repeats` of them recorded into one encoder, one submit, timed
 * until the queue is done.
 */
export async function measureAttentionMs(device: GPUDevice, dims: AttentionDims, path: AttentionPath, repeats = 3): Promise<number> {
  const bytes = attentionBufferBytes(dims);
  let seed = 1;
  const random = (n: number) => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
  const qkv = createStorageBuffer(device, random(bytes.qkv / 4), 'attention bench qkv');
  const dctx = createStorageBuffer(device, random(bytes.dctx / 4), 'attention bench dctx');
  const keyMask = createStorageBuffer(device, new Uint32Array(bytes.keyMask / 4).fill(1), 'attention bench mask');
  const ctx = createStorageBuffer(device, bytes.ctx, 'attention bench ctx');
  const probs = createStorageBuffer(device, bytes.probs, 'attention bench probs');
  const dqkv = createStorageBuffer(device, bytes.dqkv, 'attention bench dqkv');
  const scratch = createStorageBuffer(device, attentionScratchBytes(dims), 'attention bench scratch');
  const work = path === 'matmul' ? createAttentionWork(device, dims, 'attention bench') : undefined;
  try {
    const run = async (times: number) => {
      const encoder = device.createCommandEncoder({ label: 'attention bench' });
      for (let i = 0; i < times; i++) {
        encodeAttentionForward(device, encoder, { qkv, keyMask, ctx, probs, work }, dims, { path });
        encodeAttentionBackward(device, encoder, { dctx, probs, qkv, dqkv, scratch, keyMask, work }, dims, { path });
      }
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    };
    await run(1);
    const start = performance.now();
    await run(Math.max(1, repeats));
    return (performance.now() - start) / Math.max(1, repeats);
  } finally {
    for (const b of [qkv, dctx, keyMask, ctx, probs, dqkv, scratch, ...Object.values(work ?? {})]) b.destroy();
  }
}

/**
 * Keeps the faster path as `device`'s default (cached per device; a second call answers from the
 * cache). GPUs: both timed (measureAttentionMs) on a GPT-2-small-like shape, 4 × 256 tokens, 12
 * heads of 64. CPU adapters: 'matmul' without measuring (it measured ~15× faster on SwiftShader:
 * forward ~10 ms against ~160, backward ~12 against ~170 on 4 × 64 tokens, 4 heads of 32), unless
 * `measure` (then on `dims`, default 2 × 32 tokens, 2 heads of 16).
 */
export function pickAttentionPath(device: GPUDevice, options: { measure?: boolean; dims?: AttentionDims } = {}): Promise<AttentionPath> {
  const cached = pathPick.get(device);
  if (cached) return cached;
  const pending = (async (): Promise<AttentionPath> => {
    const tuning = attentionTuning(device);
    let picked: AttentionPath = tuning.defaultPath;
    if (tuning.measure || options.measure) {
      const dims = options.dims ?? tuning.measureDims;
      const fused = await measureAttentionMs(device, dims, 'fused', tuning.measureRepeats);
      const matmul = await measureAttentionMs(device, dims, 'matmul', tuning.measureRepeats);
      picked = matmul <= fused ? 'matmul' : 'fused';
    }
    // A path forced meanwhile (setAttentionPath) wins over the measurement.
    if (!chosenPath.has(device)) chosenPath.set(device, picked);
    return chosenPath.get(device)!;
  })();
  pathPick.set(device, pending);
  pending.catch(() => {
    if (pathPick.get(device) === pending) pathPick.delete(device);
  });
  return pending;
}

export function encodeAttentionForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  buffers: AttentionForwardBuffers,
  dims: AttentionDims,
  options: AttentionOptions = {},
): void {
  const what = 'attention forward';
  checkDims(dims, what);
  const bytes = attentionBufferBytes(dims);
  checkSize(buffers.qkv, bytes.qkv, 'qkv', what);
  checkSize(buffers.keyMask, bytes.keyMask, 'keyMask', what);
  checkSize(buffers.ctx, bytes.ctx, 'ctx', what);
  checkSize(buffers.probs, bytes.probs, 'probs', what);
  if (attentionPath(device, options) === 'matmul') {
    matmulForward(device, encoder, buffers, dims, what);
    return;
  }
  launch(device, encoder, {
    code: forwardWgsl,
    label: 'attention_forward',
    constants: attentionConstants(device, dims, options),
    buffers: [buffers.qkv, buffers.keyMask, buffers.ctx, buffers.probs],
    uniforms: uniforms(dims),
    workgroups: [dims.seq, dims.heads, dims.batch],
  });
}

export function encodeAttentionBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  buffers: AttentionBackwardBuffers,
  dims: AttentionDims,
  options: AttentionOptions = {},
): void {
  const what = 'attention backward';
  checkDims(dims, what);
  const bytes = attentionBufferBytes(dims);
  checkSize(buffers.dctx, bytes.dctx, 'dctx', what);
  checkSize(buffers.probs, bytes.probs, 'probs', what);
  checkSize(buffers.qkv, bytes.qkv, 'qkv', what);
  checkSize(buffers.dqkv, bytes.dqkv, 'dqkv', what);
  if (buffers.keyMask) checkSize(buffers.keyMask, bytes.keyMask, 'keyMask', what);
  const scratch = buffers.scratch ?? deviceScratch(device, 'attention dscores scratch', bytes.probs);
  checkSize(scratch, bytes.probs, 'scratch', what);
  for (const [name, b] of [['dctx', buffers.dctx], ['probs', buffers.probs], ['qkv', buffers.qkv], ['scratch', scratch]] as const) {
    if (b === buffers.dqkv) throw new Error(`${what}: dqkv must not be ${name}`);
  }
  if (attentionPath(device, options) === 'matmul') {
    matmulBackward(device, encoder, { ...buffers, scratch }, dims, what);
    return;
  }
  const common = {
    code: backwardWgsl,
    constants: attentionConstants(device, dims, options),
    buffers: [buffers.dctx, buffers.probs, buffers.qkv, buffers.dqkv, scratch],
    uniforms: uniforms(dims),
    workgroups: [dims.seq, dims.heads, dims.batch] as [number, number, number],
  };
  launch(device, encoder, { ...common, label: 'attention_backward queries', entryPoint: 'queries' });
  launch(device, encoder, { ...common, label: 'attention_backward keys', entryPoint: 'keys' });
}

// ---------------------------------------------------------------------------------------------
// The matmul path

/** The caller's AttentionWork (checked) or the per-device set. */
function workBuffers(device: GPUDevice, work: AttentionWork | undefined, dims: AttentionDims, what: string, others: Record<string, GPUBuffer>): AttentionWork {
  const bytes = attentionWorkBytes(dims);
  if (!work) return Object.fromEntries(WORK_NAMES.map((name) => [name, deviceScratch(device, `attention ${name} per head`, bytes)])) as unknown as AttentionWork;
  const seen = new Map<GPUBuffer, string>(Object.entries(others).map(([name, b]) => [b, name]));
  for (const name of WORK_NAMES) {
    const b = work[name];
    checkSize(b, bytes, `work.${name}`, what);
    const clash = seen.get(b);
    if (clash) throw new Error(`${what}: work.${name} must not be ${clash}`);
    seen.set(b, `work.${name}`);
  }
  return work;
}

/** A 2-D grid of `total` workgroups (x within the adapter's per-dimension limit). */
function grid(device: GPUDevice, total: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (total <= max) return [total, 1];
  const y = Math.ceil(total / max);
  return [Math.ceil(total / y), y];
}

/** Workgroup size of the permutation and row kernels. */
function rowWorkgroup(device: GPUDevice): number {
  return Math.min(64, device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX);
}

/**
 * The register kernel's CPU tuning covers 64 columns per workgroup row; products only D wide
 * (D ≤ 32) would leave part of each invocation's 8 columns idle, so their workgroups are made
 * narrower and taller (same invocation count).
 */
function tuningFor(device: GPUDevice, n: number): MatmulTuning {
  const base = matmulTuning(device);
  const { wgX, wgY } = base.register;
  let x = wgX;
  while (x > 1 && 8 * (x / 2) >= n) x /= 2;
  return x === wgX ? base : { ...base, register: { wgX: x, wgY: (wgX * wgY) / x } };
}

/** C = alpha·op(A)·op(B) over the B·H heads, one [rows, cols] matrix per head in each buffer. */
function headMatmul(device: GPUDevice, encoder: GPUCommandEncoder, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, shape: MatmulShape): void {
  encodeMatmul(device, encoder, { a, b, c }, shape, undefined, tuningFor(device, shape.n));
}

function headsLaunch(device: GPUDevice, encoder: GPUCommandEncoder, entry: 'split3' | 'split1' | 'merge3' | 'merge1', bufs: GPUBuffer[], dims: AttentionDims, mask?: GPUBuffer): void {
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  const count = B * T * H * D; // elements of one section (each invocation moves one of every section)
  const wg = rowWorkgroup(device);
  const split = entry.startsWith('split');
  launch(device, encoder, {
    code: headsWgsl,
    label: `attention_heads ${entry}`,
    entryPoint: entry,
    constants: split ? { WG: wg, HAS_MASK: mask ? 1 : 0 } : { WG: wg },
    // split: src, mask (the src as a placeholder without one), destinations; merge: sources, dst.
    buffers: split ? [bufs[0], mask ?? bufs[0], ...bufs.slice(1)] : bufs,
    uniforms: [T, H, D, count],
    workgroups: grid(device, groups(count, wg)),
  });
}

function rowsLaunch(device: GPUDevice, encoder: GPUCommandEncoder, entry: 'softmax' | 'backward', a: GPUBuffer, b: GPUBuffer, dims: AttentionDims): void {
  const wg = rowWorkgroup(device);
  launch(device, encoder, {
    code: rowsWgsl,
    label: `attention_rows ${entry}`,
    entryPoint: entry,
    constants: { WG: wg },
    buffers: [a, b],
    uniforms: [dims.batch, dims.seq, dims.heads],
    workgroups: grid(device, groups(dims.batch * dims.heads * dims.seq, wg)),
  });
}

/** The permutation kernels index 3·B·T·E elements, the row kernels B·H·T·T, in u32. */
function checkIndexRange(dims: AttentionDims, what: string): void {
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  if (3 * B * T * H * D >= 2 ** 32 || B * H * T * T >= 2 ** 32) throw new Error(`${what}: ${B}×${T}×${H}×${D} exceeds the kernels' u32 indices`);
}

function matmulForward(device: GPUDevice, encoder: GPUCommandEncoder, buffers: AttentionForwardBuffers, dims: AttentionDims, what: string): void {
  checkIndexRange(dims, what);
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  const { qkv, keyMask, ctx, probs } = buffers;
  const w = workBuffers(device, buffers.work, dims, what, { qkv, keyMask, ctx, probs });
  const batch = B * H;
  headsLaunch(device, encoder, 'split3', [qkv, w.q, w.k, w.v], dims, keyMask);
  // S = q·kᵀ/√D straight into probs ([B, H, T, T] is the heads' [T, T] matrices back to back),
  // then the softmax in place.
  headMatmul(device, encoder, w.q, w.k, probs, { m: T, n: T, k: D, transB: true, alpha: 1 / Math.sqrt(D), batch });
  rowsLaunch(device, encoder, 'softmax', probs, keyMask, dims);
  // ctx_h = P·v, then back to rows.
  headMatmul(device, encoder, probs, w.v, w.o, { m: T, n: D, k: T, batch });
  headsLaunch(device, encoder, 'merge1', [w.o, ctx], dims);
}

function matmulBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  buffers: AttentionBackwardBuffers & { scratch: GPUBuffer },
  dims: AttentionDims,
  what: string,
): void {
  checkIndexRange(dims, what);
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  const { dctx, probs, qkv, dqkv, scratch, keyMask } = buffers;
  const inputs: Record<string, GPUBuffer> = { dctx, probs, qkv, dqkv, scratch };
  if (keyMask) inputs.keyMask = keyMask;
  const w = workBuffers(device, buffers.work, dims, what, inputs);
  const batch = B * H;
  const scale = 1 / Math.sqrt(D);
  headsLaunch(device, encoder, 'split3', [qkv, w.q, w.k, w.v], dims, keyMask);
  headsLaunch(device, encoder, 'split1', [dctx, w.o], dims, keyMask);
  // dv = Pᵀ·dO; dP = dO·vᵀ into the scratch, dS = P ⊙ (dP − δ) in place.
  headMatmul(device, encoder, probs, w.o, w.dv, { m: T, n: D, k: T, transA: true, batch });
  headMatmul(device, encoder, w.o, w.v, scratch, { m: T, n: T, k: D, transB: true, batch });
  rowsLaunch(device, encoder, 'backward', probs, scratch, dims);
  // dq = dS·k/√D, dk = dSᵀ·q/√D.
  headMatmul(device, encoder, scratch, w.k, w.dq, { m: T, n: D, k: T, alpha: scale, batch });
  headMatmul(device, encoder, scratch, w.q, w.dk, { m: T, n: D, k: T, transA: true, alpha: scale, batch });
  headsLaunch(device, encoder, 'merge3', [w.dq, w.dk, w.dv, dqkv], dims);
}
