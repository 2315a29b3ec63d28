import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../workers/models/gpt2/params';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../../workers/gpu/buffers';
import { CPU_LAYER_TUNING, GPU_LAYER_TUNING, type LayerTuning } from '../../workers/gpu/tuning';
import {
  createEmbeddingBackward,
  encodeAdd,
  encodeEmbeddingForward,
  encodeGeluBackward,
  encodeGeluForward,
  encodeLayerNormBackward,
  encodeLayerNormForward,
  encodeLayerNormParamGrad,
  groupRowsById,
  planLayerNormParamGrad,
} from '../../workers/kernels/train/layers';
import {
  addBackward,
  addForward,
  embeddingBackward,
  embeddingForward,
  geluBackward,
  geluForward,
  geluNewDerivative,
  layerNormBackward,
  layerNormForward,
} from '../reference/layers';

// ---------------------------------------------------------------------------------------------
// helpers

/** Deterministic uniform [0, 1) (mulberry32). */
function random(seed: number): () => number {
  return seededRandom(seed).uniform;
}

/** n values roughly N(offset, scale²) (sum of three uniforms), as f32 (the GPU's inputs). */
function values(r: () => number, n: number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => offset + scale * (r() + r() + r() - 1.5) * 2);
}

/** Central difference of `f` with respect to `x[i]` (x is restored). */
function centralDifference(f: () => number, x: Float64Array, i: number, h: number): number {
  const keep = x[i];
  x[i] = keep + h;
  const up = f();
  x[i] = keep - h;
  const down = f();
  x[i] = keep;
  return (up - down) / (2 * h);
}

/** max_i |analytic − fd| / max(1, max |fd|): the FD checks' error measure. */
function fdError(analytic: ArrayLike<number>, fd: ArrayLike<number>): number {
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < fd.length; i++) scale = Math.max(scale, Math.abs(fd[i]));
  for (let i = 0; i < fd.length; i++) worst = Math.max(worst, Math.abs(analytic[i] - fd[i]));
  return worst / scale;
}

interface Tolerance {
  /** Absolute part, in units of the output's scale (see `compare`). */
  atol: number;
  /** Relative part, per element. */
  rtol: number;
}

/** Worst measured error per kernel output (printed at the end: the numbers the tolerances were set from). */
const measured = new Map<string, { maxAbs: number; worst: number }>();

/**
 * Checks |got − want| ≤ atol·scale + rtol·|want| elementwise (scale: the largest |want|, at least
 * 1) and records the worst error / tolerance under `name`. Returns the failures, formatted.
 */
function compare(name: string, got: Float32Array, want: ArrayLike<number>, tol: Tolerance, count = want.length): string[] {
  let scale = 1;
  for (let i = 0; i < count; i++) scale = Math.max(scale, Math.abs(want[i]));
  let maxAbs = 0;
  let worst = 0;
  const failures: string[] = [];
  for (let i = 0; i < count; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bound = tol.atol * scale + tol.rtol * Math.abs(want[i]);
    const ratio = Number.isNaN(err) ? Infinity : err / bound;
    if (ratio > 1 && failures.length < 5) failures.push(`${name}[${i}]: got ${got[i]}, want ${want[i]} (error ${err}, bound ${bound})`);
    maxAbs = Math.max(maxAbs, Number.isNaN(err) ? Infinity : err / scale);
    worst = Math.max(worst, ratio);
  }
  const key = name.replace(/ .*/, '');
  const m = measured.get(key) ?? { maxAbs: 0, worst: 0 };
  measured.set(key, { maxAbs: Math.max(m.maxAbs, maxAbs), worst: Math.max(m.worst, worst) });
  return failures;
}

afterAll(() => {
  if (measured.size === 0) return;
  const lines = [...measured].map(([k, m]) => `  ${k}: max |error|/scale ${m.maxAbs.toExponential(2)}, worst error/tolerance ${m.worst.toFixed(3)}`);
  console.log(`train layers, measured on this adapter:\n${lines.join('\n')}`);
});

async function run(device: GPUDevice, what: string, encode: (encoder: GPUCommandEncoder) => void): Promise<void> {
  await withGpuErrorScope(device, what, () => {
    const encoder = device.createCommandEncoder();
    encode(encoder);
    device.queue.submit([encoder.finish()]);
  });
}

const buffer = (device: GPUDevice, data: Float32Array | Uint32Array, label: string) => createStorageBuffer(device, data, label);

// ---------------------------------------------------------------------------------------------
// (1) float64 analytic backwards against central finite differences of the float64 forwards

/**
 * Central differences of float64 functions with h = 1e-5 (inputs of order 1) are accurate to
 * ~h²·|f'''| + ε·|f|/h ≈ 1e-10; 1e-7 relative leaves a wide margin and still catches any wrong
 * term (a wrong term is off by ≥ 1e-2 here).
 */
const FD_STEP = 1e-5;
const FD_RELATIVE_ERROR = 1e-7;

describe('float64 layer references: analytic backward = central finite differences', () => {
  it('LayerNorm: dx, dγ, dβ of Σ dy·y', () => {
    const r = random(11);
    const rows = 3;
    const width = 7;
    const eps = 1e-5;
    const x = Float64Array.from(values(r, rows * width, 1.5, 0.7));
    const gamma = Float64Array.from(values(r, width, 1, 1));
    const beta = Float64Array.from(values(r, width));
    const dy = Float64Array.from(values(r, rows * width));
    const loss = () => {
      const { y } = layerNormForward(x, gamma, beta, rows, width, eps);
      return y.reduce((s, v, i) => s + v * dy[i], 0);
    };
    const { dx, dgamma, dbeta } = layerNormBackward(dy, x, gamma, rows, width, eps);
    const fdx = x.map((_, i) => centralDifference(loss, x, i, FD_STEP));
    const fdg = gamma.map((_, i) => centralDifference(loss, gamma, i, FD_STEP));
    const fdb = beta.map((_, i) => centralDifference(loss, beta, i, FD_STEP));
    expect(fdError(dx, fdx)).toBeLessThan(FD_RELATIVE_ERROR);
    expect(fdError(dgamma, fdg)).toBeLessThan(FD_RELATIVE_ERROR);
    expect(fdError(dbeta, fdb)).toBeLessThan(FD_RELATIVE_ERROR);
  });

  it('GELU (gelu_new): dy·gelu′(x), over both tails and 0', () => {
    const r = random(12);
    const x = Float64Array.from([...values(r, 40, 3), 0, -0.5, 0.5, -6, 6, -10, 10]);
    const dy = Float64Array.from(values(r, x.length));
    const loss = () => geluForward(x).reduce((s, v, i) => s + v * dy[i], 0);
    const fd = x.map((_, i) => centralDifference(loss, x, i, FD_STEP));
    expect(fdError(geluBackward(x, dy), fd)).toBeLessThan(FD_RELATIVE_ERROR);
    expect(geluNewDerivative(0)).toBe(0.5);
  });

  it('embedding: dwte, dwpe of Σ dx·x with repeated ids', () => {
    const r = random(13);
    const [vocab, nPositions, width] = [5, 4, 3];
    const tokens = [1, 3, 1, 1, 0, 3];
    const positions = [0, 1, 2, 0, 1, 2];
    const wte = Float64Array.from(values(r, vocab * width));
    const wpe = Float64Array.from(values(r, nPositions * width));
    const dx = Float64Array.from(values(r, tokens.length * width));
    const loss = () => embeddingForward(tokens, positions, wte, wpe, width).reduce((s, v, i) => s + v * dx[i], 0);
    const { dwte, dwpe } = embeddingBackward(tokens, positions, dx, vocab, nPositions, width);
    expect(fdError(dwte, wte.map((_, i) => centralDifference(loss, wte, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    expect(fdError(dwpe, wpe.map((_, i) => centralDifference(loss, wpe, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    // Unused rows (token 2, 4; position 3) get exactly zero.
    expect([...dwte.subarray(2 * width, 3 * width), ...dwte.subarray(4 * width), ...dwpe.subarray(3 * width)].every((v) => v === 0)).toBe(true);
  });

  it('add: both inputs get dout', () => {
    const r = random(14);
    const a = Float64Array.from(values(r, 9));
    const b = Float64Array.from(values(r, 9));
    const dout = Float64Array.from(values(r, 9));
    const loss = () => addForward(a, b).reduce((s, v, i) => s + v * dout[i], 0);
    const { da, db } = addBackward(dout);
    expect(fdError(da, a.map((_, i) => centralDifference(loss, a, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    expect(fdError(db, b.map((_, i) => centralDifference(loss, b, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
  });

  it('row grouping: unique ids ascending, rows ascending within a group', () => {
    const g = groupRowsById(Uint32Array.from([4, 1, 4, 0, 1, 4]));
    expect([...g.ids]).toEqual([0, 1, 4]);
    expect([...g.offsets]).toEqual([0, 1, 3, 6]);
    expect([...g.rows]).toEqual([3, 1, 4, 0, 2, 5]);
  });
});

// ---------------------------------------------------------------------------------------------
// (2) WGSL kernels against the float64 references

/**
 * Tolerances: |gpu − ref| ≤ atol·scale + rtol·|ref|, scale = max(1, max |ref|) of that output.
 * f32 has ε = 1.2e-7; the references see the same f32-rounded inputs.
 */
const TOL = {
  /** LayerNorm forward: row sums of ≤ 257 terms in a tree (error ~ log2(E)·ε·Σ|x|, with |μ| ≤ 3σ) then a few roundings. */
  layerNormForward: { atol: 2e-6, rtol: 2e-6 },
  /** LayerNorm dx: two row sums feeding a difference of terms of size |γ·dy|·rstd; absolute in the output's scale. */
  layerNormBackward: { atol: 4e-6, rtol: 4e-6 },
  /** dγ, dβ: column sums of ≤ 33 products with cancellation (terms of both signs): absolute in the output's scale. */
  layerNormParamGrad: { atol: 4e-6, rtol: 4e-6 },
  /** GELU forward: a few roundings and one exp (WGSL allows exp 3 + 2|x| ulp). */
  geluForward: { atol: 1e-6, rtol: 2e-6 },
  /** GELU backward: as forward, plus the polynomial factor (relative error grows with |x| through exp's 2|x| ulp). */
  geluBackward: { atol: 2e-6, rtol: 4e-6 },
  /** add / embedding forward: one f32 rounding of an exact f64 sum (rtol 2^-23 covers it and double rounding). */
  add: { atol: 0, rtol: 2 ** -23 },
  /** Embedding backward: sums of ≤ 33 rows of dx added into a random prior gradient; absolute in the output's scale. */
  embeddingBackward: { atol: 4e-6, rtol: 2e-7 },
} satisfies Record<string, Tolerance>;

const WIDTHS = [1, 3, 17, 65, 100, 257];
const ROWS = [1, 5, 33];

/**
 * Every (rows, width) pair, then GPT-2 small and medium widths; each with its own seed,
 * accumulate on for every other one.
 */
const SHAPES = [
  ...ROWS.flatMap((rows) => WIDTHS.map((width) => ({ rows, width }))),
  { rows: 64, width: 768 },
  { rows: 130, width: 1024 },
].map((s, i) => ({ ...s, seed: 100 + i, accumulate: i % 2 === 1 }));

/** The GPU tuning on this adapter, with params small enough that N = 33 is cut into row splits. */
const SPLIT_TUNING: LayerTuning = { ...GPU_LAYER_TUNING, minRowsPerLane: 1 };
const CPU_SPLIT_TUNING: LayerTuning = { ...CPU_LAYER_TUNING, minParamGradWorkgroups: 64, minRowsPerLane: 1 };

describe('layer kernels against the float64 references (real WebGPU adapter)', () => {
  it('plans row splits for the parameter gradients', () => {
    expect(planLayerNormParamGrad(33, 17, CPU_LAYER_TUNING)).toEqual({ splits: 1, rowsPerSplit: 33 });
    expect(planLayerNormParamGrad(33, 17, CPU_SPLIT_TUNING).splits).toBeGreaterThan(4);
    // GPT-2 small, 16 × 512 tokens: enough splits for ≥ 512 workgroups, each lane ≥ 16 rows.
    const p = planLayerNormParamGrad(8192, 768, GPU_LAYER_TUNING);
    expect(p.splits * 24).toBeGreaterThanOrEqual(512);
    expect(p.rowsPerSplit).toBeGreaterThanOrEqual(8 * 16);
    expect(planLayerNormParamGrad(0, 5, GPU_LAYER_TUNING).splits).toBe(0);
  });

  // The device's own tuning on every shape; the GPU tuning (256-wide, split param grads) and a
  // CPU tuning forced to split on a third of them each, so both code paths run everywhere.
  const tunings: [string, LayerTuning | undefined][] = [
    ['device tuning', undefined],
    ['GPU tuning', SPLIT_TUNING],
    ['CPU tuning, split', CPU_SPLIT_TUNING],
  ];

  it('LayerNorm forward, backward (dx) and parameter gradients over awkward shapes, accumulate on and off', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    const eps = 1e-5;
    for (const [i, { rows, width, seed, accumulate }] of SHAPES.entries()) {
      for (const [tname, tuning] of tunings) {
        if (tuning && i % 3 !== (tname === 'GPU tuning' ? 0 : 1)) continue;
        const r = random(seed);
        const x = values(r, rows * width, 2, 3); // mean ≠ 0: the two-pass variance matters
        const gamma = values(r, width, 0.5, 1);
        const beta = values(r, width, 0.5);
        const dy = values(r, rows * width);
        const priorDx = values(r, rows * width);
        const priorDg = values(r, width);
        const priorDb = values(r, width);
        const b = {
          x: buffer(device, x, 'x'),
          gamma: buffer(device, gamma, 'γ'),
          beta: buffer(device, beta, 'β'),
          y: createStorageBuffer(device, rows * width * 4, 'y'),
          mean: createStorageBuffer(device, rows * 4, 'mean'),
          rstd: createStorageBuffer(device, rows * 4, 'rstd'),
          dy: buffer(device, dy, 'dy'),
          dx: buffer(device, priorDx, 'dx'),
          dgamma: buffer(device, priorDg, 'dγ'),
          dbeta: buffer(device, priorDb, 'dβ'),
        };
        const shape = { rows, width, accumulate };
        await run(device, 'layernorm', (enc) => {
          encodeLayerNormForward(device, enc, b, { rows, width, eps }, tuning);
          encodeLayerNormBackward(device, enc, b, shape, tuning);
          encodeLayerNormParamGrad(device, enc, b, shape, tuning);
        });
        const [y, mean, rstd, dx, dgamma, dbeta] = await Promise.all([
          readFloat32(device, b.y, rows * width),
          readFloat32(device, b.mean, rows),
          readFloat32(device, b.rstd, rows),
          readFloat32(device, b.dx, rows * width),
          readFloat32(device, b.dgamma, width),
          readFloat32(device, b.dbeta, width),
        ]);
        const ref = layerNormForward(x, gamma, beta, rows, width, eps);
        const grad = layerNormBackward(dy, x, gamma, rows, width, eps);
        const plus = (prior: Float32Array, v: Float64Array) => (accumulate ? v.map((g, k) => g + prior[k]) : v);
        const tag = `(N=${rows}, E=${width}, accumulate ${accumulate}, ${tname})`;
        failures.push(
          ...compare(`layerNormForward y ${tag}`, y, ref.y, TOL.layerNormForward),
          ...compare(`layerNormForward mean ${tag}`, mean, ref.mean, TOL.layerNormForward),
          ...compare(`layerNormForward rstd ${tag}`, rstd, ref.rstd, TOL.layerNormForward),
          ...compare(`layerNormBackward dx ${tag}`, dx, plus(priorDx, grad.dx), TOL.layerNormBackward),
          ...compare(`layerNormParamGrad dγ ${tag}`, dgamma, plus(priorDg, grad.dgamma), TOL.layerNormParamGrad),
          ...compare(`layerNormParamGrad dβ ${tag}`, dbeta, plus(priorDb, grad.dbeta), TOL.layerNormParamGrad),
        );
        Object.values(b).forEach((buf) => buf.destroy());
      }
    }
    expect(failures).toEqual([]);
  });

  it('GELU forward and backward over awkward lengths, accumulate on and off, tails and huge inputs', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    const special = [0, -0, 1e-3, -1e-3, 8.99, -8.99, 9, -9, 9.01, -9.01, 20, -20, 1e4, -1e4, 3e38, -3e38];
    const lengths = [1, 3, 17, 65, 100, 257, 33 * 65, 5 * 257].map((n, i) => ({ n, seed: 200 + i, accumulate: i % 2 === 0 }));
    for (const [i, { n, seed, accumulate }] of lengths.entries()) {
      const tuning = i % 3 === 2 ? GPU_LAYER_TUNING : undefined;
      const r = random(seed);
      const x = values(r, n, 4);
      if (n >= special.length) x.set(special);
      const dy = values(r, n);
      const prior = values(r, n);
      const b = { x: buffer(device, x, 'x'), y: createStorageBuffer(device, n * 4, 'y'), dy: buffer(device, dy, 'dy'), dx: buffer(device, prior, 'dx') };
      await run(device, 'gelu', (enc) => {
        encodeGeluForward(device, enc, b, n, tuning);
        encodeGeluBackward(device, enc, b, { count: n, accumulate }, tuning);
      });
      const [y, dx] = await Promise.all([readFloat32(device, b.y, n), readFloat32(device, b.dx, n)]);
      const tag = `(n=${n}, accumulate ${accumulate}${tuning ? ', GPU tuning' : ''})`;
      // The references in float64 overflow for |x| ≳ 1e102 (x³); |x| = 3e38 is still fine.
      const refY = geluForward(x);
      const refDx = geluBackward(x, dy).map((v, k) => (accumulate ? v + prior[k] : v));
      // Compared per element, scale 1 (huge y = x values are compared relatively).
      for (let k = 0; k < n; k++) {
        failures.push(
          ...compare(`geluForward y ${tag} at x=${x[k]}`, y.subarray(k, k + 1), [refY[k]], TOL.geluForward),
          ...compare(`geluBackward dx ${tag} at x=${x[k]}`, dx.subarray(k, k + 1), [refDx[k]], TOL.geluBackward),
        );
      }
      expect(y.every(Number.isFinite) && dx.every(Number.isFinite)).toBe(true);
      Object.values(b).forEach((buf) => buf.destroy());
    }
    expect(failures).toEqual([]);
  });

  it('GELU: |x| up to 1e4 and f32 max give no NaN or ∞; the tails are exact', async () => {
    const device = await testDevice();
    const x = Float32Array.from([1e4, -1e4, 5e3, -5e3, 1e3, -1e3, 100, -100, 3.4e38, -3.4e38, 1e-30, -1e-30, 0]);
    const dy = new Float32Array(x.length).fill(1);
    const b = { x: buffer(device, x, 'x'), y: createStorageBuffer(device, x.length * 4, 'y'), dy: buffer(device, dy, 'dy'), dx: createStorageBuffer(device, x.length * 4, 'dx') };
    await run(device, 'gelu large', (enc) => {
      encodeGeluForward(device, enc, b, x.length);
      encodeGeluBackward(device, enc, b, { count: x.length, accumulate: false });
    });
    const [y, dx] = await Promise.all([readFloat32(device, b.y, x.length), readFloat32(device, b.dx, x.length)]);
    expect([...y].every(Number.isFinite)).toBe(true);
    expect([...dx].every(Number.isFinite)).toBe(true);
    const plusZero = (v: number) => v + 0; // -0 → 0
    expect([...y.subarray(0, 10)].map(plusZero)).toEqual([...x.subarray(0, 10)].map((v) => (v > 0 ? v : 0)));
    expect([...dx.subarray(0, 10)]).toEqual([...x.subarray(0, 10)].map((v) => (v > 0 ? 1 : 0)));
    expect(dx[12]).toBeCloseTo(0.5, 6);
    Object.values(b).forEach((buf) => buf.destroy());
  });

  it('add: out = a + b and in place a += b', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    for (const [i, n] of [1, 3, 17, 65, 100, 257, 33 * 257].entries()) {
      const r = random(300 + i);
      const a = values(r, n, 10);
      const bb = values(r, n);
      const b = { a: buffer(device, a, 'a'), b: buffer(device, bb, 'b'), out: createStorageBuffer(device, n * 4, 'out') };
      const tuning = i % 2 ? GPU_LAYER_TUNING : undefined;
      await run(device, 'add', (enc) => {
        encodeAdd(device, enc, b, n, tuning);
        encodeAdd(device, enc, { a: b.a, b: b.b }, n, tuning); // a += b
      });
      const [out, inPlace] = await Promise.all([readFloat32(device, b.out, n), readFloat32(device, b.a, n)]);
      const ref = addForward(a, bb);
      failures.push(...compare(`add out (n=${n})`, out, ref, TOL.add), ...compare(`add in-place (n=${n})`, inPlace, ref, TOL.add));
      Object.values(b).forEach((buf) => buf.destroy());
    }
    expect(failures).toEqual([]);
  });

  it('embedding forward and backward with repeated ids (accumulating into a prior gradient)', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    const [vocab, nPositions] = [11, 40];
    for (const [i, { rows, width, seed }] of SHAPES.entries()) {
      const tuning = i % 3 === 2 ? GPU_LAYER_TUNING : undefined;
      const r = random(seed + 1000);
      // Few distinct tokens (many repeats); positions as in a batch of sequences of length 4.
      const tokens = Uint32Array.from({ length: rows }, () => Math.floor(r() * Math.min(vocab, 1 + rows / 3)));
      tokens[rows - 1] = vocab - 1; // the last row of the table
      const positions = Uint32Array.from({ length: rows }, (_, n) => (n % 4) + (i % 2) * (nPositions - 4));
      const wte = values(r, vocab * width);
      const wpe = values(r, nPositions * width);
      const dx = values(r, rows * width);
      const priorWte = values(r, vocab * width);
      const priorWpe = values(r, nPositions * width);
      const b = {
        tokens: buffer(device, tokens, 'tokens'),
        positions: buffer(device, positions, 'positions'),
        wte: buffer(device, wte, 'wte'),
        wpe: buffer(device, wpe, 'wpe'),
        x: createStorageBuffer(device, rows * width * 4, 'x'),
        dx: buffer(device, dx, 'dx'),
        dwte: buffer(device, priorWte, 'dwte'),
        dwpe: buffer(device, priorWpe, 'dwpe'),
      };
      const backward = createEmbeddingBackward(device, tokens, positions, { vocabSize: vocab, nPositions }, tuning);
      await run(device, 'embedding', (enc) => {
        encodeEmbeddingForward(device, enc, b, { rows, width, vocabSize: vocab, nPositions }, tuning);
        backward.encode(enc, b, width);
      });
      const [x, dwte, dwpe] = await Promise.all([readFloat32(device, b.x, rows * width), readFloat32(device, b.dwte, vocab * width), readFloat32(device, b.dwpe, nPositions * width)]);
      const refX = embeddingForward(tokens, positions, wte, wpe, width);
      const grad = embeddingBackward(tokens, positions, dx, vocab, nPositions, width);
      const tag = `(N=${rows}, E=${width}${tuning ? ', GPU tuning' : ''})`;
      failures.push(
        ...compare(`embeddingForward x ${tag}`, x, refX, TOL.add),
        ...compare(`embeddingBackward dwte ${tag}`, dwte, grad.dwte.map((g, k) => g + priorWte[k]), TOL.embeddingBackward),
        ...compare(`embeddingBackward dwpe ${tag}`, dwpe, grad.dwpe.map((g, k) => g + priorWpe[k]), TOL.embeddingBackward),
      );
      backward.destroy();
      Object.values(b).forEach((buf) => buf.destroy());
    }
    expect(failures).toEqual([]);
  });

  it('embedding: an id past its table gives a NaN row (forward) and is refused on the CPU (backward)', async () => {
    const device = await testDevice();
    const width = 3;
    const b = {
      tokens: buffer(device, Uint32Array.from([1, 7]), 'tokens'),
      positions: buffer(device, Uint32Array.from([0, 1]), 'positions'),
      wte: buffer(device, new Float32Array(4 * width).fill(1), 'wte'),
      wpe: buffer(device, new Float32Array(2 * width).fill(2), 'wpe'),
      x: createStorageBuffer(device, 2 * width * 4, 'x'),
    };
    await run(device, 'embedding out of range', (enc) => encodeEmbeddingForward(device, enc, b, { rows: 2, width, vocabSize: 4, nPositions: 2 }));
    const x = await readFloat32(device, b.x, 2 * width);
    expect([...x.subarray(0, width)]).toEqual([3, 3, 3]);
    expect([...x.subarray(width)].every(Number.isNaN)).toBe(true);
    expect(() => createEmbeddingBackward(device, Uint32Array.from([1, 7]), Uint32Array.from([0, 1]), { vocabSize: 4, nPositions: 2 })).toThrow(/token id 7/);
    Object.values(b).forEach((buf) => buf.destroy());
  });

  it('more workgroups than one grid dimension holds (the (x, y) layout)', async () => {
    const device = await testDevice();
    // One invocation per workgroup keeps this fast on the emulated adapter.
    const tuning: LayerTuning = { ...CPU_LAYER_TUNING, workgroupSize: 1 };
    const n = device.limits.maxComputeWorkgroupsPerDimension + 5;
    const rows = device.limits.maxComputeWorkgroupsPerDimension + 3;
    const width = 2;
    const r = random(400);
    const a = values(r, n);
    const bb = values(r, n);
    // Pairs c ± s with s ≥ 0.5: a well-conditioned LayerNorm (rstd ≤ 2), so f32 inputs cost nothing.
    const x = new Float32Array(rows * width);
    for (let k = 0; k < rows; k++) {
      const c = 4 * r() - 2;
      const s = 0.5 + r();
      x.set([c + s, c - s], k * width);
    }
    const ln = {
      x: buffer(device, x, 'x'),
      gamma: buffer(device, Float32Array.of(1, 2), 'γ'),
      beta: buffer(device, Float32Array.of(0, 1), 'β'),
      y: createStorageBuffer(device, rows * width * 4, 'y'),
      mean: createStorageBuffer(device, rows * 4, 'mean'),
      rstd: createStorageBuffer(device, rows * 4, 'rstd'),
    };
    const b = { a: buffer(device, a, 'a'), b: buffer(device, bb, 'b') };
    await run(device, 'large grid', (enc) => {
      encodeAdd(device, enc, b, n, tuning);
      encodeLayerNormForward(device, enc, ln, { rows, width, eps: 1e-5 }, tuning);
    });
    const [sum, y] = await Promise.all([readFloat32(device, b.a, n), readFloat32(device, ln.y, rows * width)]);
    expect(compare('add large grid', sum, addForward(a, bb), TOL.add)).toEqual([]);
    expect(compare('layerNormForward large grid', y, layerNormForward(x, [1, 2], [0, 1], rows, width, 1e-5).y, TOL.layerNormForward)).toEqual([]);
    [...Object.values(b), ...Object.values(ln)].forEach((buf) => buf.destroy());
  });

  it('refuses aliased outputs and undersized buffers', async () => {
    const device = await testDevice();
    const a = createStorageBuffer(device, 64, 'a');
    const c = createStorageBuffer(device, 64, 'c');
    const enc = device.createCommandEncoder();
    expect(() => encodeGeluForward(device, enc, { x: a, y: a }, 4)).toThrow(/same buffer/);
    expect(() => encodeAdd(device, enc, { a, b: c, out: c }, 4)).toThrow(/same buffer/);
    expect(() => encodeAdd(device, enc, { a, b: c }, 17)).toThrow(/needs 68/);
    enc.finish();
    a.destroy();
    c.destroy();
  });
});
