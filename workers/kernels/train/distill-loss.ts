/**
 * The distillation losses that read the teacher's logits beside the student's, and their
 * gradients w.r.t. the student logits (distill_loss.wgsl, whose header has the exact formulas),
 * one workgroup per logits row:
 *   'k3'    r − 1 − log r with r = q(y)/p(y) at the sampled token y (verl's low_var_kl);
 *   'jsd'   the generalised JSD(β) over the vocabulary (β = 0 forward KL, β = 1 reverse KL);
 *   'topk'  forward or reverse KL over the teacher's top-k tokens and one tail bucket.
 * The per-row weight w carries the mask and the normalisation, as in loss.ts: the total loss is
 * Σ_n stats[n].loss and dlogits is its gradient; stats rows are (log p(y), entropy, 1, loss).
 * Records into the caller's encoder. Float64 reference: test/reference/distill-losses.ts.
 */
import { launch } from '../../gpu/launch';
import { withLossPrelude } from './prelude';
import { lossWorkgroupSize } from './loss';
import distillLossKernel from './distill_loss.wgsl?raw';

const distillLossWgsl = withLossPrelude(distillLossKernel);

export type DistillLossKind = 'k3' | 'jsd' | 'topk';
export const DISTILL_LOSS_MODES: Record<DistillLossKind, number> = { k3: 0, jsd: 1, topk: 2 };
/** The largest k of 'topk' (the kernel's KMAX; the `topK` knob's maximum). */
export const MAX_DISTILL_TOP_K = 64;

export interface DistillLossBuffers {
  /** [rows, vocab] f32 (read). */
  student: GPUBuffer;
  /** The teacher's logits in the same row layout, [rows, vocab] f32 (read). */
  teacher: GPUBuffer;
  /** u32 per row: the sampled token ('k3'; the stats' log p(y) for every kind). */
  targets: GPUBuffer;
  /** f32 per row; 0 = no loss at that row. */
  weights: GPUBuffer;
  /** [rows, vocab] f32 (overwritten). */
  dlogits: GPUBuffer;
  /** [rows, 4] f32 (written). */
  stats: GPUBuffer;
}

export interface DistillLossShape {
  rows: number;
  vocab: number;
  kind: DistillLossKind;
  /** τ > 0, both models' temperature. */
  temperature: number;
  /** 'jsd': β in [0, 1]. */
  beta?: number;
  /** 'topk': k, 1..MAX_DISTILL_TOP_K (k ≥ vocab takes every token, the tail empty). */
  topK?: number;
  /** 'topk': forward KL(P_T‖P_S) or reverse KL(P_S‖P_T). */
  direction?: 'forward' | 'reverse';
}

export function encodeDistillLoss(device: GPUDevice, encoder: GPUCommandEncoder, buffers: DistillLossBuffers, shape: DistillLossShape, options: { workgroupSize?: number } = {}): void {
  const what = 'distillation loss';
  const { rows, vocab, kind, temperature } = shape;
  const beta = shape.beta ?? 0.5;
  const topK = shape.topK ?? 16;
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`${what}: rows = ${rows} must be a positive integer`);
  if (!Number.isInteger(vocab) || vocab < 1) throw new Error(`${what}: vocab = ${vocab} must be a positive integer`);
  if (!(kind in DISTILL_LOSS_MODES)) throw new Error(`${what}: kind ${String(kind)} is not k3, jsd or topk`);
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`${what}: temperature ${temperature} must be a positive number`);
  if (!(beta >= 0 && beta <= 1)) throw new Error(`${what}: JSD β must lie in [0, 1]; got ${beta}`);
  if (!Number.isInteger(topK) || topK < 1 || topK > MAX_DISTILL_TOP_K) throw new Error(`${what}: top-k must be a whole number from 1 to ${MAX_DISTILL_TOP_K}; got ${topK}`);
  if (buffers.dlogits === buffers.student || buffers.dlogits === buffers.teacher) throw new Error(`${what}: dlogits must not be a logits buffer (they are read while it is written)`);
  const logitBytes = rows * vocab * 4;
  const need: [string, GPUBuffer, number][] = [
    ['student logits', buffers.student, logitBytes],
    ['teacher logits', buffers.teacher, logitBytes],
    ['dlogits', buffers.dlogits, logitBytes],
    ['targets', buffers.targets, rows * 4],
    ['weights', buffers.weights, rows * 4],
    ['stats', buffers.stats, rows * 16],
  ];
  for (const [name, buffer, bytes] of need) {
    if (buffer.size < bytes) throw new Error(`${what}: ${name} holds ${buffer.size} bytes, needs ${bytes} (${rows} rows × ${vocab} tokens)`);
  }
  const gridX = Math.min(rows, device.limits.maxComputeWorkgroupsPerDimension);
  launch(device, encoder, {
    code: distillLossWgsl,
    label: `distill_loss ${kind}`,
    constants: { WG: lossWorkgroupSize(device, options) },
    buffers: [buffers.student, buffers.teacher, buffers.targets, buffers.weights, buffers.dlogits, buffers.stats],
    uniforms: [vocab, rows, DISTILL_LOSS_MODES[kind], { f32: 1 / temperature }, { f32: beta }, topK, shape.direction === 'forward' ? 1 : 0, gridX],
    workgroups: [gridX, Math.ceil(rows / gridX)],
  });
}
