/**
 * The objectives' gradients w.r.t. the student's logits, each fed into the same backward:
 *
 *   'ce'  cross-entropy on given tokens (SFT, off-policy distillation);
 *   'pg'  importance-sampled policy gradient with per-token advantages and the sampler's
 *         log-probs, optional PPO clip (OPD with sampled-token KL advantages, and RL);
 *   'kl'  the exact full-vocabulary reverse KL to a teacher whose logits are on the GPU in the
 *         same row layout (its gradient from the divergence kernels, scaled per row by the
 *         row's weight);
 *   'distill'  the distillation losses that read the teacher's logits in the same row layout
 *         (kernels/train/distill-loss.ts): k3 at the sampled token, JSD(β) over the vocabulary,
 *         and top-k KL with a tail bucket (forward or reverse).
 *
 * Each writes dlogits and the per-row statistics (log-prob of the target, entropy, ρ, loss).
 */
import { createStorageBuffer } from '../gpu/buffers';
import { launch } from '../gpu/launch';
import { layerTuning } from '../gpu/tuning';
import { workgroupGrid } from '../kernels/train/layers';
import { encodeLossGrad } from '../kernels/train/loss';
import { encodeDivergences, type DivergenceBuffers } from '../kernels/divergence/divergence';
import { encodeDistillLoss, type DistillLossKind } from '../kernels/train/distill-loss';
import rowScaleWgsl from '../kernels/train/row_scale.wgsl?raw';
import type { BatchBuffers } from './batch-buffers';
import type { PackedBatch } from './batch';

export type Objective =
  | { kind: 'ce'; temperature?: number }
  | { kind: 'pg'; temperature?: number; clipEpsilon?: number }
  | {
      kind: 'kl';
      temperature?: number;
      /** The teacher's logits for the same packed rows, f32 [rows, vocab] on the GPU. */
      teacherLogits: GPUBuffer;
      teacherVocab?: number;
    }
  | {
      kind: 'distill';
      loss: DistillLossKind;
      temperature?: number;
      /** The teacher's logits for the same packed rows, f32 [rows, vocab] on the GPU (the student's vocabulary). */
      teacherLogits: GPUBuffer;
      teacherVocab?: number;
      /** 'jsd': β in [0, 1]. */
      beta?: number;
      /** 'topk': k and the KL's direction. */
      topK?: number;
      direction?: 'forward' | 'reverse';
    };

export class LossGradient {
  private divergence?: DivergenceBuffers;

  constructor(
    private readonly device: GPUDevice,
    private readonly vocab: number,
  ) {}

  /**
   * Records the objective's gradient into b.dlogits and its per-row statistics into b.stats;
   * for 'kl', also a copy of each row's exact reverse KL (returned; the caller frees it).
   */
  encode(encoder: GPUCommandEncoder, b: BatchBuffers, p: PackedBatch, objective: Objective): GPUBuffer | undefined {
    const V = this.vocab;
    const d = this.device;
    const temperature = objective.temperature ?? 1;
    if (objective.kind === 'kl') {
      // Stats (log-prob, entropy) from the CE pass with zero weight … then the exact KL gradient.
      encodeLossGrad(d, encoder, { logits: b.logits, targets: b.targets, weights: b.weights, dlogits: b.dlogits, stats: b.stats }, { rows: p.rows, vocab: V, mode: 'ce', temperature, clipEpsilon: 0 });
      this.divergence = encodeDivergences(
        d,
        { student: b.logits, teacher: objective.teacherLogits, studentVocab: V, teacherVocab: objective.teacherVocab ?? V, positions: p.rows, tokens: b.targets, mask: b.lossMask, temperature, gradient: b.dlogits },
        { encoder, reuse: this.divergence },
      );
      const [x, y] = workgroupGrid(d, Math.ceil((p.rows * V) / layerTuning(d).workgroupSize));
      launch(d, encoder, { code: rowScaleWgsl, label: 'row_scale', constants: { WG: layerTuning(d).workgroupSize }, buffers: [b.dlogits, b.weights], uniforms: [p.rows, V], workgroups: [x, y] });
      const kl = createStorageBuffer(d, p.rows * 4, 'reverse KL per row');
      const field = this.divergence.field('reverseKL');
      encoder.copyBufferToBuffer(field.buffer, field.offset ?? 0, kl, 0, p.rows * 4);
      return kl;
    }
    if (objective.kind === 'distill') {
      const teacherVocab = objective.teacherVocab ?? V;
      if (teacherVocab !== V) throw new Error(`the teacher's vocabulary has ${teacherVocab} tokens and the student's ${V}: the ${objective.loss} loss needs one token space, so both models must share a tokenizer`);
      encodeDistillLoss(
        d,
        encoder,
        { student: b.logits, teacher: objective.teacherLogits, targets: b.targets, weights: b.weights, dlogits: b.dlogits, stats: b.stats },
        { rows: p.rows, vocab: V, kind: objective.loss, temperature, beta: objective.beta, topK: objective.topK, direction: objective.direction },
      );
      return undefined;
    }
    encodeLossGrad(
      d,
      encoder,
      { logits: b.logits, targets: b.targets, weights: b.weights, oldLogprobs: b.oldLogprobs, advantages: b.advantages, dlogits: b.dlogits, stats: b.stats },
      { rows: p.rows, vocab: V, mode: objective.kind, temperature, clipEpsilon: objective.kind === 'pg' ? (objective.clipEpsilon ?? 0) : 0 },
    );
    return undefined;
  }

  /** Records the CE pass alone (no weight): per-row log-prob of the target and entropy. */
  encodeStats(encoder: GPUCommandEncoder, b: BatchBuffers, p: PackedBatch, temperature: number): void {
    encodeLossGrad(this.device, encoder, { logits: b.logits, targets: b.targets, weights: b.weights, dlogits: b.dlogits, stats: b.stats }, { rows: p.rows, vocab: this.vocab, mode: 'ce', temperature, clipEpsilon: 0 });
  }

  destroy(): void {
    this.divergence?.destroy();
  }
}
