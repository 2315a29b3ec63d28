import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { join } from 'node:path';
import { configureOrt } from '../../workers/ort/runtime';
import { readModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { DistillRun, discounted, type DistillOptions, type EvalMetrics, type StepMetrics } from '../../workers/distill/run';
import { builtInTask, keptTaskOf } from '../../workers/tasks/registry';
import { SELF_DISTILL } from '../../workers/contract/presets';
import { cliDriverEnv } from './cli-driver';
import { expectSameNextStep, SHIPPED, shippedAdditionPair } from './shipped-runs';

// Mesa's lavapipe when it is installed and no driver was chosen (cli-driver.ts, as the CLI tests'
// `opd-lab train` runs get), else SwiftShader; set before this process first loads Dawn. The runs
// here gave the same numbers on both (with the opd tests' earlier lr 1e-3 and 4 prompts a step:
// 1.6496 → 1.4460 opd-sampled, → 1.4266 opd-full; 1.1995 → 0.8423 self-distill), and this file
// took 16 s on lavapipe against 341-475 s on SwiftShader with the 2 cores busy. At the opd tests'
// present settings lavapipe gives 1.6496 → 1.3227 and → 1.2925, as `opd-lab train` does (the
// file: 20-28 s; not rerun on SwiftShader). DistillRun on SwiftShader is what distill-chat.test.ts,
// memory-run.test.ts (its set-up) and the e2e Distill runs (Chromium's SwiftShader) exercise.
Object.assign(process.env, cliDriverEnv());

/** The shipped student and teacher (models/, built by `npm run build:models`). */
const setUp = shippedAdditionPair;

const base = (over: Partial<DistillOptions>): Partial<DistillOptions> => ({ batchPrompts: 4, groupSize: 2, lr: 1e-3, evalPrompts: 16, seed: 3, ...over });

/**
 * The probes (the default 2): at the first evaluation the fixed completion is the greedy answer,
 * scored in a batch of its own, so its numbers must equal the greedy answer's, scored within the
 * 16-prompt evaluation batch (other padding, other rows); later the fixed text stays while the
 * greedy answer is the evaluation's own example.
 */
function checkProbes(before: EvalMetrics, after: EvalMetrics): void {
  for (const e of [before, after]) {
    expect(e.probes?.map((p) => `${p.kind} ${p.probe}`)).toEqual(['fixed 0', 'fixed 1', 'greedy 0', 'greedy 1']);
    for (const p of e.probes!) {
      expect(p.tokens.length).toBeGreaterThan(0);
      for (const t of p.tokens) expect(Number.isFinite(t.reverseKL) && t.reverseKL >= -1e-6 && Number.isFinite(t.sampledKL)).toBe(true);
    }
    e.probes!.filter((p) => p.kind === 'greedy').forEach((p, i) => {
      expect(p.prompt).toBe(e.examples[i].prompt);
      expect(p.completion).toBe(e.examples[i].completion);
      expect(p.correct).toBe(e.examples[i].correct);
    });
  }
  for (const i of [0, 1]) {
    const [fixed, greedy] = [before.probes![i], before.probes![i + 2]];
    expect(fixed.completion).toBe(greedy.completion);
    fixed.tokens.forEach((t, j) => {
      expect(t.text).toBe(greedy.tokens[j].text);
      expect(Math.abs(t.reverseKL - greedy.tokens[j].reverseKL)).toBeLessThan(1e-5);
      expect(Math.abs(t.sampledKL - greedy.tokens[j].sampledKL)).toBeLessThan(1e-4);
    });
    // The fixed completion is the first evaluation's, whatever the student writes now.
    expect(after.probes![i].completion).toBe(fixed.completion);
    expect(after.probes![i].tokens.map((t) => t.text)).toEqual(fixed.tokens.map((t) => t.text));
  }
  // The student changed, so its penalties on the fixed text did.
  expect(after.probes![0].tokens.some((t, j) => Math.abs(t.reverseKL - before.probes![0].tokens[j].reverseKL) > 1e-4)).toBe(true);
}

describe('the distillation loop', () => {
  it('discounts advantages over completion positions only', () => {
    expect(discounted([1, 2, 3, 4], [0, 1, 1, 0], 0)).toEqual([0, 2, 3, 0]);
    expect(discounted([1, 2, 3, 4], [0, 1, 1, 0], 0.5)).toEqual([0, 3.5, 3, 0]);
  });

  // The fall each objective must reach: about half the smallest of seeds 0-7 (measured with
  // `opd-lab train` on lavapipe at these settings: lr 5e-4, 8 prompts × 2 completions, 8 steps,
  // 16 eval prompts; the held-out reverse KL starts at 1.6496 for every seed):
  //   opd-sampled: 17.0 16.5 12.3 19.8 10.2 10.1 15.4 10.4 % (seeds 0-7; smallest 10.1 %)
  //   opd-full:    22.5 21.9 15.9 21.6 18.6 21.2 23.6 18.7 % (seeds 0-7; smallest 15.9 %)
  // At the old lr 1e-3 with 4 prompts a step (another engineer's measurement) the fall swung with
  // the seed: opd-sampled from a 12.3 % fall to a 24.6 % rise, opd-full 4.4 %, a rise and 2.1 % on
  // seeds 2, 5, 7. lr 2e-3 (8 prompts) or 3e-3 (4 prompts) made the KL rise on seeds 0-1 by
  // 30-174 %, and lr 3e-4 with 4 prompts fell only 2.2 % on seed 5; likely because Adam's first
  // steps move each weight by about lr whatever the gradient's size, a smaller step on a larger
  // batch is what makes 8 steps dependable.
  const fall = { 'opd-sampled': 0.05, 'opd-full': 0.08 } as const;
  /**
   * The step's diagnostics: the loss (a per-token mean, weights 1/N) lies between its per-token
   * min and max; masses and overlap are shares, at k = 16 (the top-k knob's default). Their exact
   * values are checked against the float64 reference in divergence-topk.test.ts.
   */
  const checkDiagnostics = (m: StepMetrics) => {
    const slack = 1e-6 * Math.max(1, Math.abs(m.loss));
    expect(m.lossMin! - slack).toBeLessThanOrEqual(m.loss);
    expect(m.loss).toBeLessThanOrEqual(m.lossMax! + slack);
    expect(m.topkK).toBe(16);
    expect(m.teacherTopkMass!).toBeGreaterThan(0);
    expect(m.teacherTopkMass!).toBeLessThanOrEqual(1 + 1e-5);
    expect(m.studentTopkMass!).toBeGreaterThan(0);
    expect(m.studentTopkMass!).toBeLessThanOrEqual(1 + 1e-5);
    expect(m.topkOverlap!).toBeGreaterThan(0);
    expect(m.topkOverlap!).toBeLessThanOrEqual(1);
  };
  for (const objective of ['opd-sampled', 'opd-full'] as const) {
    it(`${objective}: a few steps lower the student's reverse KL to the teacher on a fixed eval batch`, async () => {
      const { device, student, teacher, task, maxTokens } = await setUp();
      const run = await DistillRun.create(device, { student, teacher, task, options: base({ objective, maxTokens, lr: 5e-4, batchPrompts: 8 }) });
      try {
        const before = await run.evaluate();
        const steps = [];
        for (let i = 0; i < 8; i++) steps.push(await run.trainStep());
        const after = await run.evaluate();
        for (const m of steps) {
          expect(m.applied).toBe(true);
          expect(Number.isFinite(m.loss) && Number.isFinite(m.gradNorm) && Number.isFinite(m.reverseKL)).toBe(true);
          expect(m.tokensSampled).toBeGreaterThan(0);
          expect(m.flops.teacherScoring).toBeGreaterThan(0);
          checkDiagnostics(m);
        }
        // On-policy: the first step's ratios are 1 (sampler and trainer agree).
        expect(Math.abs(steps[0].meanRatio - 1)).toBeLessThan(1e-3);
        console.log(`${objective}: eval reverse KL ${before.reverseKL.toFixed(4)} → ${after.reverseKL.toFixed(4)}`);
        // Deterministic for a seed on one adapter; seed 3 (base) falls 19.8 % (opd-sampled) and 21.6 % (opd-full).
        expect(after.reverseKL).toBeLessThan(before.reverseKL * (1 - fall[objective]));
        if (objective === 'opd-full') checkProbes(before, after);
      } finally {
        await run.release();
      }
    });
  }

  for (const objective of ['sft', 'rl'] as const) {
    it(`${objective}: runs and logs its metrics`, async () => {
      const { device, student, teacher, task, maxTokens } = await setUp();
      const run = await DistillRun.create(device, { student, teacher, task, options: base({ objective, maxTokens }) });
      try {
        const m = await run.trainStep();
        expect(m.objective).toBe(objective);
        expect(m.step).toBe(1);
        expect(Number.isFinite(m.loss) && Number.isFinite(m.gradNorm)).toBe(true);
        expect(m.reward).toBeGreaterThanOrEqual(0);
        expect(m.flops.training).toBeGreaterThan(0);
        checkDiagnostics(m);
        if (objective === 'sft') expect(m.flops.teacherScoring).toBeGreaterThan(0); // the teacher sampled
        else expect(m.flops.studentSampling).toBeGreaterThan(0);
      } finally {
        await run.release();
      }
    });
  }

  it('a run resumed from its checkpoint continues identically', async () => {
    const { device, student, teacher, task, maxTokens } = await setUp();
    const options = base({ objective: 'opd-sampled', maxTokens });
    const a = await DistillRun.create(device, { student, teacher, task, options });
    const b = await DistillRun.create(device, { student, teacher, task, options });
    try {
      for (let i = 0; i < 2; i++) {
        await a.trainStep();
        await b.trainStep();
      }
      const checkpoint = await b.checkpoint();
      await b.release();
      const c = await DistillRun.create(device, { student, teacher, task, options, checkpoint });
      try {
        expect(c.step).toBe(2);
        // The probes' fixed completions travel in the checkpoint's run state.
        const [ea, ec] = [await a.evaluate(), await c.evaluate()];
        expect(ec.probes!.map((p) => p.completion)).toEqual(ea.probes!.map((p) => p.completion));
        await expectSameNextStep(a, c);
      } finally {
        await c.release();
      }
    } finally {
      await a.release();
    }
  });

  it('self-distillation preset: distilling recovery-student on addition from its own earlier checkpoint lowers its addition KL and reports subtraction beside it', { timeout: 300_000 }, async () => {
    const device = await testDevice();
    configureOrt({ numThreads: 1 });
    const student = await readModelFolder(await dirSource(join(SHIPPED, SELF_DISTILL.student)), { requireWeights: true });
    const teacher = await readModelFolder(await dirSource(join(SHIPPED, SELF_DISTILL.teacher)));
    const { task, maxTokens } = builtInTask('addition', student.rawConfig);
    const keptTask = keptTaskOf(student.rawConfig);
    expect(keptTask?.task.name).toBe('subtraction');
    // The preset's own objective, learning rate and batch; fewer completions, steps and eval prompts.
    const { objective, lr, batchPrompts } = SELF_DISTILL.setup;
    const run = await DistillRun.create(device, { student, teacher, task, keptTask, options: base({ objective, lr, batchPrompts, groupSize: 2, maxTokens }) });
    try {
      const before = await run.evaluate();
      for (let i = 0; i < 8; i++) expect((await run.trainStep()).applied).toBe(true);
      const after = await run.evaluate();
      console.log(`self-distill: addition ${before.accuracy} → ${after.accuracy}, reverse KL ${before.reverseKL.toFixed(4)} → ${after.reverseKL.toFixed(4)}; subtraction ${before.kept?.accuracy} → ${after.kept?.accuracy}`);
      // Seeds 0-7 through `opd-lab train --preset self-distill --group 2 --steps 8 --eval-prompts 16`
      // (lavapipe): 1.1995 falls 32.5 37.9 30.0 29.8 42.7 35.0 41.8 43.8 %, so 5 % is far from the edge.
      expect(after.reverseKL).toBeLessThan(before.reverseKL * 0.95);
      for (const e of [before, after]) {
        expect(e.kept).toMatchObject({ task: 'subtraction', prompts: 16 });
        expect(e.kept!.examples[0].prompt).toMatch(/^Q: [ \d]+-[ \d]+= A: $/);
      }
      // The student was fine-tuned to subtraction; its kept accuracy starts high (the recipe's figure, on 16 prompts).
      expect(before.kept!.accuracy).toBeGreaterThan(0.5);
    } finally {
      await run.release();
    }
  });

  it('a kept task whose prompts the student cannot write is refused before any GPU work', async () => {
    const { device, student, teacher, task, maxTokens } = await setUp();
    await expect(DistillRun.create(device, { student, teacher, task, keptTask: builtInTask('subtraction'), options: base({ maxTokens }) })).rejects.toThrow(
      /the subtraction task cannot run on .*addition-student: its tokenizer has no token for some characters of "Q: .*-.*= A: "/,
    );
  });
});
