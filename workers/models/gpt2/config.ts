/**
 * The GPT-2 family's config.json, with Hugging Face's field names (model_type "gpt2", n_layer,
 * n_head, n_embd, n_positions, vocab_size, layer_norm_epsilon, activation_function, tied LM
 * head). Parsing validates every field the lab relies on and fails with an error that names the
 * file and the field; a corrupt or incomplete config is never turned into NaN sizes.
 */

export interface Gpt2Config {
  modelType: 'gpt2';
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** Width of the MLP's hidden layer (HF `n_inner`; null there means 4·n_embd). */
  nInner: number;
  nPositions: number;
  vocabSize: number;
  layerNormEpsilon: number;
  /** tanh-approximated GELU; HF calls it `gelu_new` (identical to `gelu_pytorch_tanh`). */
  activationFunction: 'gelu_new';
  bosTokenId?: number;
  eosTokenId?: number;
}

/** n_embd / n_head. */
export function headDim(config: Gpt2Config): number {
  return config.nEmbd / config.nHead;
}

/** A config.json problem: which file, which field (absent when the file is not JSON at all). */
export class Gpt2ConfigError extends Error {
  constructor(readonly file: string, readonly field: string | undefined, detail: string) {
    super(field ? `${file}: field "${field}" ${detail}` : `${file}: ${detail}`);
    this.name = 'Gpt2ConfigError';
  }
}

/** Anything absurdly large is a corrupt file, not a model the lab could hold. */
const MAX_SIZE = 1 << 24;

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

type Raw = Record<string, unknown>;

function positiveInteger(raw: Raw, field: string, file: string, fallback?: number): number {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SIZE) {
    throw new Gpt2ConfigError(file, field, `must be an integer in 1..${MAX_SIZE}; ${describe(raw[field])}`);
  }
  return value;
}

function optionalTokenId(raw: Raw, field: string, file: string, vocabSize: number): number | undefined {
  const value = raw[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize) {
    throw new Gpt2ConfigError(file, field, `must be a token id in 0..${vocabSize - 1}; ${describe(value)}`);
  }
  return value;
}

/** Flags HF GPT-2 supports that change the math; the lab's graph and reference implement the defaults only. */
const REQUIRED_FLAGS: [field: string, value: boolean][] = [
  ['tie_word_embeddings', true],
  ['scale_attn_weights', true],
  ['scale_attn_by_inverse_layer_idx', false],
  ['add_cross_attention', false],
];

/** Validates an already parsed config.json object. */
export function gpt2ConfigFromJson(raw: unknown, file = 'config.json'): Gpt2Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Gpt2ConfigError(file, undefined, `must hold a JSON object; ${describe(raw)}`);
  }
  const r = raw as Raw;
  if (r.model_type !== 'gpt2') {
    throw new Gpt2ConfigError(file, 'model_type', `must be "gpt2" (the GPT-2 family); ${describe(r.model_type)}`);
  }
  const nLayer = positiveInteger(r, 'n_layer', file);
  const nHead = positiveInteger(r, 'n_head', file);
  const nEmbd = positiveInteger(r, 'n_embd', file);
  if (nEmbd % nHead !== 0) throw new Gpt2ConfigError(file, 'n_embd', `(${nEmbd}) must be a multiple of n_head (${nHead})`);
  const nInner = r.n_inner === null ? 4 * nEmbd : positiveInteger(r, 'n_inner', file, 4 * nEmbd);
  const nPositions = positiveInteger(r, 'n_positions', file);
  const vocabSize = positiveInteger(r, 'vocab_size', file);
  const eps = r.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0 || eps >= 1) {
    throw new Gpt2ConfigError(file, 'layer_norm_epsilon', `must be a number in (0, 1); ${describe(r.layer_norm_epsilon)}`);
  }
  const activation = r.activation_function ?? 'gelu_new';
  if (activation !== 'gelu_new' && activation !== 'gelu_pytorch_tanh') {
    throw new Gpt2ConfigError(file, 'activation_function', `must be "gelu_new" (tanh-approximated GELU); ${describe(activation)}`);
  }
  for (const [field, expected] of REQUIRED_FLAGS) {
    if (r[field] !== undefined && r[field] !== expected) {
      throw new Gpt2ConfigError(file, field, `must be ${expected} (the only GPT-2 variant the lab implements); ${describe(r[field])}`);
    }
  }
  return {
    modelType: 'gpt2',
    nLayer,
    nHead,
    nEmbd,
    nInner,
    nPositions,
    vocabSize,
    layerNormEpsilon: eps,
    activationFunction: 'gelu_new',
    bosTokenId: optionalTokenId(r, 'bos_token_id', file, vocabSize),
    eosTokenId: optionalTokenId(r, 'eos_token_id', file, vocabSize),
  };
}

/** Parses the text of a config.json. */
export function parseGpt2Config(text: string, file = 'config.json'): Gpt2Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Gpt2ConfigError(file, undefined, `is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return gpt2ConfigFromJson(raw, file);
}

/** The config.json the lab writes for a GPT-2 model: loadable by transformers and transformers.js. */
export function gpt2ConfigToJson(config: Gpt2Config): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_embd: config.nEmbd,
    n_inner: config.nInner === 4 * config.nEmbd ? null : config.nInner,
    n_positions: config.nPositions,
    n_ctx: config.nPositions,
    vocab_size: config.vocabSize,
    layer_norm_epsilon: config.layerNormEpsilon,
    activation_function: 'gelu_new',
    tie_word_embeddings: true,
    scale_attn_weights: true,
    use_cache: true,
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
  };
}
