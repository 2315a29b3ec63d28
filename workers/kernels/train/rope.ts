/**
 * Rotary position embeddings of the Llama family in the training graph, forward and backward, in
 * place (rope.wgsl, one program, its direction an override constant):
 *
 *   encodeRopeForward   x [rows, heads·D]  ← rotate(x)   by +θ(position)   (q and k after their projections)
 *   encodeRopeBackward  dx [rows, heads·D] ← rotateᵀ(dy) by −θ(position)   (the gradient flowing back)
 *
 * HF's rotate_half convention: for i < D/2, c = cos[p, i], s = sin[p, i],
 *   x'[i] = x[i]·c − x[i + D/2]·s,   x'[i + D/2] = x[i + D/2]·c + x[i]·s.
 * The tables come from workers/models/llama/rope.ts ropeTables (float64), uploaded once as f32 by
 * createRopeTables. One binding is read_write (the activation) because WebGPU forbids a writable
 * binding aliasing another; nothing else is written. A position ≥ the tables' length reads their
 * last row (clamped in the kernel, never out of bounds): the caller validates positions on the CPU.
 * Both record into the caller's encoder; nothing is submitted. Float64 reference: test/reference/rope.ts.
 */
import { createStorageBuffer } from '../../gpu/buffers';
import { groups, launch } from '../../gpu/launch';
import { layerTuning } from '../../gpu/tuning';
import { withGridPrelude } from './prelude';
import ropeKernel from './rope.wgsl?raw';

const ropeWgsl = withGridPrelude(ropeKernel);

export interface RopeDims {
  /** Token rows (batch·T). */
  rows: number;
  /** Heads in each row (the query heads for q, the KV heads for k). */
  heads: number;
  /** D, even: the tables have D/2 columns. */
  headDim: number;
}

/** The f32 cos and sin tables on the device, [positions, headDim/2] each. */
export interface RopeTableBuffers {
  cos: GPUBuffer;
  sin: GPUBuffer;
  /**
   * Rows of the tables: they cover positions 0 … maxPositions − 1. (Named apart from the
   * encoders' `positions` buffer, so that `{ x, positions, ...tables }` is a valid buffers object.)
   */
  maxPositions: number;
  /** The head dimension the tables were built for (their columns are headDim/2). */
  headDim: number;
  destroy(): void;
}

/**
 * Uploads float64 tables (ropeTables' output, [positions, headDim/2] row-major) as f32 storage
 * buffers (each value rounded once). The caller destroys them.
 */
export function createRopeTables(device: GPUDevice, tables: { cos: Float64Array; sin: Float64Array }, headDim: number, label = 'rope'): RopeTableBuffers {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) throw new Error(`createRopeTables: headDim = ${headDim} must be an even integer ≥ 2`);
  const half = headDim / 2;
  if (tables.cos.length !== tables.sin.length) throw new Error(`createRopeTables: cos has ${tables.cos.length} values and sin ${tables.sin.length}; they must be the same [positions, headDim/2] shape`);
  if (tables.cos.length === 0 || tables.cos.length % half !== 0) throw new Error(`createRopeTables: ${tables.cos.length} values are not a whole number (≥ 1) of rows of headDim/2 = ${half}; build them with ropeTables for this headDim`);
  const cos = createStorageBuffer(device, Float32Array.from(tables.cos), `${label} cos`);
  const sin = createStorageBuffer(device, Float32Array.from(tables.sin), `${label} sin`);
  return {
    cos,
    sin,
    maxPositions: tables.cos.length / half,
    headDim,
    destroy() {
      cos.destroy();
      sin.destroy();
    },
  };
}

export interface RopeForwardBuffers {
  /** [rows, heads·D] f32, rotated in place. */
  x: GPUBuffer;
  /** [rows] u32: each row's position id. */
  positions: GPUBuffer;
  /** [maxPositions, D/2] f32 each (createRopeTables). */
  cos: GPUBuffer;
  sin: GPUBuffer;
  /**
   * The tables' rows (createRopeTables' maxPositions): positions are clamped to maxPositions − 1.
   * Absent: counted from cos's byte size, which may include up to 3 floats of the 16-byte padding.
   */
  maxPositions?: number;
}

export interface RopeBackwardBuffers {
  /** [rows, heads·D] f32: dy on entry, dx on exit (in place). */
  dx: GPUBuffer;
  positions: GPUBuffer;
  cos: GPUBuffer;
  sin: GPUBuffer;
  maxPositions?: number;
}

export interface RopeOptions {
  /** Invocations per workgroup; default layerTuning(device).workgroupSize. */
  workgroupSize?: number;
}

/** x ← rotate(x) by each row's position (HF's apply_rotary_pos_emb on one of q, k). */
export function encodeRopeForward(device: GPUDevice, encoder: GPUCommandEncoder, buffers: RopeForwardBuffers, dims: RopeDims, options: RopeOptions = {}): void {
  encodeRope(device, encoder, buffers.x, buffers, dims, 1, 'rope_forward', options);
}

/** dx ← rotateᵀ(dx): the gradient of encodeRopeForward (the rotation by −θ), in place. */
export function encodeRopeBackward(device: GPUDevice, encoder: GPUCommandEncoder, buffers: RopeBackwardBuffers, dims: RopeDims, options: RopeOptions = {}): void {
  encodeRope(device, encoder, buffers.dx, buffers, dims, -1, 'rope_backward', options);
}

function encodeRope(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  x: GPUBuffer,
  b: { positions: GPUBuffer; cos: GPUBuffer; sin: GPUBuffer; maxPositions?: number },
  dims: RopeDims,
  direction: 1 | -1,
  label: string,
  options: RopeOptions,
): void {
  const { rows, heads, headDim } = dims;
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${label}: rows = ${rows} must be an integer ≥ 0`);
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`${label}: heads = ${heads} must be a positive integer`);
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) throw new Error(`${label}: headDim = ${headDim} must be an even integer ≥ 2 (the rotation turns pairs)`);
  const half = headDim / 2;
  const elements = rows * heads * headDim;
  if (elements >= 2 ** 32) throw new Error(`${label}: ${rows}×${heads}×${headDim} exceeds the kernel's u32 indices`);
  const name = direction === 1 ? 'x' : 'dx';
  if (x.size < elements * 4) throw new Error(`${label}: ${name} holds ${x.size} bytes, needs ${elements * 4} (rows·heads·headDim f32)`);
  if (b.positions.size < rows * 4) throw new Error(`${label}: positions holds ${b.positions.size} bytes, needs ${rows * 4} (one u32 per row)`);
  if (b.cos.size !== b.sin.size) throw new Error(`${label}: cos (${b.cos.size} bytes) and sin (${b.sin.size} bytes) differ; pass the pair createRopeTables made`);
  const capacity = Math.floor(b.cos.size / 4 / half);
  const maxPositions = b.maxPositions ?? capacity;
  if (!Number.isInteger(maxPositions) || maxPositions < 1 || maxPositions > capacity) {
    throw new Error(`${label}: the cos/sin tables (${b.cos.size} bytes) hold ${capacity} rows of headDim/2 = ${half} values, not maxPositions = ${maxPositions}; build them with createRopeTables for this headDim`);
  }
  for (const [n, buf] of [['positions', b.positions], ['cos', b.cos], ['sin', b.sin]] as const) {
    if (buf === x) throw new Error(`${label}: ${name} and ${n} are the same buffer`);
  }
  const wg = options.workgroupSize ?? layerTuning(device).workgroupSize;
  const pairs = rows * heads * half;
  launch(device, encoder, {
    code: ropeWgsl,
    label,
    constants: { WG: wg, DIRECTION: direction },
    buffers: [x, b.positions, b.cos, b.sin],
    uniforms: [pairs, heads, half, maxPositions],
    workgroups: grid(device, groups(pairs, wg)),
  });
}

/** `total` workgroups as (x, y) with x within the adapter's per-dimension limit. */
function grid(device: GPUDevice, total: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (total <= max) return [total, 1];
  const y = Math.ceil(total / max);
  return [Math.ceil(total / y), y];
}
