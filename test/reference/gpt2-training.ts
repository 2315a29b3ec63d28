/**
 * The training ground truth: a whole GPT-2 forward and backward pass in plain TypeScript float64,
 * on the CPU, written to be obviously right rather than fast. The WGSL training kernels and the
 * trainer are tested against it; it is never used to train.
 *
 * - `gpt2ForwardBackward` runs each sequence's forward (no padding, no KV cache: causal attention
 *   over the sequence itself), keeps every activation, asks a loss for ∂L/∂logits, back-propagates,
 *   and returns the loss and the gradient of every parameter, summed over the sequences. Its
 *   logits are `Gpt2Reference`'s (test/reference/gpt2.ts) to rounding.
 * - The trainer's objectives as functions of one sequence's logits, each returning the loss and
 *   ∂L/∂logits: `crossEntropy` (SFT / off-policy distillation), `policyGradient` (the importance-
 *   sampled, optionally clipped, sampled-token objective), `reverseKL` (the full-vocabulary OPD
 *   objective). Per-position weights w_t carry masks and normalisation (w_t = 0: no loss there,
 *   and that position's target / old log-prob / advantage / teacher row is not read).
 *
 * Indexing (the one convention every loss here shares): `logits[t]` are the model's outputs at
 * input position t, i.e. its distribution over the token that FOLLOWS tokens[t]. The caller
 * passes, per position t, the target scored against `logits[t]` — normally `tokens[t + 1]`
 * (`nextTokenTargets` builds exactly that) — and a weight, 0 where there is nothing to score
 * (the last position, the prompt, padding after EOS).
 *
 * Parameters are HF-named tensors (`gpt2ParamSpecs` order and shapes). Conv1D layout: W [in, out],
 * y = x·W + b. The LM head is tied to wte, so wte's gradient is the sum of its embedding and
 * LM-head contributions.
 */
import { headDim, type Gpt2Config } from '../../workers/models/gpt2/config';
import { gpt2ParamSpecs, layerPrefix, numel } from '../../workers/models/gpt2/params';
import { geluNew } from './gpt2';

/** Parameters by HF name: the lab's float32 `Gpt2Params`, or float64 tensors (finite differences need those). */
export type ReferenceParams = ReadonlyMap<string, ArrayLike<number>>;

export interface TrainSequence {
  tokens: readonly number[];
  /** Position ids, one per token; absent: 0, 1, …, T−1. */
  positions?: readonly number[];
}

/** A loss of one sequence and its gradient w.r.t. that sequence's logits ([T][vocab]). */
export interface LogitLoss {
  loss: number;
  dLogits: Float64Array[];
}

/** Given a sequence's index and its logits ([T][vocab]), that sequence's loss and ∂L/∂logits. */
export type SequenceLoss = (sequence: number, logits: readonly Float64Array[]) => LogitLoss;

export interface ForwardBackwardResult {
  /** Σ over sequences of the losses. */
  loss: number;
  /** logits[sequence][position]: rows of vocab. */
  logits: Float64Array[][];
  /** ∂loss/∂parameter for every parameter, by HF name, in `gpt2ParamSpecs` order, summed over sequences. */
  grads: Map<string, Float64Array>;
}

// ---------------------------------------------------------------------------------------------
// Building blocks, on row-major [rows, width] Float64Arrays.

interface LayerNormActs {
  /** (x − mean)·inv, [T, E]. */
  xhat: Float64Array;
  /** 1/√(var + ε) per row, [T]. */
  inv: Float64Array;
  /** xhat·γ + β, [T, E]. */
  out: Float64Array;
}

function layerNormForward(x: Float64Array, rows: number, n: number, gamma: Float64Array, beta: Float64Array, eps: number): LayerNormActs {
  const xhat = new Float64Array(rows * n);
  const inv = new Float64Array(rows);
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[o + i];
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x[o + i] - mean) ** 2;
    variance /= n;
    const k = 1 / Math.sqrt(variance + eps);
    inv[r] = k;
    for (let i = 0; i < n; i++) {
      xhat[o + i] = (x[o + i] - mean) * k;
      out[o + i] = xhat[o + i] * gamma[i] + beta[i];
    }
  }
  return { xhat, inv, out };
}

/**
 * LayerNorm backward: accumulates ∂γ, ∂β; returns ∂x. With g = ∂out·γ:
 * ∂x = inv·(g − mean(g) − xhat·mean(g·xhat)).
 */
function layerNormBackward(dOut: Float64Array, acts: LayerNormActs, rows: number, n: number, gamma: Float64Array, dGamma: Float64Array, dBeta: Float64Array): Float64Array {
  const dx = new Float64Array(rows * n);
  const g = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let meanG = 0;
    let meanGX = 0;
    for (let i = 0; i < n; i++) {
      const d = dOut[o + i];
      const xh = acts.xhat[o + i];
      dGamma[i] += d * xh;
      dBeta[i] += d;
      g[i] = d * gamma[i];
      meanG += g[i];
      meanGX += g[i] * xh;
    }
    meanG /= n;
    meanGX /= n;
    const k = acts.inv[r];
    for (let i = 0; i < n; i++) dx[o + i] = k * (g[i] - meanG - acts.xhat[o + i] * meanGX);
  }
  return dx;
}

/** Conv1D: y = x·W + b, x [rows, nIn], W [nIn, nOut]. */
function linearForward(x: Float64Array, rows: number, nIn: number, nOut: number, w: Float64Array, b: Float64Array): Float64Array {
  const y = new Float64Array(rows * nOut);
  for (let r = 0; r < rows; r++) {
    const yo = r * nOut;
    for (let o = 0; o < nOut; o++) y[yo + o] = b[o];
    for (let i = 0; i < nIn; i++) {
      const xi = x[r * nIn + i];
      const wo = i * nOut;
      for (let o = 0; o < nOut; o++) y[yo + o] += xi * w[wo + o];
    }
  }
  return y;
}

/** Conv1D backward: ∂W += xᵀ·∂y, ∂b += Σ_rows ∂y; returns ∂x = ∂y·Wᵀ. */
function linearBackward(dy: Float64Array, x: Float64Array, rows: number, nIn: number, nOut: number, w: Float64Array, dW: Float64Array, dB: Float64Array): Float64Array {
  const dx = new Float64Array(rows * nIn);
  for (let r = 0; r < rows; r++) {
    const yo = r * nOut;
    for (let o = 0; o < nOut; o++) dB[o] += dy[yo + o];
    for (let i = 0; i < nIn; i++) {
      const xi = x[r * nIn + i];
      const wo = i * nOut;
      let s = 0;
      for (let o = 0; o < nOut; o++) {
        s += w[wo + o] * dy[yo + o];
        dW[wo + o] += xi * dy[yo + o];
      }
      dx[r * nIn + i] = s;
    }
  }
  return dx;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** d gelu_new(x)/dx for gelu_new(x) = ½x(1 + tanh(c(x + 0.044715x³))). */
export function geluNewDerivative(x: number): number {
  const th = Math.tanh(GELU_C * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_C * (1 + 3 * 0.044715 * x * x);
}

// ---------------------------------------------------------------------------------------------
// The model.

interface LayerActs {
  /** Block input (residual stream), [T, E]. */
  x: Float64Array;
  ln1: LayerNormActs;
  /** c_attn output [T, 3E]: q | k | v, head h at [h·D, (h+1)·D) within each. */
  qkv: Float64Array;
  /** Attention probabilities [H, T(query), T(key)], 0 above the diagonal. */
  probs: Float64Array;
  /** Σ_j P_ij v_j, heads side by side, [T, E]. */
  context: Float64Array;
  /** x + c_proj(context), [T, E]. */
  mid: Float64Array;
  ln2: LayerNormActs;
  /** c_fc output [T, I] (before GELU). */
  pre: Float64Array;
  /** gelu_new(pre), [T, I]. */
  hidden: Float64Array;
}

interface SequenceActs {
  T: number;
  tokens: readonly number[];
  positions: number[];
  layers: LayerActs[];
  /** Output of the last block, [T, E]. */
  final: Float64Array;
  lnF: LayerNormActs;
  logits: Float64Array[];
}

class ReferenceModel {
  private readonly w = new Map<string, Float64Array>();
  readonly E: number;
  readonly H: number;
  readonly D: number;
  readonly I: number;
  readonly V: number;

  constructor(readonly config: Gpt2Config, params: ReferenceParams) {
    for (const spec of gpt2ParamSpecs(config)) {
      const data = params.get(spec.name);
      if (!data) throw new Error(`GPT-2 training reference: parameter ${spec.name} is missing`);
      if (data.length !== numel(spec.shape)) throw new Error(`GPT-2 training reference: ${spec.name} has ${data.length} values, shape [${spec.shape}] needs ${numel(spec.shape)}`);
      this.w.set(spec.name, Float64Array.from(data));
    }
    this.E = config.nEmbd;
    this.H = config.nHead;
    this.D = headDim(config);
    this.I = config.nInner;
    this.V = config.vocabSize;
  }

  p(name: string): Float64Array {
    return this.w.get(name)!;
  }

  forward(sequence: TrainSequence): SequenceActs {
    const { E, H, D, I, V } = this;
    const { tokens } = sequence;
    const T = tokens.length;
    const { nPositions, layerNormEpsilon: eps } = this.config;
    if (T === 0) throw new Error('GPT-2 training reference: empty sequence');
    if (sequence.positions && sequence.positions.length !== T) throw new Error(`GPT-2 training reference: ${T} tokens but ${sequence.positions.length} positions`);
    const positions = sequence.positions ? [...sequence.positions] : tokens.map((_, i) => i);
    const wte = this.p('transformer.wte.weight');
    const wpe = this.p('transformer.wpe.weight');
    let x = new Float64Array(T * E);
    for (let t = 0; t < T; t++) {
      const token = tokens[t];
      const pos = positions[t];
      if (!Number.isInteger(token) || token < 0 || token >= V) throw new Error(`GPT-2 training reference: token id ${token} outside 0..${V - 1}`);
      if (!Number.isInteger(pos) || pos < 0 || pos >= nPositions) throw new Error(`GPT-2 training reference: position ${pos} outside 0..${nPositions - 1}`);
      for (let e = 0; e < E; e++) x[t * E + e] = wte[token * E + e] + wpe[pos * E + e];
    }

    const layers: LayerActs[] = [];
    const scale = 1 / Math.sqrt(D);
    for (let l = 0; l < this.config.nLayer; l++) {
      const pre = layerPrefix(l);
      const ln1 = layerNormForward(x, T, E, this.p(`${pre}.ln_1.weight`), this.p(`${pre}.ln_1.bias`), eps);
      const qkv = linearForward(ln1.out, T, E, 3 * E, this.p(`${pre}.attn.c_attn.weight`), this.p(`${pre}.attn.c_attn.bias`));
      const probs = new Float64Array(H * T * T);
      const context = new Float64Array(T * E);
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < T; i++) {
          const row = (h * T + i) * T;
          let max = -Infinity;
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += qkv[i * 3 * E + h * D + d] * qkv[j * 3 * E + E + h * D + d];
            probs[row + j] = s * scale;
            if (probs[row + j] > max) max = probs[row + j];
          }
          let sum = 0;
          for (let j = 0; j <= i; j++) sum += probs[row + j] = Math.exp(probs[row + j] - max);
          for (let j = 0; j <= i; j++) {
            const a = (probs[row + j] /= sum);
            for (let d = 0; d < D; d++) context[i * E + h * D + d] += a * qkv[j * 3 * E + 2 * E + h * D + d];
          }
        }
      }
      const attn = linearForward(context, T, E, E, this.p(`${pre}.attn.c_proj.weight`), this.p(`${pre}.attn.c_proj.bias`));
      const mid = new Float64Array(T * E);
      for (let k = 0; k < T * E; k++) mid[k] = x[k] + attn[k];
      const ln2 = layerNormForward(mid, T, E, this.p(`${pre}.ln_2.weight`), this.p(`${pre}.ln_2.bias`), eps);
      const fc = linearForward(ln2.out, T, E, I, this.p(`${pre}.mlp.c_fc.weight`), this.p(`${pre}.mlp.c_fc.bias`));
      const hidden = fc.map(geluNew);
      const mlp = linearForward(hidden, T, I, E, this.p(`${pre}.mlp.c_proj.weight`), this.p(`${pre}.mlp.c_proj.bias`));
      const out = new Float64Array(T * E);
      for (let k = 0; k < T * E; k++) out[k] = mid[k] + mlp[k];
      layers.push({ x, ln1, qkv, probs, context, mid, ln2, pre: fc, hidden });
      x = out;
    }

    const lnF = layerNormForward(x, T, E, this.p('transformer.ln_f.weight'), this.p('transformer.ln_f.bias'), eps);
    const logits: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const row = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let e = 0; e < E; e++) s += lnF.out[t * E + e] * wte[v * E + e];
        row[v] = s;
      }
      logits.push(row);
    }
    return { T, tokens, positions, layers, final: x, lnF, logits };
  }

  /** Back-propagates ∂L/∂logits through one sequence's saved activations, accumulating into `grads`. */
  backward(acts: SequenceActs, dLogits: readonly Float64Array[], grads: Map<string, Float64Array>): void {
    const { E, H, D, I, V } = this;
    const { T } = acts;
    const g = (name: string) => grads.get(name)!;
    const wte = this.p('transformer.wte.weight');
    const dWte = g('transformer.wte.weight');

    // LM head (tied): logits[t, v] = Σ_e h[t, e]·wte[v, e].
    const dH = new Float64Array(T * E);
    for (let t = 0; t < T; t++) {
      const dz = dLogits[t];
      for (let v = 0; v < V; v++) {
        const d = dz[v];
        if (d === 0) continue;
        for (let e = 0; e < E; e++) {
          dH[t * E + e] += d * wte[v * E + e];
          dWte[v * E + e] += d * acts.lnF.out[t * E + e];
        }
      }
    }
    let dx = layerNormBackward(dH, acts.lnF, T, E, this.p('transformer.ln_f.weight'), g('transformer.ln_f.weight'), g('transformer.ln_f.bias'));

    const scale = 1 / Math.sqrt(D);
    for (let l = this.config.nLayer - 1; l >= 0; l--) {
      const a = acts.layers[l];
      const pre = layerPrefix(l);
      // out = mid + c_proj(gelu(c_fc(ln_2(mid)))).
      const dHidden = linearBackward(dx, a.hidden, T, I, E, this.p(`${pre}.mlp.c_proj.weight`), g(`${pre}.mlp.c_proj.weight`), g(`${pre}.mlp.c_proj.bias`));
      const dPre = new Float64Array(T * I);
      for (let k = 0; k < T * I; k++) dPre[k] = dHidden[k] * geluNewDerivative(a.pre[k]);
      const dLn2 = linearBackward(dPre, a.ln2.out, T, E, I, this.p(`${pre}.mlp.c_fc.weight`), g(`${pre}.mlp.c_fc.weight`), g(`${pre}.mlp.c_fc.bias`));
      const dMidFromMlp = layerNormBackward(dLn2, a.ln2, T, E, this.p(`${pre}.ln_2.weight`), g(`${pre}.ln_2.weight`), g(`${pre}.ln_2.bias`));
      const dMid = new Float64Array(T * E);
      for (let k = 0; k < T * E; k++) dMid[k] = dx[k] + dMidFromMlp[k];

      // mid = x + c_proj(attention(c_attn(ln_1(x)))).
      const dContext = linearBackward(dMid, a.context, T, E, E, this.p(`${pre}.attn.c_proj.weight`), g(`${pre}.attn.c_proj.weight`), g(`${pre}.attn.c_proj.bias`));
      const dQkv = new Float64Array(T * 3 * E);
      const dP = new Float64Array(T);
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < T; i++) {
          const row = (h * T + i) * T;
          // ctx_i = Σ_j P_ij v_j  →  ∂P_ij = ∂ctx_i·v_j, ∂v_j += P_ij ∂ctx_i.
          let dot = 0;
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) {
              const dc = dContext[i * E + h * D + d];
              s += dc * a.qkv[j * 3 * E + 2 * E + h * D + d];
              dQkv[j * 3 * E + 2 * E + h * D + d] += a.probs[row + j] * dc;
            }
            dP[j] = s;
            dot += a.probs[row + j] * s;
          }
          // Softmax: ∂score_ij = P_ij (∂P_ij − Σ_k P_ik ∂P_ik); score_ij = scale·q_i·k_j.
          for (let j = 0; j <= i; j++) {
            const ds = a.probs[row + j] * (dP[j] - dot) * scale;
            for (let d = 0; d < D; d++) {
              dQkv[i * 3 * E + h * D + d] += ds * a.qkv[j * 3 * E + E + h * D + d];
              dQkv[j * 3 * E + E + h * D + d] += ds * a.qkv[i * 3 * E + h * D + d];
            }
          }
        }
      }
      const dLn1 = linearBackward(dQkv, a.ln1.out, T, E, 3 * E, this.p(`${pre}.attn.c_attn.weight`), g(`${pre}.attn.c_attn.weight`), g(`${pre}.attn.c_attn.bias`));
      const dxFromAttn = layerNormBackward(dLn1, a.ln1, T, E, this.p(`${pre}.ln_1.weight`), g(`${pre}.ln_1.weight`), g(`${pre}.ln_1.bias`));
      dx = new Float64Array(T * E);
      for (let k = 0; k < T * E; k++) dx[k] = dMid[k] + dxFromAttn[k];
    }

    // Embeddings: x0[t] = wte[token_t] + wpe[position_t].
    const dWpe = g('transformer.wpe.weight');
    for (let t = 0; t < T; t++) {
      const token = acts.tokens[t];
      const pos = acts.positions[t];
      for (let e = 0; e < E; e++) {
        dWte[token * E + e] += dx[t * E + e];
        dWpe[pos * E + e] += dx[t * E + e];
      }
    }
  }
}

/** Logits ([T][vocab]) of one sequence: the training forward alone (what finite differences need). */
export function gpt2Logits(config: Gpt2Config, params: ReferenceParams, sequence: TrainSequence): Float64Array[] {
  return new ReferenceModel(config, params).forward(sequence).logits;
}

/**
 * Forward, loss and backward over `sequences`: for each sequence, in order, runs its forward,
 * calls `loss(index, logits)`, back-propagates the returned ∂L/∂logits; sums losses and gradients.
 */
export function gpt2ForwardBackward(config: Gpt2Config, params: ReferenceParams, sequences: readonly TrainSequence[], loss: SequenceLoss): ForwardBackwardResult {
  const model = new ReferenceModel(config, params);
  const grads = new Map(gpt2ParamSpecs(config).map((s) => [s.name, new Float64Array(numel(s.shape))]));
  let total = 0;
  const logits: Float64Array[][] = [];
  sequences.forEach((sequence, index) => {
    const acts = model.forward(sequence);
    const result = loss(index, acts.logits);
    if (result.dLogits.length !== acts.T || result.dLogits.some((row) => row.length !== config.vocabSize)) {
      throw new Error(`GPT-2 training reference: sequence ${index}'s loss must give dLogits of [${acts.T}][${config.vocabSize}]`);
    }
    total += result.loss;
    model.backward(acts, result.dLogits, grads);
    logits.push(acts.logits);
  });
  return { loss: total, logits, grads };
}

// ---------------------------------------------------------------------------------------------
// Losses on one sequence's logits.

/** log_softmax(z/τ) of one row. */
export function logSoftmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const n = logits.length;
  let max = -Infinity;
  for (let v = 0; v < n; v++) max = Math.max(max, logits[v] / temperature);
  let sum = 0;
  for (let v = 0; v < n; v++) sum += Math.exp(logits[v] / temperature - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let v = 0; v < n; v++) out[v] = logits[v] / temperature - lse;
  return out;
}

/**
 * Targets for next-token prediction: targets[t] = tokens[t + 1], and −1 at the last position
 * (nothing follows it; give it weight 0).
 */
export function nextTokenTargets(tokens: readonly number[]): number[] {
  return tokens.map((_, t) => (t + 1 < tokens.length ? tokens[t + 1] : -1));
}

function checkTemperature(where: string, temperature: number): void {
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`${where}: temperature must be a finite number > 0; got ${temperature}`);
}

function checkPerPosition(where: string, T: number, fields: Record<string, { length: number } | undefined>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (value && value.length !== T) throw new Error(`${where}: ${name} has ${value.length} entries for ${T} positions`);
  }
}

function checkTarget(where: string, t: number, target: number, V: number): void {
  if (!Number.isInteger(target) || target < 0 || target >= V) throw new Error(`${where}: position ${t} has weight ≠ 0 but target ${target} outside 0..${V - 1}`);
}

export interface CrossEntropyInputs {
  /** targets[t]: the token scored against logits[t] (normally tokens[t+1]); read only where weights[t] ≠ 0. */
  targets: readonly number[];
  weights: readonly number[];
  /** Default 1. */
  temperature?: number;
}

/**
 * SFT / off-policy distillation: L = −Σ_t w_t·log p_t(y_t), p_t = softmax(z_t/τ).
 * ∂L/∂z_t(v) = w_t·(p_t(v) − [v = y_t])/τ.
 */
export function crossEntropy(logits: readonly Float64Array[], inputs: CrossEntropyInputs): LogitLoss {
  const T = logits.length;
  const tau = inputs.temperature ?? 1;
  checkTemperature('crossEntropy', tau);
  checkPerPosition('crossEntropy', T, { targets: inputs.targets, weights: inputs.weights });
  let loss = 0;
  const dLogits = logits.map((z, t) => {
    const d = new Float64Array(z.length);
    const w = inputs.weights[t];
    if (w === 0) return d;
    const y = inputs.targets[t];
    checkTarget('crossEntropy', t, y, z.length);
    const s = logSoftmax(z, tau);
    loss -= w * s[y];
    for (let v = 0; v < z.length; v++) d[v] = (w * Math.exp(s[v])) / tau;
    d[y] -= w / tau;
    return d;
  });
  return { loss, dLogits };
}

export interface PolicyGradientInputs {
  /** targets[t]: the sampled token y scored against logits[t]; read only where weights[t] ≠ 0. */
  targets: readonly number[];
  weights: readonly number[];
  /** log π_old(y_t | h_t) as recorded by the sampler (at the same temperature). */
  oldLogprobs: readonly number[];
  /** A_t, held constant (no gradient through it). */
  advantages: readonly number[];
  /** PPO clipping of ρ to [1−ε, 1+ε]; absent or 0: no clipping. */
  clipEpsilon?: number;
  /** Default 1. */
  temperature?: number;
}

export interface PolicyGradientLoss extends LogitLoss {
  /** ρ_t = exp(log π_θ(y_t) − old_t) (0 where w_t = 0). */
  ratio: Float64Array;
  /** 1 where the clipped term is the (strictly) smaller one, so no gradient flows through ρ_t. */
  clipped: Uint8Array;
}

/**
 * Importance-sampled policy gradient: L = −Σ_t w_t·min(ρ_t·A_t, clip(ρ_t, 1−ε, 1+ε)·A_t),
 * ρ_t = exp(s_t(y_t) − old_t), s_t = log_softmax(z_t/τ); ε = 0 means no clipping (L = −Σ w_t ρ_t A_t).
 *
 * Gradient: where the unclipped term is the minimum (ties included: inside the clip range both
 * terms are equal and move together), ∂L/∂s_t(y_t) = −w_t·ρ_t·A_t; where the clipped term is
 * strictly smaller (A > 0 and ρ > 1+ε, or A < 0 and ρ < 1−ε) it is 0. Then
 * ∂L/∂z_t(v) = ∂L/∂s_t(y_t)·([v = y_t] − p_t(v))/τ.
 */
export function policyGradient(logits: readonly Float64Array[], inputs: PolicyGradientInputs): PolicyGradientLoss {
  const T = logits.length;
  const tau = inputs.temperature ?? 1;
  const eps = inputs.clipEpsilon ?? 0;
  checkTemperature('policyGradient', tau);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`policyGradient: clipEpsilon must be a finite number ≥ 0; got ${eps}`);
  checkPerPosition('policyGradient', T, { targets: inputs.targets, weights: inputs.weights, oldLogprobs: inputs.oldLogprobs, advantages: inputs.advantages });
  const ratio = new Float64Array(T);
  const clipped = new Uint8Array(T);
  let loss = 0;
  const dLogits = logits.map((z, t) => {
    const d = new Float64Array(z.length);
    const w = inputs.weights[t];
    if (w === 0) return d;
    const y = inputs.targets[t];
    checkTarget('policyGradient', t, y, z.length);
    const s = logSoftmax(z, tau);
    const A = inputs.advantages[t];
    const rho = Math.exp(s[y] - inputs.oldLogprobs[t]);
    ratio[t] = rho;
    const unclippedTerm = rho * A;
    let objective = unclippedTerm;
    if (eps > 0) {
      const clippedTerm = Math.min(Math.max(rho, 1 - eps), 1 + eps) * A;
      if (clippedTerm < unclippedTerm) {
        objective = clippedTerm;
        clipped[t] = 1;
      }
    }
    loss -= w * objective;
    if (clipped[t]) return d;
    const dS = -w * rho * A; // ∂L/∂s_t(y_t)
    for (let v = 0; v < z.length; v++) d[v] = (-dS * Math.exp(s[v])) / tau;
    d[y] += dS / tau;
    return d;
  });
  return { loss, dLogits, ratio, clipped };
}

export interface ReverseKLInputs {
  /** teacherLogprobs[t]: the teacher's log-probs q_t over the vocabulary (log_softmax at the same τ); read only where weights[t] ≠ 0. */
  teacherLogprobs: readonly ArrayLike<number>[];
  weights: readonly number[];
  /** Default 1. */
  temperature?: number;
}

export interface ReverseKLLoss extends LogitLoss {
  /** KL(p_t ‖ q_t) per position (0 where w_t = 0). */
  kl: Float64Array;
}

/**
 * Full-vocabulary reverse KL (the opd-full objective): L = Σ_t w_t·KL_t,
 * KL_t = Σ_v p_t(v)(s_t(v) − q_t(v)), s_t = log_softmax(z_t/τ), p_t = e^{s_t}.
 * ∂L/∂z_t(v) = w_t·p_t(v)(s_t(v) − q_t(v) − KL_t)/τ. Teacher log-probs must be finite.
 */
export function reverseKL(logits: readonly Float64Array[], inputs: ReverseKLInputs): ReverseKLLoss {
  const T = logits.length;
  const tau = inputs.temperature ?? 1;
  checkTemperature('reverseKL', tau);
  checkPerPosition('reverseKL', T, { teacherLogprobs: inputs.teacherLogprobs, weights: inputs.weights });
  const kl = new Float64Array(T);
  let loss = 0;
  const dLogits = logits.map((z, t) => {
    const V = z.length;
    const d = new Float64Array(V);
    const w = inputs.weights[t];
    if (w === 0) return d;
    const q = inputs.teacherLogprobs[t];
    if (q.length !== V) throw new Error(`reverseKL: position ${t} has ${q.length} teacher log-probs for a vocabulary of ${V}`);
    const s = logSoftmax(z, tau);
    let k = 0;
    for (let v = 0; v < V; v++) {
      if (!Number.isFinite(q[v])) throw new Error(`reverseKL: teacher log-prob at position ${t}, token ${v} is ${q[v]}; finite values only`);
      k += Math.exp(s[v]) * (s[v] - q[v]);
    }
    kl[t] = k;
    loss += w * k;
    for (let v = 0; v < V; v++) d[v] = (w * Math.exp(s[v]) * (s[v] - q[v] - k)) / tau;
    return d;
  });
  return { loss, dLogits, kl };
}
