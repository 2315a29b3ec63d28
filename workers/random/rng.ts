/**
 * Seeded random numbers, for the sampler's token draws and the tasks' prompt streams: a small
 * counter-free generator (xoshiro128**) seeded through splitmix32, so a seed gives the same stream
 * on every platform, and each completion of a batch gets its own stream (`forStream`),
 * independent of how many completions run beside it.
 */

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [state, (z ^ (z >>> 16)) >>> 0];
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
    this.s = new Uint32Array(4);
    let state = Math.floor(seed) | 0;
    for (let i = 0; i < 4; i++) {
      let v: number;
      [state, v] = splitmix32(state);
      this.s[i] = v;
    }
    if (this.s.every((x) => x === 0)) this.s[0] = 1;
  }

  /** The generator for completion `stream` of a run seeded with `seed`. */
  static forStream(seed: number, stream: number): Rng {
    const [, mixed] = splitmix32(Math.imul(Math.floor(seed) | 0, 0x27d4eb2d) ^ Math.imul(stream + 1, 0x165667b1));
    return new Rng(mixed);
  }

  /** A uniform 32-bit integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform number in [0, 1) with 53 bits. */
  next(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
