/**
 * A distillation run as the page and the engine exchange it: the setup a person chose, the
 * metrics of each step and of each held-out evaluation, and where the run stands.
 */

/** The training objectives, in the order the panel lists them. */
export const OBJECTIVES = ['opd-sampled', 'opd-full', 'sft', 'rl'] as const;
export type ObjectiveName = (typeof OBJECTIVES)[number];

/** The built-in tasks (workers/tasks/registry.ts builds them): the CLI's --task, the Distill panel's list. */
export const TASK_NAMES = ['addition', 'subtraction'] as const;

export interface TrainSetup {
  /** A built-in task (workers/tasks/registry.ts). */
  task: string;
  /**
   * A second built-in task evaluated beside `task` at every evaluation and never trained on: a
   * skill the student must keep ('' for none). The self-distillation preset keeps 'subtraction'.
   */
  keepTask: string;
  objective: ObjectiveName;
  /** Prompts per step (B) and completions per prompt (G). */
  batchPrompts: number;
  groupSize: number;
  /** Peak learning rate (constant schedule, no warm-up). */
  lr: number;
  /** 0: full fine-tune; r > 0: LoRA adapters of rank r. */
  loraRank: number;
  /** KL coefficient λ and discount γ of the OPD advantages. */
  klCoef: number;
  discount: number;
  /** PPO-style clip ε of the importance ratio ρ; 0 for none. */
  clipEpsilon: number;
  temperature: number;
  /** New tokens per completion; 0: what the task's answers need. */
  maxTokens: number;
  /** Evaluate on the held-out prompts every N steps (0: only before the first step and after the last). */
  evalEvery: number;
  evalPrompts: number;
  /** Keep a checkpoint every N steps (0: only when the run ends or is stopped). */
  checkpointEvery: number;
  totalSteps: number;
  seed: number;
}

export interface FlopCount {
  studentSampling: number;
  teacherScoring: number;
  training: number;
}

export interface StepMetrics {
  step: number;
  objective: ObjectiveName;
  applied: boolean;
  problem?: string;
  /** Per completion token, averaged over the step's tokens (computed before the update). */
  sampledKL: number;
  reverseKL: number;
  studentEntropy: number;
  meanRatio: number;
  ratioStd: number;
  loss: number;
  gradNorm: number;
  lr: number;
  /** Mean verifier reward of the step's completions (every objective; the rl objective trains on it). */
  reward: number;
  tokensSampled: number;
  flops: FlopCount & { total: number };
  wallMs: number;
}

export interface EvalMetrics {
  step: number;
  accuracy: number;
  correct: number;
  prompts: number;
  /** Mean exact reverse KL per token of the student's greedy answers, scored by the teacher. */
  reverseKL: number;
  flopsTotal: number;
  /** A few examples for people: prompt, the student's answer, right or wrong (and the verifier's reason when wrong). */
  examples: { prompt: string; completion: string; correct: boolean; reason?: string }[];
  /**
   * The kept task (a run created with `keptTask`, e.g. the self-distillation preset): the
   * student's greedy held-out accuracy on the skill it must not lose while it is distilled.
   */
  kept?: { task: string; accuracy: number; correct: number; prompts: number; examples: { prompt: string; completion: string; correct: boolean; reason?: string }[] };
}

/** Where a run stands: `running` and `paused` hold the GPU; the other three are ends. */
export type TrainStateName = 'running' | 'paused' | 'stopped' | 'finished' | 'failed';
