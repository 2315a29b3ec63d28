import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launch, screenshot } from './browser';

const PANELS = ['inspect', 'distill', 'compare', 'models', 'system'] as const;

/** Marks every control with a key, then tabs through the page and returns the keys not reached. */
async function tabThrough(page: Page): Promise<{ controls: number; missed: string[] }> {
  const keys = await page.evaluate(() => {
    let i = 0;
    const out: string[] = [];
    for (const e of document.querySelectorAll<HTMLElement>('button, input, select, textarea, a[href], [tabindex]:not([tabindex="-1"])')) {
      const r = e.getBoundingClientRect();
      const disabled = (e as HTMLButtonElement).disabled || e.closest('fieldset:disabled') !== null;
      if (r.width === 0 || r.height === 0 || disabled || getComputedStyle(e).visibility === 'hidden') continue;
      const label = e.getAttribute('aria-label') ?? e.textContent?.trim().slice(0, 40) ?? '';
      e.dataset.a11yKey = `${i++} ${e.tagName.toLowerCase()}${e instanceof HTMLInputElement ? `[${e.type}]` : ''} ${label}`;
      out.push(e.dataset.a11yKey);
    }
    return out;
  });
  const reached = new Set<string>();
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  // Radio groups take one Tab stop (arrows move inside them): a group counts as reached through any member.
  for (let n = 0; n < keys.length * 2 + 20; n++) {
    await page.keyboard.press('Tab');
    const k = await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.a11yKey ?? null);
    if (k) reached.add(k);
  }
  const radioGroups = await page.evaluate(() => {
    const groups: Record<string, string[]> = {};
    for (const e of document.querySelectorAll<HTMLInputElement>('input[type=radio][data-a11y-key]')) (groups[e.name] ??= []).push(e.dataset.a11yKey!);
    return Object.values(groups);
  });
  const missed = new Set(keys.filter((k) => !reached.has(k)));
  for (const g of radioGroups) if (g.some((k) => reached.has(k))) for (const k of g) missed.delete(k);
  return { controls: keys.length, missed: [...missed] };
}

describe('keyboard and narrow windows: every panel', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launch('swiftshader');
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const width of [420, 1280]) {
    it(`at ${width} px every control is reached by Tab and nothing runs off the side`, async () => {
      const context = await browser.newContext({ viewport: { width, height: 800 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${inject('baseUrl')}#panel=inspect`);
      await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
      for (const panel of PANELS) {
        await page.evaluate((p) => (location.hash = `panel=${p}`), panel);
        await page.waitForTimeout(300);
        // Nothing wider than the window: the page never scrolls sideways (wide tables scroll inside their own box).
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `${panel} at ${width} px runs ${overflow} px off the side`).toBeLessThanOrEqual(0);
        const { controls, missed } = await tabThrough(page);
        expect(controls, `${panel}: controls found`).toBeGreaterThan(5);
        expect(missed, `${panel} at ${width} px: not reached by Tab`).toEqual([]);
        if (width === 420) await screenshot(page, `narrow-${panel}`);
      }
      expect(errors).toEqual([]);
      await context.close();
    });
  }
});
