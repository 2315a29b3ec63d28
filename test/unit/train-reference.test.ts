/**
 * The float64 training reference (test/reference/gpt2-training.ts) checked against what it must
 * agree with: its logits against the existing GPT-2 forward, every parameter gradient and every
 * loss's ∂L/∂logits against finite differences, the reverse KL against the divergence kernels'
 * reference. CPU only.
 *
 * Finite differences: the five-point central stencil
 *   f'(x) ≈ (f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)) / 12h,  h = 1e-3,
 * has truncation error h⁴·f⁽⁵⁾/30 ≈ 1e-13 and rounding error ≈ 1.5·ε_machine·|f|/h ≈ 1e-12 for
 * losses of O(1–10) whose derivatives are O(1), so the absolute error of a finite difference is
 * ~1e-12 — far below the simple two-point stencil's (~1e-10 at h = 1e-5). The bound used:
 * |g − fd| ≤ 1e-6 · max(|g|, 1e-4); gradients smaller than 1e-4 are held to 1e-10 absolute.
 */
import { describe, expect, it } from 'vitest';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { gpt2ParamSpecs, randomGpt2Params, seededRandom } from '../../workers/models/gpt2/params';
import { Gpt2Reference } from '../reference/gpt2';
import { referenceDivergences } from '../../workers/kernels/divergence/reference';
import {
  crossEntropy,
  geluNewDerivative,
  gpt2ForwardBackward,
  gpt2Logits,
  logSoftmax,
  nextTokenTargets,
  policyGradient,
  reverseKL,
  type LogitLoss,
  type SequenceLoss,
  type TrainSequence,
} from '../reference/gpt2-training';

const CONFIG: Gpt2Config = {
  modelType: 'gpt2', nLayer: 2, nHead: 2, nEmbd: 8, nInner: 32, nPositions: 8, vocabSize: 11,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};
const V = CONFIG.vocabSize;

/** Two sequences; the second at explicit, shifted positions (as a packed or continued row would be). */
const SEQUENCES: TrainSequence[] = [
  { tokens: [3, 7, 1, 10, 4] },
  { tokens: [9, 0, 5], positions: [2, 3, 4] },
];

const H = 1e-3;
const REL_BOUND = 1e-6;
const FLOOR = 1e-4;

/** Five-point central difference of f at x[i] (x is restored afterwards). */
function finiteDifference(f: () => number, x: Float64Array, i: number, h = H): number {
  const x0 = x[i];
  const at = (d: number) => {
    x[i] = x0 + d;
    const y = f();
    x[i] = x0;
    return y;
  };
  return (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h);
}

const relativeError = (g: number, fd: number) => Math.abs(g - fd) / Math.max(Math.abs(g), FLOOR);

const randomRows = (rng: ReturnType<typeof seededRandom>, T: number, scale: number) =>
  Array.from({ length: T }, () => Float64Array.from({ length: V }, () => scale * rng.normal()));

describe('GPT-2 training reference (float64 forward + backward)', () => {
  const params32 = randomGpt2Params(CONFIG, { seed: 11, scheme: 'test' });
  const params = new Map([...params32].map(([name, data]) => [name, Float64Array.from(data)]));
  const rng = seededRandom(23);
  const tau = 0.8;
  // Sequence 0 trains on the full-vocabulary reverse KL, sequence 1 on cross-entropy: both of the
  // logits' rows get non-zero gradients at every vocabulary entry, so every path is exercised.
  const teacher = randomRows(rng, SEQUENCES[0].tokens.length, 2).map((z) => logSoftmax(z, tau));
  const klWeights = [1, 0.5, 0, 2, 0.25];
  const ceTargets = nextTokenTargets(SEQUENCES[1].tokens);
  const ceWeights = [0.7, 1.3, 0];
  const lossOf: SequenceLoss = (sequence, logits): LogitLoss =>
    sequence === 0
      ? reverseKL(logits, { teacherLogprobs: teacher, weights: klWeights, temperature: tau })
      : crossEntropy(logits, { targets: ceTargets, weights: ceWeights });
  const totalLoss = () => SEQUENCES.reduce((sum, seq, i) => sum + lossOf(i, gpt2Logits(CONFIG, params, seq)).loss, 0);

  it('gives the logits of the existing GPT-2 forward (Gpt2Reference), explicit positions included', () => {
    const reference = new Gpt2Reference(CONFIG, params32);
    const { logits } = gpt2ForwardBackward(CONFIG, params32, SEQUENCES, (_, z) => ({ loss: 0, dLogits: z.map(() => new Float64Array(V)) }));
    let maxDiff = 0;
    let scale = 0;
    SEQUENCES.forEach((seq, i) => {
      const expected = reference.forward(seq.tokens, reference.emptyCache(), seq.positions);
      expect(logits[i].length).toBe(seq.tokens.length);
      expected.forEach((row, t) => row.forEach((z, v) => {
        maxDiff = Math.max(maxDiff, Math.abs(logits[i][t][v] - z));
        scale = Math.max(scale, Math.abs(z));
      }));
    });
    // Same float64 operations in the same order: equal to rounding (in practice bit for bit).
    expect(maxDiff).toBeLessThan(1e-12);
    expect(scale).toBeGreaterThan(1); // not a comparison of zeros
  });

  it('gelu_new derivative matches finite differences', () => {
    const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    for (const x of [-4, -1.3, -0.2, 0, 0.5, 1, 2.7]) {
      const fd = (gelu(x - 2 * H) - 8 * gelu(x - H) + 8 * gelu(x + H) - gelu(x + 2 * H)) / (12 * H);
      expect(Math.abs(geluNewDerivative(x) - fd)).toBeLessThan(1e-12);
    }
  });

  it('every parameter gradient matches central finite differences of the loss', () => {
    const result = gpt2ForwardBackward(CONFIG, params, SEQUENCES, lossOf);
    expect(result.loss).toBeCloseTo(totalLoss(), 12);
    const specs = gpt2ParamSpecs(CONFIG);
    expect([...result.grads.keys()]).toEqual(specs.map((s) => s.name));
    // All entries of these; a handful of random entries of the others.
    const exhaustive = new Set([
      'transformer.wte.weight', // tied: embedding + LM head contributions
      'transformer.wpe.weight', // rows 5..7 unused by both sequences: gradient exactly 0
      'transformer.ln_f.weight',
      'transformer.h.0.attn.c_attn.bias', // q, k and v parts
      'transformer.h.1.ln_1.weight',
      'transformer.h.1.mlp.c_proj.bias',
    ]);
    const pick = seededRandom(99);
    let worst = { rel: 0, name: '', index: -1, g: 0, fd: 0 };
    let checked = 0;
    const perTensor: string[] = [];
    for (const spec of specs) {
      const x = params.get(spec.name)!;
      const g = result.grads.get(spec.name)!;
      expect(g.length).toBe(x.length);
      const indices = exhaustive.has(spec.name) ? [...x.keys()] : Array.from({ length: 6 }, () => Math.floor(pick.uniform() * x.length));
      let tensorWorst = 0;
      let tensorScale = 0;
      for (const i of indices) {
        const fd = finiteDifference(totalLoss, x, i);
        const rel = relativeError(g[i], fd);
        checked++;
        tensorWorst = Math.max(tensorWorst, rel);
        tensorScale = Math.max(tensorScale, Math.abs(g[i]));
        if (rel > worst.rel) worst = { rel, name: spec.name, index: i, g: g[i], fd };
      }
      perTensor.push(`${spec.name}: max rel ${tensorWorst.toExponential(2)} (max |g| ${tensorScale.toExponential(2)})`);
      // A gradient that is zero everywhere would pass trivially: every tensor's must be visible.
      expect(tensorScale, spec.name).toBeGreaterThan(1e-3);
    }
    console.log(`[train-reference] ${checked} parameter entries; worst ${worst.name}[${worst.index}] g=${worst.g} fd=${worst.fd} rel=${worst.rel.toExponential(2)}\n  ${perTensor.join('\n  ')}`);
    expect(worst.rel).toBeLessThanOrEqual(REL_BOUND);
    // Softmax is shift-invariant and a key bias adds q_i·b_k to every score of query i alike: its
    // gradient is 0 analytically (rounding-level here), while the query and value biases' are not.
    const E = CONFIG.nEmbd;
    for (let l = 0; l < CONFIG.nLayer; l++) {
      const b = result.grads.get(`transformer.h.${l}.attn.c_attn.bias`)!;
      expect(Math.max(...b.subarray(E, 2 * E).map(Math.abs))).toBeLessThan(1e-13);
      expect(Math.max(...b.subarray(0, E).map(Math.abs))).toBeGreaterThan(1e-3);
      expect(Math.max(...b.subarray(2 * E).map(Math.abs))).toBeGreaterThan(1e-3);
    }
    // Unused position rows get exactly nothing.
    const wpeGrad = result.grads.get('transformer.wpe.weight')!;
    expect(wpeGrad.subarray(5 * CONFIG.nEmbd).every((v) => v === 0)).toBe(true);
  });

  it('sums over sequences: the gradient of two sequences is the sum of each one alone', () => {
    const both = gpt2ForwardBackward(CONFIG, params, SEQUENCES, lossOf);
    const first = gpt2ForwardBackward(CONFIG, params, [SEQUENCES[0]], lossOf);
    const second = gpt2ForwardBackward(CONFIG, params, [SEQUENCES[1]], (_, z) => lossOf(1, z));
    expect(both.loss).toBeCloseTo(first.loss + second.loss, 13);
    for (const [name, g] of both.grads) {
      const a = first.grads.get(name)!;
      const b = second.grads.get(name)!;
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i] - a[i] - b[i])).toBeLessThan(1e-13);
    }
  });
});

describe('training losses: dL/dlogits against finite differences', () => {
  const rng = seededRandom(7);
  const T = 6;
  const logits = randomRows(rng, T, 2.5);
  const targets = [4, 0, 10, 7, 2, -1]; // the last position has nothing to predict: weight 0
  const weights = [1, 0.5, 2, 0, 1.5, 0];

  /** Worst relative error of dLogits against a five-point difference of `loss` in every logit. */
  function worstLogitError(loss: (z: Float64Array[]) => LogitLoss, z: Float64Array[] = logits): number {
    const { dLogits } = loss(z);
    let worst = 0;
    for (let t = 0; t < T; t++) {
      for (let v = 0; v < V; v++) {
        const fd = finiteDifference(() => loss(z).loss, z[t], v);
        worst = Math.max(worst, relativeError(dLogits[t][v], fd));
      }
      if (weights[t] === 0) expect(dLogits[t].every((d) => d === 0), `position ${t} has weight 0`).toBe(true);
    }
    return worst;
  }

  it('crossEntropy: loss is −Σ w·log p(target), gradient w·(p − onehot)/τ', () => {
    for (const temperature of [1, 0.7]) {
      const ce = (z: Float64Array[]) => crossEntropy(z, { targets, weights, temperature });
      let expected = 0;
      for (let t = 0; t < T; t++) if (weights[t] !== 0) expected -= weights[t] * logSoftmax(logits[t], temperature)[targets[t]];
      expect(ce(logits).loss).toBeCloseTo(expected, 13);
      const err = worstLogitError(ce);
      console.log(`[train-reference] crossEntropy τ=${temperature}: max rel error ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(REL_BOUND);
    }
  });

  it('nextTokenTargets: logits at t are scored against tokens[t+1]', () => {
    expect(nextTokenTargets([5, 6, 7])).toEqual([6, 7, -1]);
  });

  it('policyGradient without clipping (ε = 0): loss −Σ w·ρ·A, gradient through ρ everywhere', () => {
    const temperature = 0.9;
    const advantages = [0.8, -1.1, 0.3, 2, -0.4, 0];
    const oldLogprobs = logits.map((z, t) => (targets[t] >= 0 ? logSoftmax(z, temperature)[targets[t]] + 0.6 * rng.normal() : 0));
    const pg = (z: Float64Array[]) => policyGradient(z, { targets, weights, oldLogprobs, advantages, temperature });
    const out = pg(logits);
    let expected = 0;
    for (let t = 0; t < T; t++) {
      if (weights[t] === 0) continue;
      const rho = Math.exp(logSoftmax(logits[t], temperature)[targets[t]] - oldLogprobs[t]);
      expect(out.ratio[t]).toBeCloseTo(rho, 14);
      expected -= weights[t] * rho * advantages[t];
    }
    expect(out.loss).toBeCloseTo(expected, 13);
    expect([...out.clipped]).toEqual([0, 0, 0, 0, 0, 0]);
    const err = worstLogitError(pg);
    console.log(`[train-reference] policyGradient ε=0: max rel error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(REL_BOUND);
  });

  it('policyGradient with clipping (ε = 0.2): no gradient exactly where the clipped term is the minimum', () => {
    const temperature = 1.2;
    const eps = 0.2;
    // ρ chosen per position by setting old = log p(y) − log ρ; each case at least 0.05 from a kink.
    //   ρ 1.5, A > 0: clipped (1.2·A < 1.5·A)      ρ 0.5, A < 0: clipped (0.8·A < 0.5·A)
    //   ρ 1.05, A > 0: inside the range              ρ 1.6, A < 0: unclipped (1.6·A < 1.2·A)
    //   ρ 0.6, A > 0: unclipped (0.6·A < 0.8·A)     last: weight 0
    const rhos = [1.5, 0.5, 1.05, 1.6, 0.6, 1];
    const advantages = [1, -0.7, 0.4, -1.2, 0.8, 5];
    const w = [1, 0.5, 2, 1, 1.5, 0];
    const oldLogprobs = logits.map((z, t) => (targets[t] >= 0 ? logSoftmax(z, temperature)[targets[t]] - Math.log(rhos[t]) : 0));
    const pg = (z: Float64Array[]) => policyGradient(z, { targets, weights: w, oldLogprobs, advantages, clipEpsilon: eps, temperature });
    const out = pg(logits);
    expect([...out.clipped]).toEqual([1, 1, 0, 0, 0, 0]);
    for (let t = 0; t < 5; t++) expect(out.ratio[t]).toBeCloseTo(rhos[t], 12);
    const clip = (r: number) => Math.min(Math.max(r, 1 - eps), 1 + eps);
    const expected = -[0, 1, 2, 3, 4].reduce((s, t) => s + w[t] * Math.min(rhos[t] * advantages[t], clip(rhos[t]) * advantages[t]), 0);
    expect(out.loss).toBeCloseTo(expected, 12);
    expect(out.dLogits[0].every((d) => d === 0) && out.dLogits[1].every((d) => d === 0)).toBe(true);
    expect(out.dLogits[3].some((d) => d !== 0)).toBe(true);
    let worst = 0;
    for (let t = 0; t < T; t++) {
      for (let v = 0; v < V; v++) {
        // Finite differences move ρ by ~1e-3, far from the kinks: each position stays on its side.
        const fd = finiteDifference(() => pg(logits).loss, logits[t], v);
        worst = Math.max(worst, relativeError(out.dLogits[t][v], fd));
      }
    }
    console.log(`[train-reference] policyGradient ε=0.2 (2 clipped, 3 not): max rel error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(REL_BOUND);
  });

  it('reverseKL: gradient p(s − q − KL)/τ; KL and gradient equal the divergence kernels\' reference', () => {
    const temperature = 0.75;
    // f32-representable logits so the divergence reference (which reads f32) sees the same values.
    const student = logits.map((row) => row.map(Math.fround));
    const teacherLogits = randomRows(rng, T, 2.5).map((row) => row.map(Math.fround));
    const teacherLogprobs = teacherLogits.map((z) => logSoftmax(z, temperature));
    const kl = (z: Float64Array[]) => reverseKL(z, { teacherLogprobs, weights, temperature });
    const out = kl(student);
    const divergence = referenceDivergences({
      student: Float32Array.from(student.flatMap((r) => [...r])),
      teacher: Float32Array.from(teacherLogits.flatMap((r) => [...r])),
      tokens: new Uint32Array(T),
      positions: T,
      vocab: V,
      temperature,
      gradient: true,
    });
    let loss = 0;
    for (let t = 0; t < T; t++) {
      if (weights[t] === 0) {
        expect(out.kl[t]).toBe(0);
        continue;
      }
      expect(Math.abs(out.kl[t] - divergence.fields.reverseKL[t])).toBeLessThan(1e-13);
      for (let v = 0; v < V; v++) expect(Math.abs(out.dLogits[t][v] - weights[t] * divergence.gradient![t * V + v])).toBeLessThan(1e-13);
      loss += weights[t] * out.kl[t];
    }
    expect(out.loss).toBeCloseTo(loss, 14);
    const err = worstLogitError(kl, student);
    console.log(`[train-reference] reverseKL τ=${temperature}: max rel error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(REL_BOUND);
  });

  it('rejects a scored position without a valid target, and mismatched lengths', () => {
    expect(() => crossEntropy(logits, { targets, weights: [1, 1, 1, 1, 1, 1] })).toThrow(/position 5 has weight ≠ 0 but target -1/);
    expect(() => crossEntropy(logits, { targets: [1, 2], weights })).toThrow(/targets has 2 entries for 6 positions/);
    expect(() => policyGradient(logits, { targets, weights, oldLogprobs: [], advantages: weights })).toThrow(/oldLogprobs has 0 entries/);
  });
});
