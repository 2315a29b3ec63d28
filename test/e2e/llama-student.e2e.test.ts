/**
 * The built-in Llama-family student (models/addition-student-llama), as a person reaches it: listed
 * in the Models panel, taken with its preset in the Distill panel (the GPT-2 addition-teacher
 * teaching it) and trained with opd-sampled; then sampled from and scored against the teacher in
 * Inspect (the heatmap).
 *
 * The fall is read as a person reads it: the reverse KL of the greedy answers that the panel's
 * latest evaluation states, before the first step and after the last (the same held-out prompts),
 * and the chart's points by hovering them. The run is test/unit/llama-distill.test.ts's with half
 * its steps: 8 steps of the preset's 8 prompts × 4 completions at lr 2e-4, 128 eval prompts (16
 * steps took 77 of the file's 101 s in a fresh-clone run). Measured with `opd-lab train --preset
 * llama-student --steps 8 --batch 8 --group 4 --eval-every 0 --eval-prompts 128` over seeds 0-7:
 * 1.750 → 1.665, 1.590, 1.689, 1.667, 1.548, 1.644, 1.569, 1.584, a fall of 3.5-11.5% (seed 0:
 * 4.8%); the test asks for 1.75%, half the smallest. The panel gives the CLI's numbers (16 steps,
 * seed 0: 1.75 → 1.612 in both). A step's own reverse KL (the chart) is on that step's samples,
 * so it moves with the prompts as much as with training: it is read and checked finite, not held
 * to a fall.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';
import { modelsIndex } from '../../scripts/vite-built-in-models';
import { LLAMA_STUDENT } from '../../workers/contract/presets';

const onDisk = modelsIndex(join(import.meta.dirname, '..', '..', 'models')).models;
const student = onDisk.find((m) => m.name === LLAMA_STUDENT.student);
const teacher = onDisk.find((m) => m.name === LLAMA_STUDENT.teacher);

/** The run: the preset's objective, learning rate, batch and eval prompts; 8 steps, evaluated before the first and after the last. */
const RUN = { steps: 8, 'eval every': 0, seed: 0 };
/** The fall asked for: half the smallest of 8 seeds of this 8-step run (3.5%; see above). */
const FALL = 0.0175;
/** The run takes minutes on SwiftShader with the cores busy (8 × 32 samples, two evaluations of 128 prompts). */
const RUN_TIMEOUT = 900_000;

/** "Held-out accuracy 47.7% (61/128) at step 0; reverse KL of the greedy answers 1.75 nats per token." */
function evalShown(text: string | null): { step: number; reverseKL: number } | null {
  const m = /at step (\d+); reverse KL of the greedy answers (\S+) nats per token/.exec(text ?? '');
  return m ? { step: Number(m[1]), reverseKL: Number(m[2]) } : null;
}

const state = (page: Page) => page.getByTestId('distill-state').textContent();

/** The exact reverse KL the chart shows at its `index`-th point: hover the point, read the tooltip. */
async function reverseKlAt(page: Page, index: number): Promise<{ step: number; reverseKL: number }> {
  const chart = page.getByTestId('chart-kl');
  // The first line is the exact reverse KL (the second the sampled KL); its dots, one per step.
  await chart.locator('.recharts-line-dots').first().locator('circle').nth(index).hover({ force: true });
  const tooltip = chart.locator('.recharts-tooltip-wrapper');
  await expect.poll(() => tooltip.locator('.recharts-tooltip-label').textContent()).toMatch(/^step \d+$/);
  const step = Number(((await tooltip.locator('.recharts-tooltip-label').textContent()) ?? '').slice('step '.length));
  const items = await tooltip.locator('.recharts-tooltip-item').allTextContents();
  const line = items.find((t) => t.startsWith('exact reverse KL'));
  const value = Number(/exact reverse KL\s*:\s*(\S+)/.exec(line ?? '')?.[1]);
  return { step, reverseKL: value };
}

describe('the built-in Llama student: Models, Distill (opd-sampled, the reverse KL falls) and Inspect', () => {
  let browser: Browser;
  let lab: PageRecord;
  const baseUrl = inject('baseUrl');
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${baseUrl}#panel=models`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('models/ holds the Llama student, and the Models panel lists it with its architecture', async () => {
    expect(student, `no folder ${LLAMA_STUDENT.student} in models/ (npm run build:models -- --only llama-student)`).toBeDefined();
    expect(teacher).toBeDefined();
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    const card = page.locator(`[data-testid=builtin-model][data-name="${student!.name}"]`);
    await card.waitFor({ timeout: 30_000 });
    expect(await card.getByRole('heading').textContent()).toBe(`${student!.name} student`);
    expect(await card.getByTestId('builtin-parameters').textContent()).toBe(`llama, ${student!.parameters!.toLocaleString('en-US')} parameters`);
    expect(await card.getByTestId('builtin-accuracy').textContent()).toBe(`${(100 * student!.heldOutAccuracy!).toFixed(1)}% of 1,000 held-out prompts (greedy)`);
    await card.getByRole('button', { name: 'Use as student' }).click();
    await expect.poll(() => card.getByTestId('builtin-loaded-as').textContent().catch(() => null), { timeout: 60_000 }).toBe('✓ loaded as the student');
    // The loaded student's architecture, as the Llama family describes it.
    expect(await page.getByTestId('loaded-student-architecture').textContent()).toBe('Llama (model_type llama)');
    expect(await page.getByTestId('loaded-student-heads').textContent()).toBe('4 query heads sharing 2 key/value heads');
    expect(await page.getByTestId('loaded-student-output-head').textContent()).toBe('tied to the embedding');
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'models-llama-student');
  });

  it(`Distill: the preset loads the pair, and ${RUN.steps} steps of opd-sampled lower the reverse KL of its answers`, { timeout: RUN_TIMEOUT }, async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Distill', exact: true }).click();
    const preset = page.getByTestId(`preset-${LLAMA_STUDENT.name}`);
    await preset.waitFor({ timeout: 30_000 });
    expect(await preset.textContent()).toContain(`${student!.name} (llama, ${(100 * student!.heldOutAccuracy!).toFixed(1)}% held-out) learns from ${teacher!.name} (gpt2,`);
    await preset.getByRole('button').click();
    await expect.poll(() => page.getByTestId('student-summary').textContent(), { timeout: 60_000 }).toBe(`llama, ${student!.parameters!.toLocaleString('en-US')} parameters, vocabulary 20, trainable`);
    await expect.poll(() => page.getByTestId('teacher-summary').textContent(), { timeout: 60_000 }).toMatch(/^gpt2, [\d,]+ parameters, vocabulary 20/);
    expect(await page.getByLabel('Student model folder URL').inputValue()).toBe(`${baseUrl}models/${student!.name}/`);
    expect(await page.getByLabel('Teacher model folder URL').inputValue()).toBe(`${baseUrl}models/${teacher!.name}/`);
    const hash = new URLSearchParams((await page.evaluate(() => location.hash)).slice(1));
    expect([hash.get('objective'), hash.get('lr'), hash.get('batchPrompts'), hash.get('groupSize'), hash.get('evalPrompts')]).toEqual(
      ['opd-sampled', LLAMA_STUDENT.setup.lr, LLAMA_STUDENT.setup.batchPrompts, LLAMA_STUDENT.setup.groupSize, LLAMA_STUDENT.setup.evalPrompts].map(String),
    );

    for (const [label, v] of Object.entries(RUN)) await page.getByLabel(label, { exact: true }).fill(String(v));
    const started = performance.now();
    await page.getByRole('button', { name: 'Start' }).click();
    // The evaluation before the first step, as the panel states it while the run goes.
    const summary = page.getByTestId('eval-summary');
    await expect.poll(async () => evalShown(await summary.textContent().catch(() => null))?.step, { timeout: 300_000, interval: 250 }).toBe(0);
    const before = evalShown(await summary.textContent())!;
    await expect.poll(() => state(page), { timeout: RUN_TIMEOUT, interval: 500 }).toBe('finished');
    console.log(`llama-student e2e: ${RUN.steps} steps in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const n = LLAMA_STUDENT.setup.evalPrompts!;
    expect(await page.getByTestId('distill-message').textContent()).toMatch(new RegExp(`^Finished ${RUN.steps} steps of opd-sampled\\. Held-out accuracy \\d+\\.\\d% \\(\\d+/${n}\\)\\.$`));
    expect(await page.getByTestId('step-metrics').locator('caption').textContent()).toBe(`Step ${RUN.steps} (opd-sampled)`);
    const after = evalShown(await summary.textContent())!;
    expect(after.step).toBe(RUN.steps);
    console.log(`llama-student e2e: reverse KL of the greedy answers ${before.reverseKL} → ${after.reverseKL}`);
    expect(before.reverseKL).toBeGreaterThan(0);
    expect(after.reverseKL).toBeLessThan(before.reverseKL * (1 - FALL));

    // The chart: a point per step, each one's reverse KL in its tooltip.
    await expect.poll(() => page.locator('[data-testid=chart-kl] .recharts-line-dots').first().locator('circle').count()).toBe(RUN.steps);
    for (const i of [0, RUN.steps - 1]) {
      const p = await reverseKlAt(page, i);
      expect(p.step).toBe(i + 1);
      expect(Number.isFinite(p.reverseKL) && p.reverseKL > 0, `step ${p.step}: ${p.reverseKL}`).toBe(true);
    }
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-llama-student');
  });

  it('Inspect: the Llama student samples answers, and a sample is scored against the GPT-2 teacher (heatmap)', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/^llama, /);
    await page.getByLabel('Prompt', { exact: true }).fill('Q: 502+853= A: ');
    await page.getByRole('button', { name: 'Sample from the student' }).click();
    await expect.poll(() => page.getByTestId('sample').count(), { timeout: 120_000 }).toBe(4);
    await page.getByRole('button', { name: 'Score this' }).first().waitFor({ timeout: 120_000 });
    const items = await page.getByTestId('sample').allTextContents();
    for (const item of items) expect(item).toMatch(/\d+ tokens, (ended|hit max tokens)/);
    const sample = (await page.getByTestId('sample').first().locator('.completion').textContent()) ?? '';
    expect(sample).toMatch(/^\d+$/);
    await page.getByRole('button', { name: 'Score this' }).first().click();
    expect(await page.getByLabel('Completion to score').inputValue()).toBe(sample);
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await expect.poll(async () => (await page.getByTestId('heatmap-token').allTextContents()).join(''), { timeout: 120_000 }).toBe(sample);
    const summary = (await page.getByTestId('score-summary').textContent()) ?? '';
    expect(Number(/Mean reverse KL ([\d.]+)/.exec(summary)?.[1])).toBeGreaterThan(0);
    expect(summary).toContain(`over ${sample.length} tokens`);
    await page.getByTestId('heatmap-token').first().click();
    expect((await page.getByTestId('teacher-top').textContent())?.split(', ')).toHaveLength(5);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'inspect-llama-student');
  });
});
