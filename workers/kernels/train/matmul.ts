/**
 * Matrix products of the training engine: C (= or +=) alpha·op(A)·op(B) (+ bias), batched, with
 * either operand transposed, in two WGSL kernels: a register-tiled one (no workgroup memory;
 * fastest on CPU adapters such as SwiftShader) and a shared-memory tiled one (the usual winner
 * on real GPUs). `pickMatmulVariant` times both on the device at hand. Also the column sum (bias
 * gradients).
 *
 * Every use in GPT-2 training (HF Conv1D: weight W [in, out], y = x·W + b):
 *   forward        y = x·W + b                 encodeMatmul({a: x, b: W, c: y, bias}, {m, n, k})
 *   input grad     dx = dy·Wᵀ                  {transB: true}
 *   weight grad    dW (+)= xᵀ·dy               {transA: true, accumulate}
 *   bias grad      db (+)= Σ_rows dy           encodeColumnSum
 *   LM head        logits = h·wteᵀ (wte [V,E]) {transB: true}
 *   back through   dh = dlogits·wte; dwte += dlogitsᵀ·h   {} and {transA: true, accumulate: true}
 */
import { createStorageBuffer } from '../../gpu/buffers';
import { matmulPick, matmulTuning, type MatmulTuning } from '../../gpu/tuning';
import { groups, launch } from '../../gpu/launch';
import { withTrainPrelude } from './prelude';
import matmulCommon from './matmul_common.wgsl?raw';
import registerKernel from './matmul_register.wgsl?raw';
import tiledKernel from './matmul_tiled.wgsl?raw';
import columnSumKernel from './column_sum.wgsl?raw';

const columnSumWgsl = withTrainPrelude(columnSumKernel);
// The two matmul kernels, each after what they share (WGSL has no include).
const registerWgsl = `${matmulCommon}\n${registerKernel}`;
const tiledWgsl = `${matmulCommon}\n${tiledKernel}`;

export type MatmulVariant = 'register' | 'tiled';

export interface MatmulBuffers {
  /** A: [m, k] row-major, or [k, m] when transA (per batch entry). */
  a: GPUBuffer;
  /** B: [k, n], or [n, k] when transB. */
  b: GPUBuffer;
  /** C: [m, n]; must not be `a`, `b` or `bias`. */
  c: GPUBuffer;
  /** bias[n], added to every row of every batch entry. */
  bias?: GPUBuffer;
}

export interface MatmulShape {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /**
   * C += … instead of C = …. With a bias as well, C = C + alpha·op(A)·op(B) + bias (the bias is
   * added again on every call: what a forward pass accumulating into a residual stream wants).
   */
  accumulate?: boolean;
  /** Scale of the product (not of the bias or of the C accumulated into). Default 1. */
  alpha?: number;
  /** Number of independent products. Default 1. */
  batch?: number;
  /** Elements between consecutive A / B / C matrices; default their sizes (m·k, k·n, m·n). */
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

/** Each invocation computes a BLOCK × BLOCK block of C (written out by hand in each kernel). */
const BLOCK: Record<MatmulVariant, number> = { register: 8, tiled: 4 };
const U32_LIMIT = 2 ** 32;

const chosenVariant = new WeakMap<GPUDevice, MatmulVariant>();
const pickInFlight = new WeakMap<GPUDevice, Promise<MatmulVariant>>();
const unusedBias = new WeakMap<GPUDevice, GPUBuffer>();

/** The variant encodeMatmul uses when none is given: the picked or forced one, else a default by adapter class. */
export function currentMatmulVariant(device: GPUDevice): MatmulVariant {
  return chosenVariant.get(device) ?? matmulPick(device).defaultVariant;
}

/** Forces the variant encodeMatmul uses on `device` (and what pickMatmulVariant answers from now on). */
export function setMatmulVariant(device: GPUDevice, variant: MatmulVariant): void {
  chosenVariant.set(device, variant);
  pickInFlight.set(device, Promise.resolve(variant));
}

function checkCount(kernel: string, what: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value >= U32_LIMIT) throw new Error(`${kernel}: ${what} = ${value} is not an integer ≥ ${min} (and < 2^32)`);
}

function checkFits(label: string, buffer: GPUBuffer, elements: number): void {
  if (elements >= U32_LIMIT) throw new Error(`${label}: ${elements} elements exceed the u32 indices of the kernel`);
  if (elements * 4 > buffer.size) throw new Error(`${label}: needs ${elements} f32 elements but its buffer holds ${buffer.size} bytes`);
}

/**
 * Records C (= or +=) alpha·op(A)·op(B) (+ bias) into `encoder` (nothing is submitted). Shapes
 * are checked against the buffers' sizes (a buffer may be larger than needed). m, n or k = 0
 * are allowed: m or n = 0 records nothing; k = 0 writes bias (or 0) / leaves C + bias.
 * `variant` defaults to the device's picked or forced one; `tuning` (tests) to its class's.
 */
export function encodeMatmul(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  bufs: MatmulBuffers,
  shape: MatmulShape,
  variant?: MatmulVariant,
  tuning: MatmulTuning = matmulTuning(device),
): void {
  const { m, n, k, transA = false, transB = false, accumulate = false, alpha = 1, batch = 1 } = shape;
  checkCount('matmul', 'm', m, 0);
  checkCount('matmul', 'n', n, 0);
  checkCount('matmul', 'k', k, 0);
  checkCount('matmul', 'batch', batch, 1);
  if (!Number.isFinite(alpha)) throw new Error(`matmul: alpha = ${alpha} is not finite`);
  const strideA = shape.strideA ?? m * k;
  const strideB = shape.strideB ?? k * n;
  const strideC = shape.strideC ?? m * n;
  checkCount('matmul', 'strideA', strideA, 0);
  checkCount('matmul', 'strideB', strideB, 0);
  checkCount('matmul', 'strideC', strideC, 0);
  if (bufs.c === bufs.a || bufs.c === bufs.b || bufs.c === bufs.bias) throw new Error('matmul: C must not be the same buffer as A, B or the bias');
  if (m === 0 || n === 0) return;
  // Batched outputs must not overlap, or accumulation would race between batch entries.
  if (batch > 1 && strideC < m * n) throw new Error(`matmul: strideC = ${strideC} is less than m·n = ${m * n}`);
  checkFits('matmul A', bufs.a, (batch - 1) * strideA + m * k);
  checkFits('matmul B', bufs.b, (batch - 1) * strideB + k * n);
  checkFits('matmul C', bufs.c, (batch - 1) * strideC + m * n);
  if (bufs.bias) checkFits('matmul bias', bufs.bias, n);

  const which = variant ?? currentMatmulVariant(device);
  const wg = which === 'register' ? tuning.register : tuning.tiled;
  const block = BLOCK[which];
  const constants: Record<string, number> = {
    WG_X: wg.wgX,
    WG_Y: wg.wgY,
    TRANS_A: transA ? 1 : 0,
    TRANS_B: transB ? 1 : 0,
    ACCUMULATE: accumulate ? 1 : 0,
    HAS_BIAS: bufs.bias ? 1 : 0,
  };
  if (which === 'tiled') constants.BK = tuning.tiled.bk;
  launch(device, encoder, {
    code: which === 'register' ? registerWgsl : tiledWgsl,
    label: `matmul_${which}`,
    constants,
    buffers: [bufs.a, bufs.b, bufs.bias ?? biasPlaceholder(device), bufs.c],
    uniforms: [m, n, k, strideA, strideB, strideC, { f32: alpha }, batch],
    workgroups: [groups(n, block * wg.wgX), groups(m, block * wg.wgY), batch],
  });
}

/** Bound at the bias slot when there is no bias (the kernels read it only when HAS_BIAS). */
function biasPlaceholder(device: GPUDevice): GPUBuffer {
  let buffer = unusedBias.get(device);
  if (!buffer) unusedBias.set(device, (buffer = createStorageBuffer(device, 16, 'matmul no bias')));
  return buffer;
}

/** Records out[c] (= or +=) Σ_r x[r, c] for a row-major [rows, cols] x (bias gradients). */
export function encodeColumnSum(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  bufs: { x: GPUBuffer; out: GPUBuffer },
  shape: { rows: number; cols: number; accumulate?: boolean },
  tuning: MatmulTuning = matmulTuning(device),
): void {
  const { rows, cols, accumulate = false } = shape;
  checkCount('column sum', 'rows', rows, 0);
  checkCount('column sum', 'cols', cols, 0);
  if (bufs.x === bufs.out) throw new Error('column sum: out must not be the same buffer as x');
  if (cols === 0) return;
  checkFits('column sum x', bufs.x, rows * cols);
  checkFits('column sum out', bufs.out, cols);
  const { wgX, wgY } = tuning.columnSum;
  launch(device, encoder, {
    code: columnSumWgsl,
    label: 'column_sum',
    constants: { WG_X: wgX, WG_Y: wgY, ACCUMULATE: accumulate ? 1 : 0 },
    buffers: [bufs.x, bufs.out],
    uniforms: [rows, cols],
    workgroups: [groups(cols, wgX)],
  });
}

/** Deterministic values in [-1, 1) for benchmark operands. */
function benchData(count: number, seed: number): Float32Array {
  const data = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = ((s >>> 0) / U32_LIMIT) * 2 - 1;
  }
  return data;
}

/**
 * Achieved GFLOP/s (2·m·n·k per product) of `variant` on `device`: one warm-up product (pipeline
 * compilation), then `repeats` products recorded into one encoder, one submit, timed until the
 * queue is done.
 */
export async function measureMatmulGflops(
  device: GPUDevice,
  shape: { m: number; n: number; k: number },
  variant: MatmulVariant,
  repeats = 3,
): Promise<number> {
  const { m, n, k } = shape;
  const a = createStorageBuffer(device, benchData(m * k, 1), 'matmul bench A');
  const b = createStorageBuffer(device, benchData(k * n, 2), 'matmul bench B');
  const c = createStorageBuffer(device, m * n * 4, 'matmul bench C');
  try {
    const run = async (times: number) => {
      const encoder = device.createCommandEncoder({ label: 'matmul bench' });
      for (let i = 0; i < times; i++) encodeMatmul(device, encoder, { a, b, c }, { m, n, k }, variant);
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    };
    await run(1);
    const start = performance.now();
    await run(Math.max(1, repeats));
    const seconds = (performance.now() - start) / 1000;
    return (2 * m * n * k * Math.max(1, repeats)) / Math.max(seconds, 1e-9) / 1e9;
  } finally {
    a.destroy();
    b.destroy();
    c.destroy();
  }
}

/**
 * Times both variants on `device` and keeps the faster as its default (cached per device; a
 * second call answers from the cache). CPU adapters: 256³ products, a few runs (well under 2 s
 * on SwiftShader); GPUs: 1024³, where launch overhead no longer hides the kernels' speed.
 */
export function pickMatmulVariant(device: GPUDevice): Promise<MatmulVariant> {
  const cached = pickInFlight.get(device);
  if (cached) return cached;
  const pending = (async (): Promise<MatmulVariant> => {
    const { shape, repeats } = matmulPick(device);
    const register = await measureMatmulGflops(device, shape, 'register', repeats);
    const tiled = await measureMatmulGflops(device, shape, 'tiled', repeats);
    // A variant forced meanwhile (setMatmulVariant) wins over the measurement.
    if (!chosenVariant.has(device)) chosenVariant.set(device, tiled > register ? 'tiled' : 'register');
    return chosenVariant.get(device)!;
  })();
  pickInFlight.set(device, pending);
  pending.catch(() => {
    if (pickInFlight.get(device) === pending) pickInFlight.delete(device);
  });
  return pending;
}
