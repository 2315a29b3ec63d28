import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32, withGpuErrorScope, writeBuffer } from '../../workers/gpu/buffers';
import { seededRandom } from '../../workers/models/gpt2/params';
import { CPU_OPTIMIZER_TUNING, GPU_OPTIMIZER_TUNING, optimizerTuning, type OptimizerTuning } from '../../workers/gpu/tuning';
import {
  DEFAULT_ADAMW,
  OptimizerInputError,
  createClipBuffer,
  createNormsBuffer,
  encodeAdamW,
  encodeClipScale,
  encodeLoraGrad,
  encodeLoraMerge,
  encodeSumSquares,
  learningRate,
  loraScale,
  nonFiniteMessage,
  nonFiniteTensors,
  readClip,
  weightDecayFor,
} from '../../workers/kernels/train/optimizer';
import { referenceAdamW, referenceClip, referenceLoraGrad, referenceLoraMerge, referenceSumSquares } from '../reference/optimizer';

/** float32's unit roundoff, 2^-24. */
const U = 2 ** -24;

function randomArray(n: number, rng: ReturnType<typeof seededRandom>, std = 1, mean = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = mean + std * rng.normal();
  return a;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = bits(a);
  const y = bits(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Records with `record`, submits, waits, and fails on any GPU validation error. */
async function run(device: GPUDevice, what: string, record: (encoder: GPUCommandEncoder) => void): Promise<void> {
  await withGpuErrorScope(device, what, async () => {
    const encoder = device.createCommandEncoder();
    record(encoder);
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  });
}

const TUNINGS: [string, (device: GPUDevice) => OptimizerTuning][] = [
  ['device tuning', (d) => optimizerTuning(d)],
  ['GPU tuning', () => GPU_OPTIMIZER_TUNING],
];
/** The LoRA kernels also with 3 workgroups stepping through (the path of tensors beyond 65535 workgroups). */
const LORA_TUNINGS: typeof TUNINGS = [...TUNINGS, ['3 workgroups', () => ({ ...CPU_OPTIMIZER_TUNING, maxWorkgroups: 3 })]];

describe('sum of squares and clipping (real WebGPU adapter)', () => {
  // Stage 1 adds ≤ ceil(n / (partials·WG)) squares per invocation in order, then two trees of
  // ≤ log2(WG) and the stage-2 loop: a relative error of at most about (n/(partials·WG) + 2·log2(WG)
  // + partials/WG)·u (every term is ≥ 0, so no cancellation); for 4M elements on the CPU tuning
  // that bound is ~1000·u = 6e-5, and round-to-nearest errors are a random walk far below it.
  // Stated tolerance: 2e-5 relative.
  const SIZES = [1, 3, 17, 1000, 100003, 4_000_037];
  for (const [name, tuningOf] of TUNINGS) {
    it(`Σx² of tensors of ${SIZES.join(', ')} elements matches float64 (${name})`, async () => {
      const device = await testDevice();
      const tuning = tuningOf(device);
      const rng = seededRandom(11);
      const tensors = SIZES.map((n, i) => randomArray(n, rng, 0.5 + i, 0.1));
      const inputs = tensors.map((t, i) => createStorageBuffer(device, t, `x${i}`));
      // Slots in reverse order, past slot 0, to check the slot addressing.
      const norms = createNormsBuffer(device, SIZES.length + 2);
      await run(device, 'sum squares', (enc) => {
        inputs.forEach((input, i) => encodeSumSquares(device, enc, { input, count: SIZES[i], norms, slot: SIZES.length + 1 - i }, tuning));
      });
      const got = await readFloat32(device, norms, SIZES.length + 2);
      let worst = 0;
      SIZES.forEach((_, i) => {
        const ref = referenceSumSquares(tensors[i]);
        const rel = Math.abs(got[SIZES.length + 1 - i] - ref) / ref;
        worst = Math.max(worst, rel);
        expect(rel, `size ${SIZES[i]}`).toBeLessThanOrEqual(2e-5);
      });
      expect(got[0]).toBe(0);
      console.log(`sum of squares (${name}): max relative error ${worst.toExponential(2)}`);
      inputs.forEach((b) => b.destroy());
    });
  }

  it('a NaN or ±Inf anywhere in a tensor makes its slot NaN / +Inf, whatever the size', async () => {
    const device = await testDevice();
    const rng = seededRandom(5);
    const cases: { n: number; at: number; value: number; expect: 'NaN' | 'Infinity' }[] = [
      { n: 1, at: 0, value: NaN, expect: 'NaN' },
      { n: 17, at: 16, value: Infinity, expect: 'Infinity' },
      { n: 1000, at: 3, value: -Infinity, expect: 'Infinity' },
      { n: 100003, at: 100002, value: NaN, expect: 'NaN' },
      { n: 100003, at: 50000, value: -Infinity, expect: 'Infinity' },
      // Finite elements whose squares overflow float32: the norm is not representable either.
      { n: 1000, at: 7, value: 3e19, expect: 'Infinity' },
    ];
    for (const [name, tuningOf] of TUNINGS) {
      const tuning = tuningOf(device);
      const norms = createNormsBuffer(device, cases.length);
      const inputs = cases.map((c, i) => {
        const x = randomArray(c.n, rng);
        x[c.at] = c.value;
        return createStorageBuffer(device, x, `bad${i}`);
      });
      await run(device, 'sum squares nonfinite', (enc) => inputs.forEach((input, i) => encodeSumSquares(device, enc, { input, count: cases[i].n, norms, slot: i }, tuning)));
      const got = await readFloat32(device, norms, cases.length);
      cases.forEach((c, i) => expect(Number.isNaN(got[i]) ? 'NaN' : got[i] === Infinity ? 'Infinity' : got[i], `${name}, case ${i}`).toBe(c.expect));
    }
  });

  it('clip scale: global norm, factor min(1, maxNorm/(norm + 1e-6)), finite flag and non-finite count', async () => {
    const device = await testDevice();
    const rng = seededRandom(9);
    // 300 slots: more than one pass of the workgroup's loop.
    const sums = Float32Array.from({ length: 300 }, () => Math.abs(rng.normal()) * 10);
    const norms = createStorageBuffer(device, sums, 'norms');
    const ref = referenceClip(sums, 0);
    for (const maxNorm of [0, 1, ref.norm * 0.999, ref.norm * 2, -3]) {
      const clip = createClipBuffer(device);
      await run(device, 'clip', (enc) => encodeClipScale(device, enc, { norms, count: sums.length, clip, maxNorm }));
      const got = await readClip(device, clip);
      const want = referenceClip(sums, maxNorm);
      expect(got.finite).toBe(true);
      expect(got.nonFinite).toBe(0);
      expect(Math.abs(got.norm - want.norm) / want.norm).toBeLessThan(1e-6);
      expect(Math.abs(got.scale - want.scale) / want.scale).toBeLessThan(2e-6);
      if (maxNorm <= 0 || maxNorm > ref.norm) expect(got.scale).toBe(1);
    }
    // Only the first `count` slots count.
    const clip = createClipBuffer(device);
    await run(device, 'clip prefix', (enc) => encodeClipScale(device, enc, { norms, count: 2, clip, maxNorm: 1 }));
    expect((await readClip(device, clip)).norm).toBeCloseTo(Math.sqrt(sums[0] + sums[1]), 4);
    // Non-finite slots.
    for (const [bad, count] of [[[NaN], 1], [[Infinity, NaN], 2], [[3e38, 3e38], 0]] as const) {
      const withBad = sums.slice();
      bad.forEach((x, i) => (withBad[40 + i * 100] = x));
      const badNorms = createStorageBuffer(device, withBad, 'bad norms');
      await run(device, 'clip nonfinite', (enc) => encodeClipScale(device, enc, { norms: badNorms, count: withBad.length, clip, maxNorm: 1 }));
      const got = await readClip(device, clip);
      expect(got.finite, `${bad}`).toBe(false);
      expect(got.nonFinite, `${bad}`).toBe(count);
    }
  });
});

interface AdamCase {
  name: string;
  tuning: (device: GPUDevice) => OptimizerTuning;
  maxGradNorm: number;
  weightDecay: number[];
  zeroGrad: boolean;
  expectClipping: boolean;
}

const ADAM_SIZES = [1, 3, 17, 1000, 100003];
/** Gradient scale per tensor: the 17-element one is tiny, so ε matters in its update. */
const GRAD_STD = [1, 0.3, 1e-6, 2, 0.05];
const ADAM_STEPS = 4;

describe('AdamW against the float64 reference (real WebGPU adapter)', () => {
  const cases: AdamCase[] = [
    { name: 'clipping active, weight decay on some tensors', tuning: (d) => optimizerTuning(d), maxGradNorm: 1, weightDecay: [0.1, 0, 0.1, 0.01, 0.1], zeroGrad: true, expectClipping: true },
    { name: 'clipping inactive (large maxNorm), no weight decay, GPU tuning', tuning: () => GPU_OPTIMIZER_TUNING, maxGradNorm: 1e6, weightDecay: [0, 0, 0, 0, 0], zeroGrad: false, expectClipping: false },
    { name: 'clipping disabled (maxNorm 0), weight decay on all, 7 workgroups stepping through', tuning: () => ({ ...CPU_OPTIMIZER_TUNING, maxWorkgroups: 7 }), maxGradNorm: 0, weightDecay: [0.05, 0.05, 0.05, 0.05, 0.05], zeroGrad: true, expectClipping: false },
  ];
  // Tolerances (per step, accumulated over the steps):
  //  v:  every term ≥ 0, a few roundings per step, and the clip factor's own relative error
  //      (~1e-6, from the f32 norm) squared in: |Δv| ≤ 1e-5·v.
  //  m:  may cancel: |Δm| ≤ 1e-5·m̃, m̃ the same recursion over |g·scale| (the size of the terms).
  //  p:  each step rounds p (≤ 1 ulp, 2^-23·|p|, a few times) and the update lr·m̂/(√v̂+ε) carries
  //      the relative errors of m and v (≤ 1e-5) on |update| ≤ lr·(1/√(1−β2)-ish):
  //      |Δp| ≤ steps·(4·2^-24·|p| + 1e-5·lr·ũ), ũ = max(1, |reference update|).
  for (const c of cases) {
    it(`${ADAM_STEPS} steps on tensors of ${ADAM_SIZES.join(', ')} elements: ${c.name}`, async () => {
      const device = await testDevice();
      const tuning = c.tuning(device);
      const rng = seededRandom(21);
      const hp = { ...DEFAULT_ADAMW, maxGradNorm: c.maxGradNorm };
      const init = ADAM_SIZES.map((n) => randomArray(n, rng, 0.5));
      const tensors = ADAM_SIZES.map((n, i) => ({
        param: createStorageBuffer(device, init[i], `p${i}`),
        grad: createStorageBuffer(device, n * 4, `g${i}`),
        m: createStorageBuffer(device, n * 4, `m${i}`),
        v: createStorageBuffer(device, n * 4, `v${i}`),
        count: n,
        weightDecay: c.weightDecay[i],
      }));
      const ref = init.map((p) => ({ param: Float64Array.from(p), m: new Float64Array(p.length), v: new Float64Array(p.length), mAbs: new Float64Array(p.length), uMax: new Float64Array(p.length) }));
      const norms = createNormsBuffer(device, tensors.length);
      const clip = createClipBuffer(device);
      const schedule = { lr: 0.01, warmupSteps: 2, totalSteps: ADAM_STEPS + 2, schedule: 'cosine' as const };
      let lastGrads: Float32Array[] = [];
      for (let step = 0; step < ADAM_STEPS; step++) {
        const grads = ADAM_SIZES.map((n, i) => randomArray(n, rng, GRAD_STD[i]));
        lastGrads = grads;
        grads.forEach((g, i) => writeBuffer(device, tensors[i].grad, g));
        const lr = learningRate(step, schedule);
        await run(device, 'adamw step', (enc) => {
          tensors.forEach((t, i) => encodeSumSquares(device, enc, { input: t.grad, count: t.count, norms, slot: i }, tuning));
          encodeClipScale(device, enc, { norms, count: tensors.length, clip, maxNorm: hp.maxGradNorm }, tuning);
          tensors.forEach((t) => encodeAdamW(device, enc, t, { ...hp, clip, lr, step: step + 1, zeroGrad: c.zeroGrad }, tuning));
        });
        const rc = referenceClip(grads.map(referenceSumSquares), hp.maxGradNorm);
        const gotClip = await readClip(device, clip);
        expect(gotClip.finite).toBe(true);
        expect(Math.abs(gotClip.norm - rc.norm) / rc.norm).toBeLessThan(2e-5);
        expect(Math.abs(gotClip.scale - rc.scale) / rc.scale).toBeLessThan(2e-5);
        expect(rc.scale < 1).toBe(c.expectClipping);
        ref.forEach((r, i) => {
          const before = Float64Array.from(r.param);
          referenceAdamW(r, grads[i], { lr, step: step + 1, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: c.weightDecay[i], scale: rc.scale });
          for (let j = 0; j < r.mAbs.length; j++) {
            r.mAbs[j] = hp.beta1 * r.mAbs[j] + (1 - hp.beta1) * Math.abs(grads[i][j] * rc.scale);
            r.uMax[j] = Math.max(r.uMax[j], 1, Math.abs(before[j] - r.param[j]) / lr);
          }
        });
      }
      const worst = { p: 0, m: 0, v: 0 };
      for (let i = 0; i < tensors.length; i++) {
        const t = tensors[i];
        const [p, m, v, g] = await Promise.all([t.param, t.m, t.v, t.grad].map((b) => readFloat32(device, b, t.count)));
        const r = ref[i];
        for (let j = 0; j < t.count; j++) {
          const tolP = ADAM_STEPS * (4 * U * Math.abs(r.param[j]) + 1e-5 * schedule.lr * r.uMax[j]);
          const tolM = 1e-5 * r.mAbs[j] + 1e-30;
          const tolV = 1e-5 * r.v[j] + 1e-30;
          worst.p = Math.max(worst.p, Math.abs(p[j] - r.param[j]) / tolP);
          worst.m = Math.max(worst.m, Math.abs(m[j] - r.m[j]) / tolM);
          worst.v = Math.max(worst.v, Math.abs(v[j] - r.v[j]) / tolV);
        }
        if (c.zeroGrad) expect(g.every((x) => x === 0), `grad ${i} zeroed`).toBe(true);
        else expect(sameBits(g, lastGrads[i]), `grad ${i} kept`).toBe(true);
      }
      console.log(`AdamW (${c.name}): worst error/tolerance p ${worst.p.toFixed(3)}, m ${worst.m.toFixed(3)}, v ${worst.v.toFixed(3)}`);
      expect(worst.p).toBeLessThanOrEqual(1);
      expect(worst.m).toBeLessThanOrEqual(1);
      expect(worst.v).toBeLessThanOrEqual(1);
    });
  }

  it('a NaN or Inf in one gradient skips the step: every weight and moment bit-identical, the tensors named', async () => {
    const device = await testDevice();
    const rng = seededRandom(33);
    const names = ['transformer.wte.weight', 'transformer.h.0.ln_1.bias', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.bias', 'transformer.h.0.mlp.c_fc.weight'];
    const tensors = ADAM_SIZES.map((n, i) => ({
      param: createStorageBuffer(device, randomArray(n, rng, 0.5), `p${i}`),
      grad: createStorageBuffer(device, n * 4, `g${i}`),
      m: createStorageBuffer(device, n * 4, `m${i}`),
      v: createStorageBuffer(device, n * 4, `v${i}`),
      count: n,
      weightDecay: 0.1,
    }));
    const norms = createNormsBuffer(device, tensors.length);
    const clip = createClipBuffer(device);
    const step = async (stepNumber: number, edit?: (grads: Float32Array[]) => void) => {
      const grads = ADAM_SIZES.map((n) => randomArray(n, rng));
      edit?.(grads);
      grads.forEach((g, i) => writeBuffer(device, tensors[i].grad, g));
      await run(device, 'guarded step', (enc) => {
        tensors.forEach((t, i) => encodeSumSquares(device, enc, { input: t.grad, count: t.count, norms, slot: i }));
        encodeClipScale(device, enc, { norms, count: tensors.length, clip, maxNorm: 1 });
        tensors.forEach((t) => encodeAdamW(device, enc, t, { ...DEFAULT_ADAMW, clip, lr: 1e-3, step: stepNumber, zeroGrad: true }));
      });
    };
    const snapshot = () => Promise.all(tensors.map((t) => Promise.all([t.param, t.m, t.v].map((b) => readFloat32(device, b, t.count)))));
    // Two good steps first, so the moments are not zero.
    await step(1);
    await step(2);
    const before = await snapshot();
    await step(3, (grads) => {
      grads[2][5] = NaN;
      grads[4][100002] = -Infinity;
    });
    const after = await snapshot();
    tensors.forEach((_, i) => ['param', 'm', 'v'].forEach((what, k) => expect(sameBits(after[i][k], before[i][k]), `${names[i]} ${what}`).toBe(true)));
    const state = await readClip(device, clip);
    expect(state.finite).toBe(false);
    expect(state.nonFinite).toBe(2);
    const bad = nonFiniteTensors(await readFloat32(device, norms, tensors.length), names);
    expect(bad).toEqual([
      { index: 2, name: 'transformer.h.0.attn.c_attn.weight', value: 'NaN' },
      { index: 4, name: 'transformer.h.0.mlp.c_fc.weight', value: 'Infinity' },
    ]);
    expect(nonFiniteMessage(bad)).toBe('gradient of transformer.h.0.attn.c_attn.weight is NaN; gradient of transformer.h.0.mlp.c_fc.weight is infinite');
    // zeroGrad empties the gradients even on a skipped step, so the next step starts clean.
    for (const t of tensors) expect((await readFloat32(device, t.grad, t.count)).every((x) => x === 0)).toBe(true);
    await step(3);
    expect((await readClip(device, clip)).finite).toBe(true);
    const resumed = await snapshot();
    tensors.forEach((_, i) => expect(sameBits(resumed[i][0], before[i][0]), names[i]).toBe(false));
  });

  it('names in messages, several tensors and the limit', () => {
    const names = ['a', 'b', 'c', 'd'];
    expect(nonFiniteTensors([1, 2, 3, 4], names)).toEqual([]);
    const bad = nonFiniteTensors([NaN, Infinity, NaN, NaN], names);
    expect(nonFiniteMessage(bad, 'gradient', 2)).toBe('gradient of a is NaN; gradient of b is infinite; and 2 more tensor(s)');
    expect(() => nonFiniteTensors([1], names)).toThrow(OptimizerInputError);
  });

  it('weight decay by role, input checks', async () => {
    expect(weightDecayFor('linear-weight', 0.01)).toBe(0.01);
    for (const role of ['embedding', 'norm-weight', 'norm-bias', 'linear-bias'] as const) expect(weightDecayFor(role, 0.01)).toBe(0);
    const device = await testDevice();
    const enc = device.createCommandEncoder();
    const small = createStorageBuffer(device, 64, 'small');
    const other = createStorageBuffer(device, 64, 'other');
    const clip = createClipBuffer(device);
    const t = { param: small, grad: other, m: createStorageBuffer(device, 64, 'm'), v: createStorageBuffer(device, 64, 'v'), count: 16, weightDecay: 0 };
    expect(() => encodeAdamW(device, enc, { ...t, count: 17 }, { ...DEFAULT_ADAMW, clip, lr: 1, step: 1 })).toThrow(/needs 68/);
    expect(() => encodeAdamW(device, enc, { ...t, m: small }, { ...DEFAULT_ADAMW, clip, lr: 1, step: 1 })).toThrow(/param and m are the same buffer/);
    expect(() => encodeAdamW(device, enc, t, { ...DEFAULT_ADAMW, clip, lr: 1, step: 0 })).toThrow(OptimizerInputError);
    const lora = { inDim: 4, outDim: 4, rank: 0, scale: 1 };
    expect(() => encodeLoraMerge(device, enc, { ...lora, weight: small, a: other, b: t.m, merged: t.v })).toThrow(/rank 0/);
    expect(() => encodeSumSquares(device, enc, { input: small, count: 16, norms: small, slot: 0 })).toThrow(/same buffer/);
  });
});

describe('LoRA merge and gradients (real WebGPU adapter)', () => {
  // Shapes (in, out, r): degenerate, odd, rank 64 (the maximum), more than one tile and chunk.
  const SHAPES: [number, number, number][] = [
    [1, 1, 1],
    [5, 7, 3],
    [33, 70, 8],
    [100, 45, 64],
    [130, 300, 16],
  ];
  // Float32 sums of n terms: |error| ≤ γ·Σ|terms| with γ ≈ (terms added in sequence)·u. Merge: r
  // products then + W (γ = (r + 2)·u, relative to |W| + s·Σ|A·B|). Gradients: blocks of 32 terms
  // summed in order, then the block sums in order (γ = (32 + J/32 + 2)·u, J the summed length).
  for (const [name, tuningOf] of LORA_TUNINGS) {
    it(`W + s·A·B and s·dW·Bᵀ, s·Aᵀ·dW (= and +=) on ${SHAPES.length} shapes match float64 (${name})`, async () => {
      const device = await testDevice();
      const tuning = tuningOf(device);
      const rng = seededRandom(77);
      let worstMerge = 0;
      let worstGrad = 0;
      for (const [inDim, outDim, rank] of SHAPES) {
        const scale = loraScale(16, rank);
        const w = randomArray(inDim * outDim, rng, 0.1);
        const a = randomArray(inDim * rank, rng, 0.3);
        const b = randomArray(rank * outDim, rng, 0.3);
        const dW = randomArray(inDim * outDim, rng);
        const dA0 = randomArray(inDim * rank, rng);
        const dB0 = randomArray(rank * outDim, rng);
        const buf = (x: Float32Array | number, label: string) => createStorageBuffer(device, typeof x === 'number' ? x * 4 : x, label);
        const [W, A, B, D] = [buf(w, 'W'), buf(a, 'A'), buf(b, 'B'), buf(dW, 'dW')];
        const merged = buf(inDim * outDim, 'W_eff');
        const [dA, dB, dAacc, dBacc] = [buf(inDim * rank, 'dA'), buf(rank * outDim, 'dB'), buf(dA0, 'dA acc'), buf(dB0, 'dB acc')];
        const shape = { inDim, outDim, rank, scale };
        await run(device, 'lora', (enc) => {
          encodeLoraMerge(device, enc, { ...shape, weight: W, a: A, b: B, merged }, tuning);
          encodeLoraGrad(device, enc, { ...shape, dW: D, a: A, b: B, dA, dB }, tuning);
          encodeLoraGrad(device, enc, { ...shape, dW: D, a: A, b: B, dA: dAacc, dB: dBacc, accumulate: true }, tuning);
        });
        const refMerged = referenceLoraMerge(w, a, b, inDim, outDim, rank, scale);
        const absMerged = referenceLoraMerge(w.map(Math.abs), a.map(Math.abs), b.map(Math.abs), inDim, outDim, rank, Math.abs(scale));
        const gotMerged = await readFloat32(device, merged, inDim * outDim);
        for (let j = 0; j < gotMerged.length; j++) {
          const tol = (rank + 2) * U * absMerged[j] + 1e-30;
          worstMerge = Math.max(worstMerge, Math.abs(gotMerged[j] - refMerged[j]) / tol);
        }
        const ref = referenceLoraGrad(dW, a, b, inDim, outDim, rank, scale);
        const mag = referenceLoraGrad(dW.map(Math.abs), a.map(Math.abs), b.map(Math.abs), inDim, outDim, rank, Math.abs(scale));
        const gammaA = (32 + Math.ceil(outDim / 32) + 2) * U;
        const gammaB = (32 + Math.ceil(inDim / 32) + 2) * U;
        const [gA, gB, gAacc, gBacc] = await Promise.all([
          readFloat32(device, dA, inDim * rank),
          readFloat32(device, dB, rank * outDim),
          readFloat32(device, dAacc, inDim * rank),
          readFloat32(device, dBacc, rank * outDim),
        ]);
        for (let j = 0; j < gA.length; j++) {
          worstGrad = Math.max(worstGrad, Math.abs(gA[j] - ref.dA[j]) / (gammaA * mag.dA[j] + 1e-30));
          worstGrad = Math.max(worstGrad, Math.abs(gAacc[j] - (dA0[j] + ref.dA[j])) / (gammaA * mag.dA[j] + 2 * U * Math.abs(dA0[j] + ref.dA[j]) + 1e-30));
        }
        for (let j = 0; j < gB.length; j++) {
          worstGrad = Math.max(worstGrad, Math.abs(gB[j] - ref.dB[j]) / (gammaB * mag.dB[j] + 1e-30));
          worstGrad = Math.max(worstGrad, Math.abs(gBacc[j] - (dB0[j] + ref.dB[j])) / (gammaB * mag.dB[j] + 2 * U * Math.abs(dB0[j] + ref.dB[j]) + 1e-30));
        }
        [W, A, B, D, merged, dA, dB, dAacc, dBacc].forEach((x) => x.destroy());
      }
      console.log(`LoRA (${name}): worst error/tolerance merge ${worstMerge.toFixed(3)}, grads ${worstGrad.toFixed(3)}`);
      expect(worstMerge).toBeLessThanOrEqual(1);
      expect(worstGrad).toBeLessThanOrEqual(1);
    });
  }

  it('the LoRA gradient formula agrees with central differences of L = Σ G⊙W_eff(A, B) in float64', async () => {
    const device = await testDevice();
    const rng = seededRandom(99);
    const [inDim, outDim, rank] = [6, 9, 4];
    const scale = loraScale(8, rank);
    const w = randomArray(inDim * outDim, rng);
    const a = randomArray(inDim * rank, rng);
    const b = randomArray(rank * outDim, rng);
    const G = randomArray(inDim * outDim, rng);
    const loss = (aa: ArrayLike<number>, bb: ArrayLike<number>) => {
      const weff = referenceLoraMerge(w, aa, bb, inDim, outDim, rank, scale);
      let sum = 0;
      for (let j = 0; j < weff.length; j++) sum += G[j] * weff[j];
      return sum;
    };
    const h = 1e-3;
    const fd = (x: Float32Array, which: 'a' | 'b') => {
      const base = Float64Array.from(x);
      return Float64Array.from(base, (_, j) => {
        const plus = Float64Array.from(base);
        const minus = Float64Array.from(base);
        plus[j] += h;
        minus[j] -= h;
        return which === 'a' ? (loss(plus, b) - loss(minus, b)) / (2 * h) : (loss(a, plus) - loss(a, minus)) / (2 * h);
      });
    };
    const fdA = fd(a, 'a');
    const fdB = fd(b, 'b');
    const ref = referenceLoraGrad(G, a, b, inDim, outDim, rank, scale);
    const [A, B, D] = [a, b, G].map((x, i) => createStorageBuffer(device, x, `fd${i}`));
    const dA = createStorageBuffer(device, inDim * rank * 4, 'dA');
    const dB = createStorageBuffer(device, rank * outDim * 4, 'dB');
    await run(device, 'lora fd', (enc) => encodeLoraGrad(device, enc, { inDim, outDim, rank, scale, dW: D, a: A, b: B, dA, dB }));
    const [gA, gB] = [await readFloat32(device, dA, inDim * rank), await readFloat32(device, dB, rank * outDim)];
    let worstRef = 0;
    let worstGpu = 0;
    for (const [fdv, refv, gpu] of [[fdA, ref.dA, gA], [fdB, ref.dB, gB]] as const) {
      for (let j = 0; j < fdv.length; j++) {
        // L is linear in each entry: central differences are exact up to the rounding of L (~1e-14).
        worstRef = Math.max(worstRef, Math.abs(refv[j] - fdv[j]));
        worstGpu = Math.max(worstGpu, Math.abs(gpu[j] - fdv[j]) / (1 + Math.abs(fdv[j])));
      }
    }
    console.log(`LoRA finite differences: reference max |Δ| ${worstRef.toExponential(2)}, GPU max relative ${worstGpu.toExponential(2)}`);
    expect(worstRef).toBeLessThan(1e-9);
    expect(worstGpu).toBeLessThan(1e-5);
  });
});

describe('learning-rate schedule', () => {
  const base = { lr: 1e-3, warmupSteps: 10, totalSteps: 110 };
  it('linear warm-up from 0, then constant, linear or cosine decay to lr·minLrRatio', () => {
    for (const schedule of ['constant', 'linear', 'cosine'] as const) {
      const s = { ...base, schedule };
      expect(learningRate(0, s)).toBeCloseTo(1e-4, 15);
      expect(learningRate(4, s)).toBeCloseTo(5e-4, 15);
      expect(learningRate(9, s)).toBeCloseTo(1e-3, 15);
      expect(learningRate(10, s)).toBeCloseTo(1e-3, 15);
    }
    expect(learningRate(60, { ...base, schedule: 'constant' })).toBe(1e-3);
    expect(learningRate(5000, { ...base, schedule: 'constant' })).toBe(1e-3);
    expect(learningRate(60, { ...base, schedule: 'linear' })).toBeCloseTo(5e-4, 15);
    expect(learningRate(109, { ...base, schedule: 'linear' })).toBeCloseTo(1e-5, 15);
    expect(learningRate(110, { ...base, schedule: 'linear' })).toBe(0);
    expect(learningRate(60, { ...base, schedule: 'cosine' })).toBeCloseTo(5e-4, 15);
    expect(learningRate(35, { ...base, schedule: 'cosine' })).toBeCloseTo(1e-3 * (1 + Math.SQRT1_2) / 2, 15);
    expect(learningRate(60, { ...base, schedule: 'linear', minLrRatio: 0.1 })).toBeCloseTo(5.5e-4, 15);
    expect(learningRate(60, { ...base, schedule: 'cosine', minLrRatio: 0.1 })).toBeCloseTo(5.5e-4, 15);
    expect(learningRate(500, { ...base, schedule: 'cosine', minLrRatio: 0.1 })).toBeCloseTo(1e-4, 15);
    expect(learningRate(0, { ...base, warmupSteps: 0, schedule: 'cosine' })).toBe(1e-3);
    expect(() => learningRate(-1, { ...base, schedule: 'linear' })).toThrow(OptimizerInputError);
  });
});
