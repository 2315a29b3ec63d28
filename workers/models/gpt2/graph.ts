/**
 * GPT-2's forward and backward on the lab's WGSL kernels (workers/kernels/train/), for the
 * family-agnostic trainer (workers/train/trainer.ts). Per layer
 *
 *   forward   ln1 = LN(x); qkv = ln1·c_attn; ctx = attention(qkv); y = x + ctx·c_proj;
 *             ln2 = LN(y); h = ln2·c_fc; g = gelu(h); x' = y + g·c_proj
 *   then      ln_f = LN(x_L); logits = ln_f · wteᵀ (the tied LM head)
 *
 * and the backward runs the same in reverse from dlogits, writing each trainable tensor's
 * gradient where the weight store says (its own gradient, LoRA's dW_eff, or nowhere when frozen).
 * The activations the backward needs are kept per layer in buffers sized for the largest batch
 * seen so far at the current width.
 */
import { createStorageBuffer } from '../../gpu/buffers';
import { encodeColumnSum, encodeMatmul, pickMatmulVariant } from '../../kernels/train/matmul';
import {
  createEmbeddingBackward,
  encodeEmbeddingForward,
  encodeGeluBackward,
  encodeGeluForward,
  encodeLayerNormBackward,
  encodeLayerNormForward,
  encodeLayerNormParamGrad,
} from '../../kernels/train/layers';
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
import { headDim, type Gpt2Config } from './config';
import { gpt2ParamSpecs, layerPrefix } from './params';

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

/** Activations and backward scratch for micro-batches of up to `batch` × `width` rows. */
interface Activations {
  batch: number;
  width: number;
  layers: LayerActivations[];
  xFinal: GPUBuffer;
  lnf: GPUBuffer;
  meanf: GPUBuffer;
  rstdf: GPUBuffer;
  dcur: GPUBuffer;
  dln: GPUBuffer;
  dctx: GPUBuffer;
  dqkv: GPUBuffer;
  dg: GPUBuffer;
  dh: GPUBuffer;
  attnScratch: GPUBuffer;
  /** The per-head matrices of attention's matmul path (absent where the device uses the fused kernels). */
  attnWork?: AttentionWork;
  all: GPUBuffer[];
}

/** Picks the matmul variant, then attention's path (its matmul path runs on that variant). */
export async function prepareGpt2Training(device: GPUDevice): Promise<void> {
  await pickMatmulVariant(device);
  await pickAttentionPath(device);
}

export class Gpt2Graph implements TrainingGraph {
  private acts?: Activations;
  /** Each parameter's shape by name (looked up on every linear layer of every pass). */
  private readonly shapes: Map<string, readonly number[]>;

  constructor(
    private readonly device: GPUDevice,
    private readonly config: Gpt2Config,
    private readonly weights: GraphWeights,
  ) {
    this.shapes = new Map(gpt2ParamSpecs(config).map((s) => [s.name, s.shape]));
  }

  private activations(batch: number, width: number): Activations {
    const w = this.acts;
    if (w && w.batch >= batch && w.width === width) return w;
    w?.all.forEach((b) => b.destroy());
    const { nEmbd: E, nInner: I, nHead: H, nLayer: L } = this.config;
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
    this.acts = {
      batch, width, layers,
      xFinal: f32(N * E, 'x final'), lnf: f32(N * E, 'ln_f'), meanf: f32(N, 'ln_f mean'), rstdf: f32(N, 'ln_f rstd'),
      dcur: f32(N * E, 'd residual'), dln: f32(N * E, 'd ln'), dctx: f32(N * E, 'd ctx'), dqkv: f32(N * 3 * E, 'd qkv'),
      dg: f32(N * I, 'd gelu'), dh: f32(N * I, 'd fc'), attnScratch, attnWork,
      all,
    };
    return this.acts;
  }

  private linear(encoder: GPUCommandEncoder, x: GPUBuffer, name: string, out: GPUBuffer, rows: number, residual?: GPUBuffer): void {
    const [inDim, outDim] = this.shapes.get(`${name}.weight`)!;
    if (residual) encoder.copyBufferToBuffer(residual, 0, out, 0, rows * outDim * 4);
    encodeMatmul(this.device, encoder, { a: x, b: this.weights.weight(`${name}.weight`), c: out, bias: this.weights.weight(`${name}.bias`) }, { m: rows, n: outDim, k: inDim, accumulate: residual !== undefined });
  }

  forward(encoder: GPUCommandEncoder, p: GraphBatch): void {
    const { nEmbd: E, nInner: I, nHead: H, vocabSize: V, nPositions, layerNormEpsilon: eps } = this.config;
    const d = this.device;
    const w = this.weights;
    const ws = this.activations(p.batch, p.width);
    const N = p.rows;
    const dims = { batch: p.batch, seq: p.width, heads: H, headDim: headDim(this.config) };
    encodeEmbeddingForward(d, encoder, { tokens: p.tokens, positions: p.positions, wte: w.weight('transformer.wte.weight'), wpe: w.weight('transformer.wpe.weight'), x: ws.layers[0]?.x ?? ws.xFinal }, { rows: N, width: E, vocabSize: V, nPositions });
    ws.layers.forEach((a, l) => {
      const pre = layerPrefix(l);
      encodeLayerNormForward(d, encoder, { x: a.x, gamma: w.weight(`${pre}.ln_1.weight`), beta: w.weight(`${pre}.ln_1.bias`), y: a.ln1, mean: a.mean1, rstd: a.rstd1 }, { rows: N, width: E, eps });
      this.linear(encoder, a.ln1, `${pre}.attn.c_attn`, a.qkv, N);
      encodeAttentionForward(d, encoder, { qkv: a.qkv, keyMask: p.keyMask, ctx: a.ctx, probs: a.probs, work: ws.attnWork }, dims);
      this.linear(encoder, a.ctx, `${pre}.attn.c_proj`, a.y, N, a.x);
      encodeLayerNormForward(d, encoder, { x: a.y, gamma: w.weight(`${pre}.ln_2.weight`), beta: w.weight(`${pre}.ln_2.bias`), y: a.ln2, mean: a.mean2, rstd: a.rstd2 }, { rows: N, width: E, eps });
      this.linear(encoder, a.ln2, `${pre}.mlp.c_fc`, a.h, N);
      encodeGeluForward(d, encoder, { x: a.h, y: a.g }, N * I);
      const next = ws.layers[l + 1]?.x ?? ws.xFinal;
      this.linear(encoder, a.g, `${pre}.mlp.c_proj`, next, N, a.y);
    });
    encodeLayerNormForward(d, encoder, { x: ws.xFinal, gamma: w.weight('transformer.ln_f.weight'), beta: w.weight('transformer.ln_f.bias'), y: ws.lnf, mean: ws.meanf, rstd: ws.rstdf }, { rows: N, width: E, eps });
    // Tied LM head: logits = ln_f · wteᵀ.
    encodeMatmul(d, encoder, { a: ws.lnf, b: w.weight('transformer.wte.weight'), c: p.logits }, { m: N, n: V, k: E, transB: true });
  }

  /**
   * Backward of y (+)= x·W + b given dy: dW, db (when trainable), and dx = dy·Wᵀ written to
   * `dx` (= or += as asked).
   */
  private linearBackward(encoder: GPUCommandEncoder, name: string, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer | undefined, rows: number, first: boolean): void {
    const [inDim, outDim] = this.shapes.get(`${name}.weight`)!;
    const d = this.device;
    const dW = this.weights.gradient(`${name}.weight`, first);
    if (dW) {
      encodeMatmul(d, encoder, { a: x, b: dy, c: dW.buffer }, { m: inDim, n: outDim, k: rows, transA: true, accumulate: dW.accumulate });
      this.weights.afterWeightGradient(encoder, `${name}.weight`, first);
    }
    const db = this.weights.gradient(`${name}.bias`, first);
    if (db) encodeColumnSum(d, encoder, { x: dy, out: db.buffer }, { rows, cols: outDim, accumulate: db.accumulate });
    if (dx) encodeMatmul(d, encoder, { a: dy, b: this.weights.weight(`${name}.weight`), c: dx }, { m: rows, n: inDim, k: outDim, transB: true });
  }

  private layerNormBackward(encoder: GPUCommandEncoder, name: string, x: GPUBuffer, mean: GPUBuffer, rstd: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, accumulateDx: boolean, rows: number, first: boolean): void {
    const E = this.config.nEmbd;
    const d = this.device;
    encodeLayerNormBackward(d, encoder, { dy, x, mean, rstd, gamma: this.weights.weight(`${name}.weight`), dx }, { rows, width: E, accumulate: accumulateDx });
    const dg = this.weights.gradient(`${name}.weight`, first);
    const db = this.weights.gradient(`${name}.bias`, first);
    if (dg && db) encodeLayerNormParamGrad(d, encoder, { dy, x, mean, rstd, dgamma: dg.buffer, dbeta: db.buffer }, { rows, width: E, accumulate: dg.accumulate });
  }

  backward(encoder: GPUCommandEncoder, p: GraphBatch, first: boolean): (() => void) | undefined {
    const { nEmbd: E, nInner: I, nHead: H, vocabSize: V, nPositions } = this.config;
    const d = this.device;
    const ws = this.activations(p.batch, p.width);
    const N = p.rows;
    const dims = { batch: p.batch, seq: p.width, heads: H, headDim: headDim(this.config) };
    const wte = this.weights.weight('transformer.wte.weight');
    // LM head: d ln_f = dlogits·wte; d wte (+)= dlogitsᵀ·ln_f.
    encodeMatmul(d, encoder, { a: p.dlogits, b: wte, c: ws.dln }, { m: N, n: E, k: V });
    const dwte = this.weights.gradient('transformer.wte.weight', first);
    if (dwte) encodeMatmul(d, encoder, { a: p.dlogits, b: ws.lnf, c: dwte.buffer }, { m: V, n: E, k: N, transA: true, accumulate: dwte.accumulate });
    this.layerNormBackward(encoder, 'transformer.ln_f', ws.xFinal, ws.meanf, ws.rstdf, ws.dln, ws.dcur, false, N, first);
    for (let l = ws.layers.length - 1; l >= 0; l--) {
      const a = ws.layers[l];
      const pre = layerPrefix(l);
      // MLP branch: x_{l+1} = y + c_proj(gelu(c_fc(ln_2(y)))).
      this.linearBackward(encoder, `${pre}.mlp.c_proj`, a.g, ws.dcur, ws.dg, N, first);
      encodeGeluBackward(d, encoder, { x: a.h, dy: ws.dg, dx: ws.dh }, { count: N * I, accumulate: false });
      this.linearBackward(encoder, `${pre}.mlp.c_fc`, a.ln2, ws.dh, ws.dln, N, first);
      this.layerNormBackward(encoder, `${pre}.ln_2`, a.y, a.mean2, a.rstd2, ws.dln, ws.dcur, true, N, first);
      // Attention branch: y = x + c_proj(attention(c_attn(ln_1(x)))).
      this.linearBackward(encoder, `${pre}.attn.c_proj`, a.ctx, ws.dcur, ws.dctx, N, first);
      encodeAttentionBackward(d, encoder, { dctx: ws.dctx, probs: a.probs, qkv: a.qkv, dqkv: ws.dqkv, scratch: ws.attnScratch, keyMask: p.keyMask, work: ws.attnWork }, dims);
      this.linearBackward(encoder, `${pre}.attn.c_attn`, a.ln1, ws.dqkv, ws.dln, N, first);
      this.layerNormBackward(encoder, `${pre}.ln_1`, a.x, a.mean1, a.rstd1, ws.dln, ws.dcur, true, N, first);
    }
    const dwpe = this.weights.gradient('transformer.wpe.weight', first);
    if (!dwte && !dwpe) return undefined;
    if (!dwte || !dwpe) throw new Error('GPT-2 graph: wte and wpe are trained together or not at all');
    if (first) encoder.clearBuffer(dwpe.buffer);
    const embedding = createEmbeddingBackward(d, p.tokenIds, p.positionIds, { vocabSize: V, nPositions });
    embedding.encode(encoder, { dx: ws.dcur, dwte: dwte.buffer, dwpe: dwpe.buffer }, E);
    return () => embedding.destroy();
  }

  destroy(): void {
    this.acts?.all.forEach((b) => b.destroy());
    this.acts = undefined;
  }
}
