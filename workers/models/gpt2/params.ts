/**
 * The GPT-2 parameter list: every trainable tensor's Hugging Face name and shape, in one fixed
 * order (the order of the decoder graph's weight inputs and of model.safetensors). Linear layers
 * use HF's Conv1D layout, weight [in, out], so y = x·W + b. The LM head is tied to wte.
 *
 * Also: mapping a checkpoint's tensor names onto that list (HF writes some without the
 * `transformer.` prefix and adds non-trainable `attn.bias` / `attn.masked_bias` buffers and
 * sometimes a tied `lm_head.weight`), and deterministic random parameters for tests and benchmarks.
 */
import type { Gpt2Config } from './config';
import { numel, type ModelParams, type ParamSpec } from '../family';
import { seededRandom } from '../../random/seeded-normal';

export { numel, seededRandom };

/** A GPT-2 parameter: its HF name, shape, role, and whether LoRA may adapt it. */
export type Gpt2ParamSpec = ParamSpec;

/** Trainable tensors by HF name, float32, row-major in the spec's shape. */
export type Gpt2Params = ModelParams;

export const layerPrefix = (layer: number): string => `transformer.h.${layer}`;

/** Every trainable tensor of a GPT-2 model, in a fixed order. */
export function gpt2ParamSpecs(config: Gpt2Config): Gpt2ParamSpec[] {
  const E = config.nEmbd;
  const I = config.nInner;
  const specs: Gpt2ParamSpec[] = [
    { name: 'transformer.wte.weight', shape: [config.vocabSize, E], role: 'embedding' },
    { name: 'transformer.wpe.weight', shape: [config.nPositions, E], role: 'embedding' },
  ];
  const norm = (name: string) => {
    specs.push({ name: `${name}.weight`, shape: [E], role: 'norm-weight' }, { name: `${name}.bias`, shape: [E], role: 'norm-bias' });
  };
  // Every attention and MLP matrix may carry a LoRA adapter.
  const linear = (name: string, inFeatures: number, outFeatures: number) => {
    specs.push(
      { name: `${name}.weight`, shape: [inFeatures, outFeatures], role: 'linear-weight', loraTarget: true },
      { name: `${name}.bias`, shape: [outFeatures], role: 'linear-bias' },
    );
  };
  for (let l = 0; l < config.nLayer; l++) {
    const p = layerPrefix(l);
    norm(`${p}.ln_1`);
    linear(`${p}.attn.c_attn`, E, 3 * E);
    linear(`${p}.attn.c_proj`, E, E);
    norm(`${p}.ln_2`);
    linear(`${p}.mlp.c_fc`, E, I);
    linear(`${p}.mlp.c_proj`, I, E);
  }
  norm('transformer.ln_f');
  return specs;
}

/** Total trainable parameters (the tied LM head counted once). */
export function countGpt2Parameters(config: Gpt2Config): number {
  return gpt2ParamSpecs(config).reduce((sum, s) => sum + numel(s.shape), 0);
}

/** Tensors a GPT-2 checkpoint may carry that are not parameters: causal-mask buffers and the tied head. */
const BUFFER_NAME = /^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$/;
export const TIED_HEAD_NAME = 'lm_head.weight';

export type CheckpointName =
  | { kind: 'param'; name: string }
  | { kind: 'buffer' }
  | { kind: 'tied-head' };

/** What a checkpoint's tensor name means: a parameter (its normalised HF name), a mask buffer, or the tied head. */
export function classifyCheckpointName(name: string): CheckpointName {
  if (BUFFER_NAME.test(name)) return { kind: 'buffer' };
  if (name === TIED_HEAD_NAME) return { kind: 'tied-head' };
  if (name.startsWith('transformer.')) return { kind: 'param', name };
  if (/^(wte|wpe|ln_f|h\.\d+)\./.test(name)) return { kind: 'param', name: `transformer.${name}` };
  return { kind: 'param', name };
}

export class Gpt2ParamsError extends Error {
  constructor(readonly file: string, readonly tensor: string | undefined, detail: string) {
    super(tensor ? `${file}: tensor "${tensor}" ${detail}` : `${file}: ${detail}`);
    this.name = 'Gpt2ParamsError';
  }
}

/**
 * Builds the parameter map from a checkpoint's float32 tensors (`name → {shape, data}`):
 * normalises names, drops mask buffers, checks a present `lm_head.weight` equals wte (the head
 * is tied), and requires exactly the spec's tensors with the spec's shapes.
 */
export function gpt2ParamsFromCheckpoint(
  config: Gpt2Config,
  tensors: Iterable<[string, { shape: readonly number[]; data: Float32Array }]>,
  file = 'model.safetensors',
): Map<string, Float32Array> {
  const specs = new Map(gpt2ParamSpecs(config).map((s) => [s.name, s]));
  const params = new Map<string, Float32Array>();
  let tiedHead: { shape: readonly number[]; data: Float32Array } | undefined;
  for (const [original, tensor] of tensors) {
    const meaning = classifyCheckpointName(original);
    if (meaning.kind === 'buffer') continue;
    if (meaning.kind === 'tied-head') {
      tiedHead = tensor;
      continue;
    }
    const spec = specs.get(meaning.name);
    if (!spec) throw new Gpt2ParamsError(file, original, `is not a parameter of a GPT-2 model with this config.json (n_layer ${config.nLayer})`);
    if (params.has(spec.name)) throw new Gpt2ParamsError(file, original, `appears twice (as "${spec.name}" with and without the "transformer." prefix)`);
    if (!sameShape(tensor.shape, spec.shape)) {
      throw new Gpt2ParamsError(file, original, `has shape [${tensor.shape}], config.json implies [${spec.shape}]`);
    }
    params.set(spec.name, tensor.data);
  }
  const missing = [...specs.keys()].filter((n) => !params.has(n));
  if (missing.length > 0) {
    const shown = missing.slice(0, 4).join(', ') + (missing.length > 4 ? ` and ${missing.length - 4} more` : '');
    throw new Gpt2ParamsError(file, undefined, `is missing ${missing.length} GPT-2 parameter(s): ${shown}`);
  }
  if (tiedHead) {
    const wte = params.get('transformer.wte.weight')!;
    if (!sameShape(tiedHead.shape, specs.get('transformer.wte.weight')!.shape) || !sameBits(tiedHead.data, wte)) {
      throw new Gpt2ParamsError(file, TIED_HEAD_NAME, 'differs from transformer.wte.weight; GPT-2 ties its LM head to wte and the lab supports only tied heads');
    }
  }
  // Return in spec order, so iteration order is the graph's and the file's.
  return new Map([...specs.keys()].map((n) => [n, params.get(n)!]));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export interface RandomParamsOptions {
  seed: number;
  /**
   * 'hf': Hugging Face's GPT-2 initialisation (normal(0, 0.02) weights, LayerNorm 1/0, biases 0).
   * 'test': every tensor random at a scale where activations, attention and logits are O(1), so a
   * wiring mistake (a wrong mask, transpose or position) changes the output visibly.
   */
  scheme: 'hf' | 'test';
}

export function randomGpt2Params(config: Gpt2Config, options: RandomParamsOptions): Map<string, Float32Array> {
  const rng = seededRandom(options.seed);
  const params = new Map<string, Float32Array>();
  for (const spec of gpt2ParamSpecs(config)) {
    const data = new Float32Array(numel(spec.shape));
    const fill = (mean: number, std: number) => {
      for (let i = 0; i < data.length; i++) data[i] = mean + std * rng.normal();
    };
    if (options.scheme === 'hf') {
      if (spec.role === 'norm-weight') data.fill(1);
      else if (spec.role === 'embedding' || spec.role === 'linear-weight') fill(0, 0.02);
    } else {
      if (spec.role === 'norm-weight') fill(1, 0.2);
      else if (spec.role === 'norm-bias' || spec.role === 'linear-bias') fill(0, 0.1);
      else if (spec.role === 'embedding') fill(0, 0.5);
      else fill(0, 1 / Math.sqrt(spec.shape[0]));
    }
    params.set(spec.name, data);
  }
  return params;
}
