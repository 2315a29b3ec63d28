import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launch, openLab, screenshot, type PageRecord } from './browser';

describe('the lab in Chromium with a WebGPU adapter (SwiftShader)', () => {
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

  it('is cross-origin isolated and shows the adapter, the execution provider and the limits in the status bar', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    const adapter = await page.textContent('[data-testid=status-adapter]');
    expect(adapter).toContain('google');
    expect(adapter).toContain('swiftshader');
    expect(adapter).toContain('fallback');
    const runtime = await page.textContent('[data-testid=status-runtime]');
    expect(runtime).toMatch(/EP: webgpu \(onnxruntime-web 1\.\d+\.\d+, shared device\)/);
    expect(await page.textContent('[data-testid=status-limits]')).toContain('binding 1 GiB');
    await screenshot(page, 'lab-ready');
  });

  it('runs the GPU interop self-check inside the worker when the person asks for it', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'System' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'GPU interop self-check' }).isVisible()).toBe(true);
    expect(page.url()).toContain('panel=system');
    await page.getByRole('button', { name: 'Run interop check' }).click();
    const result = page.getByTestId('interop-result');
    await result.waitFor({ timeout: 120_000 });
    const text = (await result.textContent()) ?? '';
    expect(text).toContain('Passed');
    expect(text).toContain('4,099 values');
    const err = Number(await page.getByTestId('interop-error').textContent());
    expect(err).toBeGreaterThanOrEqual(0);
    expect(err).toBeLessThanOrEqual(2e-5);
    // The table shows ORT's value and ours: z = 2·y + 1 for the rows a person reads.
    const rows = await page.locator('[data-testid=interop-result] tbody tr').allTextContents();
    expect(rows.length).toBeGreaterThanOrEqual(3);
    await screenshot(page, 'system-interop');
  });

  it('loads nothing from outside the lab (no CDN) and logs no errors', () => {
    const foreign = lab.requests.filter((u) => !u.startsWith(baseUrl) && !u.startsWith('data:') && !u.startsWith('blob:'));
    expect(foreign).toEqual([]);
    expect(lab.requests.some((u) => u.endsWith('/ort/ort-wasm-simd-threaded.asyncify.wasm'))).toBe(true);
    expect(lab.errors).toEqual([]);
  });
});
