/**
 * The whole sampler with token choice on the GPU against the same sampler choosing in JavaScript,
 * on the built-in addition student (models/addition-student, ORT's WebGPU EP on Dawn): for the
 * same seed, the same tokens and bit-identical log-probs, with temperature, top-k and top-p set,
 * prompts of unequal length (left padding), several completions per prompt, EOS ending rows at
 * different steps (or no EOS), and read-backs every step or every few steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { readModelFolder, type ModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { builtInTask } from '../../workers/tasks/registry';
import type { DecoderSession } from '../../workers/models/decoder-session';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions, SamplingError, type DecoderRunner, type SampleRequest, type TokenEvent } from '../../workers/sampling/sampler';

const SHIPPED = join(import.meta.dirname, '..', '..', 'models');

describe('the sampler with token choice on the GPU', () => {
  let folder: ModelFolder;
  let decoder: DecoderSession;
  let runner: DecoderRunner;
  let prompts: number[][];
  let eos: number;
  beforeAll(async () => {
    const device = await testDevice();
    configureOrt({ numThreads: 1 });
    folder = await readModelFolder(await dirSource(join(SHIPPED, 'addition-student')));
    decoder = await openSamplingSession(device, folder.config!, folder.onnx, folder.onnxLabel);
    runner = decoderRunner(folder.config!, decoder);
    const { task } = builtInTask('addition', folder.rawConfig);
    // Prompts of different lengths (one and three digits), so rows are left-padded.
    prompts = ['Q: 3+4= A: ', 'Q: 123+456= A: ', 'Q: 58+7= A: '].map((p) => folder.tokenizer.encode(p));
    expect(new Set(prompts.map((p) => p.length)).size).toBeGreaterThan(1);
    expect(task.name).toBe('addition');
    eos = folder.config!.eosTokenId ?? 0;
  });
  afterAll(async () => {
    await decoder?.session.release();
  });

  const request = (over: Partial<SampleRequest>): SampleRequest => ({
    prompts, n: 2, maxTokens: 6, seed: 11, eosTokenId: eos, sampling: { temperature: 1, topK: 0, topP: 1 }, ...over,
  });

  const settings: [string, Partial<SampleRequest>][] = [
    ['temperature 1, whole vocabulary', { sampling: { temperature: 1, topK: 0, topP: 1 } }],
    ['temperature 2 (EOS at different steps), 3 completions a prompt, read back every 2 steps', { sampling: { temperature: 2, topK: 0, topP: 1 }, n: 3, maxTokens: 8, stepsPerReadback: 2, seed: 9 }],
    ['temperature 0.3, top-k 3, read back every 4 steps', { sampling: { temperature: 0.3, topK: 3, topP: 1 }, stepsPerReadback: 4 }],
    ['temperature 1.5, top-p 0.8, read back every 3 steps', { sampling: { temperature: 1.5, topK: 0, topP: 0.8 }, stepsPerReadback: 3, seed: 2 }],
    ['top-k 5 and top-p 0.9, read back every step', { sampling: { temperature: 1.2, topK: 5, topP: 0.9 }, stepsPerReadback: 1 }],
    ['greedy, no EOS', { sampling: { temperature: 0, topK: 0, topP: 1 }, eosTokenId: null }],
  ];

  for (const [name, over] of settings) {
    it(`gives the same tokens and log-probs as the JavaScript path: ${name}`, async () => {
      const jsEvents: TokenEvent[] = [];
      const gpuEvents: TokenEvent[] = [];
      const js = await sampleCompletions(runner, request({ ...over, tokenChoice: 'js' }), (e) => jsEvents.push(e));
      const gpu = await sampleCompletions(runner, request({ ...over, tokenChoice: 'gpu' }), (e) => gpuEvents.push(e));
      expect(gpu.map((c) => c.tokens)).toEqual(js.map((c) => c.tokens));
      expect(gpu.map((c) => c.finish)).toEqual(js.map((c) => c.finish));
      // Bit for bit: Object.is on every float64.
      gpu.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(Object.is(lp, js[i].logprobs[j]), `completion ${i} token ${j}: ${lp} vs ${js[i].logprobs[j]}`).toBe(true)));
      // The same events, in a different rhythm (the GPU path streams a few steps at a time).
      const key = (e: TokenEvent) => `${e.step}:${e.promptIndex}:${e.sample}:${e.token}:${e.done}`;
      expect(gpuEvents.map(key).sort()).toEqual(jsEvents.map(key).sort());
      // Sampling actually happened: not every completion of a prompt is the same (except greedy).
      if (over.sampling?.temperature !== 0) expect(new Set(js.map((c) => c.tokens.join(','))).size).toBeGreaterThan(1);
      if (over.eosTokenId === null) expect(js.every((c) => c.finish === 'length' && c.tokens.length === (over.maxTokens ?? 6))).toBe(true);
      if (over.n === 3) {
        // Rows end at EOS at different steps and keep their tail; at least one runs to the end.
        const ended = js.filter((c) => c.finish === 'eos');
        expect(ended.length).toBeGreaterThan(0);
        for (const c of ended) expect(c.tokens.indexOf(eos)).toBe(c.tokens.length - 1);
        expect(new Set(js.map((c) => c.tokens.length)).size).toBeGreaterThan(1);
      }
    });
  }

  it('refuses GPU choice without the KV cache, with a sentence that says what to do', async () => {
    await expect(sampleCompletions(runner, request({ tokenChoice: 'gpu', useKvCache: false }))).rejects.toThrow(SamplingError);
    await expect(sampleCompletions(runner, request({ tokenChoice: 'gpu', useKvCache: false }))).rejects.toThrow('sample with useKvCache');
    await expect(sampleCompletions(runner, request({ stepsPerReadback: 0 }))).rejects.toThrow('steps per read-back');
  });
});
