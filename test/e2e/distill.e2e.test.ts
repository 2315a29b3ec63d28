import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { curvePoints, launch, openLab, screenshot, type PageRecord } from './browser';
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { readModelFolder } from '../../workers/models/folder';
import { filesSource } from '../../workers/models/source';
import { readSafetensors } from '../../workers/models/safetensors';
import { dirSource } from '../../workers/node/fs-source';

const knob = (page: Page, label: string) => page.getByLabel(label, { exact: true });

async function setKnobs(page: Page, knobs: Record<string, number>): Promise<void> {
  for (const [label, value] of Object.entries(knobs)) await knob(page, label).fill(String(value));
}

const state = (page: Page) => page.getByTestId('distill-state').textContent();
/** The points of each line of the accuracy chart. */
const accuracyCurvePoints = (page: Page) =>
  page.locator('[data-testid=chart-accuracy] path.recharts-line-curve').evaluateAll((els) => els.map((e) => (e.getAttribute('d')?.match(/[ML]/g) ?? []).length));
const stepShown = async (page: Page) => Number(/step (\d+) \//.exec((await page.getByTestId('distill-step').textContent()) ?? '')?.[1] ?? NaN);

describe('the Distill panel: a person trains a student and watches it learn', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=distill`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('loads the addition student and teacher by URL', async () => {
    const { page } = lab;
    const models = inject('modelsUrl');
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await state(page)).toBe('no run yet');
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);
    await page.getByLabel('Student model folder URL').fill(`${models}add-student/`);
    await page.getByRole('button', { name: 'Load student' }).click();
    await page.getByTestId('student-summary').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/^gpt2, [\d,]+ parameters, vocabulary \d+, trainable$/);
    await page.getByLabel('Teacher model folder URL').fill(`${models}add-teacher/`);
    await page.getByRole('button', { name: 'Load teacher' }).click();
    await page.getByTestId('teacher-summary').waitFor({ timeout: 60_000 });
    await expect.poll(() => page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(false);
  });

  it('a bad knob shows why, and Start starts nothing', async () => {
    const { page } = lab;
    await knob(page, 'learning rate').fill('0');
    expect(await page.getByTestId('setup-problem').textContent()).toBe('The learning rate must lie in (0, 1); got 0.');
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);
    // The experiment is in the URL, bad knob included, so the link reproduces what the person sees.
    expect(new URLSearchParams((await page.evaluate(() => location.hash)).slice(1)).get('lr')).toBe('0');
    await page.getByRole('button', { name: 'Start' }).click({ force: true });
    await page.waitForTimeout(300);
    expect(await state(page)).toBe('no run yet');
    expect(await page.getByTestId('chart-kl').textContent()).toContain('No points yet');
    await screenshot(page, 'distill-bad-knob');
    await knob(page, 'learning rate').fill('0.01');
    await expect.poll(() => page.getByTestId('setup-problem').count()).toBe(0);
  });

  it('runs 3 steps of opd-sampled and shows the curves, the latest step and the eval answers', async () => {
    const { page } = lab;
    await page.getByRole('radio', { name: /^opd-sampled/ }).check();
    await setKnobs(page, { steps: 3, 'prompts per step': 2, 'completions per prompt': 2, 'eval every': 1, 'eval prompts': 8 });
    const hash = new URLSearchParams((await page.evaluate(() => location.hash)).slice(1));
    expect(Object.fromEntries(['panel', 'objective', 'totalSteps', 'batchPrompts', 'groupSize', 'evalEvery', 'evalPrompts', 'lr'].map((k) => [k, hash.get(k)]))).toEqual({
      panel: 'distill', objective: 'opd-sampled', totalSteps: '3', batchPrompts: '2', groupSize: '2', evalEvery: '1', evalPrompts: '8', lr: '0.01',
    });

    await page.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => state(page), { timeout: 150_000, interval: 250 }).toBe('finished');
    expect(await stepShown(page)).toBe(3);
    expect(await page.getByTestId('distill-message').textContent()).toMatch(/^Finished 3 steps of opd-sampled\. Held-out accuracy \d+\.\d% \(\d\/8\)\.$/);

    // Every chart has its lines drawn through its points: 3 steps, 4 evaluations (step 0 and each step).
    await expect.poll(() => curvePoints(page, 'chart-kl')).toEqual([3, 3]);
    // The charts redraw at a throttled rate: the last point may land a moment after "finished".
    await expect.poll(() => curvePoints(page, 'chart-loss')).toEqual([3]);
    await expect.poll(() => curvePoints(page, 'chart-entropy')).toEqual([3, 3]);
    await expect.poll(() => curvePoints(page, 'chart-accuracy')).toEqual([4]);
    // The top-k agreement: teacher mass, student mass and overlap, a point per step, with its label and explanation.
    await expect.poll(() => curvePoints(page, 'chart-topk')).toEqual([3, 3, 3]);
    expect(await page.getByTestId('chart-topk').locator('figcaption').textContent()).toBe("Teacher and student mass on the teacher's top-16, and overlap");
    expect(await page.getByTestId('chart-topk').textContent()).toContain('the share of those tokens also among the student');
    await page.getByTestId('chart-topk').scrollIntoViewIfNeeded();
    await screenshot(page, 'distill-topk-chart');

    // The latest step's numbers, all finite, FLOPs split by where they went.
    const table = page.getByTestId('step-metrics');
    expect(await table.locator('caption').textContent()).toBe('Step 3 (opd-sampled)');
    const rows = await table.locator('tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th')!.textContent!, tr.querySelector('td')!.textContent!]));
    const values = Object.fromEntries(rows);
    for (const key of ['loss', 'gradient norm', 'exact reverse KL (per token)', 'FLOPs: student sampling', 'FLOPs: teacher scoring', 'FLOPs: training', 'wall time of the step']) {
      expect(values[key], key).toBeDefined();
    }
    for (const [key, text] of rows) {
      const x = Number.parseFloat(text.replace(/,/g, ''));
      expect(Number.isFinite(x), `${key}: ${text}`).toBe(true);
    }
    expect(Number.parseFloat(values['FLOPs: teacher scoring'])).toBeGreaterThan(0);
    expect(values['FLOPs: total so far']).toMatch(/FLOP$/);

    // The eval's answers, each marked right or wrong.
    expect(await page.getByTestId('eval-summary').textContent()).toMatch(/^Held-out accuracy \d+\.\d% \(\d\/8\) at step 3;/);
    const examples = await page.getByTestId('eval-example').allTextContents();
    expect(examples).toHaveLength(8);
    for (const e of examples) expect(e).toMatch(/^[✓✗]Q: +\d+\+ *\d+= A: /);
    expect(await page.getByTestId('distill-checkpoint').textContent()).toMatch(/^Checkpoint of step 3 kept in the lab worker \([\d.]+ (B|KiB|MiB)\)\.$/);
    // The probes: a row per evaluation in the strip; the scrubber shows one large, with the
    // fixed completion's tokens the same text at every step and their numbers on data-*.
    const strip = page.getByTestId('probe-row');
    await expect.poll(() => strip.count()).toBe(4);
    expect(await strip.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-step')))).toEqual(['0', '1', '2', '3']);
    expect(await page.getByTestId('probe-step').textContent()).toBe('3');
    const probeTokens = async () => page.getByTestId('probe-token').evaluateAll((ts) => ts.map((t) => ({ text: t.textContent, kl: Number(t.getAttribute('data-reverse-kl')) })));
    const atLast = await probeTokens();
    expect(atLast.length).toBeGreaterThan(0);
    for (const t of atLast) expect(Number.isFinite(t.kl) && t.kl >= 0).toBe(true);
    await page.getByTestId('probe-scrubber').fill('0');
    expect(await page.getByTestId('probe-step').textContent()).toBe('0');
    const atFirst = await probeTokens();
    expect(atFirst.map((t) => t.text)).toEqual(atLast.map((t) => t.text));
    // Trained 3 steps at lr 0.01, the student's numbers on the same text moved.
    expect(atFirst.some((t, i) => Math.abs(t.kl - atLast[i].kl) > 1e-4)).toBe(true);
    await page.getByTestId('probe-card').scrollIntoViewIfNeeded();
    await screenshot(page, 'distill-probes');
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-finished');
  });

  it('downloads the trained student as a Hugging Face folder (zip) and the checkpoint', async () => {
    const { page } = lab;
    const studentButton = page.getByRole('button', { name: 'Download the student (step 3)' });
    const [studentDownload] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), studentButton.click()]);
    expect(studentDownload.suggestedFilename()).toBe('add-student-distilled-step-3.zip');
    const zip = unzipSync(new Uint8Array(readFileSync(await studentDownload.path())));
    const names = Object.keys(zip).sort();
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(names).toContain(`add-student-distilled-step-3/${f}`);
    }
    // The folder reads back as a trainable student whose weights are the run's, not the loaded ones.
    const folder = await readModelFolder(
      filesSource(names.map((n) => ({ path: n.slice('add-student-distilled-step-3/'.length), file: new Blob([zip[n] as Uint8Array<ArrayBuffer>]) })), 'exported'),
      { requireWeights: true },
    );
    const original = await readModelFolder(await dirSource(inject('addStudentDir')), { requireWeights: true });
    const wte = folder.weights!.get('transformer.wte.weight')!;
    const before = original.weights!.get('transformer.wte.weight')!;
    expect(wte.length).toBe(before.length);
    expect(wte.some((x, i) => x !== before[i])).toBe(true);
    expect(await page.getByTestId('distill-exported').textContent()).toMatch(/^Saved add-student-distilled-step-3\.zip \([\d.]+ (KiB|MiB)\): a Hugging Face folder/);

    const [ckpt] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.getByRole('button', { name: 'Download the checkpoint (step 3)' }).click()]);
    expect(ckpt.suggestedFilename()).toBe('add-student-distilled-step-3.safetensors');
    const file = readSafetensors(new Uint8Array(readFileSync(await ckpt.path())));
    expect(JSON.parse(file.metadata['opd-lab']).format).toBe('opd-lab-trainer-checkpoint');
    expect([...file.tensors.keys()]).toContain('optimizer.m.transformer.wte.weight');

    // Inspect on the trained weights: the run's student becomes the lab's student, and Inspect opens.
    await page.getByRole('button', { name: 'Inspect the trained student' }).click();
    await expect.poll(() => page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('panel')), { timeout: 60_000 }).toBe('inspect');
    await expect.poll(() => page.getByTestId('student-source').textContent(), { timeout: 60_000 }).toBe('from add-student-distilled-step-3');
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/, trainable$/);
    await screenshot(page, 'distill-inspect-trained');
    await page.getByRole('button', { name: 'Distill', exact: true }).click();
    expect(lab.errors).toEqual([]);
  });

  it('pauses, resumes and stops a longer run between steps, keeping its history', async () => {
    const { page } = lab;
    await setKnobs(page, { steps: 40, 'eval every': 4, 'eval prompts': 4 });
    await page.getByRole('button', { name: 'Start' }).click();
    // The new run replaces the old history once it runs.
    await expect.poll(() => state(page), { timeout: 60_000, interval: 100 }).toBe('running');
    await expect.poll(() => stepShown(page), { timeout: 120_000, interval: 200 }).toBeGreaterThanOrEqual(1);
    expect(await page.getByLabel('learning rate', { exact: true }).isDisabled()).toBe(true);

    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => state(page), { timeout: 60_000, interval: 100 }).toBe('paused');
    const pausedAt = await stepShown(page);
    await page.waitForTimeout(1500);
    expect(await stepShown(page)).toBe(pausedAt);
    expect(await page.getByTestId('distill-message').textContent()).toBe(`Paused after step ${pausedAt} of 40: the student keeps its weights; resume to go on.`);
    await screenshot(page, 'distill-paused');

    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => stepShown(page), { timeout: 120_000, interval: 200 }).toBeGreaterThan(pausedAt);
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(() => state(page), { timeout: 60_000, interval: 100 }).toBe('stopped');
    const stoppedAt = await stepShown(page);
    expect(stoppedAt).toBeGreaterThan(pausedAt);
    expect(stoppedAt).toBeLessThan(40);
    expect(await page.getByTestId('distill-message').textContent()).toBe(`Stopped after step ${stoppedAt} of 40; the history and the checkpoint of step ${stoppedAt} are kept.`);

    // The history stays: every step's points, the last step's table, the checkpoint of where it stopped.
    await expect.poll(() => curvePoints(page, 'chart-loss')).toEqual([stoppedAt]);
    expect(await page.getByTestId('step-metrics').locator('caption').textContent()).toBe(`Step ${stoppedAt} (opd-sampled)`);
    expect(await page.getByTestId('distill-checkpoint').textContent()).toContain(`Checkpoint of step ${stoppedAt} `);
    // …also after looking at another panel and coming back.
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    await page.getByRole('button', { name: 'Distill', exact: true }).click();
    expect(await curvePoints(page, 'chart-loss')).toEqual([stoppedAt]);
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(false);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-stopped');
  });

  it('Step: from no run a run paused after step 1, again one more step, then Resume finishes it, with its curves as a normal run', async () => {
    const { page } = lab;
    const step = page.getByRole('button', { name: 'Step', exact: true });
    await setKnobs(page, { steps: 3, 'prompts per step': 2, 'completions per prompt': 2, 'eval every': 0, 'eval prompts': 4 });
    // No run is going (the last one stopped): Step begins one, which pauses by itself after its first step.
    expect(await step.isDisabled()).toBe(false);
    await step.click();
    await expect.poll(() => state(page), { timeout: 60_000, interval: 100 }).toBe('paused');
    expect(await stepShown(page)).toBe(1);
    expect(await page.getByTestId('distill-message').textContent()).toBe('Paused after step 1 of 3: the student keeps its weights; resume to go on.');
    expect(await page.getByTestId('step-metrics').locator('caption').textContent()).toBe('Step 1 (opd-sampled)');
    // The step-0 evaluation came first, as in a normal start (eval every 0: the next is after the last step).
    expect(await page.getByTestId('eval-summary').textContent()).toMatch(/^Held-out accuracy \d+\.\d% \(\d\/4\) at step 0;/);

    // By keyboard this time: one more step, then paused again.
    await step.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => stepShown(page), { timeout: 60_000, interval: 100 }).toBe(2);
    await expect.poll(() => state(page), { timeout: 60_000, interval: 100 }).toBe('paused');
    expect(await page.getByTestId('step-metrics').locator('caption').textContent()).toBe('Step 2 (opd-sampled)');
    await expect.poll(() => curvePoints(page, 'chart-loss')).toEqual([2]);
    await screenshot(page, 'distill-stepped');

    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => state(page), { timeout: 60_000, interval: 100 }).toBe('finished');
    expect(await stepShown(page)).toBe(3);
    await expect.poll(() => curvePoints(page, 'chart-loss')).toEqual([3]);
    await expect.poll(() => curvePoints(page, 'chart-accuracy')).toEqual([2]);
    // A finished run has no next step.
    expect(await step.isDisabled()).toBe(true);
    expect(lab.errors).toEqual([]);
  });

  it('a run the worker refuses (tokenizers differ) says why and leaves the last run’s history in place', async () => {
    const { page } = lab;
    const before = await curvePoints(page, 'chart-loss');
    const stateBefore = await state(page);
    await page.getByLabel('Teacher model folder URL').fill(`${inject('modelsUrl')}teacher/`);
    await page.getByRole('button', { name: 'Load teacher' }).click();
    await expect.poll(() => page.getByTestId('teacher-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 17/);
    await page.getByRole('button', { name: 'Start' }).click();
    const refused = page.getByTestId('start-error');
    await refused.waitFor({ timeout: 60_000 });
    expect(await refused.textContent()).toMatch(/^The student's tokenizer has \d+ tokens and the teacher's 17: per-token distillation needs one shared tokenizer\./);
    expect(await state(page)).toBe(stateBefore);
    expect(await curvePoints(page, 'chart-loss')).toEqual(before);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-refused');
  });

  it('the self-distillation preset: a person loads it, runs it, and reads both accuracies (addition recovered, subtraction kept)', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    const preset = page.getByTestId('preset-self-distill');
    await preset.waitFor({ timeout: 30_000 });
    // The sentence gives the pair's measured accuracies from their recipes.
    expect(await preset.textContent()).toMatch(/subtraction \d+\.\d% → \d+\.\d%, addition \d+\.\d% → \d+\.\d%/);
    await preset.getByRole('button').click();
    await expect.poll(() => page.getByTestId('student-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 21, trainable$/);
    await expect.poll(() => page.getByTestId('teacher-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 21/);
    expect(await page.getByLabel('Student model folder URL').inputValue()).toMatch(/models\/recovery-student\/$/);
    expect(await page.getByLabel('Teacher model folder URL').inputValue()).toMatch(/models\/recovery-teacher\/$/);
    expect(await page.getByTestId('keep-task').inputValue()).toBe('subtraction');
    const hash = new URLSearchParams((await page.evaluate(() => location.hash)).slice(1));
    expect([hash.get('task'), hash.get('keepTask'), hash.get('objective')]).toEqual(['addition', 'subtraction', 'opd-sampled']);

    // A short run (the preset's own length is for people with time).
    for (const [label, v] of Object.entries({ steps: 2, 'prompts per step': 2, 'completions per prompt': 2, 'eval every': 1, 'eval prompts': 8 })) await knob(page, label).fill(String(v));
    await page.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => page.getByTestId('distill-message').textContent(), { timeout: 60_000, interval: 200 }).toMatch(/keeping subtraction|Finished/);
    await expect.poll(() => state(page), { timeout: 150_000, interval: 250 }).toBe('finished');
    expect(await page.getByTestId('eval-summary').textContent()).toMatch(/^Held-out accuracy \d+\.\d% \(\d\/8\) at step 2;/);
    expect(await page.getByTestId('eval-kept').textContent()).toMatch(/^Kept task, subtraction: \d+\.\d% \(\d\/8\) held-out, never trained on in this run\.$/);
    // The accuracy chart draws both: addition and the kept subtraction, 3 evaluations each.
    await expect.poll(() => accuracyCurvePoints(page)).toEqual([3, 3]);
    expect(await page.getByTestId('chart-accuracy').textContent()).toContain('kept: subtraction');
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-self-distill');
  });

  it('the routed preset: subtraction trained on, scored by a frozen copy of the student, and both tasks read after the run', async () => {
    const { page } = lab;
    const preset = page.getByTestId('preset-self-distill-routed');
    await preset.waitFor({ timeout: 30_000 });
    expect(await preset.textContent()).toMatch(/subtraction’s by a frozen copy of recovery-student as loaded, so the student trains on both and keeps subtraction \(\d+\.\d%\)/);
    await preset.getByRole('button').click();
    await expect.poll(() => page.getByTestId('student-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 21, trainable$/);
    await expect.poll(() => page.getByTestId('teacher-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 21/);
    expect([await page.getByTestId('route-task').inputValue(), await page.getByTestId('route-teacher').inputValue(), await page.getByTestId('keep-task').inputValue()]).toEqual(['subtraction', 'student', '']);
    const hash = new URLSearchParams((await page.evaluate(() => location.hash)).slice(1));
    expect([hash.get('routeTask'), hash.get('routeTeacher'), hash.get('keepTask')]).toEqual(['subtraction', 'student', '']);
    // The routed task cannot be the task trained on: the select does not offer it.
    expect(await page.getByTestId('route-task').locator('option').allTextContents()).not.toContain('addition');

    await setKnobs(page, { steps: 2, 'prompts per step': 2, 'completions per prompt': 2, 'eval every': 1, 'eval prompts': 8 });
    await page.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => page.getByTestId('distill-message').textContent(), { timeout: 60_000, interval: 200 }).toMatch(/subtraction, routed to a frozen copy of the student as loaded|Finished/);
    await expect.poll(() => state(page), { timeout: 150_000, interval: 250 }).toBe('finished');
    expect(await page.getByTestId('eval-summary').textContent()).toMatch(/^Held-out accuracy \d+\.\d% \(\d\/8\) at step 2;/);
    const routed = page.getByTestId('eval-routed');
    expect(await routed.count()).toBe(1);
    expect(await routed.textContent()).toMatch(/^Routed task, subtraction \(scored by .*recovery-student\/?\): \d+\.\d% \(\d\/8\) held-out; reverse KL to its teacher \d+\.\d+(e-\d+)? nats per token\.$/);
    expect(await page.getByTestId('eval-kept').count()).toBe(0);
    // The accuracy chart draws both tasks, 3 evaluations each.
    await expect.poll(() => accuracyCurvePoints(page)).toEqual([3, 3]);
    expect(await page.getByTestId('chart-accuracy').textContent()).toContain('routed: subtraction');
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-routed');
  });

  it('keeping subtraction with the addition-only pair is refused with the reason', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Load the built-in student and teacher' }).click();
    await expect.poll(() => page.getByTestId('student-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 20, trainable$/);
    await expect.poll(() => page.getByTestId('teacher-summary').textContent(), { timeout: 60_000 }).toMatch(/vocabulary 20/);
    // Loading the plain pair clears the kept task; a person who sets it again is told why it cannot run.
    expect(await page.getByTestId('keep-task').inputValue()).toBe('');
    await page.getByTestId('keep-task').selectOption('subtraction');
    await page.getByRole('button', { name: 'Start' }).click();
    const refused = page.getByTestId('start-error');
    await refused.waitFor({ timeout: 60_000 });
    expect(await refused.textContent()).toMatch(/^The subtraction task cannot run on .*addition-student.*: its tokenizer has no token for some characters of "Q: .*-.*= A: "/);
    expect(lab.errors).toEqual([]);
  });
  it('exports the setup for a cluster: a TRL script (and a tinker launcher once LoRA is on), the prompts and why a trainer was left out', async () => {
    const { page } = lab;
    await page.getByTestId('keep-task').selectOption('');
    await page.getByLabel('steps', { exact: true }).fill('7');
    await page.getByLabel('prompts per step', { exact: true }).fill('3');
    await page.getByLabel('LoRA rank', { exact: true }).fill('0');
    const button = page.getByRole('button', { name: 'Export for a cluster (TRL, tinker-cookbook)' });
    const [first] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
    expect(first.suggestedFilename()).toBe('opd-lab-cluster.zip');
    const zip = unzipSync(new Uint8Array(readFileSync(await first.path())));
    expect(Object.keys(zip).sort()).toEqual(['opd-lab-cluster/README.md', 'opd-lab-cluster/prompts.jsonl', 'opd-lab-cluster/trl_distill.py']);
    const trl = new TextDecoder().decode(zip['opd-lab-cluster/trl_distill.py']);
    expect(trl).toMatch(/^STEPS = 7$/m);
    expect(trl).toMatch(/^LORA_RANK = 0$/m);
    expect(trl).toMatch(/^STUDENT = "http:\/\/127\.0\.0\.1:\d+\/models\/addition-student\/"$/m);
    // The built-in task's training stream, as the run's 7 steps × 3 prompts would draw it.
    const prompts = new TextDecoder().decode(zip['opd-lab-cluster/prompts.jsonl']).trim().split('\n').map((l) => JSON.parse(l).prompt);
    expect(prompts).toHaveLength(7 * 3);
    expect(trl).toMatch(/^PROMPTS_PER_STEP = 3$/m);
    for (const p of prompts) expect(p).toMatch(/^Q: +\d+\+ *\d+= A: $/);
    expect(await page.getByTestId('cluster-target-trl').textContent()).toBe('TRL DistillationTrainer: trl_distill.py');
    expect(await page.getByTestId('cluster-target-tinker').textContent()).toMatch(/^tinker-cookbook: not written\. Tinker trains LoRA adapters only: set a LoRA rank/);

    await page.getByLabel('LoRA rank', { exact: true }).fill('8');
    const [second] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
    const both = unzipSync(new Uint8Array(readFileSync(await second.path())));
    expect(Object.keys(both)).toContain('opd-lab-cluster/tinker_distill.py');
    expect(new TextDecoder().decode(both['opd-lab-cluster/tinker_distill.py'])).toMatch(/^LORA_RANK = 8$/m);
    await expect.poll(() => page.getByTestId('cluster-target-tinker').textContent()).toBe('tinker-cookbook: tinker_distill.py');
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-cluster-export');
  });
});
