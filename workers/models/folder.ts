/**
 * Model folders in the Hugging Face / transformers.js layout, in and out:
 *
 *   config.json, tokenizer.json, tokenizer_config.json, [chat_template.jinja], onnx/model.onnx, model.safetensors
 *
 * Reading gives the parsed config, the tokenizer, the ONNX bytes (what runs) and, for folders of
 * a registered model family (workers/models/registry.ts) with model.safetensors, the float32
 * weights (what trains). Writing gives the trained student back as such a folder, its ONNX with
 * the weights as initializers.
 *
 * What runs: for a folder of a registered family with model.safetensors, the family's own decoder
 * built from those weights (the lab's graph, tested against PyTorch; a Llama-family export's
 * in-graph Sin/Cos is off by ~1e-3 on WebGPU), so such a folder needs no onnx/model.onnx; for any
 * other model, the folder's onnx/model.onnx.
 */
import { ModelFolderError, readJson, type ModelSource } from './source';
import { loadTokenizer, type LabTokenizer } from './tokenizer';
import type { Gpt2Config } from './gpt2/config';
import type { FamilyConfig, ModelFamily, ModelParams } from './family';
import { familyFor, familyNames, familyOf } from './registry';

export const ONNX_PATH = 'onnx/model.onnx';
export const WEIGHTS_PATH = 'model.safetensors';
export const GENERATION_CONFIG_PATH = 'generation_config.json';
/** transformers 5 saves a tokenizer's chat template here (not in tokenizer_config.json); it wins over tokenizer_config.json's. */
export const CHAT_TEMPLATE_PATH = 'chat_template.jinja';

export interface ModelFolder {
  label: string;
  /** config.json as written. */
  rawConfig: Record<string, unknown>;
  /** The family of config.json's model_type when the lab has one (trainable, sampled), else null. */
  family: ModelFamily | null;
  /** Its parsed config, with `family`; null for other models (they can still be teachers). */
  config: FamilyConfig | null;
  /** The same config when the family is GPT-2, for callers that handle GPT-2 only; else null. */
  gpt2: Gpt2Config | null;
  tokenizer: LabTokenizer;
  /** tokenizer.json, tokenizer_config.json and chat_template.jinja (when there) as they were, to write them back unchanged. */
  tokenizerFiles: Map<string, Uint8Array>;
  /** The chat template: chat_template.jinja, else tokenizer_config.json's chat_template (its "default" when a list); null without one. Rendered by workers/chat/. */
  chatTemplate: string | null;
  /** generation_config.json as written (bos, eos, pad…), to write it back with a trained copy; null without one. */
  generationConfig: Record<string, unknown> | null;
  /** The graph that runs (sampling, scoring): the family's decoder built from the weights, else onnx/model.onnx. */
  onnx: Uint8Array;
  /** Where `onnx` came from, for messages: "<folder>/onnx/model.onnx" or "<folder> (Llama decoder built from model.safetensors)". */
  onnxLabel: string;
  /** Weights from model.safetensors (registered families only), or null. */
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
  const family = familyOf(rawConfig.model_type) ?? null;
  let config: FamilyConfig | null = null;
  if (family) {
    try {
      config = family.configFromJson(rawConfig, `${source.label}/config.json`);
    } catch (e) {
      throw new ModelFolderError((e as Error).message, source.label, 'config.json');
    }
  }
  let tokenizer = await loadTokenizer(source);
  const tokenizerFiles = new Map<string, Uint8Array>();
  for (const path of ['tokenizer.json', 'tokenizer_config.json', CHAT_TEMPLATE_PATH]) {
    if (await source.has(path)) tokenizerFiles.set(path, await source.read(path));
  }
  const jinja = tokenizerFiles.get(CHAT_TEMPLATE_PATH);
  const chatTemplate = jinja ? new TextDecoder().decode(jinja) : tokenizer.chatTemplate;
  // The tokenizer check compares chat templates too: it sees the one the folder uses.
  if (jinja) tokenizer = { ...tokenizer, chatTemplate };
  const generationConfig = (await source.has(GENERATION_CONFIG_PATH)) ? await readJson<Record<string, unknown>>(source, GENERATION_CONFIG_PATH) : null;
  let weights: Map<string, Float32Array> | null = null;
  if (family && config && (await source.has(WEIGHTS_PATH))) {
    try {
      weights = family.readSafetensors(config, await source.read(WEIGHTS_PATH), `${source.label}/${WEIGHTS_PATH}`);
    } catch (e) {
      throw new ModelFolderError((e as Error).message, source.label, WEIGHTS_PATH);
    }
  }
  let onnx: Uint8Array;
  let onnxLabel: string;
  if (family && config && weights) {
    onnx = family.buildDecoder(config, { kind: 'initializers', params: weights });
    onnxLabel = `${source.label} (${family.name} decoder built from ${WEIGHTS_PATH})`;
  } else {
    if (!(await source.has(ONNX_PATH))) {
      throw new ModelFolderError(
        family
          ? `${source.label} has neither ${WEIGHTS_PATH} nor ${ONNX_PATH}: the lab runs a ${family.name} model from its weights (or from an ONNX export in the transformers.js layout).`
          : `${source.label} is ${typeof rawConfig.model_type === 'string' ? `a '${rawConfig.model_type}' model` : 'a model whose config.json names no model_type'}, none of the families the lab knows (${familyNames()}), and has no ${ONNX_PATH}: the lab can run it only from an ONNX export in the transformers.js layout.`,
        source.label,
        ONNX_PATH,
      );
    }
    onnx = await source.read(ONNX_PATH);
    onnxLabel = `${source.label}/${ONNX_PATH}`;
  }
  if (options.requireWeights && !weights) {
    throw new ModelFolderError(
      config
        ? `${source.label} has no ${WEIGHTS_PATH}: training a student needs its weights (a ${family!.name} family folder with model.safetensors).`
        : `${source.label} is a '${String(rawConfig.model_type)}' model: the lab trains ${familyNames()} family students only (it can still serve as a teacher).`,
      source.label,
      WEIGHTS_PATH,
    );
  }
  const gpt2 = config?.modelType === 'gpt2' ? (config as Gpt2Config) : null;
  return { label: source.label, rawConfig, family, config, gpt2, tokenizer, tokenizerFiles, chatTemplate, generationConfig, onnx, onnxLabel, weights };
}

/**
 * The files of a model folder of a registered family for `params`, keyed by relative path:
 * config.json (the family's, then `extraConfig`'s fields), generation_config.json (the one given,
 * else bos/eos from the config), the tokenizer files (chat_template.jinja among them when the
 * source had one), model.safetensors (the family's names and
 * layout) and onnx/model.onnx (the family's decoder, weights as initializers).
 */
export function writeModelFolder(
  config: FamilyConfig,
  params: ModelParams,
  tokenizerFiles: ReadonlyMap<string, Uint8Array>,
  extraConfig: Record<string, unknown> = {},
  generationConfig: Record<string, unknown> | null = null,
): Map<string, Uint8Array> {
  if (!tokenizerFiles.has('tokenizer.json')) throw new Error('writeModelFolder: tokenizer.json is needed');
  const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');
  const files = new Map<string, Uint8Array>();
  const family = familyFor(config);
  files.set('config.json', encode({ ...family.configToJson(config), ...extraConfig }));
  // transformers (Python and JS) look for it next to config.json; without it they log a 404.
  files.set(GENERATION_CONFIG_PATH, encode(generationConfig ?? {
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
    _from_model_config: true,
  }));
  for (const [path, bytes] of tokenizerFiles) files.set(path, bytes);
  files.set(WEIGHTS_PATH, family.writeSafetensors(config, params));
  files.set(ONNX_PATH, family.buildDecoder(config, { kind: 'initializers', params }));
  return files;
}

/**
 * The files of a trained copy of `folder` (a registered family's) with weights `params`: its
 * config.json fields (task hints, fields the lab does not read) under the family's own, which say
 * what the weights written are (float32, the lab's architecture fields; a transformers 4
 * `torch_dtype` is set to float32 too), then `extraConfig`; its tokenizer files and
 * generation_config.json as they were.
 */
export function trainedFolderFiles(folder: ModelFolder, params: ModelParams, extraConfig: Record<string, unknown> = {}): Map<string, Uint8Array> {
  const config = folder.config;
  if (!config) throw new Error(`${folder.label} is not a folder of a model family the lab knows (${familyNames()}), so it has no trained copy to write`);
  const own = familyFor(config).configToJson(config);
  const dtype = 'torch_dtype' in folder.rawConfig ? { torch_dtype: 'float32' } : {};
  return writeModelFolder(config, params, folder.tokenizerFiles, { ...folder.rawConfig, ...own, ...dtype, ...extraConfig }, folder.generationConfig);
}
