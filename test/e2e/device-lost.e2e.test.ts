import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launch, openLab, screenshot } from './browser';

describe('losing the GPU device', () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it('reports a real device loss (GPU process crash) and recovers when the person reloads', async () => {
    browser = await launch('swiftshader');
    const { page } = await openLab(browser, inject('baseUrl'));
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');

    // Kill Chromium's GPU process: every GPUDevice of the page, the worker's included, is lost.
    const cdp = await browser.newBrowserCDPSession();
    await cdp.send('Browser.crashGpuProcess');

    const problem = page.getByTestId('webgpu-problem');
    await problem.waitFor({ timeout: 60_000 });
    expect(await problem.getAttribute('data-code')).toBe('device-lost');
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe('The GPU device was lost');
    expect(await page.textContent('[data-testid=status-state]')).toBe('GPU device lost');
    // The page composites again only once Chromium has started a new GPU process: until then a
    // screenshot is refused ("Unable to capture screenshot"), so take it when it can be taken.
    await expect
      .poll(() => screenshot(page, 'device-lost').then(() => true, () => false), { timeout: 30_000, interval: 500 })
      .toBe(true);

    await page.getByRole('button', { name: 'Reload the lab' }).click();
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await page.getByTestId('webgpu-problem').count()).toBe(0);
  });
});
