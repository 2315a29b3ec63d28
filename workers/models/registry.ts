/**
 * The model families the lab knows, by config.json `model_type`. Adding a family is adding its
 * folder (workers/models/<family>/, implementing ModelFamily) and one line here.
 */
import type { FamilyConfig, ModelFamily } from './family';
import { gpt2Family } from './gpt2/family';
import { llamaFamilies } from './llama/family';

// The Llama family registers one object per model_type it reads (llama, qwen2, qwen3).
const FAMILIES: readonly ModelFamily[] = [gpt2Family, ...llamaFamilies];

const BY_TYPE = new Map(FAMILIES.map((f) => [f.modelType, f]));

/** Every registered family, in registration order. */
export function modelFamilies(): readonly ModelFamily[] {
  return FAMILIES;
}

/** The family of a config.json `model_type`, or undefined when the lab has none for it. */
export function familyOf(modelType: unknown): ModelFamily | undefined {
  return typeof modelType === 'string' ? BY_TYPE.get(modelType) : undefined;
}

/** The family of a parsed config (always registered: only a family parses a config). */
export function familyFor(config: FamilyConfig): ModelFamily {
  const family = BY_TYPE.get(config.modelType);
  if (!family) throw new Error(`no model family is registered for model_type "${config.modelType}"`);
  return family;
}

/** "GPT-2, Llama, Qwen2, Qwen3": the families the lab knows, for sentences. */
export function familyNames(): string {
  return FAMILIES.map((f) => f.name).join(', ');
}
