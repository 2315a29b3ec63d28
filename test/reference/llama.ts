/**
 * The Llama family's training ground truth (Llama, Qwen2, Qwen3): the whole model forward to the
 * logits and backward to every parameter's gradient, in plain TypeScript float64 on the CPU,
 * written to be obviously right rather than fast. The WGSL graph (workers/models/llama/graph.ts)
 * and the trainer are tested against it; it is never used to train.
 *
 * Per layer, on one sequence's rows (T tokens, no padding: causal attention over the sequence):
 *
 *   h1 = RMSNorm(x; input_layernorm)
 *   q = h1·Wq (+bq), k = h1·Wk (+bk), v = h1·Wv (+bv)            (biases: Qwen2, attention_bias)
 *   q, k = RMSNorm per head over head_dim (q_norm, k_norm)           (Qwen3 only)
 *   q, k = RoPE(q, k; position)                                      (rotate_half, float64 tables)
 *   ctx = causal GQA attention(q, k, v)                              (scale 1/√head_dim)
 *   y = x + ctx·Wo (+bo)
 *   h2 = RMSNorm(y; post_attention_layernorm)
 *   x' = y + (silu(h2·Wg) ⊙ h2·Wu)·Wd                               (+ biases with mlp_bias)
 *
 * then logits = RMSNorm(x_L; model.norm)·Headᵀ with Head = embed_tokens (tied) or lm_head.
 *
 * Parameters are the lab's layout (workers/models/llama/params.ts): projections [in, out]
 * (y = x·W; model.safetensors and PyTorch have [out, in]), embed_tokens and lm_head [vocab,
 * hidden]. Tied: embed_tokens' gradient sums its embedding and head contributions.
 *
 * The layers are the layer references (test/reference/layers.ts: RMSNorm, SwiGLU, embedding;
 * test/reference/rope.ts: RoPE, GQA attention; test/reference/matmul.ts: the products); the
 * losses and the result's shape are GPT-2's (test/reference/gpt2-training.ts).
 */
import type { LlamaConfig } from '../../workers/models/llama/config';
import { llamaParamSpecs } from '../../workers/models/llama/params';
import { ropeTables } from '../../workers/models/llama/rope';
import { numel } from '../../workers/models/family';
import type { ForwardBackwardResult, ReferenceParams, SequenceLoss, TrainSequence } from './gpt2-training';
import { embeddingBackward, embeddingForward, rmsNormBackward, rmsNormForward, swigluBackward, swigluForward } from './layers';
import { referenceColumnSum, referenceMatmul } from './matmul';
import { gqaAttentionBackward, gqaAttentionForward, ropeBackward, ropeForward, type RopeTables } from './rope';

export type { ForwardBackwardResult, ReferenceParams, SequenceLoss, TrainSequence };

// ---------------------------------------------------------------------------------------------
// Linear layers on row-major [rows, width] Float64Arrays, weights [in, out].

/** y = x·W (+ b): x [rows, inDim], W [inDim, outDim]. */
function linearForward(x: Float64Array, rows: number, inDim: number, outDim: number, w: Float64Array, b?: Float64Array): Float64Array {
  return referenceMatmul(x, w, new Float64Array(rows * outDim), { m: rows, n: outDim, k: inDim }, b).c;
}

/** Backward of y = x·W (+ b): dW += xᵀ·dy, db += Σ_rows dy; returns dx = dy·Wᵀ. */
function linearBackward(dy: Float64Array, x: Float64Array, rows: number, inDim: number, outDim: number, w: Float64Array, dW: Float64Array, dB?: Float64Array): Float64Array {
  dW.set(referenceMatmul(x, dy, dW, { m: inDim, n: outDim, k: rows, transA: true, accumulate: true }).c);
  if (dB) dB.set(referenceColumnSum(dy, rows, outDim, true, dB));
  return referenceMatmul(dy, w, new Float64Array(rows * inDim), { m: rows, n: inDim, k: outDim, transB: true }).c;
}

function addInto(target: Float64Array, source: ArrayLike<number>): Float64Array {
  for (let i = 0; i < target.length; i++) target[i] += source[i];
  return target;
}

const sum = (a: Float64Array, b: ArrayLike<number>): Float64Array => addInto(Float64Array.from(a), b);

// ---------------------------------------------------------------------------------------------
// The model.

interface LayerActs {
  /** Block input (residual stream), [T, hidden]. */
  x: Float64Array;
  /** input_layernorm(x). */
  h1: Float64Array;
  /** q and k as the projections give them (the q/k norm's inputs), [T, H·D] and [T, Hkv·D]. */
  qLin: Float64Array;
  kLin: Float64Array;
  /** q and k after the q/k norm (equal to qLin, kLin without it): RoPE's inputs. */
  qNormed: Float64Array;
  kNormed: Float64Array;
  /** Rotated q, k and v: attention's inputs. */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  /** Attention probabilities [H, T, T] and the context [T, H·D]. */
  probs: Float64Array;
  ctx: Float64Array;
  /** x + o_proj(ctx), [T, hidden]. */
  mid: Float64Array;
  /** post_attention_layernorm(mid). */
  h2: Float64Array;
  /** gate_proj and up_proj outputs, [T, intermediate], and silu(gate)·up. */
  gate: Float64Array;
  up: Float64Array;
  act: Float64Array;
}

interface SequenceActs {
  T: number;
  tokens: readonly number[];
  positions: number[];
  layers: LayerActs[];
  /** Output of the last block, [T, hidden], and model.norm of it. */
  final: Float64Array;
  normed: Float64Array;
  logits: Float64Array[];
}

class LlamaReferenceModel {
  private readonly w = new Map<string, Float64Array>();
  private readonly rope: RopeTables;

  constructor(readonly config: LlamaConfig, params: ReferenceParams) {
    for (const spec of llamaParamSpecs(config)) {
      const data = params.get(spec.name);
      if (!data) throw new Error(`Llama training reference: parameter ${spec.name} is missing`);
      if (data.length !== numel(spec.shape)) throw new Error(`Llama training reference: ${spec.name} has ${data.length} values, shape [${spec.shape}] needs ${numel(spec.shape)}`);
      this.w.set(spec.name, Float64Array.from(data));
    }
    this.rope = ropeTables(config, config.nPositions);
  }

  private p(name: string): Float64Array {
    return this.w.get(name)!;
  }

  /** A parameter that the config may not have (biases): undefined when absent. */
  private optional(name: string): Float64Array | undefined {
    return this.w.get(name);
  }

  private head(): Float64Array {
    return this.p(this.config.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  }

  forward(sequence: TrainSequence): SequenceActs {
    const c = this.config;
    const { hidden: E, nHead: H, nKvHead: Hkv, headDim: D, intermediate: I, vocabSize: V, rmsNormEps: eps } = c;
    const { tokens } = sequence;
    const T = tokens.length;
    if (T === 0) throw new Error('Llama training reference: empty sequence');
    if (sequence.positions && sequence.positions.length !== T) throw new Error(`Llama training reference: ${T} tokens but ${sequence.positions.length} positions`);
    const positions = sequence.positions ? [...sequence.positions] : tokens.map((_, i) => i);
    tokens.forEach((token) => {
      if (!Number.isInteger(token) || token < 0 || token >= V) throw new Error(`Llama training reference: token id ${token} outside 0..${V - 1}`);
    });
    positions.forEach((pos) => {
      if (!Number.isInteger(pos) || pos < 0 || pos >= c.nPositions) throw new Error(`Llama training reference: position ${pos} outside 0..${c.nPositions - 1} (max_position_embeddings)`);
    });
    const attnDims = { batch: 1, seq: T, heads: H, kvHeads: Hkv, headDim: D };
    const keyMask = new Float64Array(T).fill(1);
    let x = embeddingForward(tokens, null, this.p('model.embed_tokens.weight'), null, E);
    const layers: LayerActs[] = [];
    for (let l = 0; l < c.nLayer; l++) {
      const pre = `model.layers.${l}`;
      const att = `${pre}.self_attn`;
      const h1 = rmsNormForward(x, this.p(`${pre}.input_layernorm.weight`), T, E, eps).y;
      const qLin = linearForward(h1, T, E, H * D, this.p(`${att}.q_proj.weight`), this.optional(`${att}.q_proj.bias`));
      const kLin = linearForward(h1, T, E, Hkv * D, this.p(`${att}.k_proj.weight`), this.optional(`${att}.k_proj.bias`));
      const v = linearForward(h1, T, E, Hkv * D, this.p(`${att}.v_proj.weight`), this.optional(`${att}.v_proj.bias`));
      const qNormed = c.qkNorm ? rmsNormForward(qLin, this.p(`${att}.q_norm.weight`), T * H, D, eps).y : qLin;
      const kNormed = c.qkNorm ? rmsNormForward(kLin, this.p(`${att}.k_norm.weight`), T * Hkv, D, eps).y : kLin;
      const q = ropeForward(qNormed, positions, this.rope, { rows: T, heads: H, headDim: D });
      const k = ropeForward(kNormed, positions, this.rope, { rows: T, heads: Hkv, headDim: D });
      const { ctx, probs } = gqaAttentionForward(q, k, v, keyMask, attnDims);
      const mid = sum(x, linearForward(ctx, T, H * D, E, this.p(`${att}.o_proj.weight`), this.optional(`${att}.o_proj.bias`)));
      const h2 = rmsNormForward(mid, this.p(`${pre}.post_attention_layernorm.weight`), T, E, eps).y;
      const gate = linearForward(h2, T, E, I, this.p(`${pre}.mlp.gate_proj.weight`), this.optional(`${pre}.mlp.gate_proj.bias`));
      const up = linearForward(h2, T, E, I, this.p(`${pre}.mlp.up_proj.weight`), this.optional(`${pre}.mlp.up_proj.bias`));
      const act = swigluForward(gate, up);
      const out = sum(mid, linearForward(act, T, I, E, this.p(`${pre}.mlp.down_proj.weight`), this.optional(`${pre}.mlp.down_proj.bias`)));
      layers.push({ x, h1, qLin, kLin, qNormed, kNormed, q, k, v, probs, ctx, mid, h2, gate, up, act });
      x = out;
    }
    const normed = rmsNormForward(x, this.p('model.norm.weight'), T, E, eps).y;
    const flat = referenceMatmul(normed, this.head(), new Float64Array(T * V), { m: T, n: V, k: E, transB: true }).c;
    const logits = Array.from({ length: T }, (_, t) => flat.slice(t * V, (t + 1) * V));
    return { T, tokens, positions, layers, final: x, normed, logits };
  }

  /** Back-propagates ∂L/∂logits through one sequence's saved activations, accumulating into `grads`. */
  backward(acts: SequenceActs, dLogits: readonly Float64Array[], grads: Map<string, Float64Array>): void {
    const c = this.config;
    const { hidden: E, nHead: H, nKvHead: Hkv, headDim: D, intermediate: I, vocabSize: V, rmsNormEps: eps } = c;
    const { T, positions } = acts;
    const g = (name: string) => grads.get(name)!;
    const gOptional = (name: string) => grads.get(name);
    const attnDims = { batch: 1, seq: T, heads: H, kvHeads: Hkv, headDim: D };

    // Head: logits = normed·Headᵀ → d normed = dlogits·Head, d Head += dlogitsᵀ·normed.
    const dz = new Float64Array(T * V);
    dLogits.forEach((row, t) => dz.set(row, t * V));
    const head = this.head();
    const headName = c.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    const dNormed = referenceMatmul(dz, head, new Float64Array(T * E), { m: T, n: E, k: V }).c;
    g(headName).set(referenceMatmul(dz, acts.normed, g(headName), { m: V, n: E, k: T, transA: true, accumulate: true }).c);
    const finalNorm = rmsNormBackward(dNormed, acts.final, this.p('model.norm.weight'), T, E, eps);
    addInto(g('model.norm.weight'), finalNorm.dgamma);
    let dx = finalNorm.dx;

    for (let l = c.nLayer - 1; l >= 0; l--) {
      const a = acts.layers[l];
      const pre = `model.layers.${l}`;
      const att = `${pre}.self_attn`;
      const lin = (name: string, dy: Float64Array, x: Float64Array, inDim: number, outDim: number) =>
        linearBackward(dy, x, T, inDim, outDim, this.p(`${name}.weight`), g(`${name}.weight`), gOptional(`${name}.bias`));
      // MLP branch: out = mid + down(silu(gate(h2))·up(h2)), h2 = RMSNorm(mid).
      const dAct = lin(`${pre}.mlp.down_proj`, dx, a.act, I, E);
      const { dgate, dup } = swigluBackward(a.gate, a.up, dAct);
      const dH2 = sum(lin(`${pre}.mlp.gate_proj`, dgate, a.h2, E, I), lin(`${pre}.mlp.up_proj`, dup, a.h2, E, I));
      const norm2 = rmsNormBackward(dH2, a.mid, this.p(`${pre}.post_attention_layernorm.weight`), T, E, eps);
      addInto(g(`${pre}.post_attention_layernorm.weight`), norm2.dgamma);
      const dMid = sum(dx, norm2.dx);

      // Attention branch: mid = x + o(attention(rope(norm(q(h1))), rope(norm(k(h1))), v(h1))), h1 = RMSNorm(x).
      const dCtx = lin(`${att}.o_proj`, dMid, a.ctx, H * D, E);
      const { dq, dk, dv } = gqaAttentionBackward(dCtx, a.probs, a.q, a.k, a.v, attnDims);
      let dqLin = ropeBackward(dq, positions, this.rope, { rows: T, heads: H, headDim: D });
      let dkLin = ropeBackward(dk, positions, this.rope, { rows: T, heads: Hkv, headDim: D });
      if (c.qkNorm) {
        const qNorm = rmsNormBackward(dqLin, a.qLin, this.p(`${att}.q_norm.weight`), T * H, D, eps);
        const kNorm = rmsNormBackward(dkLin, a.kLin, this.p(`${att}.k_norm.weight`), T * Hkv, D, eps);
        addInto(g(`${att}.q_norm.weight`), qNorm.dgamma);
        addInto(g(`${att}.k_norm.weight`), kNorm.dgamma);
        dqLin = qNorm.dx;
        dkLin = kNorm.dx;
      }
      const dH1 = lin(`${att}.q_proj`, dqLin, a.h1, E, H * D);
      addInto(dH1, lin(`${att}.k_proj`, dkLin, a.h1, E, Hkv * D));
      addInto(dH1, lin(`${att}.v_proj`, dv, a.h1, E, Hkv * D));
      const norm1 = rmsNormBackward(dH1, a.x, this.p(`${pre}.input_layernorm.weight`), T, E, eps);
      addInto(g(`${pre}.input_layernorm.weight`), norm1.dgamma);
      dx = sum(dMid, norm1.dx);
    }
    addInto(g('model.embed_tokens.weight'), embeddingBackward(acts.tokens, null, dx, V, 0, E).dwte);
  }
}

/** Logits ([T][vocab]) of one sequence: the forward alone (what finite differences need). */
export function llamaLogits(config: LlamaConfig, params: ReferenceParams, sequence: TrainSequence): Float64Array[] {
  return new LlamaReferenceModel(config, params).forward(sequence).logits;
}

/**
 * Forward, loss and backward over `sequences`: for each sequence, in order, runs its forward,
 * calls `loss(index, logits)`, back-propagates the returned ∂L/∂logits; sums losses and gradients
 * (by HF name, in `llamaParamSpecs` order, the lab's layout).
 */
export function llamaForwardBackward(config: LlamaConfig, params: ReferenceParams, sequences: readonly TrainSequence[], loss: SequenceLoss): ForwardBackwardResult {
  const model = new LlamaReferenceModel(config, params);
  const grads = new Map(llamaParamSpecs(config).map((s) => [s.name, new Float64Array(numel(s.shape))]));
  let total = 0;
  const logits: Float64Array[][] = [];
  sequences.forEach((sequence, index) => {
    const acts = model.forward(sequence);
    const result = loss(index, acts.logits);
    if (result.dLogits.length !== acts.T || result.dLogits.some((row) => row.length !== config.vocabSize)) {
      throw new Error(`Llama training reference: sequence ${index}'s loss must give dLogits of [${acts.T}][${config.vocabSize}]`);
    }
    total += result.loss;
    model.backward(acts, result.dLogits, grads);
    logits.push(acts.logits);
  });
  return { loss: total, logits, grads };
}
