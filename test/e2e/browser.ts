/**
 * Launching Debian's Chromium with playwright-core (never a downloaded browser), with the flags
 * that give WebGPU on a machine without a GPU (SwiftShader), or without WebGPU at all.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', 'output', 'screenshots');

const QUIET = ['--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export type WebGpuMode =
  /** WebGPU on, on SwiftShader's CPU adapter. */
  | 'swiftshader'
  /** WebGPU exists but no adapter is given (Chromium on Linux without --enable-unsafe-webgpu). */
  | 'no-adapter'
  /**
   * No navigator.gpu at all. This Chromium cannot switch WebGPU off by flag, but browsers hide it
   * from pages that are not secure contexts: the lab opened over plain http under a host name
   * other than localhost. That host name is mapped to 127.0.0.1 (see INSECURE_HOST).
   */
  | 'no-webgpu';

/** A host name that resolves to 127.0.0.1 inside the test browser only. */
export const INSECURE_HOST = 'opd-lab.test';

export async function launch(mode: WebGpuMode, extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: run 'bash scripts/ensure-system-deps.sh' (apt-get install -y chromium).`);
  const args = ['--no-sandbox', ...QUIET, ...extraArgs];
  if (mode === 'swiftshader') args.push('--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader');
  if (mode === 'no-webgpu') args.push(`--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

export interface PageRecord {
  page: Page;
  /** Every URL the page (and its workers) asked for. */
  requests: string[];
  /** Console errors and uncaught exceptions. */
  errors: string[];
}

export async function openLab(browser: Browser, url: string): Promise<PageRecord> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const record: PageRecord = { page, requests: [], errors: [] };
  context.on('request', (r) => record.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') record.errors.push(m.text());
  });
  page.on('pageerror', (e) => record.errors.push(e.message));
  await page.goto(url);
  return record;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Points of each line drawn in a chart: one entry per curve, its vertex count read from the SVG path ("M x,y L x,y …": one M and one L per further point). */
export async function curvePoints(page: Page, chart: string): Promise<number[]> {
  const paths = await page.locator(`[data-testid=${chart}] path.recharts-line-curve`).evaluateAll((els) => els.map((e) => e.getAttribute('d') ?? ''));
  return paths.map((d) => (d.match(/[ML]/g) ?? []).length);
}
