import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launch, openLab, screenshot, type PageRecord } from './browser';

describe('the divergence kernels in Chromium (the lab worker, SwiftShader adapter)', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=system`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('match the float64 reference on every case when the person runs the kernel check', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByRole('button', { name: 'Run kernel check' }).click();
    const result = page.getByTestId('divergence-result');
    await result.waitFor({ timeout: 200_000 });
    const summary = (await result.locator('p').first().textContent()) ?? '';
    expect(summary).toMatch(/^Passed: (\d+) of \1 cases within tolerance/);
    const rows = await page.getByTestId('divergence-case').allTextContents();
    // The fixed cases include the awkward vocabularies and inputs named in the issue.
    expect(rows.length).toBeGreaterThanOrEqual(8);
    expect(rows.some((r) => r.includes('50,257'))).toBe(true);
    for (const row of rows) expect(row.endsWith('pass'), row).toBe(true);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'system-kernels');
  });
});
