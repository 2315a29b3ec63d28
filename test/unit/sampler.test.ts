/**
 * The student sampler on the ONNX GPT-2 decoder (ORT WebGPU EP on Dawn) against the float64
 * reference: reproducible by seed, the recorded log-probs equal a separate scoring pass, the KV
 * cache changes nothing but the work, and bad requests are refused with a clear sentence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { randomGpt2Params } from '../../workers/models/gpt2/params';
import { Gpt2Reference } from '../reference/gpt2';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import type { DecoderSession } from '../../workers/models/decoder-session';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions, SamplingError, type DecoderRunner, type SampleRequest, type TokenEvent } from '../../workers/sampling/sampler';
import { logSoftmax } from '../../workers/sampling/choose';

const config: Gpt2Config = {
  modelType: 'gpt2', nLayer: 2, nHead: 3, nEmbd: 24, nInner: 96, nPositions: 40, vocabSize: 37,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};
const params = randomGpt2Params(config, { seed: 11, scheme: 'test' });
const reference = new Gpt2Reference(config, params);
const EOS = 0;

/**
 * Log-prob tolerance: the decoder's logits match the float64 reference within 1e-4 (see
 * gpt2-decoder.test.ts; measured ~5e-6), and a log-softmax moves by at most twice the largest
 * logit error, so 2e-4; a wrong prefix, position or padding mask moves log-probs by ≫ 0.01.
 */
const LOGPROB_TOLERANCE = 2e-4;

describe('the student sampler', () => {
  let decoder: DecoderSession;
  let runner: DecoderRunner;
  beforeAll(async () => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    decoder = await openSamplingSession(device, config, buildGpt2Decoder(config, { kind: 'initializers', params }));
    runner = decoderRunner(config, decoder);
  });
  afterAll(async () => {
    await decoder?.session.release();
  });

  const request = (over: Partial<SampleRequest> = {}): SampleRequest => ({
    prompts: [[5, 9, 2, 17], [3, 30]],
    n: 3,
    maxTokens: 10,
    sampling: { temperature: 1, topK: 0, topP: 1 },
    seed: 7,
    eosTokenId: EOS,
    ...over,
  });

  it('records log-probs equal to scoring the same tokens with the reference, despite left padding', async () => {
    const events: TokenEvent[] = [];
    const completions = await sampleCompletions(runner, request(), (e) => events.push(e));
    expect(completions).toHaveLength(6);
    expect(events).toHaveLength(completions.reduce((a, c) => a + c.tokens.length, 0));
    let worst = 0;
    for (const c of completions) {
      expect(c.tokens.length).toBeGreaterThan(0);
      expect(c.tokens.length).toBeLessThanOrEqual(10);
      expect(c.finish).toBe(c.tokens.at(-1) === EOS ? 'eos' : 'length');
      if (c.finish === 'length') expect(c.tokens).toHaveLength(10);
      const prompt = request().prompts[c.promptIndex];
      const logits = reference.forward([...prompt, ...c.tokens.slice(0, -1)]);
      c.tokens.forEach((token, i) => {
        const lp = logSoftmax(logits[prompt.length - 1 + i])[token];
        worst = Math.max(worst, Math.abs(lp - c.logprobs[i]));
      });
    }
    expect(worst).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
    // Different completions of one prompt differ (different streams), so sampling is not greedy.
    const firstPrompt = completions.filter((c) => c.promptIndex === 0).map((c) => c.tokens.join(','));
    expect(new Set(firstPrompt).size).toBeGreaterThan(1);
  });

  it('gives the same tokens for the same seed, other tokens for another seed', async () => {
    const a = await sampleCompletions(runner, request());
    const b = await sampleCompletions(runner, request());
    const c = await sampleCompletions(runner, request({ seed: 8 }));
    expect(b.map((x) => x.tokens)).toEqual(a.map((x) => x.tokens));
    expect(c.map((x) => x.tokens)).not.toEqual(a.map((x) => x.tokens));
  });

  it('samples the same tokens with and without the KV cache', async () => {
    const cached = await sampleCompletions(runner, request({ maxTokens: 6 }));
    const rerun = await sampleCompletions(runner, request({ maxTokens: 6, useKvCache: false }));
    expect(rerun.map((x) => x.tokens)).toEqual(cached.map((x) => x.tokens));
    rerun.forEach((r, i) => r.logprobs.forEach((lp, j) => expect(Math.abs(lp - cached[i].logprobs[j])).toBeLessThanOrEqual(LOGPROB_TOLERANCE)));
  });

  it('is greedy at temperature 0: every completion of a prompt is the reference argmax path', async () => {
    const completions = await sampleCompletions(runner, request({ sampling: { temperature: 0, topK: 0, topP: 1 }, eosTokenId: null, maxTokens: 5 }));
    const prompt = [5, 9, 2, 17];
    const path: number[] = [];
    for (let i = 0; i < 5; i++) {
      const row = reference.forward([...prompt, ...path]).at(-1)!;
      path.push(row.indexOf(Math.max(...row)));
    }
    for (const c of completions.filter((x) => x.promptIndex === 0)) expect(c.tokens).toEqual(path);
  });

  it('refuses requests it cannot serve, with a sentence that says why', async () => {
    await expect(sampleCompletions(runner, request({ maxTokens: 40 }))).rejects.toThrow(SamplingError);
    await expect(sampleCompletions(runner, request({ maxTokens: 40 }))).rejects.toThrow("exceeds the model's 40 positions");
    await expect(sampleCompletions(runner, request({ prompts: [[1, 99]] }))).rejects.toThrow('token id 99, outside the vocabulary');
    await expect(sampleCompletions(runner, request({ prompts: [[]] }))).rejects.toThrow('prompt 0 is empty');
    await expect(sampleCompletions(runner, request({ n: 0 }))).rejects.toThrow('completions per prompt');
  });
});
