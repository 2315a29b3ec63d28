/**
 * `npm run bench -- llama [--out FILE] [--layers 2,4,8] [--widths 384] [--vocabs 24576] [--vary-at L]
 *   [--batch 4] [--seq 32] [--rank 8] [--sample-batch 4] [--prompt 8] [--new-tokens 8] [--rounds 2]
 *   [--matmul-repeats 4] [--matmul-seconds 1] [--full-layers 30] [--full-tokens 2] [--tjs-layers 2] [--tjs-batch 1]
 *   [--tjs-tokens 8] [--parts measure,full,tjs]`
 *
 * The Llama family on a SmolLM2-135M-shaped model with random weights (hidden 576, 9 heads / 3 KV
 * heads, head_dim 64, intermediate 1536, vocabulary 49152, tied head, rope θ 100000, 2048
 * positions, 30 layers), at the depths --layers, and at --vary-at layers (default the first
 * depth) with a narrower width (--widths: hidden sizes, multiples of 192: heads of 64, 3 query
 * heads per KV head, intermediate scaled alike) and a smaller vocabulary (--vocabs). Per shape,
 * in one process on the local WebGPU adapter:
 *
 *   - a LoRA training step (rank --rank, alpha 2·rank, on q, k, v, o, gate, up, down: every
 *     target the family marks) of --batch sequences × --seq tokens through the trainer
 *     (workers/train/) and the family's graph (workers/models/llama/graph.ts): tokens/s, and its
 *     fraction of our best matmul's GFLOP/s measured in the same round on the MLP's first
 *     product ([batch·seq, hidden] × [hidden, intermediate]);
 *   - sampling with the KV cache through the family's ONNX decoder (workers/models/llama/decoder.ts,
 *     weights as inputs read in place from the trainer's buffers, as a distillation run samples)
 *     on onnxruntime-web's WebGPU EP: greedy, no EOS, --new-tokens after a --prompt-token prompt,
 *     at batch 1 and --sample-batch: tokens/s;
 *   - the GPU memory we allocate (scripts/bench/gpu-memory.ts counts every buffer by what it
 *     holds, ours and onnxruntime-web's), its peak against workers/models/memory.ts's
 *     estimateTrainingMemory.
 *
 * `measure`: each shape alone first (its memory: one step and one sample; this also compiles the
 * shaders), then every shape open at once, measured in turn in each round (a warm-up round, then
 * --rounds), so that a load that comes and goes on this shared machine falls on all shapes of a
 * round alike; medians. Then the cost is fitted: a line in the depth at SmolLM2's width and
 * vocabulary, extrapolated to 30 layers and said to be an extrapolation; the width's and the
 * vocabulary's effect at --vary-at layers (cost ratios, a local exponent, ms per 1000 entries).
 * `full`: the real depth (--full-layers) once, alone: one training step and --full-tokens tokens
 * at --sample-batch, for the peak memory at that depth and one step's time against the fit.
 * `tjs`: our sampler against transformers.js' `generate` in Debian's Chromium on the same
 * adapter (SwiftShader's WebGPU), on the same folder (the lab's writer: config, a generated
 * WordLevel tokenizer of the whole vocabulary, generation_config, model.safetensors and the
 * family's onnx/model.onnx with the weights as initializers), --tjs-layers deep: their time over
 * ours, the two interleaved, the median of the per-round ratios after a warm-up run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openComparePages } from './compare-browser';
import { GpuMemoryCounter, type MemorySnapshot } from './gpu-memory';
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { writeFolder } from '../../workers/node/fs-folder';
import { acquireDevice } from '../../workers/gpu/device';
import { configureOrt, ORT_VERSION } from '../../workers/ort/runtime';
import { llamaConfigFromJson, type LlamaConfig } from '../../workers/models/llama/config';
import { llamaParamSpecs } from '../../workers/models/llama/params';
import { buildLlamaDecoder } from '../../workers/models/llama/decoder';
import { numel } from '../../workers/models/family';
import { writeModelFolder } from '../../workers/models/folder';
import { estimateTrainingMemory } from '../../workers/models/memory';
import { seededRandom } from '../../workers/random/seeded-normal';
import { Trainer } from '../../workers/train/trainer';
import type { TrainSequence } from '../../workers/train/batch';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions, type DecoderRunner } from '../../workers/sampling/sampler';
import type { DecoderSession } from '../../workers/models/decoder-session';
import { currentMatmulVariant, measureMatmulGflops, type MatmulVariant } from '../../workers/kernels/train/matmul';
import { benchSequences, benchTokenizerFiles } from './bench-data';

/** SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M config.json), depth given per case. */
const SMOLLM2 = {
  hidden: 576, heads: 9, kvHeads: 3, headDim: 64, intermediate: 1536, vocab: 49152, layers: 30,
  ropeTheta: 100000, positions: 2048, rmsNormEps: 1e-5,
};

interface Shape {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab: number;
}

function configOf(s: Shape): LlamaConfig {
  const heads = s.hidden / SMOLLM2.headDim;
  return llamaConfigFromJson({
    model_type: 'llama', num_hidden_layers: s.layers, hidden_size: s.hidden, num_attention_heads: heads,
    num_key_value_heads: heads / (SMOLLM2.heads / SMOLLM2.kvHeads), head_dim: SMOLLM2.headDim, intermediate_size: s.intermediate,
    vocab_size: s.vocab, tie_word_embeddings: true, rope_theta: SMOLLM2.ropeTheta, max_position_embeddings: SMOLLM2.positions,
    rms_norm_eps: SMOLLM2.rmsNormEps, hidden_act: 'silu',
  }, 'the bench model');
}

/** Hugging Face's Llama initialisation: normal(0, 0.02) for embeddings and projections, norms 1. */
function randomLlamaParams(config: LlamaConfig, seed: number): Map<string, Float32Array> {
  const rng = seededRandom(seed);
  const params = new Map<string, Float32Array>();
  for (const spec of llamaParamSpecs(config)) {
    const data = new Float32Array(numel(spec.shape));
    if (spec.role === 'norm-weight') data.fill(1);
    else if (spec.role !== 'linear-bias') for (let i = 0; i < data.length; i++) data[i] = 0.02 * rng.normal();
    params.set(spec.name, data);
  }
  return params;
}

/**
 * The step's arithmetic in matrix products, as the trainer does it in a LoRA run: every adapted
 * projection forward (2·in·out per row), its input gradient (2·in·out) and its dW_eff (2·in·out),
 * LoRA's dA and dB from dW_eff (2·in·out·r each) and the merge W + s·A·B after the step
 * (2·in·out·r); the tied head forward and its input gradient (2·V·E per row each; the embedding is
 * frozen: no weight gradient); attention Q·Kᵀ and P·V over the full T×T square (4·T²·H·D per layer
 * per sequence) forward, twice that backward.
 */
function loraStepFlops(c: LlamaConfig, batch: number, seq: number, rank: number): { total: number; projections: number; lora: number; head: number; attention: number } {
  const rows = batch * seq;
  const adapted = llamaParamSpecs(c).filter((s) => s.loraTarget).reduce((a, s) => a + numel(s.shape), 0);
  const projections = 6 * adapted * rows;
  const lora = 6 * adapted * rank;
  const head = 4 * c.vocabSize * c.hidden * rows;
  const attention = 3 * 4 * seq * seq * c.nHead * c.headDim * c.nLayer * batch;
  return { total: projections + lora + head + attention, projections, lora, head, attention };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Products per timed submit, per matmul shape and variant: enough for about --matmul-seconds (calibrated once). */
const matmulRepeats = new Map<string, number>();

/** Our matmul's GFLOP/s on `shape`: one calibrating measurement the first time, then about --matmul-seconds of products per submit. */
async function matmulGflops(device: GPUDevice, shape: { m: number; n: number; k: number }, variant: MatmulVariant, s: Settings): Promise<number> {
  const key = `${shape.m}x${shape.n}x${shape.k} ${variant}`;
  let repeats = matmulRepeats.get(key);
  if (repeats === undefined) {
    const gflops = await measureMatmulGflops(device, shape, variant, s.matmulRepeats);
    repeats = Math.min(1024, Math.max(s.matmulRepeats, Math.round((s.matmulSeconds * gflops * 1e9) / (2 * shape.m * shape.n * shape.k))));
    matmulRepeats.set(key, repeats);
  }
  return measureMatmulGflops(device, shape, variant, repeats);
}
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** Dawn's Node binding busy-waits on the main thread (setImmediate); poll once a millisecond instead (as the training bench does). */
function pollDawnGently(): () => void {
  const original = globalThis.setImmediate;
  (globalThis as { setImmediate: unknown }).setImmediate = (fn: (...a: unknown[]) => void, ...a: unknown[]) => setTimeout(fn, 1, ...a);
  return () => {
    globalThis.setImmediate = original;
  };
}

function positiveInteger(args: Record<string, string>, name: string, fallback: number, min = 1): number {
  const value = Number(args[name] ?? fallback);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name}: '${args[name]}' is not a whole number ≥ ${min}`);
  return value;
}

function integerList(args: Record<string, string>, name: string, fallback: string): number[] {
  const raw = args[name] ?? fallback;
  if (raw === '' || raw === 'none') return [];
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--${name}: '${raw}' is not a comma-separated list of whole numbers ≥ 1`);
  return values;
}

function transformersJsVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@huggingface/transformers');
  const root = entry.slice(0, entry.lastIndexOf('/node_modules/@huggingface/transformers/') + '/node_modules/@huggingface/transformers/'.length);
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

interface Settings {
  batch: number;
  seq: number;
  rank: number;
  sampleBatch: number;
  prompt: number[];
  newTokens: number;
  rounds: number;
  /** Products per submit of the first (calibrating) matmul measurement, and the least ever. */
  matmulRepeats: number;
  /** How long a timed matmul measurement should take (seconds). */
  matmulSeconds: number;
}

/** The memory we allocated, by kind, against memory.ts's estimate for the same run. */
function memoryReport(peak: MemorySnapshot, config: LlamaConfig, s: Settings, f16Base: boolean, sampledTokens: number) {
  const estimate = estimateTrainingMemory(config, { batch: s.batch, sequence: s.seq, loraRank: s.rank, f16Base });
  const k = peak.byKind;
  const get = (...kinds: (keyof typeof k)[]) => kinds.reduce((a, kind) => a + (k[kind] ?? 0), 0);
  const measured: Record<string, number> = {
    weights: get('weights (frozen, f32)', 'LoRA frozen bases (f16)', 'LoRA merged W_eff', 'LoRA factors A, B'),
    'optimizer state': get('optimizer state'),
    activations: get('activations'),
    'KV cache': get('onnxruntime-web (sampler: KV cache, intermediates, logits)'),
  };
  const estimated = Object.fromEntries(estimate.groups.map((g) => [g.name, g.bytes]));
  const groups = Object.fromEntries(['weights', 'optimizer state', 'activations', 'KV cache'].map((name) => [name, {
    measuredMiB: mib(measured[name] ?? 0),
    estimatedMiB: mib(estimated[name] ?? 0),
    measuredOverEstimate: estimated[name] ? round3((measured[name] ?? 0) / estimated[name]) : null,
  }]));
  // The keys and values the sampler's largest batch holds at its longest (prompt + new tokens).
  const kvSampler = 2 * config.nLayer * s.sampleBatch * config.nKvHead * (s.prompt.length + sampledTokens) * config.headDim * 4;
  return {
    peakMiB: mib(peak.bytes),
    estimateMiB: mib(estimate.totalBytes),
    peakOverEstimate: round3(peak.bytes / estimate.totalBytes),
    estimateSetup: estimate.setup,
    groups,
    peakByKindMiB: Object.fromEntries(Object.entries(k).map(([name, b]) => [name, mib(b!)])),
    peakOtherLabelsMiB: Object.fromEntries(Object.entries(peak.otherLabels).filter(([, b]) => b >= 2 ** 16).map(([name, b]) => [name, mib(b)])),
    samplerKvCacheMiB: mib(kvSampler),
    note: `measured 'KV cache' is everything onnxruntime-web held at the peak: present.* of every layer (keys and values of the sampler's ${s.sampleBatch} × ${s.prompt.length + sampledTokens} tokens at the end: samplerKvCacheMiB), its intermediates and pooled buffers, the logits; the estimate's KV cache is ${s.batch} sequences × ${s.seq} tokens of keys and values`,
  };
}

/** One shape's trainer and sampler on the device: what a distillation run of the student holds. */
interface OpenCase {
  shape: Shape;
  config: LlamaConfig;
  trainer: Trainer<LlamaConfig>;
  session: DecoderSession;
  runner: DecoderRunner;
  sequences: TrainSequence[];
}

async function openCase(device: GPUDevice, counter: GpuMemoryCounter, shape: Shape, s: Settings): Promise<OpenCase> {
  const config = configOf(shape);
  const params = randomLlamaParams(config, 1);
  counter.setParamNames(params.keys());
  const trainer = await Trainer.create(device, config, params, { lora: { rank: s.rank, alpha: 2 * s.rank } });
  params.clear();
  // Weights as inputs, read in place from the trainer's buffers: the sampler sees every step.
  const session = await openSamplingSession(device, config, buildLlamaDecoder(config, { kind: 'inputs' }), 'the bench decoder');
  return { shape, config, trainer, session, runner: decoderRunner(config, session, trainer.weightFeeds()), sequences: benchSequences(s.batch, s.seq, config.vocabSize) };
}

async function closeCase(c: OpenCase): Promise<void> {
  await c.session.session.release();
  c.trainer.destroy();
}

/** One LoRA training step: accumulate (forward, CE gradient, backward) + applyStep (AdamW, merge, read-back). */
async function trainStep(c: OpenCase): Promise<{ ms: number; loss: number }> {
  const t0 = performance.now();
  await c.trainer.accumulate(c.sequences, { kind: 'ce' });
  const report = await c.trainer.applyStep();
  const ms = performance.now() - t0;
  if (!report.applied || !Number.isFinite(report.loss)) throw new Error(`llama bench: the training step was not applied (${report.problem ?? `loss ${report.loss}`})`);
  return { ms, loss: report.loss };
}

/** Greedy, no EOS: exactly `tokens` new tokens for each of `batch` copies of the prompt. */
async function sample(c: OpenCase, s: Settings, batch: number, tokens: number): Promise<{ ms: number; rows: string[] }> {
  const t0 = performance.now();
  const out = await sampleCompletions(c.runner, {
    prompts: [s.prompt], n: batch, maxTokens: tokens, seed: 0, eosTokenId: null, useKvCache: true,
    sampling: { temperature: 0, topK: 0, topP: 1 },
  });
  const ms = performance.now() - t0;
  const count = out.reduce((a, x) => a + x.tokens.length, 0);
  if (count !== batch * tokens) throw new Error(`llama bench: sampled ${count} tokens, expected ${batch * tokens}`);
  return { ms, rows: out.map((x) => x.tokens.join(',')) };
}

/**
 * The shape alone on the device (nothing else of ours allocated): one training step and one
 * sample of `tokens` at the larger sampling batch; the peak of what was allocated meanwhile.
 * Its times are single runs (the first step of the shape), not medians.
 */
async function memoryCase(device: GPUDevice, counter: GpuMemoryCounter, shape: Shape, s: Settings, tokens: number, log: (m: string) => void) {
  counter.resetPeak();
  const before = counter.snapshot().bytes;
  const c = await openCase(device, counter, shape, s);
  let step: { ms: number; loss: number };
  let sampled: { ms: number };
  // Our best matmul on the shape's MLP product just before and just after the step (the mean):
  // the step's fraction of it is what load on the machine changes least.
  const matmulShape = { m: s.batch * s.seq, n: c.config.intermediate, k: c.config.hidden };
  const best = async () => Math.max(await matmulGflops(device, matmulShape, 'register', s), await matmulGflops(device, matmulShape, 'tiled', s));
  let bestGflops: number[];
  try {
    const before = await best();
    step = await trainStep(c);
    bestGflops = [before, await best()];
    sampled = await sample(c, s, s.sampleBatch, tokens);
  } finally {
    await closeCase(c);
  }
  const flops = loraStepFlops(c.config, s.batch, s.seq, s.rank).total;
  const peakFraction = flops / (step.ms / 1000) / 1e9 / ((bestGflops[0] + bestGflops[1]) / 2);
  log(`${describe(shape)}: alone: one step ${step.ms.toFixed(0)} ms (peak fraction ${peakFraction.toFixed(3)}, matmul ${bestGflops.map((g) => g.toFixed(3)).join(' / ')} GFLOP/s), ${tokens} tokens at batch ${s.sampleBatch} ${sampled.ms.toFixed(0)} ms, load ${loadavg()[0].toFixed(1)}`);
  const peak = counter.peak();
  return {
    shape,
    stepMs: round3(step.ms),
    tokensPerSecond: round3((s.batch * s.seq) / (step.ms / 1000)),
    stepFlops: flops,
    matmulGflopsBeforeAfter: bestGflops.map(round3),
    peakFraction: round3(peakFraction),
    loss: round3(step.loss),
    samplingMs: round3(sampled.ms),
    sampledTokens: tokens * s.sampleBatch,
    memory: { ...memoryReport({ ...peak, bytes: peak.bytes - before }, c.config, s, c.trainer.f16Base, tokens), heldBeforeMiB: mib(before) },
  };
}

interface CaseTimes {
  stepMs: number[];
  registerGflops: number[];
  tiledGflops: number[];
  peakFraction: number[];
  sampleMs: Map<number, number[]>;
  losses: number[];
  sameTokensAcrossBatches: boolean;
}

/**
 * Every shape open at once, measured in turn within each round (a warm-up round, then
 * `rounds`): a training step, sampling at each batch, the matmul peak on the shape's MLP
 * product. A load that comes and goes falls on every shape of a round alike.
 */
async function timeCases(device: GPUDevice, counter: GpuMemoryCounter, shapes: Shape[], s: Settings, log: (m: string) => void) {
  const batches = [...new Set([1, s.sampleBatch])];
  const open: OpenCase[] = [];
  const times: CaseTimes[] = shapes.map(() => ({ stepMs: [], registerGflops: [], tiledGflops: [], peakFraction: [], sampleMs: new Map(batches.map((b) => [b, []])), losses: [], sameTokensAcrossBatches: true }));
  try {
    for (const shape of shapes) open.push(await openCase(device, counter, shape, s));
    for (let round = 0; round <= s.rounds; round++) {
      for (const [i, c] of open.entries()) {
        const t = times[i];
        const step = await trainStep(c);
        const sampleMs = new Map<number, number>();
        const rows = new Set<string>();
        for (const b of batches) {
          const out = await sample(c, s, b, s.newTokens);
          sampleMs.set(b, out.ms);
          out.rows.forEach((r) => rows.add(r));
        }
        // Greedy from one prompt: every row of every batch gives the same tokens (the weights change between rounds).
        if (rows.size !== 1) t.sameTokensAcrossBatches = false;
        const matmulShape = { m: s.batch * s.seq, n: c.config.intermediate, k: c.config.hidden };
        const gflops = (v: MatmulVariant) => matmulGflops(device, matmulShape, v, s);
        const register = await gflops('register');
        const tiled = await gflops('tiled');
        const line = `step ${step.ms.toFixed(0)} ms, sample ${batches.map((b) => `batch ${b} ${sampleMs.get(b)!.toFixed(0)} ms`).join(', ')}, matmul register ${register.toFixed(3)} / tiled ${tiled.toFixed(3)} GFLOP/s`;
        log(`${describe(c.shape)}: round ${round}${round === 0 ? ' (warm-up)' : ''}: ${line}, load ${loadavg()[0].toFixed(1)}`);
        t.losses.push(round3(step.loss));
        if (round === 0) continue;
        t.stepMs.push(step.ms);
        t.registerGflops.push(register);
        t.tiledGflops.push(tiled);
        t.peakFraction.push(loraStepFlops(c.config, s.batch, s.seq, s.rank).total / (step.ms / 1000) / 1e9 / Math.max(register, tiled));
        for (const b of batches) t.sampleMs.get(b)!.push(sampleMs.get(b)!);
      }
    }
    return open.map((c, i) => caseResult(c, times[i], s));
  } finally {
    for (const c of open) await closeCase(c);
  }
}

function caseResult(c: OpenCase, t: CaseTimes, s: Settings) {
  const { config } = c;
  const flops = loraStepFlops(config, s.batch, s.seq, s.rank);
  const stepMs = median(t.stepMs);
  return {
    shape: c.shape,
    parameters: llamaParamSpecs(config).reduce((a, p) => a + numel(p.shape), 0),
    loraParameters: llamaParamSpecs(config).filter((p) => p.loraTarget).reduce((a, p) => a + s.rank * (p.shape[0] + p.shape[1]), 0),
    f16Base: c.trainer.f16Base,
    flops,
    stepMs: round3(stepMs),
    tokensPerSecond: round3((s.batch * s.seq) / (stepMs / 1000)),
    achievedGflops: round3(flops.total / (stepMs / 1000) / 1e9),
    bestMatmulGflops: round3(Math.max(median(t.registerGflops), median(t.tiledGflops))),
    peakFraction: round3(median(t.peakFraction)),
    sampling: [...t.sampleMs].map(([batch, runs]) => {
      const ms = median(runs);
      return { batch, ms: round3(ms), tokensPerSecond: round3((batch * s.newTokens) / (ms / 1000)), msPerToken: round3(ms / s.newTokens) };
    }),
    sameTokensAcrossBatches: t.sameTokensAcrossBatches,
    losses: t.losses,
    runs: {
      stepMs: t.stepMs.map(round3), registerGflops: t.registerGflops.map(round3), tiledGflops: t.tiledGflops.map(round3), peakFraction: t.peakFraction.map(round3),
      ...Object.fromEntries([...t.sampleMs].map(([b, v]) => [`sampleMsBatch${b}`, v.map(round3)])),
    },
  };
}

type CaseResult = ReturnType<typeof caseResult>;

function describe(s: Shape): string {
  return `${s.layers} layers, hidden ${s.hidden}, intermediate ${s.intermediate}, vocabulary ${s.vocab}`;
}

/** Least squares y = a + b·x, with R². */
function lineFit(xs: number[], ys: number[]): { intercept: number; slope: number; r2: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const slope = sxy / sxx;
  return { intercept: my - slope * mx, slope, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/** How the step's and the sampler's costs grow: a line in the depth, the width's and vocabulary's effect at one depth. */
function fitCosts(cases: CaseResult[], base: Omit<Shape, 'layers'>, varyAt: number, s: Settings, fullLayers: number) {
  const isBase = (c: CaseResult) => c.shape.hidden === base.hidden && c.shape.intermediate === base.intermediate && c.shape.vocab === base.vocab;
  // The line is fitted on the depths below the real one; a case measured at the real depth checks it.
  const depth = cases.filter((c) => isBase(c) && c.shape.layers < fullLayers).sort((a, b) => a.shape.layers - b.shape.layers);
  const measuredFull = cases.find((c) => isBase(c) && c.shape.layers === fullLayers);
  const metrics: Record<string, (c: CaseResult) => number> = {
    stepMs: (c) => c.stepMs,
    ...Object.fromEntries(cases[0].sampling.map((x, i) => [`sampleMsPerTokenBatch${x.batch}`, (c: CaseResult) => c.sampling[i].msPerToken])),
  };
  const out: Record<string, unknown> = {};
  if (depth.length >= 2) {
    const xs = depth.map((c) => c.shape.layers);
    const fits = Object.fromEntries(Object.entries(metrics).map(([name, f]) => {
      const fit = lineFit(xs, depth.map(f));
      return [name, {
        msFixed: round3(fit.intercept), msPerLayer: round3(fit.slope), r2: round3(fit.r2),
        residualsMs: depth.map((c) => round3(f(c) - (fit.intercept + fit.slope * c.shape.layers))),
        [`extrapolatedMsAt${fullLayers}Layers`]: round3(fit.intercept + fit.slope * fullLayers),
      }];
    }));
    const stepFit = lineFit(xs, depth.map((c) => c.stepMs));
    const stepAtFull = stepFit.intercept + stepFit.slope * fullLayers;
    const flopsAtFull = loraStepFlops(configOf({ ...base, layers: fullLayers }), s.batch, s.seq, s.rank).total;
    const peak = median(depth.map((c) => c.bestMatmulGflops));
    out.depth = {
      model: `ms = msFixed + msPerLayer · layers, least squares over the depths below ${fullLayers} measured at SmolLM2-135M's width and vocabulary`,
      layersMeasured: xs,
      fits,
      [`extrapolatedTo${fullLayers}Layers`]: {
        said: `an extrapolation of the fitted lines, not a measurement at ${fullLayers} layers${measuredFull ? ` (measured beside it: measuredAt${fullLayers}Layers)` : ''}`,
        trainingTokensPerSecond: round3((s.batch * s.seq) / (stepAtFull / 1000)),
        peakFraction: round3(flopsAtFull / (stepAtFull / 1000) / 1e9 / peak),
        peakFractionUses: `the step's matmul FLOPs at ${fullLayers} layers (${flopsAtFull.toExponential(3)}) over the fitted step time, against the median best matmul GFLOP/s of the depth cases (${round3(peak)})`,
        sampling: cases[0].sampling.map((x) => {
          const f = fits[`sampleMsPerTokenBatch${x.batch}`] as { msFixed: number; msPerLayer: number };
          const msPerToken = f.msFixed + f.msPerLayer * fullLayers;
          return { batch: x.batch, tokensPerSecond: round3((x.batch * 1000) / msPerToken), msPerToken: round3(msPerToken) };
        }),
      },
      ...(measuredFull
        ? {
            [`measuredAt${fullLayers}Layers`]: {
              trainingTokensPerSecond: measuredFull.tokensPerSecond,
              peakFraction: measuredFull.peakFraction,
              sampling: measuredFull.sampling.map((x) => ({ batch: x.batch, tokensPerSecond: x.tokensPerSecond, msPerToken: x.msPerToken })),
              measuredOverFit: Object.fromEntries(Object.entries(metrics).map(([name, f]) => {
                const fit = fits[name] as { msFixed: number; msPerLayer: number };
                return [name, round3(f(measuredFull) / (fit.msFixed + fit.msPerLayer * fullLayers))];
              })),
            },
          }
        : {}),
    };
  }
  const at = cases.find((c) => isBase(c) && c.shape.layers === varyAt);
  if (at) {
    const ratio = (c: CaseResult) => Object.fromEntries(Object.entries(metrics).map(([name, f]) => [name, round3(f(c) / f(at))]));
    out.width = cases.filter((c) => c.shape.layers === varyAt && c.shape.vocab === base.vocab && c.shape.hidden !== base.hidden).map((c) => ({
      hidden: c.shape.hidden, intermediate: c.shape.intermediate, againstHidden: base.hidden,
      costRatio: ratio(c),
      flopsRatio: round3(c.flops.total / at.flops.total),
      // Local exponent p of cost ∝ hidden^p (intermediate scaled with it).
      exponent: Object.fromEntries(Object.entries(metrics).map(([name, f]) => [name, round3(Math.log(f(c) / f(at)) / Math.log(c.shape.hidden / base.hidden))])),
    }));
    out.vocabulary = cases.filter((c) => c.shape.layers === varyAt && c.shape.hidden === base.hidden && c.shape.vocab !== base.vocab).map((c) => ({
      vocab: c.shape.vocab, againstVocab: base.vocab,
      costRatio: ratio(c),
      flopsRatio: round3(c.flops.total / at.flops.total),
      // The cost of the vocabulary, per 1000 entries, at this depth: (cost(V) − cost(V₀)) / ΔV.
      msPer1000Vocab: Object.fromEntries(Object.entries(metrics).map(([name, f]) => [name, round3(((f(at) - f(c)) / (base.vocab - c.shape.vocab)) * 1000)])),
    }));
  }
  return out;
}

/** Our sampler against transformers.js' generate, in Chromium, on the same exported folder. */
async function versusTransformersJs(shape: Shape, s: Settings, batch: number, newTokens: number, log: (m: string) => void) {
  const config = configOf(shape);
  const params = randomLlamaParams(config, 1);
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-llama-'));
  try {
    await writeFolder(dir, writeModelFolder(config, params, benchTokenizerFiles(config.vocabSize, { model_max_length: SMOLLM2.positions })));
    params.clear();
    const pages = await openComparePages({ outDir: '.cache/llama-bench-pages' });
    try {
      const url = pages.serveFolder('bench-llama', dir);
      const ours = await pages.open('ours', url);
      const theirs = await pages.open('tjs', url);
      const times: Record<'ours' | 'transformersJs', number[]> = { ours: [], transformersJs: [] };
      let same = true;
      for (let r = 0; r <= s.rounds; r++) {
        const a = await ours.generate(s.prompt, batch, newTokens);
        const b = await theirs.generate(s.prompt, batch, newTokens);
        for (const [who, g] of [['ours', a], ['transformers.js', b]] as const) {
          if (g.tokens !== batch * newTokens) throw new Error(`llama bench: ${who} generated ${g.tokens} tokens, expected ${batch * newTokens}`);
        }
        same &&= JSON.stringify(a.sequences) === JSON.stringify(b.sequences);
        log(`${describe(shape)}: Chromium, ${newTokens} tokens at batch ${batch}, round ${r}${r === 0 ? ' (warm-up)' : ''}: ours ${a.ms.toFixed(0)} ms, transformers.js ${b.ms.toFixed(0)} ms`);
        if (r === 0) continue;
        times.ours.push(a.ms);
        times.transformersJs.push(b.ms);
      }
      const errors = [...ours.errors, ...theirs.errors];
      if (errors.length) throw new Error(`llama bench: the comparison pages reported errors: ${errors.join('; ')}`);
      const ratios = times.ours.map((o, i) => times.transformersJs[i] / o);
      return {
        shape,
        where: `Chromium (${ours.adapter}), one page each: ours on ORT ${ORT_VERSION}, transformers.js on its own onnxruntime-web`,
        transformersJsVersion: transformersJsVersion(),
        folder: 'writeModelFolder: config.json, generation_config.json (no EOS), a generated WordLevel tokenizer.json of the whole vocabulary, model.safetensors, onnx/model.onnx (the family\'s decoder, weights as initializers); ours runs the decoder the lab builds from model.safetensors, transformers.js runs onnx/model.onnx: the same graph',
        loadMs: { ours: round3(ours.loadMs), transformersJs: round3(theirs.loadMs) },
        batch,
        newTokens,
        promptTokens: s.prompt.length,
        tokensPerSecondOurs: round3((batch * newTokens) / (median(times.ours) / 1000)),
        tokensPerSecondTransformersJs: round3((batch * newTokens) / (median(times.transformersJs) / 1000)),
        sameTokens: same,
        runs: { ours: times.ours.map(round3), transformersJs: times.transformersJs.map(round3), ratios: ratios.map(round3) },
        vsTransformersJs: round3(median(ratios)),
      };
    } finally {
      await pages.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(args: Record<string, string>): Promise<object> {
  const layers = integerList(args, 'layers', '2,4,8');
  const widths = integerList(args, 'widths', '384');
  const vocabs = integerList(args, 'vocabs', '24576');
  const parts = (args.parts ?? 'measure,full,tjs').split(',');
  for (const p of parts) if (!['measure', 'full', 'tjs'].includes(p)) throw new Error(`--parts takes measure, full and tjs, comma-separated; got '${args.parts}'`);
  const promptTokens = positiveInteger(args, 'prompt', 8);
  const s: Settings = {
    batch: positiveInteger(args, 'batch', 4),
    seq: positiveInteger(args, 'seq', 32, 2),
    rank: positiveInteger(args, 'rank', 8),
    sampleBatch: positiveInteger(args, 'sample-batch', 4),
    prompt: Array.from({ length: promptTokens }, (_, i) => 1 + ((i * 7919) % 997)),
    newTokens: positiveInteger(args, 'new-tokens', 8),
    rounds: positiveInteger(args, 'rounds', 2),
    matmulRepeats: positiveInteger(args, 'matmul-repeats', 4),
    matmulSeconds: Number(args['matmul-seconds'] ?? 1),
  };
  const varyAt = positiveInteger(args, 'vary-at', layers[0] ?? 2);
  const fullLayers = positiveInteger(args, 'full-layers', SMOLLM2.layers, 0);
  const fullTokens = positiveInteger(args, 'full-tokens', 2);
  const tjsLayers = positiveInteger(args, 'tjs-layers', layers[0] ?? 2, 0);
  const tjsBatch = positiveInteger(args, 'tjs-batch', 1);
  const tjsTokens = positiveInteger(args, 'tjs-tokens', s.newTokens);
  if (!(s.matmulSeconds > 0)) throw new Error(`--matmul-seconds: '${args['matmul-seconds']}' is not a positive number`);
  for (const w of widths) if (w % 192 !== 0) throw new Error(`--widths: ${w} is not a multiple of 192 (heads of 64, query heads 3× the KV heads as SmolLM2 has them)`);
  const base = { hidden: SMOLLM2.hidden, intermediate: SMOLLM2.intermediate, vocab: SMOLLM2.vocab };
  const vocabMin = Math.max(...s.prompt) + 1;
  for (const v of vocabs) if (v < vocabMin) throw new Error(`--vocabs: ${v} is smaller than the prompt's token ids need (${vocabMin})`);
  const shapes: Shape[] = [
    ...layers.map((l) => ({ ...base, layers: l })),
    ...widths.map((w) => ({ layers: varyAt, hidden: w, intermediate: Math.round((SMOLLM2.intermediate * w) / SMOLLM2.hidden), vocab: SMOLLM2.vocab })),
    ...vocabs.map((v) => ({ ...base, layers: varyAt, vocab: v })),
  ];
  const log = (m: string) => console.error(`llama bench: ${m}`);
  const loadAtStart = loadavg();
  const started = new Date().toISOString();

  let adapter: object | undefined;
  let cases: CaseResult[] = [];
  const memory: Awaited<ReturnType<typeof memoryCase>>[] = [];
  let full: Awaited<ReturnType<typeof memoryCase>> | undefined;
  let trainerMatmulVariant: string | undefined;
  if (parts.includes('measure') || (parts.includes('full') && fullLayers > 0)) {
    const acquired = await acquireDevice(nodeGpu());
    if (!acquired.ok) throw new Error(`llama bench: no WebGPU device: ${acquired.error.message}\n${NODE_GPU_ADVICE}`);
    const { device, summary } = acquired;
    adapter = { vendor: summary.vendor, architecture: summary.architecture, description: summary.description, isFallbackAdapter: summary.isFallbackAdapter, shaderF16: summary.features.includes('shader-f16') };
    configureOrt({ numThreads: 1 });
    const counter = new GpuMemoryCounter(device);
    const restore = pollDawnGently();
    try {
      if (parts.includes('measure')) {
        // Each shape alone first (its memory; this also compiles every shader the timed rounds use), then all of them interleaved.
        for (const shape of shapes) memory.push(await memoryCase(device, counter, shape, s, s.newTokens, log));
        cases = await timeCases(device, counter, shapes, s, log);
      }
      trainerMatmulVariant = currentMatmulVariant(device);
      if (parts.includes('full') && fullLayers > 0) full = await memoryCase(device, counter, { ...base, layers: fullLayers }, s, fullTokens, log);
    } finally {
      restore();
      device.destroy();
    }
  }
  const tjs = parts.includes('tjs') && tjsLayers > 0 ? await versusTransformersJs({ ...base, layers: tjsLayers }, s, tjsBatch, tjsTokens, log) : undefined;
  return {
    bench: 'llama',
    started,
    finished: new Date().toISOString(),
    loadAverage: { atStart: loadAtStart.map(round3), atEnd: loadavg().map(round3), note: 'the machine is shared: other processes ran beside the benchmark; ratios are taken within a round' },
    adapter: adapter ?? null,
    ortVersion: ORT_VERSION,
    model: {
      shape: 'SmolLM2-135M (HuggingFaceTB/SmolLM2-135M): hidden 576, 9 heads / 3 KV heads, head_dim 64, intermediate 1536, vocabulary 49152, tied head, rope θ 100000, 2048 positions, 30 layers',
      init: "random: normal(0, 0.02) embeddings and projections, norms 1 (seeded), model_type 'llama'",
      parametersAt30Layers: llamaParamSpecs(configOf({ ...base, layers: SMOLLM2.layers })).reduce((a, p) => a + numel(p.shape), 0),
    },
    settings: {
      training: `LoRA rank ${s.rank}, alpha ${2 * s.rank}, on q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; ${s.batch} sequences × ${s.seq} tokens per step, objective 'ce' (every position but the last scored), AdamW, one micro-batch`,
      sampling: `greedy (temperature 0), no EOS, ${s.newTokens} new tokens after a ${promptTokens}-token prompt, at batch 1 and ${s.sampleBatch}; the family's decoder with the weights as inputs read from the trainer's buffers, onnxruntime-web WebGPU EP; the sampler's default token choice`,
      rounds: s.rounds,
      timing: 'per shape: a warm-up round, then `rounds` rounds of [training step, sampling at each batch, matmul peak of both variants]; medians; the peak fraction is the median of each round\'s ratio',
      matmulPeak: `measureMatmulGflops on the MLP's first product [batch·seq, hidden] × [hidden, intermediate], both variants, the better one; products per submit calibrated once per shape and variant for about ${s.matmulSeconds} s (at least ${s.matmulRepeats}): ${JSON.stringify(Object.fromEntries(matmulRepeats))}`,
      flops: 'loraStepFlops: adapted projections 6·in·out per row (forward, input gradient, dW_eff), LoRA dA, dB and merge 6·in·out·r, tied head 4·V·E per row (forward, input gradient; frozen), attention 12·T²·H·D per layer per sequence',
      memory: 'every buffer created on the device (ours and onnxruntime-web\'s) while the shape ran, minus what was held before; the peak, by kind (scripts/bench/gpu-memory.ts); estimate: estimateTrainingMemory(config, { batch, sequence: seq, loraRank, f16Base })',
    },
    trainerMatmulVariant: trainerMatmulVariant ?? null,
    cases: cases.map((c, i) => ({ ...c, alone: memory[i] })),
    fit: cases.length ? fitCosts(cases, base, varyAt, s, SMOLLM2.layers) : null,
    fullDepth: full ? { ...full, said: `the real depth once, alone on the device: one training step and ${fullTokens} tokens at batch ${s.sampleBatch}, single runs (the first step at this depth, shaders compiled before), not medians` } : null,
    transformersJs: tjs ?? null,
    vsTransformersJs: tjs?.vsTransformersJs ?? null,
  };
}
