/**
 * `npm run bench -- sampling [--out FILE] [--rounds 2] [--batch 2]` (about 10 minutes on a 2-core CPU)
 *
 * Tokens per second of the student sampler on a GPT-2 family model (random weights, the
 * lab's decoder on onnxruntime-web's WebGPU EP), with the KV cache (one step per token, the
 * cache kept on the GPU) against the same sampler re-running the whole prefix at every token.
 * Ratios kvSpeedup32 and kvSpeedup128: tokens/s with the cache over tokens/s without, generating
 * 32 and 128 tokens. Greedy decoding with no EOS, so every run generates exactly that many tokens.
 * Times: the median of `rounds` interleaved rounds after a warm-up round (which also compiles the
 * shaders of every shape the timed runs meet).
 *
 * Not yet measured here: the comparison with transformers.js' generate (vsTransformersJs).
 */
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { acquireDevice } from '../../workers/gpu/device';
import { configureOrt, ORT_VERSION } from '../../workers/ort/runtime';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { countGpt2Parameters, randomGpt2Params } from '../../workers/models/gpt2/params';
import { buildGpt2Decoder } from '../../workers/onnx/gpt2-decoder';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions } from '../../workers/sampling/sampler';

const GOALS = { kvSpeedup128: 4 };
const LENGTHS = [32, 128];
const PROMPT = [5, 17, 3, 9, 12, 40, 2, 8];

const config: Gpt2Config = {
  modelType: 'gpt2', nLayer: 4, nHead: 4, nEmbd: 128, nInner: 512, nPositions: 256, vocabSize: 512,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function run(args: Record<string, string>): Promise<object> {
  const rounds = Number(args.rounds ?? 2);
  const batch = Number(args.batch ?? 2);
  if (!(rounds >= 1) || !(batch >= 1)) throw new Error('--rounds and --batch must be positive numbers');
  const acquired = await acquireDevice(nodeGpu());
  if (!acquired.ok) throw new Error(`${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  const { device, summary } = acquired;
  configureOrt({ numThreads: 1 });
  const params = randomGpt2Params(config, { seed: 1, scheme: 'hf' });
  const decoder = await openSamplingSession(device, config, buildGpt2Decoder(config, { kind: 'initializers', params }));
  const runner = decoderRunner(config, decoder);
  const generate = async (maxTokens: number, useKvCache: boolean) => {
    const t0 = performance.now();
    const out = await sampleCompletions(runner, {
      prompts: [PROMPT], n: batch, maxTokens, seed: 0, eosTokenId: null, useKvCache,
      sampling: { temperature: 0, topK: 0, topP: 1 },
    });
    const ms = performance.now() - t0;
    const tokens = out.reduce((a, c) => a + c.tokens.length, 0);
    if (tokens !== batch * maxTokens) throw new Error(`expected ${batch * maxTokens} tokens, got ${tokens}`);
    return { ms, tokens, sequences: out.map((c) => c.tokens.join(',')) };
  };
  const results: Record<string, unknown>[] = [];
  for (const length of LENGTHS) {
    const times: Record<'cached' | 'rerun', number[]> = { cached: [], rerun: [] };
    let same = true;
    for (let r = 0; r <= rounds; r++) {
      const cached = await generate(length, true);
      const rerun = await generate(length, false);
      same &&= cached.sequences.join('|') === rerun.sequences.join('|');
      if (r === 0) continue; // warm-up: shader compilation for every shape
      times.cached.push(cached.ms);
      times.rerun.push(rerun.ms);
      console.error(`sampling bench: ${length} tokens, round ${r}: cache ${cached.ms.toFixed(0)} ms, re-run ${rerun.ms.toFixed(0)} ms`);
    }
    const cachedMs = median(times.cached);
    const rerunMs = median(times.rerun);
    results.push({
      newTokens: length,
      batch,
      tokensPerSecondKv: (batch * length) / (cachedMs / 1000),
      tokensPerSecondRerun: (batch * length) / (rerunMs / 1000),
      kvMs: cachedMs,
      rerunMs,
      kvSpeedup: rerunMs / cachedMs,
      sameTokens: same,
      runs: times,
    });
  }
  await decoder.session.release();
  const speedup = (n: number) => results.find((r) => r.newTokens === n)!.kvSpeedup as number;
  return {
    bench: 'sampling',
    adapter: { vendor: summary.vendor, architecture: summary.architecture, isFallbackAdapter: summary.isFallbackAdapter },
    ortVersion: ORT_VERSION,
    model: { ...config, parameters: countGpt2Parameters(config), promptTokens: PROMPT.length },
    counted: 'tokens/s = batch × new tokens / wall time of sampleCompletions (greedy, no EOS), median over interleaved rounds after a warm-up round',
    rounds,
    results,
    kvSpeedup32: speedup(32),
    kvSpeedup128: speedup(128),
    goals: GOALS,
    goalsMet: { kvSpeedup128: speedup(128) >= GOALS.kvSpeedup128 },
    vsTransformersJs: null,
    notMeasured: 'vsTransformersJs: transformers.js generate on the exported folder is not benchmarked yet',
  };
}
