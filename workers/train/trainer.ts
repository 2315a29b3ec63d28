/**
 * The student's trainer, for any registered model family: the weights, gradients and AdamW
 * moments live in GPU buffers (weight-store.ts), the family's graph runs forward and backward on
 * our WGSL kernels. One optimizer step is
 *
 *   zero → for each micro-batch: forward → loss gradient w.r.t. logits (loss-gradient.ts)
 *        → backward (accumulate) → optimizer-step.ts: norms, clip, AdamW with the numerics guard,
 *          LoRA re-merge, undo of a step that made a weight non-finite
 *
 * with one read-back per step (norms, clip state, per-row loss statistics). The weight buffers
 * are the ones the sampler's ONNX graph reads (`weightFeeds`), so the next sample uses the new
 * weights with no copy through the CPU.
 *
 * A step's metrics come from its own forward: `divergencesAgainst` runs the forward and the
 * divergence kernels against the teacher's logits in one submit and returns a ForwardPass; the
 * step's first micro-batch, given that pass, runs its loss gradient and backward on the same
 * activations instead of a second forward.
 */
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../gpu/buffers';
import { encodeDivergences, readDivergences, type DivergenceBuffers } from '../kernels/divergence/divergence';
import { topKAgreement, type TopKAgreement } from '../kernels/divergence/agreement';
import { LOSS_STATS } from '../kernels/train/loss';
import { DEFAULT_ADAMW, learningRate, type AdamWHyperparameters, type LrSchedule, type NonFiniteTensor } from '../kernels/train/optimizer';
import type { FamilyConfig, ModelFamily, ModelParams, TrainingGraph } from '../models/family';
import { familyFor } from '../models/registry';
import type { ort } from '../ort/runtime';
import { packBatch, type PackedBatch, type TrainSequence } from './batch';
import { createBatchBuffers, graphBatch, uploadBatch, type BatchBuffers } from './batch-buffers';
import { LossGradient, type Objective } from './loss-gradient';
import type { LoraOptions } from './lora';
import { OptimizerStep } from './optimizer-step';
import { TrainerError } from './trainer-error';
import { WeightStore, type BaseStorage, type TensorState } from './weight-store';

export type { LoraOptions, Objective };
export { TrainerError };

export interface TrainerOptions {
  /** AdamW and clipping; defaults DEFAULT_ADAMW. */
  adamw?: Partial<AdamWHyperparameters>;
  /** Learning-rate schedule; default constant 1e-3, no warm-up. */
  schedule?: Partial<LrSchedule>;
  /**
   * Train rank-r adapters instead of every weight. Their frozen bases are stored in f16 where the
   * device has shader-f16, unless `lora.f16Base` is false.
   */
  lora?: LoraOptions;
  /** Seed of the LoRA A matrices' initialisation. */
  seed?: number;
  /**
   * Decay every trainable tensor (norms, biases, embeddings, LoRA factors) by adamw.weightDecay,
   * as torch.optim.AdamW given all the parameters does; default: linear weights only (weightDecayFor).
   */
  weightDecayEveryTensor?: boolean;
}

/** What one micro-batch contributed, read back after the step. */
export interface MicroBatchStats {
  rows: number;
  scoredRows: number;
  /** Σ_n w_n·loss_n: the objective's value for this micro-batch. */
  loss: number;
  /** Per scored row: log-prob of the target, entropy, ρ (1 for 'ce' and 'kl'), and for 'kl' the exact reverse KL. */
  logprobs: Float32Array;
  entropies: Float32Array;
  ratios: Float32Array;
  reverseKL?: Float32Array;
  /**
   * Per scored row n: the per-token loss ℓ_n, the objective's value being Σ_n w_n·ℓ_n (w_n the
   * row's weight, e.g. 1/N): 'kl' the row's exact reverse KL; 'ce' −log p(y); 'pg'
   * −min(ρA, clip(ρ, 1±ε)·A); 'distill' its kernel's loss before the weight. Read as the stats'
   * loss column (w_n·ℓ_n) over w_n, except for 'kl', whose reverse KL is read as it is.
   */
  tokenLosses: Float32Array;
}

export interface StepReport {
  /** Optimizer steps applied so far (unchanged when this one was skipped). */
  step: number;
  applied: boolean;
  lr: number;
  loss: number;
  /** Global gradient norm before clipping, and the factor applied. */
  gradNorm: number;
  clipScale: number;
  /** Tensors whose gradient (or, after the update, weight) was NaN/Inf; empty when all is well. */
  badTensors: NonFiniteTensor[];
  /** A sentence for people when the step was skipped or undone. */
  problem?: string;
  microBatches: MicroBatchStats[];
  scoredTokens: number;
  meanEntropy: number;
  meanRatio: number;
  ratioStd: number;
}

/** One scored row of a student-against-teacher comparison (divergencesAgainst). */
export interface RowDivergence {
  /** Packed row b·T + t. */
  row: number;
  studentLogprob: number;
  teacherLogprob: number;
  reverseKL: number;
  studentEntropy: number;
  /** With `topK`: the teacher's and the student's mass on the teacher's top-k, and the lists' overlap (kernels/divergence/agreement.ts). */
  topK?: TopKAgreement;
}

/**
 * A forward whose activations are still in the trainer's buffers: valid until the next forward.
 * Given to `accumulate` (or `trainStep`) with the same sequences, it stands for their forward.
 */
export interface ForwardPass {
  readonly id: number;
  readonly packed: PackedBatch;
}

/** The student against a teacher's logits: per scored row, and the forward it ran on. */
export interface StudentDivergences {
  rows: RowDivergence[];
  teacherLogprob(sequence: number, position: number): number;
  forward: ForwardPass;
}

/** A pending micro-batch: its statistics are on the GPU until the step reads them. */
interface PendingMicroBatch {
  packed: PackedBatch;
  stats: GPUBuffer;
  kl?: GPUBuffer;
  objective: Objective['kind'];
}

export class Trainer<C extends FamilyConfig = FamilyConfig> {
  readonly family: ModelFamily<C>;
  private readonly weights: WeightStore;
  private readonly graph: TrainingGraph;
  private readonly optimizer: OptimizerStep;
  private readonly lossGradient: LossGradient;
  private buffers?: BatchBuffers;
  private pending: PendingMicroBatch[] = [];
  /** The divergences' results, kept for the next call with the same top-k (a step's and an evaluation's differ). */
  private metrics = new Map<number, DivergenceBuffers>();
  /** Counts forwards: a ForwardPass is valid while its id is the latest. */
  private forwards = 0;
  private destroyed = false;
  /** Optimizer steps applied so far. */
  step = 0;
  readonly adamw: AdamWHyperparameters;
  readonly schedule: LrSchedule;

  private constructor(
    readonly device: GPUDevice,
    readonly config: C,
    params: ModelParams,
    readonly options: TrainerOptions,
  ) {
    this.family = familyFor(config) as ModelFamily<C>;
    this.adamw = { ...DEFAULT_ADAMW, ...options.adamw };
    this.schedule = { lr: 1e-3, warmupSteps: 0, totalSteps: 1, schedule: 'constant', ...options.schedule };
    this.weights = new WeightStore(device, this.family.paramSpecs(config), params, { lora: options.lora, seed: options.seed ?? 0, weightDecay: this.adamw.weightDecay, decayEveryTensor: options.weightDecayEveryTensor });
    // The options a checkpoint records say how the base was stored, so a run resumed on another
    // adapter keeps it: an f32 base stays f32 where shader-f16 exists, an f16-rounded one stays
    // rounded (f32 buffers holding the same values) where it does not.
    if (options.lora) this.options = { ...options, lora: { ...options.lora, f16Base: this.weights.f16Base } };
    this.optimizer = new OptimizerStep(device, this.weights.tensors, this.adamw);
    this.weights.merge();
    this.graph = this.family.createTrainingGraph(device, config, this.weights);
    this.lossGradient = new LossGradient(device, config.vocabSize);
  }

  /** A trainer on `device` for a model with these weights (copied to the GPU); the family from the registry. */
  static async create<C extends FamilyConfig>(device: GPUDevice, config: C, params: ModelParams, options: TrainerOptions = {}): Promise<Trainer<C>> {
    await familyFor(config).prepareTraining(device);
    return withGpuErrorScope(device, 'creating the trainer', () => new Trainer(device, config, params, options));
  }

  /** Names of the tensors the optimizer updates, in order (model parameters or LoRA factors). */
  get trainableNames(): string[] {
    return this.weights.trainableNames;
  }

  get trainableParameters(): number {
    return this.weights.trainableParameters;
  }

  /** Whether LoRA's frozen bases are stored in f16 (LoRA, shader-f16, not turned off). */
  get f16Base(): boolean {
    return this.weights.f16Base;
  }

  /** Every base weight's buffer: f32 or f16, and its bytes. */
  baseStorage(): BaseStorage[] {
    return this.weights.baseStorage();
  }

  /** The weight the model computes with: W_eff for LoRA-adapted matrices, else the parameter. */
  weightBuffer(name: string): GPUBuffer {
    return this.weights.weight(name);
  }

  /** The live weights as ORT tensors for the sampler's decoder (weights as graph inputs). */
  weightFeeds(): Record<string, ort.Tensor> {
    return this.family.weightFeeds(this.config, this.weights.effectiveBuffers());
  }

  /** The effective weights, copied to the CPU (export, tests). */
  readWeights(): Promise<Map<string, Float32Array>> {
    return this.weights.readWeights();
  }

  // -------------------------------------------------------------------------------------------
  // Micro-batches

  private check(): void {
    if (this.destroyed) throw new TrainerError('this trainer was destroyed');
  }

  /** Packs the sequences, sizes the batch buffers for them and uploads them. */
  private prepare(sequences: readonly TrainSequence[]): { packed: PackedBatch; buffers: BatchBuffers } {
    this.check();
    const packed = packBatch(sequences, this.config.vocabSize, this.config.nPositions);
    const b = this.buffers;
    if (!b || b.batch < packed.batch || b.width !== packed.width) {
      b?.all.forEach((x) => x.destroy());
      this.buffers = createBatchBuffers(this.device, packed.batch, packed.width, this.config.vocabSize);
    }
    uploadBatch(this.device, this.buffers!, packed);
    return { packed, buffers: this.buffers! };
  }

  /** Records the forward; what it returns stands for it until the next one. */
  private forward(encoder: GPUCommandEncoder, buffers: BatchBuffers, packed: PackedBatch): ForwardPass {
    this.graph.forward(encoder, graphBatch(buffers, packed));
    return { id: ++this.forwards, packed };
  }

  private afterSubmit: (() => void)[] = [];

  private async submit(encoder: GPUCommandEncoder): Promise<void> {
    this.device.queue.submit([encoder.finish()]);
    const cleanups = this.afterSubmit;
    this.afterSubmit = [];
    if (cleanups.length) {
      await this.device.queue.onSubmittedWorkDone();
      cleanups.forEach((f) => f());
    }
  }

  /** Whether `forward` is still in the buffers and ran on the same rows as `packed`. */
  private reusable(forward: ForwardPass, packed: PackedBatch): boolean {
    const a = forward.packed;
    const same = (x: Uint32Array, y: Uint32Array) => x.length === y.length && x.every((v, i) => v === y[i]);
    return forward.id === this.forwards && a.batch === packed.batch && a.width === packed.width && same(a.tokens, packed.tokens) && same(a.keyMask, packed.keyMask);
  }

  /**
   * Forward, loss gradient and backward of one micro-batch, adding into the gradients (the first
   * micro-batch of a step overwrites them). Sequences' per-token weights carry the objective's
   * normalisation: e.g. 1/(scored tokens of the whole step) for a per-token mean. Given the
   * ForwardPass of the latest forward over the same sequences (divergencesAgainst), the forward
   * is not run again: the loss gradient and backward use its activations.
   */
  async accumulate(sequences: readonly TrainSequence[], objective: Objective, forward?: ForwardPass): Promise<void> {
    const { packed, buffers } = this.prepare(sequences);
    if (objective.kind === 'pg' && sequences.some((s) => !s.oldLogprobs || !s.advantages)) {
      throw new TrainerError('the policy-gradient objective needs the sampler log-probs and the advantages of every sequence');
    }
    if (forward && !this.reusable(forward, packed)) {
      throw new TrainerError('the forward given to this micro-batch is not the latest forward over the same sequences');
    }
    const first = this.pending.length === 0;
    await withGpuErrorScope(this.device, 'training micro-batch', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'micro-batch' });
      if (!forward) this.forward(encoder, buffers, packed);
      const kl = this.lossGradient.encode(encoder, buffers, packed, objective);
      const cleanup = this.graph.backward(encoder, graphBatch(buffers, packed), first);
      if (cleanup) this.afterSubmit.push(cleanup);
      const stats = createStorageBuffer(this.device, packed.rows * LOSS_STATS.length * 4, 'micro-batch stats');
      encoder.copyBufferToBuffer(buffers.stats, 0, stats, 0, packed.rows * LOSS_STATS.length * 4);
      this.pending.push({ packed, stats, kl, objective: objective.kind });
      await this.submit(encoder);
    });
  }

  /**
   * Log-probs of each row's target under the current weights (temperature τ), for scored rows
   * (weight ≠ 0; other rows 0), with no gradient: what the sampler's log-probs are compared to.
   */
  async logprobs(sequences: readonly TrainSequence[], temperature = 1): Promise<Float32Array> {
    const { packed, buffers } = this.prepare(sequences);
    return withGpuErrorScope(this.device, 'trainer forward', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'forward' });
      this.forward(encoder, buffers, packed);
      this.lossGradient.encodeStats(encoder, buffers, packed, temperature);
      await this.submit(encoder);
      const stats = await readFloat32(this.device, buffers.stats, packed.rows * LOSS_STATS.length);
      return Float32Array.from({ length: packed.rows }, (_, n) => (packed.weights[n] !== 0 ? stats[n * LOSS_STATS.length] : 0));
    });
  }

  /**
   * The current student against a teacher's logits for the same packed rows (f32 [rows, vocab]
   * on the GPU, e.g. ORT's output of forwardLogits over the same sequences): per scored row the
   * divergence kernels' log-probs, exact reverse KL and student entropy, and with `topK` (1..20)
   * how far the two models agree about their k best tokens (the teacher's top-k and the student's
   * own, two more passes over the logits). No gradient; the forward it ran on can serve the next
   * micro-batch over the same sequences (`forward`).
   */
  async divergencesAgainst(
    sequences: readonly TrainSequence[],
    teacherLogits: GPUBuffer,
    options: { temperature?: number; teacherVocab?: number; topK?: number } = {},
  ): Promise<StudentDivergences> {
    const { packed, buffers } = this.prepare(sequences);
    const V = this.config.vocabSize;
    const topK = options.topK ?? 0;
    const { out, forward } = await withGpuErrorScope(this.device, 'student against teacher', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'forward + divergences' });
      const forward = this.forward(encoder, buffers, packed);
      const metrics = encodeDivergences(
        this.device,
        {
          student: buffers.logits, teacher: teacherLogits, studentVocab: V, teacherVocab: options.teacherVocab ?? V, positions: packed.rows, tokens: buffers.targets, mask: buffers.lossMask, temperature: options.temperature ?? 1,
          ...(topK > 0 ? { topK, studentTopK: true } : {}),
        },
        { encoder, reuse: this.metrics.get(topK) },
      );
      this.metrics.set(topK, metrics);
      await this.submit(encoder);
      return { out: await readDivergences(this.device, metrics), forward };
    });
    const f = out.fields;
    const rows: RowDivergence[] = [];
    for (let n = 0; n < packed.rows; n++) {
      if (packed.weights[n] === 0) continue;
      rows.push({
        row: n, studentLogprob: f.studentLogprob[n], teacherLogprob: f.teacherLogprob[n], reverseKL: f.reverseKL[n], studentEntropy: f.studentEntropy[n],
        ...(out.topK ? { topK: topKAgreement(out.topK, n) } : {}),
      });
    }
    return { rows, teacherLogprob: (b, t) => f.teacherLogprob[b * packed.width + t], forward };
  }

  /** Logits of the current weights for packed sequences, [rows, vocab] (tests, evaluation). */
  async logits(sequences: readonly TrainSequence[]): Promise<{ packed: PackedBatch; logits: Float32Array }> {
    const { packed, buffers } = this.prepare(sequences);
    const encoder = this.device.createCommandEncoder({ label: 'forward' });
    this.forward(encoder, buffers, packed);
    await this.submit(encoder);
    return { packed, logits: await readFloat32(this.device, buffers.logits, packed.rows * this.config.vocabSize) };
  }

  /** The accumulated gradients of the trainable tensors (tests). */
  async readGradients(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const t of this.weights.tensors) out.set(t.name, await readFloat32(this.device, t.grad, t.count));
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // The optimizer step

  /**
   * Clips and applies the accumulated gradients (AdamW), then reads the step's numbers back.
   * A NaN/Inf gradient skips the update; a non-finite weight after it is undone from the copy.
   */
  async applyStep(): Promise<StepReport> {
    this.check();
    if (this.pending.length === 0) throw new TrainerError('no gradients to apply: accumulate at least one micro-batch first');
    const lr = learningRate(this.step, this.schedule);
    const result = await this.optimizer.apply(lr, this.step + 1, (encoder) => this.weights.encodeMerge(encoder));
    const microBatches = await this.readPending();
    let { problem } = result;
    const { applied } = result;
    const loss = microBatches.reduce((a, m) => a + m.loss, 0);
    if (!Number.isFinite(loss) && applied) {
      // The loss can be non-finite only with non-finite logits, which would have made gradients
      // non-finite too; say so rather than report a NaN as a number.
      problem = `the loss is ${loss} although every gradient was finite`;
    }
    if (applied) this.step++;
    const scored = microBatches.flatMap((m) => Array.from(m.ratios));
    const entropies = microBatches.flatMap((m) => Array.from(m.entropies));
    const meanRatio = mean(scored);
    return {
      step: this.step, applied, lr, loss, gradNorm: result.gradNorm, clipScale: result.clipScale, badTensors: result.badTensors, problem, microBatches,
      scoredTokens: scored.length,
      meanEntropy: mean(entropies),
      meanRatio,
      ratioStd: Math.sqrt(mean(scored.map((r) => (r - meanRatio) ** 2))),
    };
  }

  /**
   * One optimizer step over micro-batches with one objective. `forward`: the latest forward over
   * the first micro-batch's sequences (divergencesAgainst), which that micro-batch then reuses.
   */
  async trainStep(
    microBatches: readonly (readonly TrainSequence[])[],
    objective: Objective | ((i: number) => Objective),
    options: { forward?: ForwardPass } = {},
  ): Promise<StepReport> {
    for (let i = 0; i < microBatches.length; i++) {
      await this.accumulate(microBatches[i], typeof objective === 'function' ? objective(i) : objective, i === 0 ? options.forward : undefined);
    }
    return this.applyStep();
  }

  private async readPending(): Promise<MicroBatchStats[]> {
    const pending = this.pending;
    this.pending = [];
    const out: MicroBatchStats[] = [];
    const K = LOSS_STATS.length;
    for (const p of pending) {
      const stats = await readFloat32(this.device, p.stats, p.packed.rows * K);
      const kl = p.kl ? await readFloat32(this.device, p.kl, p.packed.rows) : undefined;
      p.stats.destroy();
      p.kl?.destroy();
      const rows = [...p.packed.weights.keys()].filter((n) => p.packed.weights[n] !== 0);
      const loss = kl ? rows.reduce((a, n) => a + p.packed.weights[n] * kl[n], 0) : rows.reduce((a, n) => a + stats[n * K + 3], 0);
      out.push({
        rows: p.packed.rows,
        scoredRows: rows.length,
        loss,
        logprobs: Float32Array.from(rows, (n) => stats[n * K]),
        entropies: Float32Array.from(rows, (n) => stats[n * K + 1]),
        ratios: Float32Array.from(rows, (n) => (p.objective === 'pg' ? stats[n * K + 2] : 1)),
        ...(kl ? { reverseKL: Float32Array.from(rows, (n) => kl[n]) } : {}),
        tokenLosses: Float32Array.from(rows, (n) => (kl ? kl[n] : stats[n * K + 3] / p.packed.weights[n])),
      });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // State for checkpoints

  /** Every tensor a checkpoint needs: base weights, trainable tensors, AdamW moments. */
  async readState(): Promise<{ base: Map<string, Float32Array>; trainable: Map<string, TensorState & { shape: number[] }> }> {
    return { base: await this.weights.readBase(), trainable: await this.weights.readTrainable() };
  }

  /** Restores trainable tensors and moments read by readState (same shapes), and the step count. */
  writeState(trainable: ReadonlyMap<string, TensorState>, step: number): void {
    this.weights.writeTrainable(trainable);
    if (!Number.isInteger(step) || step < 0) throw new TrainerError(`the checkpoint's step ${step} is not a step count`);
    this.step = step;
    this.weights.merge();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.weights.destroy();
    this.graph.destroy();
    this.buffers?.all.forEach((b) => b.destroy());
    this.lossGradient.destroy();
    for (const m of this.metrics.values()) m.destroy();
    for (const p of this.pending) {
      p.stats.destroy();
      p.kl?.destroy();
    }
    this.optimizer.destroy();
  }
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
