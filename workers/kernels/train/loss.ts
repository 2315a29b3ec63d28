/**
 * The token-level training losses and their logit gradients (loss_grad.wgsl), one workgroup per
 * logits row:
 *   'ce'  cross-entropy on the targets (SFT / off-policy distillation);
 *   'pg'  the importance-sampled policy gradient of DESIGN.md (OPD, RL): ρ = π_θ(y)/π_old(y),
 *         loss −w·min(ρA, clip(ρ, 1±ε)·A), A held constant.
 * The per-row weight w carries the mask and the normalisation (e.g. 1/N for counted tokens, 0
 * elsewhere): the total loss is Σ_n stats[n].loss and dlogits is its gradient.
 * Records into the caller's encoder (see gpu/launch.ts). Float64 reference: test/reference/loss.ts.
 */
import { lossTuning } from '../../gpu/tuning';
import { launch } from '../../gpu/launch';
import { withLossPrelude } from './prelude';
import lossGradKernel from './loss_grad.wgsl?raw';

const lossGradWgsl = withLossPrelude(lossGradKernel);

export type LossMode = 'ce' | 'pg';

export interface LossGradBuffers {
  /** [rows, vocab] f32 (read). */
  logits: GPUBuffer;
  /** u32 per row, < vocab wherever the weight is not 0 (read). */
  targets: GPUBuffer;
  /** f32 per row; 0 = no loss at that row (read). */
  weights: GPUBuffer;
  /** f32 per row: the sampler's log-prob of the target (read; 'pg' only, may be absent for 'ce'). */
  oldLogprobs?: GPUBuffer;
  /** f32 per row, A (read; 'pg' only, may be absent for 'ce'). */
  advantages?: GPUBuffer;
  /** [rows, vocab] f32 (overwritten): ∂(Σ loss)/∂logits. Must not be `logits`. */
  dlogits: GPUBuffer;
  /** [·, 4] f32 per row (written): logp(y), entropy of p, ρ (1 for 'ce'), loss. */
  stats: GPUBuffer;
}

export interface LossGradShape {
  /** Rows of logits and dlogits in this call. */
  rows: number;
  vocab: number;
  mode: LossMode;
  /** τ > 0: log-probs are log_softmax(logits/τ). */
  temperature: number;
  /** PPO-style ε ≥ 0 ('pg'); 0 = no clipping. */
  clipEpsilon: number;
  /**
   * Row of the per-row buffers (targets, weights, oldLogprobs, advantages, stats) that logits
   * row 0 belongs to. Default 0. Lets a trainer pass logits in chunks of rows (a [rows, 50257]
   * block must fit one storage binding) while keeping whole-batch per-row buffers.
   */
  firstRow?: number;
}

export interface LossGradOptions {
  /** Invocations per workgroup (rounded down to a power of two ≤ 256); default 64 on CPU adapters, 256 on GPUs. */
  workgroupSize?: number;
}

export const LOSS_MODES: Record<LossMode, number> = { ce: 0, pg: 1 };
/** Columns of the stats rows. */
export const LOSS_STATS = ['logp', 'entropy', 'ratio', 'loss'] as const;

const largestPowerOfTwoAtMost = (n: number): number => 2 ** Math.floor(Math.log2(Math.max(1, n)));

/** A power of two ≤ 256: the option, else 64 on CPU adapters and 256 on GPUs; one pipeline per device whatever the vocabulary. */
export function lossWorkgroupSize(device: GPUDevice, options: LossGradOptions = {}): number {
  const limit = Math.min(256, device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX);
  return largestPowerOfTwoAtMost(Math.min(options.workgroupSize ?? lossTuning(device).workgroupSize, limit));
}

export function encodeLossGrad(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  buffers: LossGradBuffers,
  shape: LossGradShape,
  options: LossGradOptions = {},
): void {
  const what = 'loss gradient';
  const { rows, vocab, mode, temperature, clipEpsilon } = shape;
  const firstRow = shape.firstRow ?? 0;
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`${what}: rows = ${rows} must be a positive integer`);
  if (!Number.isInteger(vocab) || vocab < 1) throw new Error(`${what}: vocab = ${vocab} must be a positive integer`);
  if (!Number.isInteger(firstRow) || firstRow < 0) throw new Error(`${what}: firstRow = ${firstRow} must be a non-negative integer`);
  if (!(mode in LOSS_MODES)) throw new Error(`${what}: mode ${String(mode)} is not 'ce' or 'pg'`);
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`${what}: temperature ${temperature} must be a positive number`);
  if (!(clipEpsilon >= 0) || !Number.isFinite(clipEpsilon)) throw new Error(`${what}: clipEpsilon ${clipEpsilon} must be ≥ 0`);
  if (mode === 'pg' && (!buffers.oldLogprobs || !buffers.advantages)) throw new Error(`${what}: mode 'pg' needs oldLogprobs and advantages`);
  if (buffers.dlogits === buffers.logits) throw new Error(`${what}: dlogits must not be the logits buffer`);

  const logitBytes = rows * vocab * 4;
  const perRow = (firstRow + rows) * 4;
  const need: [string, GPUBuffer | undefined, number][] = [
    ['logits', buffers.logits, logitBytes],
    ['dlogits', buffers.dlogits, logitBytes],
    ['targets', buffers.targets, perRow],
    ['weights', buffers.weights, perRow],
    ['oldLogprobs', buffers.oldLogprobs, perRow],
    ['advantages', buffers.advantages, perRow],
    ['stats', buffers.stats, perRow * 4],
  ];
  for (const [name, buffer, bytes] of need) {
    if (buffer && buffer.size < bytes) throw new Error(`${what}: ${name} holds ${buffer.size} bytes, needs ${bytes}`);
  }
  const maxBinding = Number(device.limits.maxStorageBufferBindingSize);
  for (const [name, buffer] of [['logits', buffers.logits], ['dlogits', buffers.dlogits]] as const) {
    if (buffer.size > maxBinding) {
      throw new Error(`${what}: ${name} (${buffer.size} bytes) exceeds the adapter's storage binding limit (${maxBinding}); pass fewer rows per call (firstRow)`);
    }
  }

  const gridX = Math.min(rows, device.limits.maxComputeWorkgroupsPerDimension);
  launch(device, encoder, {
    code: lossGradWgsl,
    label: `loss_grad ${mode}`,
    constants: { WG: lossWorkgroupSize(device, options) },
    // 'ce' never reads oldLogprobs / advantages: the weights stand in for absent ones.
    buffers: [buffers.logits, buffers.targets, buffers.weights, buffers.oldLogprobs ?? buffers.weights, buffers.advantages ?? buffers.weights, buffers.dlogits, buffers.stats],
    uniforms: [vocab, rows, LOSS_MODES[mode], { f32: 1 / temperature }, { f32: clipEpsilon }, firstRow, gridX],
    workgroups: [gridX, Math.ceil(rows / gridX)],
  });
}
