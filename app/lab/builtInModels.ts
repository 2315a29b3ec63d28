/**
 * The built-in model folders the lab ships (models/<name>/ in the repository), served by the
 * lab's own server at <base>models/<name>/ and listed in <base>models/index.json, which the
 * Vite plugin in scripts/vite-built-in-models.ts writes from each folder's config.json and
 * recipe.json. Loading one goes through the same `model.load` by URL as any other folder.
 */
import { create } from 'zustand';
import type { ModelRole } from '../../workers/protocol';

/** One folder of models/index.json: what its recipe.json and config.json say about it. */
export interface BuiltInModel {
  /** The folder's name under models/. */
  name: string;
  /** The role the recipe built it for (recipe.json `role`, else config.json `lab_role`). */
  role: ModelRole | null;
  modelType: string | null;
  parameters: number | null;
  /** The task the model was trained on (config.json `task`, e.g. 'addition'). */
  taskName: string | null;
  /** The task's options as recipe.json gives them (e.g. { digits: [1, 3], format: 'reversed' }). */
  task: unknown;
  heldOutAccuracy: number | null;
  heldOutPrompts: number | null;
  /** What the folder is, in a sentence (recipe.json `description`). */
  description: string | null;
  /** The preset the folder belongs to (config.json `lab_preset`, e.g. 'self-distill'), or null. */
  preset: string | null;
  /** The task it must keep while distilled on `taskName` (config.json `task_kept`), and its held-out accuracy on it. */
  keptTask: string | null;
  keptAccuracy: number | null;
  /** Seconds the recipe took: the teacher alone, and teacher and student together (or the recovery pair's step, or a student's own step). */
  buildSeconds: { teacher?: number; student?: number; total?: number; recovery?: number } | null;
  steps: number | null;
  /** The adapter the recipe ran on. */
  adapter: string | null;
  /** Every file of the folder, by its path inside it. */
  files: string[];
}

export interface BuiltInModelsIndex {
  models: BuiltInModel[];
}

/** The folder names `npm run build:models` writes; the defaults before index.json is read. */
export const BUILT_IN_NAMES: Record<ModelRole, string> = { student: 'addition-student', teacher: 'addition-teacher' };

/** The reasoning task's pair (task worked-addition, preset 'worked': answers of 34 tokens with their working written out). */
export const WORKED_NAMES: Record<ModelRole, string> = { student: 'worked-student', teacher: 'worked-teacher' };

/** The URL of a file or folder under the lab's models/ (base-aware: works under any deploy base). */
export function builtInUrl(path = ''): string {
  return new URL(`${import.meta.env.BASE_URL}models/${path}`, location.href).href;
}

/** The folder URL of a built-in model (with its trailing slash, as model.load wants it). */
export const builtInModelUrl = (name: string): string => builtInUrl(`${name}/`);

export interface BuiltInState {
  status: 'idle' | 'loading' | 'loaded' | 'failed';
  index: BuiltInModelsIndex | null;
  error: string | null;
}

export const useBuiltIns = create<BuiltInState>()(() => ({ status: 'idle', index: null, error: null }));

/** Reads models/index.json once (again after a failure). */
export async function fetchBuiltIns(): Promise<void> {
  const { status } = useBuiltIns.getState();
  if (status === 'loading' || status === 'loaded') return;
  useBuiltIns.setState({ status: 'loading', error: null });
  try {
    const response = await fetch(builtInUrl('index.json'));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const index = (await response.json()) as BuiltInModelsIndex;
    if (!index || !Array.isArray(index.models)) throw new Error('it has no "models" list');
    useBuiltIns.setState({ status: 'loaded', index });
  } catch (e) {
    useBuiltIns.setState({ status: 'failed', error: `Could not read ${builtInUrl('index.json')}: ${(e as Error).message}.` });
  }
}

/** The built-in folder for a role: the one index.json gives that role, else the conventional name. */
export function builtInFor(role: ModelRole, index: BuiltInModelsIndex | null): string {
  return index?.models.find((m) => m.role === role && !m.preset)?.name ?? BUILT_IN_NAMES[role];
}

/** "1–3 digits, reversed" from { digits: [1, 3], format: 'reversed' }; other shapes as compact JSON. */
export function describeTask(name: string | null, task: unknown): string {
  const parts: string[] = [];
  if (name) parts.push(name);
  if (task && typeof task === 'object') {
    const t = task as { digits?: unknown; format?: unknown };
    const known = Array.isArray(t.digits) && t.digits.length === 2 && typeof t.format === 'string';
    if (known) {
      const [lo, hi] = t.digits as [number, number];
      parts.push(`${lo === hi ? lo : `${lo}–${hi}`} digits, ${t.format} answers`);
    } else parts.push(JSON.stringify(task));
  } else if (typeof task === 'string' && task !== name) parts.push(task);
  return parts.join(': ') || 'unknown';
}

/** "13 min 32 s", "48 s". */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
