/**
 * Grouped-query attention for the Llama family's training graph, fed to the multi-head attention
 * kernels of attention.ts (unchanged) by expanding the key/value heads:
 *
 *   encodeGqaPack    q [N, H·D], k and v [N, Hkv·D] → qkv [N, 3·H·D] (attention.ts's packed layout),
 *                    query head h reading KV head floor(h / (H / Hkv)), as HF's repeat_kv
 *   encodeGqaUnpack  dqkv [N, 3·H·D] → dq [N, H·D]; dk, dv [N, Hkv·D] = the sum over each KV head's
 *                    group of query heads (all three overwritten)
 *
 * so one layer's attention is pack → encodeAttentionForward → … → encodeAttentionBackward → unpack.
 * With Hkv = H the pack is a plain interleave and the unpack its inverse. N = batch·T rows.
 * Both record into the caller's encoder; nothing is submitted.
 * Float64 reference: test/reference/rope.ts (gqaPack, gqaUnpack, gqaAttentionForward/Backward).
 */
import { groups, launch } from '../../gpu/launch';
import { layerTuning } from '../../gpu/tuning';
import { withGridPrelude } from './prelude';
import packKernel from './gqa_pack.wgsl?raw';
import unpackKernel from './gqa_unpack.wgsl?raw';

const packWgsl = withGridPrelude(packKernel);
const unpackWgsl = withGridPrelude(unpackKernel);

export interface GqaDims {
  /** N: token rows (batch·T). */
  rows: number;
  /** H: query heads. */
  heads: number;
  /** Hkv: key/value heads, dividing H. */
  kvHeads: number;
  /** D, per head. */
  headDim: number;
}

export interface GqaPackBuffers {
  /** [N, H·D] f32 (read). */
  q: GPUBuffer;
  /** [N, Hkv·D] f32 each (read). */
  k: GPUBuffer;
  v: GPUBuffer;
  /** [N, 3·H·D] f32 (written); none of q, k, v. */
  qkv: GPUBuffer;
}

export interface GqaUnpackBuffers {
  /** [N, 3·H·D] f32 (read): the attention backward's dqkv. */
  dqkv: GPUBuffer;
  /** [N, H·D] f32 (overwritten). */
  dq: GPUBuffer;
  /** [N, Hkv·D] f32 each (overwritten). */
  dk: GPUBuffer;
  dv: GPUBuffer;
}

export interface GqaOptions {
  /** Invocations per workgroup; default layerTuning(device).workgroupSize. */
  workgroupSize?: number;
}

/** Bytes of each buffer for `dims` (what callers allocate). */
export function gqaBufferBytes(dims: GqaDims): { q: number; kv: number; qkv: number } {
  const { rows: N, heads: H, kvHeads: Hkv, headDim: D } = dims;
  return { q: N * H * D * 4, kv: N * Hkv * D * 4, qkv: N * 3 * H * D * 4 };
}

function checkDims(dims: GqaDims, label: string): void {
  const { rows, heads, kvHeads, headDim } = dims;
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${label}: rows = ${rows} must be an integer ≥ 0`);
  for (const [name, v] of [['heads', heads], ['kvHeads', kvHeads], ['headDim', headDim]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${label}: ${name} = ${v} must be a positive integer`);
  }
  if (heads % kvHeads !== 0) throw new Error(`${label}: kvHeads = ${kvHeads} must divide heads = ${heads} (each KV head serves a whole group of query heads)`);
  if (3 * rows * heads * headDim >= 2 ** 32) throw new Error(`${label}: ${rows}×3×${heads}×${headDim} exceeds the kernel's u32 indices`);
}

function checkBuffers(label: string, sized: [string, GPUBuffer, number][], written: string[]): void {
  for (const [name, buffer, bytes] of sized) {
    if (buffer.size < bytes) throw new Error(`${label}: ${name} holds ${buffer.size} bytes, needs ${bytes}`);
  }
  for (const w of written) {
    const wb = sized.find(([n]) => n === w)![1];
    for (const [o, ob] of sized) if (o !== w && ob === wb) throw new Error(`${label}: ${w} and ${o} are the same buffer (WebGPU forbids a written binding aliasing another)`);
  }
}

/** qkv ← q | k expanded | v expanded, per row (see the top of this file). */
export function encodeGqaPack(device: GPUDevice, encoder: GPUCommandEncoder, b: GqaPackBuffers, dims: GqaDims, options: GqaOptions = {}): void {
  const label = 'gqa_pack';
  checkDims(dims, label);
  const bytes = gqaBufferBytes(dims);
  checkBuffers(label, [['q', b.q, bytes.q], ['k', b.k, bytes.kv], ['v', b.v, bytes.kv], ['qkv', b.qkv, bytes.qkv]], ['qkv']);
  dispatch(device, encoder, label, packWgsl, [b.q, b.k, b.v, b.qkv], dims, options);
}

/** dq ← the q section of dqkv; dk, dv ← each KV head's group sum of the k and v sections. */
export function encodeGqaUnpack(device: GPUDevice, encoder: GPUCommandEncoder, b: GqaUnpackBuffers, dims: GqaDims, options: GqaOptions = {}): void {
  const label = 'gqa_unpack';
  checkDims(dims, label);
  const bytes = gqaBufferBytes(dims);
  checkBuffers(label, [['dqkv', b.dqkv, bytes.qkv], ['dq', b.dq, bytes.q], ['dk', b.dk, bytes.kv], ['dv', b.dv, bytes.kv]], ['dq', 'dk', 'dv']);
  dispatch(device, encoder, label, unpackWgsl, [b.dqkv, b.dq, b.dk, b.dv], dims, options);
}

/** One invocation per element of q (N·H·D of them), in a 2-D grid of workgroups. */
function dispatch(device: GPUDevice, encoder: GPUCommandEncoder, label: string, code: string, buffers: GPUBuffer[], dims: GqaDims, options: GqaOptions): void {
  const { rows, heads, kvHeads, headDim } = dims;
  const count = rows * heads * headDim;
  const wg = options.workgroupSize ?? layerTuning(device).workgroupSize;
  const total = groups(count, wg);
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(total / max);
  launch(device, encoder, {
    code,
    label,
    constants: { WG: wg },
    buffers,
    uniforms: [count, heads, kvHeads, headDim],
    workgroups: total <= max ? [total, 1] : [Math.ceil(total / y), y],
  });
}
