/**
 * A distillation run as the page and the engine exchange it: the setup a person chose, the
 * metrics of each step and of each held-out evaluation, and where the run stands.
 */

/** The training objectives, in the order the panel lists them (workers/distill/objectives.ts defines each). */
export const OBJECTIVES = ['opd-sampled', 'opd-full', 'sft', 'rl', 'topk', 'opd-k3', 'jsd', 'gkd'] as const;
export type ObjectiveName = (typeof OBJECTIVES)[number];

/** The built-in tasks (workers/tasks/registry.ts builds them): the CLI's --task, the Distill panel's list. */
export const TASK_NAMES = ['addition', 'subtraction', 'worked-addition'] as const;

/** A run's setup: one field per knob of the schema in knobs.ts, which gives each its default and range. */
export type { TrainSetup } from './knobs';

export interface FlopCount {
  studentSampling: number;
  teacherScoring: number;
  training: number;
}

export interface StepMetrics {
  step: number;
  objective: ObjectiveName;
  /** Whose samples the step trained on (gkd draws it per step; sft: the teacher; the others: the student). */
  sampler?: 'student' | 'teacher';
  applied: boolean;
  problem?: string;
  /** Per completion token, averaged over the step's tokens (computed before the update). */
  sampledKL: number;
  reverseKL: number;
  studentEntropy: number;
  meanRatio: number;
  ratioStd: number;
  loss: number;
  /**
   * The smallest and largest per-token loss ℓ_t over the step's completion tokens, the step's loss
   * being Σ_t w_t·ℓ_t (w_t = 1/N, N its completion tokens). ℓ_t is the objective's loss at one
   * token before that weight: opd-full the exact reverse KL(student‖teacher) at t; opd-sampled and
   * rl −min(ρ_t·A_t, clip(ρ_t, 1±ε)·A_t) (A_t the advantage, ρ_t = π_θ(y_t)/π_old(y_t));
   * sft −log p(y_t); the distillation-kernel objectives their kernel's loss at t. Absent in runs
   * recorded before these fields existed.
   */
  lossMin?: number;
  lossMax?: number;
  gradNorm: number;
  lr: number;
  /**
   * How far the student agrees with the teacher about the best tokens, averaged over the step's
   * completion positions before the update (both distributions at the run's temperature), with
   * k = topkK (the run's top-k knob, at most 20): teacherTopkMass is the teacher's probability
   * mass on its own k most likely tokens, studentTopkMass the student's mass on those same
   * tokens, topkOverlap |top-k(teacher) ∩ top-k(student)| / k (ties go to the smaller token id).
   * Absent in runs recorded before these fields existed.
   */
  topkK?: number;
  teacherTopkMass?: number;
  studentTopkMass?: number;
  topkOverlap?: number;
  /**
   * Mean verifier reward of the step's completions (every objective; the rl objective trains on
   * it); absent on prompts without a verifier (a prompt set).
   */
  reward?: number;
  tokensSampled: number;
  flops: FlopCount & { total: number };
  wallMs: number;
}

/** One answer of an evaluation: prompt, the student's answer and, with a verifier, right or wrong (and why not). */
export interface EvalExample {
  prompt: string;
  completion: string;
  correct?: boolean;
  reason?: string;
}

/** One token of a probe's heatmap: its text and the teacher's penalty on it. */
export interface ProbeToken {
  text: string;
  /** Exact reverse KL of the student's distribution at this position against the teacher's. */
  reverseKL: number;
  /** log π_student(token) − log π_teacher(token). */
  sampledKL: number;
}

/**
 * A probe prompt's completion scored token by token at one evaluation: 'fixed' is the student's
 * greedy answer at the run's first evaluation, the same text at every evaluation (its penalties
 * fade as the student comes to agree with the teacher); 'greedy' is the student's greedy answer at
 * this evaluation (its text changes as the student learns).
 */
export interface ProbeHeatmap {
  /** Which probe prompt (0-based: the i-th held-out prompt). */
  probe: number;
  kind: 'fixed' | 'greedy';
  prompt: string;
  completion: string;
  tokens: ProbeToken[];
  meanReverseKL: number;
  /** With a verifier: whether this completion is right. */
  correct?: boolean;
}

/**
 * A routed prompt set's held-out evaluation (a run whose prompts come from several sets, each with
 * its own teacher): the student's greedy answers to that set's held-out prompts, their accuracy
 * where the set has a verifier, and their reverse KL and sampled KL against the set's own teacher.
 */
export interface RoutedEval {
  /** The route's name, its task's and its teacher's. */
  label: string;
  task: string;
  teacher: string;
  prompts: number;
  accuracy?: number;
  correct?: number;
  reverseKL: number;
  sampledKL: number;
  examples: EvalExample[];
}

export interface EvalMetrics {
  step: number;
  /** Held-out accuracy and answers right, where the prompts have a verifier (a built-in task); absent on a prompt set. */
  accuracy?: number;
  correct?: number;
  prompts: number;
  /** Mean exact reverse KL per token of the student's greedy answers, scored by the teacher. */
  reverseKL: number;
  /** Mean sampled KL per token of the same answers: log π_student(y_t) − log π_teacher(y_t) of each token written. */
  sampledKL?: number;
  flopsTotal: number;
  /** A few examples for people: prompt, the student's answer, right or wrong where there is a verifier (and its reason when wrong). */
  examples: EvalExample[];
  /**
   * The kept task (a run created with `keptTask`, e.g. the self-distillation preset): the
   * student's greedy held-out accuracy on the skill it must not lose while it is distilled.
   */
  kept?: { task: string; accuracy: number; correct: number; prompts: number; examples: { prompt: string; completion: string; correct: boolean; reason?: string }[] };
  /** Each routed prompt set (a run created with `routes`), in the order given: absent without routes. */
  routed?: RoutedEval[];
  /** The probe prompts' heatmaps (the `probes` knob; absent when it is 0). */
  probes?: ProbeHeatmap[];
}

/**
 * What a run exports: the trained student as a Hugging Face folder (a LoRA run's merged weights),
 * the checkpoint (one safetensors file to resume from), or a LoRA run's adapter as PEFT saves it.
 */
export type TrainExportKind = 'student' | 'checkpoint' | 'adapter';

/** Where a run stands: `running` and `paused` hold the GPU; the other three are ends. */
export type TrainStateName = 'running' | 'paused' | 'stopped' | 'finished' | 'failed';
