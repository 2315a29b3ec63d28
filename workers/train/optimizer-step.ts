/**
 * One optimizer step over the accumulated gradients, with the numerics guard and its undo:
 *
 *   per-tensor Σg² → global norm, clip factor, finite flag → per tensor: copy (param, m, v) to
 *   its backup, AdamW (skipped on the GPU when a gradient is NaN/Inf) → LoRA re-merge → Σw² of
 *   the new weights
 *
 * then one read-back (norms and clip state). A skipped step names the tensors whose gradient
 * was not finite; an applied step that made a weight non-finite is undone from the backups.
 */
import { readBuffer, readFloat32 } from '../gpu/buffers';
import {
  createClipBuffer,
  createNormsBuffer,
  decodeClip,
  encodeAdamW,
  encodeClipScale,
  encodeSumSquares,
  nonFiniteMessage,
  nonFiniteTensors,
  type AdamWHyperparameters,
  type NonFiniteTensor,
} from '../kernels/train/optimizer';
import type { TrainTensor } from './train-tensor';

export interface OptimizerStepResult {
  /** False when the update was skipped (non-finite gradient) or undone (non-finite weight). */
  applied: boolean;
  /** Global gradient norm before clipping, and the factor applied. */
  gradNorm: number;
  clipScale: number;
  /** Tensors whose gradient (or, after the update, weight) was NaN/Inf; empty when all is well. */
  badTensors: NonFiniteTensor[];
  /** A sentence for people when the step was skipped or undone. */
  problem?: string;
}

export class OptimizerStep {
  private readonly gradNorms: GPUBuffer;
  private readonly paramNorms: GPUBuffer;
  private readonly clip: GPUBuffer;

  constructor(
    private readonly device: GPUDevice,
    private readonly tensors: readonly TrainTensor[],
    private readonly adamw: AdamWHyperparameters,
  ) {
    this.gradNorms = createNormsBuffer(device, tensors.length, 'gradient norms');
    this.paramNorms = createNormsBuffer(device, tensors.length, 'weight norms');
    this.clip = createClipBuffer(device);
  }

  /**
   * Clips and applies the gradients with learning rate `lr` as AdamW step `step` (counted from
   * 1); `remerge` records what must follow any change of the weights (LoRA's merge).
   */
  async apply(lr: number, step: number, remerge: (encoder: GPUCommandEncoder) => void): Promise<OptimizerStepResult> {
    const d = this.device;
    const encoder = d.createCommandEncoder({ label: 'optimizer step' });
    this.tensors.forEach((t, i) => encodeSumSquares(d, encoder, { input: t.grad, count: t.count, norms: this.gradNorms, slot: i }));
    encodeClipScale(d, encoder, { norms: this.gradNorms, count: this.tensors.length, clip: this.clip, maxNorm: this.adamw.maxGradNorm });
    for (const t of this.tensors) {
      const bytes = t.count * 4;
      encoder.copyBufferToBuffer(t.param, 0, t.backup.param, 0, bytes);
      encoder.copyBufferToBuffer(t.m, 0, t.backup.m, 0, bytes);
      encoder.copyBufferToBuffer(t.v, 0, t.backup.v, 0, bytes);
      encodeAdamW(d, encoder, { param: t.param, grad: t.grad, m: t.m, v: t.v, count: t.count, weightDecay: t.weightDecay }, { clip: this.clip, lr, step, beta1: this.adamw.beta1, beta2: this.adamw.beta2, eps: this.adamw.eps });
    }
    this.tensors.forEach((t, i) => encodeSumSquares(d, encoder, { input: t.param, count: t.count, norms: this.paramNorms, slot: i }));
    remerge(encoder);
    d.queue.submit([encoder.finish()]);
    const names = this.tensors.map((t) => t.name);
    const [gradNorms, paramNorms, clipBytes] = await Promise.all([
      readFloat32(d, this.gradNorms, names.length),
      readFloat32(d, this.paramNorms, names.length),
      readBuffer(d, this.clip, 16),
    ]);
    const clip = decodeClip(clipBytes);
    const result: OptimizerStepResult = { applied: clip.finite, gradNorm: clip.norm, clipScale: clip.scale, badTensors: [] };
    if (!clip.finite) {
      result.badTensors = nonFiniteTensors(gradNorms, names);
      result.problem = `step skipped, weights unchanged: ${nonFiniteMessage(result.badTensors, 'gradient')}`;
      return result;
    }
    const badWeights = nonFiniteTensors(paramNorms, names);
    if (badWeights.length) {
      await this.undo(remerge);
      result.badTensors = badWeights;
      result.applied = false;
      result.problem = `step undone, the last good weights restored: ${nonFiniteMessage(badWeights, 'updated weight')}`;
    }
    return result;
  }

  /** Restores every tensor's weights and moments from the copies taken before the update. */
  private async undo(remerge: (encoder: GPUCommandEncoder) => void): Promise<void> {
    const d = this.device;
    const undo = d.createCommandEncoder({ label: 'undo step' });
    for (const t of this.tensors) {
      const bytes = t.count * 4;
      undo.copyBufferToBuffer(t.backup.param, 0, t.param, 0, bytes);
      undo.copyBufferToBuffer(t.backup.m, 0, t.m, 0, bytes);
      undo.copyBufferToBuffer(t.backup.v, 0, t.v, 0, bytes);
    }
    remerge(undo);
    d.queue.submit([undo.finish()]);
    await d.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    [this.gradNorms, this.paramNorms, this.clip].forEach((b) => b.destroy());
  }
}
