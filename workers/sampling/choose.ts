/**
 * Choosing the next token from one row of logits: temperature, top-k, top-p, a uniform random
 * number. Returns the token and the log-prob the trainer will recompute for it — log-softmax of
 * logits/temperature over the whole vocabulary (not the truncated distribution), so that the
 * importance ratio ρ = π_θ/π_old starts at exactly 1 for unchanged weights.
 *
 * Everything is float64, and e^x and ln x are fdlibm's (kernels/sampling/fdlibm.ts), not the
 * engine's Math.exp / Math.log: those differ between engines in the last bit (Node 20's V8 runs
 * fdlibm, Chromium 156's does not), and the GPU's token choice (kernels/sampling/choose_token.wgsl)
 * repeats these very operations, so a seed gives the same tokens on both paths and everywhere.
 */
import { exp, log } from '../kernels/sampling/fdlibm';

export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens (0 = no limit). */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = no limit). */
  topP: number;
}

export function validateSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new Error(`temperature must be ≥ 0, got ${o.temperature}`);
  if (!Number.isInteger(o.topK) || o.topK < 0) throw new Error(`top-k must be a whole number ≥ 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`top-p must be in (0, 1], got ${o.topP}`);
}

/** log-softmax(logits / temperature) in float64; temperature 0 is treated as 1 for the log-prob. */
export function logSoftmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const t = temperature > 0 ? temperature : 1;
  const n = logits.length;
  const out = new Float64Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = logits[i] / t;
    if (Number.isNaN(v)) throw new Error(`logit ${i} is NaN: the model produced an invalid output`);
    out[i] = v;
    if (v > max) max = v;
  }
  if (max === -Infinity) throw new Error('every logit is -inf: no token can be sampled');
  if (max === Infinity) throw new Error('a logit is +inf: the model produced an invalid output');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += exp(out[i] - max);
  const lse = max + log(sum);
  for (let i = 0; i < n; i++) out[i] -= lse;
  return out;
}

export interface Choice {
  token: number;
  /** log π(token) under softmax(logits / temperature) over the whole vocabulary. */
  logprob: number;
}

/** Picks a token given one uniform number u ∈ [0, 1). Deterministic in (logits, options, u). */
export function chooseToken(logits: ArrayLike<number>, options: SamplingOptions, u: number): Choice {
  const logprobs = logSoftmax(logits, options.temperature);
  const n = logprobs.length;
  if (options.temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logprobs[i] > logprobs[best]) best = i;
    return { token: best, logprob: logprobs[best] };
  }
  const limitK = options.topK > 0 && options.topK < n;
  const limitP = options.topP < 1;
  let candidates: number[];
  if (!limitK && !limitP) {
    // Inverse CDF over the whole vocabulary, in id order.
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += exp(logprobs[i]);
      if (u < acc) return { token: i, logprob: logprobs[i] };
    }
    // Rounding left u above the last partial sum: the last token with any mass.
    for (let i = n - 1; i >= 0; i--) if (logprobs[i] > -Infinity) return { token: i, logprob: logprobs[i] };
  }
  // Most likely first; ties by id, so the order is deterministic.
  candidates = Array.from({ length: n }, (_, i) => i).filter((i) => logprobs[i] > -Infinity);
  candidates.sort((a, b) => logprobs[b] - logprobs[a] || a - b);
  if (limitK) candidates = candidates.slice(0, options.topK);
  if (limitP) {
    let acc = 0;
    let keep = 0;
    while (keep < candidates.length && acc < options.topP) acc += exp(logprobs[candidates[keep++]]);
    candidates = candidates.slice(0, Math.max(1, keep));
  }
  let total = 0;
  for (const i of candidates) total += exp(logprobs[i]);
  const target = u * total;
  let acc = 0;
  for (const i of candidates) {
    acc += exp(logprobs[i]);
    if (target < acc) return { token: i, logprob: logprobs[i] };
  }
  const last = candidates[candidates.length - 1];
  return { token: last, logprob: logprobs[last] };
}
