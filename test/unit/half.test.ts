/** f16 on the CPU (workers/train/half.ts): what an f16 LoRA base holds. No GPU. */
import { describe, expect, it } from 'vitest';
import { fromHalfBits, halfBits, halfValue, roundToHalf, toHalfBits } from '../../workers/train/half';

/** The next float32 above a positive float32 x. */
function nextUp(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0]++;
  return f[0];
}

describe('f16 rounding on the CPU', () => {
  it('every f16 value round-trips to its own bits; NaN stays NaN', () => {
    let checked = 0;
    const wrong: string[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const v = halfValue(h);
      if (Number.isNaN(v)) {
        if ((h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0 || !Number.isNaN(halfValue(halfBits(v)))) wrong.push(`NaN ${h}`);
        continue;
      }
      // Every f16 is a float32, and comes back to its own bits.
      if (Math.fround(v) !== v || halfBits(v) !== h) wrong.push(`${h} (${v})`);
      checked++;
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(0x10000 - 2 * 1023);
  });

  it('rounds to the nearest f16, ties to the even one, for every pair of neighbours', () => {
    // Positive finite f16 values in order: bits 0 … 0x7bff. The midpoint of two neighbours goes to
    // the one with the even last bit; a float32 a step above the midpoint goes up.
    const wrong: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (halfValue(h) + halfValue(h + 1)) / 2; // exact in float32: a half-spacing step of an f16
      const even = h % 2 === 0 ? h : h + 1;
      if (Math.fround(mid) !== mid || halfBits(mid) !== even || halfBits(-mid) !== (0x8000 | even) || halfBits(nextUp(mid)) !== h + 1) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('saturates to infinity beyond 65504 exactly where round-to-nearest does', () => {
    expect(halfBits(65504)).toBe(0x7bff);
    expect(halfBits(65519.99)).toBe(0x7bff);
    expect(halfBits(65520)).toBe(0x7c00); // the tie between 65504 and 2^16 goes to the even one, infinity
    expect(halfBits(-Infinity)).toBe(0xfc00);
    expect(halfBits(-0)).toBe(0x8000);
    expect(halfBits(2 ** -26)).toBe(0); // half the smallest subnormal: ties to even, 0
    expect(halfBits(nextUp(2 ** -25))).toBe(1);
  });

  it('refuses a finite value that would become infinite, naming it', () => {
    expect(() => toHalfBits([1, -2, 1e5], 'h.0.attn.c_attn.weight')).toThrow(
      "h.0.attn.c_attn.weight holds 100000 at index 2, beyond f16's range (±65504), so it cannot be stored as an f16 base",
    );
    expect(Array.from(fromHalfBits(toHalfBits([1, -2.5, 65504, 1 / 3], 'x')))).toEqual([1, -2.5, 65504, 0.333251953125]);
    expect(Array.from(roundToHalf([0.1]))).toEqual([Math.fround(0.0999755859375)]);
  });
});
