/**
 * The seeded split of a prompt set into training and held-out prompts: a Fisher-Yates shuffle of
 * the indices driven by the lab's seeded generator (workers/random/rng.ts, the same numbers on
 * every platform), the first round(fraction × n) shuffled indices held out (at least one, and at
 * least one left to train on), each side kept in the file's order.
 */
import { Rng } from '../random/rng';
import { opening, PromptSetError } from './parse';

export interface PromptSplit {
  /** Indices into the set, in the set's order. */
  train: number[];
  heldOut: number[];
}

/** A permutation of 0..n−1 drawn from `rng` (a seed: new Rng(seed)). */
export function seededPermutation(n: number, rng: Rng | number): number[] {
  if (typeof rng === 'number') rng = new Rng(rng);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function splitPrompts(count: number, fraction: number, seed: number, label = 'the prompt set'): PromptSplit {
  if (!(fraction > 0 && fraction < 1)) throw new PromptSetError(`The held-out fraction must lie in (0, 1); got ${fraction}.`);
  if (count < 2) {
    throw new PromptSetError(`${opening(label)} has ${count} prompt${count === 1 ? '' : 's'}: a run needs at least 2, one to train on and one held out to measure on; add prompts.`);
  }
  const held = Math.min(count - 1, Math.max(1, Math.round(fraction * count)));
  const order = seededPermutation(count, seed);
  const heldOut = order.slice(0, held).sort((a, b) => a - b);
  const train = order.slice(held).sort((a, b) => a - b);
  return { train, heldOut };
}
