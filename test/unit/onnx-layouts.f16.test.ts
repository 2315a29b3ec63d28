/**
 * The float16 onnx-community variants of test/fixtures/onnx-layouts/ (model_fp16.onnx: float16
 * weights, key-values and logits; model_q4f16.onnx: MatMulNBits with float16 scales) on an
 * adapter with shader-f16 (Mesa's lavapipe, the suite's f16 pass; vitest.f16.config.ts): the
 * default dtype with shader-f16, the last-position logits converted to float32 for scoring against
 * onnxruntime's (CPU, Python) in reference.json, and the sampler's greedy tokens with the graph's
 * own float16 KV cache against onnxruntime's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testF16Device } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { dirSource } from '../../workers/node/fs-source';
import { chooseOnnxDtype, readModelFolder } from '../../workers/models/folder';
import type { DecoderSession } from '../../workers/models/decoder-session';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions } from '../../workers/sampling/sampler';
import { forwardLogits } from '../../workers/scoring/forward';

const DIR = join(import.meta.dirname, '../fixtures/onnx-layouts');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as {
  prompt: number[];
  newTokens: number;
  variants: Record<string, { lastLogits: number[]; greedy: number[] }>;
};

describe('float16 onnx-community variants on an adapter with shader-f16', () => {
  const sessions: DecoderSession[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.session.release();
  });

  it('is the default where the folder has no fp32 graph', () => {
    expect(chooseOnnxDtype('m', ['fp16', 'q4f16', 'q4'], { shaderF16: true })).toBe('q4f16');
  });

  for (const dtype of ['fp16', 'q4f16'] as const) {
    it(`dtypes/${dtype}: float32 logits and greedy tokens as onnxruntime's`, async () => {
      configureOrt({ numThreads: 1 });
      const device = await testF16Device();
      const folder = await readModelFolder(await dirSource(join(DIR, 'dtypes')), { dtype, shaderF16: true });
      expect(folder.onnxLabel.endsWith(`onnx/model_${dtype}.onnx`)).toBe(true);
      const decoder = await openSamplingSession(device, folder.config!, folder.onnx, folder.onnxLabel);
      sessions.push(decoder);
      expect(decoder.kvType).toBe('float16');
      const ref = reference.variants[`dtypes/${dtype}`];
      const forward = await forwardLogits(decoder.session, [reference.prompt], 0, device);
      expect(forward.logits.type).toBe('float32');
      const all = (await forward.logits.getData(true)) as Float32Array;
      const V = forward.vocab;
      const last = all.subarray((reference.prompt.length - 1) * V, reference.prompt.length * V);
      let worst = 0;
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(last[v] - ref.lastLogits[v]));
      console.log(`dtypes/${dtype}: max |logit − onnxruntime CPU| = ${worst.toExponential(2)}`);
      // float16 arithmetic on two backends (onnxruntime's CPU kernels accumulate some float16 ops
      // in float32, WebGPU's in float16): logits of size ~5, where one float16 step is 3.9e-3.
      // Measured on lavapipe: fp16 2.6e-2, q4f16 2.3e-2 (under 7 steps).
      expect(worst).toBeLessThanOrEqual(5e-2);
      const [completion] = await sampleCompletions(decoderRunner(folder.config!, decoder), {
        prompts: [reference.prompt], n: 1, maxTokens: reference.newTokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, eosTokenId: null,
      });
      expect(completion.tokens).toEqual(ref.greedy);
    });
  }
});
