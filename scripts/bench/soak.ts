/**
 * The soak: one long distillation run in headless Chromium (SwiftShader's WebGPU), the app built
 * and served as `npm start` serves it, driven as a person drives it (Distill panel: the built-in
 * pair, opd-sampled, 8 prompts × 4 answers, an evaluation every 20 steps, a checkpoint every 10,
 * so the run archive and IndexedDB are exercised too). GPU buffers alive on the lab's device
 * (`memory.report`) and the JS heap of the page and its lab worker
 * (`performance.measureUserAgentSpecificMemory`, after a garbage collection) are read every
 * minute; growth is measured from the first reading after the warm-up to the last.
 *
 *   npm run bench -- soak [--minutes 30] [--warmup 2] [--out FILE]
 *
 * The bounds (SOAK_BOUNDS), from 3-minute trials: GPU buffers alive may grow by at most the
 * uniform cache's cap (MAX_CACHED_UNIFORMS in workers/gpu/launch.ts: AdamW's per-step uniforms
 * are new words every step, cached until the cap clears the cache) plus 64, and their bytes by at
 * most 16 MiB (onnxruntime-web's buffer pool, unlabelled, was seen to swing by 7.5 MiB between
 * readings); the JS heap may grow by at most 16 KiB per step done (the run's history, kept on
 * purpose: a step's metrics, the evaluations' answers and probe heatmaps) plus 16 MiB.
 */
import { build, preview } from 'vite';
import type { Page } from 'playwright-core';
import { launch } from '../../test/e2e/browser';
import { MAX_CACHED_UNIFORMS } from '../../workers/gpu/launch';

export const SOAK_BOUNDS = { gpuBuffers: MAX_CACHED_UNIFORMS + 64, gpuBytes: 16 << 20, heapPerStep: 16 << 10, heapSlack: 16 << 20 };

interface Reading {
  minute: number;
  step: number;
  gpu: { buffers: number; bytes: number; created: number; byLabel?: { label: string; buffers: number; bytes: number }[] };
  heap: { total: number; page: number; worker: number };
}

async function read(page: Page, minute: number): Promise<Reading> {
  return page.evaluate(async (minute) => {
    const w = globalThis as unknown as {
      opdLabDebug: { memoryReport(): Promise<Reading['gpu']> };
      gc?: () => void;
    };
    w.gc?.();
    const gpu = await w.opdLabDebug.memoryReport();
    const m = await (performance as unknown as { measureUserAgentSpecificMemory(): Promise<{ bytes: number; breakdown: { bytes: number; attribution: { scope: string }[] }[] }> }).measureUserAgentSpecificMemory();
    let pageBytes = 0;
    let worker = 0;
    for (const b of m.breakdown) {
      if (b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope')) worker += b.bytes;
      else pageBytes += b.bytes;
    }
    const stepText = document.querySelector('[data-testid=distill-step]')?.textContent ?? '';
    const step = Number(/step (\d+)/.exec(stepText)?.[1] ?? NaN);
    return { minute, step, gpu, heap: { total: m.bytes, page: pageBytes, worker } };
  }, minute);
}

export async function run(args: Record<string, string>): Promise<object> {
  const minutes = Number(args.minutes ?? 30);
  const warmup = Number(args.warmup ?? 2);
  if (!(minutes > warmup && warmup >= 0)) throw new Error('--minutes must exceed --warmup (both in minutes)');
  await build({ logLevel: 'warn' });
  const server = await preview({ preview: { port: 0, host: '127.0.0.1', strictPort: false }, logLevel: 'warn' });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('preview server did not bind a TCP port');
  const browser = await launch('swiftshader', ['--enable-blink-features=ForceEagerMeasureMemory', '--js-flags=--expose-gc']);
  const errors: string[] = [];
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    await page.goto(`http://127.0.0.1:${address.port}/#panel=distill`);
    await page.waitForFunction(() => document.querySelector('[data-testid=status-state]')?.textContent === 'Ready', undefined, { timeout: 180_000 });
    await page.getByRole('button', { name: 'Load the built-in student and teacher' }).click();
    await page.waitForFunction(() => (document.querySelector('[data-testid=distill-state]')?.closest('.run-controls')?.querySelector('button') as HTMLButtonElement | null)?.disabled === false, undefined, { timeout: 180_000 });
    await page.getByRole('radio', { name: /^opd-sampled/ }).check();
    const knobs: Record<string, number> = { steps: 1_000_000, 'prompts per step': 8, 'completions per prompt': 4, 'learning rate': 0.0005, 'eval every': 20, 'eval prompts': 64, 'checkpoint every': 10 };
    for (const [label, v] of Object.entries(knobs)) await page.getByLabel(label, { exact: true }).fill(String(v));
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=distill-state]')?.textContent === 'running', undefined, { timeout: 180_000 });
    const t0 = Date.now();
    const readings: Reading[] = [];
    for (let minute = warmup; minute <= minutes; minute++) {
      const wait = t0 + minute * 60_000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const r = await read(page, minute);
      readings.push(r);
      console.error(`soak: minute ${minute}: step ${r.step}, GPU ${r.gpu.buffers} buffers ${r.gpu.bytes} B, heap ${(r.heap.total / 2 ** 20).toFixed(1)} MiB (worker ${(r.heap.worker / 2 ** 20).toFixed(1)})`);
    }
    const state = await page.getByTestId('distill-state').textContent();
    const [first, last] = [readings[0], readings.at(-1)!];
    const steps = last.step - first.step;
    const growth = { gpuBuffers: last.gpu.buffers - first.gpu.buffers, gpuBytes: last.gpu.bytes - first.gpu.bytes, heapBytes: last.heap.total - first.heap.total };
    // What grew, by buffer label (onnxruntime-web's buffers have none).
    const labels = new Map<string, { buffers: number; bytes: number }>();
    for (const [r, sign] of [[first, -1], [last, 1]] as const) {
      for (const l of r.gpu.byLabel ?? []) {
        const t = labels.get(l.label) ?? { buffers: 0, bytes: 0 };
        t.buffers += sign * l.buffers;
        t.bytes += sign * l.bytes;
        labels.set(l.label, t);
      }
    }
    const grewByLabel = [...labels].filter(([, t]) => t.buffers !== 0).map(([label, t]) => ({ label, ...t })).sort((a, b) => b.bytes - a.bytes);
    const heapBound = SOAK_BOUNDS.heapSlack + SOAK_BOUNDS.heapPerStep * steps;
    const within = growth.gpuBuffers <= SOAK_BOUNDS.gpuBuffers && growth.gpuBytes <= SOAK_BOUNDS.gpuBytes && growth.heapBytes <= heapBound && state === 'running' && errors.length === 0;
    console.error(`soak: ${minutes - warmup} minutes, ${steps} steps: GPU ${growth.gpuBuffers} buffers (bound ${SOAK_BOUNDS.gpuBuffers}), ${(growth.gpuBytes / 2 ** 20).toFixed(2)} MiB (bound ${SOAK_BOUNDS.gpuBytes / 2 ** 20} MiB); heap ${(growth.heapBytes / 2 ** 20).toFixed(2)} MiB (bound ${(heapBound / 2 ** 20).toFixed(2)} MiB); ${within ? 'within the bounds' : 'OUTSIDE the bounds'}`);
    for (const r of readings) delete r.gpu.byLabel;
    return { minutes, warmup, steps, state, growth, grewByLabel, bounds: { gpuBuffers: SOAK_BOUNDS.gpuBuffers, gpuBytes: SOAK_BOUNDS.gpuBytes, heapBytes: heapBound }, within, readings, errors };
  } finally {
    await browser.close();
    await server.close();
  }
}
