/**
 * The Distill panel's run, as the lab worker streams it: where the run stands (a small zustand
 * store, read through selectors by the few components that show it) and its history of step and
 * eval points (held by reference outside React: the charts subscribe to it and redraw at a
 * throttled rate, so a stream of metrics never re-renders the app).
 *
 * The history of a run stays after it stops, finishes or fails; it is replaced only when the
 * next run starts.
 */
import { create } from 'zustand';
import type { EvalMetrics, LabError, ProbeHeatmap, StepMetrics, TrainExportKind, TrainStateName } from '../../workers/protocol';

/** One step as the charts plot it (non-finite values become gaps). */
export interface StepPoint {
  step: number;
  reverseKL: number | null;
  sampledKL: number | null;
  loss: number | null;
  entropy: number | null;
  meanRatio: number | null;
  /** Percent: the teacher's and the student's mass on the teacher's top-k, and the lists' overlap (null in runs recorded before them). */
  teacherTopkMass: number | null;
  studentTopkMass: number | null;
  topkOverlap: number | null;
  flops: number;
}

/** One held-out evaluation as the charts plot it. */
export interface EvalPoint {
  step: number;
  flops: number;
  /** Percent; null on prompts without a verifier (a prompt set). */
  accuracy: number | null;
  reverseKL: number | null;
  /** Held-out sampled KL of the same answers (per token). */
  sampledKL: number | null;
  /** Percent on the kept task (runs that keep one), else absent. */
  keptAccuracy?: number;
  /** Each routed task's held-out percent (where it has a verifier) and reverse KL to its own teacher, by task (runs with routes), else absent. */
  routedAccuracy?: Record<string, number>;
  routedReverseKL?: Record<string, number | null>;
  /** The probe prompts' heatmaps at this evaluation (runs with probes). */
  probes?: ProbeHeatmap[];
}

export interface RunHistory {
  steps: StepPoint[];
  evals: EvalPoint[];
}

export type RunPhase = 'idle' | TrainStateName;

export interface DistillRunState {
  /** The requestId of the train.start that began the run shown (null before any). */
  runId: number | null;
  phase: RunPhase;
  /** The worker's sentence about the run's state. */
  message: string;
  step: number;
  totalSteps: number;
  /** True from Start until the worker answers (the models' sessions are being opened). */
  starting: boolean;
  startStage: string | null;
  /** Why Start was refused (the previous run's history stays). */
  startError: LabError | null;
  /** A control sent and not answered yet: the status line says what is awaited. */
  pending: 'pause' | 'resume' | 'step' | 'stop' | null;
  controlError: LabError | null;
  /** What went wrong when the run failed. */
  failure: LabError | null;
  latest: StepMetrics | null;
  latestEval: EvalMetrics | null;
  checkpoint: { step: number; bytes: number } | null;
  /** Steps the numerics guard refused to apply. */
  problems: { step: number; problem: string }[];
  /** The LoRA rank of the run shown (0: it trains every weight): whether it has a PEFT adapter to export. */
  loraRank: number;
  /** An export being prepared, the file last downloaded, or why the export failed (outlive runs). */
  exporting: TrainExportKind | null;
  exported: { what: TrainExportKind; step: number; fileName: string; bytes: number } | null;
  exportError: LabError | null;
}

const initial: Omit<DistillRunState, 'starting' | 'startStage' | 'startError' | 'exporting' | 'exported' | 'exportError'> = {
  runId: null,
  phase: 'idle',
  message: '',
  loraRank: 0,
  step: 0,
  totalSteps: 0,
  pending: null,
  controlError: null,
  failure: null,
  latest: null,
  latestEval: null,
  checkpoint: null,
  problems: [],
};

export const useDistillRun = create<DistillRunState>()(() => ({
  ...initial, starting: false, startStage: null, startError: null, exporting: null, exported: null, exportError: null,
}));

const finite = (x: number) => (Number.isFinite(x) ? x : null);
/** A field a run recorded before it existed reads as a gap too. */
const optional = (x: number | undefined, scale = 1) => (x === undefined ? null : finite(scale * x));

/** The run's points, by reference; `subscribeHistory` says when they grew. */
export const runHistory: RunHistory = { steps: [], evals: [] };
const historyListeners = new Set<() => void>();

export function subscribeHistory(listener: () => void): () => void {
  historyListeners.add(listener);
  return () => historyListeners.delete(listener);
}

function historyChanged(): void {
  for (const l of historyListeners) l();
}

/** A new run began (the worker answered train.start): the previous run's history goes. */
export function beginRun(runId: number, totalSteps: number, message: string, loraRank = 0): void {
  runHistory.steps = [];
  runHistory.evals = [];
  useDistillRun.setState({ ...initial, runId, phase: 'running', totalSteps, message, loraRank, starting: false, startStage: null, startError: null, exported: null, exportError: null });
  historyChanged();
}

export function addStep(m: StepMetrics): void {
  runHistory.steps.push({
    step: m.step,
    reverseKL: finite(m.reverseKL),
    sampledKL: finite(m.sampledKL),
    loss: finite(m.loss),
    entropy: finite(m.studentEntropy),
    meanRatio: finite(m.meanRatio),
    teacherTopkMass: optional(m.teacherTopkMass, 100),
    studentTopkMass: optional(m.studentTopkMass, 100),
    topkOverlap: optional(m.topkOverlap, 100),
    flops: m.flops.total,
  });
  useDistillRun.setState((s) => ({
    latest: m,
    step: m.step,
    problems: m.applied ? s.problems : [...s.problems, { step: m.step, problem: m.problem ?? 'the update was not applied' }],
  }));
  historyChanged();
}

export function addEval(e: EvalMetrics): void {
  runHistory.evals.push({
    step: e.step, flops: e.flopsTotal, accuracy: e.accuracy === undefined ? null : 100 * e.accuracy, reverseKL: finite(e.reverseKL), sampledKL: e.sampledKL === undefined ? null : finite(e.sampledKL),
    ...(e.kept ? { keptAccuracy: 100 * e.kept.accuracy } : {}),
    ...(e.routed?.length
      ? {
          routedAccuracy: Object.fromEntries(e.routed.filter((r) => r.accuracy !== undefined).map((r) => [r.task, 100 * r.accuracy!])),
          routedReverseKL: Object.fromEntries(e.routed.map((r) => [r.task, finite(r.reverseKL)])),
        }
      : {}),
    ...(e.probes ? { probes: e.probes } : {}),
  });
  useDistillRun.setState({ latestEval: e });
  historyChanged();
}

/**
 * The history replaced by a kept run's points (the run archive's: after a reload, or a resumed
 * run going on from its checkpoint), the latest step and evaluation with them.
 */
export function restoreHistory(steps: StepMetrics[], evals: EvalMetrics[]): void {
  runHistory.steps = [];
  runHistory.evals = [];
  useDistillRun.setState({ latest: null, latestEval: null, problems: [] });
  for (const m of steps) addStep(m);
  for (const e of evals) addEval(e);
  historyChanged();
}

/** Whether a run holds the GPU or is being set up: nothing else may start one then. */
export const runGoing = (s: Pick<DistillRunState, 'starting' | 'phase'> = useDistillRun.getState()): boolean =>
  s.starting || s.phase === 'running' || s.phase === 'paused';
