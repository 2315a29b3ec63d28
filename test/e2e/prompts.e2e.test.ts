/**
 * A prompt set without labels in the Distill panel, as a person uses it: the built-in addition
 * pair loaded, 20 prompts pasted (test/fixtures/prompts-addition.txt), the split shown in place
 * (15 training / 5 held out at a held-out fraction of 0.25), the sentences of a bad upload and a
 * bad paste shown in place, then an opd-sampled run whose latest evaluation states the held-out reverse KL (no
 * accuracy: there is no verifier), read before the first step and after the last.
 *
 * The run is test/unit/prompts-cli.test.ts's, shortened to 6 steps (8 prompts × 4 completions,
 * lr 1e-3, split seed 0). Measured with opd-lab train over seeds 0-3 at 6 steps: held-out reverse
 * KL 1.0957 → 0.9548, 0.9282, 1.0038, 0.9286, a fall of 8.4-15.3%; the test asks for 4%, half the
 * smallest. At 12 steps (the CLI test's) it took 227 s on SwiftShader with the 2 cores busy and
 * gave the CLI's numbers (1.096 → 0.9453).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';

const PROMPTS = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'prompts-addition.txt'), 'utf8');
const RUN = { steps: 6, 'prompts per step': 8, 'completions per prompt': 4, 'learning rate': 0.001, 'eval every': 0, seed: 0 };
const FALL = 0.04;
const RUN_TIMEOUT = 600_000;

const state = (page: Page) => page.getByTestId('distill-state').textContent();

/** "Held-out reverse KL 1.096 nats per token at step 0 (…)" → step and value. */
async function heldOutShown(page: Page): Promise<{ step: number; reverseKL: number } | null> {
  const text = await page.getByTestId('eval-summary').textContent({ timeout: 1_000 }).catch(() => null);
  const m = /^Held-out reverse KL (\S+) nats per token at step (\d+)/.exec(text ?? '');
  return m ? { step: Number(m[2]), reverseKL: Number(m[1]) } : null;
}

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

  it('shows the split or the sentence in place, and an opd-sampled run lowers the held-out reverse KL', { timeout: RUN_TIMEOUT }, async () => {
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

    for (const [label, v] of Object.entries(RUN)) await page.getByLabel(label, { exact: true }).fill(String(v));
    const started = performance.now();
    await page.getByRole('button', { name: 'Start' }).click();
    await expect.poll(async () => (await heldOutShown(page))?.step, { timeout: 300_000, interval: 250 }).toBe(0);
    const before = (await heldOutShown(page))!;
    await expect.poll(() => state(page), { timeout: RUN_TIMEOUT, interval: 500 }).toBe('finished');
    console.log(`prompts e2e: ${RUN.steps} steps in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    expect(await page.getByTestId('distill-message').textContent()).toMatch(new RegExp(`^Finished ${RUN.steps} steps of opd-sampled\\. Held-out reverse KL \\d+\\.\\d{3} nats per token \\(5 prompts\\)\\.$`));
    const after = (await heldOutShown(page))!;
    expect(after.step).toBe(RUN.steps);
    console.log(`prompts e2e: held-out reverse KL ${before.reverseKL} → ${after.reverseKL}`);
    expect(before.reverseKL).toBeGreaterThan(0);
    expect(after.reverseKL).toBeLessThan(before.reverseKL * (1 - FALL));
    // No verifier: the examples carry no verdict, and the held-out chart is the reverse KL's.
    expect(await page.getByTestId('eval-example').count()).toBe(5);
    expect(await page.locator('[data-testid=eval-example] .verdict').count()).toBe(0);
    await page.getByTestId('chart-heldout-kl').waitFor();
    expect(await page.getByTestId('chart-accuracy').count()).toBe(0);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'distill-prompt-set');
  });
});
