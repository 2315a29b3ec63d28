import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';
import { startHub, type HubServer } from '../hub/server';

/**
 * Hugging Face ids in the page, against the local Hub (test/hub/server.ts, in this process,
 * serving test/fixtures/hf as opd-lab-test/NAME): the endpoint set in the Models panel, two ids
 * typed and loaded with their progress, a score; after a reload the same ids load from the
 * browser's Cache API with no request to the Hub; a chat prompt sampled and scored (a heatmap,
 * each model's rendering equal to transformers', the two chat templates' mismatch with its
 * measured cost), then an OPD run on 20 pasted prompts whose held-out reverse
 * KL falls (issue 13's acceptance, as a person does it); the model manager lists both with their
 * sizes and deletes one; an unknown id says so where it was typed and leaves both models loaded.
 *
 * The run is test/unit/hub-cli.test.ts's (opd-full, lr 1e-2, 4 steps of 4 prompts × 2 answers,
 * 16 tokens, test/fixtures/prompts-chat.txt split 15 / 5, each line a user message that each
 * model reads through its own chat template): over seeds 0–3 with opd-lab on lavapipe its
 * held-out reverse KL fell 3.119 → 2.08–2.14, by 31.3–33.4%; the test asks for 15%.
 */
const STUDENT = 'opd-lab-test/qwen3';
const TEACHER = 'opd-lab-test/llama-teacher';
const PROMPTS = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'prompts-chat.txt'), 'utf8');
/** transformers' renderings of "What is 12+34?" (test/fixtures/hf/reference.json). */
const chat = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'hf', 'reference.json'), 'utf8')).tokenizer.chat;
const RUN = { steps: 4, 'prompts per step': 4, 'completions per prompt': 2, 'learning rate': 0.01, 'max tokens': 16, 'eval every': 0, seed: 0 };
const FALL = 0.15;
const RUN_TIMEOUT = 600_000;
/** "12.3 MB of 12.3 MB": the progress text once every byte has come. */
const COMPLETE = /^([\d.]+ (?:B|kB|MB|GB)) of \1$/;

describe('Hugging Face model ids in the lab', () => {
  let browser: Browser;
  let hub: HubServer;
  let lab: PageRecord;
  beforeAll(async () => {
    hub = await startHub();
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=models`);
  });
  afterAll(async () => {
    await browser?.close();
    await hub?.close();
  });

  /** Types an id and loads it; `during` runs while it loads; returns the progress text at the end ("X of X"). */
  const load = async (role: 'student' | 'teacher', id: string, during?: () => Promise<void>) => {
    const { page } = lab;
    const label = role === 'student' ? 'Student' : 'Teacher';
    await page.getByLabel(`${label} model folder URL`).fill(id);
    await page.getByRole('button', { name: `Load ${role}` }).click();
    await during?.();
    await expect.poll(() => page.getByTestId(`${role}-source`).textContent().catch(() => null), { timeout: 60_000 }).toBe(`from ${id}`);
    const text = (await page.getByTestId(`${role}-progress-text`).textContent()) ?? '';
    expect(text).toMatch(COMPLETE);
    return text;
  };

  const score = async () => {
    const { page } = lab;
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('347+589=');
    await page.getByLabel('Completion to score').fill(' The cat sat on');
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await page.getByTestId('heatmap').waitFor({ timeout: 120_000 });
  };

  it('loads two ids from the endpoint set in the page, with progress, and scores with them', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByLabel('Hub endpoint').fill(hub.url);
    await expect.poll(() => page.getByTestId('cache-empty').count()).toBe(1);
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();

    const studentBytes = await load('student', STUDENT);
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/^qwen3, [\d,]+ parameters, vocabulary 512, trainable$/);
    // The teacher's weights stall half-way for 2 s: the loader shows the bytes so far.
    // (Every answer of that file until the screenshot: the lab's HEAD for it takes a body fault too.)
    hub.fault({ fault: { kind: 'stall', delayMs: 2_000 }, repo: TEACHER, file: 'model.safetensors' });
    const teacherBytes = await load('teacher', TEACHER, async () => {
      await expect.poll(() => page.getByTestId('teacher-progress').textContent().catch(() => ''), { timeout: 30_000 }).toMatch(/model\.safetensors: [\d.]+ kB of [\d.]+ MB/);
      expect(await page.getByTestId('teacher-progress-text').textContent()).not.toMatch(COMPLETE);
      await screenshot(page, 'hub-loader-progress');
      hub.clearFaults();
    });
    expect(await page.getByTestId('teacher-summary').textContent()).toMatch(/^llama, 393,888 parameters/);
    // Downloaded: the Hub answered the files (the weights through its CDN redirect).
    expect(hub.requests.some((r) => r.path.startsWith(`/${STUDENT}/resolve/main/config.json`) && r.status === 200)).toBe(true);
    expect(hub.requests.some((r) => r.path.startsWith(`/cdn/${TEACHER}/`) && r.status === 200)).toBe(true);
    await screenshot(page, 'hub-loader-done');

    await score();
    const summary = (await page.getByTestId('score-summary').textContent()) ?? '';
    expect(Number(/Mean reverse KL ([\d.]+)/.exec(summary)?.[1])).toBeGreaterThan(0);

    // After a reload the same ids load from the browser's Cache API: not one request reaches the Hub.
    hub.requests.length = 0;
    await page.reload();
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await load('student', STUDENT)).toBe(studentBytes);
    expect(await load('teacher', TEACHER)).toBe(teacherBytes);
    expect(await page.getByTestId('teacher-progress').textContent()).toMatch(/all from the cache/);
    expect(hub.requests).toEqual([]);
    expect(lab.errors).toEqual([]);
  });

  it('samples a chat prompt and scores it (a heatmap), then an OPD run on 20 pasted prompts lowers the held-out reverse KL', { timeout: RUN_TIMEOUT }, async () => {
    const { page } = lab;
    // The two models loaded from the cache above, still held by the worker; no request from here on.
    hub.requests.length = 0;
    await page.getByLabel('Prompt', { exact: true }).fill('What is 12+34?');
    await page.getByRole('checkbox', { name: /Chat prompt/ }).check();
    await page.getByLabel('completions').fill('1');
    await page.getByLabel('max tokens').fill('6');
    await page.getByRole('button', { name: 'Sample from the student' }).click();
    await page.getByRole('button', { name: 'Score this' }).first().waitFor({ timeout: 120_000 });
    // Each model's rendering is transformers' own string (reference.json): qwen3 writes Llama 3's headers, llama-teacher ChatML.
    expect(await page.getByTestId('sampled-rendering').textContent()).toBe(chat.llama3.rendered);
    await page.getByRole('button', { name: 'Score this' }).first().click();
    expect((await page.getByLabel('Completion to score').inputValue()).length).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await expect.poll(() => page.getByTestId('teacher-rendering').textContent().catch(() => null), { timeout: 120_000 }).toBe(chat.chatml.rendered);
    expect(await page.getByTestId('student-rendering').textContent()).toBe(chat.llama3.rendered);
    const heat = page.getByTestId('heatmap-token');
    expect(await heat.count()).toBeGreaterThan(0);
    expect(await page.getByTestId('template-mismatch').textContent()).toMatch(/The chat templates differ \(from character 2\)/);
    const shift = Number(await page.getByTestId('template-shift-kl').textContent());
    expect(Number.isFinite(shift) && shift > 0).toBe(true);
    expect(Number(/Mean reverse KL ([\d.]+)/.exec((await page.getByTestId('score-summary').textContent()) ?? '')?.[1])).toBeGreaterThan(0);
    await screenshot(page, 'hub-chat-heatmap');

    await page.getByRole('button', { name: 'Distill', exact: true }).click();
    await page.getByRole('radio', { name: 'paste prompts' }).check();
    await page.getByTestId('held-out-fraction').fill('0.25');
    await page.getByTestId('prompt-paste').fill(PROMPTS);
    await page.getByRole('checkbox', { name: /Each line is a user message/ }).check();
    await expect.poll(() => page.getByTestId('prompt-split').textContent({ timeout: 1_000 }).catch(() => null), { timeout: 30_000 }).toMatch(
      /^the pasted text: 15 training \/ 5 held-out prompts\..* The teacher opd-lab-test\/llama-teacher reads each chat prompt rendered with its own chat template, the student with its own: 20 of 20 prompts read differently/,
    );
    await page.getByRole('radio', { name: /^opd-full/ }).check();
    for (const [label, v] of Object.entries(RUN)) await page.getByLabel(label, { exact: true }).fill(String(v));
    const started = performance.now();
    await page.getByRole('button', { name: 'Start' }).click();
    const heldOut = async () => {
      const m = /^Held-out reverse KL (\S+) nats per token at step (\d+)/.exec((await page.getByTestId('eval-summary').textContent({ timeout: 1_000 }).catch(() => null)) ?? '');
      return m ? { step: Number(m[2]), reverseKL: Number(m[1]) } : null;
    };
    // Each reading is kept from the poll that saw it: on a busy machine a second read can time out while the page re-renders.
    let before = { step: -1, reverseKL: NaN };
    await expect.poll(async () => (before = (await heldOut()) ?? before).step, { timeout: 300_000, interval: 250 }).toBe(0);
    await expect.poll(() => page.getByTestId('distill-state').textContent(), { timeout: RUN_TIMEOUT, interval: 500 }).toBe('finished');
    let after = { step: -1, reverseKL: NaN };
    await expect.poll(async () => (after = (await heldOut()) ?? after).step, { timeout: 60_000, interval: 250 }).toBe(RUN.steps);
    console.log(`hub e2e: ${RUN.steps} steps of opd-full in ${((performance.now() - started) / 1000).toFixed(0)} s; held-out reverse KL ${before.reverseKL} → ${after.reverseKL}`);
    expect(after.step).toBe(RUN.steps);
    expect(before.reverseKL).toBeGreaterThan(0);
    expect(after.reverseKL).toBeLessThan(before.reverseKL * (1 - FALL));
    expect(await page.getByTestId('distill-message').textContent()).toMatch(new RegExp(`^Finished ${RUN.steps} steps of opd-full\\. Held-out reverse KL \\d+\\.\\d{3} nats per token \\(5 prompts\\)\\.$`));
    // No verifier: the examples carry no verdict, and the held-out chart is the reverse KL's.
    expect(await page.getByTestId('eval-example').count()).toBe(5);
    expect(await page.locator('[data-testid=eval-example] .verdict').count()).toBe(0);
    await page.getByTestId('chart-heldout-kl').waitFor();
    expect(await page.getByTestId('chart-accuracy').count()).toBe(0);
    expect(hub.requests).toEqual([]);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'hub-chat-opd-run');
  });

  it('lists both cached models with their sizes and deletes one', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    await expect.poll(() => page.getByTestId('cached-model').count(), { timeout: 20_000 }).toBe(2);
    const rows = page.getByTestId('cached-model');
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-model')))).toEqual([TEACHER, STUDENT]);
    for (const size of await page.getByTestId('cached-model-size').allTextContents()) expect(size).toMatch(/^[\d.]+ (kB|MB)$/);
    // Each row says which role holds it now.
    expect(await page.getByTestId('cached-model-use').allTextContents()).toEqual([' loaded as the teacher', ' loaded as the student']);
    expect(await page.getByTestId('cache-total').textContent()).toMatch(/^2 models, [\d.]+ (kB|MB) in the browser's Cache API 'opd-lab-models'\.$/);
    await page.getByTestId('hub-card').screenshot({ path: await screenshot(page, 'hub-model-manager').then((p) => p.replace(/\.png$/, '-card.png')) });

    await page.getByRole('button', { name: `Delete ${STUDENT}` }).click();
    await expect.poll(() => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-model'))), { timeout: 20_000 }).toEqual([TEACHER]);
    expect(await page.getByTestId('cache-total').textContent()).toMatch(/^1 model, /);

    // Loading the deleted id again downloads it.
    hub.requests.length = 0;
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    await load('student', STUDENT);
    expect(hub.requests.filter((r) => r.method === 'GET' && r.status === 200).length).toBeGreaterThan(0);
    expect(lab.errors).toEqual([]);
  });

  it('says where it was typed that an id is unknown, and leaves both models loaded', async () => {
    const { page } = lab;
    await page.getByLabel('Teacher model folder URL').fill('opd-lab-test/no-such-model');
    await page.getByRole('button', { name: 'Load teacher' }).click();
    const alert = page.locator('.loader .error');
    await alert.waitFor({ timeout: 60_000 });
    expect(await alert.textContent()).toMatch(/^There is no model opd-lab-test\/no-such-model on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\): check the id/);
    // The field keeps the id typed; the teacher the worker still holds is named below it.
    expect(await page.getByLabel('Teacher model folder URL').inputValue()).toBe('opd-lab-test/no-such-model');
    expect(await page.getByTestId('teacher-source').textContent()).toBe(`from ${TEACHER}`);
    expect(await page.getByTestId('student-source').textContent()).toBe(`from ${STUDENT}`);
    expect(await page.getByTestId('teacher-summary').textContent()).toMatch(/^llama, 393,888 parameters/);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'hub-unknown-id');
  });
});
