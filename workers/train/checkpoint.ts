/**
 * Trainer checkpoints as one safetensors file: the model's base weights under their Hugging Face
 * names (so the file is also a readable state dict of its family), each trainable tensor's weights (LoRA
 * factors under `<weight>.lora_A|lora_B`) and AdamW moments under `optimizer.m.<name>` and
 * `optimizer.v.<name>`, and in the metadata the config, the optimizer settings, LoRA, the step
 * count and whatever run state the caller adds (e.g. the sampler's RNG position). Restoring gives
 * bit-identical tensors, so a resumed run continues exactly as the uninterrupted one.
 */
import { familyOf } from '../models/registry';
import { readSafetensors, tensorToFloat32, writeSafetensors, type TensorToWrite } from '../models/safetensors';
import { Trainer, TrainerError, type TrainerOptions } from './trainer';

export const CHECKPOINT_FORMAT = 'opd-lab-trainer-checkpoint';
export const CHECKPOINT_VERSION = 1;

interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  config: Record<string, unknown>;
  options: TrainerOptions;
  trainable: string[];
  /** Caller's run state, stored as given. */
  run?: unknown;
}

/** Serialises the trainer's whole state (waits for the GPU). */
export async function saveCheckpoint(trainer: Trainer, run?: unknown): Promise<Uint8Array> {
  const { base, trainable } = await trainer.readState();
  const entries: [string, TensorToWrite][] = [];
  for (const spec of trainer.family.paramSpecs(trainer.config)) {
    // Full fine-tuning: the base weights are the trainable ones; write them once, from `trainable`.
    if (trainable.has(spec.name)) continue;
    entries.push([spec.name, { dtype: 'F32', shape: spec.shape, data: base.get(spec.name)! }]);
  }
  for (const [name, t] of trainable) {
    const shape = t.shape;
    entries.push([name, { dtype: 'F32', shape, data: t.param }]);
    entries.push([`optimizer.m.${name}`, { dtype: 'F32', shape, data: t.m }]);
    entries.push([`optimizer.v.${name}`, { dtype: 'F32', shape, data: t.v }]);
  }
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: trainer.step,
    config: trainer.family.configToJson(trainer.config),
    options: trainer.options,
    trainable: trainer.trainableNames,
    ...(run !== undefined ? { run } : {}),
  };
  return writeSafetensors(entries, { format: 'pt', 'opd-lab': JSON.stringify(meta) });
}

export interface RestoredCheckpoint {
  trainer: Trainer;
  step: number;
  run?: unknown;
}

/** Rebuilds a trainer on `device` from saveCheckpoint's bytes; errors name the file and the problem. */
export async function restoreCheckpoint(device: GPUDevice, bytes: Uint8Array, file = 'checkpoint.safetensors'): Promise<RestoredCheckpoint> {
  const { tensors, metadata } = readSafetensors(bytes, file);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata['opd-lab'] ?? 'null') as CheckpointMeta;
  } catch {
    throw new TrainerError(`${file}: its "opd-lab" metadata is not JSON`);
  }
  if (!meta || meta.format !== CHECKPOINT_FORMAT) throw new TrainerError(`${file} is not an OPD Lab trainer checkpoint (no "opd-lab" metadata)`);
  if (meta.version !== CHECKPOINT_VERSION) throw new TrainerError(`${file} is a version ${meta.version} checkpoint; this lab reads version ${CHECKPOINT_VERSION}`);
  const modelType = (meta.config as { model_type?: unknown } | undefined)?.model_type;
  const family = familyOf(modelType);
  if (!family) throw new TrainerError(`${file}: its config's model_type ${JSON.stringify(modelType)} is not a model family the lab trains`);
  const config = family.configFromJson(meta.config, `${file} (config)`);
  const get = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new TrainerError(`${file}: the tensor ${name} is missing`);
    return tensorToFloat32(t, name, file);
  };
  if (!Array.isArray(meta.trainable)) throw new TrainerError(`${file}: its "opd-lab" metadata lists no trainable tensors`);
  // Every tensor is looked up before the trainer exists: a missing one is named with the file.
  const base = new Map(family.paramSpecs(config).map((spec) => [spec.name, get(spec.name)] as const));
  const state = new Map(meta.trainable.map((n) => [n, { param: get(n), m: get(`optimizer.m.${n}`), v: get(`optimizer.v.${n}`) }] as const));
  const inFile = (e: unknown) => (e instanceof TrainerError ? new TrainerError(`${file}: ${e.message}`) : e);
  let trainer: Trainer;
  try {
    trainer = await Trainer.create(device, config, base, meta.options);
  } catch (e) {
    throw inFile(e);
  }
  try {
    const names = trainer.trainableNames;
    if (names.length !== state.size || names.some((n) => !state.has(n))) throw new TrainerError('its trainable tensors do not match its own options');
    trainer.writeState(state, meta.step);
  } catch (e) {
    // A half-restored trainer is of no use: free its GPU buffers rather than leak them.
    trainer.destroy();
    throw inFile(e);
  }
  return { trainer, step: meta.step, run: meta.run };
}
