/**
 * Llama-family weights in model.safetensors: reading a file transformers wrote (or ours) into the
 * lab's parameter map, and writing the map back in transformers' layout and names.
 *
 * The lab keeps every projection [in, out] (params.ts: `transposedInFile`), the file has torch's
 * [out, in]: both directions transpose those tensors and nothing else. A tied model's file has no
 * lm_head.weight (the head is model.embed_tokens.weight). Tensors are written in name order with
 * `{"format": "pt"}`, as safetensors' `save_file` orders them, so a file we write has the names,
 * shapes, dtypes and order transformers gives it.
 */
import type { ModelParams, ParamSpec } from '../family';
import { readSafetensors, SafetensorsError, tensorToFloat32, writeSafetensors, type SafetensorsTensor, type TensorToWrite } from '../safetensors';
import type { LlamaConfig } from './config';
import { llamaParamSpecs } from './params';

/** [rows, cols] row-major → [cols, rows] row-major. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const from = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[from + c];
  }
  return out;
}

/** The tensor's shape in model.safetensors: torch's [out, in] for the projections the lab keeps [in, out]. */
export function fileShape(spec: ParamSpec): number[] {
  return spec.transposedInFile ? [spec.shape[1], spec.shape[0]] : [...spec.shape];
}

const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Buffers some checkpoints carry that are not parameters: the rotary inverse frequencies of older
 * Llama files (the lab computes its own from config.json).
 */
const isBuffer = (name: string) => name.endsWith('.rotary_emb.inv_freq');

/**
 * Reads model.safetensors into float32 parameters [in, out], checked against the config: a
 * missing, misshapen or unexpected tensor is one sentence naming the file, the tensor and the
 * shape the config implies.
 */
export function readLlamaSafetensors(config: LlamaConfig, bytes: Uint8Array, file = 'model.safetensors'): Map<string, Float32Array> {
  const { tensors } = readSafetensors(bytes, file);
  const specs = llamaParamSpecs(config);
  const wanted = new Set(specs.map((s) => s.name));
  // A base LlamaModel's file (no head) names its tensors without the `model.` prefix.
  const byName = new Map<string, SafetensorsTensor>();
  for (const [name, tensor] of tensors) {
    const key = !wanted.has(name) && wanted.has(`model.${name}`) ? `model.${name}` : name;
    byName.set(key, tensor);
  }
  const size = `num_hidden_layers ${config.nLayer}, hidden_size ${config.hidden}`;
  const params = new Map<string, Float32Array>();
  for (const spec of specs) {
    const expected = fileShape(spec);
    const tensor = byName.get(spec.name);
    if (!tensor) {
      throw new SafetensorsError(file, `tensor "${spec.name}" is missing; this config.json (${config.modelType}, ${size}) needs it with shape ${show(expected)}`);
    }
    if (tensor.shape.length !== expected.length || tensor.shape.some((d, i) => d !== expected[i])) {
      throw new SafetensorsError(file, `tensor "${spec.name}" has shape ${show(tensor.shape)}, but this config.json (${config.modelType}, ${size}) needs ${show(expected)}`);
    }
    const data = tensorToFloat32(tensor, spec.name, file);
    params.set(spec.name, spec.transposedInFile ? transpose2d(data, expected[0], expected[1]) : data);
  }
  for (const name of byName.keys()) {
    if (wanted.has(name) || isBuffer(name)) continue;
    // A tied model's head is the embedding; a copy of it in the file is redundant, not wrong.
    if (name === 'lm_head.weight' && config.tiedEmbeddings) continue;
    throw new SafetensorsError(
      file,
      `tensor "${name}" is not a parameter of this config.json (${config.modelType}, ${size}${config.tiedEmbeddings ? ', tied head' : ''}): the file and config.json describe different models`,
    );
  }
  return params;
}

/** Writes the parameters as model.safetensors: float32, transformers' names, [out, in] projections, name order. */
export function writeLlamaSafetensors(config: LlamaConfig, params: ModelParams, metadata: Record<string, string> = {}): Uint8Array {
  const specs = [...llamaParamSpecs(config)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: [string, TensorToWrite][] = specs.map((spec) => {
    const data = params.get(spec.name);
    if (!data) throw new Error(`writeLlamaSafetensors: parameter ${spec.name} is missing`);
    const shape = fileShape(spec);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`writeLlamaSafetensors: parameter ${spec.name} has ${data.length} values, ${show(spec.shape)} needs ${shape.reduce((a, b) => a * b, 1)}`);
    return [spec.name, { dtype: 'F32', shape, data: spec.transposedInFile ? transpose2d(data, spec.shape[0], spec.shape[1]) : data }];
  });
  return writeSafetensors(entries, { format: 'pt', ...metadata });
}
