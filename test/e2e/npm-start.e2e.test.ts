import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { launch, openLab } from './browser';

/** `npm start` exactly as a person types it, then the page it serves, in Chromium. */
describe('npm start', () => {
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
    if (server?.pid) process.kill(-server.pid, 'SIGTERM');
  });

  it('builds and serves the lab, whose status bar then names the WebGPU adapter', async () => {
    // PORT=0: any free port (the test must not depend on 5173 being free); the script prints it.
    server = spawn('npm', ['start'], { env: { ...process.env, PORT: '0' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start printed no URL in 120 s:\n${output}`)), 120_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = output.match(/served at (http:\/\/127\.0\.0\.1:\d+\/)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      server!.stdout!.on('data', onData);
      server!.stderr!.on('data', onData);
      server!.on('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
    });
    browser = await launch('swiftshader');
    const { page } = await openLab(browser, url);
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await page.textContent('[data-testid=status-adapter]')).toMatch(/google.*swiftshader/);
    const headers = (await page.request.get(url)).headers();
    expect(headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(headers['cross-origin-embedder-policy']).toBe('require-corp');
    // The built-in models come with it: models/index.json lists a student and a teacher (models/<name>/).
    const index = (await (await page.request.get(`${url}models/index.json`)).json()) as { models: { role: string | null }[] };
    expect(index.models.map((m) => m.role)).toEqual(expect.arrayContaining(['student', 'teacher']));
  });
});
