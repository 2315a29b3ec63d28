/**
 * From a run's setup (the knob schema's values, workers/contract/knobs.ts) to the options of the
 * DistillRun that carries it out. The setup's defaults and its check live with the schema; they
 * are re-exported here for the engine's code.
 */
import { DEFAULT_DISTILL, RUN_KNOBS, type DistillOptions } from './options';
import { asSentence, DEFAULT_SETUP, setupProblem, type TrainSetup } from '../contract/knobs';

export { asSentence, DEFAULT_SETUP, setupProblem, type TrainSetup };

/** The run's options for a setup; `taskMaxTokens` fills in maxTokens 0. */
export function distillOptions(s: TrainSetup, taskMaxTokens: number): DistillOptions {
  const fromSetup = Object.fromEntries(RUN_KNOBS.map((k) => [k, s[k]])) as Pick<TrainSetup, (typeof RUN_KNOBS)[number]>;
  return { ...DEFAULT_DISTILL, ...fromSetup, maxTokens: s.maxTokens === 0 ? taskMaxTokens : s.maxTokens };
}
