/**
 * The options of one DistillRun: the knobs of the schema (workers/contract/knobs.ts) that the
 * run itself uses, with max tokens resolved to a number of tokens, and the optimizer's fixed
 * settings. Their defaults and their check come from the schema, so a value the panel or the CLI
 * refuses is refused here with the same sentence.
 */
import { OBJECTIVES, type ObjectiveName } from '../contract/run';
import { DEFAULT_SETUP, groupProblem, KNOB_BY_NAME, knobProblem, type TrainSetup } from '../contract/knobs';

export { OBJECTIVES, type ObjectiveName };

/** The knobs a run reads (the rest, task and cadence, belong to the run loop). */
export const RUN_KNOBS = [
  'objective', 'batchPrompts', 'groupSize', 'lr', 'warmupSteps', 'totalSteps', 'schedule', 'loraRank', 'klCoef', 'discount', 'clipEpsilon',
  'topK', 'topkDirection', 'jsdBeta', 'gkdLambda',
  'temperature', 'maxTokens', 'evalPrompts', 'probes', 'seed',
] as const satisfies readonly (keyof TrainSetup)[];

export type DistillOptions = Pick<TrainSetup, (typeof RUN_KNOBS)[number]> & {
  /** Global-norm clip of the gradient, and AdamW's weight decay: not knobs, fixed for every run. */
  maxGradNorm: number;
  weightDecay: number;
};

export const DEFAULT_DISTILL: DistillOptions = {
  ...(Object.fromEntries(RUN_KNOBS.map((k) => [k, DEFAULT_SETUP[k]])) as Pick<TrainSetup, (typeof RUN_KNOBS)[number]>),
  // The schema's 0 ("what the task's answers need") is resolved before a run is created
  // (distillOptions); a run created without maxTokens samples 8.
  maxTokens: 8,
  maxGradNorm: 1,
  weightDecay: 0,
};

export class DistillError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DistillError';
  }
}

export function validateOptions(o: DistillOptions): void {
  for (const name of RUN_KNOBS) {
    const problem = knobProblem(KNOB_BY_NAME[name], o[name]);
    if (problem) throw new DistillError(problem);
  }
  if (o.maxTokens < 1) throw new DistillError(`A run samples at least 1 new token per completion; got max tokens ${o.maxTokens}.`);
  const problem = groupProblem(o);
  if (problem) throw new DistillError(problem);
}
