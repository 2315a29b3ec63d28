/**
 * The Llama-family float64 training reference (test/reference/llama.ts) checked on the CPU:
 *
 * - against PyTorch (test/fixtures/hf/reference.json `training`) on llama-tied, qwen2 and qwen3:
 *   the loss of the training batch, every tensor's gradient at the sampled indices (PyTorch's
 *   flat indices mapped to the lab's [in, out] projections), its L2 norm and sum; one AdamW step
 *   in float64 (PyTorch's settings: weight decay on every tensor, no clipping) and the loss after
 *   it; LoRA (A from lora-init.safetensors, B = 0) over two steps: losses and factor gradient norms.
 * - against central finite differences of its own loss, on a tiny random model with every option
 *   the family has switched on at once (GQA, head_dim ≠ hidden/heads, q/k/v/o and MLP biases, q/k
 *   norm, untied head, llama3 rope, shifted positions) and on a tied one.
 *
 * PyTorch's "f64" run is not float64 throughout: HF's RMSNorm casts to float32 inside (also in a
 * double model) and its rotary tables are computed in float32; the agreement is ~1e-7 relative,
 * and the tolerances below say what was measured.
 */
import { describe, expect, it } from 'vitest';
import type { LlamaConfig } from '../../workers/models/llama/config';
import { llamaParamSpecs } from '../../workers/models/llama/params';
import { seededRandom } from '../../workers/random/seeded-normal';
import { crossEntropy, nextTokenTargets, type LogitLoss, type SequenceLoss, type TrainSequence } from '../reference/gpt2-training';
import { llamaForwardBackward, llamaLogits } from '../reference/llama';
import { referenceAdamW, referenceLoraGrad, referenceLoraMerge } from '../reference/optimizer';
import {
  fixtureConfig,
  fixtureLoraInit,
  fixtureParams,
  labIndex,
  peftName,
  referenceBatch,
  referenceTraining,
  specsByName,
  trainingSequences,
  TRAINED_FOLDERS,
} from './hf-fixtures';

// Tolerances (measured worst over the three models in the comments). The float64 reference is
// exact to ~1e-9 (finite differences below); what remains is PyTorch's "f64" run's float32 parts.
/** Loss of the training batch vs PyTorch float64, absolute (measured ≤ 2.7e-7). */
const LOSS_TOL = 1e-6;
/** Sampled gradient values, absolute (measured ≤ 5.9e-7; gradients are O(0.01–1)). */
const GRAD_ABS_TOL = 2e-6;
/** Gradient norms, relative (measured ≤ 1.0e-6). */
const NORM_RTOL = 5e-6;
/** Gradient sums, relative to the tensor's gradient norm (measured ≤ 2.2e-6). */
const SUM_RTOL = 1e-5;
/** Values after one AdamW step where |g| > 1e-5, absolute (measured ≤ 1.4e-11). */
const STEP_TOL = 1e-9;
/** Loss after the step, absolute (measured ≤ 6.2e-7). */
const LOSS_AFTER_TOL = 2e-6;
/** LoRA factor gradient norms, relative (measured ≤ 7.0e-7); LoRA losses use LOSS_TOL (measured ≤ 2.8e-7). */
const LORA_NORM_RTOL = 5e-6;

const sequences = trainingSequences();
const ceLoss: SequenceLoss = (i, logits) => crossEntropy(logits, { targets: nextTokenTargets(sequences[i].tokens), weights: sequences[i].weights });
const toF64 = (params: ReadonlyMap<string, ArrayLike<number>>) => new Map([...params].map(([n, d]) => [n, Float64Array.from(d)]));
const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
const norm = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((a, v) => a + v * v, 0));

describe('Llama training reference against PyTorch (reference.json training)', () => {
  it('reads the batch as PyTorch weighted it: 6 scored tokens, weights summing to 1', () => {
    const batch = referenceBatch();
    expect(sequences.map((s) => s.tokens.length)).toEqual([12, 7]);
    expect(sequences.flatMap((s) => s.weights).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(sequences.flatMap((s) => s.weights).filter((w) => w !== 0)).toHaveLength(batch.weights.flat().filter((w) => w !== 0).length);
    // The lab's positions (0, 1, … per sequence) are PyTorch's position_ids on every real token.
    sequences.forEach((s, b) => s.tokens.forEach((_, t) => expect(batch.position_ids[b][t]).toBe(t)));
  });

  it.each(TRAINED_FOLDERS)('%s: loss, every gradient, one AdamW step and the loss after it', (folder) => {
    const config = fixtureConfig(folder);
    const ref = referenceTraining(folder);
    const params = toF64(fixtureParams(folder, config));
    const specs = specsByName(config);
    const result = llamaForwardBackward(config, params, sequences, ceLoss);
    expect(Math.abs(result.loss - ref.loss_f64)).toBeLessThan(LOSS_TOL);
    expect(ref.parameters.map((p) => p.name).sort()).toEqual([...specs.keys()].sort());

    const opt = referenceBatch().optimizer;
    const worst = { grad: 0, norm: 0, sum: 0, step: 0 };
    const after = new Map<string, Float64Array>();
    for (const p of ref.parameters) {
      const spec = specs.get(p.name)!;
      const g = result.grads.get(p.name)!;
      const gNorm = norm(g);
      worst.norm = Math.max(worst.norm, relErr(gNorm, p.grad_norm_f64));
      expect(relErr(gNorm, p.grad_norm_f64), `${p.name} gradient norm`).toBeLessThan(NORM_RTOL);
      const gSum = g.reduce((a, v) => a + v, 0);
      worst.sum = Math.max(worst.sum, Math.abs(gSum - p.grad_sum_f64) / p.grad_norm_f64);
      expect(Math.abs(gSum - p.grad_sum_f64) / p.grad_norm_f64, `${p.name} gradient sum`).toBeLessThan(SUM_RTOL);
      p.indices.forEach((i, k) => {
        const at = labIndex(spec, i);
        expect(params.get(p.name)![at], `${p.name}[${i}] value`).toBe(Math.fround(p.value_before[k])); // the same float32
        const err = Math.abs(g[at] - p.grad_at_indices_f64[k]);
        worst.grad = Math.max(worst.grad, err);
        expect(err, `${p.name}[${i}] gradient`).toBeLessThan(GRAD_ABS_TOL);
      });
      // One AdamW step as torch.optim.AdamW takes it (decay on every tensor, no clipping).
      const state = { param: Float64Array.from(params.get(p.name)!), m: new Float64Array(g.length), v: new Float64Array(g.length) };
      referenceAdamW(state, g, { lr: opt.lr, step: 1, beta1: opt.betas[0], beta2: opt.betas[1], eps: opt.eps, weightDecay: opt.weight_decay, scale: 1 });
      after.set(p.name, state.param);
      p.indices.forEach((i, k) => {
        if (Math.abs(p.grad_at_indices_f64[k]) < 1e-5) return;
        const err = Math.abs(state.param[labIndex(spec, i)] - p.value_after_step_f64[k]);
        worst.step = Math.max(worst.step, err);
        expect(err, `${p.name}[${i}] after the step`).toBeLessThan(STEP_TOL);
      });
    }
    const lossAfter = llamaForwardBackward(config, after, sequences, ceLoss).loss;
    expect(Math.abs(lossAfter - ref.loss_after_adamw_step_f64)).toBeLessThan(LOSS_AFTER_TOL);
    console.log(`${folder}: |Δloss| ${Math.abs(result.loss - ref.loss_f64).toExponential(2)}, worst |Δg| ${worst.grad.toExponential(2)}, worst norm rel ${worst.norm.toExponential(2)}, worst sum rel ${worst.sum.toExponential(2)}, worst after-step ${worst.step.toExponential(2)}, |Δloss after| ${Math.abs(lossAfter - ref.loss_after_adamw_step_f64).toExponential(2)}`);
  });

  it.each(TRAINED_FOLDERS)('%s: LoRA from lora-init.safetensors, two AdamW steps: losses and factor gradient norms', (folder) => {
    const config = fixtureConfig(folder);
    const ref = referenceTraining(folder).lora;
    const base = toF64(fixtureParams(folder, config));
    const init = fixtureLoraInit(folder, config);
    const { r: rank, lora_alpha: alpha } = ref.config;
    const scale = alpha / rank;
    const opt = referenceBatch().optimizer;
    const specs = llamaParamSpecs(config).filter((s) => s.loraTarget);
    const factors = new Map(specs.flatMap((s) => {
      const f = init.get(s.name)!;
      const state = (x: Float32Array) => ({ param: Float64Array.from(x), m: new Float64Array(x.length), v: new Float64Array(x.length) });
      return [[peftName(s.name, 'A'), state(f.a)], [peftName(s.name, 'B'), state(f.b)]] as const;
    }));
    const effective = () => {
      const p = new Map<string, ArrayLike<number>>(base);
      for (const s of specs) {
        const [inDim, outDim] = s.shape;
        p.set(s.name, referenceLoraMerge(base.get(s.name)!, factors.get(peftName(s.name, 'A'))!.param, factors.get(peftName(s.name, 'B'))!.param, inDim, outDim, rank, scale));
      }
      return p;
    };
    const losses: number[] = [];
    let worst = 0;
    for (const [step, expected] of [[1, ref.grad_norms_step1], [2, ref.grad_norms_step2]] as const) {
      const result = llamaForwardBackward(config, effective(), sequences, ceLoss);
      losses.push(result.loss);
      const byName = new Map(expected.map((e) => [e.name, e]));
      expect(byName.size).toBe(factors.size);
      for (const s of specs) {
        const [inDim, outDim] = s.shape;
        const a = factors.get(peftName(s.name, 'A'))!;
        const b = factors.get(peftName(s.name, 'B'))!;
        const { dA, dB } = referenceLoraGrad(result.grads.get(s.name)!, a.param, b.param, inDim, outDim, rank, scale);
        for (const [factor, grad] of [['A', dA], ['B', dB]] as const) {
          const want = byName.get(peftName(s.name, factor))!.grad_norm_f64;
          const got = norm(grad);
          if (want === 0) {
            expect(got, `${s.name} ${factor} at step ${step}`).toBe(0); // A's gradient while B = 0
          } else {
            worst = Math.max(worst, relErr(got, want));
            expect(relErr(got, want), `${s.name} ${factor} at step ${step}`).toBeLessThan(LORA_NORM_RTOL);
          }
        }
        const o = { lr: opt.lr, step, beta1: opt.betas[0], beta2: opt.betas[1], eps: opt.eps, weightDecay: opt.weight_decay, scale: 1 };
        referenceAdamW(a, dA, o);
        referenceAdamW(b, dB, o);
      }
    }
    losses.push(llamaForwardBackward(config, effective(), sequences, ceLoss).loss);
    const expected = [ref.loss_before_f64, ref.loss_after_1_step_f64, ref.loss_after_2_steps_f64];
    losses.forEach((l, k) => expect(Math.abs(l - expected[k]), `loss after ${k} steps`).toBeLessThan(LOSS_TOL));
    console.log(`${folder} LoRA: |Δloss| ${losses.map((l, k) => Math.abs(l - expected[k]).toExponential(2)).join(', ')}, worst norm rel ${worst.toExponential(2)}`);
  });
});

// ---------------------------------------------------------------------------------------------
// Finite differences (the same stencil and bound as train-reference.test.ts for GPT-2).

const H = 1e-3;
const FLOOR = 1e-4;

function finiteDifference(f: () => number, x: Float64Array, i: number): number {
  const x0 = x[i];
  const at = (d: number) => {
    x[i] = x0 + d;
    const y = f();
    x[i] = x0;
    return y;
  };
  return (at(-2 * H) - 8 * at(-H) + 8 * at(H) - at(2 * H)) / (12 * H);
}

function tinyConfig(over: Partial<LlamaConfig>): LlamaConfig {
  return {
    modelType: 'llama', nLayer: 2, hidden: 8, nHead: 4, nKvHead: 2, headDim: 6, intermediate: 12, vocabSize: 11, nPositions: 16,
    rmsNormEps: 1e-6, tiedEmbeddings: false, qkvBias: true, outputBias: true, mlpBias: true, qkNorm: true,
    rope: { type: 'llama3', theta: 10000, factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8 },
    ...over,
  };
}

function randomParams(config: LlamaConfig, seed: number): Map<string, Float64Array> {
  const rng = seededRandom(seed);
  return new Map(llamaParamSpecs(config).map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = Float64Array.from({ length: n }, () => (s.role === 'norm-weight' ? 1 + 0.2 * rng.normal() : 0.5 * rng.normal()));
    return [s.name, data];
  }));
}

const FD_SEQUENCES: TrainSequence[] = [
  { tokens: [3, 7, 1, 10, 4, 2] },
  { tokens: [9, 0, 5, 5], positions: [6, 7, 8, 9] },
];

describe('Llama training reference against finite differences', () => {
  const cases: [string, LlamaConfig][] = [
    ['every option on (GQA, head_dim 6, biases, q/k norm, untied, llama3 rope)', tinyConfig({})],
    ['tied head, no biases, no q/k norm, default rope, MHA', tinyConfig({ tiedEmbeddings: true, qkvBias: false, outputBias: false, mlpBias: false, qkNorm: false, nKvHead: 4, headDim: 2, rope: { type: 'default', theta: 500 } })],
  ];
  it.each(cases)('%s: every tensor at sampled entries', (_, config) => {
    const params = randomParams(config, 5);
    const weights = FD_SEQUENCES.map((s) => s.tokens.map((_, t) => (t + 1 < s.tokens.length ? 0.3 + 0.1 * t : 0)));
    const lossOf: SequenceLoss = (i, logits): LogitLoss => crossEntropy(logits, { targets: nextTokenTargets(FD_SEQUENCES[i].tokens), weights: weights[i] });
    const total = () => FD_SEQUENCES.reduce((a, s, i) => a + lossOf(i, llamaLogits(config, params, s)).loss, 0);
    const result = llamaForwardBackward(config, params, FD_SEQUENCES, lossOf);
    expect(result.loss).toBeCloseTo(total(), 12);
    const pick = seededRandom(17);
    let worst = { rel: 0, name: '' };
    for (const spec of llamaParamSpecs(config)) {
      const x = params.get(spec.name)!;
      const g = result.grads.get(spec.name)!;
      const indices = [0, x.length - 1, ...Array.from({ length: 3 }, () => Math.floor(pick.uniform() * x.length))];
      let scale = 0;
      for (const i of indices) {
        const fd = finiteDifference(total, x, i);
        const rel = Math.abs(g[i] - fd) / Math.max(Math.abs(g[i]), FLOOR);
        if (rel > worst.rel) worst = { rel, name: `${spec.name}[${i}]` };
        expect(rel, `${spec.name}[${i}]: ${g[i]} vs ${fd}`).toBeLessThan(1e-6);
        scale = Math.max(scale, Math.abs(g[i]));
      }
      expect(scale, `${spec.name}: some gradient is non-zero`).toBeGreaterThan(0);
    }
    console.log(`finite differences: worst relative error ${worst.rel.toExponential(2)} at ${worst.name}`);
  });
});
