import { describe, expect, it } from 'vitest';
import { censoredMedian, costRatio, evalSteps, flattened, ratioText, reachedCount } from '../../scripts/bench/distill-stats';

describe("the distillation benchmark's arithmetic: censored medians, bounded ratios, flattening, the evaluation schedule", () => {
  it('a median over seeds is a number when it falls on runs that reached the target, else a bound', () => {
    expect(censoredMedian([5, 3, 9, 1, 7])).toBe(5);
    // Two of five censored: the 3rd smallest is still a reached run.
    expect(censoredMedian([5, { atLeast: 100 }, 3, { atLeast: 90 }, 1])).toBe(5);
    // Three of five censored: the median is at least the smallest cap among them.
    expect(censoredMedian([{ atLeast: 100 }, 3, { atLeast: 90 }, 1, { atLeast: 95 }])).toEqual({ atLeast: 90 });
    // Even counts: the mean of the two middle values, a bound when one of them is.
    expect(censoredMedian([4, 2, 8, 6])).toBe(5);
    expect(censoredMedian([4, 2, { atLeast: 10 }, { atLeast: 12 }])).toEqual({ atLeast: 7 });
    expect(reachedCount([4, { atLeast: 2 }, 1])).toBe(2);
    expect(() => censoredMedian([])).toThrow('no costs');
  });

  it('a ratio of medians is a number, a lower or upper bound, or unknown, and reads as such', () => {
    expect(costRatio(30, 3)).toBe(10);
    expect(costRatio({ atLeast: 93 }, 3)).toEqual({ atLeast: 31 });
    expect(costRatio(6, { atLeast: 12 })).toEqual({ atMost: 0.5 });
    expect(costRatio({ atLeast: 6 }, { atLeast: 12 })).toHaveProperty('unknown');
    expect(ratioText(10)).toBe('10.0');
    expect(ratioText({ atLeast: 31.24 })).toBe('≥ 31.2');
    expect(ratioText({ atMost: 0.5 })).toBe('≤ 0.500');
  });

  it('flattening: no gain above delta over the last `patience` evaluations', () => {
    const curve = (accs: number[]) => accs.map((accuracy, i) => ({ step: i * 5, accuracy }));
    expect(flattened(curve([0.5, 0.6, 0.7]), 2, 0.02)).toBe(false); // too few points for patience 2 … and rising
    expect(flattened(curve([0.5, 0.6, 0.7, 0.71, 0.7]), 2, 0.02)).toBe(true);
    expect(flattened(curve([0.5, 0.6, 0.7, 0.71, 0.75]), 2, 0.02)).toBe(false);
    expect(flattened(curve([0.5, 0.6]), 2, 0.02)).toBe(false);
    // A dip and a recovery to the old best is flat; a new best by more than delta is not.
    expect(flattened(curve([0.8, 0.7, 0.8]), 2, 0)).toBe(true);
    expect(flattened(curve([0.8, 0.7, 0.83]), 2, 0.02)).toBe(false);
  });

  it('the evaluation schedule: every step while dense, then growing, never further apart than maxGap', () => {
    const s = evalSteps(200, { dense: 4, growth: 1.5, maxGap: 20 });
    expect(s.slice(0, 5)).toEqual([1, 2, 3, 4, 6]);
    expect(s[s.length - 1]).toBeLessThanOrEqual(200);
    for (let i = 1; i < s.length; i++) {
      expect(s[i]).toBeGreaterThan(s[i - 1]);
      expect(s[i] - s[i - 1]).toBeLessThanOrEqual(20);
      if (s[i - 1] >= 4) expect(s[i]).toBeLessThanOrEqual(Math.max(s[i - 1] + 1, Math.ceil(s[i - 1] * 1.5)));
    }
    expect(s.filter((x) => x > 100).every((x, i, a) => i === 0 || x - a[i - 1] === 20)).toBe(true);
    expect(() => evalSteps(10, { growth: 1 })).toThrow('growth');
  });
});
