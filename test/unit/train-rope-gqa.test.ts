/**
 * The Llama family's rotary embeddings and grouped-query attention in the training engine
 * (workers/kernels/train/rope.ts, gqa.ts):
 *   1. the float64 references (test/reference/rope.ts): analytic backwards against central
 *      finite differences of their own forwards (rope, GQA pack, GQA attention with padding);
 *   2. the WGSL kernels on a real WebGPU adapter against those references over awkward shapes
 *      (rows 1, 5, 67; heads 1…6 with kvHeads 1, 2, 3 or = heads; headDim 2 … 128), with the
 *      llama3 rope tables of the llama-teacher fixture;
 *   3. one layer's attention end to end, rope → GQA pack → attention forward/backward (both
 *      paths) → GQA unpack → rope backward, against the references, with left and right padding,
 *      for head dims 16, 32 (Qwen3's: 4 heads of 32 = 128 ≠ its hidden 64), 64 and 128.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../workers/models/gpt2/params';
import { llamaConfigFromJson } from '../../workers/models/llama/config';
import { ropeTables } from '../../workers/models/llama/rope';
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../../workers/gpu/buffers';
import { createRopeTables, encodeRopeBackward, encodeRopeForward, type RopeDims } from '../../workers/kernels/train/rope';
import { encodeGqaPack, encodeGqaUnpack, type GqaDims } from '../../workers/kernels/train/gqa';
import { attentionBufferBytes, encodeAttentionBackward, encodeAttentionForward, type AttentionPath } from '../../workers/kernels/train/attention';
import { gqaAttentionBackward, gqaAttentionForward, gqaPack, gqaUnpack, ropeBackward, ropeForward, type GqaAttentionDims, type RopeTables } from '../reference/rope';
import { testDevice } from './gpu';

// ---------------------------------------------------------------------------------------------
// Tolerances.

/** Finite differences of the float64 forwards (central, step FD_STEP), as in train-attention-loss. */
const FD_STEP = 1e-5;
const FD_RTOL = 1e-7;

/**
 * RoPE on the GPU (f32, tables rounded once to f32) against float64 with float64 tables, per
 * element: |got − want| ≤ ROPE_TOL·(|a| + |b|) for the pair (a, b) it comes from. Each output is
 * a·c ∓ b·s with c and s each rounded once (u = 2⁻²⁴ ≈ 6e-8 relative), two products and a sum
 * each rounded once: at most ~3u·(|a| + |b|) = 1.8e-7·(|a| + |b|); 3e-7 ≈ 5u leaves a margin.
 */
const ROPE_TOL = 3e-7;

/**
 * GQA unpack: dk, dv are f32 sums of G ≤ 6 terms, each rounding once: |got − want| ≤
 * GQA_TOL·Σ|terms| with GQA_TOL = 8u ≈ 4.8e-7 ≥ (G − 1)·u. The pack and dq are copies: exact.
 */
const GQA_TOL = 4.8e-7;

/**
 * The whole attention chain against float64, relative to max(1, max |want|) of each output, as
 * train-attention-loss's ATTENTION_TOL (2e-6 ≈ 16 ε32 for attention alone), plus the rotations
 * (a few u) and the group sums of dk, dv (≤ 3 terms here): 3e-6.
 */
const CHAIN_TOL = 3e-6;

// ---------------------------------------------------------------------------------------------

const fixtureDir = join(__dirname, '../fixtures/hf');
const teacher = llamaConfigFromJson(JSON.parse(readFileSync(join(fixtureDir, 'llama-teacher', 'config.json'), 'utf8')), 'llama-teacher/config.json');
/** max_position_embeddings of the llama-teacher fixture: the rows of every table below. */
const MAX_POSITIONS = 256;

/** The llama-teacher's llama3 rope (θ = 5e5, factor 4, original 64 positions) at head dim D. */
function teacherTables(headDim: number): { cos: Float64Array; sin: Float64Array } {
  return ropeTables({ rope: teacher.rope, headDim }, MAX_POSITIONS);
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function randomArray(rand: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => gaussian(rand) * scale);
}

/** keyMask rows: 'full', 'left:k' / 'right:k' (k padding positions). */
function maskFor(patterns: string[], T: number): Uint32Array {
  const mask = new Uint32Array(patterns.length * T);
  patterns.forEach((p, b) => {
    const [kind, count] = p.split(':');
    const k = Number(count ?? 0);
    for (let t = 0; t < T; t++) mask[b * T + t] = kind === 'full' || (kind === 'left' && t >= k) || (kind === 'right' && t < T - k) ? 1 : 0;
  });
  return mask;
}

/** HF's position ids under padding: the count of real tokens before, 0 at padding. */
function positionsFor(mask: Uint32Array, T: number): Uint32Array {
  const positions = new Uint32Array(mask.length);
  for (let b = 0; b < mask.length / T; b++) {
    let seen = 0;
    for (let t = 0; t < T; t++) positions[b * T + t] = mask[b * T + t] ? seen++ : 0;
  }
  return positions;
}

/** Max over elements of |got − want| / max(1, max |want|). */
function scaledError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst / scale;
}

/** Central finite differences of the scalar `f` at `x`. */
function finiteDifferences(f: (x: Float64Array) => number, x: Float64Array): Float64Array {
  const fd = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const y = Float64Array.from(x);
    y[i] = x[i] + FD_STEP;
    const up = f(y);
    y[i] = x[i] - FD_STEP;
    fd[i] = (up - f(y)) / (2 * FD_STEP);
  }
  return fd;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

// ---------------------------------------------------------------------------------------------
// 1. Float64 references: analytic backward against finite differences.

describe('float64 references (test/reference/rope.ts): analytic gradients match central finite differences', () => {
  it('rope: ropeBackward is the gradient of ropeForward (llama3 tables, D = 2 and 8, positions up to the table size)', () => {
    const rand = seededRandom(21).uniform;
    for (const dims of [
      { rows: 3, heads: 2, headDim: 8 },
      { rows: 4, heads: 3, headDim: 2 },
    ] as RopeDims[]) {
      const tables = teacherTables(dims.headDim);
      const positions = Uint32Array.from({ length: dims.rows }, (_, r) => (r === 0 ? MAX_POSITIONS - 1 : Math.floor(rand() * MAX_POSITIONS)));
      const n = dims.rows * dims.heads * dims.headDim;
      const x = Float64Array.from(randomArray(rand, n));
      const dy = Float64Array.from(randomArray(rand, n));
      const analytic = ropeBackward(dy, positions, tables, dims);
      const fd = finiteDifferences((z) => dot(ropeForward(z, positions, tables, dims), dy), x);
      expect(scaledError(analytic, fd), JSON.stringify(dims)).toBeLessThanOrEqual(FD_RTOL);
      // A rotation: the backward undoes the forward, and the forward keeps each pair's norm.
      const back = ropeBackward(ropeForward(x, positions, tables, dims), positions, tables, dims);
      expect(scaledError(back, x)).toBeLessThan(1e-14);
      expect(() => ropeForward(x, Uint32Array.of(MAX_POSITIONS, 0, 0, 0), tables, dims)).toThrow(/outside the tables/);
    }
  });

  it('GQA pack/unpack: gqaUnpack is the gradient of gqaPack; gqaAttentionBackward the gradient of gqaAttentionForward (left and right padding)', () => {
    const rand = seededRandom(22).uniform;
    const packDims: GqaDims = { rows: 3, heads: 6, kvHeads: 2, headDim: 2 };
    const E = packDims.heads * packDims.headDim;
    const Ekv = packDims.kvHeads * packDims.headDim;
    const q = Float64Array.from(randomArray(rand, packDims.rows * E));
    const k = Float64Array.from(randomArray(rand, packDims.rows * Ekv));
    const v = Float64Array.from(randomArray(rand, packDims.rows * Ekv));
    const dqkv = Float64Array.from(randomArray(rand, packDims.rows * 3 * E));
    const unpacked = gqaUnpack(dqkv, packDims);
    expect(scaledError(unpacked.dk, finiteDifferences((z) => dot(gqaPack(q, z, v, packDims), dqkv), k))).toBeLessThanOrEqual(FD_RTOL);
    expect(scaledError(unpacked.dv, finiteDifferences((z) => dot(gqaPack(q, k, z, packDims), dqkv), v))).toBeLessThanOrEqual(FD_RTOL);
    expect(scaledError(unpacked.dq, finiteDifferences((z) => dot(gqaPack(z, k, v, packDims), dqkv), q))).toBeLessThanOrEqual(FD_RTOL);

    const dims: GqaAttentionDims = { batch: 2, seq: 4, heads: 4, kvHeads: 2, headDim: 3 };
    const N = dims.batch * dims.seq;
    const mask = maskFor(['left:1', 'right:2'], dims.seq);
    const aq = Float64Array.from(randomArray(rand, N * dims.heads * dims.headDim));
    const ak = Float64Array.from(randomArray(rand, N * dims.kvHeads * dims.headDim));
    const av = Float64Array.from(randomArray(rand, N * dims.kvHeads * dims.headDim));
    const dctx = Float64Array.from(randomArray(rand, N * dims.heads * dims.headDim));
    const { probs } = gqaAttentionForward(aq, ak, av, mask, dims);
    const grads = gqaAttentionBackward(dctx, probs, aq, ak, av, dims);
    const objective = (q: Float64Array, k: Float64Array, v: Float64Array) => dot(gqaAttentionForward(q, k, v, mask, dims).ctx, dctx);
    const errors = {
      dq: scaledError(grads.dq, finiteDifferences((z) => objective(z, ak, av), aq)),
      dk: scaledError(grads.dk, finiteDifferences((z) => objective(aq, z, av), ak)),
      dv: scaledError(grads.dv, finiteDifferences((z) => objective(aq, ak, z), av)),
    };
    for (const [name, e] of Object.entries(errors)) expect(e, name).toBeLessThanOrEqual(FD_RTOL);
    console.info(`gqa attention fd: max |analytic − fd| / scale ${JSON.stringify(errors)}`);
    // Padding rows get no gradient as keys/values, and every KV gradient is a sum over its group.
    for (let n = 0; n < N; n++) if (!mask[n]) for (let c = 0; c < dims.kvHeads * dims.headDim; c++) expect(grads.dk[n * dims.kvHeads * dims.headDim + c]).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. The kernels against the references.

async function run(device: GPUDevice, what: string, record: (encoder: GPUCommandEncoder) => void): Promise<void> {
  await withGpuErrorScope(device, what, () => {
    const encoder = device.createCommandEncoder({ label: what });
    record(encoder);
    device.queue.submit([encoder.finish()]);
  });
}

/** Worst |got − want| / (|a| + |b|) over the rotated pairs (a, b) of x. */
function ropeRatio(got: Float32Array, want: Float64Array, x: ArrayLike<number>, headDim: number): number {
  const half = headDim / 2;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = i % headDim;
    const base = i - d;
    const pair = Math.abs(x[base + (d % half)]) + Math.abs(x[base + (d % half) + half]);
    const e = Math.abs(got[i] - want[i]) / Math.max(pair, 1e-30);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

describe('rope and GQA kernels against the float64 references (real WebGPU adapter)', () => {
  it(`rope forward and backward in place: llama3 tables (θ = 5e5, factor 4), rows 1/5/67, heads 1…6, headDim 2…128; |error| ≤ ${ROPE_TOL}·(|a| + |b|)`, async () => {
    const device = await testDevice();
    const rand = seededRandom(31).uniform;
    const cases: RopeDims[] = [
      { rows: 1, heads: 1, headDim: 2 },
      { rows: 5, heads: 3, headDim: 16 },
      { rows: 67, heads: 6, headDim: 16 },
      { rows: 67, heads: 2, headDim: 32 },
      { rows: 5, heads: 5, headDim: 64 },
      { rows: 67, heads: 1, headDim: 128 },
      { rows: 1, heads: 4, headDim: 128 },
    ];
    let worst = 0;
    for (const dims of cases) {
      const float64Tables = teacherTables(dims.headDim);
      const tables = createRopeTables(device, float64Tables, dims.headDim);
      expect(tables.maxPositions).toBe(MAX_POSITIONS);
      const n = dims.rows * dims.heads * dims.headDim;
      const x = randomArray(rand, n, 2);
      const dy = randomArray(rand, n, 2);
      // The last row at the table's last position, the first at 0, the rest anywhere.
      const positions = Uint32Array.from({ length: dims.rows }, (_, r) => (r === dims.rows - 1 ? MAX_POSITIONS - 1 : r === 0 ? 0 : Math.floor(rand() * MAX_POSITIONS)));
      const xBuffer = createStorageBuffer(device, x, 'x');
      const dBuffer = createStorageBuffer(device, dy, 'dx');
      const posBuffer = createStorageBuffer(device, positions, 'positions');
      await run(device, `rope ${JSON.stringify(dims)}`, (encoder) => {
        encodeRopeForward(device, encoder, { x: xBuffer, positions: posBuffer, ...tables }, dims);
        encodeRopeBackward(device, encoder, { dx: dBuffer, positions: posBuffer, cos: tables.cos, sin: tables.sin }, dims);
      });
      const gotY = await readFloat32(device, xBuffer, n);
      const gotDx = await readFloat32(device, dBuffer, n);
      for (const b of [xBuffer, dBuffer, posBuffer]) b.destroy();
      tables.destroy();
      const forward = ropeRatio(gotY, ropeForward(x, positions, float64Tables, dims), x, dims.headDim);
      const backward = ropeRatio(gotDx, ropeBackward(dy, positions, float64Tables, dims), dy, dims.headDim);
      expect(forward, `forward ${JSON.stringify(dims)}`).toBeLessThanOrEqual(ROPE_TOL);
      expect(backward, `backward ${JSON.stringify(dims)}`).toBeLessThanOrEqual(ROPE_TOL);
      worst = Math.max(worst, forward, backward);
    }
    console.info(`rope: worst |error| / (|a| + |b|) = ${worst.toExponential(2)} (tolerance ${ROPE_TOL})`);
  });

  it('rope: a position past the tables reads their last row (clamped, no out-of-bounds read); bad shapes and tables are refused', async () => {
    const device = await testDevice();
    const rand = seededRandom(32).uniform;
    const dims: RopeDims = { rows: 3, heads: 2, headDim: 16 };
    const float64Tables = teacherTables(dims.headDim);
    const tables = createRopeTables(device, float64Tables, dims.headDim);
    const x = randomArray(rand, 3 * 2 * 16);
    const xBuffer = createStorageBuffer(device, x, 'x');
    const posBuffer = createStorageBuffer(device, Uint32Array.of(MAX_POSITIONS, 2 ** 32 - 1, 7), 'positions');
    await run(device, 'rope clamp', (encoder) => encodeRopeForward(device, encoder, { x: xBuffer, positions: posBuffer, ...tables }, dims));
    const got = await readFloat32(device, xBuffer, x.length);
    const want = ropeForward(x, Uint32Array.of(MAX_POSITIONS - 1, MAX_POSITIONS - 1, 7), float64Tables, dims);
    expect(ropeRatio(got, want, x, dims.headDim)).toBeLessThanOrEqual(ROPE_TOL);
    // A smaller maxPositions clamps lower.
    const x2 = createStorageBuffer(device, x, 'x2');
    await run(device, 'rope clamp 8', (encoder) => encodeRopeForward(device, encoder, { x: x2, positions: posBuffer, ...tables, maxPositions: 8 }, dims));
    expect(ropeRatio(await readFloat32(device, x2, x.length), ropeForward(x, Uint32Array.of(7, 7, 7), float64Tables, dims), x, dims.headDim)).toBeLessThanOrEqual(ROPE_TOL);

    const encoder = device.createCommandEncoder();
    const b = { x: xBuffer, positions: posBuffer, cos: tables.cos, sin: tables.sin };
    expect(() => encodeRopeForward(device, encoder, b, { rows: 3, heads: 2, headDim: 15 })).toThrow(/headDim = 15 must be an even integer/);
    expect(() => encodeRopeForward(device, encoder, b, { rows: 3, heads: 3, headDim: 16 })).toThrow(/x holds 384 bytes, needs 576/);
    expect(() => encodeRopeForward(device, encoder, b, { rows: 5, heads: 1, headDim: 16 })).toThrow(/positions holds 16 bytes, needs 20/);
    expect(() => encodeRopeForward(device, encoder, { ...b, maxPositions: MAX_POSITIONS + 1 }, dims)).toThrow(/hold 256 rows/);
    expect(() => encodeRopeBackward(device, encoder, { dx: xBuffer, positions: posBuffer, cos: xBuffer, sin: xBuffer }, { rows: 1, heads: 1, headDim: 2 })).toThrow(/dx and cos are the same buffer/);
    expect(() => createRopeTables(device, { cos: new Float64Array(10), sin: new Float64Array(10) }, 8)).toThrow(/not a whole number/);
    expect(() => createRopeTables(device, { cos: new Float64Array(8), sin: new Float64Array(4) }, 8)).toThrow(/same \[positions, headDim\/2\] shape/);
    for (const buffer of [xBuffer, x2, posBuffer]) buffer.destroy();
    tables.destroy();
  });

  it(`GQA pack (exact) and unpack (group sums within ${GQA_TOL}·Σ|terms|): rows 1/5/67, heads 1…6 with kvHeads 1, 2, 3 or = heads`, async () => {
    const device = await testDevice();
    const rand = seededRandom(33).uniform;
    const cases: GqaDims[] = [
      { rows: 1, heads: 1, kvHeads: 1, headDim: 2 },
      { rows: 5, heads: 6, kvHeads: 2, headDim: 16 },
      { rows: 67, heads: 6, kvHeads: 3, headDim: 16 },
      { rows: 67, heads: 4, kvHeads: 1, headDim: 32 },
      { rows: 5, heads: 5, kvHeads: 5, headDim: 64 },
      { rows: 5, heads: 2, kvHeads: 1, headDim: 128 },
      { rows: 67, heads: 3, kvHeads: 3, headDim: 2 },
    ];
    let worst = 0;
    for (const dims of cases) {
      const { rows: N, heads: H, kvHeads: Hkv, headDim: D } = dims;
      const q = randomArray(rand, N * H * D);
      const k = randomArray(rand, N * Hkv * D);
      const v = randomArray(rand, N * Hkv * D);
      const dqkv = randomArray(rand, N * 3 * H * D);
      const bufs = {
        q: createStorageBuffer(device, q, 'q'),
        k: createStorageBuffer(device, k, 'k'),
        v: createStorageBuffer(device, v, 'v'),
        // Outputs start out non-zero, to show that every element is written (overwritten, not added to).
        qkv: createStorageBuffer(device, new Float32Array(N * 3 * H * D).fill(7), 'qkv'),
        dqkv: createStorageBuffer(device, dqkv, 'dqkv'),
        dq: createStorageBuffer(device, new Float32Array(N * H * D).fill(7), 'dq'),
        dk: createStorageBuffer(device, new Float32Array(N * Hkv * D).fill(7), 'dk'),
        dv: createStorageBuffer(device, new Float32Array(N * Hkv * D).fill(7), 'dv'),
      };
      await run(device, `gqa ${JSON.stringify(dims)}`, (encoder) => {
        encodeGqaPack(device, encoder, bufs, dims);
        encodeGqaUnpack(device, encoder, bufs, dims);
      });
      const got = {
        qkv: await readFloat32(device, bufs.qkv, N * 3 * H * D),
        dq: await readFloat32(device, bufs.dq, N * H * D),
        dk: await readFloat32(device, bufs.dk, N * Hkv * D),
        dv: await readFloat32(device, bufs.dv, N * Hkv * D),
      };
      for (const b of Object.values(bufs)) b.destroy();
      expect(Array.from(got.qkv), `pack ${JSON.stringify(dims)}`).toEqual(Array.from(gqaPack(q, k, v, dims)));
      const want = gqaUnpack(dqkv, dims);
      const absSums = gqaUnpack(dqkv.map(Math.abs), dims);
      expect(Array.from(got.dq), `dq ${JSON.stringify(dims)}`).toEqual(Array.from(want.dq));
      for (const key of ['dk', 'dv'] as const) {
        for (let i = 0; i < want[key].length; i++) {
          const ratio = Math.abs(got[key][i] - want[key][i]) / Math.max(absSums[key][i], 1e-30);
          worst = Math.max(worst, Number.isNaN(ratio) ? Infinity : ratio);
        }
      }
      expect(worst, `unpack ${JSON.stringify(dims)}`).toBeLessThanOrEqual(GQA_TOL);
    }
    console.info(`gqa unpack: worst |error| / Σ|terms| = ${worst.toExponential(2)} (tolerance ${GQA_TOL})`);

    const device2 = device;
    const small = createStorageBuffer(device2, 16, 'small');
    const encoder = device2.createCommandEncoder();
    expect(() => encodeGqaPack(device2, encoder, { q: small, k: small, v: small, qkv: small }, { rows: 1, heads: 4, kvHeads: 3, headDim: 1 })).toThrow(/kvHeads = 3 must divide heads = 4/);
    expect(() => encodeGqaPack(device2, encoder, { q: small, k: small, v: small, qkv: small }, { rows: 1, heads: 2, kvHeads: 1, headDim: 2 })).toThrow(/qkv holds 16 bytes, needs 48/);
    expect(() => encodeGqaUnpack(device2, encoder, { dqkv: small, dq: small, dk: small, dv: small }, { rows: 1, heads: 1, kvHeads: 1, headDim: 1 })).toThrow(/same buffer/);
    small.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
// 3. One layer's attention end to end.

interface ChainCase {
  name: string;
  dims: GqaAttentionDims;
  masks: string[];
}

async function runChain(device: GPUDevice, c: ChainCase, seed: number, path: AttentionPath) {
  const { dims } = c;
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const N = B * T;
  const rand = seededRandom(seed).uniform;
  const q = randomArray(rand, N * H * D);
  const k = randomArray(rand, N * Hkv * D);
  const v = randomArray(rand, N * Hkv * D);
  const dctx = randomArray(rand, N * H * D);
  const mask = maskFor(c.masks, T);
  const positions = positionsFor(mask, T);
  const float64Tables = teacherTables(D);
  const tables = createRopeTables(device, float64Tables, D);
  const attentionDims = { batch: B, seq: T, heads: H, headDim: D };
  const gqaDims = { rows: N, heads: H, kvHeads: Hkv, headDim: D };
  const bytes = attentionBufferBytes(attentionDims);
  const bufs = {
    q: createStorageBuffer(device, q, 'q'),
    k: createStorageBuffer(device, k, 'k'),
    v: createStorageBuffer(device, v, 'v'),
    positions: createStorageBuffer(device, positions, 'positions'),
    keyMask: createStorageBuffer(device, mask, 'keyMask'),
    qkv: createStorageBuffer(device, bytes.qkv, 'qkv'),
    ctx: createStorageBuffer(device, bytes.ctx, 'ctx'),
    probs: createStorageBuffer(device, bytes.probs, 'probs'),
    dctx: createStorageBuffer(device, dctx, 'dctx'),
    dqkv: createStorageBuffer(device, bytes.dqkv, 'dqkv'),
    dq: createStorageBuffer(device, q.length * 4, 'dq'),
    dk: createStorageBuffer(device, k.length * 4, 'dk'),
    dv: createStorageBuffer(device, v.length * 4, 'dv'),
  };
  await run(device, `${c.name} (${path})`, (encoder) => {
    encodeRopeForward(device, encoder, { x: bufs.q, positions: bufs.positions, ...tables }, { rows: N, heads: H, headDim: D });
    encodeRopeForward(device, encoder, { x: bufs.k, positions: bufs.positions, ...tables }, { rows: N, heads: Hkv, headDim: D });
    encodeGqaPack(device, encoder, bufs, gqaDims);
    encodeAttentionForward(device, encoder, bufs, attentionDims, { path });
    encodeAttentionBackward(device, encoder, bufs, attentionDims, { path });
    encodeGqaUnpack(device, encoder, bufs, gqaDims);
    encodeRopeBackward(device, encoder, { dx: bufs.dq, positions: bufs.positions, ...tables }, { rows: N, heads: H, headDim: D });
    encodeRopeBackward(device, encoder, { dx: bufs.dk, positions: bufs.positions, ...tables }, { rows: N, heads: Hkv, headDim: D });
  });
  const got = {
    ctx: await readFloat32(device, bufs.ctx, N * H * D),
    probs: await readFloat32(device, bufs.probs, B * H * T * T),
    dq: await readFloat32(device, bufs.dq, q.length),
    dk: await readFloat32(device, bufs.dk, k.length),
    dv: await readFloat32(device, bufs.dv, v.length),
  };
  for (const b of Object.values(bufs)) b.destroy();
  tables.destroy();

  // The reference: rotate q and k, GQA attention, its backward, rotate dq and dk back.
  const rope = (x: ArrayLike<number>, heads: number) => ropeForward(x, positions, float64Tables as RopeTables, { rows: N, heads, headDim: D });
  const rq = rope(q, H);
  const rk = rope(k, Hkv);
  const fwd = gqaAttentionForward(rq, rk, v, mask, dims);
  const bwd = gqaAttentionBackward(dctx, fwd.probs, rq, rk, v, dims);
  const want = {
    ctx: fwd.ctx,
    probs: fwd.probs,
    dq: ropeBackward(bwd.dq, positions, float64Tables, { rows: N, heads: H, headDim: D }),
    dk: ropeBackward(bwd.dk, positions, float64Tables, { rows: N, heads: Hkv, headDim: D }),
    dv: bwd.dv,
  };
  return { got, want, mask };
}

describe('one GQA attention layer end to end: rope → pack → attention forward/backward → unpack → rope backward (real WebGPU adapter)', () => {
  const cases: ChainCase[] = [
    { name: 'llama-teacher heads: H = 6, Hkv = 2, D = 16, left and right padding', dims: { batch: 2, seq: 9, heads: 6, kvHeads: 2, headDim: 16 }, masks: ['left:3', 'right:2'] },
    { name: 'Qwen3 heads: H = 4, Hkv = 2, D = 32 (H·D = 128 ≠ hidden 64), right and left padding', dims: { batch: 2, seq: 7, heads: 4, kvHeads: 2, headDim: 32 }, masks: ['right:3', 'left:1'] },
    { name: 'H = 3, Hkv = 1, D = 64, left padding', dims: { batch: 1, seq: 5, heads: 3, kvHeads: 1, headDim: 64 }, masks: ['left:2'] },
    { name: 'H = 2, Hkv = 2, D = 128 (the larger D bucket), right padding and a full row', dims: { batch: 2, seq: 6, heads: 2, kvHeads: 2, headDim: 128 }, masks: ['right:2', 'full'] },
  ];
  for (const path of ['fused', 'matmul'] as const) {
    it(`${path} attention path: ctx, probs, dq, dk, dv within ${CHAIN_TOL} of the largest value; padding rows' gradients exactly 0`, async () => {
      const device = await testDevice();
      const worst: Record<string, number> = {};
      for (const [index, c] of cases.entries()) {
        const { got, want, mask } = await runChain(device, c, 200 + index, path);
        for (const key of ['ctx', 'probs', 'dq', 'dk', 'dv'] as const) {
          const e = scaledError(got[key], want[key]);
          expect(e, `${c.name} (${path}): ${key}`).toBeLessThanOrEqual(CHAIN_TOL);
          worst[key] = Math.max(worst[key] ?? 0, e);
        }
        const { heads: H, kvHeads: Hkv, headDim: D } = c.dims;
        for (let n = 0; n < mask.length; n++) {
          if (mask[n]) continue;
          for (let e = 0; e < H * D; e++) expect(got.dq[n * H * D + e]).toBe(0);
          for (let e = 0; e < Hkv * D; e++) expect(got.dk[n * Hkv * D + e] === 0 && got.dv[n * Hkv * D + e] === 0).toBe(true);
        }
      }
      console.info(`gqa attention chain (${path}): max |error| / scale ${JSON.stringify(Object.fromEntries(Object.entries(worst).map(([k, v]) => [k, Number(v.toExponential(2))])))}`);
    });
  }
});
