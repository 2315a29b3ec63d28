/**
 * Float64 references for the matmul and column-sum kernels (tests only): the same layouts and
 * options as `encodeMatmul` / `encodeColumnSum`, computed the plain way.
 */
import type { MatmulShape } from '../../workers/kernels/train/matmul';

/**
 * C (= or +=) alpha·op(A)·op(B) + bias, in place on a copy of `c` (returned as float64). Also
 * returns Σ_k |op(A)[i,k]·op(B)[k,j]| per element, the scale of the float32 rounding error.
 */
export function referenceMatmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  c: ArrayLike<number>,
  shape: MatmulShape,
  bias?: ArrayLike<number>,
): { c: Float64Array; absSum: Float64Array } {
  const { m, n, k, transA = false, transB = false, accumulate = false, alpha = 1, batch = 1 } = shape;
  const strideA = shape.strideA ?? m * k;
  const strideB = shape.strideB ?? k * n;
  const strideC = shape.strideC ?? m * n;
  const out = Float64Array.from(c);
  const absSum = new Float64Array(out.length);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        let abs = 0;
        for (let kk = 0; kk < k; kk++) {
          const x = a[p * strideA + (transA ? kk * m + i : i * k + kk)];
          const y = b[p * strideB + (transB ? j * k + kk : kk * n + j)];
          sum += x * y;
          abs += Math.abs(x * y);
        }
        const idx = p * strideC + i * n + j;
        out[idx] = (accumulate ? out[idx] : 0) + alpha * sum + (bias ? bias[j] : 0);
        absSum[idx] = Math.abs(alpha) * abs;
      }
    }
  }
  return { c: out, absSum };
}

/** out[c] (= or +=) Σ_r x[r, c] for a row-major [rows, cols] x. */
export function referenceColumnSum(x: ArrayLike<number>, rows: number, cols: number, accumulate = false, out?: ArrayLike<number>): Float64Array {
  const result = accumulate && out ? Float64Array.from(out) : new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) result[c] += x[r * cols + c];
  return result;
}
