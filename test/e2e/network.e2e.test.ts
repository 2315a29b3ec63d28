/**
 * What the page asks of the network, and what it may run (issue 13, untrusted input).
 *
 * A person opens the lab, loads the built-in models and scores a prompt. Every request of the
 * page and of its worker (Playwright's context-level 'request' event reports a dedicated worker's
 * requests too: the model files and ORT's .wasm below are fetched by the worker) goes to the
 * lab's own origin, and only for what was asked: the app, ORT's runtime files, the list of
 * built-in models and the two models' files. The Content-Security-Policy (vite.config.ts) comes
 * with the page and the worker, nothing breaks under it, and it blocks eval, inline scripts and
 * remote scripts.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { join, resolve } from 'node:path';
import { launch } from './browser';
import { modelsIndex } from '../../scripts/vite-built-in-models';
import { ORT_RUNTIME_FILES } from '../../vite.config';

const MODELS_DIR = resolve(process.env.OPD_LAB_MODELS_DIR || join(import.meta.dirname, '..', '..', 'models'));
const onDisk = modelsIndex(MODELS_DIR).models;
const student = onDisk.find((m) => m.role === 'student' && !m.preset);
const teacher = onDisk.find((m) => m.role === 'teacher' && !m.preset);

/** The policy's directives by name. */
function directives(policy: string): Map<string, string[]> {
  return new Map(
    policy
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name, values]),
  );
}

/** Records CSP violations in the page (they are events, not console errors, when nothing else reports them). */
const RECORD_VIOLATIONS = () => {
  const w = window as unknown as { cspViolations: string[] };
  w.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'}`));
};
const violations = (page: Page) => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);

describe('the network and the Content-Security-Policy', () => {
  let browser: Browser;
  const baseUrl = inject('baseUrl');
  const origin = new URL(baseUrl).origin;
  beforeAll(async () => {
    browser = await launch('swiftshader');
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('opening the lab, loading the built-in models and scoring a prompt asks the lab’s own origin only, for the app, ORT and the two models', { timeout: 420_000 }, async () => {
    expect(student && teacher, 'models/ needs a built-in student and teacher (npm run build:models)').toBeTruthy();
    const context = await browser.newContext();
    const requests: string[] = [];
    const workerUrls: string[] = [];
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('worker', (w) => workerUrls.push(w.url()));
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(RECORD_VIOLATIONS);

    const response = await page.goto(`${baseUrl}#panel=inspect`);
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByRole('button', { name: 'Load the built-in student and teacher' }).click();
    await page.getByTestId('teacher-summary').waitFor({ timeout: 120_000 });
    await page.getByTestId('student-summary').waitFor({ timeout: 60_000 });
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('12+34=');
    await page.getByLabel('Completion to score').fill('46');
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await page.getByTestId('heatmap').waitFor({ timeout: 180_000 });
    expect(await page.getByTestId('heatmap-token').count()).toBeGreaterThan(0);

    // Every request on the lab's origin…
    expect(requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    // …and for what the person asked: the page, its code, ORT's files, the two models.
    const allowed = (path: string) =>
      path === '/' ||
      path === '/favicon.svg' ||
      /^\/assets\/[\w.-]+\.(js|css|wasm)$/.test(path) ||
      ORT_RUNTIME_FILES.some((f) => path === `/ort/${f}`) ||
      path === '/models/index.json' ||
      // The two folders' files, and the ones the lab looks for in any folder (chat_template.jinja, ONNX variants).
      [student!, teacher!].some((m) => path.startsWith(`/models/${m.name}/`));
    const paths = requests.map((u) => new URL(u).pathname);
    expect(paths.filter((p) => !allowed(p))).toEqual([]);
    // The worker's requests are in the record: the models' files and ORT's wasm are fetched by it.
    expect(workerUrls.length).toBeGreaterThan(0);
    for (const m of [student!, teacher!]) expect(paths).toContain(`/models/${m.name}/config.json`);
    expect(paths.some((p) => p.startsWith('/ort/') && p.endsWith('.wasm'))).toBe(true);
    // Nothing the other built-in models hold was asked for.
    const others = onDisk.filter((m) => m.name !== student!.name && m.name !== teacher!.name);
    expect(paths.filter((p) => others.some((m) => p.startsWith(`/models/${m.name}/`)))).toEqual([]);

    // The policy came with the page and with the worker's script, and nothing was blocked.
    const policy = response!.headers()['content-security-policy'];
    expect(policy).toBeTruthy();
    const workerScript = await context.request.get(workerUrls[0]);
    expect(workerScript.headers()['content-security-policy']).toBe(policy);
    expect(await violations(page)).toEqual([]);
    expect(errors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('the policy: scripts from the lab’s origin only, no eval beyond wasm, no inline script, nothing remote', async () => {
    const context = await browser.newContext();
    const r = await context.request.get(baseUrl);
    const policy = r.headers()['content-security-policy'];
    const d = directives(policy);
    expect(d.get('script-src')).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(d.get('default-src')).toEqual(["'self'"]);
    expect(d.get('worker-src')).toEqual(["'self'"]);
    expect(d.get('object-src')).toEqual(["'none'"]);
    expect(d.get('base-uri')).toEqual(["'none'"]);
    // Model folders may be on any https origin, or on a server on this machine.
    expect(d.get('connect-src')).toEqual(["'self'", 'data:', 'https:', 'http://localhost:*', 'http://127.0.0.1:*']);
    // The built page carries the same policy as a meta tag (less frame-ancestors, which a meta tag cannot set).
    const html = await r.text();
    const meta = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)"/)?.[1].replace(/&#39;/g, "'");
    expect(meta).toBe(policy.replace(/; frame-ancestors 'none'$/, ''));
    await context.close();
  });

  it('the page cannot eval, run an inline script or load a remote script', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.addInitScript(RECORD_VIOLATIONS);
    await page.goto(baseUrl);
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toMatch(/Ready|Loading|Starting/);
    // eval from a task of the page: code Playwright evaluates through the DevTools protocol is
    // let past the policy's eval check, a timer's callback is not.
    const evaluated = await page.evaluate(
      () =>
        new Promise<string[]>((done) =>
          setTimeout(() => {
            const results: string[] = [];
            for (const attempt of [() => eval('1 + 1'), () => new Function('return 2')()]) {
              try {
                attempt();
                results.push('ran');
              } catch (e) {
                results.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
              }
            }
            done(results);
          }, 0),
        ),
    );
    expect(evaluated).toEqual([expect.stringMatching(/^EvalError: .*Content Security Policy/), expect.stringMatching(/^EvalError: .*Content Security Policy/)]);
    await page.evaluate(() => setTimeout('window.ranString = 1', 0));
    const outcome = await page.evaluate(
      () =>
        new Promise<{ inline: unknown; remote: string; ranString: unknown }>((done) => {
          const inline = document.createElement('script');
          inline.textContent = 'window.inlineRan = true';
          document.head.append(inline);
          const remote = document.createElement('script');
          remote.src = 'https://cdn.example.com/evil.js';
          remote.onload = () => done({ inline: (window as never)['inlineRan'], remote: 'loaded', ranString: (window as never)['ranString'] });
          remote.onerror = () => done({ inline: (window as never)['inlineRan'], remote: 'blocked', ranString: (window as never)['ranString'] });
          document.head.append(remote);
        }),
    );
    expect(outcome).toEqual({ inline: undefined, remote: 'blocked', ranString: undefined });
    const seen = await violations(page);
    expect(seen).toEqual(expect.arrayContaining(['script-src blocked eval', 'script-src-elem blocked inline', 'script-src-elem blocked https://cdn.example.com/evil.js']));
    await context.close();
  });
});
