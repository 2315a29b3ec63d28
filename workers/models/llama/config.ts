/**
 * The Llama family's config.json: `model_type` llama (Llama 2/3, SmolLM2), qwen2 (Qwen2/2.5) and
 * qwen3, with Hugging Face's field names. Both styles transformers writes are read: transformers
 * 5's `rope_parameters` and transformers 4's top-level `rope_theta` / `rope_scaling`. Parsing
 * validates every field the lab relies on and names the file and the field when it fails; what
 * the lab does not implement (sliding-window attention, rope types other than default, linear and
 * llama3, mixtures of experts, partial rotary embeddings) is refused, never run approximately.
 */

export type LlamaModelType = 'llama' | 'qwen2' | 'qwen3';

export const LLAMA_MODEL_TYPES: readonly LlamaModelType[] = ['llama', 'qwen2', 'qwen3'];

/** Rotary position embeddings: the rope types the lab implements. */
export type RopeScaling =
  | { type: 'default'; theta: number }
  /** Positions divided by `factor` (HF "linear"). */
  | { type: 'linear'; theta: number; factor: number }
  /** Llama 3.x: long wavelengths divided by `factor`, short ones kept, smooth in between. */
  | { type: 'llama3'; theta: number; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface LlamaConfig {
  modelType: LlamaModelType;
  nLayer: number;
  /** hidden_size. */
  hidden: number;
  nHead: number;
  /** num_key_value_heads: nHead / nKvHead query heads share each key/value head. */
  nKvHead: number;
  /** Width of one head (Qwen3 sets it apart from hidden / nHead). */
  headDim: number;
  /** intermediate_size: the SwiGLU MLP's width. */
  intermediate: number;
  vocabSize: number;
  /** max_position_embeddings. */
  nPositions: number;
  rmsNormEps: number;
  /** The output head is the embedding matrix (no lm_head.weight). */
  tiedEmbeddings: boolean;
  /** Biases on q, k and v (Qwen2 always; Llama's attention_bias). */
  qkvBias: boolean;
  /** A bias on o_proj (Llama's attention_bias only). */
  outputBias: boolean;
  /** Biases on gate, up and down (Llama's mlp_bias). */
  mlpBias: boolean;
  /** RMSNorm of each query and key head before the rotation (Qwen3). */
  qkNorm: boolean;
  rope: RopeScaling;
  bosTokenId?: number;
  eosTokenId?: number;
}

/** A config.json problem: which file, which field (absent when the file is not JSON at all). */
export class LlamaConfigError extends Error {
  constructor(readonly file: string, readonly field: string | undefined, detail: string) {
    super(field ? `${file}: field "${field}" ${detail}` : `${file}: ${detail}`);
    this.name = 'LlamaConfigError';
  }
}

/** Anything absurdly large is a corrupt file, not a model the lab could hold. */
const MAX_SIZE = 1 << 24;

type Raw = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === undefined) return 'it is missing';
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A value nested deeper than the stack allows (a corrupt or hostile file).
    return `got ${Array.isArray(value) ? 'a list' : 'an object'} nested too deeply to show`;
  }
  return `got ${text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}

function positiveInteger(raw: Raw, field: string, file: string, fallback?: number): number {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SIZE) {
    throw new LlamaConfigError(file, field, `must be an integer in 1..${MAX_SIZE}; ${describe(raw[field])}`);
  }
  return value;
}

function positiveNumber(raw: Raw, field: string, file: string, where = field, fallback?: number): number {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new LlamaConfigError(file, where, `must be a positive number; ${describe(raw[field])}`);
  }
  return value;
}

function flag(raw: Raw, field: string, file: string, fallback: boolean): boolean {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'boolean') throw new LlamaConfigError(file, field, `must be true or false; ${describe(raw[field])}`);
  return value;
}

function optionalTokenId(raw: Raw, field: string, file: string, vocabSize: number): number | undefined {
  let value = raw[field];
  // Llama 3 lists several end-of-text ids; the first is the one generation stops at by default.
  if (Array.isArray(value)) value = value[0];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize) {
    throw new LlamaConfigError(file, field, `must be a token id in 0..${vocabSize - 1}; ${describe(raw[field])}`);
  }
  return value;
}

/** Where the rope settings are: transformers 5's rope_parameters, else transformers 4's fields. */
function ropeFromJson(r: Raw, file: string): RopeScaling {
  const v5 = r.rope_parameters;
  let params: Raw;
  let prefix: string;
  if (v5 !== undefined && v5 !== null) {
    if (typeof v5 !== 'object' || Array.isArray(v5)) throw new LlamaConfigError(file, 'rope_parameters', `must be an object; ${describe(v5)}`);
    params = v5 as Raw;
    prefix = 'rope_parameters.';
  } else {
    const scaling = r.rope_scaling;
    if (scaling !== undefined && scaling !== null && (typeof scaling !== 'object' || Array.isArray(scaling))) {
      throw new LlamaConfigError(file, 'rope_scaling', `must be an object or null; ${describe(scaling)}`);
    }
    params = { rope_theta: r.rope_theta ?? 10000, ...((scaling as Raw | null) ?? {}) };
    prefix = scaling ? 'rope_scaling.' : '';
  }
  const typeField = params.rope_type !== undefined ? 'rope_type' : 'type';
  const type = params[typeField] ?? 'default';
  const at = (field: string) => `${prefix}${field}`;
  const theta = positiveNumber(params, 'rope_theta', file, params === v5 ? at('rope_theta') : 'rope_theta');
  if (type === 'default') return { type, theta };
  if (type === 'linear') return { type, theta, factor: positiveNumber(params, 'factor', file, at('factor')) };
  if (type === 'llama3') {
    const rope = {
      type,
      theta,
      factor: positiveNumber(params, 'factor', file, at('factor')),
      lowFreqFactor: positiveNumber(params, 'low_freq_factor', file, at('low_freq_factor')),
      highFreqFactor: positiveNumber(params, 'high_freq_factor', file, at('high_freq_factor')),
      originalMaxPositions: positiveInteger(params, 'original_max_position_embeddings', file),
    } as const;
    if (rope.highFreqFactor <= rope.lowFreqFactor) {
      throw new LlamaConfigError(file, at('high_freq_factor'), `(${rope.highFreqFactor}) must be larger than low_freq_factor (${rope.lowFreqFactor})`);
    }
    return rope;
  }
  // describe(), not String(): a list nested deep would overflow the stack in Array.prototype.join.
  const shown = typeof type === 'string' ? `"${type}"` : describe(type).replace(/^got /, '');
  throw new LlamaConfigError(
    file,
    at(typeField),
    `is ${shown}, which the lab does not implement: it runs rope types default, linear and llama3 (choose a model without ${typeof type === 'string' ? type : 'that'} scaling)`,
  );
}

/** What the lab refuses rather than run approximately: each check names its field. */
function refuseUnsupported(r: Raw, file: string): void {
  if (r.use_sliding_window === true) {
    throw new LlamaConfigError(file, 'use_sliding_window', 'is true: the lab runs full causal attention only, not sliding-window attention');
  }
  if (r.model_type === 'llama' && r.sliding_window !== undefined && r.sliding_window !== null) {
    throw new LlamaConfigError(file, 'sliding_window', `is set (${describe(r.sliding_window)}): the lab runs full causal attention only`);
  }
  if (Array.isArray(r.layer_types) && r.layer_types.some((t) => t !== 'full_attention')) {
    throw new LlamaConfigError(file, 'layer_types', `has layers other than "full_attention" (${describe(r.layer_types)}): the lab runs full causal attention only`);
  }
  for (const field of ['num_experts', 'num_local_experts', 'num_experts_per_tok', 'moe_intermediate_size']) {
    const v = r[field];
    if (v !== undefined && v !== null && v !== 0) {
      throw new LlamaConfigError(file, field, `is set (${describe(v)}): mixture-of-experts models are not supported; the lab trains dense decoders`);
    }
  }
  const partial = r.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw new LlamaConfigError(file, 'partial_rotary_factor', `must be 1 (the rotation covers the whole head); ${describe(partial)}`);
  }
  const act = r.hidden_act ?? 'silu';
  if (act !== 'silu') throw new LlamaConfigError(file, 'hidden_act', `must be "silu" (SwiGLU); ${describe(act)}`);
}

/** Validates an already parsed config.json object of the Llama family. */
export function llamaConfigFromJson(raw: unknown, file = 'config.json'): LlamaConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new LlamaConfigError(file, undefined, `must hold a JSON object; ${describe(raw)}`);
  }
  const r = raw as Raw;
  const modelType = r.model_type;
  if (!LLAMA_MODEL_TYPES.includes(modelType as LlamaModelType)) {
    throw new LlamaConfigError(file, 'model_type', `must be one of ${LLAMA_MODEL_TYPES.join(', ')} (the Llama family); ${describe(modelType)}`);
  }
  const type = modelType as LlamaModelType;
  refuseUnsupported(r, file);
  const nLayer = positiveInteger(r, 'num_hidden_layers', file);
  const hidden = positiveInteger(r, 'hidden_size', file);
  const nHead = positiveInteger(r, 'num_attention_heads', file);
  const nKvHead = positiveInteger(r, 'num_key_value_heads', file, nHead);
  if (nHead % nKvHead !== 0) {
    throw new LlamaConfigError(file, 'num_key_value_heads', `(${nKvHead}) must divide num_attention_heads (${nHead}): each key/value head serves a whole group of query heads`);
  }
  if (r.head_dim === undefined || r.head_dim === null) {
    if (hidden % nHead !== 0) throw new LlamaConfigError(file, 'hidden_size', `(${hidden}) must be a multiple of num_attention_heads (${nHead}) when head_dim is not given`);
  }
  const headDim = r.head_dim === undefined || r.head_dim === null ? hidden / nHead : positiveInteger(r, 'head_dim', file);
  if (headDim % 2 !== 0) throw new LlamaConfigError(file, 'head_dim', `(${headDim}) must be even: the rotation turns pairs of dimensions`);
  const vocabSize = positiveInteger(r, 'vocab_size', file);
  const attentionBias = flag(r, 'attention_bias', file, false);
  return {
    modelType: type,
    nLayer,
    hidden,
    nHead,
    nKvHead,
    headDim,
    intermediate: positiveInteger(r, 'intermediate_size', file),
    vocabSize,
    nPositions: positiveInteger(r, 'max_position_embeddings', file),
    rmsNormEps: positiveNumber(r, 'rms_norm_eps', file, 'rms_norm_eps', 1e-6),
    tiedEmbeddings: flag(r, 'tie_word_embeddings', file, false),
    qkvBias: type === 'qwen2' || attentionBias,
    outputBias: type === 'llama' && attentionBias,
    mlpBias: type === 'llama' && flag(r, 'mlp_bias', file, false),
    qkNorm: type === 'qwen3',
    rope: ropeFromJson(r, file),
    bosTokenId: optionalTokenId(r, 'bos_token_id', file, vocabSize),
    eosTokenId: optionalTokenId(r, 'eos_token_id', file, vocabSize),
  };
}
