/**
 * Drives the comparison pages (scripts/bench/pages/) in Debian's Chromium on SwiftShader's
 * WebGPU: builds them, serves them and a model folder on loopback ports, and calls the page's
 * `window.opdCompare` API. Used by the sampling benchmark (vsTransformersJs) and the e2e test
 * of the transformers.js load.
 */
import { build, preview, type PreviewServer } from 'vite';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launch } from '../../test/e2e/browser';
import type { CompareApi } from './pages/compare-api';

const CONFIG = resolve(import.meta.dirname, '../../vite.compare.config.ts');

export type Implementation = 'ours' | 'tjs';

export interface ComparePages {
  /** A page running `impl`, with the folder at `folderUrl` loaded. */
  open(impl: Implementation, folderUrl: string): Promise<ComparePage>;
  /** Serves `dir` (a model folder) as <url>name/. */
  serveFolder(name: string, dir: string): string;
  close(): Promise<void>;
}

export interface ComparePage {
  page: Page;
  adapter: string;
  loadMs: number;
  generate(promptIds: number[], n: number, maxTokens: number): ReturnType<CompareApi['generate']>;
  forward(ids: number[]): ReturnType<CompareApi['forward']>;
  /** Console errors, uncaught exceptions and failed requests ("HTTP 404 <url>") so far. */
  errors: string[];
}

/** Model folders by name on a loopback port, readable by the isolated pages (CORS + CORP). */
async function folderServer(): Promise<{ server: Server; url: string; roots: Map<string, string> }> {
  const roots = new Map<string, string>();
  const server = createServer(async (req, res) => {
    const [, name, ...rest] = decodeURIComponent((req.url ?? '/').split('?')[0]).split('/');
    const root = roots.get(name);
    const file = root && normalize(join(root, ...rest));
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    if (!root || !file || !file.startsWith(root + '/')) return void res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Length': body.length }).end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('folder server did not bind a TCP port');
  return { server, url: `http://127.0.0.1:${address.port}/`, roots };
}

/**
 * `outDir`: where the pages are built (default the config's .cache/compare-pages); a benchmark
 * that may run beside the e2e tests builds its own, since each build empties its folder.
 */
export async function openComparePages(options: { browser?: Browser; outDir?: string } = {}): Promise<ComparePages> {
  const buildOptions = options.outDir ? { build: { outDir: resolve(options.outDir) } } : {};
  await build({ configFile: CONFIG, logLevel: 'warn', ...buildOptions });
  const server: PreviewServer = await preview({ configFile: CONFIG, preview: { port: 0, host: '127.0.0.1', strictPort: false }, logLevel: 'warn', ...buildOptions });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('preview server did not bind a TCP port');
  const base = `http://127.0.0.1:${address.port}/`;
  const folders = await folderServer();
  const browser = options.browser ?? (await launch('swiftshader'));
  const pages: Page[] = [];
  return {
    serveFolder(name, dir) {
      folders.roots.set(name, resolve(dir));
      return `${folders.url}${name}/`;
    },
    async open(impl, folderUrl) {
      const context = await browser.newContext();
      const page = await context.newPage();
      pages.push(page);
      const errors: string[] = [];
      // The lab's loader asks with HEAD whether a folder has its optional files (chat_template.jinja,
      // the ONNX variants); a 404 there is an answer, not a failure. Chromium still logs each one
      // as "Failed to load resource … 404", so that message is left to the response listener,
      // which records every failed GET.
      page.on('console', (m) => {
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 404/.test(m.text())) errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('response', (r) => {
        if (r.status() >= 400 && !(r.status() === 404 && r.request().method() === 'HEAD')) errors.push(`HTTP ${r.status()} ${r.url()}`);
      });
      await page.goto(`${base}${impl}.html`);
      await page.waitForFunction(() => window.opdCompare !== undefined);
      const loaded = await page.evaluate((url) => window.opdCompare!.load(url), folderUrl);
      return {
        page,
        errors,
        adapter: loaded.adapter,
        loadMs: loaded.ms,
        generate: (promptIds, n, maxTokens) =>
          page.evaluate(([p, k, m]) => window.opdCompare!.generate(p, k, m), [promptIds, n, maxTokens] as [number[], number, number]),
        forward: (ids) => page.evaluate((x) => window.opdCompare!.forward(x), ids),
      };
    },
    async close() {
      for (const page of pages) await page.context().close().catch(() => {});
      if (!options.browser) await browser.close();
      folders.server.close();
      await server.close();
    },
  };
}
