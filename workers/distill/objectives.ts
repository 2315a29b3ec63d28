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
 *                every token of the completion; importance-sampled policy gradient.
 */
import type { ObjectiveName } from '../contract/run';
import type { Objective } from '../train/trainer';
import type { TrainSequence } from '../train/batch';
import type { DistillOptions } from './options';

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

export interface ObjectiveDefinition {
  /** Whose completions the step trains on (its sampling FLOPs are that model's). */
  sampler: 'student' | 'teacher';
  /** Whether the teacher's forward over the samples is the method's compute (counted) or only the metrics'. */
  teacherForwardCounts: boolean;
  /** Whether it trains on the verifier's reward (prompts without a verifier cannot run it). */
  needsVerifier: boolean;
  /** The trainer's micro-batch and objective for this step. */
  train(step: ObjectiveStep): { sequences: TrainSequence[]; objective: Objective };
}

export const OBJECTIVE_DEFINITIONS: Record<ObjectiveName, ObjectiveDefinition> = {
  'opd-sampled': {
    sampler: 'student',
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, sampledKL }) => ({
      sequences: sequences.map((s, b) => ({ ...s, advantages: discounted(sampledKL[b], s.weights, o.discount).map((x) => -o.klCoef * x) })),
      objective: { kind: 'pg', temperature: o.temperature, clipEpsilon: o.clipEpsilon },
    }),
  },
  'opd-full': {
    sampler: 'student',
    teacherForwardCounts: true,
    needsVerifier: false,
    train: ({ options: o, sequences, teacher }) => ({
      sequences,
      objective: { kind: 'kl', temperature: o.temperature, teacherLogits: teacher.logits, teacherVocab: teacher.vocab },
    }),
  },
  sft: {
    sampler: 'teacher',
    teacherForwardCounts: false,
    needsVerifier: false,
    // Off-policy: the sampler's log-probs are the teacher's; cross-entropy needs none.
    train: ({ sequences }) => ({ sequences: sequences.map((s) => ({ tokens: s.tokens, weights: s.weights })), objective: { kind: 'ce', temperature: 1 } }),
  },
  rl: {
    sampler: 'student',
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
};

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
