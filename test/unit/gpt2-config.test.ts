import { describe, expect, it } from 'vitest';
import { Gpt2ConfigError, gpt2ConfigToJson, parseGpt2Config } from '../../workers/models/gpt2/config';
import { countGpt2Parameters } from '../../workers/models/gpt2/params';

/** distilgpt2's config.json as Hugging Face publishes it (abridged of task-specific fields). */
const DISTILGPT2 = {
  _num_labels: 1,
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_inner: null,
  n_layer: 6,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  vocab_size: 50257,
};

function configError(text: string, file = 'models/student/config.json'): Gpt2ConfigError {
  try {
    parseGpt2Config(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(Gpt2ConfigError);
    return e as Gpt2ConfigError;
  }
  throw new Error(`expected ${text.slice(0, 60)} to be rejected`);
}

const withField = (field: string, value: unknown) => JSON.stringify({ ...DISTILGPT2, [field]: value });
const without = (field: string) => JSON.stringify({ ...DISTILGPT2, [field]: undefined });

describe('GPT-2 config.json', () => {
  it('reads a real GPT-2-family config (distilgpt2) with HF defaults for n_inner', () => {
    const config = parseGpt2Config(JSON.stringify(DISTILGPT2));
    expect(config).toMatchObject({ nLayer: 6, nHead: 12, nEmbd: 768, nInner: 3072, nPositions: 1024, vocabSize: 50257, layerNormEpsilon: 1e-5, bosTokenId: 50256, eosTokenId: 50256 });
    // The published sizes: distilgpt2 has 81,912,576 parameters and gpt2 124,439,808 (tied head counted once).
    expect(countGpt2Parameters(config)).toBe(81_912_576);
    expect(countGpt2Parameters({ ...config, nLayer: 12 })).toBe(124_439_808);
  });

  it('writes a config.json that reads back to the same config', () => {
    const config = parseGpt2Config(JSON.stringify({ ...DISTILGPT2, n_inner: 1000 }));
    const again = parseGpt2Config(JSON.stringify(gpt2ConfigToJson(config)));
    expect(again).toEqual(config);
    expect(gpt2ConfigToJson(config)).toMatchObject({ model_type: 'gpt2', tie_word_embeddings: true, activation_function: 'gelu_new' });
  });

  it('rejects text that is not JSON (truncated, empty, binary) naming the file', () => {
    for (const text of [JSON.stringify(DISTILGPT2).slice(0, 80), '', '\u0000\u0001garbage']) {
      const e = configError(text);
      expect(e.file).toBe('models/student/config.json');
      expect(e.field).toBeUndefined();
      expect(e.message).toMatch(/^models\/student\/config\.json: is not valid JSON/);
    }
    expect(configError('[1, 2]').message).toMatch(/must hold a JSON object/);
  });

  it('names the missing or malformed field instead of producing NaN sizes', () => {
    const cases: [text: string, field: string][] = [
      [without('n_head'), 'n_head'],
      [without('n_layer'), 'n_layer'],
      [without('vocab_size'), 'vocab_size'],
      [without('n_positions'), 'n_positions'],
      [without('model_type'), 'model_type'],
      [withField('n_head', '12'), 'n_head'],
      [withField('n_embd', 767.5), 'n_embd'],
      [withField('n_embd', 770), 'n_embd'], // not a multiple of n_head
      [withField('n_layer', 0), 'n_layer'],
      [withField('n_layer', -2), 'n_layer'],
      [withField('vocab_size', 1e12), 'vocab_size'],
      [withField('n_inner', 'big'), 'n_inner'],
      [withField('layer_norm_epsilon', 'tiny'), 'layer_norm_epsilon'],
      [withField('layer_norm_epsilon', 0), 'layer_norm_epsilon'],
      [withField('activation_function', 'relu'), 'activation_function'],
      [withField('model_type', 'llama'), 'model_type'],
      [withField('tie_word_embeddings', false), 'tie_word_embeddings'],
      [withField('scale_attn_by_inverse_layer_idx', true), 'scale_attn_by_inverse_layer_idx'],
      [withField('eos_token_id', 50257), 'eos_token_id'],
    ];
    for (const [text, field] of cases) {
      const e = configError(text);
      expect(e.field, text).toBe(field);
      expect(e.message).toContain('models/student/config.json');
      expect(e.message).toContain(`"${field}"`);
    }
  });
});
