/**
 * The knobs of a distillation run, their defaults and their validation: plain data and plain
 * checks with no GPU, so the page (which shows the same sentences before a run starts) can import
 * them without pulling in the engine.
 */

import { OBJECTIVES, type ObjectiveName } from '../contract/run';

export { OBJECTIVES, type ObjectiveName };

export interface DistillOptions {
  objective: ObjectiveName;
  /** Prompts per step (B) and completions per prompt (G). */
  batchPrompts: number;
  groupSize: number;
  lr: number;
  warmupSteps: number;
  /** Steps of the run (for the learning-rate schedule). */
  totalSteps: number;
  schedule: 'constant' | 'linear' | 'cosine';
  /** 0: full fine-tune; r > 0: LoRA adapters of rank r. */
  loraRank: number;
  /** KL coefficient λ and discount γ of the OPD advantages. */
  klCoef: number;
  discount: number;
  /** PPO-style clip of ρ; 0 for none. */
  clipEpsilon: number;
  /** Sampling temperature (also the temperature of every log-prob and KL). */
  temperature: number;
  maxTokens: number;
  /** Held-out prompts evaluated at eval steps. */
  evalPrompts: number;
  seed: number;
  maxGradNorm: number;
  weightDecay: number;
}

export const DEFAULT_DISTILL: DistillOptions = {
  objective: 'opd-sampled', batchPrompts: 8, groupSize: 4, lr: 1e-3, warmupSteps: 0, totalSteps: 100, schedule: 'constant',
  loraRank: 0, klCoef: 1, discount: 0, clipEpsilon: 0.2, temperature: 1, maxTokens: 8, evalPrompts: 64, seed: 0, maxGradNorm: 1, weightDecay: 0,
};

export class DistillError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DistillError';
  }
}

export function validateOptions(o: DistillOptions): void {
  const bad = (what: string) => {
    throw new DistillError(what);
  };
  if (!OBJECTIVES.includes(o.objective)) bad(`objective must be one of ${OBJECTIVES.join(', ')}; got ${String(o.objective)}`);
  for (const [name, v] of [['batchPrompts', o.batchPrompts], ['groupSize', o.groupSize], ['maxTokens', o.maxTokens], ['totalSteps', o.totalSteps]] as const) {
    if (!Number.isInteger(v) || v < 1) bad(`${name} must be a positive integer; got ${v}`);
  }
  if (!(o.lr > 0 && o.lr < 1)) bad(`the learning rate must lie in (0, 1); got ${o.lr}`);
  if (!(o.temperature > 0)) bad(`the temperature must be > 0; got ${o.temperature}`);
  if (!(o.discount >= 0 && o.discount <= 1)) bad(`the discount γ must lie in [0, 1]; got ${o.discount}`);
  if (!(o.klCoef >= 0 && Number.isFinite(o.klCoef))) bad(`the KL coefficient λ must be a finite number ≥ 0; got ${o.klCoef}`);
  if (!(o.clipEpsilon >= 0)) bad(`the clip ε must be ≥ 0; got ${o.clipEpsilon}`);
  if (!Number.isInteger(o.loraRank) || o.loraRank < 0) bad(`the LoRA rank must be 0 (full fine-tune) or a positive integer; got ${o.loraRank}`);
  if (!Number.isInteger(o.seed)) bad(`the seed must be an integer; got ${o.seed}`);
  if (o.objective === 'rl' && o.groupSize < 2) bad('rl needs a group of at least 2 completions per prompt for its group-mean baseline');
}

