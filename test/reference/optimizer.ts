/**
 * Float64 references for the optimizer kernels (workers/kernels/train/optimizer.ts): sum of squares, global-norm
 * clipping, one AdamW step, LoRA merge and LoRA gradients. Straight loops, no tricks: what the
 * WGSL is compared against.
 */

export function referenceSumSquares(x: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  return sum;
}

export interface ReferenceClip {
  norm: number;
  scale: number;
  finite: boolean;
}

/** From per-tensor sums of squares: norm = √Σ, scale = min(1, maxNorm/(norm + 1e-6)) (1 when maxNorm ≤ 0). */
export function referenceClip(sumsOfSquares: ArrayLike<number>, maxNorm: number): ReferenceClip {
  let total = 0;
  for (let i = 0; i < sumsOfSquares.length; i++) total += sumsOfSquares[i];
  const norm = Math.sqrt(total);
  const finite = Number.isFinite(norm);
  const scale = finite && maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  return { norm, scale, finite };
}

export interface ReferenceAdamWState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

export interface ReferenceAdamWStep {
  lr: number;
  /** Steps applied including this one (1 on the first). */
  step: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clipping factor applied to the gradient. */
  scale: number;
}

/** One AdamW step in place: m, v updated, p −= lr·(m̂/(√v̂ + ε) + wd·p). */
export function referenceAdamW(state: ReferenceAdamWState, grad: ArrayLike<number>, o: ReferenceAdamWStep): void {
  const bc1 = 1 - Math.pow(o.beta1, o.step);
  const bc2 = 1 - Math.pow(o.beta2, o.step);
  const { param, m, v } = state;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * o.scale;
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
    const mHat = m[i] / bc1;
    const vHat = v[i] / bc2;
    param[i] -= o.lr * (mHat / (Math.sqrt(vHat) + o.eps) + o.weightDecay * param[i]);
  }
}

/** W_eff = W + s·A·B; W, W_eff [inDim, outDim], A [inDim, rank], B [rank, outDim], row-major. */
export function referenceLoraMerge(
  w: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  inDim: number,
  outDim: number,
  rank: number,
  scale: number,
): Float64Array {
  const out = new Float64Array(inDim * outDim);
  for (let i = 0; i < inDim; i++) {
    for (let o = 0; o < outDim; o++) {
      let acc = 0;
      for (let k = 0; k < rank; k++) acc += a[i * rank + k] * b[k * outDim + o];
      out[i * outDim + o] = w[i * outDim + o] + scale * acc;
    }
  }
  return out;
}

/** dA = s·dW·Bᵀ [inDim, rank] and dB = s·Aᵀ·dW [rank, outDim], from dW = ∂L/∂W_eff. */
export function referenceLoraGrad(
  dW: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  inDim: number,
  outDim: number,
  rank: number,
  scale: number,
): { dA: Float64Array; dB: Float64Array } {
  const dA = new Float64Array(inDim * rank);
  const dB = new Float64Array(rank * outDim);
  for (let i = 0; i < inDim; i++) {
    for (let o = 0; o < outDim; o++) {
      const g = scale * dW[i * outDim + o];
      for (let k = 0; k < rank; k++) {
        dA[i * rank + k] += g * b[k * outDim + o];
        dB[k * outDim + o] += g * a[i * rank + k];
      }
    }
  }
  return { dA, dB };
}
