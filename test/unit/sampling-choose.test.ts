import { describe, expect, it } from 'vitest';
import { chooseToken, logSoftmax, validateSampling } from '../../workers/sampling/choose';
import { Rng } from '../../workers/random/rng';

describe('seeded random numbers', () => {
  it('gives the same stream for the same seed and different streams otherwise', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xs = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(xs);
    expect(Rng.forStream(7, 0).next()).not.toBe(Rng.forStream(7, 1).next());
    expect(Rng.forStream(7, 3).next()).toBe(Rng.forStream(7, 3).next());
  });

  it('is uniform on [0, 1): mean and spread of 20,000 draws', () => {
    const r = new Rng(1);
    let sum = 0, sumSq = 0, min = 1, max = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const x = r.next();
      sum += x; sumSq += x * x; min = Math.min(min, x); max = Math.max(max, x);
    }
    // Mean 1/2 and variance 1/12; the bounds are ~5 standard errors.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.011);
    expect(Math.abs(sumSq / n - (sum / n) ** 2 - 1 / 12)).toBeLessThan(0.005);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
  });
});

describe('choosing a token', () => {
  const logits = [2, 1, 0.5, -1, 3];
  const probs = Array.from(logSoftmax(logits), Math.exp);

  it('log-softmax sums to one and follows temperature', () => {
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const hot = Array.from(logSoftmax(logits, 2), Math.exp);
    expect(hot[4] / hot[3]).toBeCloseTo(Math.exp((3 - -1) / 2), 10);
  });

  it('samples with the model distribution (inverse CDF) and records the full-vocabulary log-prob', () => {
    const r = new Rng(5);
    const counts = new Array(5).fill(0);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const c = chooseToken(logits, { temperature: 1, topK: 0, topP: 1 }, r.next());
      counts[c.token]++;
      expect(c.logprob).toBeCloseTo(Math.log(probs[c.token]), 12);
    }
    // Each frequency within 5 binomial standard errors of its probability.
    counts.forEach((k, i) => expect(Math.abs(k / n - probs[i])).toBeLessThan(5 * Math.sqrt((probs[i] * (1 - probs[i])) / n)));
  });

  it('greedy at temperature 0, top-k and top-p restrict the candidates', () => {
    expect(chooseToken(logits, { temperature: 0, topK: 0, topP: 1 }, 0.99).token).toBe(4);
    for (let u = 0; u < 1; u += 0.05) {
      expect([4, 0]).toContain(chooseToken(logits, { temperature: 1, topK: 2, topP: 1 }, u).token);
      // p(4) ≈ 0.61 < 0.7 ≤ p(4) + p(0): top-p 0.7 keeps tokens 4 and 0.
      expect([4, 0]).toContain(chooseToken(logits, { temperature: 1, topK: 0, topP: 0.7 }, u).token);
      expect(chooseToken(logits, { temperature: 1, topK: 0, topP: 0.5 }, u).token).toBe(4);
    }
    // The recorded log-prob stays the untruncated one (what the trainer recomputes).
    expect(chooseToken(logits, { temperature: 1, topK: 1, topP: 1 }, 0.3).logprob).toBeCloseTo(Math.log(probs[4]), 12);
  });

  it('never picks a masked (-inf) token and rejects invalid logits and options', () => {
    const masked = [0, -Infinity, 0, -Infinity];
    for (let u = 0; u < 1; u += 0.01) expect([0, 2]).toContain(chooseToken(masked, { temperature: 1, topK: 0, topP: 1 }, u).token);
    expect(() => chooseToken([0, NaN], { temperature: 1, topK: 0, topP: 1 }, 0.5)).toThrow('logit 1 is NaN');
    expect(() => chooseToken([-Infinity, -Infinity], { temperature: 1, topK: 0, topP: 1 }, 0.5)).toThrow('every logit is -inf');
    expect(() => validateSampling({ temperature: -1, topK: 0, topP: 1 })).toThrow('temperature');
    expect(() => validateSampling({ temperature: 1, topK: 1.5, topP: 1 })).toThrow('top-k');
    expect(() => validateSampling({ temperature: 1, topK: 0, topP: 0 })).toThrow('top-p');
  });
});
