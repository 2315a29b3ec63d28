/**
 * Ready-made experiments on the built-in models: the folders they use and the knob values they
 * set (values of the schema in knobs.ts). Plain data, shared by the Distill panel and
 * `opd-lab train --preset`.
 */
import type { TrainSetup } from './knobs';

export interface Preset {
  name: string;
  title: string;
  /** Built-in folders (models/<name>/) for each role. */
  student: string;
  teacher: string;
  /** The knobs the preset sets (the rest keep their values, or on the CLI what the command line gives). */
  setup: Partial<TrainSetup>;
}

/**
 * Self-distillation for recovery. recovery-student is recovery-teacher fine-tuned on subtraction:
 * it learned the new skill and lost most of addition. Its own checkpoint from before the
 * fine-tune is the teacher; on-policy distillation on addition prompts brings addition back,
 * and subtraction, evaluated at every evaluation and never trained on, shows what is kept.
 */
export const SELF_DISTILL: Preset = {
  name: 'self-distill',
  title: 'Self-distillation: recover addition after a subtraction fine-tune',
  student: 'recovery-student',
  teacher: 'recovery-teacher',
  // lr 3e-4: at 1e-3 addition came back as fast but subtraction fell from 87% to 64% in 40 steps
  // (opd-full; opd-sampled likewise); at 3e-4 it stayed (README, "Self-distillation").
  setup: { task: 'addition', keepTask: 'subtraction', objective: 'opd-sampled', lr: 3e-4, totalSteps: 40, evalEvery: 10, evalPrompts: 128, batchPrompts: 8, groupSize: 4 },
};

export const PRESETS: Record<string, Preset> = { [SELF_DISTILL.name]: SELF_DISTILL };
