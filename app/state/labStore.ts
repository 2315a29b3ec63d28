/**
 * UI state of the lab: where start-up stands, what GPU and runtime the worker reported, which
 * panel is open and how the Distill panel's experiment is set up (both kept in the URL hash, so a
 * view and an experiment are links), the models the worker holds, and the self-checks' results.
 *
 * A distillation run's streamed metrics do not live here: see distillRun.ts.
 */
import { create } from 'zustand';
import type {
  AdapterSummary, DivergenceSelfCheckReport, InteropReport, LabError, LabEventOf, ModelRole, ModelSummary, RuntimeSummary, TaskVerdict, TrainSetup,
} from '../../workers/protocol';
import { DEFAULT_SETUP, setupFromParams, setupToParams } from '../../workers/contract/knobs';

export interface ModelSlot {
  loading: boolean;
  model: ModelSummary | null;
  warnings: string[];
  error: LabError | null;
}

export interface SampledText {
  text: string;
  tokens: number;
  done: boolean;
  finish?: 'eos' | 'length';
  /** Right or wrong, when the prompt is one of the student's task. */
  verdict?: TaskVerdict;
}

export interface InspectState {
  /** Completions of the student being sampled (filled token by token) or sampled. */
  samples: SampledText[];
  sampling: boolean;
  sampleError: LabError | null;
  scoring: boolean;
  result: Omit<LabEventOf<'score.result'>, 'type' | 'requestId'> | null;
  error: LabError | null;
  /** The token whose details are shown. */
  selected: number | null;
  /** The last chat prompt sampled, as the student read it (rendered with its template); null for a plain prompt. */
  renderedPrompt?: string | null;
}

const emptySlot = (): ModelSlot => ({ loading: false, model: null, warnings: [], error: null });
export type { ModelRole };

export const PANELS = [
  { id: 'distill', label: 'Distill' },
  { id: 'inspect', label: 'Inspect' },
  { id: 'compare', label: 'Compare' },
  { id: 'models', label: 'Models' },
  { id: 'system', label: 'System' },
] as const;
export type PanelId = (typeof PANELS)[number]['id'];

export type LabPhase = 'starting' | 'ready' | 'unavailable' | 'lost';

export interface LabState {
  phase: LabPhase;
  progress: string | null;
  adapter: AdapterSummary | null;
  runtime: RuntimeSummary | null;
  /** Why the lab cannot run (no WebGPU, no adapter, device lost, …). */
  fatal: LabError | null;
  panel: PanelId;
  interop: { running: boolean; report: InteropReport | null; error: LabError | null };
  divergence: { running: boolean; report: DivergenceSelfCheckReport | null; error: LabError | null };
  /** The student and teacher the lab worker holds (one of each, shared by every panel). */
  models: Record<ModelRole, ModelSlot>;
  inspect: InspectState;
  /** The Distill panel's experiment: objective, task and knobs, as the person set them. */
  setup: TrainSetup;
  setPanel(panel: PanelId): void;
  setSetup(change: Partial<TrainSetup>): void;
}

const hashParams = (hash: string) => new URLSearchParams(hash.replace(/^#/, ''));

export function panelFromHash(hash: string): PanelId {
  const id = hashParams(hash).get('panel');
  return (PANELS.find((p) => p.id === id)?.id ?? 'distill') as PanelId;
}

/** The experiment in a URL hash (…&objective=opd-full&lr=0.001…); what it leaves out is the default (the knob schema reads it). */
export function setupFromHash(hash: string): TrainSetup {
  return setupFromParams(hashParams(hash));
}

/** Writes the experiment into the URL hash beside the panel, without a history entry per keystroke. */
function writeHash(change: (params: URLSearchParams) => void): void {
  const params = hashParams(location.hash);
  change(params);
  history.replaceState(null, '', `#${params.toString()}`);
}

export const useLab = create<LabState>()((set, get) => ({
  phase: 'starting',
  progress: null,
  adapter: null,
  runtime: null,
  fatal: null,
  panel: typeof location === 'undefined' ? 'distill' : panelFromHash(location.hash),
  interop: { running: false, report: null, error: null },
  divergence: { running: false, report: null, error: null },
  models: { student: emptySlot(), teacher: emptySlot() },
  inspect: { samples: [], sampling: false, sampleError: null, scoring: false, result: null, error: null, selected: null },
  setup: typeof location === 'undefined' ? { ...DEFAULT_SETUP } : setupFromHash(location.hash),
  setPanel(panel) {
    writeHash((params) => params.set('panel', panel));
    set({ panel });
  },
  setSetup(change) {
    const setup = { ...get().setup, ...change };
    writeHash((params) => setupToParams(setup, params));
    set({ setup });
  },
}));
