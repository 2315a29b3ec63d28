import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { curvePoints as curves, launch, openLab, screenshot, type PageRecord } from './browser';

const tourRun = (page: Page) => page.getByTestId('tour-run').getAttribute('data-status');

describe('the lab as a teaching instrument: the tour, the race, classroom mode', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=distill`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the tour runs end to end: the chess analogy, then rl, sft and opd-sampled run while it points at the curves and the heatmaps, then Compare draws the three', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByRole('button', { name: 'Take the tour' }).click();
    const tour = page.getByTestId('tour');
    expect(await tour.getByRole('heading').textContent()).toBe('Three ways to learn chess');
    expect(await tour.textContent()).toContain('A coach who grades each of your own moves is on-policy distillation.');
    // Focus moved to the card (a keyboard or screen-reader user is taken to it).
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tour-title');
    await tour.getByLabel('steps per run').fill('1');
    await tour.getByLabel('held-out prompts').fill('8');
    await screenshot(page, 'tour-start');

    const methods = [
      ['Playing alone: reinforcement learning', 'rl', 'chart-accuracy'],
      ['Watching a grandmaster: off-policy distillation', 'sft', 'chart-accuracy'],
      ['A coach grades your own moves: on-policy distillation', 'opd-sampled', 'probe-card'],
    ] as const;
    for (const [title, objective, target] of methods) {
      await tour.getByRole('button', { name: 'Next' }).click();
      expect(await tour.getByRole('heading').textContent()).toBe(title);
      await expect.poll(() => tourRun(page), { timeout: 180_000, interval: 250 }).toBe('finished').catch(async (e) => {
        await screenshot(page, 'tour-debug');
        throw e;
      });
      expect(await page.getByTestId('tour-run').textContent()).toBe(`${objective} finished its 1 steps.`);
      expect(await page.getByTestId('distill-message').textContent()).toMatch(new RegExp(`^Finished 1 steps? of ${objective}\\.`));
      // The element the text speaks of is highlighted.
      await expect.poll(() => page.locator('.tour-target').getAttribute('data-testid')).toBe(target);
    }
    // The coach's grades: the probe strip has a row for step 0 and step 1 (the strip redraws on a
    // throttle, so its last row can land just after the run reads as finished).
    await expect.poll(() => page.getByTestId('probe-row').count()).toBe(2);
    await screenshot(page, 'tour-opd');

    await tour.getByRole('button', { name: 'Next' }).click();
    expect(await tour.getByRole('heading').textContent()).toBe('The three, side by side');
    expect(new URLSearchParams((await page.evaluate(() => location.hash)).slice(1)).get('panel')).toBe('compare');
    // The three runs of the tour, each with its two evaluations (step 0 and step 1), on shared axes.
    await expect.poll(() => curves(page, 'compare-accuracy')).toEqual([2, 2, 2]);
    expect(await page.getByTestId('compare-run').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-objective')))).toEqual(['opd-sampled', 'sft', 'rl']);
    await page.getByRole('radio', { name: 'FLOPs' }).check();
    await expect.poll(() => curves(page, 'compare-kl')).toEqual([2, 2, 2]);
    await page.getByRole('radio', { name: 'steps' }).check();
    // The FLOPs split: three bars for each run, teacher scoring 0 for rl (its teacher only feeds the metrics).
    expect(await page.locator('[data-testid=compare-flops-split] .recharts-bar-rectangle').count()).toBeGreaterThanOrEqual(7);
    await screenshot(page, 'tour-compare');

    await tour.getByRole('button', { name: 'Next' }).click();
    expect(await tour.getByRole('heading').textContent()).toBe('Your turn');
    await tour.getByRole('button', { name: 'Finish' }).click();
    expect(await page.getByTestId('tour').count()).toBe(0);
    expect(await page.locator('.tour-target').count()).toBe(0);
    expect(lab.errors).toEqual([]);
  });

  it('the race runs the four objectives with the same seed and budget, and Compare draws four curves as they go', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.getByTestId('race').getByLabel('steps per run').fill('1');
    await page.getByTestId('race').getByLabel('held-out prompts').fill('8');
    await page.getByRole('button', { name: 'Start the race' }).click();
    // Drawn as they go: the first run's curve is there before the race ends.
    await expect.poll(() => curves(page, 'compare-accuracy').then((c) => c.length), { timeout: 120_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => page.getByTestId('race-status').textContent(), { timeout: 300_000, interval: 500 }).toBe('Race finished: 4 runs of 1 steps each, the same seed and budget.');
    await expect.poll(() => curves(page, 'compare-accuracy')).toEqual([2, 2, 2, 2]);
    const rows = page.getByTestId('compare-run');
    expect((await rows.evaluateAll((r) => r.map((x) => x.getAttribute('data-objective')))).slice(0, 4)).toEqual(['rl', 'sft', 'opd-full', 'opd-sampled']);
    // Every race run says its setup: the same batch, learning rate and seed.
    for (let i = 0; i < 4; i++) expect(await rows.nth(i).locator('td').nth(2).textContent()).toBe('addition, 8×4, lr 0.001, seed 0');
    await page.getByTestId('compare-charts').scrollIntoViewIfNeeded();
    await screenshot(page, 'compare-race');
    // Any selection: unticking one run leaves three curves.
    await rows.nth(0).getByRole('checkbox').uncheck();
    await expect.poll(() => curves(page, 'compare-accuracy')).toEqual([2, 2, 2]);

    // The distill benchmark's race (docs/distill.json): its start, task and rates, said before it starts.
    await page.getByTestId('race-preset').selectOption('benchmark');
    const about = await page.getByTestId('race-about').textContent();
    expect(about).toContain('worked-student-sft');
    expect(about).toContain('learning rate 0.0001');
    expect(await page.getByTestId('race').getByLabel('held-out prompts').inputValue()).toBe('128');
    await page.getByTestId('race').getByLabel('held-out prompts').fill('8');
    await page.getByRole('button', { name: 'Start the race' }).click();
    // Its first run trains the benchmark's start on worked addition at the benchmark's rate.
    await expect.poll(() => rows.nth(0).textContent(), { timeout: 180_000, interval: 500 }).toContain('worked-addition, 8×4, lr 0.0001, seed 0');
    expect(await rows.nth(0).textContent()).toContain('worked-student-sft');
    await page.getByRole('button', { name: 'Stop the race' }).click();
    await expect.poll(() => page.getByTestId('race-status').textContent(), { timeout: 120_000, interval: 500 }).toMatch(/^Race (stopped after \d of 4 runs|finished)/);
    expect(lab.errors).toEqual([]);
  });

  it('classroom mode enlarges the text and hides the advanced knobs, and a reload keeps it', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Distill' }).click();
    const size = () => page.evaluate(() => getComputedStyle(document.documentElement).fontSize);
    expect(await size()).toBe('15px');
    expect(await page.getByLabel('seed', { exact: true }).count()).toBe(1);
    await page.getByRole('switch', { name: 'Classroom' }).check();
    expect(await size()).toBe('19px');
    expect(await page.getByLabel('seed', { exact: true }).count()).toBe(0);
    expect(await page.getByLabel('learning rate', { exact: true }).count()).toBe(1);
    await page.reload();
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await size()).toBe('19px');
    expect(await page.getByRole('switch', { name: 'Classroom' }).isChecked()).toBe(true);
    await screenshot(page, 'classroom');
    await page.getByRole('switch', { name: 'Classroom' }).uncheck();
    expect(await size()).toBe('15px');
    expect(lab.errors).toEqual([]);
  });
});
