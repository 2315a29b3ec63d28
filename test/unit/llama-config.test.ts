/**
 * The Llama family's config.json (workers/models/llama/): the fixture folders written by
 * transformers 5 parse with every difference named (GQA, Qwen2's biases, Qwen3's q/k norm and
 * head_dim, tied or untied head, the llama3 rope type); transformers 4's rope fields read the
 * same; parameter counts equal PyTorch's; what the lab does not implement is refused with a
 * sentence naming the field. Pure logic: no GPU.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llamaConfigFromJson, LlamaConfigError } from '../../workers/models/llama/config';
import { countLlamaParameters, llamaParamSpecs } from '../../workers/models/llama/params';
import { ropeInverseFrequencies, ropeTables } from '../../workers/models/llama/rope';

const dir = join(__dirname, '../fixtures/hf');
const raw = (name: string) => JSON.parse(readFileSync(join(dir, name, 'config.json'), 'utf8')) as Record<string, unknown>;
const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')).models as Record<string, { n_parameters: number; head_dim: number; kv_heads: number; n_layers: number }>;
const FOLDERS = ['llama-tied', 'qwen2', 'qwen3', 'llama-teacher'];

/** The error a config gives, as file, field and sentence. */
function refusal(config: Record<string, unknown>): { field?: string; message: string } {
  try {
    llamaConfigFromJson(config, 'x/config.json');
  } catch (e) {
    if (e instanceof LlamaConfigError) return { field: e.field, message: e.message };
    throw e;
  }
  throw new Error('the config was accepted');
}

describe('the Llama family config', () => {
  it.each(FOLDERS)('%s: shape and parameter count equal PyTorch’s', (name) => {
    const c = llamaConfigFromJson(raw(name), `${name}/config.json`);
    const ref = reference[name];
    expect(c.nLayer).toBe(ref.n_layers);
    expect(c.headDim).toBe(ref.head_dim);
    expect(c.nKvHead).toBe(ref.kv_heads);
    expect(countLlamaParameters(c)).toBe(ref.n_parameters);
  });

  it('names what differs between the fixtures', () => {
    const tied = llamaConfigFromJson(raw('llama-tied'));
    expect(tied).toMatchObject({ modelType: 'llama', nHead: 4, nKvHead: 2, headDim: 16, tiedEmbeddings: true, qkvBias: false, outputBias: false, mlpBias: false, qkNorm: false, rope: { type: 'default', theta: 10000 }, rmsNormEps: 1e-5, eosTokenId: 2 });
    expect(llamaConfigFromJson(raw('qwen2'))).toMatchObject({ modelType: 'qwen2', qkvBias: true, outputBias: false, tiedEmbeddings: true, rope: { type: 'default', theta: 1e6 } });
    const qwen3 = llamaConfigFromJson(raw('qwen3'));
    expect(qwen3).toMatchObject({ modelType: 'qwen3', hidden: 64, nHead: 4, headDim: 32, qkNorm: true, qkvBias: false, tiedEmbeddings: false });
    expect(llamaConfigFromJson(raw('llama-teacher')).rope).toEqual({ type: 'llama3', theta: 5e5, factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 });
    // Parameter names as transformers writes them.
    const names = llamaParamSpecs(qwen3).map((s) => s.name);
    expect(names).toContain('model.layers.1.self_attn.q_norm.weight');
    expect(names).toContain('lm_head.weight');
    expect(llamaParamSpecs(tied).map((s) => s.name)).not.toContain('lm_head.weight');
    expect(llamaParamSpecs(llamaConfigFromJson(raw('qwen2'))).find((s) => s.name === 'model.layers.0.self_attn.k_proj.bias')?.shape).toEqual([32]);
  });

  it('reads transformers 4’s rope_theta and rope_scaling as transformers 5’s rope_parameters', () => {
    const v5 = raw('llama-teacher');
    const { rope_parameters: p, ...rest } = v5 as { rope_parameters: Record<string, unknown> };
    const { rope_theta, ...scaling } = p;
    const v4 = { ...rest, rope_theta, rope_scaling: scaling };
    expect(llamaConfigFromJson(v4)).toEqual(llamaConfigFromJson(v5));
    // transformers 4's older spelling `type`, and linear scaling.
    const linear = llamaConfigFromJson({ ...rest, rope_theta: 1e4, rope_scaling: { type: 'linear', factor: 2 } });
    expect(linear.rope).toEqual({ type: 'linear', theta: 1e4, factor: 2 });
    // No rope fields at all: transformers' default θ.
    expect(llamaConfigFromJson(rest).rope).toEqual({ type: 'default', theta: 10000 });
  });

  it('computes llama3 frequencies as transformers does (the fixture’s multipliers)', () => {
    const c = llamaConfigFromJson(raw('llama-teacher'));
    const scaled = ropeInverseFrequencies(c.rope, c.headDim);
    const plain = ropeInverseFrequencies({ type: 'default', theta: 5e5 }, c.headDim);
    // shared/fixtures/hf/README.md: the eight frequencies are multiplied by [1, 0.4938, 0.25 × 6].
    const multipliers = Array.from(scaled, (f, i) => f / plain[i]);
    expect(multipliers[0]).toBeCloseTo(1, 12);
    expect(multipliers[1]).toBeCloseTo(0.4938, 4);
    for (const m of multipliers.slice(2)) expect(m).toBeCloseTo(0.25, 12);
    const { cos, sin } = ropeTables(c, 3);
    // Position 0 turns nothing; position 2 of pair 0 turns by 2 radians.
    expect(Array.from(cos.slice(0, 8))).toEqual(new Array(8).fill(1));
    expect(cos[2 * 8]).toBeCloseTo(Math.cos(2), 15);
    expect(sin[2 * 8]).toBeCloseTo(Math.sin(2), 15);
  });

  it('refuses what it does not implement, with a sentence naming the field', () => {
    const base = raw('llama-tied');
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...base, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4, factor: 4 } }, 'rope_parameters.rope_type', /"yarn", which the lab does not implement: it runs rope types default, linear and llama3/],
      [{ ...base, rope_parameters: undefined, rope_scaling: { type: 'dynamic', factor: 2 } }, 'rope_scaling.type', /"dynamic"/],
      [{ ...raw('qwen2'), use_sliding_window: true, sliding_window: 4096 }, 'use_sliding_window', /sliding-window attention/],
      [{ ...raw('qwen3'), layer_types: ['full_attention', 'sliding_attention'] }, 'layer_types', /full causal attention only/],
      [{ ...base, num_experts: 8 }, 'num_experts', /mixture-of-experts models are not supported/],
      [{ ...base, model_type: 'mistral' }, 'model_type', /must be one of llama, qwen2, qwen3/],
      [{ ...base, num_key_value_heads: 3 }, 'num_key_value_heads', /must divide num_attention_heads \(4\)/],
      [{ ...base, hidden_act: 'gelu' }, 'hidden_act', /must be "silu"/],
      [{ ...base, hidden_size: undefined }, 'hidden_size', /must be an integer/],
    ];
    for (const [config, field, message] of cases) {
      const r = refusal(config);
      expect(r.field).toBe(field);
      expect(r.message).toMatch(message);
      expect(r.message.startsWith('x/config.json: field')).toBe(true);
    }
  });
});
