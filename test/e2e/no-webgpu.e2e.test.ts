import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { INSECURE_HOST, launch, openLab, screenshot } from './browser';

describe('the lab in a browser that cannot give it WebGPU', () => {
  let browser: Browser | undefined;
  afterEach(async () => {
    await browser?.close();
    browser = undefined;
  });

  it('says "no WebGPU adapter" and what to do when Chromium runs without --enable-unsafe-webgpu', async () => {
    browser = await launch('no-adapter');
    const { page } = await openLab(browser, inject('baseUrl'));
    const problem = page.getByTestId('webgpu-problem');
    await problem.waitFor({ timeout: 60_000 });
    expect(await problem.getAttribute('data-code')).toBe('no-adapter');
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe('No WebGPU adapter available');
    const text = (await problem.textContent()) ?? '';
    expect(text).toContain('--enable-unsafe-webgpu');
    expect(text).toContain('Chrome or Edge 113+');
    expect(await page.textContent('[data-testid=status-state]')).toBe('No WebGPU adapter');
    await screenshot(page, 'no-adapter');
  });

  it('says WebGPU is missing, and why, when the page is opened over plain http under another host name', async () => {
    browser = await launch('no-webgpu');
    const url = inject('baseUrl').replace('127.0.0.1', INSECURE_HOST);
    const { page } = await openLab(browser, url);
    expect(await page.evaluate(() => 'gpu' in navigator)).toBe(false);
    const problem = page.getByTestId('webgpu-problem');
    await problem.waitFor({ timeout: 60_000 });
    expect(await problem.getAttribute('data-code')).toBe('no-webgpu');
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe('This browser has no WebGPU');
    const text = (await problem.textContent()) ?? '';
    expect(text).toContain('not a secure context');
    expect(text).toContain('http://localhost:5173');
    await screenshot(page, 'no-webgpu');
  });
});
