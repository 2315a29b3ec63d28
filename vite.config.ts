import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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
 * Serves onnxruntime-web's .wasm/.mjs under /ort/ from the installed package (dev server) and
 * copies them into the build (dist/ort/), so the lab never reaches for a CDN.
 */
function ortRuntimeFiles(): Plugin {
  const dir = ortDistDir();
  return {
    name: 'opd-lab:ort-runtime-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = req.url?.match(/^\/ort\/([\w.-]+)(\?.*)?$/)?.[1];
        if (!name || !ORT_RUNTIME_FILES.includes(name)) return next();
        res.setHeader('Content-Type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        for (const [k, v] of Object.entries(isolationHeaders)) res.setHeader(k, v);
        res.end(readFileSync(join(dir, name)));
      });
    },
    generateBundle() {
      for (const name of ORT_RUNTIME_FILES) {
        this.emitFile({ type: 'asset', fileName: `ort/${name}`, source: readFileSync(join(dir, name)) });
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), ortRuntimeFiles()],
  server: { headers: isolationHeaders, host: '127.0.0.1' },
  preview: { headers: isolationHeaders, host: '127.0.0.1' },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  // ORT's "extern wasm" build loads its .mjs/.wasm from env.wasm.wasmPaths (our /ort/ files)
  // instead of embedding them, so the bundle carries no second copy of the 27 MB runtime.
  resolve: { conditions: [...defaultClientConditions, 'onnxruntime-web-use-extern-wasm'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
});
