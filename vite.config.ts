import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { builtInModels } from './scripts/vite-built-in-models.ts';

const reactPreambleCode: string = react.preambleCode;

/** Cross-origin isolation: onnxruntime-web's threaded wasm needs SharedArrayBuffer. */
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * The lab's Content-Security-Policy, sent with every response of the dev server, the preview
 * server and `npm start` (and, for the build served by some other server, as a meta tag).
 *
 *   script-src   the lab's own files only: no remote script, no inline script, no eval; only
 *                'wasm-unsafe-eval', which compiling onnxruntime-web's .wasm (served by the lab
 *                at /ort/) needs. The dev server adds the hash of @vitejs/plugin-react's
 *                inline Fast Refresh preamble, its one inline script.
 *   worker-src   the lab's worker is a file of its own origin; ORT runs single-threaded
 *                (numThreads 1) and starts no blob: workers.
 *   connect-src  the lab's origin, and the model folders a person types: any https origin (the
 *                Hub, a mirror, their CDNs) and plain http only on this machine (localhost,
 *                127.0.0.1), where a local model server runs. Plain http to another
 *                host is refused: serve it over https, or forward it to localhost.
 *   style-src    'unsafe-inline': the dev server injects CSS as <style> elements; styles run no code.
 *
 * The worker has a policy of its own (a worker takes the policy of its script's response, not
 * the page's): the same header reaches it.
 */
export function contentSecurityPolicy(options: { dev?: boolean; meta?: boolean } = {}): string {
  const script = ["'self'", "'wasm-unsafe-eval'"];
  if (options.dev) script.push(`'sha256-${createHash('sha256').update(reactPreambleCode.replace('__BASE__', '/')).digest('base64')}'`);
  // (No http://[::1]:*: Chromium rejects an IPv6 literal in a source list as invalid, with a console error.)
  // data:: onnxruntime-web, in the worker, fetches a data: URL while it starts (measured: without
  // it the lab never gets past "Starting onnxruntime-web"); a data: URL only carries what the
  // script already holds, so allowing it lets nothing out.
  const connect = ["'self'", 'data:', 'https:', 'http://localhost:*', 'http://127.0.0.1:*'];
  // Vite's hot reload talks over a WebSocket to the dev server.
  if (options.dev) connect.push('ws://localhost:*', 'ws://127.0.0.1:*');
  return [
    "default-src 'self'",
    `script-src ${script.join(' ')}`,
    "worker-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    // A meta tag cannot carry frame-ancestors (browsers ignore it there).
    ...(options.meta ? [] : ["frame-ancestors 'none'"]),
  ].join('; ');
}

/** The built page carries the policy as a meta tag too, for a build served without our headers. */
function cspMetaTag(): Plugin {
  return {
    name: 'opd-lab:csp-meta',
    apply: 'build',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy({ meta: true }) }, injectTo: 'head-prepend' }],
  };
}

/** The runtime files the `onnxruntime-web/webgpu` build loads at run time. */
export const ORT_RUNTIME_FILES = ['ort-wasm-simd-threaded.asyncify.wasm', 'ort-wasm-simd-threaded.asyncify.mjs'];

function ortDistDir(): string {
  // The package exports its wasm files by name; their folder is dist/.
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm'));
}

/**
 * Serves a runtime's .wasm/.mjs files under /<prefix>/ from an installed package (dev server)
 * and copies them into the build (dist/<prefix>/), so no page ever reaches for a CDN.
 */
export function runtimeFiles(dir: string, files: readonly string[], prefix: string): Plugin {
  return {
    name: `opd-lab:runtime-files:${prefix}`,
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const match = req.url?.match(/^\/([\w-]+)\/([\w.-]+)(\?.*)?$/);
        if (!match || match[1] !== prefix || !files.includes(match[2])) return next();
        res.setHeader('Content-Type', match[2].endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        for (const [k, v] of Object.entries(isolationHeaders)) res.setHeader(k, v);
        res.end(readFileSync(join(dir, match[2])));
      });
    },
    generateBundle() {
      for (const name of files) this.emitFile({ type: 'asset', fileName: `${prefix}/${name}`, source: readFileSync(join(dir, name)) });
    },
  };
}

/** onnxruntime-web's files at /ort/ (the lab's `configureOrt({ wasmPaths: '/ort/' })`). */
export const ortRuntimeFiles = (): Plugin => runtimeFiles(ortDistDir(), ORT_RUNTIME_FILES, 'ort');

/** Headers and resolve conditions shared by the lab's build and the comparison pages' build. */
export const sharedConfig = {
  server: { headers: isolationHeaders, host: '127.0.0.1' },
  preview: { headers: isolationHeaders, host: '127.0.0.1' },
  // ORT's "extern wasm" build loads its .mjs/.wasm from env.wasm.wasmPaths (our /ort/ files)
  // instead of embedding them, so the bundle carries no second copy of the 27 MB runtime.
  resolve: { conditions: [...defaultClientConditions, 'onnxruntime-web-use-extern-wasm'] },
};

export default defineConfig({
  // The built-in model folders (models/<name>/) at <base>models/, listed in <base>models/index.json.
  plugins: [react(), ortRuntimeFiles(), builtInModels(resolve(import.meta.dirname, 'models'), isolationHeaders), cspMetaTag()],
  ...sharedConfig,
  // The lab's page gets its Content-Security-Policy (the comparison pages, vite.compare.config.ts, do not).
  server: { ...sharedConfig.server, headers: { ...isolationHeaders, 'Content-Security-Policy': contentSecurityPolicy({ dev: true }) } },
  preview: { ...sharedConfig.preview, headers: { ...isolationHeaders, 'Content-Security-Policy': contentSecurityPolicy() } },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
});
