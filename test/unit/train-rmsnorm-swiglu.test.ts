/**
 * The Llama family's training kernels beside GPT-2's: RMSNorm (forward, dx, dγ), SwiGLU (forward,
 * dgate and dup) and the token-only embedding, against the float64 references of
 * test/reference/layers.ts, whose analytic backwards are themselves checked against central
 * finite differences of their forwards.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../workers/random/seeded-normal';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../../workers/gpu/buffers';
import { CPU_LAYER_TUNING, GPU_LAYER_TUNING, type LayerTuning } from '../../workers/gpu/tuning';
import { encodeRmsNormBackward, encodeRmsNormForward, encodeRmsNormParamGrad, planRmsNormRows } from '../../workers/kernels/train/rmsnorm';
import { encodeSwigluBackward, encodeSwigluForward } from '../../workers/kernels/train/swiglu';
import { createEmbeddingBackward, encodeEmbeddingForward } from '../../workers/kernels/train/layers';
import { embeddingBackward, embeddingForward, rmsNormBackward, rmsNormForward, siluDerivative, swigluBackward, swigluForward } from '../reference/layers';

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
 * 1) and records the worst error / tolerance under `name`'s first word. Returns the failures.
 */
function compare(name: string, got: Float32Array, want: ArrayLike<number>, tol: Tolerance): string[] {
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let maxAbs = 0;
  let worst = 0;
  const failures: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bound = tol.atol * scale + tol.rtol * Math.abs(want[i]);
    const ratio = Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / bound;
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
  console.log(`RMSNorm, SwiGLU, token embedding, measured on this adapter:\n${lines.join('\n')}`);
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
 * Central differences with h = 1e-5 on inputs of order 1: truncation ~h²·|f'''| and rounding
 * ~ε·|f|/h, together ≲ 1e-10; 1e-7 relative (to max(1, max |fd|)) leaves a wide margin and still
 * catches any wrong term (off by ≥ 1e-2 here).
 */
const FD_STEP = 1e-5;
const FD_RELATIVE_ERROR = 1e-7;

describe('float64 references: analytic backward = central finite differences', () => {
  it('RMSNorm: dx and dγ of Σ dy·y, rows of width 1, 3 and 8, eps 1e-6 and 1e-2', () => {
    for (const [k, { rows, width, eps }] of [
      { rows: 3, width: 8, eps: 1e-6 },
      { rows: 2, width: 3, eps: 1e-2 },
      { rows: 4, width: 1, eps: 1e-6 },
    ].entries()) {
      const r = random(21 + k);
      const x = Float64Array.from(values(r, rows * width, 1.5, 0.7));
      const gamma = Float64Array.from(values(r, width, 0.5, 1));
      const dy = Float64Array.from(values(r, rows * width));
      const loss = () => rmsNormForward(x, gamma, rows, width, eps).y.reduce((s, v, i) => s + v * dy[i], 0);
      const { dx, dgamma } = rmsNormBackward(dy, x, gamma, rows, width, eps);
      expect(fdError(dx, x.map((_, i) => centralDifference(loss, x, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
      expect(fdError(dgamma, gamma.map((_, i) => centralDifference(loss, gamma, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    }
    // rstd is what the forward saves: 1/√(mean(x²) + eps).
    const { rstd } = rmsNormForward([3, 4], [1, 1], 1, 2, 0.5);
    expect(rstd[0]).toBeCloseTo(1 / Math.sqrt(13), 14);
  });

  it('SwiGLU: dgate and dup of Σ dy·y, over both tails of the sigmoid and 0', () => {
    const r = random(24);
    const gate = Float64Array.from([...values(r, 30, 3), 0, -0.5, 0.5, -8, 8, -20, 20, -40, 40]);
    const up = Float64Array.from(values(r, gate.length, 2));
    const dy = Float64Array.from(values(r, gate.length));
    const loss = () => swigluForward(gate, up).reduce((s, v, i) => s + v * dy[i], 0);
    const { dgate, dup } = swigluBackward(gate, up, dy);
    expect(fdError(dgate, gate.map((_, i) => centralDifference(loss, gate, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    expect(fdError(dup, up.map((_, i) => centralDifference(loss, up, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    // The overflow-free sigmoid in the references: finite and exact in the far tails.
    expect(siluDerivative(0)).toBe(0.5);
    expect([...swigluForward([1e4, -1e4, 800, -800], [1, 1, 1, 1])].map((v) => v + 0)).toEqual([1e4, 0, 800, 0]);
    expect([siluDerivative(1e4), siluDerivative(-1e4)].map((v) => v + 0)).toEqual([1, 0]);
  });

  it('token-only embedding: dwte of Σ dx·x with repeated ids; no position gradient', () => {
    const r = random(25);
    const [vocab, width] = [5, 3];
    const tokens = [1, 3, 1, 1, 0, 3];
    const wte = Float64Array.from(values(r, vocab * width));
    const dx = Float64Array.from(values(r, tokens.length * width));
    const loss = () => embeddingForward(tokens, null, wte, null, width).reduce((s, v, i) => s + v * dx[i], 0);
    const { dwte, dwpe } = embeddingBackward(tokens, null, dx, vocab, 0, width);
    expect(fdError(dwte, wte.map((_, i) => centralDifference(loss, wte, i, FD_STEP)))).toBeLessThan(FD_RELATIVE_ERROR);
    expect(dwpe.length).toBe(0);
    expect(() => embeddingForward(tokens, [0, 0, 0, 0, 0, 0], wte, null, width)).toThrow(/together/);
  });
});

// ---------------------------------------------------------------------------------------------
// (2) WGSL kernels against the float64 references (real WebGPU adapter)

/**
 * Tolerances: |gpu − ref| ≤ atol·scale + rtol·|ref|, scale = max(1, max |ref|) of that output;
 * the references see the same f32-rounded inputs. f32 has ε = 1.2e-7.
 */
const TOL = {
  /**
   * RMSNorm y and rstd: a sum of ≤ 576 squares (positive terms, no cancellation: relative error
   * ≲ (terms per partial sum + tree depth)·ε ≈ 1e-6 worst case, far less in practice), inverseSqrt
   * (2 ulp) and two products.
   */
  rmsNormForward: { atol: 1e-6, rtol: 2e-6 },
  /**
   * RMSNorm dx: a row sum feeding a difference of terms of size rstd·|γ·dy|: absolute in the
   * output's scale. Width 1 is the worst case (dx = rstd·γ·dy·(1 − x̂²) with x̂² ≈ 1: all of
   * rstd·γ·dy cancels; measured 2e-6 of the scale there, ~2e-7 at other widths).
   */
  rmsNormBackward: { atol: 4e-6, rtol: 4e-6 },
  /** dγ: column sums of ≤ 130 products of both signs (cancellation), plus a prior: absolute in the output's scale. */
  rmsNormParamGrad: { atol: 4e-6, rtol: 4e-6 },
  /** SwiGLU y: exp (WGSL: 3 + 2|x| ulp, relative) in σ, a division and two products; compared per element. */
  swigluForward: { atol: 1e-6, rtol: 4e-6 },
  /** SwiGLU dgate, dup: as the forward, plus 1 + g·(1 − σ) (a sum of terms of both signs near g ≈ −1.28). */
  swigluBackward: { atol: 2e-6, rtol: 4e-6 },
  /** Token-only embedding forward: a copy, exact. */
  embeddingCopy: { atol: 0, rtol: 0 },
  /** Embedding backward: sums of ≤ 130 rows of dx added into a prior gradient; absolute in the output's scale. */
  embeddingBackward: { atol: 4e-6, rtol: 2e-7 },
} satisfies Record<string, Tolerance>;

const WIDTHS = [1, 3, 31, 33, 64, 200, 576];
const ROWS = [1, 7, 130];

/**
 * Tunings the RMSNorm shapes run under: the device's own on every shape, and on every other
 * shape one forced variant (so every code path runs on every adapter): the GPU table (lanes per
 * row from the width; with minRowsPerLane 1 the parameter gradient splits its rows), the CPU
 * table forced to split, and the GPU table with one lane per 8 elements.
 */
const SPLIT_GPU: LayerTuning = { ...GPU_LAYER_TUNING, minRowsPerLane: 1 };
const SPLIT_CPU: LayerTuning = { ...CPU_LAYER_TUNING, minParamGradWorkgroups: 64, minRowsPerLane: 1 };
const NARROW_GPU: LayerTuning = { ...GPU_LAYER_TUNING, workgroupSize: 64, paramGradColumns: 8, paramGradLanes: 4, rmsNormElementsPerLane: 8 };
const FORCED: [string, LayerTuning][] = [
  ['GPU tuning, split', SPLIT_GPU],
  ['CPU tuning, split', SPLIT_CPU],
  ['GPU tuning, 64-wide', NARROW_GPU],
];

/** Every (rows, width) pair of the awkward lists, two seeded-random shapes and a Qwen3 q/k norm shape (7 tokens × 5 heads of 64). */
const SHAPES = (() => {
  const r = random(500);
  const randomShapes = [0, 1].map(() => ({ rows: 1 + Math.floor(r() * 60), width: 1 + Math.floor(r() * 300) }));
  return [...ROWS.flatMap((rows) => WIDTHS.map((width) => ({ rows, width }))), ...randomShapes, { rows: 35, width: 64 }].map((s, i) => ({
    ...s,
    seed: 600 + i,
    accumulate: i % 2 === 1,
    forced: i % 2 === 0 ? FORCED[(i / 2) % FORCED.length] : undefined,
  }));
})();

describe('RMSNorm, SwiGLU and the token-only embedding against the float64 references', () => {
  it('plans lanes per row from the width (GPU) or one row per invocation (CPU)', () => {
    expect(planRmsNormRows(10, 64, GPU_LAYER_TUNING)).toEqual({ entryPoint: 'main', lanes: 16, rowsPerWorkgroup: 16, workgroups: 1 });
    expect(planRmsNormRows(100, 4096, GPU_LAYER_TUNING)).toMatchObject({ lanes: 256, rowsPerWorkgroup: 1, workgroups: 100 });
    expect(planRmsNormRows(3, 1, GPU_LAYER_TUNING)).toMatchObject({ lanes: 1, rowsPerWorkgroup: 256, workgroups: 1 });
    expect(planRmsNormRows(130, 576, CPU_LAYER_TUNING)).toEqual({ entryPoint: 'perRow', lanes: 1, rowsPerWorkgroup: 64, workgroups: 3 });
  });

  it('RMSNorm forward, dx and dγ over awkward shapes, accumulate on and off, every layout', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    for (const { rows, width, seed, accumulate, forced } of SHAPES) {
      const eps = seed % 3 === 0 ? 1e-5 : 1e-6;
      const r = random(seed);
      const x = values(r, rows * width, 2, 0.5);
      const gamma = values(r, width, 0.5, 1);
      const dy = values(r, rows * width);
      const priorDx = values(r, rows * width);
      const priorDg = values(r, width);
      const ref = rmsNormForward(x, gamma, rows, width, eps);
      const grad = rmsNormBackward(dy, x, gamma, rows, width, eps);
      const plus = (prior: Float32Array, v: Float64Array) => (accumulate ? v.map((g, k) => g + prior[k]) : v);
      for (const [tname, tuning] of [['device tuning', undefined], ...(forced ? [forced] : [])] as [string, LayerTuning | undefined][]) {
        const b = {
          x: buffer(device, x, 'x'),
          gamma: buffer(device, gamma, 'γ'),
          y: createStorageBuffer(device, rows * width * 4, 'y'),
          rstd: createStorageBuffer(device, rows * 4, 'rstd'),
          dy: buffer(device, dy, 'dy'),
          dx: buffer(device, priorDx, 'dx'),
          dgamma: buffer(device, priorDg, 'dγ'),
        };
        const shape = { rows, width, accumulate };
        await run(device, 'rmsnorm', (enc) => {
          encodeRmsNormForward(device, enc, b, { rows, width, eps }, tuning);
          encodeRmsNormBackward(device, enc, b, shape, tuning);
          encodeRmsNormParamGrad(device, enc, b, shape, tuning);
        });
        const [y, rstd, dx, dgamma] = await Promise.all([
          readFloat32(device, b.y, rows * width),
          readFloat32(device, b.rstd, rows),
          readFloat32(device, b.dx, rows * width),
          readFloat32(device, b.dgamma, width),
        ]);
        const tag = `(N=${rows}, E=${width}, accumulate ${accumulate}, ${tname})`;
        failures.push(
          ...compare(`rmsNormForward y ${tag}`, y, ref.y, TOL.rmsNormForward),
          ...compare(`rmsNormForward rstd ${tag}`, rstd, ref.rstd, TOL.rmsNormForward),
          ...compare(`rmsNormBackward dx ${tag}`, dx, plus(priorDx, grad.dx), TOL.rmsNormBackward),
          ...compare(`rmsNormParamGrad dγ ${tag}`, dgamma, plus(priorDg, grad.dgamma), TOL.rmsNormParamGrad),
        );
        Object.values(b).forEach((buf) => buf.destroy());
      }
    }
    expect(failures).toEqual([]);
  });

  it('RMSNorm with no rows: dγ cleared (or kept when accumulating), nothing else written', async () => {
    const device = await testDevice();
    const dgamma = buffer(device, Float32Array.of(1, 2, 3), 'dγ');
    const kept = buffer(device, Float32Array.of(1, 2, 3), 'dγ kept');
    const empty = createStorageBuffer(device, 16, 'empty');
    await run(device, 'rmsnorm empty', (enc) => {
      encodeRmsNormParamGrad(device, enc, { dy: empty, x: empty, rstd: empty, dgamma }, { rows: 0, width: 3, accumulate: false });
      encodeRmsNormParamGrad(device, enc, { dy: empty, x: empty, rstd: empty, dgamma: kept }, { rows: 0, width: 3, accumulate: true });
    });
    expect([...(await readFloat32(device, dgamma, 3))]).toEqual([0, 0, 0]);
    expect([...(await readFloat32(device, kept, 3))]).toEqual([1, 2, 3]);
    [dgamma, kept, empty].forEach((buf) => buf.destroy());
  });

  it('SwiGLU forward and backward over awkward lengths and huge gates (finite, tails exact)', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    // Both tails of σ, where exp underflows (|g| ≳ 88, 104) and f32's extremes.
    const special = [0, -0, 1e-3, -1e-3, -1.28, 10, -10, 20, -20, 40, -40, 87, -87, 90, -90, 110, -110, 1e4, -1e4, 3e38, -3e38];
    const lengths = [1, 3, 63, 65, 257, 7 * 200 + 1];
    for (const [i, n] of lengths.entries()) {
      const tuning = i % 2 === 1 ? (i % 4 === 1 ? GPU_LAYER_TUNING : CPU_LAYER_TUNING) : undefined;
      const r = random(700 + i);
      const gate = values(r, n, 4);
      if (n >= special.length) gate.set(special);
      const up = values(r, n, 2);
      const dy = values(r, n);
      const far = n >= special.length ? special.indexOf(1e4) : -1; // gates ±1e4, ±3e38 from here
      if (far >= 0) {
        // |up|, |dy| < 1 there, so that y = g·up and dup = dy·g stay inside f32's range.
        up.set([0.75, -0.5, 0.75, -0.5], far);
        dy.set([-0.5, 0.25, -0.5, 0.25], far);
      }
      const b = {
        gate: buffer(device, gate, 'gate'),
        up: buffer(device, up, 'up'),
        y: createStorageBuffer(device, n * 4, 'y'),
        dy: buffer(device, dy, 'dy'),
        // Stale values: the backward overwrites both.
        dgate: buffer(device, values(r, n), 'dgate'),
        dup: buffer(device, values(r, n), 'dup'),
      };
      await run(device, 'swiglu', (enc) => {
        encodeSwigluForward(device, enc, b, n, tuning);
        encodeSwigluBackward(device, enc, b, { count: n }, tuning);
      });
      const [y, dgate, dup] = await Promise.all([readFloat32(device, b.y, n), readFloat32(device, b.dgate, n), readFloat32(device, b.dup, n)]);
      const refY = swigluForward(gate, up);
      const grad = swigluBackward(gate, up, dy);
      const tag = `(n=${n}${tuning ? `, ${tuning === GPU_LAYER_TUNING ? 'GPU' : 'CPU'} tuning` : ''})`;
      // Per element, scale max(1, |ref|): huge outputs (g = 3e38) are compared relatively.
      for (let k = 0; k < n; k++) {
        const at = `${tag} at gate=${gate[k]}`;
        failures.push(
          ...compare(`swigluForward y ${at}`, y.subarray(k, k + 1), [refY[k]], TOL.swigluForward),
          ...compare(`swigluBackward dgate ${at}`, dgate.subarray(k, k + 1), [grad.dgate[k]], TOL.swigluBackward),
          ...compare(`swigluBackward dup ${at}`, dup.subarray(k, k + 1), [grad.dup[k]], TOL.swigluBackward),
        );
      }
      expect([...y, ...dgate, ...dup].every(Number.isFinite)).toBe(true);
      if (far >= 0) {
        // g = ±1e4, ±3e38: σ is exactly 1 or 0, so y = g·up or 0 and dgate = dy·up or 0, exactly
        // (one f32 rounding of each product; +0 folds −0 into 0).
        const k4 = [far, far + 1, far + 2, far + 3];
        expect(k4.map((k) => y[k] + 0)).toEqual(k4.map((k) => (gate[k] > 0 ? Math.fround(gate[k] * up[k]) : 0)));
        expect(k4.map((k) => dgate[k] + 0)).toEqual(k4.map((k) => (gate[k] > 0 ? Math.fround(dy[k] * up[k]) : 0)));
      }
      Object.values(b).forEach((buf) => buf.destroy());
    }
    expect(failures).toEqual([]);
  });

  it('token-only embedding: x = wte[token], dwte accumulated, no position pass', async () => {
    const device = await testDevice();
    const failures: string[] = [];
    const vocab = 13;
    for (const [i, { rows, width }] of [
      { rows: 1, width: 1 },
      { rows: 7, width: 33 },
      { rows: 130, width: 64 },
    ].entries()) {
      const tuning = i === 1 ? GPU_LAYER_TUNING : undefined;
      const r = random(800 + i);
      const tokens = Uint32Array.from({ length: rows }, () => Math.floor(r() * Math.min(vocab, 1 + rows / 3)));
      tokens[rows - 1] = vocab - 1; // the last row of the table
      const wte = values(r, vocab * width);
      const dx = values(r, rows * width);
      const prior = values(r, vocab * width);
      const b = { tokens: buffer(device, tokens, 'tokens'), wte: buffer(device, wte, 'wte'), x: createStorageBuffer(device, rows * width * 4, 'x'), dx: buffer(device, dx, 'dx'), dwte: buffer(device, prior, 'dwte') };
      const backward = createEmbeddingBackward(device, tokens, null, { vocabSize: vocab }, tuning);
      expect(backward.uniquePositions).toBe(0);
      await run(device, 'token embedding', (enc) => {
        encodeEmbeddingForward(device, enc, b, { rows, width, vocabSize: vocab }, tuning);
        backward.encode(enc, b, width);
      });
      const [x, dwte] = await Promise.all([readFloat32(device, b.x, rows * width), readFloat32(device, b.dwte, vocab * width)]);
      const grad = embeddingBackward(tokens, null, dx, vocab, 0, width);
      const tag = `(N=${rows}, E=${width}${tuning ? ', GPU tuning' : ''})`;
      failures.push(
        ...compare(`embeddingCopy x ${tag}`, x, embeddingForward(tokens, null, wte, null, width), TOL.embeddingCopy),
        ...compare(`embeddingBackward dwte ${tag}`, dwte, grad.dwte.map((g, k) => g + prior[k]), TOL.embeddingBackward),
      );
      backward.destroy();
      Object.values(b).forEach((buf) => buf.destroy());
    }
    expect(failures).toEqual([]);
  });

  it('token-only embedding: an id past the table gives a NaN row; positions and wpe go together', async () => {
    const device = await testDevice();
    const width = 3;
    const tokens = buffer(device, Uint32Array.from([1, 7]), 'tokens');
    const wte = buffer(device, Float32Array.from({ length: 4 * width }, (_, k) => k), 'wte');
    const x = createStorageBuffer(device, 2 * width * 4, 'x');
    await run(device, 'token embedding out of range', (enc) => encodeEmbeddingForward(device, enc, { tokens, wte, x }, { rows: 2, width, vocabSize: 4 }));
    const got = await readFloat32(device, x, 2 * width);
    expect([...got.subarray(0, width)]).toEqual([3, 4, 5]);
    expect([...got.subarray(width)].every(Number.isNaN)).toBe(true);
    const enc = device.createCommandEncoder();
    expect(() => encodeEmbeddingForward(device, enc, { tokens, wte, x, positions: tokens }, { rows: 2, width, vocabSize: 4 })).toThrow(/positions without wpe/);
    expect(() => encodeEmbeddingForward(device, enc, { tokens, wte, x, wpe: wte }, { rows: 2, width, vocabSize: 4 })).toThrow(/wpe without positions/);
    const backward = createEmbeddingBackward(device, Uint32Array.from([1, 2]), null, { vocabSize: 4 });
    expect(() => backward.encode(enc, { dx: x, dwte: wte, dwpe: tokens }, width)).toThrow(/created without positions/);
    expect(() => createEmbeddingBackward(device, Uint32Array.from([1, 2]), Uint32Array.from([0, 1]), { vocabSize: 4 })).toThrow(/nPositions/);
    enc.finish();
    backward.destroy();
    [tokens, wte, x].forEach((buf) => buf.destroy());
  });

  it('refuses aliased outputs and undersized buffers', async () => {
    const device = await testDevice();
    const a = createStorageBuffer(device, 64, 'a');
    const c = createStorageBuffer(device, 64, 'c');
    const d = createStorageBuffer(device, 64, 'd');
    const enc = device.createCommandEncoder();
    expect(() => encodeSwigluForward(device, enc, { gate: a, up: c, y: a }, 4)).toThrow(/same buffer/);
    expect(() => encodeSwigluBackward(device, enc, { gate: a, up: c, dy: d, dgate: c, dup: d }, { count: 4 })).toThrow(/same buffer/);
    expect(() => encodeSwigluForward(device, enc, { gate: a, up: c, y: d }, 17)).toThrow(/needs 68/);
    expect(() => encodeRmsNormForward(device, enc, { x: a, gamma: c, y: a, rstd: d }, { rows: 2, width: 4, eps: 1e-6 })).toThrow(/same buffer/);
    expect(() => encodeRmsNormBackward(device, enc, { dy: a, x: c, rstd: d, gamma: d, dx: a }, { rows: 2, width: 4, accumulate: false })).toThrow(/same buffer/);
    expect(() => encodeRmsNormParamGrad(device, enc, { dy: a, x: c, rstd: d, dgamma: d }, { rows: 2, width: 4, accumulate: true })).toThrow(/same buffer/);
    const small = createStorageBuffer(device, 16, 'small');
    expect(() => encodeRmsNormForward(device, enc, { x: a, gamma: c, y: d, rstd: small }, { rows: 8, width: 1, eps: 1e-6 })).toThrow(/rstd holds 16 bytes, needs 32/);
    enc.finish();
    [a, c, d, small].forEach((buf) => buf.destroy());
  });
});
