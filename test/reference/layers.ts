/**
 * Float64 references for the training engine's small layers (LayerNorm, GELU, embedding, add, and
 * the Llama family's RMSNorm and SwiGLU):
 * the forward each WGSL kernel must match, and its analytic backward, which the tests check
 * against central finite differences of the forward. Layouts as in workers/kernels/train/layers.ts: row-major
 * [rows, width] activations.
 */
import { geluNew } from './gpt2';

export { geluNew };

export interface LayerNormForwardResult {
  y: Float64Array;
  /** Per row: the mean and 1/√(biased variance + eps). */
  mean: Float64Array;
  rstd: Float64Array;
}

/** y = (x − μ)·rstd·γ + β per row; the same arithmetic as Gpt2Reference's layerNorm. */
export function layerNormForward(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, rows: number, width: number, eps: number): LayerNormForwardResult {
  const y = new Float64Array(rows * width);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let n = 0; n < rows; n++) {
    const o = n * width;
    let mu = 0;
    for (let e = 0; e < width; e++) mu += x[o + e];
    mu /= width;
    let variance = 0;
    for (let e = 0; e < width; e++) variance += (x[o + e] - mu) ** 2;
    variance /= width;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let e = 0; e < width; e++) y[o + e] = (x[o + e] - mu) * inv * gamma[e] + beta[e];
    mean[n] = mu;
    rstd[n] = inv;
  }
  return { y, mean, rstd };
}

export interface LayerNormBackwardResult {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/**
 * Gradients of Σ dy·y through LayerNorm: with x̂ = (x − μ)·rstd and g = γ·dy,
 *   dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) per row,  dγ = Σ_n dy·x̂,  dβ = Σ_n dy.
 */
export function layerNormBackward(dy: ArrayLike<number>, x: ArrayLike<number>, gamma: ArrayLike<number>, rows: number, width: number, eps: number): LayerNormBackwardResult {
  const { mean, rstd } = layerNormForward(x, gamma, new Float64Array(width), rows, width, eps);
  const dx = new Float64Array(rows * width);
  const dgamma = new Float64Array(width);
  const dbeta = new Float64Array(width);
  const xhat = new Float64Array(width);
  for (let n = 0; n < rows; n++) {
    const o = n * width;
    let sumG = 0;
    let sumGX = 0;
    for (let e = 0; e < width; e++) {
      xhat[e] = (x[o + e] - mean[n]) * rstd[n];
      const g = gamma[e] * dy[o + e];
      sumG += g;
      sumGX += g * xhat[e];
      dgamma[e] += dy[o + e] * xhat[e];
      dbeta[e] += dy[o + e];
    }
    const mg = sumG / width;
    const mgx = sumGX / width;
    for (let e = 0; e < width; e++) dx[o + e] = rstd[n] * (gamma[e] * dy[o + e] - mg - xhat[e] * mgx);
  }
  return { dx, dgamma, dbeta };
}

/** d gelu_new / dx. */
export function geluNewDerivative(x: number): number {
  const c = Math.sqrt(2 / Math.PI);
  const t = Math.tanh(c * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
}

export function geluForward(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, geluNew);
}

/** dx = dy·gelu_new'(x). */
export function geluBackward(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dy[i] * geluNewDerivative(x[i]);
  return dx;
}

export function addForward(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** Both inputs of a sum receive the output's gradient unchanged. */
export function addBackward(dout: ArrayLike<number>): { da: Float64Array; db: Float64Array } {
  return { da: Float64Array.from(dout as ArrayLike<number>), db: Float64Array.from(dout as ArrayLike<number>) };
}

/**
 * x[n, e] = wte[tok[n], e] + wpe[pos[n], e]; with no positions (positions and wpe null, the Llama
 * family, which has no learned position table) x[n, e] = wte[tok[n], e].
 */
export function embeddingForward(
  tokens: ArrayLike<number>,
  positions: ArrayLike<number> | null,
  wte: ArrayLike<number>,
  wpe: ArrayLike<number> | null,
  width: number,
): Float64Array {
  if ((positions === null) !== (wpe === null)) throw new Error('embeddingForward takes positions and wpe together, or neither: pass both or null for both.');
  const rows = tokens.length;
  const x = new Float64Array(rows * width);
  for (let n = 0; n < rows; n++) {
    for (let e = 0; e < width; e++) {
      const position = positions === null || wpe === null ? 0 : wpe[positions[n] * width + e];
      x[n * width + e] = wte[tokens[n] * width + e] + position;
    }
  }
  return x;
}

/**
 * dwte[v] = Σ_{n: tok[n]=v} dx[n], dwpe[p] = Σ_{n: pos[n]=p} dx[n] (fresh, not accumulated). With
 * no positions (null) dwpe is empty (length 0): there is no position table to receive a gradient.
 */
export function embeddingBackward(
  tokens: ArrayLike<number>,
  positions: ArrayLike<number> | null,
  dx: ArrayLike<number>,
  vocabSize: number,
  nPositions: number,
  width: number,
): { dwte: Float64Array; dwpe: Float64Array } {
  const dwte = new Float64Array(vocabSize * width);
  const dwpe = new Float64Array(positions === null ? 0 : nPositions * width);
  for (let n = 0; n < tokens.length; n++) {
    for (let e = 0; e < width; e++) {
      dwte[tokens[n] * width + e] += dx[n * width + e];
      if (positions !== null) dwpe[positions[n] * width + e] += dx[n * width + e];
    }
  }
  return { dwte, dwpe };
}

export interface RmsNormForwardResult {
  y: Float64Array;
  /** Per row: 1/√(mean(x²) + eps), what the WGSL forward saves for the backward. */
  rstd: Float64Array;
}

/**
 * RMSNorm as HF's LlamaRMSNorm / Qwen2RMSNorm / Qwen3RMSNorm compute it: per row of `width`,
 * y = x·rstd·γ with rstd = 1/√(mean(x²) + eps) (no mean subtracted, no bias; the weight applied
 * after the normalisation). Used with width = hidden for the layer norms and with
 * rows = tokens × heads, width = head_dim for Qwen3's q/k norm.
 */
export function rmsNormForward(x: ArrayLike<number>, gamma: ArrayLike<number>, rows: number, width: number, eps: number): RmsNormForwardResult {
  const y = new Float64Array(rows * width);
  const rstd = new Float64Array(rows);
  for (let n = 0; n < rows; n++) {
    const o = n * width;
    let sumSq = 0;
    for (let e = 0; e < width; e++) sumSq += x[o + e] * x[o + e];
    const inv = 1 / Math.sqrt(sumSq / width + eps);
    for (let e = 0; e < width; e++) y[o + e] = x[o + e] * inv * gamma[e];
    rstd[n] = inv;
  }
  return { y, rstd };
}

export interface RmsNormBackwardResult {
  dx: Float64Array;
  dgamma: Float64Array;
}

/**
 * Gradients of Σ dy·y through RMSNorm: with x̂ = x·rstd and g = γ·dy,
 *   dx = rstd·(g − x̂·mean(g·x̂)) per row,  dγ = Σ_n dy·x̂.
 * (LayerNorm's formula without the mean terms: rstd depends on x only through mean(x²).)
 */
export function rmsNormBackward(dy: ArrayLike<number>, x: ArrayLike<number>, gamma: ArrayLike<number>, rows: number, width: number, eps: number): RmsNormBackwardResult {
  const { rstd } = rmsNormForward(x, gamma, rows, width, eps);
  const dx = new Float64Array(rows * width);
  const dgamma = new Float64Array(width);
  for (let n = 0; n < rows; n++) {
    const o = n * width;
    let sumGX = 0;
    for (let e = 0; e < width; e++) {
      const xhat = x[o + e] * rstd[n];
      sumGX += gamma[e] * dy[o + e] * xhat;
      dgamma[e] += dy[o + e] * xhat;
    }
    const mgx = sumGX / width;
    for (let e = 0; e < width; e++) dx[o + e] = rstd[n] * (gamma[e] * dy[o + e] - x[o + e] * rstd[n] * mgx);
  }
  return { dx, dgamma };
}

/** σ(g) = 1/(1 + e^−g), written so that neither branch overflows for large |g|. */
export function sigmoid(g: number): number {
  if (g >= 0) return 1 / (1 + Math.exp(-g));
  const e = Math.exp(g);
  return e / (1 + e);
}

/** silu(g) = g·σ(g) (torch's F.silu, the Llama family's hidden_act "silu"). */
export function silu(g: number): number {
  return g * sigmoid(g);
}

/** d silu / dg = σ(g)·(1 + g·(1 − σ(g))). */
export function siluDerivative(g: number): number {
  const s = sigmoid(g);
  return s * (1 + g * (1 - s));
}

/** SwiGLU's elementwise part: y = silu(gate)·up (the MLP is down(silu(gate(x))·up(x))). */
export function swigluForward(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const y = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) y[i] = silu(gate[i]) * up[i];
  return y;
}

/** Gradients of Σ dy·y: dgate = dy·up·silu'(gate), dup = dy·silu(gate). */
export function swigluBackward(gate: ArrayLike<number>, up: ArrayLike<number>, dy: ArrayLike<number>): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    dgate[i] = dy[i] * up[i] * siluDerivative(gate[i]);
    dup[i] = dy[i] * silu(gate[i]);
  }
  return { dgate, dup };
}
