/**
 * IEEE 754 binary16 (f16) on the CPU, for the f16 frozen base of LoRA runs: float32 values
 * rounded to the nearest f16 (ties to even, as WGSL's and every GPU's conversion rounds), and
 * f16 bits widened back to float32 exactly. (Node 20 has no Float16Array.)
 */

/** The largest finite f16, 65504; anything at or beyond 65520 rounds to infinity. */
export const HALF_MAX = 65504;
/** f16's unit roundoff, 2^-11: rounding changes a normal value by at most this fraction of it. */
export const HALF_UNIT_ROUNDOFF = 2 ** -11;
/** f16's smallest normal value, 2^-14; below it the absolute spacing stays 2^-24. */
export const HALF_MIN_NORMAL = 2 ** -14;

/** The f16 bits nearest to `x` (ties to even); ±Infinity beyond f16's range, NaN kept NaN. */
export function halfBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  // The binade of a (exponent e with 2^e ≤ a < 2^(e+1)), never below the subnormals' 2^-14.
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  e = Math.max(e, -14);
  // a / ulp is exact in float64 (a has at most 53 significant bits, ulp is a power of two).
  const q = a / 2 ** (e - 10);
  const floor = Math.floor(q);
  const rest = q - floor;
  let m = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  if (m === 2048) {
    m = 1024;
    e++;
  }
  if (m < 1024) return sign | m; // subnormal (e = -14)
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | (m - 1024);
}

/** The value of f16 bits `h`, exactly. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

export class HalfRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HalfRangeError';
  }
}

/**
 * `values` rounded to f16 bits. A finite value beyond f16's range would become infinite: that is
 * refused naming `what` and the value, rather than trained on.
 */
export function toHalfBits(values: ArrayLike<number>, what: string): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (Number.isFinite(x) && Math.abs(x) >= HALF_MAX + 16) {
      throw new HalfRangeError(`${what} holds ${x} at index ${i}, beyond f16's range (±${HALF_MAX}), so it cannot be stored as an f16 base`);
    }
    out[i] = halfBits(x);
  }
  return out;
}

/** f16 bits widened to float32 (exact: every f16 is a float32). */
export function fromHalfBits(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfValue(bits[i]);
  return out;
}

/** `values` rounded to f16 and back: what an f16 base holds. */
export function roundToHalf(values: ArrayLike<number>, what = 'the tensor'): Float32Array {
  return fromHalfBits(toHalfBits(values, what));
}
