/**
 * The training engine's attention (forward + backward) and loss-gradient kernels:
 *   1. the float64 references' analytic gradients against central finite differences of their
 *      own float64 forwards (attention with masks; CE; PG clipped and unclipped, ρ inside and
 *      outside the clip range);
 *   2. the WGSL kernels on a real WebGPU adapter against those references, over awkward shapes.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../workers/models/gpt2/params';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../../workers/gpu/buffers';
import {
  attentionBufferBytes,
  attentionPath,
  createAttentionWork,
  encodeAttentionBackward,
  encodeAttentionForward,
  measureAttentionMs,
  pickAttentionPath,
  setAttentionPath,
  type AttentionDims,
  type AttentionPath,
} from '../../workers/kernels/train/attention';
import { isCpuDevice } from '../../workers/gpu/tuning';
import { encodeLossGrad, type LossMode } from '../../workers/kernels/train/loss';
import { attentionBackwardReference, attentionForwardReference } from '../reference/attention';
import { logSoftmaxRow, lossGradReference, lossValuesReference, type LossInputs, type LossSettings } from '../reference/loss';

// ---------------------------------------------------------------------------------------------
// Tolerances. Every check is |got − want| ≤ tol · scale, with the scale named at each use.

/**
 * Finite differences (float64, central, step FD_STEP): truncation O(h²·f''') ≈ 1e-10 and
 * round-off O(ε64·|f|/h) ≈ 1e-11 at these O(1) magnitudes; 1e-7 of the largest gradient leaves
 * three orders of margin and still catches any wrong term (those are O(1)).
 */
const FD_STEP = 1e-5;
const FD_RTOL = 1e-7;

/**
 * Attention on the GPU (f32) against float64, relative to the largest |value| of that output
 * (and at least 1): every score, softmax and sum is an f32 dot product of ≤ 80 terms or a sum of
 * ≤ 300 terms of O(1) values with mixed signs, whose rounding errors (ε32 = 1.2e-7 each) add up
 * like a random walk to a few ε32; 2e-6 ≈ 16 ε32.
 */
const ATTENTION_TOL = 2e-6;
/**
 * The same with scores of magnitude ~1e3 (the saturated case): f32 rounding of a score is then
 * ~1e3·ε32 ≈ 1.2e-4 absolute, which moves a softmax weight by up to ~1.2e-4 of itself; 5e-4 ≈ 4×.
 */
const ATTENTION_SATURATED_TOL = 5e-4;

/**
 * Loss kernel (f32) against float64. Let R = (max z − min z)/τ + ln V (the largest |log p|
 * involved). log p = (z − max)/τ − log Z is off by a few ε32·R (the subtraction, the product by
 * 1/τ, the f32 sum of V exponentials), so logp, entropy and the loss get LOSS_TOL·(1 + R)
 * absolute (×|w| for the loss), ρ = e^{logp − old} that much relative, and each gradient entry
 * coef·(p − onehot) that much times |coef| (p = e^{log p} carries log p's absolute error as a
 * relative one). LOSS_TOL = 1e-6 ≈ 8 ε32: the sums over V = 50257 terms are tree-reduced (strided
 * per invocation, then a tree), so their error grows slowly with V.
 */
const LOSS_TOL = 1e-6;

// ---------------------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  return seededRandom(seed).uniform;
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function randomArray(rand: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => gaussian(rand) * scale);
}

/** keyMask rows: 'full' (all real), 'left:k' / 'right:k' (k padding positions), 'none' (fully masked). */
function maskFor(patterns: string[], T: number): Uint32Array {
  const mask = new Uint32Array(patterns.length * T);
  patterns.forEach((p, b) => {
    const [kind, count] = p.split(':');
    const k = Number(count ?? 0);
    for (let t = 0; t < T; t++) {
      const real = kind === 'full' || (kind === 'left' && t >= k) || (kind === 'right' && t < T - k);
      mask[b * T + t] = real ? 1 : 0;
    }
  });
  return mask;
}

/** Max over elements of |got − want| / (tol·scale), the scale being max(1, max |want|). */
function worstRatio(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): { ratio: number; maxAbs: number; scale: number } {
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    maxAbs = Number.isNaN(e) ? Infinity : Math.max(maxAbs, e);
  }
  return { ratio: maxAbs / (tol * scale), maxAbs, scale };
}

function hasNaN(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (Number.isNaN(a[i])) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// 1. Float64 references: analytic backward against finite differences.

describe('float64 references: analytic gradients match central finite differences', () => {
  it('attention (causal, key mask: left and right padding, a fully masked sequence, T = 1)', () => {
    const rand = mulberry32(11);
    const cases: { dims: AttentionDims; masks: string[] }[] = [
      { dims: { batch: 2, seq: 5, heads: 2, headDim: 3 }, masks: ['left:2', 'right:2'] },
      { dims: { batch: 3, seq: 4, heads: 1, headDim: 2 }, masks: ['full', 'none', 'left:1'] },
      { dims: { batch: 1, seq: 1, heads: 3, headDim: 1 }, masks: ['full'] },
    ];
    for (const { dims, masks } of cases) {
      const E = dims.heads * dims.headDim;
      const N = dims.batch * dims.seq;
      const qkv = Float64Array.from(randomArray(rand, N * 3 * E, 1));
      const dctx = Float64Array.from(randomArray(rand, N * E, 1));
      const mask = maskFor(masks, dims.seq);
      const objective = (x: Float64Array) => {
        const { ctx } = attentionForwardReference(x, mask, dims);
        let s = 0;
        for (let i = 0; i < ctx.length; i++) s += ctx[i] * dctx[i];
        return s;
      };
      const { probs } = attentionForwardReference(qkv, mask, dims);
      const analytic = attentionBackwardReference(dctx, probs, qkv, dims);
      const fd = new Float64Array(qkv.length);
      for (let i = 0; i < qkv.length; i++) {
        const x = Float64Array.from(qkv);
        x[i] = qkv[i] + FD_STEP;
        const up = objective(x);
        x[i] = qkv[i] - FD_STEP;
        fd[i] = (up - objective(x)) / (2 * FD_STEP);
      }
      const { ratio, maxAbs, scale } = worstRatio(analytic, fd, FD_RTOL);
      expect(ratio, `${JSON.stringify(dims)} ${masks}: max |analytic − fd| ${maxAbs}`).toBeLessThanOrEqual(1);
      console.info(`attention fd ${JSON.stringify(dims)}: max |analytic − fd| / scale = ${maxAbs / scale}`);
      // Padding positions get exactly zero gradient (as query, key and value).
      for (let row = 0; row < N; row++) if (!mask[row]) for (let c = 0; c < 3 * E; c++) expect(analytic[row * 3 * E + c]).toBe(0);
    }
  });

  it('CE and PG losses (τ ≠ 1; PG unclipped, and clipped with ρ inside and outside [1−ε, 1+ε] for both signs of A)', () => {
    const rand = mulberry32(12);
    const V = 7;
    // [ρ wanted, A, w]: which term of min(ρA, clip(ρ)·A) is active is written beside each.
    const pgRows: [number, number, number][] = [
      [1.05, 0.8, 0.5], // inside the range: ρA (gradient flows)
      [1.6, 0.5, 1], //   above, A > 0: clipped term active → zero gradient
      [1.6, -0.7, 1], //  above, A < 0: ρA active
      [0.5, 0.9, 0.3], // below, A > 0: ρA active
      [0.5, -0.4, 1], //  below, A < 0: clipped term active → zero gradient
      [0.9, 1.2, 0], //   weight 0: no loss, no gradient
    ];
    const rows = pgRows.length;
    const logits = Float64Array.from(randomArray(rand, rows * V, 2));
    const targets = Uint32Array.from({ length: rows }, (_, n) => (n * 3) % V);
    const weights = Float64Array.from(pgRows.map((r) => r[2]));
    const advantages = Float64Array.from(pgRows.map((r) => r[1]));
    const temperature = 0.7;
    const oldLogprobs = Float64Array.from(pgRows.map(([rho], n) => logSoftmaxRow(logits, n * V, V, temperature)[targets[n]] - Math.log(rho)));
    const inputs: LossInputs = { logits, targets, weights, oldLogprobs, advantages };
    const zeroRows = new Set([1, 4, 5]);
    for (const [mode, clipEpsilon] of [
      ['ce', 0],
      ['pg', 0],
      ['pg', 0.2],
    ] as [LossMode, number][]) {
      const settings: LossSettings = { rows, vocab: V, mode, temperature, clipEpsilon };
      const total = (z: Float64Array) => lossValuesReference({ ...inputs, logits: z }, settings).reduce((a, b) => a + b, 0);
      const { dlogits, stats } = lossGradReference(inputs, settings);
      const fd = new Float64Array(logits.length);
      for (let i = 0; i < logits.length; i++) {
        const z = Float64Array.from(logits);
        z[i] = logits[i] + FD_STEP;
        const up = total(z);
        z[i] = logits[i] - FD_STEP;
        fd[i] = (up - total(z)) / (2 * FD_STEP);
      }
      const { ratio, maxAbs, scale } = worstRatio(dlogits, fd, FD_RTOL);
      expect(ratio, `${mode} ε = ${clipEpsilon}: max |analytic − fd| ${maxAbs}`).toBeLessThanOrEqual(1);
      console.info(`loss fd ${mode} ε = ${clipEpsilon}: max |analytic − fd| / scale = ${maxAbs / scale}`);
      // The stats' loss is the forward's loss.
      const values = lossValuesReference(inputs, settings);
      for (let n = 0; n < rows; n++) expect(stats[n * 4 + 3]).toBeCloseTo(values[n], 12);
      if (mode === 'pg') {
        for (let n = 0; n < rows - 1; n++) expect(stats[n * 4 + 2]).toBeCloseTo(pgRows[n][0], 12);
        // Where the clipped term is active the gradient is exactly 0 (and so is the fd).
        for (let n = 0; n < rows; n++) {
          const zero = n === 5 || (clipEpsilon > 0 && zeroRows.has(n));
          const rowMax = Math.max(...dlogits.subarray(n * V, (n + 1) * V).map(Math.abs));
          if (zero) expect(rowMax, `row ${n}`).toBe(0);
          else expect(rowMax, `row ${n}`).toBeGreaterThan(1e-3);
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. The WGSL kernels against the references.

interface AttentionCase {
  name: string;
  dims: AttentionDims;
  masks: string[];
  scale?: number;
  workgroupSize?: number;
  tol?: number;
  /** NaN in every padding row of qkv and dctx: nothing there may reach an output. */
  poisonPadding?: boolean;
  /** The matmul path's work buffers from createAttentionWork (else the per-device set). */
  ownWork?: boolean;
  /** The backward without the key mask (the matmul path then reads padding rows as they are). */
  backwardWithoutMask?: boolean;
}

async function runAttention(device: GPUDevice, c: AttentionCase, seed: number, path: AttentionPath) {
  const { dims } = c;
  const E = dims.heads * dims.headDim;
  const N = dims.batch * dims.seq;
  const rand = mulberry32(seed);
  const qkv = randomArray(rand, N * 3 * E, c.scale ?? 1);
  const dctx = randomArray(rand, N * E, 1);
  const mask = maskFor(c.masks, dims.seq);
  if (c.poisonPadding) {
    for (let n = 0; n < N; n++) {
      if (mask[n]) continue;
      qkv.fill(NaN, n * 3 * E, (n + 1) * 3 * E);
      dctx.fill(NaN, n * E, (n + 1) * E);
    }
  }
  const bytes = attentionBufferBytes(dims);
  const buffers = {
    qkv: createStorageBuffer(device, qkv, 'qkv'),
    keyMask: createStorageBuffer(device, mask, 'keyMask'),
    // Outputs start out non-zero, to show that every element is written.
    ctx: createStorageBuffer(device, new Float32Array(N * E).fill(7), 'ctx'),
    probs: createStorageBuffer(device, new Float32Array(bytes.probs / 4).fill(7), 'probs'),
    dctx: createStorageBuffer(device, dctx, 'dctx'),
    dqkv: createStorageBuffer(device, new Float32Array(N * 3 * E).fill(7), 'dqkv'),
  };
  const work = c.ownWork ? createAttentionWork(device, dims, 'test') : undefined;
  await withGpuErrorScope(device, `${c.name} (${path})`, async () => {
    const encoder = device.createCommandEncoder();
    const options = { workgroupSize: c.workgroupSize, path };
    encodeAttentionForward(device, encoder, { ...buffers, work }, dims, options);
    encodeAttentionBackward(device, encoder, { ...buffers, keyMask: c.backwardWithoutMask ? undefined : buffers.keyMask, work }, dims, options);
    device.queue.submit([encoder.finish()]);
  });
  const got = {
    ctx: await readFloat32(device, buffers.ctx, N * E),
    probs: await readFloat32(device, buffers.probs, dims.batch * dims.heads * dims.seq * dims.seq),
    dqkv: await readFloat32(device, buffers.dqkv, N * 3 * E),
  };
  for (const b of [...Object.values(buffers), ...Object.values(work ?? {})]) b.destroy();
  const ref = attentionForwardReference(qkv, mask, dims);
  const want = { ...ref, dqkv: attentionBackwardReference(dctx, ref.probs, qkv, dims) };
  return { got, want, mask, E, N };
}

describe('attention kernels against the float64 reference (real WebGPU adapter)', () => {
  const cases: AttentionCase[] = [
    { name: 'T = 1, H = 1, D = 1', dims: { batch: 1, seq: 1, heads: 1, headDim: 1 }, masks: ['full'] },
    { name: 'T = 5, H = 3, D = 8, left padding', dims: { batch: 2, seq: 5, heads: 3, headDim: 8 }, masks: ['left:2', 'full'] },
    { name: 'T = 17, H = 1, D = 24, right padding + a fully masked sequence + left padding', dims: { batch: 3, seq: 17, heads: 1, headDim: 24 }, masks: ['right:5', 'none', 'left:1'] },
    { name: 'T = 17, H = 3, D = 1', dims: { batch: 2, seq: 17, heads: 3, headDim: 1 }, masks: ['left:16', 'right:3'] },
    { name: 'T = 17, H = 3, D = 24, 4-wide workgroups (D > WG)', dims: { batch: 2, seq: 17, heads: 3, headDim: 24 }, masks: ['left:3', 'right:1'], workgroupSize: 4 },
    { name: 'T = 64, H = 2, D = 64 (GPT-2 head), 256-wide workgroups', dims: { batch: 1, seq: 64, heads: 2, headDim: 64 }, masks: ['left:7'], workgroupSize: 256 },
    { name: 'T = 300, H = 1, D = 80 (the larger T and D buckets), right padding', dims: { batch: 1, seq: 300, heads: 1, headDim: 80 }, masks: ['right:20'] },
    { name: 'T = 5, H = 3, D = 8, 256-wide workgroups', dims: { batch: 2, seq: 5, heads: 3, headDim: 8 }, masks: ['right:2', 'none'], workgroupSize: 256 },
    {
      name: 'T = 17, H = 3, D = 8, saturated scores (|q|, |k| ~ 30)',
      dims: { batch: 2, seq: 17, heads: 3, headDim: 8 },
      masks: ['full', 'left:4'],
      scale: 30,
      tol: ATTENTION_SATURATED_TOL,
    },
    {
      name: 'T = 9, H = 2, D = 4, NaN in every padding row of qkv and dctx, own work buffers',
      dims: { batch: 3, seq: 9, heads: 2, headDim: 4 },
      masks: ['left:3', 'none', 'right:4'],
      poisonPadding: true,
      ownWork: true,
    },
    {
      name: 'T = 64, H = 4, D = 32 (the training bench), backward without the key mask',
      dims: { batch: 2, seq: 64, heads: 4, headDim: 32 },
      masks: ['right:9', 'full'],
      backwardWithoutMask: true,
    },
    { name: 'T = 33, H = 5, D = 12 (odd sizes past the matmul tiles)', dims: { batch: 2, seq: 33, heads: 5, headDim: 12 }, masks: ['left:1', 'right:32'] },
  ];
  for (const path of ['fused', 'matmul'] as const) {
    it(`${path} path: ctx, probs and dqkv within tolerance; padding rows exactly 0; no NaN`, async () => {
      const device = await testDevice();
      const worst: Record<string, number> = {};
      for (const [index, c] of cases.entries()) {
        const name = `${c.name} (${path})`;
        const { got, want, mask, E, N } = await runAttention(device, c, 100 + index, path);
        const tol = c.tol ?? ATTENTION_TOL;
        for (const key of ['ctx', 'probs', 'dqkv'] as const) {
          expect(hasNaN(got[key]), `${name}: NaN in ${key}`).toBe(false);
          const { ratio, maxAbs, scale } = worstRatio(got[key], want[key], tol);
          expect(ratio, `${name}: ${key} max error ${maxAbs} (scale ${scale}, tol ${tol})`).toBeLessThanOrEqual(1);
          const label = `${key}${c.tol ? ' (saturated)' : ''}`;
          worst[label] = Math.max(worst[label] ?? 0, maxAbs / scale);
        }
        for (let row = 0; row < N; row++) {
          if (mask[row]) continue;
          for (let e = 0; e < E; e++) expect(got.ctx[row * E + e]).toBe(0);
          for (let e = 0; e < 3 * E; e++) expect(got.dqkv[row * 3 * E + e]).toBe(0);
        }
        // Zero where the reference is exactly zero (future and masked keys).
        for (let i = 0; i < want.probs.length; i++) if (want.probs[i] === 0 && !c.tol) expect(got.probs[i]).toBe(0);
      }
      console.info(`attention (${path}): max |error| / scale: ${JSON.stringify(worst)}`);
    });
  }

  it('the default path: matmul on CPU adapters, fused on GPUs before a pick; a measured pick; a forced path; an explicit option wins', async () => {
    const device = await testDevice();
    expect(attentionPath(device)).toBe(isCpuDevice(device) ? 'matmul' : 'fused');
    expect(attentionPath(device, { path: 'fused' })).toBe('fused');
    const dims = { batch: 2, seq: 8, heads: 2, headDim: 4 };
    for (const path of ['fused', 'matmul'] as const) expect(await measureAttentionMs(device, dims, path, 1)).toBeGreaterThan(0);
    const picked = await pickAttentionPath(device, { measure: true, dims });
    expect(['fused', 'matmul']).toContain(picked);
    expect(attentionPath(device)).toBe(picked);
    expect(await pickAttentionPath(device)).toBe(picked); // cached
    setAttentionPath(device, 'fused');
    expect(attentionPath(device)).toBe('fused');
    expect(await pickAttentionPath(device)).toBe('fused');
    expect(attentionPath(device, { path: 'matmul' })).toBe('matmul');
    setAttentionPath(device, isCpuDevice(device) ? 'matmul' : 'fused');
  });

  it('rejects shapes beyond the kernel and undersized buffers', async () => {
    const device = await testDevice();
    const small = createStorageBuffer(device, 16, 'small');
    const encoder = device.createCommandEncoder();
    const b = { qkv: small, keyMask: small, ctx: small, probs: small };
    expect(() => encodeAttentionForward(device, encoder, b, { batch: 1, seq: 2048, heads: 1, headDim: 1 })).toThrow(/seq/);
    expect(() => encodeAttentionForward(device, encoder, b, { batch: 1, seq: 4, heads: 1, headDim: 4 })).toThrow(/qkv holds 16 bytes/);
    // The matmul path's work buffers: too small, or one of them also an input or output.
    const dims = { batch: 1, seq: 4, heads: 1, headDim: 2 };
    const bytes = attentionBufferBytes(dims);
    const fit = { qkv: createStorageBuffer(device, bytes.qkv, 'qkv'), keyMask: createStorageBuffer(device, bytes.keyMask, 'mask'), ctx: createStorageBuffer(device, bytes.ctx, 'ctx'), probs: createStorageBuffer(device, bytes.probs, 'probs') };
    const work = createAttentionWork(device, dims);
    expect(() => encodeAttentionForward(device, encoder, { ...fit, work: { ...work, k: small } }, dims, { path: 'matmul' })).toThrow(/work.k holds 16 bytes/);
    expect(() => encodeAttentionForward(device, encoder, { ...fit, work: { ...work, v: fit.ctx } }, dims, { path: 'matmul' })).toThrow(/work.v must not be ctx/);
    expect(() => encodeAttentionForward(device, encoder, { ...fit, work: { ...work, dq: work.q } }, dims, { path: 'matmul' })).toThrow(/work.dq must not be work.q/);
    for (const x of [small, ...Object.values(fit), ...Object.values(work)]) x.destroy();
  });
});

interface LossCase {
  name: string;
  rows: number;
  vocab: number;
  mode: LossMode;
  temperature: number;
  clipEpsilon: number;
  logitScale: number;
  /** Edits the float32 inputs before they are uploaded. */
  edit?: (x: { logits: Float32Array; targets: Uint32Array; weights: Float32Array; old: Float32Array; adv: Float32Array }) => void;
  workgroupSize?: number;
  /** Logits rows [firstRow, rows) only, in a buffer of their own. */
  firstRow?: number;
}

describe('loss gradient kernel against the float64 reference (real WebGPU adapter)', () => {
  const ratioTargets = [1.05, 1.6, 1.6, 0.5, 0.5, 0.9, 1.0, 1.3];
  const advSigns = [0.8, 0.5, -0.7, 0.9, -0.4, 1.2, -0.3, 0.6];
  const cases: LossCase[] = [
    { name: 'V = 7, CE, τ = 1', rows: 6, vocab: 7, mode: 'ce', temperature: 1, clipEpsilon: 0, logitScale: 2 },
    { name: 'V = 7, PG clipped (ε = 0.2), ρ inside and outside the range, τ = 0.7', rows: 8, vocab: 7, mode: 'pg', temperature: 0.7, clipEpsilon: 0.2, logitScale: 2 },
    { name: 'V = 300, PG unclipped, τ = 0.7, 4-wide workgroups', rows: 5, vocab: 300, mode: 'pg', temperature: 0.7, clipEpsilon: 0, logitScale: 3, workgroupSize: 4 },
    { name: 'V = 300, CE, 256-wide workgroups, rows 2..5 of a batch (firstRow)', rows: 6, vocab: 300, mode: 'ce', temperature: 1.3, clipEpsilon: 0, logitScale: 3, workgroupSize: 256, firstRow: 2 },
    {
      name: 'V = 300, CE, −inf logits (an excluded vocabulary) in two rows',
      rows: 3,
      vocab: 300,
      mode: 'ce',
      temperature: 1,
      clipEpsilon: 0,
      logitScale: 2,
      edit: ({ logits, targets }) => {
        targets[0] = 42;
        for (let v = 100; v < 300; v++) logits[v] = -Infinity;
        for (let v = 0; v < 300; v += 2) if (v !== targets[2]) logits[600 + v] = -Infinity;
      },
    },
    { name: 'V = 300, CE, logits of magnitude 1e4', rows: 4, vocab: 300, mode: 'ce', temperature: 1, clipEpsilon: 0, logitScale: 1e4 },
    { name: 'V = 300, PG clipped, logits of magnitude 1e4, τ = 0.7', rows: 8, vocab: 300, mode: 'pg', temperature: 0.7, clipEpsilon: 0.2, logitScale: 1e4 },
    { name: 'V = 50257, CE', rows: 3, vocab: 50257, mode: 'ce', temperature: 1, clipEpsilon: 0, logitScale: 3 },
    { name: 'V = 50257, PG clipped, τ = 0.8', rows: 3, vocab: 50257, mode: 'pg', temperature: 0.8, clipEpsilon: 0.2, logitScale: 3 },
  ];

  it('dlogits and stats within tolerance; weight-0 rows exactly 0; no NaN', async () => {
    const device = await testDevice();
    const worst: Record<string, number> = {};
    for (const [index, c] of cases.entries()) {
      const rand = mulberry32(200 + index);
      const { rows, vocab: V } = c;
      const logits = randomArray(rand, rows * V, c.logitScale);
      const targets = Uint32Array.from({ length: rows }, () => Math.floor(rand() * V));
      const weights = Float32Array.from({ length: rows }, (_, n) => (n === 1 && rows > 3 ? 0 : 0.25 + rand()));
      const adv = Float32Array.from({ length: rows }, (_, n) => advSigns[n % advSigns.length] * (0.5 + rand()));
      const old = new Float32Array(rows);
      c.edit?.({ logits, targets, weights, old, adv });
      // The sampler's log-prob: the current one shifted so that ρ hits the listed values.
      for (let n = 0; n < rows; n++) old[n] = logSoftmaxRow(logits, n * V, V, c.temperature)[targets[n]] - Math.log(ratioTargets[n % ratioTargets.length]);

      const first = c.firstRow ?? 0;
      const chunkRows = rows - first;
      const sentinel = 123.5;
      const buffers = {
        logits: createStorageBuffer(device, logits.subarray(first * V), 'logits'),
        targets: createStorageBuffer(device, targets, 'targets'),
        weights: createStorageBuffer(device, weights, 'weights'),
        oldLogprobs: createStorageBuffer(device, old, 'old'),
        advantages: createStorageBuffer(device, adv, 'adv'),
        dlogits: createStorageBuffer(device, new Float32Array(chunkRows * V).fill(sentinel), 'dlogits'),
        stats: createStorageBuffer(device, new Float32Array(rows * 4).fill(sentinel), 'stats'),
      };
      const shape = { rows: chunkRows, vocab: V, mode: c.mode, temperature: c.temperature, clipEpsilon: c.clipEpsilon, firstRow: first };
      await withGpuErrorScope(device, c.name, async () => {
        const encoder = device.createCommandEncoder();
        encodeLossGrad(device, encoder, c.mode === 'ce' ? { ...buffers, oldLogprobs: undefined, advantages: undefined } : buffers, shape, { workgroupSize: c.workgroupSize });
        device.queue.submit([encoder.finish()]);
      });
      const dlogits = await readFloat32(device, buffers.dlogits, chunkRows * V);
      const stats = await readFloat32(device, buffers.stats, rows * 4);
      for (const b of Object.values(buffers)) b.destroy();

      const settings: LossSettings = { rows, vocab: V, mode: c.mode, temperature: c.temperature, clipEpsilon: c.clipEpsilon };
      const want = lossGradReference({ logits, targets, weights, oldLogprobs: old, advantages: adv }, settings);

      expect(hasNaN(dlogits), `${c.name}: NaN in dlogits`).toBe(false);
      expect(hasNaN(stats), `${c.name}: NaN in stats`).toBe(false);
      for (let n = 0; n < first; n++) for (let f = 0; f < 4; f++) expect(stats[n * 4 + f], `${c.name}: row ${n} is not this call's`).toBe(sentinel);
      for (let n = first; n < rows; n++) {
        const at = `${c.name}, row ${n}`;
        const row = logits.subarray(n * V, (n + 1) * V);
        const got = dlogits.subarray((n - first) * V, (n - first + 1) * V);
        const ref = want.dlogits.subarray(n * V, (n + 1) * V);
        if (weights[n] === 0) {
          expect(Array.from(got).every((g) => g === 0), `${at}: weight 0 but a gradient`).toBe(true);
          expect(Array.from(stats.subarray(n * 4, n * 4 + 4))).toEqual([0, 0, 0, 0]);
          continue;
        }
        let lo = Infinity;
        let hi = -Infinity;
        for (const z of row) if (Number.isFinite(z)) [lo, hi] = [Math.min(lo, z), Math.max(hi, z)];
        const R = (hi - lo) / c.temperature + Math.log(V);
        const tol = LOSS_TOL * (1 + R);
        const [logp, entropy, rho, loss] = want.stats.subarray(n * 4, n * 4 + 4);
        const check = (name: string, g: number, w: number, bound: number) => {
          expect(Math.abs(g - w), `${at}: ${name} = ${g}, want ${w} (bound ${bound})`).toBeLessThanOrEqual(bound);
          worst[name] = Math.max(worst[name] ?? 0, Math.abs(g - w) / bound);
        };
        check('logp (err/bound)', stats[n * 4], logp, tol);
        check('entropy (err/bound)', stats[n * 4 + 1], entropy, tol);
        check('ratio (err/bound)', stats[n * 4 + 2], rho, tol * rho);
        check('loss (err/bound)', stats[n * 4 + 3], loss, tol * Math.abs(weights[n]) * (c.mode === 'ce' ? 1 : Math.abs(adv[n]) * rho));
        const active = c.mode === 'ce' || ref.some((g) => g !== 0);
        const coef = c.mode === 'ce' ? weights[n] / c.temperature : (weights[n] * adv[n] * rho) / c.temperature;
        if (!active) {
          expect(Array.from(got).every((g) => g === 0), `${at}: clipped term active but a gradient`).toBe(true);
          continue;
        }
        let maxErr = 0;
        for (let v = 0; v < V; v++) maxErr = Math.max(maxErr, Math.abs(got[v] - ref[v]));
        check('dlogits (err/bound)', maxErr, 0, tol * Math.abs(coef));
      }
      if (c.mode === 'pg' && c.clipEpsilon > 0) {
        // Both clip outcomes were exercised: some rows with zero gradient, some with a gradient.
        const active = Array.from({ length: rows }, (_, n) => want.dlogits.subarray(n * V, (n + 1) * V).some((g) => g !== 0));
        expect(active.some((a) => a) && active.some((a, n) => !a && weights[n] !== 0)).toBe(true);
      }
    }
    console.info(`loss: worst error / bound: ${JSON.stringify(worst)}`);
  });

  it('a target outside the vocabulary at a counted row gives NaN (loud), an uncounted one nothing', async () => {
    const device = await testDevice();
    const V = 7;
    const buffers = {
      logits: createStorageBuffer(device, new Float32Array(2 * V).fill(0.5), 'logits'),
      targets: createStorageBuffer(device, new Uint32Array([V, V + 3]), 'targets'),
      weights: createStorageBuffer(device, new Float32Array([1, 0]), 'weights'),
      dlogits: createStorageBuffer(device, 2 * V * 4, 'dlogits'),
      stats: createStorageBuffer(device, 2 * 4 * 4, 'stats'),
    };
    const encoder = device.createCommandEncoder();
    encodeLossGrad(device, encoder, buffers, { rows: 2, vocab: V, mode: 'ce', temperature: 1, clipEpsilon: 0 });
    device.queue.submit([encoder.finish()]);
    const dlogits = await readFloat32(device, buffers.dlogits, 2 * V);
    const stats = await readFloat32(device, buffers.stats, 8);
    for (const b of Object.values(buffers)) b.destroy();
    expect(Number.isNaN(stats[0]) && Number.isNaN(stats[3])).toBe(true);
    expect(Array.from(dlogits.subarray(0, V)).every(Number.isNaN)).toBe(true);
    expect(Array.from(dlogits.subarray(V))).toEqual(new Array(V).fill(0));
    expect(Array.from(stats.subarray(4))).toEqual([0, 0, 0, 0]);
  });

  it('ρ overflowing f32 (logp − old = 199 from finite inputs): ρ and the loss say +inf, the gradient stays finite, A = 0 gives 0', async () => {
    const device = await testDevice();
    const V = 7;
    const logits = Float32Array.from({ length: 3 * V }, (_, i) => Math.sin(i));
    const buffers = {
      logits: createStorageBuffer(device, logits, 'logits'),
      targets: createStorageBuffer(device, new Uint32Array([1, 2, 3]), 'targets'),
      weights: createStorageBuffer(device, new Float32Array([1, 1, 1]), 'weights'),
      oldLogprobs: createStorageBuffer(device, new Float32Array([-200, -200, -200]), 'old'),
      // Unclipped term active (A < 0 above the range), clipped term active (A > 0), A = 0.
      advantages: createStorageBuffer(device, new Float32Array([-0.5, 0.5, 0]), 'adv'),
      dlogits: createStorageBuffer(device, 3 * V * 4, 'dlogits'),
      stats: createStorageBuffer(device, 3 * 4 * 4, 'stats'),
    };
    const encoder = device.createCommandEncoder();
    encodeLossGrad(device, encoder, buffers, { rows: 3, vocab: V, mode: 'pg', temperature: 1, clipEpsilon: 0.2 });
    device.queue.submit([encoder.finish()]);
    const dlogits = await readFloat32(device, buffers.dlogits, 3 * V);
    const stats = await readFloat32(device, buffers.stats, 12);
    for (const b of Object.values(buffers)) b.destroy();
    expect(hasNaN(dlogits) || hasNaN(stats)).toBe(false);
    expect([stats[2], stats[3]]).toEqual([Infinity, Infinity]);
    expect(Array.from(dlogits.subarray(0, V)).every(Number.isFinite)).toBe(true);
    expect(Math.max(...dlogits.subarray(0, V).map(Math.abs))).toBeGreaterThan(1e30);
    expect(stats[7]).toBeCloseTo(-1.2 * 0.5, 6); // clipped: −w·(1+ε)·A
    expect(stats[11] === 0).toBe(true); // −w·0 (may be −0)
    expect(Array.from(dlogits.subarray(V)).every((g) => g === 0)).toBe(true);
  });
});
