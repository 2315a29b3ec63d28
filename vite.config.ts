import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { builtInModels } from './scripts/vite-built-in-models.ts';

/** Cross-origin isolation: onnxruntime-web's threaded wasm needs SharedArrayBuffer. */
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

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
  plugins: [react(), ortRuntimeFiles(), builtInModels(resolve(import.meta.dirname, 'models'), isolationHeaders)],
  ...sharedConfig,
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
});
