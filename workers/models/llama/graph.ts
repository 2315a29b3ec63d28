/**
 * The Llama family's forward and backward (Llama, Qwen2, Qwen3) on the lab's WGSL kernels
 * (workers/kernels/train/), for the family-agnostic trainer (workers/train/trainer.ts). Per layer
 *
 *   forward   h1 = RMSNorm(x); q = h1·Wq (+bq); k = h1·Wk (+bk); v = h1·Wv (+bv)
 *             (Qwen3) q, k = RMSNorm per head over head_dim (q_norm, k_norm)
 *             q, k = RoPE in place (cos/sin tables uploaded once per graph)
 *             qkv = GQA pack (KV heads repeated over their query heads); ctx = attention(qkv)
 *             y = x + ctx·Wo (+bo); h2 = RMSNorm(y); a = silu(h2·Wg)·(h2·Wu); x' = y + a·Wd
 *   then      n = RMSNorm(x_L); logits = n·Headᵀ, Head = embed_tokens (tied) or lm_head
 *
 * and the backward runs the same in reverse from dlogits, writing each trainable tensor's
 * gradient where the weight store says (its own gradient, LoRA's dW_eff, or nowhere when
 * frozen). Projections are [in, out] (y = x·W), as the lab keeps them; the activations the
 * backward needs are kept per layer in buffers sized for the largest batch seen so far at the
 * current width. The float64 ground truth is test/reference/llama.ts.
 */
import { createStorageBuffer } from '../../gpu/buffers';
import { encodeColumnSum, encodeMatmul, pickMatmulVariant } from '../../kernels/train/matmul';
import { createEmbeddingBackward, encodeEmbeddingForward } from '../../kernels/train/layers';
import { encodeRmsNormBackward, encodeRmsNormForward, encodeRmsNormParamGrad } from '../../kernels/train/rmsnorm';
import { encodeSwigluBackward, encodeSwigluForward } from '../../kernels/train/swiglu';
import { createRopeTables, encodeRopeBackward, encodeRopeForward, type RopeTableBuffers } from '../../kernels/train/rope';
import { encodeGqaPack, encodeGqaUnpack } from '../../kernels/train/gqa';
import {
  attentionPath,
  attentionScratchBytes,
  createAttentionWork,
  encodeAttentionBackward,
  encodeAttentionForward,
  pickAttentionPath,
  type AttentionWork,
} from '../../kernels/train/attention';
import type { GraphBatch, GraphWeights, TrainingGraph } from '../family';
import type { LlamaConfig } from './config';
import { llamaParamSpecs } from './params';
import { ropeTables } from './rope';

interface LayerActivations {
  /** Block input (the residual stream), [N, hidden]. */
  x: GPUBuffer;
  h1: GPUBuffer;
  rstd1: GPUBuffer;
  /** Qwen3: q and k as the projections give them (the q/k norm's inputs) and the norms' rstd per head row. */
  qLin?: GPUBuffer;
  kLin?: GPUBuffer;
  rstdQ?: GPUBuffer;
  rstdK?: GPUBuffer;
  /** Rotated q, repeated k and v, packed for attention [N, 3·H·D]. */
  qkv: GPUBuffer;
  probs: GPUBuffer;
  ctx: GPUBuffer;
  /** x + o_proj(ctx). */
  y: GPUBuffer;
  h2: GPUBuffer;
  rstd2: GPUBuffer;
  gate: GPUBuffer;
  up: GPUBuffer;
  act: GPUBuffer;
}

/** Activations and backward scratch for micro-batches of up to `batch` × `width` rows. */
interface Activations {
  batch: number;
  width: number;
  layers: LayerActivations[];
  /** q [N, H·D], k and v [N, Hkv·D] between the projections and the pack (no layer keeps them). */
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  xFinal: GPUBuffer;
  normed: GPUBuffer;
  rstdF: GPUBuffer;
  dcur: GPUBuffer;
  dln: GPUBuffer;
  dctx: GPUBuffer;
  dqkv: GPUBuffer;
  dq: GPUBuffer;
  dk: GPUBuffer;
  dv: GPUBuffer;
  /** Qwen3: the q/k norm's input gradients. */
  dqLin?: GPUBuffer;
  dkLin?: GPUBuffer;
  dact: GPUBuffer;
  dgate: GPUBuffer;
  dup: GPUBuffer;
  attnScratch: GPUBuffer;
  /** The per-head matrices of attention's matmul path (absent where the device uses the fused kernels). */
  attnWork?: AttentionWork;
  all: GPUBuffer[];
}

/** Picks the matmul variant, then attention's path (its matmul path runs on that variant). */
export async function prepareLlamaTraining(device: GPUDevice): Promise<void> {
  await pickMatmulVariant(device);
  await pickAttentionPath(device);
}

const EMBED = 'model.embed_tokens.weight';

export class LlamaGraph implements TrainingGraph {
  private acts?: Activations;
  private readonly rope: RopeTableBuffers;
  /** Each parameter's shape by name (looked up on every linear layer of every pass). */
  private readonly shapes: Map<string, readonly number[]>;
  private readonly headName: string;

  constructor(
    private readonly device: GPUDevice,
    private readonly config: LlamaConfig,
    private readonly weights: GraphWeights,
  ) {
    this.shapes = new Map(llamaParamSpecs(config).map((s) => [s.name, s.shape]));
    this.headName = config.tiedEmbeddings ? EMBED : 'lm_head.weight';
    this.rope = createRopeTables(device, ropeTables(config, config.nPositions), config.headDim, 'llama rope');
  }

  private activations(batch: number, width: number): Activations {
    const w = this.acts;
    if (w && w.batch >= batch && w.width === width) return w;
    w?.all.forEach((b) => b.destroy());
    const { hidden: E, intermediate: I, nHead: H, nKvHead: Hkv, headDim: D, nLayer: L, qkNorm } = this.config;
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
        x: f32(N * E, `layer ${l} x`), h1: f32(N * E, `layer ${l} h1`), rstd1: f32(N, `layer ${l} rstd1`),
        ...(qkNorm
          ? { qLin: f32(N * H * D, `layer ${l} q`), kLin: f32(N * Hkv * D, `layer ${l} k`), rstdQ: f32(N * H, `layer ${l} q_norm rstd`), rstdK: f32(N * Hkv, `layer ${l} k_norm rstd`) }
          : {}),
        qkv: f32(N * 3 * H * D, `layer ${l} qkv`), probs: f32(batch * H * width * width, `layer ${l} probs`), ctx: f32(N * H * D, `layer ${l} ctx`),
        y: f32(N * E, `layer ${l} y`), h2: f32(N * E, `layer ${l} h2`), rstd2: f32(N, `layer ${l} rstd2`),
        gate: f32(N * I, `layer ${l} gate`), up: f32(N * I, `layer ${l} up`), act: f32(N * I, `layer ${l} swiglu`),
      });
    }
    const attnDims = { batch, seq: width, heads: H, headDim: D };
    const attnScratch = createStorageBuffer(this.device, Math.max(16, attentionScratchBytes(attnDims)), 'attention scratch');
    all.push(attnScratch);
    const attnWork = attentionPath(this.device) === 'matmul' ? createAttentionWork(this.device, attnDims) : undefined;
    if (attnWork) all.push(...Object.values(attnWork));
    this.acts = {
      batch, width, layers,
      q: f32(N * H * D, 'q'), k: f32(N * Hkv * D, 'k'), v: f32(N * Hkv * D, 'v'),
      xFinal: f32(N * E, 'x final'), normed: f32(N * E, 'model.norm'), rstdF: f32(N, 'model.norm rstd'),
      dcur: f32(N * E, 'd residual'), dln: f32(N * E, 'd norm'), dctx: f32(N * H * D, 'd ctx'), dqkv: f32(N * 3 * H * D, 'd qkv'),
      dq: f32(N * H * D, 'd q'), dk: f32(N * Hkv * D, 'd k'), dv: f32(N * Hkv * D, 'd v'),
      ...(qkNorm ? { dqLin: f32(N * H * D, 'd q (before q_norm)'), dkLin: f32(N * Hkv * D, 'd k (before k_norm)') } : {}),
      dact: f32(N * I, 'd swiglu'), dgate: f32(N * I, 'd gate'), dup: f32(N * I, 'd up'),
      attnScratch, attnWork,
      all,
    };
    return this.acts;
  }

  /** A bias the config may not have: its buffer, or undefined. */
  private bias(name: string): GPUBuffer | undefined {
    return this.shapes.has(`${name}.bias`) ? this.weights.weight(`${name}.bias`) : undefined;
  }

  /** out = x·W (+ b), or out = residual + x·W (+ b). */
  private linear(encoder: GPUCommandEncoder, x: GPUBuffer, name: string, out: GPUBuffer, rows: number, residual?: GPUBuffer): void {
    const [inDim, outDim] = this.shapes.get(`${name}.weight`)!;
    if (residual) encoder.copyBufferToBuffer(residual, 0, out, 0, rows * outDim * 4);
    encodeMatmul(this.device, encoder, { a: x, b: this.weights.weight(`${name}.weight`), c: out, bias: this.bias(name) }, { m: rows, n: outDim, k: inDim, accumulate: residual !== undefined });
  }

  /** Positions are checked on the CPU: past the rotary tables the kernel would clamp, silently wrong. */
  private checkPositions(p: GraphBatch): void {
    const limit = this.config.nPositions;
    for (let n = 0; n < p.rows; n++) {
      if (p.positionIds[n] >= limit) {
        throw new Error(`position ${p.positionIds[n]} (row ${n}) is past this model's max_position_embeddings ${limit}: shorten the sequences to at most ${limit} tokens`);
      }
    }
  }

  forward(encoder: GPUCommandEncoder, p: GraphBatch): void {
    const { hidden: E, intermediate: I, nHead: H, nKvHead: Hkv, headDim: D, vocabSize: V, rmsNormEps: eps, qkNorm } = this.config;
    this.checkPositions(p);
    const d = this.device;
    const w = this.weights;
    const ws = this.activations(p.batch, p.width);
    const N = p.rows;
    const attnDims = { batch: p.batch, seq: p.width, heads: H, headDim: D };
    const gqaDims = { rows: N, heads: H, kvHeads: Hkv, headDim: D };
    const rope = { positions: p.positions, cos: this.rope.cos, sin: this.rope.sin, maxPositions: this.rope.maxPositions };
    encodeEmbeddingForward(d, encoder, { tokens: p.tokens, wte: w.weight(EMBED), x: ws.layers[0]?.x ?? ws.xFinal }, { rows: N, width: E, vocabSize: V });
    ws.layers.forEach((a, l) => {
      const pre = `model.layers.${l}`;
      const att = `${pre}.self_attn`;
      encodeRmsNormForward(d, encoder, { x: a.x, gamma: w.weight(`${pre}.input_layernorm.weight`), y: a.h1, rstd: a.rstd1 }, { rows: N, width: E, eps });
      if (qkNorm) {
        this.linear(encoder, a.h1, `${att}.q_proj`, a.qLin!, N);
        this.linear(encoder, a.h1, `${att}.k_proj`, a.kLin!, N);
        encodeRmsNormForward(d, encoder, { x: a.qLin!, gamma: w.weight(`${att}.q_norm.weight`), y: ws.q, rstd: a.rstdQ! }, { rows: N * H, width: D, eps });
        encodeRmsNormForward(d, encoder, { x: a.kLin!, gamma: w.weight(`${att}.k_norm.weight`), y: ws.k, rstd: a.rstdK! }, { rows: N * Hkv, width: D, eps });
      } else {
        this.linear(encoder, a.h1, `${att}.q_proj`, ws.q, N);
        this.linear(encoder, a.h1, `${att}.k_proj`, ws.k, N);
      }
      this.linear(encoder, a.h1, `${att}.v_proj`, ws.v, N);
      encodeRopeForward(d, encoder, { x: ws.q, ...rope }, { rows: N, heads: H, headDim: D });
      encodeRopeForward(d, encoder, { x: ws.k, ...rope }, { rows: N, heads: Hkv, headDim: D });
      encodeGqaPack(d, encoder, { q: ws.q, k: ws.k, v: ws.v, qkv: a.qkv }, gqaDims);
      encodeAttentionForward(d, encoder, { qkv: a.qkv, keyMask: p.keyMask, ctx: a.ctx, probs: a.probs, work: ws.attnWork }, attnDims);
      this.linear(encoder, a.ctx, `${att}.o_proj`, a.y, N, a.x);
      encodeRmsNormForward(d, encoder, { x: a.y, gamma: w.weight(`${pre}.post_attention_layernorm.weight`), y: a.h2, rstd: a.rstd2 }, { rows: N, width: E, eps });
      this.linear(encoder, a.h2, `${pre}.mlp.gate_proj`, a.gate, N);
      this.linear(encoder, a.h2, `${pre}.mlp.up_proj`, a.up, N);
      encodeSwigluForward(d, encoder, { gate: a.gate, up: a.up, y: a.act }, N * I);
      const next = ws.layers[l + 1]?.x ?? ws.xFinal;
      this.linear(encoder, a.act, `${pre}.mlp.down_proj`, next, N, a.y);
    });
    encodeRmsNormForward(d, encoder, { x: ws.xFinal, gamma: w.weight('model.norm.weight'), y: ws.normed, rstd: ws.rstdF }, { rows: N, width: E, eps });
    // The head: logits = n·Headᵀ, Head [vocab, hidden] (the embedding when tied).
    encodeMatmul(d, encoder, { a: ws.normed, b: w.weight(this.headName), c: p.logits }, { m: N, n: V, k: E, transB: true });
  }

  /**
   * Backward of y (+)= x·W + b given dy: dW, db (when trainable), and dx = dy·Wᵀ written to
   * `dx`, or added to it with `accumulateDx`.
   */
  private linearBackward(encoder: GPUCommandEncoder, name: string, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, rows: number, first: boolean, accumulateDx = false): void {
    const [inDim, outDim] = this.shapes.get(`${name}.weight`)!;
    const d = this.device;
    const dW = this.weights.gradient(`${name}.weight`, first);
    if (dW) {
      encodeMatmul(d, encoder, { a: x, b: dy, c: dW.buffer }, { m: inDim, n: outDim, k: rows, transA: true, accumulate: dW.accumulate });
      this.weights.afterWeightGradient(encoder, `${name}.weight`, first);
    }
    const db = this.shapes.has(`${name}.bias`) ? this.weights.gradient(`${name}.bias`, first) : undefined;
    if (db) encodeColumnSum(d, encoder, { x: dy, out: db.buffer }, { rows, cols: outDim, accumulate: db.accumulate });
    encodeMatmul(d, encoder, { a: dy, b: this.weights.weight(`${name}.weight`), c: dx }, { m: rows, n: inDim, k: outDim, transB: true, accumulate: accumulateDx });
  }

  /** RMSNorm backward: dx (= or +=), and dγ when the norm weight is trainable. */
  private rmsNormBackward(encoder: GPUCommandEncoder, gammaName: string, x: GPUBuffer, rstd: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, accumulateDx: boolean, rows: number, width: number, first: boolean): void {
    const d = this.device;
    encodeRmsNormBackward(d, encoder, { dy, x, rstd, gamma: this.weights.weight(gammaName), dx }, { rows, width, accumulate: accumulateDx });
    const dg = this.weights.gradient(gammaName, first);
    if (dg) encodeRmsNormParamGrad(d, encoder, { dy, x, rstd, dgamma: dg.buffer }, { rows, width, accumulate: dg.accumulate });
  }

  backward(encoder: GPUCommandEncoder, p: GraphBatch, first: boolean): (() => void) | undefined {
    const { hidden: E, nHead: H, nKvHead: Hkv, headDim: D, vocabSize: V, qkNorm } = this.config;
    const d = this.device;
    const ws = this.activations(p.batch, p.width);
    const N = p.rows;
    const attnDims = { batch: p.batch, seq: p.width, heads: H, headDim: D };
    const gqaDims = { rows: N, heads: H, kvHeads: Hkv, headDim: D };
    const rope = { positions: p.positions, cos: this.rope.cos, sin: this.rope.sin, maxPositions: this.rope.maxPositions };
    // Head: d n = dlogits·Head; d Head (+)= dlogitsᵀ·n.
    encodeMatmul(d, encoder, { a: p.dlogits, b: this.weights.weight(this.headName), c: ws.dln }, { m: N, n: E, k: V });
    const dHead = this.weights.gradient(this.headName, first);
    if (dHead) encodeMatmul(d, encoder, { a: p.dlogits, b: ws.normed, c: dHead.buffer }, { m: V, n: E, k: N, transA: true, accumulate: dHead.accumulate });
    this.rmsNormBackward(encoder, 'model.norm.weight', ws.xFinal, ws.rstdF, ws.dln, ws.dcur, false, N, E, first);
    for (let l = ws.layers.length - 1; l >= 0; l--) {
      const a = ws.layers[l];
      const pre = `model.layers.${l}`;
      const att = `${pre}.self_attn`;
      // MLP branch: x' = y + down(silu(gate(h2))·up(h2)), h2 = RMSNorm(y).
      this.linearBackward(encoder, `${pre}.mlp.down_proj`, a.act, ws.dcur, ws.dact, N, first);
      encodeSwigluBackward(d, encoder, { gate: a.gate, up: a.up, dy: ws.dact, dgate: ws.dgate, dup: ws.dup }, { count: N * this.config.intermediate });
      this.linearBackward(encoder, `${pre}.mlp.gate_proj`, a.h2, ws.dgate, ws.dln, N, first);
      this.linearBackward(encoder, `${pre}.mlp.up_proj`, a.h2, ws.dup, ws.dln, N, first, true);
      this.rmsNormBackward(encoder, `${pre}.post_attention_layernorm.weight`, a.y, a.rstd2, ws.dln, ws.dcur, true, N, E, first);
      // Attention branch: y = x + o(attention(pack(rope(norm(q(h1))), rope(norm(k(h1))), v(h1)))), h1 = RMSNorm(x).
      this.linearBackward(encoder, `${att}.o_proj`, a.ctx, ws.dcur, ws.dctx, N, first);
      encodeAttentionBackward(d, encoder, { dctx: ws.dctx, probs: a.probs, qkv: a.qkv, dqkv: ws.dqkv, scratch: ws.attnScratch, keyMask: p.keyMask, work: ws.attnWork }, attnDims);
      encodeGqaUnpack(d, encoder, { dqkv: ws.dqkv, dq: ws.dq, dk: ws.dk, dv: ws.dv }, gqaDims);
      encodeRopeBackward(d, encoder, { dx: ws.dq, ...rope }, { rows: N, heads: H, headDim: D });
      encodeRopeBackward(d, encoder, { dx: ws.dk, ...rope }, { rows: N, heads: Hkv, headDim: D });
      let dq = ws.dq;
      let dk = ws.dk;
      if (qkNorm) {
        this.rmsNormBackward(encoder, `${att}.q_norm.weight`, a.qLin!, a.rstdQ!, ws.dq, ws.dqLin!, false, N * H, D, first);
        this.rmsNormBackward(encoder, `${att}.k_norm.weight`, a.kLin!, a.rstdK!, ws.dk, ws.dkLin!, false, N * Hkv, D, first);
        dq = ws.dqLin!;
        dk = ws.dkLin!;
      }
      this.linearBackward(encoder, `${att}.q_proj`, a.h1, dq, ws.dln, N, first);
      this.linearBackward(encoder, `${att}.k_proj`, a.h1, dk, ws.dln, N, first, true);
      this.linearBackward(encoder, `${att}.v_proj`, a.h1, ws.dv, ws.dln, N, first, true);
      this.rmsNormBackward(encoder, `${pre}.input_layernorm.weight`, a.x, a.rstd1, ws.dln, ws.dcur, true, N, E, first);
    }
    // Embedding: dE[token] += dx. The embedding backward always adds: a tied head wrote dE above,
    // an untied model's first micro-batch clears it first.
    const dEmbed = this.weights.gradient(EMBED, first);
    if (!dEmbed) return undefined;
    if (!dEmbed.accumulate && !this.config.tiedEmbeddings) encoder.clearBuffer(dEmbed.buffer);
    const embedding = createEmbeddingBackward(d, p.tokenIds, null, { vocabSize: V });
    embedding.encode(encoder, { dx: ws.dcur, dwte: dEmbed.buffer }, E);
    return () => embedding.destroy();
  }

  destroy(): void {
    this.acts?.all.forEach((b) => b.destroy());
    this.acts = undefined;
    this.rope.destroy();
  }
}
