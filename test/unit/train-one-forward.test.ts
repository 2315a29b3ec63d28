/**
 * A step's metrics from its own forward: `divergencesAgainst` (forward + divergence kernels) then
 * `trainStep` given that ForwardPass (loss gradient + backward on the same activations) must give
 * what the two-forward path gives (divergencesAgainst, then trainStep running its own forward),
 * for every objective the run uses, step after step.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { smallGpt2Config } from './fixtures';
import { randomGpt2Params } from '../../workers/models/gpt2/params';
import { Trainer, TrainerError, type Objective, type StepReport } from '../../workers/train/trainer';
import type { TrainSequence } from '../../workers/train/batch';
import { createStorageBuffer } from '../../workers/gpu/buffers';

const config = smallGpt2Config({ nLayer: 2, nHead: 2, nEmbd: 16, nInner: 64, vocabSize: 17, nPositions: 32 });

/**
 * The same kernels on the same inputs: the two paths agree to float32 rounding at most (in
 * practice bit for bit). 1e-6 relative would catch a forward on other weights or other rows.
 */
const SAME = 1e-6;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 100_000) / 100_000;
}

/** Two sequences of unequal length (padding), prompt of 2, weights 1/(scored tokens). */
function batch(seed: number): TrainSequence[] {
  const next = lcg(seed);
  const lengths = [9, 6];
  const scored = lengths.reduce((a, L) => a + L - 2, 0);
  return lengths.map((L) => {
    const tokens = Array.from({ length: L }, () => 1 + Math.floor(next() * (config.vocabSize - 1)));
    const weights = tokens.map((_, t) => (t >= 1 && t < L - 1 ? 1 / scored : 0));
    return { tokens, weights, oldLogprobs: tokens.map((_, t) => (weights[t] ? -1 - next() : 0)) };
  });
}

const close = (a: number, b: number) => Math.abs(a - b) <= SAME * Math.max(1, Math.abs(a), Math.abs(b));

function expectSameReport(a: StepReport, b: StepReport, what: string): void {
  for (const key of ['loss', 'gradNorm', 'clipScale', 'meanEntropy', 'meanRatio', 'ratioStd', 'lr'] as const) {
    expect(close(a[key], b[key]), `${what}: ${key} ${a[key]} vs ${b[key]}`).toBe(true);
  }
  expect(a.applied).toBe(b.applied);
  expect(a.scoredTokens).toBe(b.scoredTokens);
}

describe('one student forward per step', () => {
  it('gives the same divergences, step reports and weights as two forwards, for each objective', async () => {
    const device = await testDevice();
    const params = randomGpt2Params(config, { seed: 31, scheme: 'test' });
    const width = 9;
    const next = lcg(5);
    const teacher = createStorageBuffer(device, Float32Array.from({ length: 2 * width * config.vocabSize }, () => (next() - 0.5) * 6), 'teacher logits');
    const objectives: [string, (seqs: TrainSequence[], k: number[][]) => { train: TrainSequence[]; objective: Objective }][] = [
      ['pg (opd-sampled)', (seqs, k) => ({ train: seqs.map((s, b) => ({ ...s, advantages: k[b].map((x) => -x) })), objective: { kind: 'pg', temperature: 1, clipEpsilon: 0.2 } })],
      ['kl (opd-full)', (seqs) => ({ train: seqs, objective: { kind: 'kl', temperature: 1, teacherLogits: teacher } })],
      ['ce (sft)', (seqs) => ({ train: seqs.map((s) => ({ tokens: s.tokens, weights: s.weights })), objective: { kind: 'ce', temperature: 1 } })],
    ];
    try {
      for (const [what, make] of objectives) {
        const twice = await Trainer.create(device, config, params, { schedule: { lr: 1e-2 } });
        const once = await Trainer.create(device, config, params, { schedule: { lr: 1e-2 } });
        try {
          for (let step = 0; step < 3; step++) {
            const seqs = batch(100 + step);
            const divA = await twice.divergencesAgainst(seqs, teacher);
            const divB = await once.divergencesAgainst(seqs, teacher);
            expect(divB.rows.length).toBe(divA.rows.length);
            divA.rows.forEach((r, i) => {
              for (const key of ['studentLogprob', 'teacherLogprob', 'reverseKL', 'studentEntropy'] as const) {
                expect(close(r[key], divB.rows[i][key]), `${what} step ${step}: row ${r.row} ${key}`).toBe(true);
              }
            });
            const k = seqs.map((s, b) => s.tokens.map((_, t) => (s.weights[t] ? s.oldLogprobs![t] - divA.teacherLogprob(b, t) : 0)));
            const { train, objective } = make(seqs, k);
            const a = await twice.trainStep([train], objective);
            const b = await once.trainStep([train], objective, { forward: divB.forward });
            expectSameReport(a, b, `${what} step ${step}`);
          }
          const [wa, wb] = [await twice.readWeights(), await once.readWeights()];
          let worst = 0;
          for (const [name, x] of wa) {
            const y = wb.get(name)!;
            for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
          }
          console.log(`[one forward] ${what}: largest weight difference after 3 steps ${worst}`);
          expect(worst, what).toBeLessThanOrEqual(SAME);
        } finally {
          twice.destroy();
          once.destroy();
        }
      }
    } finally {
      teacher.destroy();
    }
  });

  it('refuses a forward that is no longer in the buffers, or ran on other sequences', async () => {
    const device = await testDevice();
    const trainer = await Trainer.create(device, config, randomGpt2Params(config, { seed: 32, scheme: 'test' }));
    const teacher = createStorageBuffer(device, new Float32Array(2 * 9 * config.vocabSize), 'teacher logits');
    try {
      const seqs = batch(7);
      const stale = (await trainer.divergencesAgainst(seqs, teacher)).forward;
      await trainer.logits(seqs); // another forward since
      await expect(trainer.trainStep([seqs], { kind: 'ce' }, { forward: stale })).rejects.toThrow(TrainerError);
      const other = (await trainer.divergencesAgainst(batch(8), teacher)).forward;
      await expect(trainer.trainStep([seqs], { kind: 'ce' }, { forward: other })).rejects.toThrow(/not the latest forward over the same sequences/);
    } finally {
      teacher.destroy();
      trainer.destroy();
    }
  });
});
