/**
 * The trainer as the lab uses it, beyond its gradients (train-trainer.test.ts): the sampler's ONNX
 * graph reads the trainer's live weight buffers and records the same log-probs the trainer
 * computes, before and after a step; each objective (and LoRA) can overfit a fixed batch; a
 * checkpoint resumes bit-for-bit; and the numerics guard never lets a bad step touch the weights.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { smallGpt2Config } from './fixtures';
import { configureOrt } from '../../workers/ort/runtime';
import { randomGpt2Params } from '../../workers/models/gpt2/params';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import type { DecoderSession } from '../../workers/models/decoder-session';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions, type Completion, type SampleRequest } from '../../workers/sampling/sampler';
import { Trainer, type Objective, type StepReport, type TrainerOptions } from '../../workers/train/trainer';
import type { TrainSequence } from '../../workers/train/batch';
import { restoreCheckpoint, saveCheckpoint } from '../../workers/train/checkpoint';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../workers/models/safetensors';
import { createStorageBuffer } from '../../workers/gpu/buffers';

/**
 * Sampler log-prob (ORT decoder, left-padded batch, KV cache) vs the trainer's forward (our WGSL
 * kernels, right-padded rows) on the same weight buffers: both float32, different summation
 * orders; measured ~1e-6. A wrong position, mask or stale weight moves log-probs by ≫ 1e-2.
 */
const LOGPROB_MATCH = 1e-4;
/** After one step at lr 1e-2 the log-probs of the same tokens must have moved by more than this. */
const LOGPROB_MOVED = 1e-2;

/** Overfitting targets (a fixed batch, lr 1e-2, the default AdamW and clipping at norm 1). */
const CE_TARGET = 0.05; // mean CE in nats; starts near 4.4 (these random weights are confident)
const CE_MAX_STEPS = 60;
const PG_TARGET_LOGPROB = -0.1; // mean log-prob of the rewarded tokens; starts near −4.4
const PG_MAX_STEPS = 40;
const KL_TARGET_FRACTION = 0.1; // reverse KL to the teacher, as a fraction of its start
const KL_MAX_STEPS = 60;
const LORA_TARGET_FRACTION = 0.5; // LoRA CE as a fraction of its start (fewer parameters move)
const LORA_MAX_STEPS = 30;

const config = smallGpt2Config({ nLayer: 2, nHead: 2, nEmbd: 16, nInner: 64, vocabSize: 17, nPositions: 32 });

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 100_000) / 100_000;
}

/** Sequences of the given lengths over tokens 1..16: the first `prompt` tokens are not predicted, the rest weigh 1/(scored tokens). */
function fixedBatch(seed: number, lengths: number[], prompt = 2): TrainSequence[] {
  const next = lcg(seed);
  const scored = lengths.reduce((a, L) => a + (L - prompt), 0);
  return lengths.map((L) => {
    const tokens = Array.from({ length: L }, () => 1 + Math.floor(next() * (config.vocabSize - 1)));
    return { tokens, weights: tokens.map((_, t) => (t >= prompt - 1 && t < L - 1 ? 1 / scored : 0)) };
  });
}

/** Prompt + completion as a training sequence: weight 1 (or `weight`) where position t predicts a completion token t+1. */
function completionSequences(prompts: readonly (readonly number[])[], completions: readonly Completion[], weight = 1): TrainSequence[] {
  return completions.map((c) => {
    const prompt = prompts[c.promptIndex];
    const tokens = [...prompt, ...c.tokens];
    const scored = (t: number) => t >= prompt.length - 1 && t < tokens.length - 1;
    return {
      tokens,
      weights: tokens.map((_, t) => (scored(t) ? weight : 0)),
      oldLogprobs: tokens.map((_, t) => (scored(t) ? c.logprobs[t - prompt.length + 1] : 0)),
    };
  });
}

/** Largest |trainer row log-prob − recorded log-prob| over the scored positions (packed row b·T + t). */
function maxLogprobDiff(seqs: readonly TrainSequence[], rows: Float32Array, recorded = (s: TrainSequence, t: number) => s.oldLogprobs![t]): number {
  const T = Math.max(...seqs.map((s) => s.tokens.length));
  let worst = 0;
  seqs.forEach((s, b) => s.weights.forEach((w, t) => {
    if (w !== 0) worst = Math.max(worst, Math.abs(rows[b * T + t] - recorded(s, t)));
  }));
  return worst;
}

/** How many elements differ in their bits (0: bit-identical; NaN ≠ −NaN, 0 ≠ −0). */
function bitDiffs(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}

function expectSameTensors(actual: ReadonlyMap<string, Float32Array>, expected: ReadonlyMap<string, Float32Array>, what: string): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  const differing = [...expected].filter(([name, data]) => bitDiffs(actual.get(name)!, data) !== 0).map(([name]) => name);
  expect(differing, `${what}: tensors not bit-identical`).toEqual([]);
}

/** Weights and both AdamW moments of every trainable tensor, flattened into one map. */
async function optimizerState(trainer: Trainer): Promise<Map<string, Float32Array>> {
  const { trainable } = await trainer.readState();
  const out = new Map<string, Float32Array>();
  for (const [name, t] of trainable) {
    out.set(`${name}`, t.param);
    out.set(`optimizer.m.${name}`, t.m);
    out.set(`optimizer.v.${name}`, t.v);
  }
  return out;
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;

describe('the trainer in the lab', () => {
  let decoder: DecoderSession | undefined;
  afterAll(async () => {
    await decoder?.session.release();
  });

  it("the trainer's log-probs equal the ONNX sampler's, before and after a step (full and LoRA)", async () => {
    const device = await testDevice();
    configureOrt({ numThreads: 1 });
    const params = randomGpt2Params(config, { seed: 21, scheme: 'test' });
    decoder = await openSamplingSession(device, config, buildGpt2Decoder(config, { kind: 'inputs' }));
    const request: SampleRequest = {
      prompts: [[5, 9, 2], [11]], n: 2, maxTokens: 8, sampling: { temperature: 1, topK: 0, topP: 1 }, seed: 3, eosTokenId: 0,
    };
    for (const options of [{ schedule: { lr: 1e-2 } }, { schedule: { lr: 1e-2 }, lora: { rank: 4 } }] satisfies TrainerOptions[]) {
      const what = options.lora ? 'LoRA' : 'full';
      const trainer = await Trainer.create(device, config, params, options);
      // The trainer's own buffers (W_eff for LoRA), fed in place: built once, never refreshed.
      const runner = decoderRunner(config, decoder, trainer.weightFeeds());

      const before = await sampleCompletions(runner, request);
      const seqsBefore = completionSequences(request.prompts, before);
      const diffBefore = maxLogprobDiff(seqsBefore, await trainer.logprobs(seqsBefore));

      // One OPD-like step on these samples: PG with the sampler's log-probs as π_old, advantage 1.
      const scored = seqsBefore.reduce((a, s) => a + s.weights.filter((w) => w !== 0).length, 0);
      const report = await trainer.trainStep([seqsBefore.map((s) => ({ ...s, weights: s.weights.map((w) => w / scored), advantages: s.weights.map(() => 1) }))], { kind: 'pg' });
      expect(report.applied).toBe(true);
      // ρ = π_θ/π_old before the update: 1 up to the same float32 noise.
      expect(Math.abs(report.meanRatio - 1)).toBeLessThan(LOGPROB_MATCH);

      const after = await sampleCompletions(runner, request);
      const seqsAfter = completionSequences(request.prompts, after);
      const diffAfter = maxLogprobDiff(seqsAfter, await trainer.logprobs(seqsAfter));
      // The old samples' tokens under the new weights: moved away from what was recorded.
      const moved = maxLogprobDiff(seqsBefore, await trainer.logprobs(seqsBefore));
      // The sampler's own record: same seed, so completions tend to start with the same token
      // after the same prompt; that token's log-prob is now another.
      const sameFirst = before.map((c, i) => [c, after[i]] as const).filter(([b, a]) => b.tokens[0] === a.tokens[0]);
      expect(sameFirst.length).toBeGreaterThan(0);
      const samplerMoved = Math.max(...sameFirst.map(([b, a]) => Math.abs(b.logprobs[0] - a.logprobs[0])));
      console.log(
        `${what}: sampler vs trainer log-probs, max |Δ| ${diffBefore.toExponential(2)} before the step, ${diffAfter.toExponential(2)} after; ` +
          `the step moved them by up to ${moved.toFixed(3)} (the sampler's first-token log-prob by up to ${samplerMoved.toFixed(3)})`,
      );
      expect(diffBefore, what).toBeLessThanOrEqual(LOGPROB_MATCH);
      expect(diffAfter, what).toBeLessThanOrEqual(LOGPROB_MATCH);
      expect(moved, what).toBeGreaterThan(LOGPROB_MOVED);
      expect(samplerMoved, what).toBeGreaterThan(LOGPROB_MOVED);
      trainer.destroy();
    }
  });

  it('a tiny model overfits a fixed batch with each objective, and with LoRA', async () => {
    const device = await testDevice();
    const params = randomGpt2Params(config, { seed: 22, scheme: 'test' });
    const options: TrainerOptions = { schedule: { lr: 1e-2 } };
    const batch = fixedBatch(7, [10, 7]);
    const width = 10;
    /**
     * The per-token losses ℓ_n the step reports (per scored row, packed order): Σ_n w_n·ℓ_n is the
     * step's loss; 'ce' ℓ_n = −log p(y_n), 'kl' ℓ_n = the row's reverse KL.
     */
    const checkTokenLosses = (r: StepReport, sequences: TrainSequence[], kind: Objective['kind']) => {
      const m = r.microBatches[0];
      const w = sequences.flatMap((s) => Array.from({ length: width }, (_, t) => s.weights[t] ?? 0)).filter((x) => x !== 0);
      expect(m.tokenLosses).toHaveLength(w.length);
      const weighted = w.reduce((a, x, i) => a + x * m.tokenLosses[i], 0);
      expect(Math.abs(weighted - r.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(r.loss)));
      if (kind === 'ce') m.tokenLosses.forEach((l, i) => expect(Math.abs(l + m.logprobs[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(l))));
      if (kind === 'kl') expect(Array.from(m.tokenLosses)).toEqual(Array.from(m.reverseKL!));
    };
    /** Steps on one fixed batch until `done(this report, the first report)` or maxSteps. */
    type Seqs = TrainSequence[] | (() => Promise<TrainSequence[]>);
    const run = async (trainer: Trainer, seqs: Seqs, objective: Objective, maxSteps: number, done: (r: StepReport, first: StepReport) => boolean) => {
      const reports: StepReport[] = [];
      for (let i = 0; i < maxSteps; i++) {
        const sequences = typeof seqs === 'function' ? await seqs() : seqs;
        const r = await trainer.trainStep([sequences], objective);
        expect(r.applied, r.problem).toBe(true);
        checkTokenLosses(r, sequences, objective.kind);
        reports.push(r);
        if (done(r, reports[0])) break;
      }
      return reports;
    };

    // CE: the loss (each report's, computed before its update) falls below the target.
    const ce = await Trainer.create(device, config, params, options);
    const ceReports = await run(ce, batch, { kind: 'ce' }, CE_MAX_STEPS, (r) => r.loss < CE_TARGET);
    ce.destroy();

    // PG, on-policy as in OPD: the same "sampled" tokens every step with positive advantages
    // (0.5 … 1.5) and π_old = the current policy (what the sampler records, test 1), so ρ = 1.
    // (With π_old frozen at the start instead, the unclipped ρ-weighting pours the update into
    // the few tokens whose ρ has grown: measured surrogate −1 → −208 in 40 steps but mean
    // log-prob only −4.4 → −2.9. That is the objective, not a fault; its gradient at ρ ≠ 1 is
    // checked against float64 in train-trainer.test.ts.)
    const pg = await Trainer.create(device, config, params, options);
    const onPolicy = async () => {
      const current = await pg.logprobs(batch);
      return batch.map((s, b) => ({ ...s, oldLogprobs: s.tokens.map((_, t) => current[b * width + t]), advantages: s.tokens.map((_, t) => 0.5 + ((t * 3 + b) % 5) / 4) }));
    };
    const meanLogprob = (r: StepReport) => mean(r.microBatches[0].logprobs);
    const pgReports = await run(pg, onPolicy, { kind: 'pg' }, PG_MAX_STEPS, (r) => meanLogprob(r) > PG_TARGET_LOGPROB);
    // ρ = exp(logp − π_old) = 1 at every step: the trainer's forward with and without the backward agree.
    expect(Math.max(...pgReports.map((r) => Math.abs(r.meanRatio - 1)))).toBeLessThan(LOGPROB_MATCH);
    pg.destroy();

    // KL: reverse KL to fixed teacher logits (on the GPU, same packed rows [2 × 10, V]).
    const next = lcg(99);
    const teacher = createStorageBuffer(device, Float32Array.from({ length: batch.length * width * config.vocabSize }, () => (next() - 0.5) * 8), 'teacher logits');
    const kl = await Trainer.create(device, config, params, options);
    const klReports = await run(kl, batch, { kind: 'kl', teacherLogits: teacher }, KL_MAX_STEPS, (r, first) => r.loss < KL_TARGET_FRACTION * first.loss);
    kl.destroy();
    teacher.destroy();

    // LoRA, CE: the loss falls while the base weights stay exactly as they were.
    const lora = await Trainer.create(device, config, params, { ...options, lora: { rank: 4 } });
    const baseBefore = (await lora.readState()).base;
    const loraReports = await run(lora, batch, { kind: 'ce' }, LORA_MAX_STEPS, (r, first) => r.loss < LORA_TARGET_FRACTION * first.loss);
    expectSameTensors((await lora.readState()).base, baseBefore, 'LoRA base weights');
    lora.destroy();

    const summary = (name: string, rs: StepReport[], value: (r: StepReport) => number) => `${name}: ${value(rs[0]).toFixed(3)} → ${value(rs.at(-1)!).toFixed(3)} in ${rs.length} steps`;
    console.log(
      `overfitting a fixed batch: ${summary('CE', ceReports, (r) => r.loss)}; ${summary('on-policy PG mean log-prob', pgReports, meanLogprob)}; ` +
        `${summary('reverse KL', klReports, (r) => r.loss)}; ${summary('LoRA CE', loraReports, (r) => r.loss)}`,
    );
    expect(ceReports.at(-1)!.loss).toBeLessThan(CE_TARGET);
    expect(meanLogprob(pgReports.at(-1)!)).toBeGreaterThan(PG_TARGET_LOGPROB);
    expect(klReports.at(-1)!.loss).toBeLessThan(KL_TARGET_FRACTION * klReports[0].loss);
    expect(loraReports.at(-1)!.loss).toBeLessThan(LORA_TARGET_FRACTION * loraReports[0].loss);
  });

  it('save → load → continue gives the same weights as an uninterrupted run', async () => {
    const device = await testDevice();
    const params = randomGpt2Params(config, { seed: 23, scheme: 'test' });
    const batches = [1, 2, 3, 4].map((i) => fixedBatch(30 + i, [8, 5 + i]));
    for (const options of [{ schedule: { lr: 1e-2 } }, { schedule: { lr: 1e-2 }, lora: { rank: 4 }, seed: 5 }] satisfies TrainerOptions[]) {
      const what = options.lora ? 'LoRA' : 'full fine-tuning';
      const a = await Trainer.create(device, config, params, options);
      for (const b of batches) expect((await a.trainStep([b], { kind: 'ce' })).applied).toBe(true);
      const weightsA = await a.readWeights();
      const stateA = await optimizerState(a);

      let b: Trainer = await Trainer.create(device, config, params, options);
      for (const batch of batches.slice(0, 2)) await b.trainStep([batch], { kind: 'ce' });
      const bytes = await saveCheckpoint(b, { sampler: { seed: 3, position: 17 } });
      b.destroy();
      const restored = await restoreCheckpoint(device, bytes);
      b = restored.trainer;
      expect(restored.step).toBe(2);
      expect(restored.run).toEqual({ sampler: { seed: 3, position: 17 } });
      for (const batch of batches.slice(2)) await b.trainStep([batch], { kind: 'ce' });
      expect(b.step, what).toBe(a.step);
      expect(a.step).toBe(4);
      expectSameTensors(await b.readWeights(), weightsA, `${what}: resumed weights`);
      expectSameTensors(await optimizerState(b), stateA, `${what}: resumed AdamW state`);
      a.destroy();

      if (options.lora) {
        // Corrupt files: a clear error naming the file, never a crash or a half-built trainer.
        await expect(restoreCheckpoint(device, bytes.subarray(0, bytes.length - 100), 'run.safetensors')).rejects.toThrow(/run\.safetensors: .*truncated/);
        await expect(restoreCheckpoint(device, bytes.subarray(0, 5), 'run.safetensors')).rejects.toThrow(/run\.safetensors: is 5 bytes long/);
        const { tensors, metadata } = readSafetensors(bytes);
        const rewrite = (meta: Record<string, string>, drop?: string) =>
          writeSafetensors(
            [...tensors].filter(([n]) => n !== drop).map(([n, t]): [string, TensorToWrite] => [n, { dtype: t.dtype, shape: t.shape, data: t.bytes }]),
            meta,
          );
        const meta = JSON.parse(metadata['opd-lab']);
        await expect(restoreCheckpoint(device, rewrite({ format: 'pt' }), 'model.safetensors')).rejects.toThrow('model.safetensors is not an OPD Lab trainer checkpoint');
        await expect(restoreCheckpoint(device, rewrite({ 'opd-lab': '{"format": ' }), 'x.safetensors')).rejects.toThrow('x.safetensors: its "opd-lab" metadata is not JSON');
        await expect(restoreCheckpoint(device, rewrite({ 'opd-lab': JSON.stringify({ ...meta, version: 9 }) }), 'x.safetensors')).rejects.toThrow('x.safetensors is a version 9 checkpoint');
        const optimizerTensor = [...tensors.keys()].find((n) => n.startsWith('optimizer.v.'))!;
        await expect(restoreCheckpoint(device, rewrite(metadata, optimizerTensor), 'x.safetensors')).rejects.toThrow(`x.safetensors: the tensor ${optimizerTensor} is missing`);
        const baseTensor = 'transformer.h.1.ln_2.bias';
        await expect(restoreCheckpoint(device, rewrite(metadata, baseTensor), 'x.safetensors')).rejects.toThrow(`x.safetensors: the tensor ${baseTensor} is missing`);
        const withMeta = (over: object) => rewrite({ 'opd-lab': JSON.stringify({ ...meta, ...over }) });
        await expect(restoreCheckpoint(device, withMeta({ options: { ...meta.options, lora: { rank: 2 } } }), 'x.safetensors')).rejects.toThrow(
          /^x\.safetensors: the checkpoint's weights of transformer\.h\.0\.attn\.c_attn\.weight\.lora_A have 64 values, expected 32$/,
        );
        await expect(restoreCheckpoint(device, withMeta({ options: { ...meta.options, lora: undefined } }), 'x.safetensors')).rejects.toThrow('x.safetensors: its trainable tensors do not match its own options');
        await expect(restoreCheckpoint(device, withMeta({ options: { ...meta.options, lora: { rank: 0 } } }), 'x.safetensors')).rejects.toThrow('x.safetensors: LoRA rank 0 must be a positive integer');
        await expect(restoreCheckpoint(device, withMeta({ step: -1 }), 'x.safetensors')).rejects.toThrow("x.safetensors: the checkpoint's step -1 is not a step count");
        await expect(restoreCheckpoint(device, withMeta({ config: { ...meta.config, n_embd: 32 } }), 'x.safetensors')).rejects.toThrow(/^x\.safetensors: transformer\.wte\.weight has 272 values, expected 544/);
      }
      b.destroy();
    }
  });

  it('the numerics guard: an overflowing gradient skips the step, a non-finite update is undone', async () => {
    const device = await testDevice();
    const params = randomGpt2Params(config, { seed: 24, scheme: 'test' });
    const batch = fixedBatch(41, [9, 6]);
    const pgBatch = (advantage: number) => batch.map((s) => ({ ...s, oldLogprobs: s.tokens.map(() => -2), advantages: s.tokens.map(() => advantage) }));

    // (a) Advantages of 1e30: the gradients (≳1e30) square beyond float32's range, Σg² = +Inf.
    const trainer = await Trainer.create(device, config, params, { schedule: { lr: 1e-2 } });
    expect((await trainer.trainStep([pgBatch(1)], { kind: 'pg' })).applied).toBe(true); // non-zero moments
    const weights = await trainer.readWeights();
    const state = await optimizerState(trainer);
    const skipped = await trainer.trainStep([pgBatch(1e30)], { kind: 'pg' });
    expect(skipped.applied).toBe(false);
    expect(skipped.step).toBe(1);
    expect(skipped.badTensors.length).toBeGreaterThan(0);
    expect(skipped.problem).toMatch(/^step skipped, weights unchanged: gradient of \S+ is (NaN|infinite)/);
    expect(trainer.trainableNames.some((n) => skipped.problem!.includes(n))).toBe(true);
    expectSameTensors(await trainer.readWeights(), weights, 'weights after a skipped step');
    expectSameTensors(await optimizerState(trainer), state, 'AdamW state after a skipped step');
    const resumed = await trainer.trainStep([pgBatch(1)], { kind: 'pg' });
    expect(resumed.applied, resumed.problem).toBe(true);
    expect(resumed.problem).toBeUndefined();
    expect(resumed.step).toBe(2);
    expect(Number.isFinite(resumed.gradNorm)).toBe(true);
    trainer.destroy();

    // (b) lr 1e39: finite in float64, +Inf as the kernel's f32 uniform: the update ruins the
    // weights (±Inf, or NaN where the update was 0), and the step is undone. LoRA too: its
    // W_eff is re-merged from the restored factors.
    const problems: string[] = [];
    for (const options of [{ schedule: { lr: 1e39 } }, { schedule: { lr: 1e39 }, lora: { rank: 4 } }] satisfies TrainerOptions[]) {
      const what = options.lora ? 'LoRA' : 'full';
      const reckless = await Trainer.create(device, config, params, options);
      const start = await reckless.readWeights();
      const startState = await optimizerState(reckless);
      const undone = await reckless.trainStep([batch], { kind: 'ce' });
      expect(undone.applied, what).toBe(false);
      expect(undone.step).toBe(0);
      expect(reckless.step).toBe(0);
      expect(Number.isFinite(undone.gradNorm)).toBe(true);
      expect(undone.problem).toMatch(/^step undone, the last good weights restored: updated weight of \S+ is (NaN|infinite)/);
      expect(undone.badTensors.length).toBeGreaterThan(0);
      expectSameTensors(await reckless.readWeights(), start, `${what}: weights after an undone step`);
      expectSameTensors(await optimizerState(reckless), startState, `${what}: AdamW state after an undone step`);
      problems.push(`${what}: "${undone.problem}"`);
      reckless.destroy();
    }
    console.log(`numerics guard: "${skipped.problem}" (gradient norm ${skipped.gradNorm}); ${problems.join('; ')}`);
  });
});
