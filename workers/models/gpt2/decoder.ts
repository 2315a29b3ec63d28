/**
 * The GPT-2 decoder as an ONNX graph, with the input/output layout transformers.js uses
 * (workers/ort/decoder-io.ts):
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
 *            position_ids [batch, seq] int64,
 *            past_key_values.{i}.key|value [batch, n_head, past, head_dim] float32
 *   outputs  logits [batch, seq, vocab] float32,
 *            present.{i}.key|value [batch, n_head, past+seq, head_dim] float32
 *
 * Weights carry their Hugging Face names and are either initializers (a self-contained
 * model.onnx for export) or graph inputs (the trainer's live GPU buffers are fed in place with
 * Tensor.fromGpuBuffer). Plain ONNX ops only, opset 15 (the onnx-proto package encodes ONNX 1.10,
 * whose newest opset is 15). LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div, as opset 15 has no
 * LayerNormalization) and gelu_new (Pow/Mul/Add/Tanh) are written out; ORT's graph optimiser
 * fuses them into its LayerNormalization and FastGelu WebGPU kernels, with weights as
 * initializers and as inputs alike (see test/unit/gpt2-onnx-files.test.ts).
 *
 * Masking: query t of the new tokens sits at absolute position past+t and may attend to key j iff
 * j ≤ past+t (causal) and attention_mask[b, j] = 1, so left and right padding both work. A fully
 * masked row (a padding query) softmaxes a constant and stays finite; its logits are meaningless.
 */
import { GraphBuilder, type Dim } from '../../onnx/graph';
import { pastKeyName, pastValueName, presentKeyName, presentValueName, type DecoderShape } from '../../ort/decoder-io';
import type { DecoderWeights } from '../family';
import { headDim, type Gpt2Config } from './config';
import { gpt2ParamSpecs, layerPrefix } from './params';

export const GPT2_DECODER_OPSET = 15;

/** The KV cache of the GPT-2 decoder: n_head heads of n_embd/n_head per layer. */
export function gpt2DecoderShape(config: Gpt2Config): DecoderShape {
  return { layers: config.nLayer, kvHeads: config.nHead, headDim: headDim(config) };
}

export type Gpt2DecoderWeights = DecoderWeights;

/** Added to a score where attention is not allowed (HF uses the dtype's minimum; any value ≪ −max|score| works). */
const MASKED_SCORE = -1e9;

const BATCH = 'batch_size';
const SEQ = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'total_sequence_length';

export function buildGpt2Decoder(config: Gpt2Config, weights: Gpt2DecoderWeights, name = 'gpt2_decoder'): Uint8Array {
  const g = new GraphBuilder(name, GPT2_DECODER_OPSET);
  const { nEmbd: E, nHead: H, nLayer: L, vocabSize: V } = config;
  const D = headDim(config);

  // ---- inputs
  const inputIds = g.input('input_ids', 'int64', [BATCH, SEQ]);
  const attentionMask = g.input('attention_mask', 'int64', [BATCH, TOTAL]);
  const positionIds = g.input('position_ids', 'int64', [BATCH, SEQ]);
  const kvDims: Dim[] = [BATCH, H, PAST, D];
  const past = Array.from({ length: L }, (_, l) => ({
    key: g.input(pastKeyName(l), 'float32', kvDims),
    value: g.input(pastValueName(l), 'float32', kvDims),
  }));
  for (const spec of gpt2ParamSpecs(config)) {
    if (weights.kind === 'inputs') g.input(spec.name, 'float32', spec.shape);
    else {
      const data = weights.params.get(spec.name);
      if (!data) throw new Error(`buildGpt2Decoder: parameter ${spec.name} is missing`);
      g.initializer(spec.name, data, spec.shape);
    }
  }

  // ---- constants
  const i64 = (cname: string, values: number[], dims = [values.length]) => g.initializer(cname, BigInt64Array.from(values.map(BigInt)), dims);
  const f32 = (cname: string, value: number) => g.initializer(cname, new Float32Array([value]), []);
  const zero = i64('c_zero', [0], []);
  const one = i64('c_one', [1], []);
  const axis1 = i64('c_axes_1', [1]);
  const axes12 = i64('c_axes_1_2', [1, 2]);
  const headShape = i64('c_head_shape', [0, 0, H, D]);
  const mergedShape = i64('c_merged_shape', [0, 0, E]);
  const flatShape = i64('c_flat_shape', [-1, E]);
  const vocabDim = i64('c_vocab_dim', [V]);
  const idxSeq = i64('c_index_1', [1], []);
  const epsilon = f32('c_layer_norm_eps', config.layerNormEpsilon);
  const two = f32('c_two', 2);
  const three = f32('c_three', 3);
  const half = f32('c_half', 0.5);
  const fOne = f32('c_float_one', 1);
  const geluCubic = f32('c_gelu_cubic', 0.044715);
  const geluScale = f32('c_gelu_scale', Math.sqrt(2 / Math.PI));
  const sqrtHeadDim = f32('c_sqrt_head_dim', Math.sqrt(D));
  const maskedScore = f32('c_masked_score', MASKED_SCORE);

  // ---- mask [batch, 1, seq, total]: causal over absolute positions, and attention_mask
  const seqLen = g.op('Gather', [g.op('Shape', [inputIds]), idxSeq], { axis: 0 });
  const totalLen = g.op('Gather', [g.op('Shape', [attentionMask]), idxSeq], { axis: 0 });
  const pastLen = g.op('Sub', [totalLen, seqLen]);
  const keyPositions = g.op('Range', [zero, totalLen, one]); // [total]
  const queryPositions = g.op('Unsqueeze', [g.op('Range', [pastLen, totalLen, one]), axis1]); // [seq, 1]
  const causal = g.op('LessOrEqual', [keyPositions, queryPositions]); // [seq, total]
  const padding = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: 9 /* BOOL */ }), axes12]); // [batch, 1, 1, total]
  const allowed = g.op('And', [causal, padding]);

  // ---- building blocks
  const layerNorm = (x: string, prefix: string) => {
    const mean = g.op('ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const centred = g.op('Sub', [x, mean]);
    const variance = g.op('ReduceMean', [g.op('Pow', [centred, two])], { axes: [-1], keepdims: 1 });
    const normalised = g.op('Div', [centred, g.op('Sqrt', [g.op('Add', [variance, epsilon])])]);
    return g.op('Add', [g.op('Mul', [normalised, `${prefix}.weight`]), `${prefix}.bias`]);
  };
  const conv1d = (x: string, prefix: string) => g.op('Add', [g.op('MatMul', [x, `${prefix}.weight`]), `${prefix}.bias`]);
  const geluNew = (x: string) => {
    const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [g.op('Pow', [x, three]), geluCubic])]), geluScale]);
    return g.op('Mul', [g.op('Mul', [x, half]), g.op('Add', [g.op('Tanh', [inner]), fOne])]);
  };
  const toHeads = (x: string) => g.op('Transpose', [g.op('Reshape', [x, headShape])], { perm: [0, 2, 1, 3] }); // [b, H, s, D]

  // ---- embeddings and blocks
  let hidden = g.op('Add', [g.op('Gather', ['transformer.wte.weight', inputIds], { axis: 0 }), g.op('Gather', ['transformer.wpe.weight', positionIds], { axis: 0 })]);
  for (let l = 0; l < L; l++) {
    const p = layerPrefix(l);
    const [q, k, v] = g.node('Split', [conv1d(layerNorm(hidden, `${p}.ln_1`), `${p}.attn.c_attn`)], { axis: 2 }, 3);
    const keys = g.op('Concat', [past[l].key, toHeads(k)], { axis: 2 }, presentKeyName(l)); // [b, H, total, D]
    const values = g.op('Concat', [past[l].value, toHeads(v)], { axis: 2 }, presentValueName(l));
    const scores = g.op('Div', [g.op('MatMul', [toHeads(q), g.op('Transpose', [keys], { perm: [0, 1, 3, 2] })]), sqrtHeadDim]); // [b, H, s, total]
    const probs = g.op('Softmax', [g.op('Where', [allowed, scores, maskedScore])], { axis: -1 });
    const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, values])], { perm: [0, 2, 1, 3] }), mergedShape]); // [b, s, E]
    hidden = g.op('Add', [hidden, conv1d(context, `${p}.attn.c_proj`)]);
    const mlp = conv1d(geluNew(conv1d(layerNorm(hidden, `${p}.ln_2`), `${p}.mlp.c_fc`)), `${p}.mlp.c_proj`);
    hidden = g.op('Add', [hidden, mlp]);
  }

  // ---- tied LM head: logits = ln_f(hidden) · wteᵀ, as Gemm(transB) so wte is never transposed per run
  const flat = g.op('Reshape', [layerNorm(hidden, 'transformer.ln_f'), flatShape]); // [b·s, E]
  const flatLogits = g.op('Gemm', [flat, 'transformer.wte.weight'], { transB: 1 }); // [b·s, V]
  const logitsShape = g.op('Concat', [g.op('Shape', [inputIds]), vocabDim], { axis: 0 });
  g.op('Reshape', [flatLogits, logitsShape], {}, 'logits');

  // ---- outputs
  g.output('logits', 'float32', [BATCH, SEQ, V]);
  for (let l = 0; l < L; l++) {
    g.output(presentKeyName(l), 'float32', [BATCH, H, TOTAL, D]);
    g.output(presentValueName(l), 'float32', [BATCH, H, TOTAL, D]);
  }
  return g.toBytes();
}
