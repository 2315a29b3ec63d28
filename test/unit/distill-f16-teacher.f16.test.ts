/**
 * A float16 teacher in a training run (lavapipe, the suite's f16 pass; vitest.f16.config.ts): one
 * opd-sampled step of a DistillRun whose teacher is onnx-community's fp16 graph of
 * test/fixtures/onnx-layouts/dtypes (float16 weights, key-values and logits; the run's teacher
 * forward converts its logits to float32 for the divergence kernels), against the same step with
 * that folder's fp32 graph. The student (test/fixtures/hf/gpt2-small, trainable, the same
 * tokenizer) and the seed are the same, so both runs sample the same completions and only the
 * teacher's arithmetic differs.
 *
 * Tolerance: the f16 logits test (onnx-layouts.f16.test.ts) allows 5e-2 between the fp16 graph's
 * logits and float32 ones. Logits moved by δ_v with |δ_v| ≤ ε move a log-prob by at most 2ε, so
 * the sampled KL (a mean of log-prob differences) by at most 2ε = 0.1, and the exact reverse KL
 * Σ p (s − q) by at most 2ε as well; the test asks for 0.1 on both, and the step's loss is the
 * sampled-KL advantage times ratios of 1, so the same bound holds for it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testF16Device } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { dirSource } from '../../workers/node/fs-source';
import { readModelFolder, type OnnxDtype } from '../../workers/models/folder';
import { DistillRun } from '../../workers/distill/run';
import { promptSetTask } from '../../workers/prompts/set';
import type { StepMetrics } from '../../workers/contract/run';

const FIXTURES = join(import.meta.dirname, '../fixtures');
/** Twice the f16 logits test's 5e-2 (see the header). */
const TOLERANCE = 0.1;

describe('a float16 teacher in a distillation run', () => {
  const runs: DistillRun[] = [];
  afterAll(async () => {
    for (const r of runs) await r.release();
  });

  it('opd-sampled: the fp16 teacher’s step has finite KLs within the f16 tolerance of the fp32 teacher’s', async () => {
    configureOrt({ numThreads: 1 });
    const device = await testF16Device();
    const task = promptSetTask({ label: 'prompts', train: ['Hello there', 'What is 2+2?'], heldOut: ['Good night'], rendered: false });
    const step = async (dtype: OnnxDtype): Promise<StepMetrics> => {
      const student = await readModelFolder(await dirSource(join(FIXTURES, 'hf/gpt2-small')), { requireWeights: true });
      const teacher = await readModelFolder(await dirSource(join(FIXTURES, 'onnx-layouts/dtypes')), { dtype, shaderF16: true });
      expect(teacher.onnxDtype).toBe(dtype);
      const run = await DistillRun.create(device, { student, teacher, task, options: { objective: 'opd-sampled', batchPrompts: 2, groupSize: 2, maxTokens: 4, lr: 1e-3, seed: 1 } });
      runs.push(run);
      return run.trainStep();
    };
    const f32 = await step('fp32');
    const f16 = await step('fp16');
    console.log(
      `one opd-sampled step, teacher fp32 / fp16: reverse KL ${f32.reverseKL.toFixed(5)} / ${f16.reverseKL.toFixed(5)}, sampled KL ${f32.sampledKL.toFixed(5)} / ${f16.sampledKL.toFixed(5)}, loss ${f32.loss.toFixed(5)} / ${f16.loss.toFixed(5)}`,
    );
    for (const m of [f32, f16]) {
      expect(m.applied).toBe(true);
      expect(Number.isFinite(m.reverseKL) && Number.isFinite(m.sampledKL) && Number.isFinite(m.loss)).toBe(true);
    }
    // The same completions (same student, same seed): only the teacher's arithmetic differs.
    expect(f16.tokensSampled).toBe(f32.tokensSampled);
    // Not trivially equal: a student and a teacher that disagree.
    expect(f32.reverseKL).toBeGreaterThan(0.1);
    expect(Math.abs(f16.reverseKL - f32.reverseKL)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(f16.sampledKL - f32.sampledKL)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(f16.loss - f32.loss)).toBeLessThanOrEqual(TOLERANCE);
  });
});
