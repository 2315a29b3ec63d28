/**
 * The run's objectives as a table: for each, who samples the step's completions, whether the
 * teacher's forward over them counts as the method's compute, and what the trainer trains on
 * (its micro-batch with advantages where the objective has them, and the trainer objective).
 *
 *   opd-sampled  the student samples; A_t = −λ·Σ_{u≥t} γ^{u−t} k_t with k_t = log π_old(y_t) −
 *                log π_T(y_t); importance-sampled policy gradient (optional PPO clip);
 *   opd-full     the student samples; the exact full-vocabulary reverse KL to the teacher;
 *   sft          the teacher samples (off-policy distillation); cross-entropy on its tokens;
 *   rl           the student samples; the verifier's 1/0 reward minus its group's mean reward on
 *                every token of the completion; importance-sampled policy gradient;
 *   topk         the student samples; with K_t the teacher's top-k tokens at position t (knob topK)
 *                and the k + 1 outcomes "each token of K_t" and "the tail" (every other token),
 *                P_T = (q_v for v ∈ K_t, 1 − Σ_K q_v), P_S likewise from p; the loss is
 *                KL(P_S‖P_T) (topkDirection reverse, the default) or KL(P_T‖P_S) (forward), and
 *                with g_i = ∂L/∂P_S,i, ∂L/∂z_v = p_v(g_{i(v)} − Σ_i P_S,i g_i)/τ; a bucket's mass
 *                is floored at 1e-30 inside its log, so an empty tail gives no NaN;
 *   opd-k3       the student samples; at its sampled token y, r = q(y)/p(y) and the loss is k3 =
 *                r − 1 − log r (verl's low_var_kl), gradient (1 − r)([v = y] − p_v)/τ, whose
 *                expectation under the student's sampling is the forward KL's gradient. Exact at
 *                the sampled token; one update per batch, so θ = θ_old and no ratio is needed.
 *                k1 in the reward is opd-sampled; k1 as a loss has zero expected gradient, so it
 *                is not offered;
 *   jsd          the student samples; the generalised JSD(β) over the full vocabulary (knob jsdBeta):
 *                β = 0 forward KL(q‖p), β = 1 reverse KL(p‖q), otherwise
 *                β·KL(q‖M) + (1−β)·KL(p‖M) with M = (1−β)p + βq;
 *   gkd          GKD's mix: each step, with probability λ (knob gkdLambda; drawn from the run's
 *                seed and the step) the student samples, else the teacher samples as for sft;
 *                the loss is JSD(β) on those completions (the same jsdBeta).
 * p = softmax(z/τ) is the student and q the teacher, both at the run's temperature τ; the losses
 * of topk, opd-k3 and jsd run in kernels/train/distill_loss.wgsl (its header has the same formulas).
 */
import type { ObjectiveName } from '../contract/run';
import type { Objective } from '../train/trainer';
import type { TrainSequence } from '../train/batch';
import type { DistillOptions } from './options';
import { seededRandom } from '../random/seeded-normal';

/** What a step knows when it builds the trainer's micro-batch. */
export interface ObjectiveStep {
  options: DistillOptions;
  /** Prompt + completion of each sample, completion positions weighted, the sampler's log-probs. */
  sequences: TrainSequence[];
  /** Per sequence and position: k_t (0 off the completion). */
  sampledKL: number[][];
  /** Per sample: the verifier's 1 or 0, and the index of its prompt (its group). */
  rewards: number[];
  promptIndex: number[];
  /** The teacher's logits over the same packed rows, on the GPU. */
  teacher: { logits: GPUBuffer; vocab: number };
}

export type Sampler = 'student' | 'teacher';

export interface ObjectiveDefinition {
  /** Whose completions step `step` (0-based) trains on (its sampling FLOPs are that model's). */
  sampler(step: number, options: DistillOptions): Sampler;
  /** Whether some step may sample with the teacher (its decoder must be able to). */
  teacherMaySample: boolean;
  /** Whether the teacher's forward over the samples is the method's compute (counted) or only the metrics'. */
  teacherForwardCounts: boolean;
  /** Whether it trains on the verifier's reward (prompts without a verifier cannot run it). */
  needsVerifier: boolean;
  /** The trainer's micro-batch and objective for this step. */
  train(step: ObjectiveStep): { sequences: TrainSequence[]; objective: Objective };
}

export const OBJECTIVE_DEFINITIONS: Record<ObjectiveName, ObjectiveDefinition> = {
  'opd-sampled': {
    sampler: () => 'student',
    teacherMaySample: false,
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, sampledKL }) => ({
      sequences: sequences.map((s, b) => ({ ...s, advantages: discounted(sampledKL[b], s.weights, o.discount).map((x) => -o.klCoef * x) })),
      objective: { kind: 'pg', temperature: o.temperature, clipEpsilon: o.clipEpsilon },
    }),
  },
  'opd-full': {
    sampler: () => 'student',
    teacherMaySample: false,
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, teacher }) => ({
      sequences,
      objective: { kind: 'kl', temperature: o.temperature, teacherLogits: teacher.logits, teacherVocab: teacher.vocab },
    }),
  },
  sft: {
    sampler: () => 'teacher',
    teacherMaySample: true,
    teacherForwardCounts: false,
    needsVerifier: false,
    // Off-policy: the sampler's log-probs are the teacher's; cross-entropy needs none.
    train: ({ sequences }) => ({ sequences: sequences.map((s) => ({ tokens: s.tokens, weights: s.weights })), objective: { kind: 'ce', temperature: 1 } }),
  },
  rl: {
    sampler: () => 'student',
    teacherMaySample: false,
    teacherForwardCounts: false,
    needsVerifier: true,
    train: ({ options: o, sequences, rewards, promptIndex }) => {
      const groupMean = new Map<number, number>();
      promptIndex.forEach((p, i) => groupMean.set(p, (groupMean.get(p) ?? 0) + rewards[i] / o.groupSize));
      return {
        sequences: sequences.map((s, i) => {
          const adv = rewards[i] - groupMean.get(promptIndex[i])!;
          return { ...s, advantages: s.weights.map((w) => (w !== 0 ? adv : 0)) };
        }),
        objective: { kind: 'pg', temperature: o.temperature, clipEpsilon: o.clipEpsilon },
      };
    },
  },
  topk: {
    sampler: () => 'student',
    teacherMaySample: false,
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, teacher }) => ({
      sequences,
      objective: { ...distillLoss('topk', o, teacher), topK: o.topK, direction: o.topkDirection },
    }),
  },
  'opd-k3': {
    sampler: () => 'student',
    teacherMaySample: false,
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, teacher }) => ({ sequences, objective: distillLoss('k3', o, teacher) }),
  },
  jsd: {
    sampler: () => 'student',
    teacherMaySample: false,
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, teacher }) => ({ sequences, objective: { ...distillLoss('jsd', o, teacher), beta: o.jsdBeta } }),
  },
  gkd: {
    sampler: (step, o) => (gkdOnPolicy(o.seed, step, o.gkdLambda) ? 'student' : 'teacher'),
    teacherMaySample: true,
    // On the teacher's samples its forward is still what the loss reads (JSD over the vocabulary).
    teacherForwardCounts: true,
    needsVerifier: false,
    // The sampler's log-probs (the teacher's on off-policy steps) are not read by JSD.
    train: ({ options: o, sequences, teacher }) => ({
      sequences: sequences.map((s) => ({ tokens: s.tokens, weights: s.weights })),
      objective: { ...distillLoss('jsd', o, teacher), beta: o.jsdBeta },
    }),
  },
};

function distillLoss(loss: 'k3' | 'jsd' | 'topk', o: DistillOptions, teacher: ObjectiveStep['teacher']) {
  return { kind: 'distill' as const, loss, temperature: o.temperature, teacherLogits: teacher.logits, teacherVocab: teacher.vocab };
}

/**
 * GKD's draw for step `step`: on-policy (the student samples) with probability λ. A uniform of
 * its own seeded stream per (seed, step), so a run and its resumed copy draw the same.
 */
export function gkdOnPolicy(seed: number, step: number, lambda: number): boolean {
  if (lambda >= 1) return true;
  if (lambda <= 0) return false;
  return seededRandom((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0).uniform() < lambda;
}

/** Σ_{u≥t} γ^{u−t} x_u over the weighted (completion) positions of one sequence. */
export function discounted(x: readonly number[], weights: readonly number[], gamma: number): number[] {
  const out = new Array<number>(x.length).fill(0);
  let acc = 0;
  for (let t = x.length - 1; t >= 0; t--) {
    if (weights[t] === 0) continue;
    acc = x[t] + gamma * acc;
    out[t] = acc;
  }
  return out;
}
