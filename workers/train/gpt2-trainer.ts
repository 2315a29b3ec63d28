/**
 * The student's trainer: a GPT-2 family model whose weights, gradients and AdamW moments live in
 * GPU buffers, trained by our WGSL kernels (workers/kernels/train/). One optimizer step is
 *
 *   zero → for each micro-batch: forward → loss gradient w.r.t. logits → backward (accumulate)
 *        → per-tensor Σg² → global norm, clip factor, finite flag → AdamW (skipped on the GPU
 *          when a gradient is NaN/Inf) → LoRA re-merge → Σw² of the new weights (guard)
 *
 * with one read-back per step (norms, clip state, per-row loss statistics). The weight buffers
 * are the ones the sampler's ONNX graph reads (`weightFeeds`), so the next sample uses the new
 * weights with no copy through the CPU.
 *
 * Objectives, each a gradient w.r.t. the student's logits fed into the same backward:
 *   'ce'  cross-entropy on given tokens (SFT, off-policy distillation);
 *   'pg'  importance-sampled policy gradient with per-token advantages and the sampler's
 *         log-probs, optional PPO clip (OPD with sampled-token KL advantages, and RL);
 *   'kl'  the exact full-vocabulary reverse KL to a teacher whose logits are on the GPU in the
 *         same row layout (its gradient from the divergence kernels).
 *
 * LoRA (optional): rank-r adapters on every attention and MLP matrix; the base weights are frozen
 * and the sampler reads W_eff = W + (α/r)·A·B, re-merged after every step.
 *
 * Numerics guard: a NaN/Inf gradient skips the update on the GPU (weights and moments untouched)
 * and the step reports which tensors went bad; weights that became non-finite after an update are
 * restored from the copy taken before it. Nothing is ever silently ruined.
 */
import { createStorageBuffer, readBuffer, readFloat32, withGpuErrorScope, writeBuffer } from '../gpu/buffers';
import { headDim, type Gpt2Config } from '../models/gpt2/config';
import { gpt2ParamSpecs, numel, seededRandom, type Gpt2ParamSpec, type Gpt2Params } from '../models/gpt2/params';
import { gpt2WeightFeedsFromGpu } from '../models/gpt2/decoder-session';
import type { ort } from '../ort/runtime';
import { encodeMatmul, encodeColumnSum, pickMatmulVariant } from '../kernels/train/matmul';
import {
  createEmbeddingBackward,
  encodeEmbeddingForward,
  encodeGeluBackward,
  encodeGeluForward,
  encodeLayerNormBackward,
  encodeLayerNormForward,
  encodeLayerNormParamGrad,
  layerTuning,
  workgroupGrid,
} from '../kernels/train/layers';
import {
  attentionPath,
  attentionScratchBytes,
  createAttentionWork,
  encodeAttentionBackward,
  encodeAttentionForward,
  pickAttentionPath,
  type AttentionWork,
} from '../kernels/train/attention';
import { encodeLossGrad, LOSS_STATS } from '../kernels/train/loss';
import {
  createClipBuffer,
  createNormsBuffer,
  decodeClip,
  DEFAULT_ADAMW,
  encodeAdamW,
  encodeClipScale,
  encodeLoraGrad,
  encodeLoraMerge,
  encodeSumSquares,
  learningRate,
  loraScale,
  nonFiniteMessage,
  nonFiniteTensors,
  weightDecayFor,
  type AdamWHyperparameters,
  type LrSchedule,
  type NonFiniteTensor,
} from '../kernels/train/optimizer';
import { encodeDivergences, readDivergences, type DivergenceBuffers } from '../kernels/divergence/divergence';
import { launch } from '../kernels/train/launch';
import rowScaleWgsl from '../kernels/train/row_scale.wgsl?raw';
import { packBatch, type PackedBatch, type TrainSequence } from './batch';

export interface LoraOptions {
  rank: number;
  /** W_eff = W + (alpha/rank)·A·B. Default: alpha = rank (scale 1). */
  alpha?: number;
}

export interface TrainerOptions {
  /** AdamW and clipping; defaults DEFAULT_ADAMW. */
  adamw?: Partial<AdamWHyperparameters>;
  /** Learning-rate schedule; default constant 1e-3, no warm-up. */
  schedule?: Partial<LrSchedule>;
  /** Train rank-r adapters instead of every weight. */
  lora?: LoraOptions;
  /** Seed of the LoRA A matrices' initialisation. */
  seed?: number;
}

export type Objective =
  | { kind: 'ce'; temperature?: number }
  | { kind: 'pg'; temperature?: number; clipEpsilon?: number }
  | {
      kind: 'kl';
      temperature?: number;
      /** The teacher's logits for the same packed rows, f32 [rows, vocab] on the GPU. */
      teacherLogits: GPUBuffer;
      teacherVocab?: number;
    };

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
}

export class TrainerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainerError';
  }
}

/** The linear weights LoRA adapts: every attention and MLP matrix. */
const LORA_TARGET = /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/** One tensor the optimizer updates: a model parameter, or a LoRA factor. */
interface TrainTensor {
  name: string;
  shape: number[];
  count: number;
  param: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  weightDecay: number;
  /** Copies taken before each update, restored when the update produced a non-finite weight. */
  backup: { param: GPUBuffer; m: GPUBuffer; v: GPUBuffer };
}

interface LoraAdapter {
  weight: string;
  inDim: number;
  outDim: number;
  a: TrainTensor;
  b: TrainTensor;
  merged: GPUBuffer;
}

interface LayerActivations {
  x: GPUBuffer;
  ln1: GPUBuffer;
  mean1: GPUBuffer;
  rstd1: GPUBuffer;
  qkv: GPUBuffer;
  probs: GPUBuffer;
  ctx: GPUBuffer;
  y: GPUBuffer;
  ln2: GPUBuffer;
  mean2: GPUBuffer;
  rstd2: GPUBuffer;
  h: GPUBuffer;
  g: GPUBuffer;
}

/** Activation and scratch buffers for micro-batches of up to `batch` × `width` rows. */
interface Workspace {
  batch: number;
  width: number;
  rows: number;
  layers: LayerActivations[];
  xFinal: GPUBuffer;
  lnf: GPUBuffer;
  meanf: GPUBuffer;
  rstdf: GPUBuffer;
  logits: GPUBuffer;
  dlogits: GPUBuffer;
  stats: GPUBuffer;
  dcur: GPUBuffer;
  dln: GPUBuffer;
  dctx: GPUBuffer;
  dqkv: GPUBuffer;
  dg: GPUBuffer;
  dh: GPUBuffer;
  attnScratch: GPUBuffer;
  /** The per-head matrices of attention's matmul path (absent where the device uses the fused kernels). */
  attnWork?: AttentionWork;
  tokens: GPUBuffer;
  positions: GPUBuffer;
  keyMask: GPUBuffer;
  targets: GPUBuffer;
  lossMask: GPUBuffer;
  weights: GPUBuffer;
  oldLogprobs: GPUBuffer;
  advantages: GPUBuffer;
  all: GPUBuffer[];
}

/** A pending micro-batch: its statistics are on the GPU until the step reads them. */
interface PendingMicroBatch {
  packed: PackedBatch;
  stats: GPUBuffer;
  kl?: GPUBuffer;
  objective: Objective['kind'];
}

export class Gpt2Trainer {
  private readonly base = new Map<string, GPUBuffer>();
  private readonly tensors: TrainTensor[] = [];
  private readonly byName = new Map<string, TrainTensor>();
  private readonly lora = new Map<string, LoraAdapter>();
  private readonly specs: Gpt2ParamSpec[];
  /** Each parameter's shape by name (looked up on every linear layer of every pass). */
  private readonly shapes: Map<string, readonly number[]>;
  private workspace?: Workspace;
  private loraGradScratch?: GPUBuffer;
  private readonly gradNorms: GPUBuffer;
  private readonly paramNorms: GPUBuffer;
  private readonly clip: GPUBuffer;
  private pending: PendingMicroBatch[] = [];
  private divergence?: DivergenceBuffers;
  private metrics?: DivergenceBuffers;
  private destroyed = false;
  /** Optimizer steps applied so far. */
  step = 0;
  readonly adamw: AdamWHyperparameters;
  readonly schedule: LrSchedule;

  private constructor(
    readonly device: GPUDevice,
    readonly config: Gpt2Config,
    params: Gpt2Params,
    readonly options: TrainerOptions,
  ) {
    this.adamw = { ...DEFAULT_ADAMW, ...options.adamw };
    this.schedule = { lr: 1e-3, warmupSteps: 0, totalSteps: 1, schedule: 'constant', ...options.schedule };
    this.specs = gpt2ParamSpecs(config);
    this.shapes = new Map(this.specs.map((s) => [s.name, s.shape]));
    for (const spec of this.specs) {
      const data = params.get(spec.name);
      if (!data) throw new TrainerError(`the parameter ${spec.name} is missing`);
      if (data.length !== numel(spec.shape)) throw new TrainerError(`${spec.name} has ${data.length} values, expected ${numel(spec.shape)} for shape [${spec.shape.join(', ')}]`);
      this.base.set(spec.name, createStorageBuffer(device, data, spec.name));
    }
    const lora = options.lora;
    if (lora) {
      if (!Number.isInteger(lora.rank) || lora.rank < 1) throw new TrainerError(`LoRA rank ${lora.rank} must be a positive integer`);
      const rng = seededRandom(options.seed ?? 0).normal;
      for (const spec of this.specs.filter((s) => LORA_TARGET.test(s.name))) {
        const [inDim, outDim] = spec.shape;
        // A ~ N(0, 1/in) (kaiming-like), B = 0: W_eff = W at the start.
        const a = new Float32Array(inDim * lora.rank).map(() => rng() / Math.sqrt(inDim));
        const adapter: LoraAdapter = {
          weight: spec.name, inDim, outDim,
          a: this.addTensor(`${spec.name}.lora_A`, [inDim, lora.rank], a, 0),
          b: this.addTensor(`${spec.name}.lora_B`, [lora.rank, outDim], new Float32Array(lora.rank * outDim), 0),
          merged: createStorageBuffer(device, inDim * outDim * 4, `${spec.name} (merged)`),
        };
        this.lora.set(spec.name, adapter);
      }
    } else {
      for (const spec of this.specs) this.addTensor(spec.name, spec.shape, null, weightDecayFor(spec.role, this.adamw.weightDecay));
    }
    this.gradNorms = createNormsBuffer(device, this.tensors.length, 'gradient norms');
    this.paramNorms = createNormsBuffer(device, this.tensors.length, 'weight norms');
    this.clip = createClipBuffer(device);
    if (lora) this.mergeLora();
  }

  /** A trainer on `device` for a model with these weights (copied to the GPU). */
  static async create(device: GPUDevice, config: Gpt2Config, params: Gpt2Params, options: TrainerOptions = {}): Promise<Gpt2Trainer> {
    await pickMatmulVariant(device);
    // After the matmul variant: attention's matmul path runs on it.
    await pickAttentionPath(device);
    return withGpuErrorScope(device, 'creating the trainer', () => new Gpt2Trainer(device, config, params, options));
  }

  private addTensor(name: string, shape: number[], data: Float32Array | null, weightDecay: number): TrainTensor {
    const count = numel(shape);
    const bytes = count * 4;
    const param = data ? createStorageBuffer(this.device, data, name) : this.base.get(name)!;
    const t: TrainTensor = {
      name, shape, count, param, weightDecay,
      grad: createStorageBuffer(this.device, bytes, `${name} grad`),
      m: createStorageBuffer(this.device, bytes, `${name} adam m`),
      v: createStorageBuffer(this.device, bytes, `${name} adam v`),
      backup: {
        param: createStorageBuffer(this.device, bytes, `${name} backup`),
        m: createStorageBuffer(this.device, bytes, `${name} adam m backup`),
        v: createStorageBuffer(this.device, bytes, `${name} adam v backup`),
      },
    };
    this.tensors.push(t);
    this.byName.set(name, t);
    return t;
  }

  /** Names of the tensors the optimizer updates, in order (model parameters or LoRA factors). */
  get trainableNames(): string[] {
    return this.tensors.map((t) => t.name);
  }

  get trainableParameters(): number {
    return this.tensors.reduce((a, t) => a + t.count, 0);
  }

  /** The weight the model computes with: W_eff for LoRA-adapted matrices, else the parameter. */
  weightBuffer(name: string): GPUBuffer {
    const buffer = this.lora.get(name)?.merged ?? this.base.get(name);
    if (!buffer) throw new TrainerError(`no weight named ${name}`);
    return buffer;
  }

  /** The live weights as ORT tensors for the sampler's decoder (weights as graph inputs). */
  weightFeeds(): Record<string, ort.Tensor> {
    return gpt2WeightFeedsFromGpu(this.config, new Map(this.specs.map((s) => [s.name, this.weightBuffer(s.name)])));
  }

  /** The effective weights, copied to the CPU (export, tests). */
  async readWeights(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const spec of this.specs) out.set(spec.name, await readFloat32(this.device, this.weightBuffer(spec.name), numel(spec.shape)));
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Buffers

  private ensureWorkspace(batch: number, width: number): Workspace {
    const w = this.workspace;
    if (w && w.batch >= batch && w.width === width) return w;
    w?.all.forEach((b) => b.destroy());
    const { nEmbd: E, nInner: I, nHead: H, vocabSize: V, nLayer: L } = this.config;
    const N = batch * width;
    const all: GPUBuffer[] = [];
    const f32 = (count: number, label: string) => {
      const b = createStorageBuffer(this.device, Math.max(1, count) * 4, label);
      all.push(b);
      return b;
    };
    const layers: LayerActivations[] = [];
    for (let l = 0; l < L; l++) {
      layers.push({
        x: f32(N * E, `h${l} x`), ln1: f32(N * E, `h${l} ln1`), mean1: f32(N, `h${l} mean1`), rstd1: f32(N, `h${l} rstd1`),
        qkv: f32(N * 3 * E, `h${l} qkv`), probs: f32(batch * H * width * width, `h${l} probs`), ctx: f32(N * E, `h${l} ctx`),
        y: f32(N * E, `h${l} y`), ln2: f32(N * E, `h${l} ln2`), mean2: f32(N, `h${l} mean2`), rstd2: f32(N, `h${l} rstd2`),
        h: f32(N * I, `h${l} fc`), g: f32(N * I, `h${l} gelu`),
      });
    }
    const attnDims = { batch, seq: width, heads: H, headDim: headDim(this.config) };
    const attnScratch = createStorageBuffer(this.device, Math.max(16, attentionScratchBytes(attnDims)), 'attention scratch');
    all.push(attnScratch);
    const attnWork = attentionPath(this.device) === 'matmul' ? createAttentionWork(this.device, attnDims) : undefined;
    if (attnWork) all.push(...Object.values(attnWork));
    this.workspace = {
      batch, width, rows: N, layers,
      xFinal: f32(N * E, 'x final'), lnf: f32(N * E, 'ln_f'), meanf: f32(N, 'ln_f mean'), rstdf: f32(N, 'ln_f rstd'),
      logits: f32(N * V, 'logits'), dlogits: f32(N * V, 'dlogits'), stats: f32(N * LOSS_STATS.length, 'loss stats'),
      dcur: f32(N * E, 'd residual'), dln: f32(N * E, 'd ln'), dctx: f32(N * E, 'd ctx'), dqkv: f32(N * 3 * E, 'd qkv'),
      dg: f32(N * I, 'd gelu'), dh: f32(N * I, 'd fc'), attnScratch, attnWork,
      tokens: f32(N, 'tokens'), positions: f32(N, 'positions'), keyMask: f32(N, 'key mask'), targets: f32(N, 'targets'),
      lossMask: f32(N, 'loss mask'), weights: f32(N, 'weights'), oldLogprobs: f32(N, 'old logprobs'), advantages: f32(N, 'advantages'),
      all,
    };
    return this.workspace;
  }

  private upload(ws: Workspace, p: PackedBatch): void {
    const q = this.device;
    writeBuffer(q, ws.tokens, p.tokens);
    writeBuffer(q, ws.positions, p.positions);
    writeBuffer(q, ws.keyMask, p.keyMask);
    writeBuffer(q, ws.targets, p.targets);
    writeBuffer(q, ws.lossMask, Uint32Array.from(p.weights, (w) => (w !== 0 ? 1 : 0)));
    writeBuffer(q, ws.weights, p.weights);
    writeBuffer(q, ws.oldLogprobs, p.oldLogprobs);
    writeBuffer(q, ws.advantages, p.advantages);
  }

  // -------------------------------------------------------------------------------------------
  // Forward and backward

  private linear(encoder: GPUCommandEncoder, x: GPUBuffer, name: string, out: GPUBuffer, rows: number, residual?: GPUBuffer): void {
    const [inDim, outDim] = this.shapes.get(`${name}.weight`)!;
    if (residual) encoder.copyBufferToBuffer(residual, 0, out, 0, rows * outDim * 4);
    encodeMatmul(this.device, encoder, { a: x, b: this.weightBuffer(`${name}.weight`), c: out, bias: this.base.get(`${name}.bias`) }, { m: rows, n: outDim, k: inDim, accumulate: residual !== undefined });
  }

  private forward(encoder: GPUCommandEncoder, ws: Workspace, p: PackedBatch): void {
    const { nEmbd: E, nInner: I, nHead: H, vocabSize: V, nPositions, layerNormEpsilon: eps } = this.config;
    const d = this.device;
    const N = p.rows;
    const dims = { batch: p.batch, seq: p.width, heads: H, headDim: headDim(this.config) };
    encodeEmbeddingForward(d, encoder, { tokens: ws.tokens, positions: ws.positions, wte: this.base.get('transformer.wte.weight')!, wpe: this.base.get('transformer.wpe.weight')!, x: ws.layers[0]?.x ?? ws.xFinal }, { rows: N, width: E, vocabSize: V, nPositions });
    ws.layers.forEach((a, l) => {
      const pre = `transformer.h.${l}`;
      encodeLayerNormForward(d, encoder, { x: a.x, gamma: this.base.get(`${pre}.ln_1.weight`)!, beta: this.base.get(`${pre}.ln_1.bias`)!, y: a.ln1, mean: a.mean1, rstd: a.rstd1 }, { rows: N, width: E, eps });
      this.linear(encoder, a.ln1, `${pre}.attn.c_attn`, a.qkv, N);
      encodeAttentionForward(d, encoder, { qkv: a.qkv, keyMask: ws.keyMask, ctx: a.ctx, probs: a.probs, work: ws.attnWork }, dims);
      this.linear(encoder, a.ctx, `${pre}.attn.c_proj`, a.y, N, a.x);
      encodeLayerNormForward(d, encoder, { x: a.y, gamma: this.base.get(`${pre}.ln_2.weight`)!, beta: this.base.get(`${pre}.ln_2.bias`)!, y: a.ln2, mean: a.mean2, rstd: a.rstd2 }, { rows: N, width: E, eps });
      this.linear(encoder, a.ln2, `${pre}.mlp.c_fc`, a.h, N);
      encodeGeluForward(d, encoder, { x: a.h, y: a.g }, N * I);
      const next = ws.layers[l + 1]?.x ?? ws.xFinal;
      this.linear(encoder, a.g, `${pre}.mlp.c_proj`, next, N, a.y);
    });
    encodeLayerNormForward(d, encoder, { x: ws.xFinal, gamma: this.base.get('transformer.ln_f.weight')!, beta: this.base.get('transformer.ln_f.bias')!, y: ws.lnf, mean: ws.meanf, rstd: ws.rstdf }, { rows: N, width: E, eps });
    // Tied LM head: logits = ln_f · wteᵀ.
    encodeMatmul(d, encoder, { a: ws.lnf, b: this.base.get('transformer.wte.weight')!, c: ws.logits }, { m: N, n: V, k: E, transB: true });
  }

  /**
   * Where the gradient of parameter `name` goes this micro-batch, and whether to add to it:
   * the tensor's own gradient (accumulating after the first micro-batch), LoRA's scratch dW_eff
   * (always overwritten, then turned into dA, dB), or nowhere (frozen).
   */
  private gradTarget(name: string, first: boolean): { buffer: GPUBuffer; accumulate: boolean } | undefined {
    const own = this.byName.get(name);
    if (own) return { buffer: own.grad, accumulate: !first };
    const adapter = this.lora.get(name);
    if (adapter) return { buffer: this.loraScratch(), accumulate: false };
    return undefined;
  }

  private loraScratch(): GPUBuffer {
    if (!this.loraGradScratch) {
      const largest = Math.max(...[...this.lora.values()].map((a) => a.inDim * a.outDim));
      this.loraGradScratch = createStorageBuffer(this.device, largest * 4, 'LoRA dW_eff');
    }
    return this.loraGradScratch;
  }

  /** After dW_eff of a LoRA-adapted weight was written: dA, dB. */
  private loraBackward(encoder: GPUCommandEncoder, name: string, first: boolean): void {
    const adapter = this.lora.get(name);
    if (!adapter) return;
    const { rank, alpha = rank } = this.options.lora!;
    encodeLoraGrad(this.device, encoder, { inDim: adapter.inDim, outDim: adapter.outDim, rank, scale: loraScale(alpha, rank), dW: this.loraScratch(), a: adapter.a.param, b: adapter.b.param, dA: adapter.a.grad, dB: adapter.b.grad, accumulate: !first });
  }

  /**
   * Backward of y (+)= x·W + b given dy: dW, db (when trainable), and dx = dy·Wᵀ written to
   * `dx` (= or += as asked).
   */
  private linearBackward(encoder: GPUCommandEncoder, name: string, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer | undefined, rows: number, first: boolean): void {
    const [inDim, outDim] = this.shapes.get(`${name}.weight`)!;
    const d = this.device;
    const dW = this.gradTarget(`${name}.weight`, first);
    if (dW) {
      encodeMatmul(d, encoder, { a: x, b: dy, c: dW.buffer }, { m: inDim, n: outDim, k: rows, transA: true, accumulate: dW.accumulate });
      this.loraBackward(encoder, `${name}.weight`, first);
    }
    const db = this.gradTarget(`${name}.bias`, first);
    if (db) encodeColumnSum(d, encoder, { x: dy, out: db.buffer }, { rows, cols: outDim, accumulate: db.accumulate });
    if (dx) encodeMatmul(d, encoder, { a: dy, b: this.weightBuffer(`${name}.weight`), c: dx }, { m: rows, n: inDim, k: outDim, transB: true });
  }

  private layerNormBackward(encoder: GPUCommandEncoder, name: string, x: GPUBuffer, mean: GPUBuffer, rstd: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, accumulateDx: boolean, rows: number, first: boolean): void {
    const E = this.config.nEmbd;
    const d = this.device;
    encodeLayerNormBackward(d, encoder, { dy, x, mean, rstd, gamma: this.base.get(`${name}.weight`)!, dx }, { rows, width: E, accumulate: accumulateDx });
    const dg = this.gradTarget(`${name}.weight`, first);
    const db = this.gradTarget(`${name}.bias`, first);
    if (dg && db) encodeLayerNormParamGrad(d, encoder, { dy, x, mean, rstd, dgamma: dg.buffer, dbeta: db.buffer }, { rows, width: E, accumulate: dg.accumulate });
  }

  private backward(encoder: GPUCommandEncoder, ws: Workspace, p: PackedBatch, first: boolean): void {
    const { nEmbd: E, nInner: I, nHead: H, vocabSize: V, nPositions } = this.config;
    const d = this.device;
    const N = p.rows;
    const dims = { batch: p.batch, seq: p.width, heads: H, headDim: headDim(this.config) };
    const wte = this.base.get('transformer.wte.weight')!;
    // LM head: d ln_f = dlogits·wte; d wte (+)= dlogitsᵀ·ln_f.
    encodeMatmul(d, encoder, { a: ws.dlogits, b: wte, c: ws.dln }, { m: N, n: E, k: V });
    const dwte = this.gradTarget('transformer.wte.weight', first);
    if (dwte) encodeMatmul(d, encoder, { a: ws.dlogits, b: ws.lnf, c: dwte.buffer }, { m: V, n: E, k: N, transA: true, accumulate: dwte.accumulate });
    this.layerNormBackward(encoder, 'transformer.ln_f', ws.xFinal, ws.meanf, ws.rstdf, ws.dln, ws.dcur, false, N, first);
    for (let l = ws.layers.length - 1; l >= 0; l--) {
      const a = ws.layers[l];
      const pre = `transformer.h.${l}`;
      // MLP branch: x_{l+1} = y + c_proj(gelu(c_fc(ln_2(y)))).
      this.linearBackward(encoder, `${pre}.mlp.c_proj`, a.g, ws.dcur, ws.dg, N, first);
      encodeGeluBackward(d, encoder, { x: a.h, dy: ws.dg, dx: ws.dh }, { count: N * I, accumulate: false });
      this.linearBackward(encoder, `${pre}.mlp.c_fc`, a.ln2, ws.dh, ws.dln, N, first);
      this.layerNormBackward(encoder, `${pre}.ln_2`, a.y, a.mean2, a.rstd2, ws.dln, ws.dcur, true, N, first);
      // Attention branch: y = x + c_proj(attention(c_attn(ln_1(x)))).
      this.linearBackward(encoder, `${pre}.attn.c_proj`, a.ctx, ws.dcur, ws.dctx, N, first);
      encodeAttentionBackward(d, encoder, { dctx: ws.dctx, probs: a.probs, qkv: a.qkv, dqkv: ws.dqkv, scratch: ws.attnScratch, keyMask: ws.keyMask, work: ws.attnWork }, dims);
      this.linearBackward(encoder, `${pre}.attn.c_attn`, a.ln1, ws.dqkv, ws.dln, N, first);
      this.layerNormBackward(encoder, `${pre}.ln_1`, a.x, a.mean1, a.rstd1, ws.dln, ws.dcur, true, N, first);
    }
    const dwpe = this.gradTarget('transformer.wpe.weight', first);
    if (dwte || dwpe) {
      if (!dwte || !dwpe) throw new TrainerError('wte and wpe are trained together or not at all');
      if (first) encoder.clearBuffer(dwpe.buffer);
      const embedding = createEmbeddingBackward(d, p.tokens, p.positions, { vocabSize: V, nPositions });
      embedding.encode(encoder, { dx: ws.dcur, dwte: dwte.buffer, dwpe: dwpe.buffer }, E);
      this.afterSubmit.push(() => embedding.destroy());
    }
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

  /** Writes the loss gradient w.r.t. the logits into ws.dlogits and the per-row stats. */
  private lossGradient(encoder: GPUCommandEncoder, ws: Workspace, p: PackedBatch, objective: Objective): GPUBuffer | undefined {
    const V = this.config.vocabSize;
    const temperature = objective.temperature ?? 1;
    if (objective.kind === 'kl') {
      // Stats (log-prob, entropy) from the CE pass with zero weight … then the exact KL gradient.
      encodeLossGrad(this.device, encoder, { logits: ws.logits, targets: ws.targets, weights: ws.weights, dlogits: ws.dlogits, stats: ws.stats }, { rows: p.rows, vocab: V, mode: 'ce', temperature, clipEpsilon: 0 });
      this.divergence = encodeDivergences(
        this.device,
        { student: ws.logits, teacher: objective.teacherLogits, studentVocab: V, teacherVocab: objective.teacherVocab ?? V, positions: p.rows, tokens: ws.targets, mask: ws.lossMask, temperature, gradient: ws.dlogits },
        { encoder, reuse: this.divergence },
      );
      const [x, y] = workgroupGrid(this.device, Math.ceil((p.rows * V) / layerTuning(this.device).workgroupSize));
      launch(this.device, encoder, { code: rowScaleWgsl, label: 'row_scale', constants: { WG: layerTuning(this.device).workgroupSize }, buffers: [ws.dlogits, ws.weights], uniforms: [p.rows, V], workgroups: [x, y] });
      const kl = createStorageBuffer(this.device, p.rows * 4, 'reverse KL per row');
      const field = this.divergence.field('reverseKL');
      encoder.copyBufferToBuffer(field.buffer, field.offset ?? 0, kl, 0, p.rows * 4);
      return kl;
    }
    encodeLossGrad(
      this.device,
      encoder,
      { logits: ws.logits, targets: ws.targets, weights: ws.weights, oldLogprobs: ws.oldLogprobs, advantages: ws.advantages, dlogits: ws.dlogits, stats: ws.stats },
      { rows: p.rows, vocab: V, mode: objective.kind, temperature, clipEpsilon: objective.kind === 'pg' ? (objective.clipEpsilon ?? 0) : 0 },
    );
    return undefined;
  }

  private check(): void {
    if (this.destroyed) throw new TrainerError('this trainer was destroyed');
  }

  /**
   * Forward, loss gradient and backward of one micro-batch, adding into the gradients (the first
   * micro-batch of a step overwrites them). Sequences' per-token weights carry the objective's
   * normalisation: e.g. 1/(scored tokens of the whole step) for a per-token mean.
   */
  async accumulate(sequences: readonly TrainSequence[], objective: Objective): Promise<void> {
    this.check();
    const packed = packBatch(sequences, this.config.vocabSize, this.config.nPositions);
    if (objective.kind === 'pg' && sequences.some((s) => !s.oldLogprobs || !s.advantages)) {
      throw new TrainerError('the policy-gradient objective needs the sampler log-probs and the advantages of every sequence');
    }
    const first = this.pending.length === 0;
    const ws = this.ensureWorkspace(packed.batch, packed.width);
    this.upload(ws, packed);
    await withGpuErrorScope(this.device, 'training micro-batch', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'micro-batch' });
      this.forward(encoder, ws, packed);
      const kl = this.lossGradient(encoder, ws, packed, objective);
      this.backward(encoder, ws, packed, first);
      const stats = createStorageBuffer(this.device, packed.rows * LOSS_STATS.length * 4, 'micro-batch stats');
      encoder.copyBufferToBuffer(ws.stats, 0, stats, 0, packed.rows * LOSS_STATS.length * 4);
      this.pending.push({ packed, stats, kl, objective: objective.kind });
      await this.submit(encoder);
    });
  }

  /**
   * Log-probs of each row's target under the current weights (temperature τ), for scored rows
   * (weight ≠ 0; other rows 0), with no gradient: what the sampler's log-probs are compared to.
   */
  async logprobs(sequences: readonly TrainSequence[], temperature = 1): Promise<Float32Array> {
    this.check();
    const packed = packBatch(sequences, this.config.vocabSize, this.config.nPositions);
    const ws = this.ensureWorkspace(packed.batch, packed.width);
    this.upload(ws, packed);
    return withGpuErrorScope(this.device, 'trainer forward', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'forward' });
      this.forward(encoder, ws, packed);
      encodeLossGrad(this.device, encoder, { logits: ws.logits, targets: ws.targets, weights: ws.weights, dlogits: ws.dlogits, stats: ws.stats }, { rows: packed.rows, vocab: this.config.vocabSize, mode: 'ce', temperature, clipEpsilon: 0 });
      await this.submit(encoder);
      const stats = await readFloat32(this.device, ws.stats, packed.rows * LOSS_STATS.length);
      return Float32Array.from({ length: packed.rows }, (_, n) => (packed.weights[n] !== 0 ? stats[n * LOSS_STATS.length] : 0));
    });
  }

  /**
   * The current student against a teacher's logits for the same packed rows (f32 [rows, vocab]
   * on the GPU, e.g. ORT's output of forwardLogits over the same sequences): per scored row the
   * divergence kernels' log-probs, exact reverse KL and student entropy. No gradient.
   */
  async divergencesAgainst(
    sequences: readonly TrainSequence[],
    teacherLogits: GPUBuffer,
    options: { temperature?: number; teacherVocab?: number } = {},
  ): Promise<{ rows: RowDivergence[]; teacherLogprob(sequence: number, position: number): number }> {
    this.check();
    const packed = packBatch(sequences, this.config.vocabSize, this.config.nPositions);
    const ws = this.ensureWorkspace(packed.batch, packed.width);
    this.upload(ws, packed);
    const V = this.config.vocabSize;
    const out = await withGpuErrorScope(this.device, 'student against teacher', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'forward + divergences' });
      this.forward(encoder, ws, packed);
      this.metrics = encodeDivergences(
        this.device,
        { student: ws.logits, teacher: teacherLogits, studentVocab: V, teacherVocab: options.teacherVocab ?? V, positions: packed.rows, tokens: ws.targets, mask: ws.lossMask, temperature: options.temperature ?? 1 },
        { encoder, reuse: this.metrics },
      );
      await this.submit(encoder);
      return readDivergences(this.device, this.metrics);
    });
    const f = out.fields;
    const rows: RowDivergence[] = [];
    for (let n = 0; n < packed.rows; n++) {
      if (packed.weights[n] === 0) continue;
      rows.push({ row: n, studentLogprob: f.studentLogprob[n], teacherLogprob: f.teacherLogprob[n], reverseKL: f.reverseKL[n], studentEntropy: f.studentEntropy[n] });
    }
    return { rows, teacherLogprob: (b, t) => f.teacherLogprob[b * packed.width + t] };
  }

  /** Logits of the current weights for packed sequences, [rows, vocab] (tests, evaluation). */
  async logits(sequences: readonly TrainSequence[]): Promise<{ packed: PackedBatch; logits: Float32Array }> {
    this.check();
    const packed = packBatch(sequences, this.config.vocabSize, this.config.nPositions);
    const ws = this.ensureWorkspace(packed.batch, packed.width);
    this.upload(ws, packed);
    const encoder = this.device.createCommandEncoder({ label: 'forward' });
    this.forward(encoder, ws, packed);
    await this.submit(encoder);
    return { packed, logits: await readFloat32(this.device, ws.logits, packed.rows * this.config.vocabSize) };
  }

  /** The accumulated gradients of the trainable tensors (tests). */
  async readGradients(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const t of this.tensors) out.set(t.name, await readFloat32(this.device, t.grad, t.count));
    return out;
  }

  /**
   * Clips and applies the accumulated gradients (AdamW), then reads the step's numbers back.
   * A NaN/Inf gradient skips the update; a non-finite weight after it is undone from the copy.
   */
  async applyStep(): Promise<StepReport> {
    this.check();
    if (this.pending.length === 0) throw new TrainerError('no gradients to apply: accumulate at least one micro-batch first');
    const d = this.device;
    const lr = learningRate(this.step, this.schedule);
    const encoder = d.createCommandEncoder({ label: 'optimizer step' });
    this.tensors.forEach((t, i) => encodeSumSquares(d, encoder, { input: t.grad, count: t.count, norms: this.gradNorms, slot: i }));
    encodeClipScale(d, encoder, { norms: this.gradNorms, count: this.tensors.length, clip: this.clip, maxNorm: this.adamw.maxGradNorm });
    for (const t of this.tensors) {
      const bytes = t.count * 4;
      encoder.copyBufferToBuffer(t.param, 0, t.backup.param, 0, bytes);
      encoder.copyBufferToBuffer(t.m, 0, t.backup.m, 0, bytes);
      encoder.copyBufferToBuffer(t.v, 0, t.backup.v, 0, bytes);
      encodeAdamW(d, encoder, { param: t.param, grad: t.grad, m: t.m, v: t.v, count: t.count, weightDecay: t.weightDecay }, { clip: this.clip, lr, step: this.step + 1, beta1: this.adamw.beta1, beta2: this.adamw.beta2, eps: this.adamw.eps });
    }
    this.tensors.forEach((t, i) => encodeSumSquares(d, encoder, { input: t.param, count: t.count, norms: this.paramNorms, slot: i }));
    this.encodeLoraMerge(encoder);
    d.queue.submit([encoder.finish()]);
    const names = this.trainableNames;
    const [gradNorms, paramNorms, clipBytes] = await Promise.all([
      readFloat32(d, this.gradNorms, names.length),
      readFloat32(d, this.paramNorms, names.length),
      readBuffer(d, this.clip, 16),
    ]);
    const clip = decodeClip(clipBytes);
    const microBatches = await this.readPending();
    let badTensors: NonFiniteTensor[] = [];
    let problem: string | undefined;
    let applied = clip.finite;
    if (!clip.finite) {
      badTensors = nonFiniteTensors(gradNorms, names);
      problem = `step skipped, weights unchanged: ${nonFiniteMessage(badTensors, 'gradient')}`;
    } else {
      const badWeights = nonFiniteTensors(paramNorms, names);
      if (badWeights.length) {
        const undo = d.createCommandEncoder({ label: 'undo step' });
        for (const t of this.tensors) {
          const bytes = t.count * 4;
          undo.copyBufferToBuffer(t.backup.param, 0, t.param, 0, bytes);
          undo.copyBufferToBuffer(t.backup.m, 0, t.m, 0, bytes);
          undo.copyBufferToBuffer(t.backup.v, 0, t.v, 0, bytes);
        }
        this.encodeLoraMerge(undo);
        d.queue.submit([undo.finish()]);
        await d.queue.onSubmittedWorkDone();
        badTensors = badWeights;
        applied = false;
        problem = `step undone, the last good weights restored: ${nonFiniteMessage(badWeights, 'updated weight')}`;
      }
    }
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
      step: this.step, applied, lr, loss, gradNorm: clip.norm, clipScale: clip.scale, badTensors, problem, microBatches,
      scoredTokens: scored.length,
      meanEntropy: mean(entropies),
      meanRatio,
      ratioStd: Math.sqrt(mean(scored.map((r) => (r - meanRatio) ** 2))),
    };
  }

  /** One optimizer step over micro-batches with one objective. */
  async trainStep(microBatches: readonly (readonly TrainSequence[])[], objective: Objective | ((i: number) => Objective)): Promise<StepReport> {
    for (let i = 0; i < microBatches.length; i++) await this.accumulate(microBatches[i], typeof objective === 'function' ? objective(i) : objective);
    return this.applyStep();
  }

  private encodeLoraMerge(encoder: GPUCommandEncoder): void {
    const lora = this.options.lora;
    if (!lora) return;
    const scale = loraScale(lora.alpha ?? lora.rank, lora.rank);
    for (const a of this.lora.values()) {
      encodeLoraMerge(this.device, encoder, { inDim: a.inDim, outDim: a.outDim, rank: lora.rank, scale, weight: this.base.get(a.weight)!, a: a.a.param, b: a.b.param, merged: a.merged });
    }
  }

  private mergeLora(): void {
    const encoder = this.device.createCommandEncoder({ label: 'LoRA merge' });
    this.encodeLoraMerge(encoder);
    this.device.queue.submit([encoder.finish()]);
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
      });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // State for checkpoints

  /** Every tensor a checkpoint needs: base weights, trainable tensors, AdamW moments. */
  async readState(): Promise<{ base: Map<string, Float32Array>; trainable: Map<string, { param: Float32Array; m: Float32Array; v: Float32Array; shape: number[] }> }> {
    const base = new Map<string, Float32Array>();
    for (const spec of this.specs) base.set(spec.name, await readFloat32(this.device, this.base.get(spec.name)!, numel(spec.shape)));
    const trainable = new Map<string, { param: Float32Array; m: Float32Array; v: Float32Array; shape: number[] }>();
    for (const t of this.tensors) {
      trainable.set(t.name, {
        shape: t.shape,
        param: await readFloat32(this.device, t.param, t.count),
        m: await readFloat32(this.device, t.m, t.count),
        v: await readFloat32(this.device, t.v, t.count),
      });
    }
    return { base, trainable };
  }

  /** Restores trainable tensors and moments read by readState (same shapes), and the step count. */
  writeState(trainable: ReadonlyMap<string, { param: Float32Array; m: Float32Array; v: Float32Array }>, step: number): void {
    for (const t of this.tensors) {
      const s = trainable.get(t.name);
      if (!s) throw new TrainerError(`the checkpoint has no tensor ${t.name}`);
      for (const [what, data, buffer] of [['weights', s.param, t.param], ['AdamW m', s.m, t.m], ['AdamW v', s.v, t.v]] as const) {
        if (data.length !== t.count) throw new TrainerError(`the checkpoint's ${what} of ${t.name} have ${data.length} values, expected ${t.count}`);
        writeBuffer(this.device, buffer, data);
      }
    }
    if (!Number.isInteger(step) || step < 0) throw new TrainerError(`the checkpoint's step ${step} is not a step count`);
    this.step = step;
    if (this.options.lora) this.mergeLora();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.base.values()) b.destroy();
    for (const t of this.tensors) [t.param, t.grad, t.m, t.v, t.backup.param, t.backup.m, t.backup.v].forEach((b) => b.destroy());
    for (const a of this.lora.values()) a.merged.destroy();
    this.workspace?.all.forEach((b) => b.destroy());
    this.loraGradScratch?.destroy();
    this.divergence?.destroy();
    this.metrics?.destroy();
    for (const p of this.pending) {
      p.stats.destroy();
      p.kl?.destroy();
    }
    [this.gradNorms, this.paramNorms, this.clip].forEach((b) => b.destroy());
  }
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
