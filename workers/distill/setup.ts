/**
 * A distillation run as a person sets it up in the Distill panel (and as `train.start` carries
 * it): the task, the objective and every knob, with the lab's defaults and one sentence when a
 * setup cannot run. Plain data, no GPU: the page checks a setup before sending it, and the engine
 * checks it again before running it.
 */
import { DEFAULT_DISTILL, DistillError, validateOptions, type DistillOptions, type ObjectiveName } from './options';
import { TASK_NAMES, type TrainSetup } from '../contract/run';

export type { TrainSetup };

export const DEFAULT_SETUP: TrainSetup = {
  task: 'addition',
  keepTask: '',
  objective: DEFAULT_DISTILL.objective,
  batchPrompts: DEFAULT_DISTILL.batchPrompts,
  groupSize: DEFAULT_DISTILL.groupSize,
  lr: DEFAULT_DISTILL.lr,
  loraRank: DEFAULT_DISTILL.loraRank,
  klCoef: DEFAULT_DISTILL.klCoef,
  discount: DEFAULT_DISTILL.discount,
  clipEpsilon: DEFAULT_DISTILL.clipEpsilon,
  temperature: DEFAULT_DISTILL.temperature,
  maxTokens: 0,
  evalEvery: 10,
  evalPrompts: DEFAULT_DISTILL.evalPrompts,
  checkpointEvery: 10,
  totalSteps: DEFAULT_DISTILL.totalSteps,
  seed: DEFAULT_DISTILL.seed,
};

/** The numeric knobs, in the order the panel shows them. */
export const NUMERIC_KNOBS = [
  'totalSteps', 'batchPrompts', 'groupSize', 'lr', 'loraRank', 'klCoef', 'discount', 'clipEpsilon', 'temperature', 'maxTokens',
  'evalEvery', 'evalPrompts', 'checkpointEvery', 'seed',
] as const satisfies readonly (keyof TrainSetup)[];
export type NumericKnob = (typeof NUMERIC_KNOBS)[number];

/** The loop's options for a setup; `taskMaxTokens` fills in maxTokens 0. */
export function distillOptions(s: TrainSetup, taskMaxTokens: number): DistillOptions {
  return {
    ...DEFAULT_DISTILL,
    objective: s.objective,
    batchPrompts: s.batchPrompts,
    groupSize: s.groupSize,
    lr: s.lr,
    totalSteps: s.totalSteps,
    loraRank: s.loraRank,
    klCoef: s.klCoef,
    discount: s.discount,
    clipEpsilon: s.clipEpsilon,
    temperature: s.temperature,
    maxTokens: s.maxTokens === 0 ? taskMaxTokens : s.maxTokens,
    evalPrompts: s.evalPrompts,
    seed: s.seed,
  };
}

/** "the learning rate must …; got 0" → "The learning rate must …; got 0." */
export function asSentence(text: string): string {
  const t = text.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

/** Why this setup cannot run, as one sentence; null when it can. */
export function setupProblem(s: TrainSetup): string | null {
  if (!(TASK_NAMES as readonly string[]).includes(s.task)) return asSentence(`the task must be one of ${TASK_NAMES.join(', ')}; got ${String(s.task)}`);
  if (s.keepTask !== '' && !(TASK_NAMES as readonly string[]).includes(s.keepTask)) {
    return asSentence(`the task to keep must be one of ${TASK_NAMES.join(', ')}, or none; got ${String(s.keepTask)}`);
  }
  if (s.keepTask === s.task) return asSentence(`the task to keep must differ from the task trained on (both are ${s.task})`);
  const count = (name: string, v: number, min: number, max: number) =>
    !Number.isInteger(v) || v < min || v > max ? asSentence(`${name} must be a whole number from ${min} to ${max.toLocaleString('en-US')}; got ${v}`) : null;
  const problem =
    count('the number of steps', s.totalSteps, 1, 1_000_000) ??
    count('the prompts per step', s.batchPrompts, 1, 1024) ??
    count('the completions per prompt', s.groupSize, 1, 256) ??
    count('max tokens', s.maxTokens, 0, 4096) ??
    count('eval every', s.evalEvery, 0, 1_000_000) ??
    count('the held-out prompts', s.evalPrompts, 1, 100_000) ??
    count('checkpoint every', s.checkpointEvery, 0, 1_000_000);
  if (problem) return problem;
  try {
    // maxTokens 0 stands for the task's own budget, which is always valid.
    validateOptions(distillOptions(s, 1));
  } catch (e) {
    if (e instanceof DistillError) return asSentence(e.message);
    throw e;
  }
  return null;
}
