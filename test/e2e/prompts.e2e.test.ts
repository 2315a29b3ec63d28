/**
 * A prompt set without labels in the Distill panel, as a person gives it: the built-in addition
 * pair loaded, 20 prompts (test/fixtures/prompts-addition.txt) uploaded and pasted, the split
 * shown in place (15 training / 5 held out at a held-out fraction of 0.25), the sentences of a
 * bad upload and a bad paste shown in place, Start waiting until the set is good.
 *
 * A run on pasted prompts, its held-out reverse KL falling with no accuracy shown, is in
 * hub-models.e2e.test.ts (the two chat models by id, 20 pasted prompts); the CLI's runs on this
 * set are test/unit/prompts-cli.test.ts's.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';

const PROMPTS = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'prompts-addition.txt'), 'utf8');
const TIMEOUT = 300_000;

describe('Distill on pasted prompts without labels', () => {
  let browser: Browser;
  let lab: PageRecord;
  const baseUrl = inject('baseUrl');
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, baseUrl);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows the split or the sentence in place, and Start waits for a good set', { timeout: TIMEOUT }, async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByRole('button', { name: 'Distill', exact: true }).click();
    await page.getByRole('button', { name: 'Load the built-in student and teacher' }).click();
    // Loading waits behind nothing else, but on 2 busy cores it can take a while: poll, never a single long wait.
    const summary = (role: string) => page.getByTestId(`${role}-summary`).textContent({ timeout: 1_000 }).catch(() => null);
    await expect.poll(() => summary('student'), { timeout: 180_000 }).toMatch(/vocabulary 20, trainable$/);
    await expect.poll(() => summary('teacher'), { timeout: 180_000 }).toMatch(/vocabulary 20/);

    // An uploaded .jsonl with a line that is not JSON: the sentence names the line, in place.
    await page.getByRole('radio', { name: 'upload .txt / .jsonl' }).check();
    await page.getByTestId('held-out-fraction').fill('0.25');
    await page.getByTestId('prompt-file').setInputFiles({ name: 'bad.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{"prompt": "Q:   1+  2= A: "}\n{"prompt": \n') });
    await expect.poll(() => page.getByTestId('prompt-error').textContent({ timeout: 1_000 }).catch(() => null), { timeout: 30_000 }).toBe(
      'Line 2 of bad.jsonl is not JSON: each line of a .jsonl file must be one JSON object such as {"prompt": "…"}.',
    );
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);
    // The same 20 prompts as a .txt file: the split.
    await page.getByTestId('prompt-file').setInputFiles({ name: 'prompts-addition.txt', mimeType: 'text/plain', buffer: Buffer.from(PROMPTS) });
    await expect.poll(() => page.getByTestId('prompt-split').textContent({ timeout: 1_000 }).catch(() => null), { timeout: 30_000 }).toMatch(/^prompts-addition\.txt: 15 training \/ 5 held-out prompts\./);

    await page.getByRole('radio', { name: 'paste prompts' }).check();
    // One prompt cannot be split: the sentence, in place, and Start waits.
    await page.getByTestId('prompt-paste').fill('Q:  12+ 34= A: \n\n');
    await expect.poll(() => page.getByTestId('prompt-error').textContent({ timeout: 1_000 }).catch(() => null), { timeout: 30_000 }).toBe(
      'The pasted text has 1 prompt: a run needs at least 2, one to train on and one held out to measure on; add prompts.',
    );
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);
    await page.getByTestId('prompt-paste').fill(PROMPTS);
    await expect.poll(() => page.getByTestId('prompt-split').textContent({ timeout: 1_000 }).catch(() => null), { timeout: 30_000 }).toMatch(/^the pasted text: 15 training \/ 5 held-out prompts\./);

    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(false);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-prompt-set');
  });
});
