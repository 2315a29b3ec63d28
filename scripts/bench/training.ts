/**
 * `npm run bench -- training [--out FILE] [--rounds 3] [--batch 4] [--seq 64] [--matmul-repeats 8] [--kernel-repeats 4]`
 * (about a minute on a 2-core CPU with SwiftShader)
 *
 * The trainer's speed on a small GPT-2 (random weights, 'hf' initialisation; see `model` in the JSON):
 *   - tokensPerSecond: batch·seq tokens over the wall time of one full training step
 *     (accumulate: forward, CE loss gradient, backward; then applyStep: norms, clipping, AdamW, the
 *     step's read-back), objective 'ce' with every position scored but the last of each sequence;
 *   - flopsPerStep = 6·P·tokens + attention, P the parameters that take part in matrix products
 *     (every Conv1D weight and the tied LM head; biases, LayerNorms and the position table left
 *     out), attention 4·T²·E per layer per sequence forward (Q·Kᵀ and P·V, the full square, as the
 *     usual count has it), ×3 for forward + backward; achievedGflops = flopsPerStep / step time;
 *   - bestMatmulGflops: measureMatmulGflops of both kernel variants on the shape of the MLP's
 *     first product ([batch·seq, n_embd] × [n_embd, n_inner]), in the same rounds, the larger median;
 *     peakFraction = achievedGflops / bestMatmulGflops (goal ≥ 0.4), per round, then the median;
 *   - ortForwardRatio: onnxruntime-web's forward of the same model (buildGpt2Decoder with the same
 *     weights as initializers, openScoringSession + forwardLogits, on the same GPUDevice) over the
 *     trainer's forward, the same work on both sides: the trainer's public forward-only path is
 *     logprobs(), which after the forward runs the CE loss kernel over the logits and reads the
 *     per-row stats back, so ORT's side runs that same kernel on its logits and reads the same
 *     stats back (goal ≥ 1). ortForwardOnlyRatio: ORT's forward alone (logits left on the GPU,
 *     until the queue is done) over the same trainer time: a bound that counts against us.
 * breakdown: accumulate (forward + loss + backward) and applyStep times, the forward's share of the
 * step, and the attention and LayerNorm kernels timed alone on the step's shapes (their share of
 * the step and of the forward: where the time goes besides the matrix products).
 * Every measurement runs once per round, interleaved (load from other processes falls on all of
 * them alike), after a warm-up round that compiles every shader; times are medians, ratios the
 * medians of the per-round ratios (the ratios of the medians alongside).
 * Before anything is timed, the trainer's logits are compared with ORT's on the same batch.
 */
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { acquireDevice } from '../../workers/gpu/device';
import { createStorageBuffer, readFloat32 } from '../../workers/gpu/buffers';
import { configureOrt, ORT_VERSION } from '../../workers/ort/runtime';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { countGpt2Parameters, gpt2ParamSpecs, numel, randomGpt2Params } from '../../workers/models/gpt2/params';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import { forwardLogits, openScoringSession } from '../../workers/scoring/forward';
import { Trainer } from '../../workers/train/trainer';
import { currentMatmulVariant, measureMatmulGflops, type MatmulVariant } from '../../workers/kernels/train/matmul';
import { encodeLossGrad, LOSS_STATS } from '../../workers/kernels/train/loss';
import { attentionPath, attentionScratchBytes, createAttentionWork, encodeAttentionBackward, encodeAttentionForward } from '../../workers/kernels/train/attention';
import { encodeLayerNormBackward, encodeLayerNormForward, encodeLayerNormParamGrad } from '../../workers/kernels/train/layers';
import { benchSequences } from './bench-data';

const GOALS = { peakFraction: 0.4, ortForwardRatio: 1 };

const config: Gpt2Config = {
  modelType: 'gpt2', nLayer: 4, nHead: 4, nEmbd: 128, nInner: 512, nPositions: 256, vocabSize: 512,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Dawn's Node binding waits for the GPU by re-arming setImmediate until the work is done, a busy
 * loop on the main thread that takes one of the two cores from SwiftShader's worker threads. While
 * timing, it polls once a millisecond instead (a browser's GPU process has no such loop). It
 * applies to every measurement alike, ours and onnxruntime's.
 */
function pollDawnGently(): () => void {
  const original = globalThis.setImmediate;
  (globalThis as { setImmediate: unknown }).setImmediate = (fn: (...a: unknown[]) => void, ...a: unknown[]) => setTimeout(fn, 1, ...a);
  return () => {
    globalThis.setImmediate = original;
  };
}

/** Parameters that take part in matrix products: every layer's four Conv1D weights and the tied LM head (wte). */
function matmulParameters(c: Gpt2Config): number {
  return gpt2ParamSpecs(c)
    .filter((s) => s.role === 'linear-weight' || s.name === 'transformer.wte.weight')
    .reduce((a, s) => a + numel(s.shape), 0);
}

interface KernelProbe {
  /** Launches of this kernel in one training step (accumulate + applyStep). */
  callsPerStep: number;
  /** Of those, launches in the forward. */
  callsPerForward: number;
  /** ms per launch: `repeats` launches in one submit, until the queue is done. */
  time(): Promise<number>;
}

/**
 * The non-matmul kernels of the trainer's forward and backward, alone on buffers of the step's
 * shapes (random contents): how much of the step they take. LayerNorm backward = dx + dγ/dβ.
 */
function kernelProbes(device: GPUDevice, c: Gpt2Config, batch: number, seq: number, repeats: number): { probes: Record<string, KernelProbe>; destroy(): void } {
  const { nEmbd: E, nHead: H, nLayer: L } = c;
  const N = batch * seq;
  const dims = { batch, seq, heads: H, headDim: E / H };
  const buffers: GPUBuffer[] = [];
  let s = 99;
  const f32 = (count: number) => {
    const data = Float32Array.from({ length: count }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 0.2 - 0.1);
    const b = createStorageBuffer(device, data, 'bench kernel operand');
    buffers.push(b);
    return b;
  };
  const keyMask = createStorageBuffer(device, new Uint32Array(N).fill(1), 'bench key mask');
  const scratch = createStorageBuffer(device, Math.max(16, attentionScratchBytes(dims)), 'bench attention scratch');
  buffers.push(keyMask, scratch);
  // As the trainer: the matmul path's per-head matrices where the device uses it.
  const work = attentionPath(device) === 'matmul' ? createAttentionWork(device, dims, 'bench attention') : undefined;
  if (work) buffers.push(...Object.values(work));
  const qkv = f32(N * 3 * E), ctx = f32(N * E), probs = f32(batch * H * seq * seq), dctx = f32(N * E), dqkv = f32(N * 3 * E);
  const x = f32(N * E), y = f32(N * E), dy = f32(N * E), dx = f32(N * E), mean = f32(N), rstd = f32(N);
  const gamma = f32(E), beta = f32(E), dgamma = f32(E), dbeta = f32(E);
  const probe = (callsPerStep: number, callsPerForward: number, encode: (e: GPUCommandEncoder) => void): KernelProbe => ({
    callsPerStep,
    callsPerForward,
    async time() {
      const e = device.createCommandEncoder({ label: 'bench kernel probe' });
      for (let i = 0; i < repeats; i++) encode(e);
      const t0 = performance.now();
      device.queue.submit([e.finish()]);
      await device.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / repeats;
    },
  });
  return {
    probes: {
      attentionForward: probe(L, L, (e) => encodeAttentionForward(device, e, { qkv, keyMask, ctx, probs, work }, dims)),
      attentionBackward: probe(L, 0, (e) => encodeAttentionBackward(device, e, { dctx, probs, qkv, dqkv, scratch, keyMask, work }, dims)),
      layerNormForward: probe(2 * L + 1, 2 * L + 1, (e) => encodeLayerNormForward(device, e, { x, gamma, beta, y, mean, rstd }, { rows: N, width: E, eps: c.layerNormEpsilon })),
      layerNormBackward: probe(2 * L + 1, 0, (e) => {
        encodeLayerNormBackward(device, e, { dy, x, mean, rstd, gamma, dx }, { rows: N, width: E, accumulate: true });
        encodeLayerNormParamGrad(device, e, { dy, x, mean, rstd, dgamma, dbeta }, { rows: N, width: E, accumulate: true });
      }),
    },
    destroy: () => buffers.forEach((b) => b.destroy()),
  };
}

function positiveInteger(args: Record<string, string>, name: string, fallback: number): number {
  const value = Number(args[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: '${args[name]}' is not a positive integer`);
  return value;
}

export async function run(args: Record<string, string>): Promise<object> {
  const rounds = positiveInteger(args, 'rounds', 3);
  const batch = positiveInteger(args, 'batch', 4);
  const seq = positiveInteger(args, 'seq', 64);
  const matmulRepeats = positiveInteger(args, 'matmul-repeats', 8);
  const kernelRepeats = positiveInteger(args, 'kernel-repeats', 4);
  if (seq < 2 || seq > config.nPositions) throw new Error(`--seq: ${seq} must be in 2..${config.nPositions} (the bench model's n_positions)`);

  let gpu: GPU;
  try {
    gpu = nodeGpu();
  } catch (e) {
    throw new Error(`training bench: no WebGPU in Node (${e instanceof Error ? e.message : String(e)})\n${NODE_GPU_ADVICE}`);
  }
  const acquired = await acquireDevice(gpu);
  if (!acquired.ok) throw new Error(`training bench: no WebGPU device: ${acquired.error.message}${acquired.error.detail ? ` (${acquired.error.detail})` : ''}\n${NODE_GPU_ADVICE}`);
  const { device, summary } = acquired;
  configureOrt({ numThreads: 1 });

  const { nLayer: L, nEmbd: E, vocabSize: V } = config;
  const tokens = batch * seq;
  const rows = tokens;
  const P = matmulParameters(config);
  const attentionForward = 4 * seq * seq * E * L * batch;
  const flopsPerStep = 6 * P * tokens + 3 * attentionForward;
  const flopsForward = 2 * P * tokens + attentionForward;
  const matmulShape = { m: tokens, n: config.nInner, k: E };

  const params = randomGpt2Params(config, { seed: 1, scheme: 'hf' });
  const sequences = benchSequences(batch, seq, V);
  const ids = sequences.map((s) => s.tokens);
  const ce = { kind: 'ce' } as const;

  const trainer = await Trainer.create(device, config, params);
  const trainerVariant = currentMatmulVariant(device);
  const session = await openScoringSession(device, buildGpt2Decoder(config, { kind: 'initializers', params }), 'the bench model');

  // The CE loss kernel and stats read-back on ORT's logits: what logprobs() does after our forward.
  const targets = new Uint32Array(rows);
  const weights = new Float32Array(rows);
  sequences.forEach((s, b) => s.tokens.forEach((_, t) => {
    if (t < seq - 1) {
      targets[b * seq + t] = s.tokens[t + 1];
      weights[b * seq + t] = s.weights[t];
    }
  }));
  const ortTargets = createStorageBuffer(device, targets, 'bench ORT targets');
  const ortWeights = createStorageBuffer(device, weights, 'bench ORT weights');
  const ortDlogits = createStorageBuffer(device, rows * V * 4, 'bench ORT dlogits');
  const ortStats = createStorageBuffer(device, rows * LOSS_STATS.length * 4, 'bench ORT stats');

  const kernels = kernelProbes(device, config, batch, seq, kernelRepeats);

  const restore = pollDawnGently();
  try {
    // Same model, same batch: the trainer's logits against ORT's, before any step changes the weights.
    const ours = await trainer.logits(sequences);
    const theirsOut = await forwardLogits(session, ids);
    const theirs = await readFloat32(device, theirsOut.logits.gpuBuffer as GPUBuffer, rows * V);
    theirsOut.logits.dispose();
    let maxAbsLogitDiff = 0;
    for (let i = 0; i < rows * V; i++) maxAbsLogitDiff = Math.max(maxAbsLogitDiff, Math.abs(ours.logits[i] - theirs[i]));
    if (!(maxAbsLogitDiff < 1e-2)) throw new Error(`training bench: the trainer's logits and ORT's differ by up to ${maxAbsLogitDiff}: not the same model`);

    const runs: Record<string, number[]> = {
      stepMs: [], accumulateMs: [], applyStepMs: [], oursForwardMs: [], ortForwardMs: [], ortForwardSameWorkMs: [],
      registerGflops: [], tiledGflops: [],
    };
    const kernelRuns: Record<string, number[]> = Object.fromEntries(Object.keys(kernels.probes).map((k) => [k, []]));
    const losses: number[] = [];
    let ourLogp: Float32Array | undefined;
    let ortLogp: Float32Array | undefined;
    const timed = async (f: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    const matmul = (variant: MatmulVariant) => measureMatmulGflops(device, matmulShape, variant, matmulRepeats);
    for (let round = 0; round <= rounds; round++) {
      const keep = round > 0; // round 0: warm-up (shader compilation)
      // A full training step.
      const t0 = performance.now();
      await trainer.accumulate(sequences, ce);
      const t1 = performance.now();
      const report = await trainer.applyStep();
      const t2 = performance.now();
      if (!report.applied || !Number.isFinite(report.loss)) throw new Error(`training bench: step ${round} was not applied (${report.problem ?? `loss ${report.loss}`})`);
      if (report.scoredTokens !== batch * (seq - 1)) throw new Error(`training bench: ${report.scoredTokens} scored tokens, expected ${batch * (seq - 1)}`);
      losses.push(report.loss);
      // Our forward: logprobs() = forward, CE loss kernel, read-back of the per-row stats.
      const oursMs = await timed(async () => {
        ourLogp = await trainer.logprobs(sequences);
      });
      // ORT's forward alone, logits left on the GPU, until the queue is done.
      const ortMs = await timed(async () => {
        const out = await forwardLogits(session, ids);
        await device.queue.onSubmittedWorkDone();
        out.logits.dispose();
      });
      // ORT's forward, then the same loss kernel and read-back as logprobs().
      const ortSameMs = await timed(async () => {
        const out = await forwardLogits(session, ids);
        const encoder = device.createCommandEncoder({ label: 'bench ORT loss' });
        encodeLossGrad(device, encoder, { logits: out.logits.gpuBuffer as GPUBuffer, targets: ortTargets, weights: ortWeights, dlogits: ortDlogits, stats: ortStats }, { rows, vocab: V, mode: 'ce', temperature: 1, clipEpsilon: 0 });
        device.queue.submit([encoder.finish()]);
        const stats = await readFloat32(device, ortStats, rows * LOSS_STATS.length);
        ortLogp = Float32Array.from({ length: rows }, (_, n) => (weights[n] !== 0 ? stats[n * LOSS_STATS.length] : 0));
        out.logits.dispose();
      });
      const register = await matmul('register');
      const tiled = await matmul('tiled');
      const kernelMs: Record<string, number> = {};
      for (const [name, p] of Object.entries(kernels.probes)) kernelMs[name] = await p.time();
      if (!keep) continue;
      for (const [name, v] of Object.entries(kernelMs)) kernelRuns[name].push(v);
      runs.stepMs.push(t2 - t0);
      runs.accumulateMs.push(t1 - t0);
      runs.applyStepMs.push(t2 - t1);
      runs.oursForwardMs.push(oursMs);
      runs.ortForwardMs.push(ortMs);
      runs.ortForwardSameWorkMs.push(ortSameMs);
      runs.registerGflops.push(register);
      runs.tiledGflops.push(tiled);
      console.error(
        `training bench: round ${round}: step ${(t2 - t0).toFixed(0)} ms (accumulate ${(t1 - t0).toFixed(0)}, applyStep ${(t2 - t1).toFixed(0)}), ` +
          `forward ours ${oursMs.toFixed(0)} ms, ORT ${ortMs.toFixed(0)} ms (+loss ${ortSameMs.toFixed(0)} ms), matmul register ${register.toFixed(2)} / tiled ${tiled.toFixed(2)} GFLOP/s`,
      );
    }
    restore();

    // The timed forwards ran on the trained weights on our side, the initial ones on ORT's: the
    // same work, different values. Their log-probs are compared only for shape (finite, ≤ 0).
    const finiteLogp = (x: Float32Array | undefined) => !!x && x.every((v) => Number.isFinite(v) && v <= 1e-6);
    if (!finiteLogp(ourLogp) || !finiteLogp(ortLogp)) throw new Error('training bench: a forward produced non-finite or positive log-probs');

    const ms = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])) as Record<keyof typeof runs, number>;
    const achievedGflops = flopsPerStep / (ms.stepMs / 1000) / 1e9;
    const bestMatmul = ms.registerGflops >= ms.tiledGflops ? { variant: 'register', gflops: ms.registerGflops } : { variant: 'tiled', gflops: ms.tiledGflops };
    // Ratios: the median of each round's ratio (the two sides measured moments apart, so a load
    // that comes and goes between rounds cancels), with the ratio of the medians alongside.
    const perRound = (f: (r: number) => number) => runs.stepMs.map((_, r) => f(r));
    const ratioRuns = {
      peakFraction: perRound((r) => flopsPerStep / (runs.stepMs[r] / 1000) / 1e9 / Math.max(runs.registerGflops[r], runs.tiledGflops[r])),
      ortForwardRatio: perRound((r) => runs.ortForwardSameWorkMs[r] / runs.oursForwardMs[r]),
      ortForwardOnlyRatio: perRound((r) => runs.ortForwardMs[r] / runs.oursForwardMs[r]),
    };
    const peakFraction = median(ratioRuns.peakFraction);
    const ortForwardRatio = median(ratioRuns.ortForwardRatio);
    const ortForwardOnlyRatio = median(ratioRuns.ortForwardOnlyRatio);
    const kernelsSummary = Object.fromEntries(Object.entries(kernels.probes).map(([name, p]) => {
      const perCall = median(kernelRuns[name]);
      return [name, {
        msPerCall: round1(perCall),
        callsPerStep: p.callsPerStep,
        shareOfStep: round3((perCall * p.callsPerStep) / ms.stepMs),
        shareOfForward: round3((perCall * p.callsPerForward) / ms.oursForwardMs),
      }];
    }));
    return {
      bench: 'training',
      adapter: { vendor: summary.vendor, architecture: summary.architecture, description: summary.description, isFallbackAdapter: summary.isFallbackAdapter },
      ortVersion: ORT_VERSION,
      model: {
        ...config,
        parameters: countGpt2Parameters(config),
        matmulParameters: P,
        init: "randomGpt2Params seed 1, 'hf' scheme",
      },
      batch,
      seq,
      tokensPerStep: tokens,
      scoredTokensPerStep: batch * (seq - 1),
      rounds,
      objective: "'ce', every position scored but the last of each sequence (weight 1/scored tokens), AdamW defaults, lr 1e-3, one micro-batch per step",
      counted: {
        step: 'wall time of trainer.accumulate (forward, CE loss gradient, backward; it waits for the GPU) + trainer.applyStep (norms, clip, AdamW, weight norms, read-back of the step report)',
        flops: '6·P·tokens + 3·(4·T²·E·L·B): P = matmul parameters (Conv1D weights + tied LM head), tokens = B·T; attention forward 4·T²·E per layer per sequence (QKᵀ and PV over the full T×T square), ×3 for forward + backward',
        oursForward: "trainer.logprobs(): pack + upload, forward, CE loss kernel over the logits (stats and dlogits), read-back of the per-row stats (rows·4 floats); on the weights after that round's step (ORT keeps the initial ones: the same work, other values)",
        ortForward: 'forwardLogits (int64 feeds, session.run, logits and present.* KV outputs on the GPU) + queue.onSubmittedWorkDone',
        ortForwardSameWork: 'ortForward + the same CE loss kernel (encodeLossGrad) on its logits + the same read-back of the per-row stats',
        kernels: `attention and LayerNorm kernels alone on the step's shapes, random operands, ${kernelRepeats} launches per submit, ms per launch; share = ms × launches / the step's (or forward's) median time`,
        matmul: `measureMatmulGflops(m=${matmulShape.m}, n=${matmulShape.n}, k=${matmulShape.k}) (the MLP's first product), ${matmulRepeats} products per submit, per variant`,
        timing: 'median over interleaved rounds (one run of each measurement per round) after a warm-up round; Dawn polled once a millisecond while timing',
        ratios: 'peakFraction and the ORT ratios: the median of the per-round ratios (both sides measured in the same round); the ratio of the medians is given alongside (…OfMedians)',
      },
      maxAbsLogitDiffVsOrt: maxAbsLogitDiff,
      trainerMatmulVariant: trainerVariant,
      stepMs: ms.stepMs,
      tokensPerSecond: tokens / (ms.stepMs / 1000),
      flopsPerStep,
      achievedGflops,
      bestMatmulGflops: bestMatmul.gflops,
      bestMatmulVariant: bestMatmul.variant,
      matmulGflops: { register: ms.registerGflops, tiled: ms.tiledGflops },
      peakFraction,
      peakFractionOfMedians: achievedGflops / bestMatmul.gflops,
      oursForwardMs: ms.oursForwardMs,
      ortForwardMs: ms.ortForwardMs,
      ortForwardSameWorkMs: ms.ortForwardSameWorkMs,
      ortForwardRatio,
      ortForwardOnlyRatio,
      ortForwardRatioOfMedians: ms.ortForwardSameWorkMs / ms.oursForwardMs,
      breakdown: {
        accumulateMs: ms.accumulateMs,
        applyStepMs: ms.applyStepMs,
        forwardMs: ms.oursForwardMs,
        forwardShareOfStep: ms.oursForwardMs / ms.stepMs,
        backwardAndLossMsEstimate: ms.accumulateMs - ms.oursForwardMs,
        forwardFlops: flopsForward,
        forwardGflops: flopsForward / (ms.oursForwardMs / 1000) / 1e9,
        ortForwardGflops: flopsForward / (ms.ortForwardMs / 1000) / 1e9,
        // The non-matmul kernels alone on the step's shapes (median ms per launch × launches per step).
        kernels: kernelsSummary,
      },
      losses: losses.map(round3),
      goals: GOALS,
      goalsMet: { peakFraction: peakFraction >= GOALS.peakFraction, ortForwardRatio: ortForwardRatio >= GOALS.ortForwardRatio },
      runs: {
        ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map(k.endsWith('Gflops') ? round3 : round1)])),
        ratios: Object.fromEntries(Object.entries(ratioRuns).map(([k, v]) => [k, v.map(round3)])),
        kernelMsPerCall: Object.fromEntries(Object.entries(kernelRuns).map(([k, v]) => [k, v.map(round1)])),
      },
    };
  } finally {
    restore();
    trainer.destroy();
    await session.release();
    for (const b of [ortTargets, ortWeights, ortDlogits, ortStats]) b.destroy();
    kernels.destroy();
    device.destroy();
  }
}
