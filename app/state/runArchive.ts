/**
 * The run archive: every distillation run the page has driven or imported, kept in IndexedDB
 * (idb.ts) so nothing is lost on a reload, a closed tab, a lost GPU device or a crashed worker.
 * A run is a RunRecord (workers/contract/runFile.ts): its setup, where its models came from, every
 * step's and evaluation's metrics, heatmap snapshots, and the metadata of its checkpoints, whose
 * bytes are stored apart (the last CHECKPOINTS_PER_RUN of each run).
 *
 * Readers (the run list, the Compare panel): `listRuns()`, `getRun(id)`, `subscribe(listener)`,
 * or the `useRunArchive` hook; records are replaced, never mutated, so a changed run is a new
 * object. Writers: the page's run glue (app/lab/runs.ts) records what the worker streams.
 * Records are written to IndexedDB at most every WRITE_EVERY_MS per run (and at once when the run
 * changes state); checkpoints at once. When the browser refuses to store more (its quota), the
 * archive says so in `quota` and offers the oldest checkpoints for deletion: never a silent failure.
 */
import { create } from 'zustand';
import * as idb from './idb';
import {
  packRunFile, RUN_FILE_SUFFIX, unpackRunFile,
  type CheckpointMeta, type RunModel, type RunRecord, type RunSnapshot, type RunStatus,
} from '../../workers/contract/runFile';
import type { EvalMetrics, PromptTextSource, StepMetrics, TrainSetup } from '../../workers/protocol';
import { formatBytes } from '../../workers/contract/format';
import { withDefaults } from '../../workers/contract/knobs';

export type { CheckpointMeta, RunModel, RunRecord, RunSnapshot, RunStatus };

/** Checkpoints kept per run (the newest); older ones are deleted as new ones come. */
export const CHECKPOINTS_PER_RUN = 3;
const WRITE_EVERY_MS = 1000;

/** A checkpoint the browser refused to store, and the checkpoints offered for deletion to make room. */
export interface QuotaProblem {
  runId: string;
  step: number;
  bytes: number;
  /** The oldest checkpoints (of every run), enough to free `bytes` when there are that many. */
  offer: { runId: string; step: number; bytes: number; label: string }[];
  message: string;
}

export interface ArchiveState {
  /** False until the archive has been read from IndexedDB. */
  loaded: boolean;
  /** Newest first. */
  runs: RunRecord[];
  /** navigator.storage.estimate(): bytes this origin uses and may use (null where unknown). */
  storage: { usage: number; quota: number } | null;
  quota: QuotaProblem | null;
  /** Why the archive cannot be read or written (no IndexedDB, …), as a sentence. */
  error: string | null;
}

export const useRunArchive = create<ArchiveState>()(() => ({ loaded: false, runs: [], storage: null, quota: null, error: null }));

const runs = new Map<string, RunRecord>();
/** A refused checkpoint's bytes, held until the person frees room or gives it up. */
let refused: { runId: string; step: number; bytes: Uint8Array } | null = null;

function publish(): void {
  useRunArchive.setState({ runs: [...runs.values()].sort((a, b) => b.createdAt - a.createdAt || b.updatedAt - a.updatedAt) });
}

// ---------------------------------------------------------------- reading (the Compare panel's API)

/** Every run, newest first. */
export function listRuns(): RunRecord[] {
  return useRunArchive.getState().runs;
}

export function getRun(id: string): RunRecord | undefined {
  return runs.get(id);
}

/** Called after any change to the archive (a run added, grown, deleted; storage; quota). */
export function subscribe(listener: (state: ArchiveState) => void): () => void {
  return useRunArchive.subscribe(listener);
}

/** The bytes of a run's checkpoint (its latest when no step is named), or null when none is stored. */
export async function checkpointOf(id: string, step?: number): Promise<{ step: number; bytes: Uint8Array } | null> {
  const run = runs.get(id);
  if (!run) return null;
  const metas = step === undefined ? [...run.checkpoints].reverse() : run.checkpoints.filter((c) => c.step === step);
  for (const meta of metas) {
    const stored = await idb.get<{ bytes: Uint8Array }>('checkpoints', [id, meta.step]).catch(() => undefined);
    if (stored) return { step: meta.step, bytes: stored.bytes };
  }
  if (refused?.runId === id && (step === undefined || refused.step === step)) return { step: refused.step, bytes: refused.bytes };
  return null;
}

// ---------------------------------------------------------------- opening

let opening: Promise<void> | null = null;

/**
 * Reads the archive from IndexedDB (once). A run still marked running or paused was driven by a
 * page that went away (a reload, a closed tab): it is marked 'interrupted', to resume from its
 * last checkpoint.
 */
export function openArchive(): Promise<void> {
  opening ??= (async () => {
    try {
      const stored = await idb.getAll<RunRecord>('runs');
      for (const kept of stored) {
        // A run kept by an older lab lacks the knobs added since: they are at their defaults.
        const r = { ...kept, setup: withDefaults(kept.setup) };
        const interrupted = r.status === 'running' || r.status === 'paused';
        const run = interrupted ? { ...r, status: 'interrupted' as const, message: interruptedMessage(r) } : r;
        runs.set(run.id, run);
        if (interrupted) void idb.put('runs', run).catch(() => undefined);
      }
      publish();
      useRunArchive.setState({ loaded: true, error: null });
    } catch (e) {
      useRunArchive.setState({ loaded: true, error: `Runs cannot be kept across reloads: ${e instanceof Error ? e.message : String(e)}` });
    }
    void refreshStorage();
  })();
  return opening;
}

function interruptedMessage(r: RunRecord): string {
  const last = r.checkpoints.at(-1);
  return `Interrupted after step ${r.step} of ${r.totalSteps} (the page that drove it went away)${last ? `; it resumes from its checkpoint of step ${last.step}` : '; it kept no checkpoint, so it cannot resume'}.`;
}

export async function refreshStorage(): Promise<void> {
  try {
    const e = await navigator.storage?.estimate?.();
    if (e && e.usage !== undefined && e.quota !== undefined) useRunArchive.setState({ storage: { usage: e.usage, quota: e.quota } });
  } catch {
    // No estimate in this browser: the list says nothing about storage.
  }
}

// ---------------------------------------------------------------- writing (the page's run glue)

const writeTimers = new Map<string, ReturnType<typeof setTimeout>>();

function writeSoon(id: string, now = false): void {
  const pending = writeTimers.get(id);
  if (pending && !now) return;
  if (pending) clearTimeout(pending);
  const write = () => {
    writeTimers.delete(id);
    const run = runs.get(id);
    if (run) idb.put('runs', run).catch((e) => reportWriteError(run, e));
  };
  if (now) write();
  else writeTimers.set(id, setTimeout(write, WRITE_EVERY_MS));
}

function reportWriteError(run: RunRecord, e: unknown): void {
  if (idb.isQuotaError(e)) {
    useRunArchive.setState({ quota: quotaProblem(run.id, -1, 0, `The browser refused to store more of run “${run.label}”: its storage quota is reached. Delete old checkpoints or runs to make room.`) });
  } else {
    useRunArchive.setState({ error: `Run “${run.label}” could not be written to the browser's storage: ${e instanceof Error ? e.message : String(e)}` });
  }
}

function update(id: string, change: (r: RunRecord) => Partial<RunRecord>, writeNow = false): RunRecord | undefined {
  const run = runs.get(id);
  if (!run) return undefined;
  const next = { ...run, ...change(run), updatedAt: Date.now() };
  runs.set(id, next);
  publish();
  writeSoon(id, writeNow);
  return next;
}

const randomId = () => `run-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** A new run, as it starts. */
export function createRun(init: { label: string; setup: TrainSetup; prompts: PromptTextSource | null; models: { student: RunModel; teacher: RunModel }; totalSteps: number; message: string }): RunRecord {
  const now = Date.now();
  const run: RunRecord = {
    id: randomId(), createdAt: now, updatedAt: now, status: 'running', step: 0, steps: [], evals: [], checkpoints: [], snapshots: [], ...init,
  };
  runs.set(run.id, run);
  publish();
  writeSoon(run.id, true);
  return run;
}

export function recordStep(id: string, m: StepMetrics): void {
  update(id, (r) => ({ steps: [...r.steps, m], step: m.step }));
}

export function recordEval(id: string, e: EvalMetrics): void {
  update(id, (r) => ({ evals: [...r.evals, e] }));
}

export function recordState(id: string, status: RunStatus, step: number, message: string, totalSteps?: number): void {
  update(id, () => ({ status, step, message, ...(totalSteps !== undefined ? { totalSteps } : {}) }), true);
}

/** A heatmap snapshot (a probe prompt's per-token penalties at an evaluation). */
export function addSnapshot(id: string, snapshot: RunSnapshot): void {
  update(id, (r) => ({ snapshots: [...r.snapshots, snapshot] }));
}

/**
 * A resumed run goes on from its checkpoint's step: the steps, evaluations and snapshots recorded
 * after it are dropped (the run does them again).
 */
export function rewindTo(id: string, step: number, status: RunStatus, message: string): void {
  update(id, (r) => ({
    status, message, step,
    steps: r.steps.filter((m) => m.step <= step),
    evals: r.evals.filter((e) => e.step <= step),
    snapshots: r.snapshots.filter((s) => s.step <= step),
  }), true);
}

/**
 * Stores a checkpoint's bytes and drops the run's older ones past CHECKPOINTS_PER_RUN. When the
 * browser refuses (its quota), the bytes are held in memory and `quota` offers the oldest
 * checkpoints for deletion (freeRoom), and false is returned.
 */
export async function recordCheckpoint(id: string, step: number, bytes: Uint8Array): Promise<boolean> {
  const run = runs.get(id);
  if (!run) return false;
  try {
    await idb.put('checkpoints', { runId: id, step, bytes });
  } catch (e) {
    if (!idb.isQuotaError(e)) {
      useRunArchive.setState({ error: `The checkpoint of step ${step} could not be stored: ${e instanceof Error ? e.message : String(e)}` });
      return false;
    }
    refused = { runId: id, step, bytes };
    useRunArchive.setState({
      quota: quotaProblem(id, step, bytes.byteLength, `The browser refused to store the checkpoint of step ${step} (${formatBytes(bytes.byteLength)}): this site's storage quota is reached. It is held in this page until room is made.`),
    });
    void refreshStorage();
    return false;
  }
  const meta: CheckpointMeta = { step, bytes: bytes.byteLength, savedAt: Date.now() };
  const kept = [...run.checkpoints.filter((c) => c.step !== step), meta].sort((a, b) => a.step - b.step);
  const dropped = kept.splice(0, Math.max(0, kept.length - CHECKPOINTS_PER_RUN));
  update(id, () => ({ checkpoints: kept }), true);
  for (const c of dropped) await idb.del('checkpoints', [id, c.step]).catch(() => undefined);
  if (refused?.runId === id && refused.step <= step) {
    refused = null;
    useRunArchive.setState({ quota: null });
  }
  void refreshStorage();
  return true;
}

function quotaProblem(runId: string, step: number, bytes: number, message: string): QuotaProblem {
  const all = [...runs.values()].flatMap((r) => r.checkpoints.map((c) => ({ runId: r.id, step: c.step, bytes: c.bytes, savedAt: c.savedAt, label: r.label })));
  all.sort((a, b) => a.savedAt - b.savedAt);
  const offer: QuotaProblem['offer'] = [];
  let freed = 0;
  for (const c of all) {
    if (offer.length > 0 && freed >= Math.max(bytes, 1)) break;
    offer.push({ runId: c.runId, step: c.step, bytes: c.bytes, label: c.label });
    freed += c.bytes;
  }
  return { runId, step, bytes, offer, message };
}

/** Deletes stored checkpoints (the quota's offer, or any), then stores the refused one again if there is one. */
export async function freeRoom(checkpoints: { runId: string; step: number }[]): Promise<void> {
  for (const c of checkpoints) {
    await idb.del('checkpoints', [c.runId, c.step]).catch(() => undefined);
    update(c.runId, (r) => ({ checkpoints: r.checkpoints.filter((m) => m.step !== c.step) }), true);
  }
  useRunArchive.setState({ quota: null });
  const held = refused;
  if (held) await recordCheckpoint(held.runId, held.step, held.bytes);
  await refreshStorage();
}

/** Gives up the checkpoint the browser refused (the run goes on; its earlier checkpoint stands). */
export function dismissQuota(): void {
  refused = null;
  useRunArchive.setState({ quota: null });
}

export async function deleteRun(id: string): Promise<void> {
  const run = runs.get(id);
  if (!run) return;
  runs.delete(id);
  publish();
  const timer = writeTimers.get(id);
  if (timer) clearTimeout(timer);
  writeTimers.delete(id);
  await idb.del('runs', id).catch(() => undefined);
  for (const c of run.checkpoints) await idb.del('checkpoints', [id, c.step]).catch(() => undefined);
  await refreshStorage();
}

// ---------------------------------------------------------------- one file per run

/** The run as one file (its record and latest checkpoint), with the file name to save it as. */
export async function exportRun(id: string): Promise<{ fileName: string; bytes: Uint8Array }> {
  const run = runs.get(id);
  if (!run) throw new Error(`There is no run ${id} in the archive.`);
  const checkpoint = await checkpointOf(id);
  const base = run.label.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'run';
  return { fileName: `${base}${RUN_FILE_SUFFIX}`, bytes: packRunFile(run, checkpoint) };
}

/** A run file read into the archive (a new id when its id is taken); throws RunFileError with a sentence. */
export async function importRun(bytes: Uint8Array, name: string): Promise<RunRecord> {
  const { record, checkpoint } = unpackRunFile(bytes, name);
  // A copy of a run already here gets an id and a label of its own.
  const taken = runs.has(record.id);
  const id = taken ? randomId() : record.id;
  const status: RunStatus = record.status === 'running' || record.status === 'paused' ? 'interrupted' : record.status;
  const run: RunRecord = { ...record, id, label: taken ? `${record.label} (imported)` : record.label, status, checkpoints: [], updatedAt: Date.now() };
  if (status === 'interrupted') run.message = interruptedMessage({ ...run, checkpoints: checkpoint ? [{ step: checkpoint.step, bytes: checkpoint.bytes.byteLength, savedAt: Date.now() }] : [] });
  runs.set(id, run);
  publish();
  writeSoon(id, true);
  if (checkpoint) await recordCheckpoint(id, checkpoint.step, checkpoint.bytes);
  return runs.get(id)!;
}
