/**
 * Causal multi-head self-attention of the training engine, forward and backward, with a key mask
 * (1 = real token, 0 = padding; left and right padding both work). GPT-2's layout throughout:
 * qkv [B·T, 3E] is c_attn's output (q | k | v per row, head h at columns h·D..(h+1)·D of each),
 * ctx [B·T, E] goes into c_proj. The forward saves the softmax probabilities for the backward.
 *
 *   encodeAttentionForward   qkv, keyMask        → ctx, probs [B, H, T, T]
 *   encodeAttentionBackward  dctx, probs, qkv    → dqkv (overwritten), via a scratch dscores
 *
 * Both record into the caller's encoder (see launch.ts); nothing is submitted here.
 * Float64 references: reference-attention.ts.
 */
import { createStorageBuffer } from '../../gpu/buffers';
import { isCpuDevice } from '../divergence/plan';
import { launch } from './launch';
import forwardWgsl from './attention_forward.wgsl?raw';
import backwardWgsl from './attention_backward.wgsl?raw';

export interface AttentionDims {
  batch: number;
  /** T, positions per sequence (≤ MAX_ATTENTION_SEQ). */
  seq: number;
  heads: number;
  /** D, per head (≤ MAX_ATTENTION_HEAD_DIM); E = heads·headDim. */
  headDim: number;
}

export interface AttentionOptions {
  /** Invocations per workgroup (rounded down to a power of two ≤ 256); default 64 on CPU adapters, 256 on GPUs. */
  workgroupSize?: number;
}

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
  return largestPowerOfTwoAtMost(Math.min(options.workgroupSize ?? (isCpuDevice(device) ? 64 : 256), limit));
}

function uniforms(dims: AttentionDims) {
  return [dims.batch, dims.seq, dims.heads, dims.headDim, { f32: 1 / Math.sqrt(dims.headDim) }] as const;
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
  launch(device, encoder, {
    code: forwardWgsl,
    label: 'attention_forward',
    constants: attentionConstants(device, dims, options),
    buffers: [buffers.qkv, buffers.keyMask, buffers.ctx, buffers.probs],
    uniforms: uniforms(dims),
    workgroups: [dims.seq, dims.heads, dims.batch],
  });
}

const scratchCache = new WeakMap<GPUDevice, GPUBuffer>();

/**
 * The per-device scratch, replaced by a larger one when too small. The old one is not destroyed:
 * commands already recorded may still use it (it is freed when nothing references it).
 */
function deviceScratch(device: GPUDevice, bytes: number): GPUBuffer {
  let scratch = scratchCache.get(device);
  if (!scratch || scratch.size < bytes) {
    scratch = createStorageBuffer(device, bytes, 'attention dscores scratch');
    scratchCache.set(device, scratch);
  }
  return scratch;
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
  const scratch = buffers.scratch ?? deviceScratch(device, bytes.probs);
  checkSize(scratch, bytes.probs, 'scratch', what);
  for (const [name, b] of [['dctx', buffers.dctx], ['probs', buffers.probs], ['qkv', buffers.qkv], ['scratch', scratch]] as const) {
    if (b === buffers.dqkv) throw new Error(`${what}: dqkv must not be ${name}`);
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
