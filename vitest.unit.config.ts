import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    // The f16 tests need an adapter with shader-f16: their own pass (vitest.f16.config.ts, on lavapipe).
    exclude: [...configDefaults.exclude, 'test/unit/**/*.f16.test.ts'],
    environment: 'node',
    // No global GPU setup: a test that needs the adapter acquires it on first use (test/unit/gpu.ts)
    // and fails with instructions when there is none, so pure-logic tests need no adapter at all.
    // Dawn's binding is native and holds one Vulkan instance per process: run test files in forks.
    pool: 'forks',
    // Two test files at a time. Vitest's default on 2 cores is one (cores − 1), which leaves a core
    // idle whenever a file is in single-threaded work (Node and tsx starting a CLI child, JS, ORT's
    // wasm orchestration) rather than SwiftShader's multi-threaded dispatches. Measured on this
    // project's 2 cores: with cli.test.ts's CLI children among them (cli, divergence,
    // train-attention-loss and 8 small files, load ~9 from other work) 283 s with one worker, 226 s
    // with two, the same CPU time (123 s, 128 s); a set of GPU kernel files (divergence,
    // train-attention-loss, train-matmul, sampler, prompts-cli and 7 small files, load ~5) already
    // keeps both cores busy: 117 and 108 s with one, 106 and 116 s with two, so no slower.
    maxWorkers: 2,
    // See workers/node/node-flags.md: V8 would otherwise spend ~45 CPU-seconds per process
    // optimising onnxruntime-web's 27 MB wasm in the background (slowing the emulated GPU and
    // blocking exit); with models on the WebGPU EP that wasm only orchestrates.
    execArgv: ['--liftoff-only'],
    // Generous: the GPU here is emulated on 2 shared cores, and a test that times out leaves its
    // onnxruntime-web calls running under the next test's, which then fail in ORT's wasm ("memory
    // access out of bounds"): one slow test must not take a file's other tests with it. Measured
    // in a fresh-clone run at load average 12-15: the slowest single tests took 120-130 s.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
