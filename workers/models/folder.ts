/**
 * Model folders in the Hugging Face / transformers.js layout, in and out:
 *
 *   config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx, model.safetensors
 *
 * Reading gives the parsed config, the tokenizer, the ONNX bytes (what runs) and, for GPT-2
 * family folders with model.safetensors, the float32 weights (what trains). Writing gives the
 * trained student back as such a folder, its ONNX with the weights as initializers.
 */
import { ModelFolderError, readJson, type ModelSource } from './source';
import { loadTokenizer, type LabTokenizer } from './tokenizer';
import { gpt2ConfigFromJson, gpt2ConfigToJson, Gpt2ConfigError, type Gpt2Config } from './gpt2/config';
import { readGpt2Safetensors, writeGpt2Safetensors } from './gpt2/weights';
import type { Gpt2Params } from './gpt2/params';
import { buildGpt2Decoder } from '../onnx/gpt2-decoder';

export const ONNX_PATH = 'onnx/model.onnx';
export const WEIGHTS_PATH = 'model.safetensors';

export interface ModelFolder {
  label: string;
  /** config.json as written. */
  rawConfig: Record<string, unknown>;
  /** The GPT-2 config when the folder is a GPT-2 family model (trainable), else null. */
  gpt2: Gpt2Config | null;
  tokenizer: LabTokenizer;
  /** tokenizer.json and tokenizer_config.json as they were, to write them back unchanged. */
  tokenizerFiles: Map<string, Uint8Array>;
  /** onnx/model.onnx, the graph that runs (sampling, scoring). */
  onnx: Uint8Array;
  /** Weights from model.safetensors (GPT-2 family only), or null. */
  weights: Map<string, Float32Array> | null;
}

export async function readModelFolder(source: ModelSource, options: { requireWeights?: boolean } = {}): Promise<ModelFolder> {
  if (!(await source.has('config.json'))) {
    throw new ModelFolderError(`${source.label} has no config.json: is it a Hugging Face model folder?`, source.label, 'config.json');
  }
  const rawConfig = await readJson<Record<string, unknown>>(source, 'config.json');
  if (!rawConfig || typeof rawConfig !== 'object' || Array.isArray(rawConfig)) {
    throw new ModelFolderError(`config.json in ${source.label} must hold a JSON object.`, source.label, 'config.json');
  }
  let gpt2: Gpt2Config | null = null;
  if (rawConfig.model_type === 'gpt2') {
    try {
      gpt2 = gpt2ConfigFromJson(rawConfig, `${source.label}/config.json`);
    } catch (e) {
      if (e instanceof Gpt2ConfigError) throw new ModelFolderError(e.message, source.label, 'config.json');
      throw e;
    }
  }
  const tokenizer = await loadTokenizer(source);
  const tokenizerFiles = new Map<string, Uint8Array>();
  for (const path of ['tokenizer.json', 'tokenizer_config.json']) {
    if (await source.has(path)) tokenizerFiles.set(path, await source.read(path));
  }
  if (!(await source.has(ONNX_PATH))) {
    throw new ModelFolderError(`${source.label} has no ${ONNX_PATH}: the lab runs models from their ONNX export (the transformers.js layout).`, source.label, ONNX_PATH);
  }
  const onnx = await source.read(ONNX_PATH);
  let weights: Map<string, Float32Array> | null = null;
  if (gpt2 && (await source.has(WEIGHTS_PATH))) {
    try {
      weights = readGpt2Safetensors(gpt2, await source.read(WEIGHTS_PATH), `${source.label}/${WEIGHTS_PATH}`);
    } catch (e) {
      throw new ModelFolderError((e as Error).message, source.label, WEIGHTS_PATH);
    }
  }
  if (options.requireWeights && !weights) {
    throw new ModelFolderError(
      gpt2
        ? `${source.label} has no ${WEIGHTS_PATH}: training a student needs its weights (a GPT-2 family folder with model.safetensors).`
        : `${source.label} is a '${String(rawConfig.model_type)}' model: the lab trains GPT-2 family students only (it can still serve as a teacher).`,
      source.label,
      WEIGHTS_PATH,
    );
  }
  return { label: source.label, rawConfig, gpt2, tokenizer, tokenizerFiles, onnx, weights };
}

/** The files of a GPT-2 family model folder for `params`, keyed by relative path. */
export function writeModelFolder(
  config: Gpt2Config,
  params: Gpt2Params,
  tokenizerFiles: ReadonlyMap<string, Uint8Array>,
  extraConfig: Record<string, unknown> = {},
): Map<string, Uint8Array> {
  if (!tokenizerFiles.has('tokenizer.json')) throw new Error('writeModelFolder: tokenizer.json is needed');
  const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');
  const files = new Map<string, Uint8Array>();
  files.set('config.json', encode({ ...gpt2ConfigToJson(config), ...extraConfig }));
  // transformers (Python and JS) look for it next to config.json; without it they log a 404.
  files.set('generation_config.json', encode({
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
    _from_model_config: true,
  }));
  for (const [path, bytes] of tokenizerFiles) files.set(path, bytes);
  files.set(WEIGHTS_PATH, writeGpt2Safetensors(config, params));
  files.set(ONNX_PATH, buildGpt2Decoder(config, { kind: 'initializers', params }));
  return files;
}
