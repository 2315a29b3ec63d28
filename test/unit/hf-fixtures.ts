/**
 * Shared by the Llama-family training tests: the Hugging Face fixture folders of test/fixtures/hf/
 * (config.json, model.safetensors, lora-init.safetensors) read into the lab's layout, PyTorch's
 * numbers from reference.json (its README says what each number is), the training batch as the
 * trainer takes it, and the mapping from PyTorch's flat indices to the lab's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { llamaConfigFromJson, type LlamaConfig } from '../../workers/models/llama/config';
import { llamaParamSpecs } from '../../workers/models/llama/params';
import { readLlamaSafetensors, transpose2d } from '../../workers/models/llama/weights';
import { readSafetensors, tensorToFloat32 } from '../../workers/models/safetensors';
import type { ParamSpec } from '../../workers/models/family';
import type { TrainSequence } from '../../workers/train/batch';

export const HF_DIR = join(__dirname, '../fixtures/hf');

/** The student folders reference.json has training numbers for. */
export const TRAINED_FOLDERS = ['llama-tied', 'qwen2', 'qwen3'] as const;
export type TrainedFolder = (typeof TRAINED_FOLDERS)[number];

export interface ReferenceTensor {
  name: string;
  /** PyTorch's shape ([out, in] for the projections). */
  shape: number[];
  /** Flat indices into PyTorch's row-major tensor. */
  indices: number[];
  value_before: number[];
  grad_norm_f32: number;
  grad_norm_f64: number;
  grad_sum_f64: number;
  grad_at_indices_f32: number[];
  grad_at_indices_f64: number[];
  value_after_step_f32: number[];
  value_after_step_f64: number[];
}

export interface ReferenceGradNorm {
  /** PEFT's saved name: base_model.model.<module>.lora_A.weight / lora_B.weight. */
  name: string;
  grad_norm_f32: number;
  grad_norm_f64: number;
}

export interface ReferenceTraining {
  loss_f32: number;
  loss_f64: number;
  loss_after_adamw_step_f32: number;
  loss_after_adamw_step_f64: number;
  parameters: ReferenceTensor[];
  lora: {
    config: { r: number; lora_alpha: number; target_modules: string[] };
    loss_before_f32: number;
    loss_before_f64: number;
    loss_after_1_step_f32: number;
    loss_after_1_step_f64: number;
    loss_after_2_steps_f32: number;
    loss_after_2_steps_f64: number;
    grad_norms_step1: ReferenceGradNorm[];
    grad_norms_step2: ReferenceGradNorm[];
  };
}

export interface ReferenceBatch {
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  weights: number[][];
  optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number; grad_clipping: null | number };
}

let cached: { training: Record<string, unknown> } | undefined;
function referenceJson(): { training: Record<string, unknown> } {
  cached ??= JSON.parse(readFileSync(join(HF_DIR, 'reference.json'), 'utf8'));
  return cached!;
}

export function referenceTraining(folder: TrainedFolder): ReferenceTraining {
  return referenceJson().training[folder] as ReferenceTraining;
}

export function referenceBatch(): ReferenceBatch {
  return referenceJson().training.batch as ReferenceBatch;
}

export function fixtureConfig(folder: string): LlamaConfig {
  return llamaConfigFromJson(JSON.parse(readFileSync(join(HF_DIR, folder, 'config.json'), 'utf8')), `${folder}/config.json`);
}

/** The folder's model.safetensors in the lab's layout (projections [in, out]). */
export function fixtureParams(folder: string, config = fixtureConfig(folder)): Map<string, Float32Array> {
  return readLlamaSafetensors(config, new Uint8Array(readFileSync(join(HF_DIR, folder, 'model.safetensors'))), `${folder}/model.safetensors`);
}

/**
 * reference.json's batch as the trainer's sequences: each row cut to its real tokens (right
 * padding, so a real token never attends a padded one and positions are 0, 1, …), and the loss
 * weight of predicting token j moved to position j − 1 (the lab weights the position that
 * predicts), divided by Σw so that the weighted sum is PyTorch's weighted mean.
 */
export function trainingSequences(batch = referenceBatch()): TrainSequence[] {
  const total = batch.weights.flat().reduce((a, b) => a + b, 0);
  return batch.input_ids.map((ids, b) => {
    const length = batch.attention_mask[b].reduce((a, m) => a + m, 0);
    batch.attention_mask[b].forEach((m, j) => {
      if ((m === 1) !== j < length) throw new Error(`reference.json: training.batch row ${b} is not right-padded`);
    });
    const tokens = ids.slice(0, length);
    const weights = tokens.map((_, t) => (t + 1 < length ? batch.weights[b][t + 1] / total : 0));
    return { tokens, weights };
  });
}

/** The lab's flat index of PyTorch's flat index `i` of the tensor `spec` (projections transposed). */
export function labIndex(spec: ParamSpec, i: number): number {
  if (!spec.transposedInFile) return i;
  const [inDim, outDim] = spec.shape;
  const o = Math.floor(i / inDim);
  return (i % inDim) * outDim + o;
}

export function specsByName(config: LlamaConfig): Map<string, ParamSpec> {
  return new Map(llamaParamSpecs(config).map((s) => [s.name, s]));
}

/** PEFT's saved name of a LoRA factor of the lab's weight `name` (`…q_proj.weight` → `base_model.model.…q_proj.lora_A.weight`). */
export function peftName(weight: string, factor: 'A' | 'B'): string {
  return `base_model.model.${weight.replace(/\.weight$/, '')}.lora_${factor}.weight`;
}

/**
 * lora-init.safetensors as the lab's factors, by adapted weight: PEFT's lora_A [r, in] becomes
 * A [in, r] and lora_B [out, r] becomes B [r, out] (W_eff = W + s·A·B with W [in, out]).
 */
export function fixtureLoraInit(folder: string, config: LlamaConfig): Map<string, { a: Float32Array; b: Float32Array }> {
  const file = `${folder}/lora-init.safetensors`;
  const { tensors } = readSafetensors(new Uint8Array(readFileSync(join(HF_DIR, file))), file);
  const out = new Map<string, { a: Float32Array; b: Float32Array }>();
  for (const spec of llamaParamSpecs(config).filter((s) => s.loraTarget)) {
    const [inDim, outDim] = spec.shape;
    const read = (factor: 'A' | 'B') => {
      const name = peftName(spec.name, factor);
      const t = tensors.get(name);
      if (!t) throw new Error(`${file}: no tensor ${name}`);
      return { data: tensorToFloat32(t, name, file), shape: t.shape };
    };
    const a = read('A');
    const b = read('B');
    const r = a.shape[0];
    if (a.shape[1] !== inDim || b.shape[0] !== outDim || b.shape[1] !== r) throw new Error(`${file}: ${spec.name}'s factors have shapes [${a.shape}] and [${b.shape}], expected [r, ${inDim}] and [${outDim}, r]`);
    out.set(spec.name, { a: transpose2d(a.data, r, inDim), b: transpose2d(b.data, outDim, r) });
  }
  if (tensors.size !== out.size * 2) throw new Error(`${file}: ${tensors.size} tensors, expected A and B of ${out.size} adapted weights`);
  return out;
}
