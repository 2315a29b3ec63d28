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
 * in-graph Sin/Cos is off by ~1e-3 on WebGPU), so such a folder needs no onnx/model.onnx, unless
 * a dtype other than fp32 is asked for; for any other model, one of the folder's onnx-community
 * variants (onnx/model.onnx, model_fp16, model_q4, model_q4f16, model_quantized: the dtype asked
 * for, else chooseOnnxDtype's default), with its external data (model.onnx_data, _data_N) attached.
 */
import { ModelFolderError, readJson, type ModelSource } from './source';
import { loadTokenizer, type LabTokenizer } from './tokenizer';
import type { Gpt2Config } from './gpt2/config';
import type { FamilyConfig, ModelFamily, ModelParams } from './family';
import { familyFor, familyNames, familyOf } from './registry';
import { attachExternalData, type ExternalDataFile } from '../ort/runtime';
import { externalDataLocations } from '../ort/external-data';
import { FLOAT16_DTYPES, isOnnxDtype, ONNX_DTYPE_FILES, ONNX_DTYPES, type OnnxDtype } from '../contract/dtypes';

export const ONNX_PATH = ONNX_DTYPE_FILES.fp32;
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
  /** The ONNX file variant that runs (ONNX_DTYPE_FILES); null for the family's decoder built from the weights. */
  onnxDtype: OnnxDtype | null;
  /** Weights from model.safetensors (registered families only), or null. */
  weights: Map<string, Float32Array> | null;
}

export async function readModelFolder(source: ModelSource, options: ReadFolderOptions = {}): Promise<ModelFolder> {
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
  let onnxDtype: OnnxDtype | null = null;
  if (family && config && weights && (options.dtype === undefined || options.dtype === 'fp32')) {
    onnx = family.buildDecoder(config, { kind: 'initializers', params: weights });
    onnxLabel = `${source.label} (${family.name} decoder built from ${WEIGHTS_PATH})`;
  } else {
    const variants: OnnxDtype[] = [];
    for (const dtype of ONNX_DTYPES) if (await source.has(ONNX_DTYPE_FILES[dtype])) variants.push(dtype);
    if (variants.length === 0) {
      const other = await otherOnnxLayout(source);
      if (other) {
        throw new ModelFolderError(
          `${source.label} has ${other} but no ${ONNX_PATH}: that is an older optimum / transformers.js v2 layout, and the lab reads onnx/model.onnx or its dtype variants (model_fp16, model_q4, model_q4f16, model_quantized.onnx); use the model's onnx-community export${other.includes('merged') ? `, or save ${other} as ${ONNX_PATH} (a merged decoder with use_cache_branch runs as it is)` : ''}.`,
          source.label,
          ONNX_PATH,
        );
      }
      throw new ModelFolderError(
        family
          ? `${source.label} has neither ${WEIGHTS_PATH} nor ${ONNX_PATH}: the lab runs a ${family.name} model from its weights (or from an ONNX export in the transformers.js layout).`
          : `${source.label} is ${typeof rawConfig.model_type === 'string' ? `a '${rawConfig.model_type}' model` : 'a model whose config.json names no model_type'}, none of the families the lab knows (${familyNames()}), and has no ${ONNX_PATH}: the lab can run it only from an ONNX export in the transformers.js layout.`,
        source.label,
        ONNX_PATH,
      );
    }
    onnxDtype = chooseOnnxDtype(source.label, variants, options);
    const file = ONNX_DTYPE_FILES[onnxDtype];
    const bytes = await source.read(file);
    onnx = attachExternalData(bytes, await readExternalData(source, file, bytes));
    onnxLabel = `${source.label}/${file}`;
  }
  if (options.requireWeights && !weights) {
    throw new ModelFolderError(
      config
        ? `${source.label} has no ${WEIGHTS_PATH}: training a student needs its weights (a ${family!.name} family folder with model.safetensors).`
        : `${source.label} is ${typeof rawConfig.model_type === 'string' ? `a '${rawConfig.model_type}'` : 'not a'} model: the lab trains ${familyNames()} family students only (it can still serve as a teacher).`,
      source.label,
      WEIGHTS_PATH,
    );
  }
  const gpt2 = config?.modelType === 'gpt2' ? (config as Gpt2Config) : null;
  return { label: source.label, rawConfig, family, config, gpt2, tokenizer, tokenizerFiles, chatTemplate, generationConfig, onnx, onnxLabel, onnxDtype, weights };
}

// The dtype table (ONNX_DTYPES, ONNX_DTYPE_FILES, FLOAT16_DTYPES) is the contract's: the page's picker offers the same.
export { ONNX_DTYPES, ONNX_DTYPE_FILES, isOnnxDtype, type OnnxDtype };

export interface ReadFolderOptions {
  requireWeights?: boolean;
  /** The ONNX variant to run; default: fp32 when there, else the smallest the adapter runs (chooseOnnxDtype). */
  dtype?: OnnxDtype;
  /** Whether the adapter has shader-f16 (float16 variants need it); unknown: never the default, and a float16 dtype asked for is left to the session to refuse. */
  shaderF16?: boolean;
}

/**
 * The variant that runs, of those the folder has: the one asked for, refused with a sentence when
 * the folder lacks it or the adapter cannot run it; by default fp32 when there (what the lab's
 * numbers are checked against), else the smallest the adapter runs: q4f16 and fp16 only with
 * shader-f16, q4 before int8 (MatMulNBits runs on the GPU, int8's MatMulInteger on the CPU).
 */
export function chooseOnnxDtype(label: string, variants: readonly OnnxDtype[], options: Pick<ReadFolderOptions, 'dtype' | 'shaderF16'>): OnnxDtype {
  const f16 = options.shaderF16 === true;
  const has = variants.join(', ');
  if (options.dtype !== undefined) {
    const file = ONNX_DTYPE_FILES[options.dtype];
    if (!variants.includes(options.dtype)) {
      throw new ModelFolderError(`${label} has no ${file} (dtype ${options.dtype}): pick one of the dtypes it has (${has}).`, label, file);
    }
    if (FLOAT16_DTYPES.includes(options.dtype) && options.shaderF16 === false) {
      const others = variants.filter((d) => !FLOAT16_DTYPES.includes(d));
      throw new ModelFolderError(
        `${label}/${file} computes in float16, and this adapter has no shader-f16: ${others.length ? `load it with dtype ${others.join(' or ')}` : 'this folder has no other variant, so use an adapter with shader-f16'}.`,
        label,
        file,
      );
    }
    return options.dtype;
  }
  const order: OnnxDtype[] = f16 ? ['fp32', 'q4f16', 'q4', 'quantized', 'fp16'] : ['fp32', 'q4', 'quantized'];
  const pick = order.find((d) => variants.includes(d));
  if (!pick) {
    throw new ModelFolderError(
      `${label} has only float16 ONNX variants (${has}), and this adapter has no shader-f16: use an adapter with shader-f16, or a folder with onnx/model.onnx, model_q4.onnx or model_quantized.onnx.`,
      label,
      ONNX_DTYPE_FILES[variants[0]],
    );
  }
  return pick;
}

/** ONNX files of layouts the lab does not read, the first found, to name it in the refusal. */
async function otherOnnxLayout(source: ModelSource): Promise<string | null> {
  for (const path of ['onnx/decoder_model_merged.onnx', 'onnx/decoder_model.onnx', 'onnx/decoder_with_past_model.onnx', 'model.onnx']) {
    if (await source.has(path)) return path;
  }
  return null;
}

/**
 * The external data files `file` names (`model.onnx_data`, `model.onnx_data_1`…, beside it), read
 * for onnxruntime-web; a missing one is a sentence naming it. Graphs of 64 MB and more hold their
 * weights inline (the protobuf limit is 2 GB) and are not decoded for it.
 */
async function readExternalData(source: ModelSource, file: string, bytes: Uint8Array): Promise<ExternalDataFile[]> {
  const dir = file.slice(0, file.lastIndexOf('/') + 1);
  const name = file.slice(dir.length);
  let locations: string[];
  if (bytes.byteLength < 64 * 2 ** 20) locations = externalDataLocations(bytes);
  else {
    // Not decoded: the files beside it by transformers.js's names, _data then _data_1, _data_2…
    locations = [];
    for (let i = 0; await source.has(`${file}_data${i ? `_${i}` : ''}`); i++) locations.push(`${name}_data${i ? `_${i}` : ''}`);
  }
  const out: ExternalDataFile[] = [];
  for (const location of locations) {
    // The graph is untrusted: a location is a file name beside it (as ONNX's checker requires),
    // never a path out of the folder ('..', '/…', 'C:\…', 'https:…') that a URL or disk source would follow.
    if (!location || location.length > 255 || /^[\/]|^[a-z][a-z0-9+.-]*:|\\|(^|\/)\.\.?(\/|$)|[\u0000-\u001f?#]/i.test(location)) {
      throw new ModelFolderError(
        `${source.label}/${file} names its external data ${JSON.stringify(location.slice(0, 80))}, which is not a file name beside it: the file is corrupt or was not written by an ONNX exporter.`,
        source.label,
        file,
      );
    }
    const path = dir + location;
    if (!(await source.has(path))) {
      throw new ModelFolderError(
        `${source.label}/${file} keeps its weights in ${location}, which ${source.label} does not have: put ${path} beside it (as the export wrote it), or pick another dtype.`,
        source.label,
        path,
      );
    }
    out.push({ path: location, data: await source.read(path) });
  }
  return out;
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
