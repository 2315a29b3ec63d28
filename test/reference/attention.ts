/**
 * Float64 reference of the training engine's attention (workers/kernels/train/attention.ts): causal multi-head
 * self-attention with a key mask, forward and analytic backward, in plain TypeScript. The same
 * math as the GPT-2 reference's attention (scale 1/√D, head h at columns h·D of q, k and v), over
 * a padded batch. Layouts are the kernels': qkv [B·T, 3E], keyMask [B·T], ctx [B·T, E],
 * probs [B, H, T, T].
 */
import type { AttentionDims } from '../../workers/kernels/train/attention';

export interface AttentionForwardResult {
  ctx: Float64Array;
  probs: Float64Array;
}

/**
 * Query i of sequence b attends keys j ≤ i with keyMask[b·T + j] ≠ 0; a query whose own mask is
 * 0 gets a zero ctx row and zero probabilities.
 */
export function attentionForwardReference(qkv: ArrayLike<number>, keyMask: ArrayLike<number>, dims: AttentionDims): AttentionForwardResult {
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  const E = H * D;
  const scale = 1 / Math.sqrt(D);
  const ctx = new Float64Array(B * T * E);
  const probs = new Float64Array(B * H * T * T);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const row = b * T + i;
        if (!keyMask[row]) continue;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          if (!keyMask[b * T + j]) continue;
          let s = 0;
          for (let d = 0; d < D; d++) s += qkv[row * 3 * E + h * D + d] * qkv[(b * T + j) * 3 * E + E + h * D + d];
          scores[j] = s * scale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) if (keyMask[b * T + j]) sum += scores[j] = Math.exp(scores[j] - max);
        const probRow = ((b * H + h) * T + i) * T;
        for (let j = 0; j <= i; j++) {
          if (!keyMask[b * T + j]) continue;
          const p = scores[j] / sum;
          probs[probRow + j] = p;
          for (let d = 0; d < D; d++) ctx[row * E + h * D + d] += p * qkv[(b * T + j) * 3 * E + 2 * E + h * D + d];
        }
      }
    }
  }
  return { ctx, probs };
}

/**
 * dqkv [B·T, 3E] from dctx [B·T, E], the forward's probs and qkv:
 *   dP = dO·vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dq = dS·k/√D, dk = dSᵀ·q/√D, dv = Pᵀ·dO.
 * Masking lives entirely in P (zeros), as in the kernel.
 */
export function attentionBackwardReference(dctx: ArrayLike<number>, probs: ArrayLike<number>, qkv: ArrayLike<number>, dims: AttentionDims): Float64Array {
  const { batch: B, seq: T, heads: H, headDim: D } = dims;
  const E = H * D;
  const scale = 1 / Math.sqrt(D);
  const dqkv = new Float64Array(B * T * 3 * E);
  const dP = new Float64Array(T);
  const q = (row: number, h: number, d: number) => row * 3 * E + h * D + d;
  const k = (row: number, h: number, d: number) => row * 3 * E + E + h * D + d;
  const v = (row: number, h: number, d: number) => row * 3 * E + 2 * E + h * D + d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const qi = b * T + i;
        const probRow = ((b * H + h) * T + i) * T;
        let delta = 0;
        for (let j = 0; j <= i; j++) {
          const p = probs[probRow + j];
          if (p === 0) continue;
          let s = 0;
          for (let d = 0; d < D; d++) s += dctx[qi * E + h * D + d] * qkv[v(b * T + j, h, d)];
          dP[j] = s;
          delta += p * s;
        }
        for (let j = 0; j <= i; j++) {
          const p = probs[probRow + j];
          if (p === 0) continue;
          const kj = b * T + j;
          const dS = p * (dP[j] - delta);
          for (let d = 0; d < D; d++) {
            dqkv[q(qi, h, d)] += scale * dS * qkv[k(kj, h, d)];
            dqkv[k(kj, h, d)] += scale * dS * qkv[q(qi, h, d)];
            dqkv[v(kj, h, d)] += p * dctx[qi * E + h * D + d];
          }
        }
      }
    }
  }
  return dqkv;
}
