/**
 * UI state of the lab: where start-up stands, what GPU and runtime the worker reported, which
 * panel is open (kept in the URL hash, so a view is a link), and the self-check's last result.
 */
import { create } from 'zustand';
import type {
  AdapterSummary, DivergenceSelfCheckReport, InteropReport, LabError, LabEventOf, ModelRole, ModelSummary, RuntimeSummary,
} from '../../workers/protocol';

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
}

export interface InspectState {
  /** Completions of the student being sampled (filled token by token) or sampled. */
  samples: SampledText[];
  sampling: boolean;
  sampleError: LabError | null;
  student: ModelSlot;
  teacher: ModelSlot;
  scoring: boolean;
  result: Omit<LabEventOf<'score.result'>, 'type' | 'requestId'> | null;
  error: LabError | null;
  /** The token whose details are shown. */
  selected: number | null;
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
  inspect: InspectState;
  setPanel(panel: PanelId): void;
}

export function panelFromHash(hash: string): PanelId {
  const id = new URLSearchParams(hash.replace(/^#/, '')).get('panel');
  return (PANELS.find((p) => p.id === id)?.id ?? 'distill') as PanelId;
}

export const useLab = create<LabState>()((set) => ({
  phase: 'starting',
  progress: null,
  adapter: null,
  runtime: null,
  fatal: null,
  panel: typeof location === 'undefined' ? 'distill' : panelFromHash(location.hash),
  interop: { running: false, report: null, error: null },
  divergence: { running: false, report: null, error: null },
  inspect: { samples: [], sampling: false, sampleError: null, student: emptySlot(), teacher: emptySlot(), scoring: false, result: null, error: null, selected: null },
  setPanel(panel) {
    const params = new URLSearchParams(location.hash.replace(/^#/, ''));
    params.set('panel', panel);
    history.replaceState(null, '', `#${params.toString()}`);
    set({ panel });
  },
}));
