/**
 * The distillation benchmark's arithmetic, kept apart from the runs so that it can be tested
 * without a GPU: when SFT's returns have flattened, which steps are evaluated, medians of costs
 * some of which are only lower bounds (runs that never reached the target), and the ratios of
 * two such medians, which are a number, a bound, or nothing, never a ratio of two budgets.
 */

/** A run's FLOPs to the target: the FLOPs at its first evaluation at or above it, or at least its cap when it never got there. */
export type Cost = number | { atLeast: number };

/** A ratio of two median costs: a number, a lower or an upper bound, or null when both medians are bounds (with why). */
export type Ratio = number | { atLeast: number } | { atMost: number } | { unknown: string };

export const isBound = (c: Cost): c is { atLeast: number } => typeof c !== 'number';
const costValue = (c: Cost) => (typeof c === 'number' ? c : c.atLeast);

/**
 * The median of costs some of which are censored (known only to be at least their cap). Every
 * censored cost is taken as larger than every reached one (a run stopped at its cap had not
 * reached the target by then, and each cap is above every reached cost of its objective); the
 * median is a number when it falls on reached runs, else a bound: at least the smallest censored
 * cap (with an even count, the mean of the two middle values when both are reached).
 */
export function censoredMedian(costs: readonly Cost[]): Cost {
  if (costs.length === 0) throw new Error('censoredMedian: no costs');
  const reached = costs.filter((c): c is number => typeof c === 'number').sort((a, b) => a - b);
  const censored = costs.filter(isBound).map((c) => c.atLeast).sort((a, b) => a - b);
  const ordered: Cost[] = [...reached, ...censored.map((atLeast) => ({ atLeast }))];
  const n = ordered.length;
  if (n % 2 === 1) return ordered[(n - 1) / 2];
  const [a, b] = [ordered[n / 2 - 1], ordered[n / 2]];
  if (typeof a === 'number' && typeof b === 'number') return (a + b) / 2;
  // At least one middle value is a bound: the median is at least the mean of the two lower ends.
  return { atLeast: (costValue(a) + costValue(b)) / 2 };
}

/** How many of the costs reached the target. */
export const reachedCount = (costs: readonly Cost[]): number => costs.filter((c) => typeof c === 'number').length;

/** median(x) / median(reference): a number when both are known, a bound when one is, else unknown. */
export function costRatio(x: Cost, reference: Cost): Ratio {
  if (typeof x === 'number' && typeof reference === 'number') return x / reference;
  if (typeof reference === 'number') return { atLeast: (x as { atLeast: number }).atLeast / reference };
  if (typeof x === 'number') return { atMost: x / reference.atLeast };
  return { unknown: 'neither median reached the target within its cap' };
}

/** A ratio as people read it: "12.3", "≥ 31.2", "≤ 0.4", or "unknown (…)". */
export function ratioText(r: Ratio, digits = 2): string {
  if (typeof r === 'number') return r.toPrecision(digits + 1);
  if ('atLeast' in r) return `≥ ${r.atLeast.toPrecision(digits + 1)}`;
  if ('atMost' in r) return `≤ ${r.atMost.toPrecision(digits + 1)}`;
  return `unknown (${r.unknown})`;
}

/**
 * The steps at which a race run is evaluated: every step up to `dense`, then steps growing by
 * the factor `growth` (rounded up, each at least one more than the last), never more than
 * `maxGap` apart. The cost of a run that reaches the target is read at the first evaluation at
 * or above it, so it is known to within one gap: exact while dense, within a factor `growth`
 * after, the same for every objective.
 */
export function evalSteps(maxSteps: number, { dense = 8, growth = 1.25, maxGap = 20 } = {}): number[] {
  if (!(growth > 1)) throw new Error('evalSteps: growth must be > 1');
  const steps: number[] = [];
  let s = 1;
  while (s <= maxSteps) {
    steps.push(s);
    s = s < dense ? s + 1 : Math.min(s + maxGap, Math.max(s + 1, Math.ceil(s * growth)));
  }
  return steps;
}

/** One evaluation of SFT's phase 0: its step and held-out accuracy. */
export interface FlatPoint {
  step: number;
  accuracy: number;
}

/**
 * Whether SFT's returns have flattened: the best accuracy of the last `patience` evaluations is
 * no more than `delta` above the best of every evaluation before them (it stopped improving by
 * more than `delta` for `patience` evaluations in a row). Needs at least patience + 1 points.
 */
export function flattened(curve: readonly FlatPoint[], patience: number, delta: number): boolean {
  if (curve.length < patience + 1) return false;
  const before = Math.max(...curve.slice(0, curve.length - patience).map((p) => p.accuracy));
  const recent = Math.max(...curve.slice(curve.length - patience).map((p) => p.accuracy));
  return recent <= before + delta;
}
