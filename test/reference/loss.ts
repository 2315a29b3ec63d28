/**
 * Float64 reference of loss_grad.wgsl (workers/kernels/train/loss.ts): the per-row CE and importance-sampled policy
 * gradient losses, their stats, and the analytic gradient w.r.t. the logits. The loss values
 * (lossValuesReference) are computed separately from the gradient (lossGradReference), so the
 * test can check one against finite differences of the other.
 */
import type { LossMode } from '../../workers/kernels/train/loss';

export interface LossInputs {
  /** [rows, vocab] row-major. */
  logits: ArrayLike<number>;
  targets: ArrayLike<number>;
  weights: ArrayLike<number>;
  /** 'pg' only. */
  oldLogprobs?: ArrayLike<number>;
  advantages?: ArrayLike<number>;
}

export interface LossSettings {
  rows: number;
  vocab: number;
  mode: LossMode;
  temperature: number;
  clipEpsilon: number;
}

export interface LossGradResult {
  /** [rows, vocab]. */
  dlogits: Float64Array;
  /** [rows, 4]: logp(y), entropy, ρ (1 for 'ce'), loss; all 0 where the weight is 0. */
  stats: Float64Array;
}

/** log_softmax(z/τ) of one row. */
export function logSoftmaxRow(logits: ArrayLike<number>, offset: number, vocab: number, temperature: number): Float64Array {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v] / temperature);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] / temperature - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) out[v] = logits[offset + v] / temperature - logZ;
  return out;
}

/** The clipped surrogate min(ρA, clamp(ρ, 1−ε, 1+ε)·A) (ε = 0: ρA), and whether ρA is the active term. */
export function surrogate(ratio: number, advantage: number, clipEpsilon: number): { value: number; unclippedActive: boolean } {
  const unclipped = advantage === 0 ? 0 : ratio * advantage;
  if (clipEpsilon > 0) {
    const clipped = Math.min(Math.max(ratio, 1 - clipEpsilon), 1 + clipEpsilon) * advantage;
    if (clipped < unclipped) return { value: clipped, unclippedActive: false };
  }
  return { value: unclipped, unclippedActive: advantage !== 0 };
}

/** loss_n per row (0 where the weight is 0): the forward only. */
export function lossValuesReference(inputs: LossInputs, s: LossSettings): Float64Array {
  const out = new Float64Array(s.rows);
  for (let n = 0; n < s.rows; n++) {
    const w = inputs.weights[n];
    if (w === 0) continue;
    const logp = logSoftmaxRow(inputs.logits, n * s.vocab, s.vocab, s.temperature)[inputs.targets[n]];
    if (s.mode === 'ce') out[n] = -w * logp;
    else out[n] = -w * surrogate(Math.exp(logp - inputs.oldLogprobs![n]), inputs.advantages![n], s.clipEpsilon).value;
  }
  return out;
}

/**
 * Stats and ∂(Σ_n loss_n)/∂logits:
 *   'ce'  dz = w·(p − onehot(y))/τ;
 *   'pg'  dz = w·A·ρ·(p − onehot(y))/τ where the unclipped term is active, else 0.
 */
export function lossGradReference(inputs: LossInputs, s: LossSettings): LossGradResult {
  const { rows, vocab } = s;
  const dlogits = new Float64Array(rows * vocab);
  const stats = new Float64Array(rows * 4);
  for (let n = 0; n < rows; n++) {
    const w = inputs.weights[n];
    if (w === 0) continue;
    const y = inputs.targets[n];
    const logp = logSoftmaxRow(inputs.logits, n * vocab, vocab, s.temperature);
    let entropy = 0;
    for (let v = 0; v < vocab; v++) {
      const p = Math.exp(logp[v]);
      if (p > 0) entropy -= p * logp[v];
    }
    let ratio = 1;
    let loss: number;
    let coef: number;
    if (s.mode === 'ce') {
      loss = -w * logp[y];
      coef = w / s.temperature;
    } else {
      const a = inputs.advantages![n];
      ratio = Math.exp(logp[y] - inputs.oldLogprobs![n]);
      const sur = surrogate(ratio, a, s.clipEpsilon);
      loss = -w * sur.value;
      coef = sur.unclippedActive ? (w * a * ratio) / s.temperature : 0;
    }
    if (coef !== 0) for (let v = 0; v < vocab; v++) dlogits[n * vocab + v] = coef * (Math.exp(logp[v]) - (v === y ? 1 : 0));
    stats.set([logp[y], entropy, ratio, loss], n * 4);
  }
  return { dlogits, stats };
}
