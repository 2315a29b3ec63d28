/**
 * A LoRA run's adapter as PEFT saves it (`PeftModel.save_pretrained`, PEFT 0.21), so that
 * `PeftModel.from_pretrained(base, folder)` in Python loads what the lab trained:
 *
 *   adapter_config.json        LoraConfig with every key PEFT 0.21 writes, sorted as it sorts them:
 *                              peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, target_modules
 *                              (the short module names: q_proj … down_proj, or GPT-2's c_attn,
 *                              c_proj, c_fc), lora_dropout 0, bias "none", fan_in_fan_out,
 *                              inference_mode true, base_model_name_or_path, the rest PEFT's defaults;
 *   adapter_model.safetensors  per adapted weight `<module>.weight` of the model:
 *                              `base_model.model.<module>.lora_A.weight` [r, in] and
 *                              `base_model.model.<module>.lora_B.weight` [out, r], float32, in name
 *                              order with `{"format": "pt"}` (as safetensors' save_file writes them).
 *
 * The lab keeps A [in, r] and B [r, out] (W_eff = W + s·A·B with W [in, out], y = x·W); PEFT's
 * factors are torch.nn.Linear weights, lora_A: in → r stored [r, in] and lora_B: r → out stored
 * [out, r], computing y = x·Wᵀ + s·(x·lora_Aᵀ)·lora_Bᵀ: so lora_A = Aᵀ and lora_B = Bᵀ, whatever
 * the layout of the base weight. fan_in_fan_out says that layout: false for torch.nn.Linear
 * ([out, in] in the file: the Llama family), true for GPT-2's Conv1D ([in, out] in the file).
 * The scale s = lora_alpha / r, as the trainer's (workers/train/lora.ts).
 */
import { readSafetensors, SafetensorsError, tensorToFloat32, writeSafetensors, type TensorToWrite } from '../models/safetensors';
import type { ParamSpec } from '../models/family';
import { TrainerError } from './trainer-error';
import type { Trainer } from './trainer';

/** One adapted weight's factors in the lab's layout: A [in, r], B [r, out]. */
export interface LoraFactors {
  a: Float32Array;
  b: Float32Array;
}

export interface PeftAdapter {
  rank: number;
  alpha: number;
  /** Factors by the adapted weight's Hugging Face name (`model.layers.0.self_attn.q_proj.weight`). */
  factors: Map<string, LoraFactors>;
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** The PEFT version whose files these are (adapter_config.json's peft_version). */
export const PEFT_VERSION = '0.21.0';

/** PEFT's saved name of a factor of the weight `name`: `x.q_proj.weight` → `base_model.model.x.q_proj.lora_A.weight`. */
export function peftTensorName(weight: string, factor: 'A' | 'B'): string {
  if (!weight.endsWith('.weight')) throw new TrainerError(`${weight} is not a weight LoRA can adapt (its name should end in .weight)`);
  return `base_model.model.${weight.slice(0, -'.weight'.length)}.lora_${factor}.weight`;
}

/** The module's short name, as target_modules lists it: `model.layers.0.self_attn.q_proj.weight` → `q_proj`. */
export function peftModuleName(weight: string): string {
  const parts = weight.split('.');
  return parts[parts.length - 2];
}

/** [rows, cols] row-major → [cols, rows] row-major. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** The LoRA targets of `specs`, checked to be linear weights of two dimensions. */
function loraTargets(specs: readonly ParamSpec[]): ParamSpec[] {
  const targets = specs.filter((s) => s.loraTarget);
  if (targets.length === 0) throw new TrainerError('this model has no weights LoRA can adapt, so it has no PEFT adapter to write');
  for (const s of targets) if (s.shape.length !== 2) throw new TrainerError(`${s.name} has shape [${s.shape.join(', ')}]: LoRA adapts matrices only`);
  return targets;
}

/**
 * adapter_config.json as PEFT 0.21 writes it for a LoRA on `targets`: every key of LoraConfig
 * (runtime_config aside), PEFT's defaults for what the lab does not use, keys sorted.
 */
export function peftAdapterConfig(specs: readonly ParamSpec[], rank: number, alpha: number, baseModel: string): Record<string, unknown> {
  const targets = loraTargets(specs);
  // Conv1D keeps [in, out] in the file, as the lab does; torch.nn.Linear keeps [out, in].
  const fanInFanOut = targets.map((s) => !s.transposedInFile);
  if (fanInFanOut.some((f) => f !== fanInFanOut[0])) {
    throw new TrainerError('the adapted weights mix torch.nn.Linear and Conv1D layouts, which one PEFT adapter_config.json cannot describe (fan_in_fan_out is one flag)');
  }
  const config: Record<string, unknown> = {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: fanInFanOut[0],
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: alpha,
    lora_bias: false,
    lora_dropout: 0,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: PEFT_VERSION,
    qalora_group_size: 16,
    r: rank,
    rank_pattern: {},
    revision: null,
    target_modules: [...new Set(targets.map((s) => peftModuleName(s.name)))],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
    velora_config: null,
  };
  return Object.fromEntries(Object.entries(config).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

/** adapter_model.safetensors: lora_A [r, in] and lora_B [out, r] of every target, float32, in name order. */
export function writePeftAdapterWeights(specs: readonly ParamSpec[], adapter: PeftAdapter): Uint8Array {
  const { rank, factors } = adapter;
  const entries: [string, TensorToWrite][] = [];
  for (const spec of loraTargets(specs)) {
    const [inDim, outDim] = spec.shape;
    const f = factors.get(spec.name);
    if (!f) throw new TrainerError(`the LoRA factors of ${spec.name} are missing`);
    if (f.a.length !== inDim * rank || f.b.length !== rank * outDim) {
      throw new TrainerError(`the LoRA factors of ${spec.name} have ${f.a.length} and ${f.b.length} values, expected A [${inDim}, ${rank}] and B [${rank}, ${outDim}]`);
    }
    entries.push([peftTensorName(spec.name, 'A'), { dtype: 'F32', shape: [rank, inDim], data: transpose(f.a, inDim, rank) }]);
    entries.push([peftTensorName(spec.name, 'B'), { dtype: 'F32', shape: [outDim, rank], data: transpose(f.b, rank, outDim) }]);
  }
  // safetensors' save_file orders tensors by name (all of one dtype here): so does PEFT's file.
  entries.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return writeSafetensors(entries, { format: 'pt' });
}

/** The adapter folder's two files, by relative path. */
export function peftAdapterFiles(specs: readonly ParamSpec[], adapter: PeftAdapter, baseModel: string): Map<string, Uint8Array> {
  const config = peftAdapterConfig(specs, adapter.rank, adapter.alpha, baseModel);
  return new Map([
    [ADAPTER_CONFIG, new TextEncoder().encode(JSON.stringify(config, null, 2))],
    [ADAPTER_WEIGHTS, writePeftAdapterWeights(specs, adapter)],
  ]);
}

/**
 * Reads an adapter folder's two files back into the lab's layout, checked against the model's
 * parameters: a missing, misshapen or foreign tensor, or a config the lab cannot apply (another
 * peft_type, DoRA, rsLoRA, per-module ranks), is one sentence naming the file and what is wrong.
 */
export function readPeftAdapter(specs: readonly ParamSpec[], configBytes: Uint8Array, weightBytes: Uint8Array, label = 'adapter'): PeftAdapter {
  const configFile = `${label}/${ADAPTER_CONFIG}`;
  const weightsFile = `${label}/${ADAPTER_WEIGHTS}`;
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>;
  } catch (e) {
    throw new TrainerError(`${configFile} is not valid JSON (${(e as Error).message})`);
  }
  if (config.peft_type !== 'LORA') throw new TrainerError(`${configFile}: peft_type ${JSON.stringify(config.peft_type)} is not "LORA"; the lab reads LoRA adapters only`);
  for (const key of ['use_dora', 'use_rslora'] as const) if (config[key]) throw new TrainerError(`${configFile}: ${key} is true; the lab applies plain LoRA (W + alpha/r·A·B) only`);
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = config[key];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) throw new TrainerError(`${configFile}: ${key} gives modules their own rank or alpha; the lab uses one for all`);
  }
  const rank = config.r;
  const alpha = config.lora_alpha;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 1) throw new TrainerError(`${configFile}: r ${JSON.stringify(rank)} is not a positive integer`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new TrainerError(`${configFile}: lora_alpha ${JSON.stringify(alpha)} is not a number`);
  const { tensors } = readSafetensors(weightBytes, weightsFile);
  const factors = new Map<string, LoraFactors>();
  const used = new Set<string>();
  for (const spec of specs.filter((s) => s.loraTarget)) {
    const [inDim, outDim] = spec.shape;
    const nameA = peftTensorName(spec.name, 'A');
    const nameB = peftTensorName(spec.name, 'B');
    const a = tensors.get(nameA);
    const b = tensors.get(nameB);
    if (!a && !b) continue; // a module the adapter leaves alone
    if (!a || !b) throw new SafetensorsError(weightsFile, `tensor "${a ? nameB : nameA}" is missing (its partner ${a ? nameA : nameB} is there)`);
    const expect = (t: { shape: number[] }, name: string, shape: number[]) => {
      if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
        throw new SafetensorsError(weightsFile, `tensor "${name}" has shape [${t.shape.join(', ')}], but r ${rank} on ${spec.name} needs [${shape.join(', ')}]`);
      }
    };
    expect(a, nameA, [rank, inDim]);
    expect(b, nameB, [outDim, rank]);
    factors.set(spec.name, {
      a: transpose(tensorToFloat32(a, nameA, weightsFile), rank, inDim),
      b: transpose(tensorToFloat32(b, nameB, weightsFile), outDim, rank),
    });
    used.add(nameA).add(nameB);
  }
  for (const name of tensors.keys()) {
    if (!used.has(name)) throw new SafetensorsError(weightsFile, `tensor "${name}" is not a LoRA factor of a weight this model lets LoRA adapt`);
  }
  if (factors.size === 0) throw new SafetensorsError(weightsFile, 'it holds no LoRA factors');
  return { rank, alpha, factors };
}

/**
 * The LoRA factors a trainer holds now (its `<weight>.lora_A` [in, r] and `.lora_B` [r, out]
 * tensors, read from the GPU), or null when it trains without LoRA.
 */
export async function trainerLoraAdapter(trainer: Trainer): Promise<PeftAdapter | null> {
  const lora = trainer.options.lora;
  if (!lora) return null;
  const { trainable } = await trainer.readState();
  const factors = new Map<string, LoraFactors>();
  for (const spec of trainer.family.paramSpecs(trainer.config).filter((s) => s.loraTarget)) {
    const a = trainable.get(`${spec.name}.lora_A`);
    const b = trainable.get(`${spec.name}.lora_B`);
    if (!a || !b) throw new TrainerError(`the trainer has no LoRA factors for ${spec.name}`);
    factors.set(spec.name, { a: a.param, b: b.param });
  }
  return { rank: lora.rank, alpha: lora.alpha ?? lora.rank, factors };
}
