/**
 * The objectives topk, opd-k3, jsd and gkd on the built-in addition pair: a few small steps each
 * lower the student's held-out reverse KL to the teacher, and gkd draws its sampler per step from
 * the seed (reproducibly), counting the teacher's sampling when it samples. The losses themselves
 * are checked against float64 in distill-losses.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DistillRun, type DistillOptions, type StepMetrics } from '../../workers/distill/run';
import { gkdOnPolicy, OBJECTIVE_DEFINITIONS } from '../../workers/distill/objectives';
import { cliDriverEnv } from './cli-driver';
import { shippedAdditionPair } from './shipped-runs';

// lavapipe when installed (as distill.test.ts), set before Dawn is first loaded.
Object.assign(process.env, cliDriverEnv());

const setUp = shippedAdditionPair;

/**
 * 8 steps of 8 prompts × 2 answers at lr 5e-4 (distill.test.ts's dependable setting), 12 eval
 * prompts. Measured on lavapipe, held-out reverse KL from 1.7261, % fall for seeds 0, 2, 3, 4:
 *   topk 23.9 17.2 24.4 20.0;  opd-k3 10.1 16.4 24.5 19.9;  jsd 25.1 15.5 22.5 23.0;  gkd 24.7 14.4 22.2 22.7.
 * At lr 1e-3 (seeds 1-4) opd-k3, a one-token estimator, rose on two seeds. Each test asks for about
 * half the smallest fall of its objective; the run uses seed 3.
 */
const STEPS = 8;
const FALL = { topk: 0.08, 'opd-k3': 0.05, jsd: 0.07, gkd: 0.07 } as const;
const options = (objective: DistillOptions['objective'], maxTokens: number): Partial<DistillOptions> => ({
  objective, maxTokens, batchPrompts: 8, groupSize: 2, lr: 5e-4, evalPrompts: 12, probes: 0, seed: 3, totalSteps: STEPS,
});

describe('the distillation objectives topk, opd-k3, jsd and gkd', () => {
  it('gkd draws its sampler from the seed and the step, with probability λ', () => {
    const draws = (seed: number, lambda: number) => Array.from({ length: 2000 }, (_, step) => gkdOnPolicy(seed, step, lambda));
    const share = (d: boolean[]) => d.filter(Boolean).length / d.length;
    expect(draws(0, 0.5)).toEqual(draws(0, 0.5));
    expect(draws(0, 0.5)).not.toEqual(draws(1, 0.5));
    // Binomial(2000, λ): 4 standard deviations is ±0.045 at λ = 0.5.
    expect(Math.abs(share(draws(0, 0.5)) - 0.5)).toBeLessThan(0.045);
    expect(Math.abs(share(draws(7, 0.2)) - 0.2)).toBeLessThan(0.036);
    expect(share(draws(0, 1))).toBe(1);
    expect(share(draws(0, 0))).toBe(0);
    const o = { seed: 0, gkdLambda: 0.5 } as DistillOptions;
    expect(Array.from({ length: 20 }, (_, s) => OBJECTIVE_DEFINITIONS.gkd.sampler(s, o))).toEqual(
      Array.from({ length: 20 }, (_, s) => (gkdOnPolicy(0, s, 0.5) ? 'student' : 'teacher')),
    );
  });

  for (const objective of ['topk', 'opd-k3', 'jsd', 'gkd'] as const) {
    it(`${objective}: a few steps lower the held-out reverse KL`, async () => {
      const { device, student, teacher, task, maxTokens } = await setUp();
      const run = await DistillRun.create(device, { student, teacher, task, options: options(objective, maxTokens) });
      try {
        const before = await run.evaluate();
        const steps: StepMetrics[] = [];
        for (let i = 0; i < STEPS; i++) {
          const flops = run.flops;
          const m = await run.trainStep();
          steps.push(m);
          expect(m.applied, `${objective} step ${i + 1}: ${m.problem ?? ''}`).toBe(true);
          expect(Number.isFinite(m.loss) && Number.isFinite(m.gradNorm) && m.gradNorm > 0).toBe(true);
          // The teacher's forward counts for every one of these objectives.
          expect(m.flops.teacherScoring).toBeGreaterThan(flops.teacherScoring);
          const expected = OBJECTIVE_DEFINITIONS[objective].sampler(i, run.options);
          expect(m.sampler).toBe(expected);
          // Only the step's sampler's sampling FLOPs grow.
          if (expected === 'student') expect(m.flops.studentSampling).toBeGreaterThan(flops.studentSampling);
          else expect(m.flops.studentSampling).toBe(flops.studentSampling);
        }
        // Seed 3 draws both samplers within 8 steps.
        if (objective === 'gkd') expect(new Set(steps.map((m) => m.sampler))).toEqual(new Set(['student', 'teacher']));
        const after = await run.evaluate();
        console.log(
          `${objective}: held-out reverse KL ${before.reverseKL.toFixed(4)} → ${after.reverseKL.toFixed(4)} ` +
            `(${(100 * (1 - after.reverseKL / before.reverseKL)).toFixed(1)} % down; samplers ${steps.map((m) => m.sampler).join(',')}; losses ${steps.map((m) => m.loss.toFixed(3)).join(', ')})`,
        );
        expect(after.reverseKL).toBeLessThan(before.reverseKL * (1 - FALL[objective]));
      } finally {
        await run.release();
      }
    });
  }
});
