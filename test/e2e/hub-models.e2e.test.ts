import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launch, openLab, screenshot, type PageRecord } from './browser';
import { startHub, type HubServer } from '../hub/server';

/**
 * Hugging Face ids in the page, against the local Hub (test/hub/server.ts, in this process,
 * serving test/fixtures/hf as opd-lab-test/NAME): the endpoint set in the Models panel, two ids
 * typed and loaded with their progress, a score; after a reload the same ids load from the
 * browser's Cache API with no request to the Hub; the model manager lists both with their sizes
 * and deletes one; an unknown id says so where it was typed and leaves both models loaded.
 */
const STUDENT = 'opd-lab-test/llama-tied';
const TEACHER = 'opd-lab-test/llama-teacher';
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
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/^llama, 106,816 parameters, vocabulary 512, trainable$/);
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

  it('lists both cached models with their sizes and deletes one', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    await expect.poll(() => page.getByTestId('cached-model').count(), { timeout: 20_000 }).toBe(2);
    const rows = page.getByTestId('cached-model');
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-model')))).toEqual([TEACHER, STUDENT]);
    for (const size of await page.getByTestId('cached-model-size').allTextContents()) expect(size).toMatch(/^[\d.]+ (kB|MB)$/);
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
