import { defineConfig } from 'vitest/config';

/** `npm start` builds the app into dist/, from which every other file's pages are served. */
const NPM_START = 'test/e2e/npm-start.e2e.test.ts';

export default defineConfig({
  test: {
    environment: 'node',
    pool: 'forks',
    testTimeout: 240_000,
    hookTimeout: 240_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.e2e.test.ts'],
          exclude: [NPM_START],
          globalSetup: ['test/e2e/serve-built-app.ts'],
          // Two files, so two Chromiums, at a time on the 2 cores: a file spends much of its time in
          // single-threaded work (the page's and worker's JS, ORT's wasm, the test's own waits) that
          // leaves a core to the other. Measured with two copies of teaching.e2e.test.ts at load 8-12
          // from other work: 393 s side by side, where one alone took 245-295 s (so 490-590 s one
          // after the other); each file 1.5× slower, every check passing. Again at load ~5.7: two
          // copies of distill.e2e (10 tests each) side by side 153 s, one alone 114 s.
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          // Alone and after the others: its build rewrites dist/ under their pages (a reload or a
          // lazily fetched file would miss). It serves its own build, so it needs no global setup.
          name: 'npm-start',
          include: [NPM_START],
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
