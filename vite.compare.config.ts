/**
 * The comparison pages (scripts/bench/pages/): OPD Lab's sampler and transformers.js on the same
 * model folder, built into .cache/compare-pages and served with the lab's isolation headers.
 * Used by `npm run bench -- sampling` (vsTransformersJs) and by the transformers.js e2e test.
 */
import { defineConfig } from 'vite';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { ortRuntimeFiles, runtimeFiles, sharedConfig } from './vite.config.ts';

/** The onnxruntime-web build transformers.js depends on (its own version, nested under it). */
function transformersOrtDir(): string {
  const fromTransformers = createRequire(createRequire(import.meta.url).resolve('@huggingface/transformers'));
  return dirname(fromTransformers.resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm'));
}

const TJS_ORT_FILES = ['asyncify', 'jsep'].flatMap((flavour) => ['mjs', 'wasm'].map((ext) => `ort-wasm-simd-threaded.${flavour}.${ext}`));
const pages = resolve(import.meta.dirname, 'scripts/bench/pages');

export const COMPARE_PAGES_DIR = resolve(import.meta.dirname, '.cache/compare-pages');

export default defineConfig({
  ...sharedConfig,
  root: pages,
  base: './',
  plugins: [ortRuntimeFiles(), runtimeFiles(transformersOrtDir(), TJS_ORT_FILES, 'tjs-ort')],
  optimizeDeps: { exclude: ['onnxruntime-web', '@huggingface/transformers'] },
  logLevel: 'warn',
  build: {
    outDir: COMPARE_PAGES_DIR,
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8192,
    rollupOptions: { input: { ours: resolve(pages, 'ours.html'), tjs: resolve(pages, 'tjs.html') } },
  },
});
