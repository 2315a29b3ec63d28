import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { smallGpt2Config } from './fixtures';
import { randomGpt2Params } from '../../workers/models/gpt2/params';
import { Trainer, type Objective } from '../../workers/train/trainer';
import { crossEntropy, gpt2ForwardBackward, policyGradient, reverseKL, logSoftmax } from '../reference/gpt2-training';
import type { TrainSequence } from '../../workers/train/batch';
import { createStorageBuffer } from '../../workers/gpu/buffers';

/**
 * GPU gradients (float32 through the whole model) against the float64 reference: each tensor's
 * gradient is compared relative to that tensor's largest entry. float32 rounding through two
 * layers measured ~1e-6 relative; 2e-5 leaves room for other accumulation orders.
 */
const GRAD_RTOL = 2e-5;

const config = smallGpt2Config({ nLayer: 2, nHead: 2, nEmbd: 16, nInner: 64, vocabSize: 17, nPositions: 32 });

/** Two sequences of unequal length (the shorter is padded), prompt positions unscored. */
function sequences(seed: number, withPg = false): TrainSequence[] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0) % 1000) / 1000;
  const lengths = [9, 6];
  const scored = lengths.reduce((a, L) => a + (L - 3), 0);
  return lengths.map((L) => {
    const tokens = Array.from({ length: L }, () => 1 + Math.floor(next() * 16));
    const weights = tokens.map((_, t) => (t >= 2 && t < L - 1 ? 1 / scored : 0));
    return {
      tokens,
      weights,
      ...(withPg ? { oldLogprobs: tokens.map(() => -1.5 - next()), advantages: tokens.map(() => next() * 2 - 1) } : {}),
    };
  });
}

function referenceGrads(params: Map<string, Float32Array>, seqs: TrainSequence[], objective: 'ce' | 'pg' | 'kl', teacher?: Float64Array[][], clipEpsilon = 0) {
  return gpt2ForwardBackward(config, params, seqs.map((s) => ({ tokens: s.tokens })), (i, logits) => {
    const s = seqs[i];
    const targets = s.tokens.map((_, t) => (t + 1 < s.tokens.length ? s.tokens[t + 1] : -1));
    if (objective === 'ce') return crossEntropy(logits, { targets, weights: s.weights });
    if (objective === 'pg') return policyGradient(logits, { targets, weights: s.weights, oldLogprobs: s.oldLogprobs!, advantages: s.advantages!, clipEpsilon });
    return reverseKL(logits, { teacherLogprobs: teacher![i].map((row) => logSoftmax(row)), weights: s.weights });
  });
}

function expectGradsClose(gpu: Map<string, Float32Array>, ref: Map<string, Float64Array>) {
  let worst = 0;
  let worstName = '';
  for (const [name, r] of ref) {
    const g = gpu.get(name)!;
    let scale = 0;
    for (const x of r) scale = Math.max(scale, Math.abs(x));
    let err = 0;
    for (let i = 0; i < r.length; i++) err = Math.max(err, Math.abs(g[i] - r[i]));
    const rel = err / Math.max(scale, 1e-6);
    if (rel > worst) [worst, worstName] = [rel, name];
  }
  expect(worst, `worst relative gradient error ${worst} in ${worstName}`).toBeLessThan(GRAD_RTOL);
  return worst;
}

describe('the WGSL trainer', () => {
  it('computes the whole model gradient of each objective like the float64 reference, padding included', async () => {
    const device = await testDevice();
    const params = randomGpt2Params(config, { seed: 11, scheme: 'test' });
    const trainer = await Trainer.create(device, config, params);
    // Teacher logits for the KL objective, row-aligned with the packed batch (width 9).
    const seqs = sequences(3, true);
    const width = 9;
    const teacherRows: Float64Array[][] = seqs.map((s) => s.tokens.map((_, t) => Float64Array.from({ length: config.vocabSize }, (_, v) => Math.sin(t * 3.1 + v * 0.7 + s.tokens.length))));
    const teacherFlat = new Float32Array(seqs.length * width * config.vocabSize);
    seqs.forEach((s, b) => teacherRows[b].forEach((row, t) => teacherFlat.set(Float32Array.from(row), (b * width + t) * config.vocabSize)));
    const teacher = createStorageBuffer(device, teacherFlat, 'teacher logits');
    const objectives: [string, Objective, ReturnType<typeof referenceGrads>][] = [
      ['ce', { kind: 'ce' }, referenceGrads(params, seqs, 'ce')],
      ['pg', { kind: 'pg' }, referenceGrads(params, seqs, 'pg')],
      ['pg clipped', { kind: 'pg', clipEpsilon: 0.2 }, referenceGrads(params, seqs, 'pg', undefined, 0.2)],
      ['kl', { kind: 'kl', teacherLogits: teacher }, referenceGrads(params, seqs, 'kl', teacherRows)],
    ];
    const worst: Record<string, number> = {};
    for (const [name, objective, ref] of objectives) {
      await trainer.accumulate(seqs, objective);
      worst[name] = expectGradsClose(await trainer.readGradients(), ref.grads);
      const report = await trainer.applyStep(); // clears the pending micro-batch
      expect(report.loss).toBeCloseTo(ref.loss, 4);
      // Restart from the same weights for the next objective.
      trainer.writeState(new Map(trainer.trainableNames.map((n) => [n, { param: params.get(n)!, m: new Float32Array(params.get(n)!.length), v: new Float32Array(params.get(n)!.length) }])), 0);
    }
    console.log('trainer gradient, worst relative error per objective:', worst);
    trainer.destroy();
  });

  it('accumulates micro-batches: two halves give the gradient of the whole', async () => {
    const device = await testDevice();
    const params = randomGpt2Params(config, { seed: 12, scheme: 'test' });
    const trainer = await Trainer.create(device, config, params);
    const seqs = sequences(5);
    await trainer.accumulate([seqs[0]], { kind: 'ce' });
    await trainer.accumulate([seqs[1]], { kind: 'ce' });
    expectGradsClose(await trainer.readGradients(), referenceGrads(params, seqs, 'ce').grads);
    trainer.destroy();
  });
});
