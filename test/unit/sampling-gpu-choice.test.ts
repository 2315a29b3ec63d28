/**
 * Token choice on the GPU (kernels/sampling) against the JavaScript reference (sampling/choose.ts)
 * on the real adapter: the emulated float64 arithmetic bit for bit against JavaScript's, and the
 * kernel's token and log-prob against chooseToken's over random logits and awkward shapes.
 *
 * Tolerance: none. Tokens must be equal and log-probs the same float64 bits: the kernel performs
 * choose.ts's float64 operations in the same order (fdlibm's exp and log on both sides), so any
 * difference, even one ulp, is a bug.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { probeFloat64 } from '../../workers/kernels/sampling/float64';
import { exp, log } from '../../workers/kernels/sampling/fdlibm';
import { CHOICE_STATUS, chooserFits, GpuTokenChooser, type ChoiceRecord } from '../../workers/kernels/sampling/choose-token';
import { createStorageBuffer } from '../../workers/gpu/buffers';
import { chooseToken, type SamplingOptions } from '../../workers/sampling/choose';
import { Rng } from '../../workers/random/rng';

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

/** Doubles of every kind: zeros, infinities, subnormals, random bit patterns, ordinary magnitudes. */
function awkwardDouble(rng: Rng): number {
  const k = rng.next();
  if (k < 0.05) return [0, -0, Infinity, -Infinity, 5e-324, -5e-324, 2.2250738585072014e-308, 1, -1, 0.5][Math.floor(rng.next() * 10)];
  if (k < 0.15) {
    const words = new Uint32Array([rng.nextU32(), rng.nextU32()]);
    const v = new Float64Array(words.buffer)[0];
    return Number.isNaN(v) ? 1.5 : v;
  }
  if (k < 0.25) return (rng.next() - 0.5) * 1e-310;
  return (rng.next() - 0.5) * 2 ** Math.floor((rng.next() - 0.5) * 80);
}

function mismatches(got: Float64Array, want: (i: number) => number): string[] {
  const bad: string[] = [];
  got.forEach((g, i) => {
    if (!same(g, want(i)) && bad.length < 5) bad.push(`#${i}: got ${g}, want ${want(i)}`);
  });
  return bad;
}

describe('float64 on the GPU (float64.wgsl, fdlibm.wgsl)', () => {
  const n = 4000;
  const rng = new Rng(2024);
  const a = Float64Array.from({ length: n }, () => awkwardDouble(rng));
  // Every fourth b is a's neighbour, so subtraction cancels and rounding ties occur.
  const b = Float64Array.from({ length: n }, (_, i) => (i % 4 === 0 ? a[i] * (1 + (rng.next() - 0.5) * 1e-12) : awkwardDouble(rng)));

  it('adds, subtracts, multiplies and divides with JavaScript’s bits (subnormals, ±0, ±∞ included)', async () => {
    const device = await testDevice();
    const ops = { add: (x: number, y: number) => x + y, sub: (x: number, y: number) => x - y, mul: (x: number, y: number) => x * y, div: (x: number, y: number) => x / y };
    for (const [op, f] of Object.entries(ops) as [keyof typeof ops, (x: number, y: number) => number][]) {
      const { value } = await probeFloat64(device, op, a, b);
      expect(mismatches(value, (i) => f(a[i], b[i])), op).toEqual([]);
    }
  });

  it('computes e^x and ln x with fdlibm.ts’s bits, which are Node’s Math.exp and Math.log', async () => {
    const device = await testDevice();
    // exp over its whole range: the subnormal results below −708, the overflow above 709.78.
    const x = Float64Array.from(a, (v, i) => (i % 3 === 0 ? -rng.next() * 760 : i % 3 === 1 ? (rng.next() - 0.5) * 1500 : v));
    const e = await probeFloat64(device, 'exp', x);
    expect(mismatches(e.value, (i) => exp(x[i]))).toEqual([]);
    // ln over subnormals, [1, 60000] (the sums of choose.ts) and every magnitude.
    const y = Float64Array.from(a, (v, i) => (i % 2 ? 1 + rng.next() * 60000 : Math.abs(v)));
    const l = await probeFloat64(device, 'log', y);
    expect(mismatches(l.value, (i) => log(y[i]))).toEqual([]);
    // fdlibm.ts is what V8 computed in Node 20: today's JavaScript tokens are unchanged there.
    expect(Array.from(x).filter((v) => !same(exp(v), Math.exp(v)))).toEqual([]);
    expect(Array.from(y).filter((v) => !same(log(v), Math.log(v)))).toEqual([]);
  });

  it('computes choose.ts’s compound steps: e^(x/T − m), e^(v − lse) and m + ln s', async () => {
    const device = await testDevice();
    const x = Float64Array.from({ length: 500 }, () => Math.fround((rng.next() - 0.5) * 40));
    const t = Float64Array.from(x, (_, i) => [0.3, 1, 2, 0.7][i % 4]);
    const m = Float64Array.from(x, () => rng.next() * 20);
    const d = await probeFloat64(device, 'divShiftExp', x, t, m);
    expect(mismatches(d.aux, (i) => x[i] / t[i])).toEqual([]);
    expect(mismatches(d.value, (i) => exp(x[i] / t[i] - m[i]))).toEqual([]);
    const s = await probeFloat64(device, 'shiftExp', x, m);
    expect(mismatches(s.aux, (i) => x[i] - m[i])).toEqual([]);
    expect(mismatches(s.value, (i) => exp(x[i] - m[i]))).toEqual([]);
    const sums = Float64Array.from(x, () => 1 + rng.next() * 5000);
    const lse = await probeFloat64(device, 'logAdd', sums, m);
    expect(mismatches(lse.value, (i) => m[i] + log(sums[i]))).toEqual([]);
    const f32 = await probeFloat64(device, 'fromF32', Float64Array.from(new Float32Array([1.5, -0, 1e-45, -3.4e38, Infinity, 0.1]), (v) => new Float64Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0], 0]).buffer)[0]));
    expect(Array.from(f32.value)).toEqual(Array.from(new Float32Array([1.5, -0, 1e-45, -3.4e38, Infinity, 0.1])));
  });
});

interface Case {
  name: string;
  rows: number;
  vocab: number;
  options: SamplingOptions;
  /** Row r's logits. */
  logits: (r: number, rng: Rng) => Float32Array;
  draws?: (r: number, rng: Rng) => number;
}

const normal = (rng: Rng) => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const gaussianRow = (vocab: number, scale: number) => (_: number, rng: Rng) => Float32Array.from({ length: vocab }, () => normal(rng) * scale);

/**
 * Runs the kernel on every row of a case (logits laid out [rows, width 2, vocab], the kernel
 * reading position 1; position 0 holds NaNs that must never be read) and returns its records.
 */
async function runKernel(device: GPUDevice, rows: Float32Array[], options: SamplingOptions, draws: Float64Array, eos: number | null = null): Promise<ChoiceRecord[]> {
  const vocab = rows[0].length;
  const data = new Float32Array(rows.length * 2 * vocab).fill(NaN);
  rows.forEach((row, r) => data.set(row, (r * 2 + 1) * vocab));
  const logits = createStorageBuffer(device, data, 'test logits');
  const chooser = new GpuTokenChooser(device, rows.length, vocab, 1, { ...options, eosTokenId: eos });
  try {
    chooser.reset();
    chooser.step(logits, 2, 0, draws);
    return (await chooser.read(1))[0];
  } finally {
    chooser.destroy();
    logits.destroy();
  }
}

describe('the token-choice kernel against choose.ts', () => {
  const cases: Case[] = [
    { name: 'greedy, batch 3, vocab 37', rows: 3, vocab: 37, options: { temperature: 0, topK: 0, topP: 1 }, logits: gaussianRow(37, 3) },
    { name: 'T 1, whole vocabulary, batch 1, vocab 100 (not a multiple of 64)', rows: 1, vocab: 100, options: { temperature: 1, topK: 0, topP: 1 }, logits: gaussianRow(100, 2) },
    { name: 'T 0.3, whole vocabulary, batch 3, vocab 257', rows: 3, vocab: 257, options: { temperature: 0.3, topK: 0, topP: 1 }, logits: gaussianRow(257, 1) },
    { name: 'T 2, top-k 5, batch 3, vocab 70', rows: 3, vocab: 70, options: { temperature: 2, topK: 5, topP: 1 }, logits: gaussianRow(70, 2) },
    { name: 'top-k 1, batch 3', rows: 3, vocab: 50, options: { temperature: 1, topK: 1, topP: 1 }, logits: gaussianRow(50, 2) },
    { name: 'top-k ≥ vocab (no limit)', rows: 3, vocab: 30, options: { temperature: 1, topK: 30, topP: 1 }, logits: gaussianRow(30, 2) },
    { name: 'top-p 0.9, T 0.3, batch 3, vocab 300', rows: 3, vocab: 300, options: { temperature: 0.3, topK: 0, topP: 0.9 }, logits: gaussianRow(300, 1) },
    { name: 'top-p tiny (one candidate), batch 3', rows: 3, vocab: 65, options: { temperature: 1, topK: 0, topP: 1e-9 }, logits: gaussianRow(65, 2) },
    { name: 'top-k 7 and top-p 0.6, T 2', rows: 3, vocab: 129, options: { temperature: 2, topK: 7, topP: 0.6 }, logits: gaussianRow(129, 3) },
    {
      // Many equal logits: the sort's ties go by id, and top-p's partial sums land exactly on p.
      name: 'ties: logits on a grid of 4 values, top-p 0.5',
      rows: 3, vocab: 64, options: { temperature: 1, topK: 0, topP: 0.5 },
      logits: (_, rng) => Float32Array.from({ length: 64 }, () => Math.floor(rng.next() * 4)),
    },
    {
      name: 'uniform logits, top-p 0.25 on 4 tokens (partial sums exactly at p)',
      rows: 1, vocab: 4, options: { temperature: 1, topK: 0, topP: 0.25 }, logits: () => new Float32Array(4),
      draws: () => 0.999,
    },
    {
      // −∞ entries are never candidates; huge logits put everything on one token.
      name: 'masked (−∞) logits and huge logits, top-k 3',
      rows: 3, vocab: 40, options: { temperature: 1, topK: 3, topP: 1 },
      logits: (r, rng) => Float32Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? -Infinity : r === 1 ? normal(rng) * 1e30 : normal(rng))),
    },
    {
      name: 'masked logits, whole vocabulary, draws at 0 and just below 1',
      rows: 2, vocab: 33, options: { temperature: 1, topK: 0, topP: 1 },
      logits: (_, rng) => Float32Array.from({ length: 33 }, (_, i) => (i % 2 ? -Infinity : normal(rng))),
      draws: (r) => (r === 0 ? 0 : 1 - 2 ** -53),
    },
    { name: 'vocabulary of one token', rows: 3, vocab: 1, options: { temperature: 1, topK: 0, topP: 0.5 }, logits: gaussianRow(1, 1) },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const device = await testDevice();
      const rng = new Rng(c.name.length * 7919);
      for (let trial = 0; trial < 3; trial++) {
        const rows = Array.from({ length: c.rows }, (_, r) => c.logits(r, rng));
        const draws = Float64Array.from({ length: c.rows }, (_, r) => (c.draws ? c.draws(r, rng) : rng.next()));
        const got = await runKernel(device, rows, c.options, draws);
        const want = rows.map((row, r) => chooseToken(row, c.options, draws[r]));
        expect(got.map((g) => g.status)).toEqual(rows.map(() => CHOICE_STATUS.chosen));
        expect(got.map((g) => g.token)).toEqual(want.map((w) => w.token));
        got.forEach((g, r) => expect(same(g.logprob, want[r].logprob), `row ${r}: log-prob ${g.logprob} vs ${want[r].logprob}`).toBe(true));
      }
    });
  }

  it('reports what choose.ts refuses (a NaN logit, every logit −∞, +∞) and skips finished rows', async () => {
    const device = await testDevice();
    const options = { temperature: 1, topK: 0, topP: 1 };
    const rows = [
      Float32Array.from([0, 1, NaN, 2, NaN]),
      Float32Array.from([-Infinity, -Infinity, -Infinity, -Infinity, -Infinity]),
      Float32Array.from([0, Infinity, 1, 2, 3]),
      Float32Array.from([0, 1, 2, 3, 4]),
    ];
    const got = await runKernel(device, rows, options, new Float64Array([0.5, 0.5, 0.5, 0.5]));
    expect(got.map((g) => g.status)).toEqual([CHOICE_STATUS.nanLogit, CHOICE_STATUS.allNegInf, CHOICE_STATUS.posInf, CHOICE_STATUS.chosen]);
    expect(got[0].token).toBe(2);
    expect(() => chooseToken(rows[0], options, 0.5)).toThrow('logit 2 is NaN');
    expect(() => chooseToken(rows[1], options, 0.5)).toThrow('every logit is -inf');
    expect(() => chooseToken(rows[2], options, 0.5)).toThrow('a logit is +inf');
  });

  it('refuses, before allocating, a batch whose scratch exceeds the adapter’s binding limit', async () => {
    const device = await testDevice();
    const vocab = Math.ceil(device.limits.maxStorageBufferBindingSize / 16) + 1;
    const settings = { temperature: 1, topK: 0, topP: 1, eosTokenId: null };
    expect(chooserFits(device, 1, vocab, settings)).toBe(false);
    expect(chooserFits(device, 3, 50257, settings)).toBe(true);
    expect(() => new GpuTokenChooser(device, 1, vocab, 1, settings)).toThrow(/scratch buffer for 1 rows × \d+ logits, above the adapter's \d+ MiB per binding: sample fewer completions at once, or choose in JavaScript/);
  });

  it('feeds the next step: int64 input ids, finished rows skipped and their last id kept', async () => {
    const device = await testDevice();
    const vocab = 6;
    const chooser = new GpuTokenChooser(device, 2, vocab, 2, { temperature: 0, topK: 0, topP: 1, eosTokenId: 3 });
    const step = (rows: number[][]) => createStorageBuffer(device, Float32Array.from(rows.flat()), 'logits');
    const first = step([[0, 0, 0, 9, 0, 0], [0, 9, 0, 0, 0, 0]]); // row 0 chooses EOS (3), row 1 chooses 1
    const second = step([[9, 0, 0, 0, 0, 0], [0, 0, 0, 0, 9, 0]]); // row 0 is finished; row 1 chooses 4
    try {
      chooser.reset();
      chooser.step(first, 1, 0, new Float64Array(2));
      chooser.step(second, 1, 1, new Float64Array(2));
      const records = await chooser.read(2);
      expect(records[0].map((r) => [r.token, r.status])).toEqual([[3, CHOICE_STATUS.chosen], [1, CHOICE_STATUS.chosen]]);
      expect(records[1].map((r) => r.status)).toEqual([CHOICE_STATUS.skipped, CHOICE_STATUS.chosen]);
      expect(records[1][1].token).toBe(4);
      const ids = new BigInt64Array(await (await import('../../workers/gpu/buffers')).readBuffer(device, chooser.nextIds, 16));
      expect(Array.from(ids)).toEqual([3n, 4n]);
    } finally {
      chooser.destroy();
      first.destroy();
      second.destroy();
    }
  });
});
