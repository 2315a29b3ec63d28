/**
 * A plain TypeScript GPT-2 forward pass in float64: the ground truth that the ONNX decoder and
 * the lab's kernels are tested against. One sequence at a time (no padding: padding is the
 * graph's business, and the tests check that a padded batch row equals this unpadded run).
 *
 * KV cache: `prefill(tokens)` runs a prompt and returns its cache; `step(cache, token)` runs one
 * more token after it. Keys/values are kept per layer and position, each a row of n_embd values
 * with head h at [h·head_dim, (h+1)·head_dim) — the order of HF's `c_attn` output.
 */
import { headDim, type Gpt2Config } from '../../workers/models/gpt2/config';
import { gpt2ParamSpecs, layerPrefix, type Gpt2Params } from '../../workers/models/gpt2/params';

export interface Gpt2ReferenceCache {
  /** Positions held (= past length for the next call). */
  length: number;
  /** keys[layer][position], values[layer][position]: rows of n_embd. */
  keys: Float64Array[][];
  values: Float64Array[][];
}

/** tanh-approximated GELU, HF's `gelu_new`. */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

export class Gpt2Reference {
  private readonly w = new Map<string, Float64Array>();

  constructor(readonly config: Gpt2Config, params: Gpt2Params) {
    for (const spec of gpt2ParamSpecs(config)) {
      const data = params.get(spec.name);
      if (!data) throw new Error(`GPT-2 reference: parameter ${spec.name} is missing`);
      this.w.set(spec.name, Float64Array.from(data));
    }
  }

  emptyCache(): Gpt2ReferenceCache {
    const L = this.config.nLayer;
    return { length: 0, keys: Array.from({ length: L }, () => []), values: Array.from({ length: L }, () => []) };
  }

  /** Runs a prompt from an empty cache: logits per token ([tokens][vocab]) and the cache. */
  prefill(tokens: readonly number[]): { logits: Float64Array[]; cache: Gpt2ReferenceCache } {
    const cache = this.emptyCache();
    return { logits: this.forward(tokens, cache), cache };
  }

  /** Runs one token after the cache's content; appends to the cache; returns its logits. */
  step(cache: Gpt2ReferenceCache, token: number): Float64Array {
    return this.forward([token], cache)[0];
  }

  /**
   * Runs `tokens` after the cache's content (positions cache.length, cache.length+1, … unless
   * `positions` says otherwise), appending their keys and values. Returns logits per token.
   */
  forward(tokens: readonly number[], cache: Gpt2ReferenceCache = this.emptyCache(), positions?: readonly number[]): Float64Array[] {
    const { nEmbd: E, vocabSize: V, nPositions } = this.config;
    if (positions && positions.length !== tokens.length) throw new Error(`GPT-2 reference: ${tokens.length} tokens but ${positions.length} positions`);
    const wte = this.w.get('transformer.wte.weight')!;
    const wpe = this.w.get('transformer.wpe.weight')!;
    let xs: Float64Array[] = tokens.map((token, i) => {
      const pos = positions ? positions[i] : cache.length + i;
      if (!Number.isInteger(token) || token < 0 || token >= V) throw new Error(`GPT-2 reference: token id ${token} outside 0..${V - 1}`);
      if (!Number.isInteger(pos) || pos < 0 || pos >= nPositions) throw new Error(`GPT-2 reference: position ${pos} outside 0..${nPositions - 1}`);
      const x = new Float64Array(E);
      for (let e = 0; e < E; e++) x[e] = wte[token * E + e] + wpe[pos * E + e];
      return x;
    });
    for (let l = 0; l < this.config.nLayer; l++) xs = this.block(l, xs, cache);
    cache.length += tokens.length;
    return xs.map((x) => {
      const h = this.layerNorm(x, 'transformer.ln_f');
      const logits = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let e = 0; e < E; e++) s += h[e] * wte[v * E + e];
        logits[v] = s;
      }
      return logits;
    });
  }

  private block(layer: number, xs: Float64Array[], cache: Gpt2ReferenceCache): Float64Array[] {
    const { nEmbd: E, nHead: H } = this.config;
    const D = headDim(this.config);
    const p = layerPrefix(layer);
    const keys = cache.keys[layer];
    const values = cache.values[layer];
    const past = cache.length;
    if (keys.length !== past) throw new Error(`GPT-2 reference: cache layer ${layer} holds ${keys.length} positions, expected ${past}`);
    const queries = xs.map((x) => {
      const qkv = this.linear(this.layerNorm(x, `${p}.ln_1`), `${p}.attn.c_attn`);
      keys.push(qkv.slice(E, 2 * E));
      values.push(qkv.slice(2 * E, 3 * E));
      return qkv.subarray(0, E);
    });
    const scale = 1 / Math.sqrt(D);
    return xs.map((x, i) => {
      const q = queries[i];
      const visible = past + i + 1; // causal: keys 0..past+i
      const context = new Float64Array(E);
      const scores = new Float64Array(visible);
      for (let h = 0; h < H; h++) {
        let max = -Infinity;
        for (let j = 0; j < visible; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[h * D + d] * keys[j][h * D + d];
          scores[j] = s * scale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j < visible; j++) sum += scores[j] = Math.exp(scores[j] - max);
        for (let j = 0; j < visible; j++) {
          const a = scores[j] / sum;
          for (let d = 0; d < D; d++) context[h * D + d] += a * values[j][h * D + d];
        }
      }
      const attn = this.linear(context, `${p}.attn.c_proj`);
      const y = new Float64Array(E);
      for (let e = 0; e < E; e++) y[e] = x[e] + attn[e];
      const hidden = this.linear(this.layerNorm(y, `${p}.ln_2`), `${p}.mlp.c_fc`).map(geluNew);
      const mlp = this.linear(hidden, `${p}.mlp.c_proj`);
      for (let e = 0; e < E; e++) y[e] += mlp[e];
      return y;
    });
  }

  private layerNorm(x: Float64Array, name: string): Float64Array {
    const weight = this.w.get(`${name}.weight`)!;
    const bias = this.w.get(`${name}.bias`)!;
    const n = x.length;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i];
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x[i] - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + this.config.layerNormEpsilon);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * weight[i] + bias[i];
    return y;
  }

  /** Conv1D: y = x·W + b with W [in, out]. */
  private linear(x: Float64Array, name: string): Float64Array {
    const weight = this.w.get(`${name}.weight`)!;
    const bias = this.w.get(`${name}.bias`)!;
    const out = bias.length;
    const y = Float64Array.from(bias);
    for (let i = 0; i < x.length; i++) {
      const xi = x[i];
      const row = i * out;
      for (let o = 0; o < out; o++) y[o] += xi * weight[row + o];
    }
    return y;
  }
}

/** One layer's cached keys or values as [n_head, length, head_dim] (the decoder's `present` layout, batch 1). */
export function cacheAsHeads(config: Gpt2Config, rows: Float64Array[]): Float64Array {
  const H = config.nHead;
  const D = headDim(config);
  const T = rows.length;
  const out = new Float64Array(H * T * D);
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) out[(h * T + t) * D + d] = rows[t][h * D + d];
  return out;
}
