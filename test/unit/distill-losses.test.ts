/**
 * The distillation losses beside opd-sampled / opd-full / sft / rl (distill_loss.wgsl: k3,
 * JSD(β), top-k with a tail bucket):
 *   1. the float64 reference's gradients against central finite differences of its own loss;
 *   2. the reference's JSD, forward and reverse KL against the divergence kernels' reference;
 *   3. the WGSL kernel on the real adapter against the reference over awkward shapes (vocab 7, 50,
 *      1031; masked rows; weights ≠ 1; τ ≠ 1; k ≥ V; a teacher that forbids the whole tail).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../workers/models/gpt2/params';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../../workers/gpu/buffers';
import { encodeDistillLoss, MAX_DISTILL_TOP_K } from '../../workers/kernels/train/distill-loss';
import { referenceDivergences } from '../../workers/kernels/divergence/reference';
import { KNOB_BY_NAME } from '../../workers/contract/knobs';
import { distillLossRow, logSoftmax, teacherTopK, type DistillLossSettings } from '../reference/distill-losses';

/**
 * Finite differences (float64, central, step 1e-5) at O(1) logits: truncation ≈ h²·|f'''| ≈ 1e-10,
 * round-off ≈ ε64·|f|/h ≈ 1e-11; 1e-7 of the largest gradient (and at least 1e-9 absolute)
 * leaves three orders of margin and still catches any wrong term.
 */
const FD_STEP = 1e-5;
const FD_RTOL = 1e-7;
/**
 * The kernel (f32) against float64: the loss relative to |loss| (at least 1e-3), the gradient
 * relative to the size of the terms it is the difference of (the reference's `terms`, at least
 * its largest |element| and 1e-3). Log-softmax of O(3) logits carries a few ε32 (1.2e-7) relative
 * error, the sums over ≤ 1031 terms a random walk of them, log M and the bucket masses a few more.
 * Measured worst: loss 2.3e-6 (SwiftShader) and 3.1e-6 (lavapipe), gradient 1.1e-6 on both;
 * 2e-5 ≈ 170 ε32 leaves a margin of six, while a wrong term (O(1) of the scale) fails by orders
 * of magnitude.
 */
const GPU_RTOL = 2e-5;

const SETTINGS: DistillLossSettings[] = [
  { kind: 'k3', temperature: 1 },
  { kind: 'k3', temperature: 0.7 },
  { kind: 'jsd', temperature: 1, beta: 0.5 },
  { kind: 'jsd', temperature: 1.6, beta: 0.2 },
  { kind: 'jsd', temperature: 0.8, beta: 0 },
  { kind: 'jsd', temperature: 1.3, beta: 1 },
  { kind: 'topk', temperature: 1, topK: 3, direction: 'reverse' },
  { kind: 'topk', temperature: 0.7, topK: 5, direction: 'forward' },
  { kind: 'topk', temperature: 1.5, topK: 16, direction: 'reverse' },
  { kind: 'topk', temperature: 1, topK: MAX_DISTILL_TOP_K, direction: 'forward' },
];
const name = (s: DistillLossSettings) => `${s.kind} τ=${s.temperature}${s.beta !== undefined ? ` β=${s.beta}` : ''}${s.topK ? ` k=${s.topK} ${s.direction}` : ''}`;

function randomRow(rng: ReturnType<typeof seededRandom>, V: number, scale = 2): number[] {
  return Array.from({ length: V }, () => scale * rng.normal());
}

describe('distillation losses: the float64 reference', () => {
  it('gradients equal central finite differences of the loss', () => {
    const rng = seededRandom(11);
    for (const s of SETTINGS) {
      for (const V of [7, 12]) {
        const zs = randomRow(rng, V);
        const zt = randomRow(rng, V);
        const y = Math.floor(rng.uniform() * V);
        const { grad } = distillLossRow(zs, zt, y, s);
        const scale = Math.max(...grad.map(Math.abs));
        for (let v = 0; v < V; v++) {
          const plus = [...zs];
          const minus = [...zs];
          plus[v] += FD_STEP;
          minus[v] -= FD_STEP;
          const fd = (distillLossRow(plus, zt, y, s).loss - distillLossRow(minus, zt, y, s).loss) / (2 * FD_STEP);
          expect(Math.abs(fd - grad[v]), `${name(s)} V=${V} v=${v}`).toBeLessThanOrEqual(FD_RTOL * scale + 1e-9);
        }
        // Softmax gradients sum to zero over the vocabulary.
        expect(Math.abs(grad.reduce((a, b) => a + b, 0))).toBeLessThan(1e-12);
      }
    }
  });

  it('JSD(β), forward and reverse KL agree with the divergence kernels’ reference; top-k with k ≥ V is the full KL', () => {
    const rng = seededRandom(5);
    const V = 9;
    const zs = randomRow(rng, V);
    const zt = randomRow(rng, V);
    for (const [beta, temperature] of [[0.5, 1], [0.3, 0.7], [0, 1.2], [1, 0.9]]) {
      const div = referenceDivergences({ student: Float32Array.from(zs), teacher: Float32Array.from(zt), tokens: new Uint32Array([0]), positions: 1, vocab: V, temperature, beta });
      // The divergence reference reads f32 logits; ours the same values.
      const z32 = { s: Array.from(Float32Array.from(zs)), t: Array.from(Float32Array.from(zt)) };
      const loss = distillLossRow(z32.s, z32.t, 0, { kind: 'jsd', temperature, beta }).loss;
      const want = beta === 0 ? div.fields.forwardKL[0] : beta === 1 ? div.fields.reverseKL[0] : div.fields.jsd[0];
      expect(Math.abs(loss - want), `β=${beta}`).toBeLessThan(1e-12);
      if (beta === 1) {
        // β = 1's gradient is the reverse KL's, which the divergence kernels write for opd-full.
        const { gradient } = referenceDivergences({ student: Float32Array.from(zs), teacher: Float32Array.from(zt), tokens: new Uint32Array([0]), positions: 1, vocab: V, temperature, gradient: true });
        const grad = distillLossRow(z32.s, z32.t, 0, { kind: 'jsd', temperature, beta }).grad;
        grad.forEach((g, v) => expect(Math.abs(g - gradient![v])).toBeLessThan(1e-12));
      }
      for (const direction of ['forward', 'reverse'] as const) {
        const full = distillLossRow(z32.s, z32.t, 0, { kind: 'topk', temperature, topK: V, direction }).loss;
        expect(Math.abs(full - (direction === 'forward' ? div.fields.forwardKL[0] : div.fields.reverseKL[0]))).toBeLessThan(1e-12);
      }
    }
    // Ties go to the smaller id; the top-k bucket masses add up to 1 with the tail.
    expect(teacherTopK([1, 3, 3, 0, 3], 2)).toEqual([1, 2]);
    const lq = logSoftmax(zt, 1);
    expect(teacherTopK(zt, 3).every((id) => lq[id] >= Math.max(...lq.filter((_, v) => !teacherTopK(zt, 3).includes(v))))).toBe(true);
    // The knob's range is the kernel's.
    expect(KNOB_BY_NAME.topK.max).toBe(MAX_DISTILL_TOP_K);
  });
});

describe('distillation losses: the WGSL kernel against the reference', () => {
  it('matches loss and gradient over awkward shapes, masked rows and temperatures', async () => {
    const device = await testDevice();
    const rng = seededRandom(2024);
    let worstLoss = 0;
    let worstGrad = 0;
    const shapes = [
      { rows: 5, V: 7 },
      { rows: 4, V: 50 },
      { rows: 3, V: 1031 },
    ];
    for (const { rows, V } of shapes) {
      const zs = new Float32Array(rows * V);
      const zt = new Float32Array(rows * V);
      for (let i = 0; i < zs.length; i++) {
        zs[i] = 2.5 * rng.normal();
        zt[i] = 2.5 * rng.normal();
      }
      // Row 1 is masked; the last row's teacher forbids every token but its 2 best (an empty tail
      // for top-k: P_T,tail = 0).
      const last = rows - 1;
      const keep = teacherTopK(zt.subarray(last * V, (last + 1) * V), 2);
      for (let v = 0; v < V; v++) if (!keep.includes(v)) zt[last * V + v] = -Infinity;
      const targets = Uint32Array.from({ length: rows }, () => Math.floor(rng.uniform() * V));
      const weights = Float32Array.from({ length: rows }, (_, n) => (n === 1 ? 0 : 0.25 + rng.uniform()));
      const buffers = {
        student: createStorageBuffer(device, zs, 'student'),
        teacher: createStorageBuffer(device, zt, 'teacher'),
        targets: createStorageBuffer(device, targets, 'targets'),
        weights: createStorageBuffer(device, weights, 'weights'),
        dlogits: createStorageBuffer(device, rows * V * 4, 'dlogits'),
        stats: createStorageBuffer(device, rows * 16, 'stats'),
      };
      try {
        for (const s of SETTINGS) {
          // The last row's forbidden tokens make KL(p‖q) infinite: it is only checked where the loss is finite.
          const [grad, stats] = await withGpuErrorScope(device, name(s), async () => {
            const encoder = device.createCommandEncoder();
            encodeDistillLoss(device, encoder, buffers, { rows, vocab: V, kind: s.kind, temperature: s.temperature, beta: s.beta, topK: s.topK, direction: s.direction });
            device.queue.submit([encoder.finish()]);
            return Promise.all([readFloat32(device, buffers.dlogits, rows * V), readFloat32(device, buffers.stats, rows * 4)]);
          });
          for (let n = 0; n < rows; n++) {
            const what = `${name(s)} V=${V} row ${n}`;
            const g = grad.subarray(n * V, (n + 1) * V);
            if (weights[n] === 0) {
              expect(g.every((x) => x === 0) && stats.subarray(n * 4, n * 4 + 4).every((x) => x === 0), what).toBe(true);
              continue;
            }
            const ref = distillLossRow(zs.subarray(n * V, (n + 1) * V), zt.subarray(n * V, (n + 1) * V), targets[n], s);
            const w = weights[n];
            if (!Number.isFinite(ref.loss)) {
              expect(stats[n * 4 + 3], what).toBe(Infinity);
              continue;
            }
            expect(g.every(Number.isFinite), `${what}: finite gradient`).toBe(true);
            const gScale = Math.max(1e-3, w * Math.max(ref.terms, ...ref.grad.map(Math.abs)));
            let err = 0;
            for (let v = 0; v < V; v++) err = Math.max(err, Math.abs(g[v] - w * ref.grad[v]));
            worstGrad = Math.max(worstGrad, err / gScale);
            expect(err, `${what}: gradient`).toBeLessThanOrEqual(GPU_RTOL * gScale);
            const lossErr = Math.abs(stats[n * 4 + 3] - w * ref.loss) / Math.max(1e-3, w * Math.abs(ref.loss));
            worstLoss = Math.max(worstLoss, lossErr);
            expect(lossErr, `${what}: loss ${stats[n * 4 + 3]} vs ${w * ref.loss}`).toBeLessThanOrEqual(GPU_RTOL);
            const lp = logSoftmax(zs.subarray(n * V, (n + 1) * V), s.temperature);
            expect(Math.abs(stats[n * 4] - lp[targets[n]]), `${what}: log p(y)`).toBeLessThan(1e-5);
          }
        }
      } finally {
        Object.values(buffers).forEach((b) => b.destroy());
      }
    }
    console.log(`distill losses on the GPU: worst loss error ${worstLoss.toExponential(2)}, worst gradient error ${worstGrad.toExponential(2)} (relative; tolerance ${GPU_RTOL})`);
  });
});
