/**
 * The Llama family behind the model-family seam (workers/models/family.ts): one implementation,
 * registered once per config.json `model_type` it reads (llama, qwen2, qwen3), each with the
 * name people know it by.
 */
import { ort } from '../../ort/runtime';
import type { ModelArchitecture } from '../../contract/models';
import type { ModelFamily } from '../family';
import type { LlamaConfig, LlamaModelType, RopeScaling } from './config';
import { llamaConfigFromJson } from './config';
import { buildLlamaDecoder, llamaDecoderShape } from './decoder';
import { LlamaGraph, prepareLlamaTraining } from './graph';
import { countLlamaParameters, llamaParamSpecs } from './params';
import { readLlamaSafetensors, writeLlamaSafetensors } from './weights';

/** For people, and transformers' class for config.json's `architectures`. */
const NAMES: Record<LlamaModelType, { name: string; architecture: string }> = {
  llama: { name: 'Llama', architecture: 'LlamaForCausalLM' },
  qwen2: { name: 'Qwen2', architecture: 'Qwen2ForCausalLM' },
  qwen3: { name: 'Qwen3', architecture: 'Qwen3ForCausalLM' },
};

/** The weights as feeds of the decoder built with weights as inputs, read in place from GPU buffers. */
export function llamaWeightFeedsFromGpu(config: LlamaConfig, buffers: ReadonlyMap<string, GPUBuffer>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of llamaParamSpecs(config)) {
    const buffer = buffers.get(spec.name);
    if (!buffer) throw new Error(`${NAMES[config.modelType].name} weight feeds: no GPU buffer for ${spec.name}`);
    feeds[spec.name] = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: spec.shape });
  }
  return feeds;
}

/** rope_parameters as transformers 5 writes them. */
function ropeToJson(rope: RopeScaling): Record<string, unknown> {
  const base = { rope_theta: rope.theta, rope_type: rope.type };
  if (rope.type === 'default') return base;
  if (rope.type === 'linear') return { ...base, factor: rope.factor };
  return {
    ...base,
    factor: rope.factor,
    low_freq_factor: rope.lowFreqFactor,
    high_freq_factor: rope.highFreqFactor,
    original_max_position_embeddings: rope.originalMaxPositions,
  };
}

/**
 * The config.json the lab writes, in transformers 5's words (rope_parameters, head_dim, dtype),
 * which transformers 5 and transformers.js load; fields that only some model types have are
 * written for those.
 */
export function llamaConfigToJson(c: LlamaConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [NAMES[c.modelType].architecture],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKvHead,
    hidden_act: 'silu',
    max_position_embeddings: c.nPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_parameters: ropeToJson(c.rope),
    tie_word_embeddings: c.tiedEmbeddings,
    attention_dropout: 0,
    dtype: 'float32',
    use_cache: true,
  };
  // transformers 5 writes head_dim for Llama and Qwen3; Qwen2 reads it when given, else hidden / heads.
  if (c.modelType !== 'qwen2' || c.headDim !== c.hidden / c.nHead) json.head_dim = c.headDim;
  if (c.modelType === 'llama') {
    json.attention_bias = c.qkvBias;
    json.mlp_bias = c.mlpBias;
  }
  if (c.modelType === 'qwen3') json.attention_bias = false;
  if (c.modelType !== 'llama') json.use_sliding_window = false;
  if (c.bosTokenId !== undefined) json.bos_token_id = c.bosTokenId;
  if (c.eosTokenId !== undefined) json.eos_token_id = c.eosTokenId;
  return json;
}

function describeRope(rope: RopeScaling): string {
  const theta = `θ ${rope.theta.toLocaleString('en-US')}`;
  if (rope.type === 'default') return `rotary (${theta})`;
  if (rope.type === 'linear') return `rotary (linear, ${theta}, factor ${rope.factor})`;
  return `rotary (llama3, ${theta}, factor ${rope.factor}, from ${rope.originalMaxPositions} positions)`;
}

export function llamaArchitecture(c: LlamaConfig): ModelArchitecture {
  const extras = [c.qkvBias && 'q/k/v biases', c.outputBias && 'o_proj bias', c.mlpBias && 'MLP biases', c.qkNorm && 'q/k RMSNorm'].filter((x): x is string => !!x);
  return {
    family: NAMES[c.modelType].name,
    layers: c.nLayer,
    hidden: c.hidden,
    heads: c.nHead,
    kvHeads: c.nKvHead,
    headDim: c.headDim,
    intermediate: c.intermediate,
    positions: describeRope(c.rope),
    tiedHead: c.tiedEmbeddings,
    extras,
    parameters: countLlamaParameters(c),
  };
}

/**
 * What the training graph (graph.ts) holds for a micro-batch of `batch` × `sequence` tokens, all
 * layers together, by name: the training memory check counts these (workers/models/memory.ts).
 */
export function llamaTrainingActivations(c: LlamaConfig, batch: number, sequence: number): { name: string; bytes: number }[] {
  const { nLayer: L, hidden: E, intermediate: I, nHead: H, nKvHead: Hkv, headDim: D, qkNorm } = c;
  const N = batch * sequence;
  const qk = qkNorm ? 1 : 0;
  return [
    { name: 'residual stream and RMSNorm outputs', bytes: (4 * L + 2) * N * E * 4 },
    { name: 'attention q, k, v (KV heads repeated over query heads) and context', bytes: (4 * L * N * H * D + qk * L * N * (H + Hkv) * D + N * (H + 2 * Hkv) * D) * 4 },
    { name: 'attention probabilities', bytes: (L + 1) * batch * H * sequence * sequence * 4 },
    { name: 'SwiGLU activations (gate, up and their product)', bytes: 3 * L * N * I * 4 },
    { name: "the backward's gradient buffers", bytes: (2 * N * E + (5 + qk) * N * H * D + (2 + qk) * N * Hkv * D + 3 * N * I) * 4 },
    { name: 'RMSNorm statistics', bytes: ((2 * L + 1) * N + qk * L * N * (H + Hkv)) * 4 },
  ];
}

function llamaFamily(modelType: LlamaModelType): ModelFamily<LlamaConfig> {
  return {
    modelType,
    name: NAMES[modelType].name,
    configFromJson: (raw, file) => {
      const config = llamaConfigFromJson(raw, file);
      // The registry picks the family by model_type, so this only guards direct calls.
      if (config.modelType !== modelType) throw new Error(`${file ?? 'config.json'}: model_type "${config.modelType}" is not ${NAMES[modelType].name}'s "${modelType}"`);
      return config;
    },
    describeSize: (config) => `num_hidden_layers ${config.nLayer}`,
    configToJson: llamaConfigToJson,
    architecture: llamaArchitecture,
    paramSpecs: llamaParamSpecs,
    countParameters: countLlamaParameters,
    readSafetensors: readLlamaSafetensors,
    writeSafetensors: writeLlamaSafetensors,
    decoderShape: llamaDecoderShape,
    activationTensors: (c, batch, sequence) => [
      { name: 'SwiGLU gate activations (one layer)', bytes: batch * sequence * c.intermediate * 4 },
      { name: 'SwiGLU up activations (one layer)', bytes: batch * sequence * c.intermediate * 4 },
      { name: 'attention scores (one layer)', bytes: batch * c.nHead * sequence * sequence * 4 },
      { name: 'keys repeated over query heads (one layer)', bytes: batch * c.nHead * sequence * c.headDim * 4 },
    ],
    trainingActivations: llamaTrainingActivations,
    buildDecoder: (config, weights) => buildLlamaDecoder(config, weights),
    weightFeeds: llamaWeightFeedsFromGpu,
    prepareTraining: prepareLlamaTraining,
    createTrainingGraph: (device, config, weights) => new LlamaGraph(device, config, weights),
  };
}

/** One family object per model_type, sharing the implementation. */
export const llamaFamilies: readonly ModelFamily<LlamaConfig>[] = (['llama', 'qwen2', 'qwen3'] as const).map(llamaFamily);
