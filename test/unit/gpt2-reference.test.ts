import { describe, expect, it } from 'vitest';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { randomGpt2Params, seededRandom } from '../../workers/models/gpt2/params';
import { geluNew, Gpt2Reference } from '../reference/gpt2';

const CONFIG: Gpt2Config = {
  modelType: 'gpt2', nLayer: 2, nHead: 4, nEmbd: 32, nInner: 128, nPositions: 24, vocabSize: 97,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('GPT-2 reference forward (float64)', () => {
  const params = randomGpt2Params(CONFIG, { seed: 3, scheme: 'test' });
  const model = new Gpt2Reference(CONFIG, params);
  const rng = seededRandom(5);
  const tokens = Array.from({ length: 12 }, () => Math.floor(rng.uniform() * CONFIG.vocabSize));

  it('gelu_new is the tanh approximation HF uses (not the erf GELU)', () => {
    // HF: gelu_new(1) = 0.8411919906082768; the exact erf GELU gives 0.8413447460685429.
    expect(geluNew(1)).toBeCloseTo(0.8411919906082768, 15);
    expect(geluNew(-1)).toBeCloseTo(-0.15880800939172324, 15);
    expect(geluNew(0)).toBe(0);
  });

  it('prefill then one token at a time gives the logits of the full prefix', () => {
    const full = model.prefill(tokens).logits;
    const { logits: head, cache } = model.prefill(tokens.slice(0, 5));
    const stepped = [...head];
    for (const t of tokens.slice(5)) stepped.push(model.step(cache, t));
    expect(cache.length).toBe(tokens.length);
    expect(cache.keys[1].length).toBe(tokens.length);
    // The cached path performs exactly the uncached path's operations in the same order (each
    // query's scores over keys 0..its position, per-token linears), so the results are identical.
    for (let t = 0; t < tokens.length; t++) expect(stepped[t], `position ${t}`).toEqual(full[t]);
    // The logits are O(1–10) and vary across positions: the comparison is not between zeros.
    const scale = Math.max(...full.map((row) => Math.max(...row.map(Math.abs))));
    expect(scale).toBeGreaterThan(1);
    expect(maxAbsDiff(full[3], full[4])).toBeGreaterThan(0.1);
  });

  it('is causal: changing a later token leaves earlier logits unchanged', () => {
    const a = model.prefill(tokens).logits;
    const changed = [...tokens];
    changed[8] = (changed[8] + 1) % CONFIG.vocabSize;
    const b = model.prefill(changed).logits;
    for (let t = 0; t < 8; t++) expect(maxAbsDiff(a[t], b[t])).toBe(0);
    expect(maxAbsDiff(a[8], b[8])).toBeGreaterThan(0.01);
  });

  it('with no attention or MLP weights, logits are ln_f(wte[token] + wpe[position]) · wteᵀ', () => {
    const zeroed = new Map(params);
    for (const [name, data] of params) if (/\.h\.\d+\.(attn|mlp)\./.test(name)) zeroed.set(name, new Float32Array(data.length));
    const logits = new Gpt2Reference(CONFIG, zeroed).prefill([5, 9]).logits;
    const E = CONFIG.nEmbd;
    const wte = params.get('transformer.wte.weight')!;
    const wpe = params.get('transformer.wpe.weight')!;
    const g = params.get('transformer.ln_f.weight')!;
    const beta = params.get('transformer.ln_f.bias')!;
    [5, 9].forEach((token, position) => {
      const x = Array.from({ length: E }, (_, e) => wte[token * E + e] + wpe[position * E + e]);
      const mean = x.reduce((s, v) => s + v, 0) / E;
      const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / E;
      const h = x.map((v, e) => ((v - mean) / Math.sqrt(variance + CONFIG.layerNormEpsilon)) * g[e] + beta[e]);
      const expected = Array.from({ length: CONFIG.vocabSize }, (_, v) => h.reduce((s, he, e) => s + he * wte[v * E + e], 0));
      // Same float64 formula summed in a different order: agreement to ~1e-15 of O(10) values.
      expect(maxAbsDiff(logits[position], expected)).toBeLessThan(1e-12);
    });
  });

  it('rejects token ids and positions outside the model', () => {
    expect(() => model.prefill([CONFIG.vocabSize])).toThrow(/token id 97 outside 0\.\.96/);
    expect(() => model.forward([1], model.emptyCache(), [CONFIG.nPositions])).toThrow(/position 24 outside 0\.\.23/);
  });
});
