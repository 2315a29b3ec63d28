import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';

/**
 * Inspect's chat mode with two fixture folders whose chat templates differ (test/fixtures/hf:
 * qwen3 writes Llama 3's headers, llama-teacher ChatML): the prompt is a user message, the
 * student samples from its own rendering, the sample is scored, and the page shows both
 * renderings (transformers' strings, from reference.json), the heatmap, and the mismatch warning
 * with its measured cost.
 */
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hf');
const chat = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')).tokenizer.chat;

describe('chat templates in Inspect', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=inspect`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('a chat prompt rendered with each model’s template: sampled, scored, the mismatch warned about with its cost', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByLabel('Student model folder on this computer').setInputFiles(join(FIXTURES, 'qwen3'));
    await expect.poll(() => page.getByTestId('student-summary').textContent().catch(() => null), { timeout: 60_000 }).toMatch(/^qwen3, /);
    await page.getByLabel('Teacher model folder on this computer').setInputFiles(join(FIXTURES, 'llama-teacher'));
    await expect.poll(() => page.getByTestId('teacher-summary').textContent().catch(() => null), { timeout: 60_000 }).toMatch(/^llama, /);

    await page.getByLabel('Prompt', { exact: true }).fill('What is 12+34?');
    await page.getByRole('checkbox', { name: /Chat prompt/ }).check();
    await page.getByLabel('completions').fill('1');
    await page.getByLabel('max tokens').fill('4');
    await page.getByRole('button', { name: 'Sample from the student' }).click();
    await page.getByRole('button', { name: 'Score this' }).first().waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('sampled-rendering').textContent()).toBe(chat.llama3.rendered);
    await page.getByRole('button', { name: 'Score this' }).first().click();
    const completion = await page.getByLabel('Completion to score').inputValue();
    expect(completion.length).toBeGreaterThan(0);

    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await page.getByTestId('heatmap').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('student-rendering').textContent()).toBe(chat.llama3.rendered);
    expect(await page.getByTestId('teacher-rendering').textContent()).toBe(chat.chatml.rendered);
    const warning = (await page.getByTestId('template-mismatch').textContent()) ?? '';
    expect(warning).toMatch(/The chat templates differ \(from character 2\)/);
    const shift = Number(await page.getByTestId('template-shift-kl').textContent());
    expect(shift).toBeGreaterThan(0);
    expect(Number.isFinite(shift)).toBe(true);
    const summary = (await page.getByTestId('score-summary').textContent()) ?? '';
    expect(Number(/Mean reverse KL ([\d.]+)/.exec(summary)?.[1])).toBeGreaterThan(0);
    await screenshot(page, 'chat-template-mismatch');
    expect(lab.errors).toEqual([]);
  });
});
