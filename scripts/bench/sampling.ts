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
 * vsTransformersJs: the same model exported as a folder (the lab's writer), loaded in Debian's
 * Chromium on SwiftShader's WebGPU twice, once by the lab's sampler and once by transformers.js
 * (its generate, greedy, exactly `--tjs-tokens` new tokens, batch `--batch`): our tokens/s over
 * theirs, each the median of `rounds` runs after a warm-up run, the two interleaved.
 *
 * choice: tokens/s of the same sampler choosing each token on the GPU (kernels/sampling: the
 * logits stay on the GPU, ids come back every `--readback` steps) against choosing it in
 * JavaScript (the logits read back every step), in the same run, interleaved, for greedy and for
 * temperature 1 / top-k 50 / top-p 0.9, `--choice-tokens` new tokens (default 16), no EOS; both
 * must give the same tokens. gpuChoiceSpeedup: GPU-choice tokens/s over JavaScript-choice tokens/s.
 * `--parts kv,tjs,choice` (default all three) picks what to measure.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openComparePages } from './compare-browser';
import { writeModelFolder } from '../../workers/models/folder';
import { writeFolder } from '../../workers/node/fs-folder';
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { acquireDevice } from '../../workers/gpu/device';
import { configureOrt, ORT_VERSION } from '../../workers/ort/runtime';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { countGpt2Parameters, randomGpt2Params } from '../../workers/models/gpt2/params';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions } from '../../workers/sampling/sampler';
import type { SamplingOptions } from '../../workers/sampling/choose';
import { benchTokenizerFiles } from './bench-data';

const GOALS = { kvSpeedup128: 4, vsTransformersJs: 1 };
const LENGTHS = [32, 128];
const PROMPT = [5, 17, 3, 9, 12, 40, 2, 8];
/** transformers.js' version, from its package.json (which its exports map does not expose). */
function transformersJsVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@huggingface/transformers');
  const file = join(entry.slice(0, entry.lastIndexOf('/node_modules/@huggingface/transformers/') + '/node_modules/@huggingface/transformers/'.length), 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

const config: Gpt2Config = {
  modelType: 'gpt2', nLayer: 4, nHead: 4, nEmbd: 128, nInner: 512, nPositions: 256, vocabSize: 512,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Our sampler against transformers.js' generate, in Chromium, on the same exported folder. */
async function versusTransformersJs(rounds: number, batch: number, newTokens: number) {
  const params = randomGpt2Params(config, { seed: 1, scheme: 'hf' });
  const dir = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-bench-folder-')), writeModelFolder(config, params, benchTokenizerFiles(config.vocabSize, { eos_token: '<|endoftext|>' })));
  const pages = await openComparePages();
  try {
    const url = pages.serveFolder('bench', dir);
    const ours = await pages.open('ours', url);
    const theirs = await pages.open('tjs', url);
    const times: Record<'ours' | 'transformersJs', number[]> = { ours: [], transformersJs: [] };
    let same = true;
    for (let r = 0; r <= rounds; r++) {
      const a = await ours.generate(PROMPT, batch, newTokens);
      const b = await theirs.generate(PROMPT, batch, newTokens);
      for (const [who, g] of [['ours', a], ['transformers.js', b]] as const) {
        if (g.tokens !== batch * newTokens) throw new Error(`${who} generated ${g.tokens} tokens, expected ${batch * newTokens}`);
      }
      same &&= JSON.stringify(a.sequences) === JSON.stringify(b.sequences);
      if (r === 0) continue;
      times.ours.push(a.ms);
      times.transformersJs.push(b.ms);
      console.error(`sampling bench: Chromium, ${newTokens} tokens, round ${r}: ours ${a.ms.toFixed(0)} ms, transformers.js ${b.ms.toFixed(0)} ms`);
    }
    const errors = [...ours.errors, ...theirs.errors];
    if (errors.length) throw new Error(`the comparison pages reported errors: ${errors.join('; ')}`);
    const oursMs = median(times.ours);
    const theirsMs = median(times.transformersJs);
    return {
      where: `Chromium (${ours.adapter}), one page each, ORT ${ORT_VERSION} for ours and transformers.js' own onnxruntime-web`,
      transformersJsVersion: transformersJsVersion(),
      newTokens,
      batch,
      tokensPerSecondOurs: (batch * newTokens) / (oursMs / 1000),
      tokensPerSecondTransformersJs: (batch * newTokens) / (theirsMs / 1000),
      sameTokens: same,
      runs: times,
      vsTransformersJs: theirsMs / oursMs,
    };
  } finally {
    await pages.close();
  }
}

export async function run(args: Record<string, string>): Promise<object> {
  const rounds = Number(args.rounds ?? 2);
  const batch = Number(args.batch ?? 2);
  const tjsTokens = Number(args['tjs-tokens'] ?? 128);
  const choiceTokens = Number(args['choice-tokens'] ?? 16);
  const readback = Number(args.readback ?? 4);
  const parts = (args.parts ?? 'kv,tjs,choice').split(',');
  if (!(rounds >= 1) || !(batch >= 1) || !(tjsTokens >= 1) || !(choiceTokens >= 1) || !(readback >= 1)) {
    throw new Error('--rounds, --batch, --tjs-tokens, --choice-tokens and --readback must be positive numbers');
  }
  if (parts.some((p) => p !== 'kv' && p !== 'tjs' && p !== 'choice')) throw new Error(`--parts takes a comma-separated list of kv, tjs and choice; got ${args.parts}`);
  const kv = parts.includes('kv') ? await kvCacheSpeedups(rounds, batch) : undefined;
  const tjs = parts.includes('tjs') ? await versusTransformersJs(rounds, batch, tjsTokens) : undefined;
  const choice = parts.includes('choice') ? await gpuChoiceSpeedups(rounds, batch, choiceTokens, readback) : undefined;
  const goalsMet: Record<string, boolean> = {};
  if (kv) goalsMet.kvSpeedup128 = kv.kvSpeedup128 >= GOALS.kvSpeedup128;
  if (tjs) goalsMet.vsTransformersJs = tjs.vsTransformersJs >= GOALS.vsTransformersJs;
  return {
    bench: 'sampling',
    model: { ...config, parameters: countGpt2Parameters(config), promptTokens: PROMPT.length },
    rounds,
    ...(kv ?? {}),
    kvSpeedup32: kv?.kvSpeedup32 ?? null,
    kvSpeedup128: kv?.kvSpeedup128 ?? null,
    transformersJs: tjs ?? null,
    vsTransformersJs: tjs?.vsTransformersJs ?? null,
    tokenChoice: choice ?? null,
    gpuChoiceSpeedup: choice?.gpuChoiceSpeedup ?? null,
    goals: GOALS,
    goalsMet,
  };
}

/** Node (Dawn): the sampler with the KV cache against re-running the prefix at every token. */
async function kvCacheSpeedups(rounds: number, batch: number) {
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
    adapter: { vendor: summary.vendor, architecture: summary.architecture, isFallbackAdapter: summary.isFallbackAdapter },
    ortVersion: ORT_VERSION,
    counted: 'tokens/s = batch × new tokens / wall time of sampleCompletions (greedy, no EOS), median over interleaved rounds after a warm-up round',
    results,
    kvSpeedup32: speedup(32),
    kvSpeedup128: speedup(128),
  };
}

/**
 * Node (Dawn): the sampler with token choice on the GPU against token choice in JavaScript, the
 * same decoder, seed and settings, interleaved rounds after a warm-up round (which compiles the
 * token-choice kernel, about 8 s on SwiftShader).
 */
async function gpuChoiceSpeedups(rounds: number, batch: number, newTokens: number, stepsPerReadback: number) {
  const acquired = await acquireDevice(nodeGpu());
  if (!acquired.ok) throw new Error(`${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  const { device, summary } = acquired;
  configureOrt({ numThreads: 1 });
  const params = randomGpt2Params(config, { seed: 1, scheme: 'hf' });
  const decoder = await openSamplingSession(device, config, buildGpt2Decoder(config, { kind: 'initializers', params }));
  const runner = decoderRunner(config, decoder);
  const settings: { name: string; sampling: SamplingOptions }[] = [
    { name: 'greedy', sampling: { temperature: 0, topK: 0, topP: 1 } },
    { name: 'temperature 1, top-k 50, top-p 0.9', sampling: { temperature: 1, topK: 50, topP: 0.9 } },
  ];
  const generate = async (sampling: SamplingOptions, tokenChoice: 'gpu' | 'js') => {
    const t0 = performance.now();
    const out = await sampleCompletions(runner, { prompts: [PROMPT], n: batch, maxTokens: newTokens, seed: 3, eosTokenId: null, sampling, tokenChoice, stepsPerReadback });
    const ms = performance.now() - t0;
    const tokens = out.reduce((a, c) => a + c.tokens.length, 0);
    if (tokens !== batch * newTokens) throw new Error(`expected ${batch * newTokens} tokens, got ${tokens}`);
    return { ms, sequences: out.map((c) => c.tokens.join(',')).join('|') };
  };
  const results: Record<string, unknown>[] = [];
  for (const { name, sampling } of settings) {
    const times: Record<'gpu' | 'js', number[]> = { gpu: [], js: [] };
    let same = true;
    for (let r = 0; r <= rounds; r++) {
      const gpu = await generate(sampling, 'gpu');
      const js = await generate(sampling, 'js');
      same &&= gpu.sequences === js.sequences;
      if (r === 0) continue;
      times.gpu.push(gpu.ms);
      times.js.push(js.ms);
      console.error(`sampling bench: token choice, ${name}, round ${r}: GPU ${gpu.ms.toFixed(0)} ms, JavaScript ${js.ms.toFixed(0)} ms`);
    }
    const gpuMs = median(times.gpu);
    const jsMs = median(times.js);
    results.push({
      sampling: name,
      newTokens,
      batch,
      tokensPerSecondGpuChoice: (batch * newTokens) / (gpuMs / 1000),
      tokensPerSecondJsChoice: (batch * newTokens) / (jsMs / 1000),
      gpuChoiceSpeedup: jsMs / gpuMs,
      sameTokens: same,
      runs: times,
    });
  }
  await decoder.session.release();
  return {
    adapter: { vendor: summary.vendor, architecture: summary.architecture, isFallbackAdapter: summary.isFallbackAdapter },
    stepsPerReadback,
    counted: 'tokens/s = batch × new tokens / wall time of sampleCompletions (no EOS), tokenChoice gpu against js, median over interleaved rounds after a warm-up round',
    results,
    gpuChoiceSpeedup: Math.min(...results.map((r) => r.gpuChoiceSpeedup as number)),
  };
}
