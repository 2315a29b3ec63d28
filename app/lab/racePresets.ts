/**
 * The races the Compare panel offers, as data (app/lab/race.ts runs them): the quick demo's setup
 * and the distill benchmark's race, each with its pair, knobs and per-objective learning rates.
 */
import { DEFAULT_SETUP, type TrainSetup } from '../../workers/contract/knobs';
import type { ObjectiveName } from '../../workers/contract/run';

/**
 * The race's setup besides the objective and the steps: 8 prompts × 4 answers, lr 1e-3 for every
 * objective, an evaluation on 64 held-out prompts every 5 steps, seed 0.
 */
export const RACE_SETUP: Omit<TrainSetup, 'objective' | 'totalSteps'> = {
  ...DEFAULT_SETUP,
  task: 'addition',
  keepTask: '',
  routeTask: '',
  batchPrompts: 8,
  groupSize: 4,
  lr: 1e-3,
  warmupSteps: 0,
  schedule: 'constant',
  loraRank: 0,
  evalEvery: 5,
  evalPrompts: 64,
  probes: 2,
  seed: 0,
};

export const DEFAULT_RACE_STEPS = 20;

/** The four objectives the race compares (OBJECTIVES has more: the Distill panel runs those one at a time). */
export const RACE_OBJECTIVES = ['opd-sampled', 'opd-full', 'sft', 'rl'] as const satisfies readonly ObjectiveName[];

/** A race's setup: its pair of built-in folders (null: the built-in pair), its knobs, each objective's learning rate. */
export interface RacePreset {
  label: string;
  /** One sentence on what it races. */
  about: string;
  pair: { student: string; teacher: string } | null;
  setup: Omit<TrainSetup, 'objective' | 'totalSteps'>;
  lr: Record<(typeof RACE_OBJECTIVES)[number], number>;
}

/**
 * The races the Compare panel offers: the quick demo, and the distill benchmark's race
 * (scripts/bench/distill.ts, docs/distill.json): from worked-student after SFT until it
 * flattened (models/worked-student-sft, the benchmark's phase 0), on worked-addition, 8 × 4 a
 * step, each objective at the learning rate the benchmark chose, 128 held-out prompts, seed 0.
 */
export const RACE_PRESETS = {
  demo: {
    label: 'quick demo: the built-in addition pair',
    about: 'the built-in student and teacher on the addition task',
    pair: null,
    setup: RACE_SETUP,
    lr: { 'opd-sampled': RACE_SETUP.lr, 'opd-full': RACE_SETUP.lr, sft: RACE_SETUP.lr, rl: RACE_SETUP.lr },
  },
  benchmark: {
    label: 'the distill benchmark’s race (worked addition, from the SFT-flattened student)',
    about: 'worked-student-sft (worked-student after SFT until it flattened, the benchmark’s start) against worked-teacher on worked addition, at the rates the benchmark chose (docs/distill.json)',
    pair: { student: 'worked-student-sft', teacher: 'worked-teacher' },
    setup: { ...RACE_SETUP, task: 'worked-addition', evalEvery: 1, evalPrompts: 128 },
    lr: { 'opd-sampled': 1e-4, 'opd-full': 1e-4, sft: 1e-4, rl: 1e-4 },
  },
} as const satisfies Record<string, RacePreset>;
export type RacePresetName = keyof typeof RACE_PRESETS;
