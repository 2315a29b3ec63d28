import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launch, openLab, screenshot, type PageRecord } from './browser';

describe('the Inspect panel: a person scores a completion and reads the heatmap', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=inspect`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('loads student and teacher folders by URL, scores, and shows per-token KL with the teacher’s alternatives', async () => {
    const { page } = lab;
    const models = inject('modelsUrl');
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');

    await page.getByLabel('Student model folder URL').fill(`${models}student/`);
    await page.getByRole('button', { name: 'Load student' }).click();
    await page.getByTestId('student-summary').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/^gpt2, [\d,]+ parameters, vocabulary 17, trainable$/);

    await page.getByLabel('Teacher model folder URL').fill(`${models}teacher/`);
    await page.getByRole('button', { name: 'Load teacher' }).click();
    await page.getByTestId('teacher-summary').waitFor({ timeout: 60_000 });

    await page.getByLabel('Prompt', { exact: true }).fill('Q: 12+3=');
    await page.getByLabel('Completion to score').fill(' A: 15');
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await page.getByTestId('heatmap').waitFor({ timeout: 120_000 });

    const tokens = await page.getByTestId('heatmap-token').allTextContents();
    expect(tokens.join('').replace(/␣/g, ' ')).toBe(' A: 15');
    const summary = (await page.getByTestId('score-summary').textContent()) ?? '';
    const mean = Number(/Mean reverse KL ([\d.]+)/.exec(summary)?.[1]);
    expect(mean).toBeGreaterThan(0);
    expect(summary).toContain('over 6 tokens');

    await page.getByTestId('heatmap-token').nth(5).click();
    const details = (await page.getByTestId('token-details').textContent()) ?? '';
    expect(details).toContain('"5"');
    // Five alternatives, each with a probability.
    const top = (await page.getByTestId('teacher-top').textContent()) ?? '';
    expect(top.split(', ')).toHaveLength(5);
    for (const entry of top.split(', ')) expect(entry).toMatch(/^".*" 0\.\d{3}$|^".*" 1\.000$/);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'inspect-heatmap');
  });

  it('samples from the student token by token and sends a sample to the scorer', async () => {
    const { page } = lab;
    // Watch the first completion's text grow while the tokens stream in.
    const lengths: number[] = [];
    const watch = setInterval(async () => {
      const text = await page.getByTestId('sample').first().locator('.completion').textContent().catch(() => null);
      if (text !== null && text !== '…') lengths.push(text.length);
    }, 20);
    await page.getByRole('button', { name: 'Sample from the student' }).click();
    await expect.poll(() => page.getByTestId('sample').count(), { timeout: 120_000 }).toBe(4);
    await page.getByRole('button', { name: 'Score this' }).first().waitFor({ timeout: 120_000 });
    clearInterval(watch);
    const items = await page.getByTestId('sample').allTextContents();
    for (const item of items) expect(item).toMatch(/\d+ tokens, (ended|hit max tokens)/);
    expect(lengths.length).toBeGreaterThan(0);
    const sample = (await page.getByTestId('sample').first().locator('.completion').textContent()) ?? '';
    await page.getByRole('button', { name: 'Score this' }).first().click();
    expect(await page.getByLabel('Completion to score').inputValue()).toBe(sample);
    if (sample.length > 0) {
      await page.getByRole('button', { name: 'Score', exact: true }).click();
      await expect.poll(async () => (await page.getByTestId('heatmap-token').allTextContents()).join('').replace(/␣/g, ' '), { timeout: 120_000 }).toBe(sample);
    }
    await screenshot(page, 'inspect-samples');
  });

  it('loads a model from a folder the person picks on their computer', async () => {
    const { page } = lab;
    const dir = inject('studentDir');
    expect(await page.getByTestId('student-source').textContent()).toContain('http://127.0.0.1');
    await page.getByLabel('Student model folder on this computer').setInputFiles(dir);
    const name = dir.split('/').pop();
    await expect.poll(() => page.getByTestId('student-source').textContent(), { timeout: 60_000 }).toBe(`from picked folder '${name}'`);
    expect(await page.getByTestId('student-summary').textContent()).toMatch(/^gpt2, 7,888 parameters, vocabulary 17, trainable$/);
    // The picked student scores like the one loaded by URL (the same folder).
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await expect.poll(() => page.getByTestId('heatmap-token').count(), { timeout: 120_000 }).toBeGreaterThan(0);
    expect(lab.errors).toEqual([]);
  });

  it('says why when a folder cannot be loaded', async () => {
    const { page } = lab;
    await page.getByLabel('Teacher model folder URL').fill(`${inject('modelsUrl')}missing/`);
    await page.getByRole('button', { name: 'Load teacher' }).click();
    const alert = page.locator('.loader .error');
    await alert.waitFor({ timeout: 60_000 });
    expect(await alert.textContent()).toMatch(/has no config\.json/);
  });
});
