import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';
import { unpackRunFile } from '../../workers/contract/runFile';

/**
 * Nothing lost (issue 14): a run kept in IndexedDB survives a reload and resumes from its last
 * checkpoint with its step count and curves going on; a crashed GPU process resumes it by itself;
 * a crashed worker is said within a second and the run offered again; the run exports as one file
 * that `opd-lab run show` reads, and imports back into the list.
 */

const OUT = join(import.meta.dirname, '..', 'output', 'persistence');
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');

const knob = (page: Page, label: string) => page.getByLabel(label, { exact: true });
const state = (page: Page) => page.getByTestId('distill-state').textContent();
const stepShown = async (page: Page) => Number(/step (\d+) \//.exec((await page.getByTestId('distill-step').textContent()) ?? '')?.[1] ?? NaN);
/** Vertices of the loss curve (one per step drawn). */
const lossPoints = async (page: Page) => {
  const d = await page.locator('[data-testid=chart-loss] path.recharts-line-curve').first().getAttribute('d').catch(() => null);
  return d ? (d.match(/[ML]/g) ?? []).length : 0;
};
const runItem = (page: Page) => page.getByTestId('run-item').first();
/** The step of the newest stored checkpoint, as the run list says it. */
const storedCheckpoint = async (page: Page) => Number(/checkpoint of step (\d+) stored/.exec((await runItem(page).getByTestId('run-item-facts').textContent().catch(() => '')) ?? '')?.[1] ?? -1);

describe('nothing lost: a run kept across a reload, a lost GPU and a crashed worker', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=distill`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('a run reloaded mid-way is listed with its curves and resumes from its checkpoint, its steps going on', async () => {
    const { page } = lab;
    const t0 = Date.now();
    const mark = (what: string) => console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const models = inject('modelsUrl');
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByLabel('Student model folder URL').fill(`${models}add-student/`);
    await page.getByRole('button', { name: 'Load student' }).click();
    await page.getByTestId('student-summary').waitFor({ timeout: 60_000 });
    await page.getByLabel('Teacher model folder URL').fill(`${models}add-teacher/`);
    await page.getByRole('button', { name: 'Load teacher' }).click();
    await page.getByTestId('teacher-summary').waitFor({ timeout: 60_000 });
    // Small steps (1 prompt × 2 completions), one held-out prompt, a checkpoint after every step.
    for (const [label, value] of Object.entries({ steps: 40, 'prompts per step': 1, 'completions per prompt': 2, 'eval every': 0, 'eval prompts': 1, 'checkpoint every': 1, 'probe prompts': 0, 'learning rate': 0.01 })) {
      await knob(page, label).fill(String(value));
    }
    mark('models loaded');
    await page.getByRole('button', { name: 'Start' }).click();
    // The run is listed as it goes, and its checkpoints are stored in IndexedDB.
    await expect.poll(() => storedCheckpoint(page), { timeout: 120_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    expect(await runItem(page).getAttribute('data-status')).toBe('running');
    expect(await page.getByTestId('run-storage').textContent()).toMatch(/^1 run kept, [\d.]+ (KiB|MiB) of checkpoints; this site uses [\d.]+ (B|KiB|MiB|GiB) of the [\d.]+ (MiB|GiB|TiB) the browser allows it\.$/);

    mark('checkpoints stored');
    await page.reload();
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    mark('reloaded, ready');
    const item = runItem(page);
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 10_000 }).toBe('interrupted');
    const kept = await storedCheckpoint(page);
    expect(kept).toBeGreaterThanOrEqual(2);
    const stepsBefore = await stepShown(page);
    expect(stepsBefore).toBeGreaterThanOrEqual(kept);
    // Its curves are drawn again: every step that reached the archive.
    await expect.poll(() => lossPoints(page)).toBe(stepsBefore);
    expect(await page.getByTestId('distill-message').textContent()).toMatch(new RegExp(`^Interrupted after step ${stepsBefore} of 40 .*checkpoint of step ${kept}\\.$`));
    await screenshot(page, 'persistence-reloaded');

    await item.getByRole('button', { name: `Continue from step ${kept}` }).click();
    await expect.poll(() => state(page), { timeout: 120_000, interval: 200 }).toBe('running');
    mark('resumed');
    expect(await page.getByTestId('distill-message').textContent()).toContain(`resumed from the checkpoint of step ${kept}`);
    await expect.poll(() => stepShown(page), { timeout: 120_000, interval: 200 }).toBeGreaterThan(kept);
    // The curves go on: the points up to the checkpoint, then the new ones.
    await expect.poll(() => lossPoints(page), { timeout: 10_000 }).toBeGreaterThan(kept);
    expect(await runItem(page).getAttribute('data-status')).toBe('running');
    expect(await page.getByTestId('run-item').count()).toBe(1);
    await screenshot(page, 'persistence-resumed');
  });

  it('a crashed GPU process during the run: a new device, the run resumed by itself from its checkpoint', async () => {
    const { page } = lab;
    const resumedFrom = await storedCheckpoint(page);
    await expect.poll(() => storedCheckpoint(page), { timeout: 120_000, interval: 200 }).toBeGreaterThan(resumedFrom);
    const cdp = await browser.newBrowserCDPSession();
    await cdp.send('Browser.crashGpuProcess');
    const banner = page.getByTestId('run-recovery');
    await banner.waitFor({ timeout: 60_000 });
    expect(await banner.getAttribute('data-cause')).toBe('device-lost');
    await expect.poll(() => banner.getAttribute('data-phase'), { timeout: 180_000, interval: 250 }).toBe('resumed');
    const message = (await page.getByTestId('run-recovery-message').textContent()) ?? '';
    const [, lostAt, resumedAt] = /lost at step (\d+)\. .*resumed the run from step (\d+)\.$/.exec(message) ?? [];
    expect(Number(lostAt) - Number(resumedAt)).toBeLessThanOrEqual(1); // at most one checkpoint interval (1 step)
    await expect.poll(() => stepShown(page), { timeout: 120_000, interval: 200 }).toBeGreaterThan(Number(resumedAt));
    expect(await state(page)).toBe('running');
    expect(await page.getByTestId('webgpu-problem').count()).toBe(0);
    await expect.poll(() => screenshot(page, 'persistence-device-lost').then(() => true, () => false), { timeout: 30_000, interval: 500 }).toBe(true);
    await page.getByRole('button', { name: 'Dismiss' }).click();
  });

  it('a crashed worker is said within a second, restarted, and the run offered for resuming', async () => {
    const { page } = lab;
    await expect.poll(() => page.workers().length).toBeGreaterThan(0);
    const worker = page.workers().find((w) => w.url().includes('lab.worker')) ?? page.workers()[0];
    // The moment the banner appears, read in the page (the worker shares its clock).
    await page.evaluate(() => {
      const w = window as unknown as { bannerAt: number | null };
      w.bannerAt = null;
      new MutationObserver((_, observer) => {
        if (!document.querySelector('[data-testid=run-recovery][data-cause=worker-crashed]')) return;
        w.bannerAt = Date.now();
        observer.disconnect();
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    // An uncaught error in a timer of the worker: what a bug in the engine would do. It carries the
    // moment it was thrown (the worker shares the page's clock), which the banner's detail shows.
    await worker.evaluate(() => {
      setTimeout(() => {
        throw new Error(`simulated crash of the lab worker at ${Date.now()}`);
      }, 0);
    });
    const banner = page.getByTestId('run-recovery');
    await banner.waitFor({ timeout: 5_000 });
    const detail = (await banner.locator('details pre').textContent()) ?? '';
    const thrownAt = Number(/simulated crash of the lab worker at (\d+)/.exec(detail)?.[1]);
    const noticedMs = (await page.evaluate(() => (window as unknown as { bannerAt: number | null }).bannerAt))! - thrownAt;
    expect(noticedMs).toBeLessThan(1000);
    expect(await banner.getAttribute('data-cause')).toBe('worker-crashed');
    expect(await page.getByTestId('run-recovery-message').textContent()).toMatch(/^The lab worker crashed/);
    await expect.poll(() => banner.getAttribute('data-phase'), { timeout: 120_000, interval: 250 }).toBe('offer');
    expect(await page.textContent('[data-testid=status-state]')).toBe('Ready');
    expect(await runItem(page).getAttribute('data-status')).toBe('interrupted');
    const kept = await storedCheckpoint(page);
    expect(await banner.getByRole('button', { name: `Continue the run from step ${kept}` }).isEnabled()).toBe(true);
    expect(await runItem(page).getByRole('button', { name: `Continue from step ${kept}` }).isEnabled()).toBe(true);
    await screenshot(page, 'persistence-worker-crashed');
    console.log(`worker crash noticed in ${noticedMs} ms; offered from step ${kept}`);
  });

  it('exports the run as one file that opd-lab reads, and imports it back', async () => {
    const { page } = lab;
    const interruptedAt = await stepShown(page);
    const kept = await storedCheckpoint(page);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), runItem(page).getByRole('button', { name: 'Export the run' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^opd-sampled-add-student-from-add-teacher-[\d-]+\.opdrun\.zip$/);
    mkdirSync(OUT, { recursive: true });
    const file = join(OUT, 'run.opdrun.zip');
    writeFileSync(file, readFileSync(await download.path()));
    const { record, checkpoint } = unpackRunFile(new Uint8Array(readFileSync(file)));
    expect(record.status).toBe('interrupted');
    expect(record.step).toBe(interruptedAt);
    expect(checkpoint?.step).toBe(kept);
    // One point per step from 1 to where it stopped, in order, across the reload and both recoveries.
    expect(record.steps.map((m) => m.step)).toEqual(Array.from({ length: interruptedAt }, (_, i) => i + 1));

    const shown = spawnSync(process.execPath, [BIN, 'run', 'show', file, '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(shown.status, shown.stderr).toBe(0);
    const summary = JSON.parse(shown.stdout);
    expect(summary).toMatchObject({ status: 'interrupted', step: interruptedAt, totalSteps: 40, steps: interruptedAt, checkpoint: { step: kept, format: 'opd-lab-trainer-checkpoint', runStep: kept } });

    // Imported back while the browser refuses to store more (its quota, simulated: IndexedDB's put
    // of a checkpoint throws QuotaExceededError as Chromium does): the refusal is said, with the
    // oldest checkpoints offered for deletion, never a silent failure.
    await page.evaluate(() => {
      const put = IDBObjectStore.prototype.put;
      (window as unknown as { restorePut: () => void }).restorePut = () => (IDBObjectStore.prototype.put = put);
      IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
        if (this.name === 'checkpoints') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        return put.apply(this, args);
      };
    });
    const originalId = await runItem(page).getAttribute('data-run-id');
    await page.getByTestId('run-import').setInputFiles(file);
    await expect.poll(() => page.getByTestId('run-item').count()).toBe(2);
    expect(await page.getByTestId('run-imported').textContent()).toMatch(/^Imported run\.opdrun\.zip: opd-sampled add-student from add-teacher .* \(imported\), step \d+ of 40\.$/);
    const quota = page.getByTestId('run-quota');
    await quota.waitFor({ timeout: 10_000 });
    expect(await quota.textContent()).toMatch(new RegExp(`^The browser refused to store the checkpoint of step ${kept} \\([\\d.]+ KiB\\): this site's storage quota is reached\\.`));
    // The imported run has an id of its own (the original's is taken).
    const imported = page.locator(`[data-testid=run-item]:not([data-run-id="${originalId}"])`);
    expect(await imported.getByTestId('run-item-facts').textContent()).toMatch(/no checkpoint stored\.$/);
    await screenshot(page, 'persistence-quota');
    await page.evaluate(() => (window as unknown as { restorePut: () => void }).restorePut());
    await quota.getByRole('button', { name: /^Delete the oldest checkpoint \(/ }).click();
    await expect.poll(() => quota.count()).toBe(0);
    await expect.poll(() => imported.getByTestId('run-item-facts').textContent()).toMatch(new RegExp(`checkpoint of step ${kept} stored`));
    await screenshot(page, 'persistence-exported');
    expect(lab.errors.filter((e) => !/simulated crash|device|GPU|WebGPU/i.test(e))).toEqual([]);
  });
});
