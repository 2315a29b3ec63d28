import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../workers/models/gpt2/params';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32 } from '../../workers/gpu/buffers';
import { CPU_MATMUL_TUNING, GPU_MATMUL_TUNING, matmulTuning, type MatmulTuning } from '../../workers/gpu/tuning';
import { encodeColumnSum, encodeMatmul, measureMatmulGflops, pickMatmulVariant, type MatmulShape, type MatmulVariant } from '../../workers/kernels/train/matmul';
import { referenceColumnSum, referenceMatmul } from '../reference/matmul';

/** Unit roundoff of float32. */
const U = 2 ** -24;

/**
 * Matmul tolerance, per element: Higham's worst-case bound for float32 evaluation of a sum of n
 * rounded products, γ_n·Σ|terms| with γ_n = n·u/(1 − n·u), here n = k products + alpha, bias and
 * the accumulated C (3 more roundings), Σ|terms| = |alpha|·Σ_k|a||b| + |bias| + |C before|. It
 * holds for any summation order and with or without fused multiply-adds, so it cannot flake.
 */
const matmulTolerance = (k: number, absTerms: number): number => (((k + 3) * U) / (1 - (k + 3) * U)) * absTerms;

/** Column-sum tolerance: the same bound for a float32 sum of rows (+ the accumulated value) terms. */
const columnSumTolerance = (rows: number, absTerms: number): number => (((rows + 1) * U) / (1 - (rows + 1) * U)) * absTerms;

/** Deterministic uniform numbers in [-1, 1) (mulberry32). */
function random(seed: number): () => number {
  const u = seededRandom(seed).uniform;
  return () => u() * 2 - 1;
}

const fill = (count: number, rnd: () => number, scale = 1) => Float32Array.from({ length: count }, () => rnd() * scale);

interface Case {
  shape: MatmulShape;
  bias?: boolean;
  /** Values of C before the call (matters when accumulating, and in the gaps between batch entries). */
  cScale?: number;
}

/** Worst error seen per test, for the summary printed at the end. */
const worst: Record<string, { maxAbsError: number; maxErrorOverTolerance: number }> = {};

/**
 * Runs every case with one variant (all recorded into one encoder, one submit), then compares each
 * C, gaps between batch entries included, with the float64 reference. Returns the failures.
 */
async function runCases(device: GPUDevice, variant: MatmulVariant, cases: Case[], seed: number, label: string, tuning?: MatmulTuning): Promise<string[]> {
  const rnd = random(seed);
  const encoder = device.createCommandEncoder();
  const pending = cases.map(({ shape, bias, cScale = 0 }) => {
    const { m, n, k, batch = 1 } = shape;
    const strideA = shape.strideA ?? m * k;
    const strideB = shape.strideB ?? k * n;
    const strideC = shape.strideC ?? m * n;
    const a = fill((batch - 1) * strideA + m * k, rnd);
    const b = fill((batch - 1) * strideB + k * n, rnd);
    const c = fill((batch - 1) * strideC + m * n, rnd, cScale);
    const biasValues = bias ? fill(n, rnd) : undefined;
    const buffers = {
      a: createStorageBuffer(device, a, 'A'),
      b: createStorageBuffer(device, b, 'B'),
      c: createStorageBuffer(device, c, 'C'),
      bias: biasValues && createStorageBuffer(device, biasValues, 'bias'),
    };
    encodeMatmul(device, encoder, buffers, shape, variant, tuning ?? matmulTuning(device));
    return { shape, a, b, c, biasValues, buffers };
  });
  device.queue.submit([encoder.finish()]);
  const failures: string[] = [];
  const stats = (worst[label] ??= { maxAbsError: 0, maxErrorOverTolerance: 0 });
  for (const { shape, a, b, c, biasValues, buffers } of pending) {
    const got = await readFloat32(device, buffers.c, c.length);
    // The kernel receives alpha as an f32.
    const expected = referenceMatmul(a, b, c, { ...shape, alpha: Math.fround(shape.alpha ?? 1) }, biasValues);
    let bad = 0;
    let first = '';
    for (let i = 0; i < c.length; i++) {
      const n = shape.n;
      const absTerms = expected.absSum[i] + (shape.accumulate ? Math.abs(c[i]) : 0) + (biasValues ? Math.abs(biasValues[i % n]) : 0);
      const tol = matmulTolerance(shape.k, absTerms);
      const err = Math.abs(got[i] - expected.c[i]);
      stats.maxAbsError = Math.max(stats.maxAbsError, err);
      if (tol > 0) stats.maxErrorOverTolerance = Math.max(stats.maxErrorOverTolerance, err / tol);
      if (!(err <= tol)) {
        bad++;
        first ||= `element ${i}: got ${got[i]}, expected ${expected.c[i]} (tolerance ${tol})`;
      }
    }
    if (bad) failures.push(`${variant} ${JSON.stringify(shape)}${biasValues ? ' +bias' : ''}: ${bad} of ${c.length} wrong, first ${first}`);
    for (const buffer of Object.values(buffers)) buffer?.destroy();
  }
  return failures;
}

const VARIANTS: MatmulVariant[] = ['register', 'tiled'];
const AWKWARD = [1, 3, 17, 33, 65, 127];

describe('matmul kernels against the float64 reference (real WebGPU adapter)', () => {
  afterAll(() => {
    // The measured errors, for the record (tolerances are the stated worst-case bounds).
    console.info(`train-matmul errors:\n${Object.entries(worst).map(([k, v]) => `  ${k}: max |error| ${v.maxAbsError.toExponential(2)}, max error/tolerance ${v.maxErrorOverTolerance.toFixed(4)}`).join('\n')}`);
  });

  // Both variants, with this adapter's workgroup sizes and with the GPU ones (256-invocation
  // tiles, barriers over 16×16 invocations), so the code that runs on real GPUs is checked here.
  for (const [tuningName, tuning] of [
    ['device', undefined],
    ['GPU', GPU_MATMUL_TUNING],
  ] as const) {
    it(`every transA/transB combination on awkward shapes, both variants, ${tuningName} workgroup sizes`, async () => {
      const device = await testDevice();
      const shapes: [number, number, number][] = [
        [1, 1, 1],
        [3, 17, 33],
        [17, 65, 3],
        [65, 33, 127],
        [127, 3, 17],
        [33, 127, 65],
      ];
      const failures: string[] = [];
      for (const variant of VARIANTS) {
        const cases: Case[] = [];
        for (const transA of [false, true]) for (const transB of [false, true]) for (const [m, n, k] of shapes) cases.push({ shape: { m, n, k, transA, transB } });
        failures.push(...(await runCases(device, variant, cases, 11, `${variant}, ${tuningName} sizes, trans combos`, tuning)));
      }
      expect(failures).toEqual([]);
    });
  }

  it('accumulate, bias and alpha on random shapes, both variants', async () => {
    const device = await testDevice();
    const rnd = random(7);
    const pick = <T,>(xs: readonly T[]) => xs[Math.floor(((rnd() + 1) / 2) * xs.length)];
    const cases: Case[] = [];
    for (let i = 0; i < 12; i++) {
      const shape: MatmulShape = {
        m: pick(AWKWARD),
        n: pick(AWKWARD),
        k: pick(AWKWARD),
        transA: rnd() < 0,
        transB: rnd() < 0,
        accumulate: i % 2 === 0,
        alpha: pick([1, -0.37, 2.5]),
      };
      cases.push({ shape, bias: i % 3 !== 2, cScale: 3 });
    }
    // k = 0: C = bias (or C + bias when accumulating).
    cases.push({ shape: { m: 5, n: 9, k: 0 }, bias: true, cScale: 1 }, { shape: { m: 5, n: 9, k: 0, accumulate: true }, bias: true, cScale: 1 });
    const failures: string[] = [];
    for (const variant of VARIANTS) failures.push(...(await runCases(device, variant, cases, 12, `${variant}, accumulate/bias/alpha`)));
    expect(failures).toEqual([]);
  });

  it('batches with strides larger than the matrices (gaps in C keep their values)', async () => {
    const device = await testDevice();
    const cases: Case[] = [
      { shape: { m: 17, n: 33, k: 9, batch: 3, strideA: 17 * 9 + 5, strideB: 9 * 33 + 3, strideC: 17 * 33 + 7 }, cScale: 1 },
      { shape: { m: 3, n: 65, k: 17, batch: 4, transB: true, accumulate: true, strideA: 3 * 17 + 1, strideB: 65 * 17, strideC: 3 * 65 + 4 }, bias: true, cScale: 1 },
      // strideB = 0: one B shared by every batch entry.
      { shape: { m: 33, n: 5, k: 12, batch: 2, transA: true, alpha: 0.5, strideA: 33 * 12 + 2, strideB: 0 }, cScale: 1 },
    ];
    const failures: string[] = [];
    for (const variant of VARIANTS) failures.push(...(await runCases(device, variant, cases, 13, `${variant}, batched`)));
    expect(failures).toEqual([]);
  });

  it('the LM-head shapes with V = 50257: logits = h·wteᵀ, dh = dlogits·wte, dwte += dlogitsᵀ·h', async () => {
    const device = await testDevice();
    const T = 2;
    const E = 12;
    const V = 50257;
    const cases: Case[] = [
      { shape: { m: T, n: V, k: E, transB: true } },
      { shape: { m: T, n: E, k: V } },
      { shape: { m: V, n: E, k: T, transA: true, accumulate: true }, cScale: 1 },
    ];
    const failures: string[] = [];
    for (const variant of VARIANTS) failures.push(...(await runCases(device, variant, cases, 14, `${variant}, V = 50257`)));
    expect(failures).toEqual([]);
  });

  it('column sums (= and +=) on awkward shapes, device and GPU workgroup sizes', async () => {
    const device = await testDevice();
    const rnd = random(21);
    const failures: string[] = [];
    const stats = (worst['column sum'] ??= { maxAbsError: 0, maxErrorOverTolerance: 0 });
    for (const tuning of [CPU_MATMUL_TUNING, GPU_MATMUL_TUNING]) {
      for (const [rows, cols, accumulate] of [
        [1, 1, false],
        [17, 33, true],
        [127, 65, false],
        [300, 3, true],
        [3, 50257, true],
      ] as const) {
        const x = fill(rows * cols, rnd);
        const before = fill(cols, rnd);
        const xBuf = createStorageBuffer(device, x, 'x');
        const outBuf = createStorageBuffer(device, before, 'out');
        const encoder = device.createCommandEncoder();
        encodeColumnSum(device, encoder, { x: xBuf, out: outBuf }, { rows, cols, accumulate }, tuning);
        device.queue.submit([encoder.finish()]);
        const got = await readFloat32(device, outBuf, cols);
        const expected = referenceColumnSum(x, rows, cols, accumulate, before);
        const absTerms = referenceColumnSum(x.map(Math.abs), rows, cols, accumulate, before.map(Math.abs));
        for (let c = 0; c < cols; c++) {
          const err = Math.abs(got[c] - expected[c]);
          const tol = columnSumTolerance(rows, absTerms[c]);
          stats.maxAbsError = Math.max(stats.maxAbsError, err);
          stats.maxErrorOverTolerance = Math.max(stats.maxErrorOverTolerance, err / tol);
          if (!(err <= tol)) {
            failures.push(`${rows}×${cols}${accumulate ? ' +=' : ''} (wg ${tuning.columnSum.wgX}×${tuning.columnSum.wgY}): column ${c} got ${got[c]}, expected ${expected[c]}`);
            break;
          }
        }
        xBuf.destroy();
        outBuf.destroy();
      }
    }
    expect(failures).toEqual([]);
  });

  it('records into the caller’s encoder without submitting, and rejects aliased or undersized buffers', async () => {
    const device = await testDevice();
    const a = createStorageBuffer(device, 4 * 4 * 4, 'A');
    const b = createStorageBuffer(device, 4 * 4 * 4, 'B');
    const c = createStorageBuffer(device, 4 * 4 * 4, 'C');
    const submit = device.queue.submit;
    let submits = 0;
    device.queue.submit = function (this: GPUQueue, buffers: Iterable<GPUCommandBuffer>) {
      submits++;
      return submit.call(this, buffers);
    };
    try {
      const encoder = device.createCommandEncoder();
      encodeMatmul(device, encoder, { a, b, c }, { m: 4, n: 4, k: 4 }, 'register');
      encodeMatmul(device, encoder, { a, b, c }, { m: 4, n: 4, k: 4 }, 'tiled');
      encodeColumnSum(device, encoder, { x: a, out: c }, { rows: 4, cols: 4 });
      expect(submits).toBe(0);
      encoder.finish();
    } finally {
      device.queue.submit = submit;
    }
    const encoder = device.createCommandEncoder();
    expect(() => encodeMatmul(device, encoder, { a, b, c: a }, { m: 4, n: 4, k: 4 })).toThrow(/same buffer/);
    expect(() => encodeMatmul(device, encoder, { a, b, c }, { m: 5, n: 4, k: 4 })).toThrow(/matmul A: needs 20/);
    expect(() => encodeMatmul(device, encoder, { a, b, c }, { m: 2, n: 2, k: 2, batch: 2, strideC: 3 })).toThrow(/strideC/);
    expect(() => encodeMatmul(device, encoder, { a, b, c }, { m: 1.5, n: 4, k: 4 })).toThrow(/m = 1.5/);
    encoder.finish();
    for (const buffer of [a, b, c]) buffer.destroy();
  });
});

describe('matmul variant choice and speed', () => {
  it('pickMatmulVariant picks one of the two (cached) and measureMatmulGflops is positive and finite', async () => {
    const device = await testDevice();
    const start = performance.now();
    const variant = await pickMatmulVariant(device);
    const pickMs = performance.now() - start;
    expect(['register', 'tiled']).toContain(variant);
    expect(await pickMatmulVariant(device)).toBe(variant);
    const gflops = await measureMatmulGflops(device, { m: 64, n: 64, k: 64 }, variant, 2);
    expect(Number.isFinite(gflops)).toBe(true);
    expect(gflops).toBeGreaterThan(0);
    console.info(`pickMatmulVariant: ${variant} in ${pickMs.toFixed(0)} ms; ${variant} at 64³: ${gflops.toFixed(2)} GFLOP/s`);
  });
});
