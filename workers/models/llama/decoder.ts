/**
 * The Llama-family decoder (Llama, SmolLM2, Llama 3.2, Qwen2/2.5, Qwen3) as an ONNX graph, with the
 * input/output layout transformers.js uses (workers/ort/decoder-io.ts), as the GPT-2 one has it:
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
 *            position_ids [batch, seq] int64,
 *            past_key_values.{i}.key|value [batch, kv_heads, past, head_dim] float32
 *   outputs  logits [batch, seq, vocab] float32,
 *            present.{i}.key|value [batch, kv_heads, past+seq, head_dim] float32
 *
 * The cache holds the KV heads only (num_key_value_heads, not expanded): query head h reads KV
 * head floor(h / (heads / kv_heads)), by repeating each KV head for the score and context
 * matmuls inside the graph. Weights carry their Hugging Face names, projections [in, out] as the
 * lab keeps them (y = x·W), and are either initializers (a self-contained model.onnx) or graph
 * inputs fed in place from the trainer's GPU buffers. Plain ONNX ops, opset 15 (see
 * workers/onnx/graph.ts).
 *
 * Per layer, as transformers computes it:
 *   RMSNorm y = x / sqrt(mean(x²) + eps) · w (input_layernorm);
 *   q, k, v = y·W (+ b: Qwen2, Llama's attention_bias), split into heads;
 *   Qwen3: RMSNorm of each query and key head over head_dim (q_norm, k_norm) BEFORE the rotation;
 *   rotary embedding, rotate_half convention: pairs (i, i + D/2),
 *     x' = [x₁·cos − x₂·sin, x₂·cos + x₁·sin] with x₁ = x[:D/2], x₂ = x[D/2:];
 *   scores q·kᵀ / sqrt(D), masked, softmax, · v, o_proj; residual;
 *   RMSNorm (post_attention_layernorm), SwiGLU down(silu(gate(y)) · up(y)); residual.
 * Then model.norm and the head: lm_head, or the embedding itself when tied (Gemm with transB, so
 * the [vocab, hidden] matrix is never transposed per run).
 *
 * cos and sin come from TABLES [max_position_embeddings, D/2], computed in float64 by rope.ts
 * (every rope type: default, linear, llama3) and stored once as float32 initializers, gathered by
 * position_ids. There is no Sin or Cos in the graph: onnxruntime-web's WebGPU Sin/Cos are
 * accurate only to ~1e-4, which moved the fixtures' log-probs by up to 3e-3.
 *
 * Masking as in the GPT-2 decoder: query t of the new tokens sits at absolute position past+t and
 * may attend to key j iff j ≤ past+t and attention_mask[b, j] = 1 (left and right padding both
 * work); a fully masked row (a padding query) stays finite and its logits are meaningless.
 */
import { GraphBuilder, type Dim } from '../../onnx/graph';
import { pastKeyName, pastValueName, presentKeyName, presentValueName, type DecoderShape } from '../../ort/decoder-io';
import type { DecoderWeights } from '../family';
import type { LlamaConfig } from './config';
import { llamaParamSpecs } from './params';
import { ropeTables } from './rope';

export const LLAMA_DECODER_OPSET = 15;

/** The KV cache: num_key_value_heads heads of head_dim per layer. */
export function llamaDecoderShape(config: LlamaConfig): DecoderShape {
  return { layers: config.nLayer, kvHeads: config.nKvHead, headDim: config.headDim };
}

/** Names of the rotary tables in the graph (constants, never weights). */
export const ROPE_COS_TABLE = 'rope.cos_table';
export const ROPE_SIN_TABLE = 'rope.sin_table';

/** Added to a score where attention is not allowed (any value ≪ −max|score| works). */
const MASKED_SCORE = -1e9;

const BATCH = 'batch_size';
const SEQ = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'total_sequence_length';

export function buildLlamaDecoder(config: LlamaConfig, weights: DecoderWeights, name = `${config.modelType}_decoder`): Uint8Array {
  const g = new GraphBuilder(name, LLAMA_DECODER_OPSET);
  const { hidden: E, nHead: H, nKvHead: KV, headDim: D, nLayer: L, vocabSize: V } = config;
  const group = H / KV;

  // ---- inputs
  const inputIds = g.input('input_ids', 'int64', [BATCH, SEQ]);
  const attentionMask = g.input('attention_mask', 'int64', [BATCH, TOTAL]);
  const positionIds = g.input('position_ids', 'int64', [BATCH, SEQ]);
  const kvDims: Dim[] = [BATCH, KV, PAST, D];
  const past = Array.from({ length: L }, (_, l) => ({
    key: g.input(pastKeyName(l), 'float32', kvDims),
    value: g.input(pastValueName(l), 'float32', kvDims),
  }));
  for (const spec of llamaParamSpecs(config)) {
    if (weights.kind === 'inputs') g.input(spec.name, 'float32', spec.shape);
    else {
      const data = weights.params.get(spec.name);
      if (!data) throw new Error(`buildLlamaDecoder: parameter ${spec.name} is missing`);
      g.initializer(spec.name, data, spec.shape);
    }
  }

  // ---- constants
  const i64 = (cname: string, values: number[], dims = [values.length]) => g.initializer(cname, BigInt64Array.from(values.map(BigInt)), dims);
  const f32 = (cname: string, value: number) => g.initializer(cname, new Float32Array([value]), []);
  const zero = i64('c_zero', [0], []);
  const one = i64('c_one', [1], []);
  const axis1 = i64('c_axes_1', [1]);
  const axis2 = i64('c_axes_2', [2]);
  const axes12 = i64('c_axes_1_2', [1, 2]);
  const queryHeads = i64('c_query_heads_shape', [0, 0, H, D]);
  const kvHeads = i64('c_kv_heads_shape', [0, 0, KV, D]);
  const mergedShape = i64('c_merged_shape', [0, 0, H * D]);
  const flatShape = i64('c_flat_shape', [-1, E]);
  const vocabDim = i64('c_vocab_dim', [V]);
  const idxSeq = i64('c_index_1', [1], []);
  const repeatKv = i64('c_repeat_kv', [1, 1, group, 1, 1]);
  const repeatedShape = i64('c_repeated_kv_shape', [0, H, -1, D]);
  const epsilon = f32('c_rms_norm_eps', config.rmsNormEps);
  const two = f32('c_two', 2);
  const scale = f32('c_attention_scale', 1 / Math.sqrt(D));
  const maskedScore = f32('c_masked_score', MASKED_SCORE);
  // The rotary tables, float64 rounded once to float32: [max_position_embeddings, D/2].
  const tables = ropeTables(config, config.nPositions);
  g.initializer(ROPE_COS_TABLE, Float32Array.from(tables.cos), [config.nPositions, D / 2]);
  g.initializer(ROPE_SIN_TABLE, Float32Array.from(tables.sin), [config.nPositions, D / 2]);

  // ---- mask [batch, 1, seq, total]: causal over absolute positions, and attention_mask
  const seqLen = g.op('Gather', [g.op('Shape', [inputIds]), idxSeq], { axis: 0 });
  const totalLen = g.op('Gather', [g.op('Shape', [attentionMask]), idxSeq], { axis: 0 });
  const pastLen = g.op('Sub', [totalLen, seqLen]);
  const keyPositions = g.op('Range', [zero, totalLen, one]); // [total]
  const queryPositions = g.op('Unsqueeze', [g.op('Range', [pastLen, totalLen, one]), axis1]); // [seq, 1]
  const causal = g.op('LessOrEqual', [keyPositions, queryPositions]); // [seq, total]
  const padding = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: 9 /* BOOL */ }), axes12]); // [batch, 1, 1, total]
  const allowed = g.op('And', [causal, padding]);

  // ---- cos/sin of every new token's position: [batch, seq, 1, D/2], broadcast over heads
  const cos = g.op('Unsqueeze', [g.op('Gather', [ROPE_COS_TABLE, positionIds], { axis: 0 }), axis2]);
  const sin = g.op('Unsqueeze', [g.op('Gather', [ROPE_SIN_TABLE, positionIds], { axis: 0 }), axis2]);

  // ---- building blocks
  /** RMSNorm over the last axis, the weight applied after (as HF: x / sqrt(mean(x²) + eps) · w). */
  const rmsNorm = (x: string, weight: string) => {
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [x, two])], { axes: [-1], keepdims: 1 });
    return g.op('Mul', [g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSquare, epsilon])])]), weight]);
  };
  const linear = (x: string, prefix: string, bias: boolean) => {
    const y = g.op('MatMul', [x, `${prefix}.weight`]);
    return bias ? g.op('Add', [y, `${prefix}.bias`]) : y;
  };
  /** x [batch, seq, heads, D] rotated by its position: [x₁·cos − x₂·sin, x₂·cos + x₁·sin]. */
  const rotate = (x: string) => {
    const [x1, x2] = g.node('Split', [x], { axis: 3 }, 2);
    const first = g.op('Sub', [g.op('Mul', [x1, cos]), g.op('Mul', [x2, sin])]);
    const second = g.op('Add', [g.op('Mul', [x2, cos]), g.op('Mul', [x1, sin])]);
    return g.op('Concat', [first, second], { axis: 3 });
  };
  const toHeadsFirst = (x: string) => g.op('Transpose', [x], { perm: [0, 2, 1, 3] }); // [b, s, h, D] → [b, h, s, D]
  /** [b, KV, t, D] → [b, H, t, D], KV head j serving query heads j·group … j·group + group − 1. */
  const repeatHeads = (x: string) =>
    group === 1 ? x : g.op('Reshape', [g.op('Expand', [g.op('Unsqueeze', [x, axis2]), repeatKv]), repeatedShape]);

  // ---- embeddings and blocks
  let hidden = g.op('Gather', ['model.embed_tokens.weight', inputIds], { axis: 0 });
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const x = rmsNorm(hidden, `${p}.input_layernorm.weight`);
    let q = g.op('Reshape', [linear(x, `${p}.self_attn.q_proj`, config.qkvBias), queryHeads]); // [b, s, H, D]
    let k = g.op('Reshape', [linear(x, `${p}.self_attn.k_proj`, config.qkvBias), kvHeads]); // [b, s, KV, D]
    const v = g.op('Reshape', [linear(x, `${p}.self_attn.v_proj`, config.qkvBias), kvHeads]);
    if (config.qkNorm) {
      q = rmsNorm(q, `${p}.self_attn.q_norm.weight`);
      k = rmsNorm(k, `${p}.self_attn.k_norm.weight`);
    }
    const keys = g.op('Concat', [past[l].key, toHeadsFirst(rotate(k))], { axis: 2 }, presentKeyName(l)); // [b, KV, total, D]
    const values = g.op('Concat', [past[l].value, toHeadsFirst(v)], { axis: 2 }, presentValueName(l));
    const keysT = g.op('Transpose', [repeatHeads(keys)], { perm: [0, 1, 3, 2] }); // [b, H, D, total]
    const scores = g.op('Mul', [g.op('MatMul', [toHeadsFirst(rotate(q)), keysT]), scale]); // [b, H, s, total]
    const probs = g.op('Softmax', [g.op('Where', [allowed, scores, maskedScore])], { axis: -1 });
    const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, repeatHeads(values)])], { perm: [0, 2, 1, 3] }), mergedShape]); // [b, s, H·D]
    hidden = g.op('Add', [hidden, linear(context, `${p}.self_attn.o_proj`, config.outputBias)]);
    const y = rmsNorm(hidden, `${p}.post_attention_layernorm.weight`);
    const gate = linear(y, `${p}.mlp.gate_proj`, config.mlpBias);
    const up = linear(y, `${p}.mlp.up_proj`, config.mlpBias);
    const swiglu = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    hidden = g.op('Add', [hidden, linear(swiglu, `${p}.mlp.down_proj`, config.mlpBias)]);
  }

  // ---- head: logits = norm(hidden) · Wᵀ with W [vocab, hidden] (lm_head, or the embedding when tied)
  const head = config.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const flat = g.op('Reshape', [rmsNorm(hidden, 'model.norm.weight'), flatShape]); // [b·s, E]
  const flatLogits = g.op('Gemm', [flat, head], { transB: 1 }); // [b·s, V]
  const logitsShape = g.op('Concat', [g.op('Shape', [inputIds]), vocabDim], { axis: 0 });
  g.op('Reshape', [flatLogits, logitsShape], {}, 'logits');

  // ---- outputs
  g.output('logits', 'float32', [BATCH, SEQ, V]);
  for (let l = 0; l < L; l++) {
    g.output(presentKeyName(l), 'float32', [BATCH, KV, TOTAL, D]);
    g.output(presentValueName(l), 'float32', [BATCH, KV, TOTAL, D]);
  }
  return g.toBytes();
}
