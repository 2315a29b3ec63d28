/**
 * The page's runs kept and brought back: the glue between the lab worker's train.* events and the
 * run archive (app/state/runArchive.ts), and the ways a run goes on after something went away:
 *
 *   - a reload or a closed tab: the archive lists the run as interrupted; `resumeRun` loads its
 *     student and teacher again (where they came from), sets its setup and starts it from its
 *     last stored checkpoint, its step count and curves going on;
 *   - a lost GPU device while a run goes: `recoverFromDeviceLoss` restarts the lab worker (a new
 *     worker gets a new device) and resumes the same run by itself, saying so in a banner;
 *   - a crashed worker: `recoverFromCrash` says so at once, restarts the worker and offers the
 *     run for resuming.
 */
import { create } from 'zustand';
import type { LabError, LabEvent, PromptTextSource, TrainSetup } from '../../workers/protocol';
import type { ModelOrigin, RunModel } from '../../workers/contract/runFile';
import {
  checkpointOf, createRun, getRun, openArchive, recordCheckpoint, recordEval, recordState, recordStep, rewindTo, useRunArchive,
  type RunRecord,
} from '../state/runArchive';
import { restoreHistory, useDistillRun } from '../state/distillRun';
import { useLab, type ModelRole } from '../state/labStore';
import { controlTraining, loadModel, restartLab, startTraining } from './connect';

// ---------------------------------------------------------------- where the loaded models came from

const origins: Record<ModelRole, RunModel | null> = { student: null, teacher: null };

/** A model the worker loaded, and how (so a run of it can load it again). */
export function noteModelLoaded(role: ModelRole, label: string, origin: ModelOrigin | null): void {
  origins[role] = { label, origin };
}

function modelOf(role: ModelRole): RunModel {
  const label = useLab.getState().models[role].model?.label ?? role;
  const known = origins[role];
  return known && known.label === label ? known : { label, origin: null };
}

// ---------------------------------------------------------------- the live run, into the archive

/** The archive's id of each worker run (its runId: the train.start's requestId). */
const archiveOf = new Map<number, string>();
/** The run being started: its setup, and the archived run it resumes (if any). */
let starting: { setup: TrainSetup; prompts: PromptTextSource | null; resumeOf: string | null } | null = null;
let resumeTarget: string | null = null;

/** connect.startTraining tells which setup it starts (and, through resumeRun, which archived run it resumes). */
export function noteRunStarting(setup: TrainSetup, prompts: PromptTextSource | null): void {
  starting = { setup, prompts, resumeOf: resumeTarget };
  resumeTarget = null;
}

/** The archive's id of the run the Distill panel shows, while the worker drives it. */
export function liveArchiveId(): string | null {
  const runId = useDistillRun.getState().runId;
  return runId === null ? null : (archiveOf.get(runId) ?? null);
}

const shortLabel = (label: string) => label.replace(/\/+$/, '').split('/').pop() || label;

function runLabel(setup: TrainSetup, student: RunModel, teacher: RunModel): string {
  const d = new Date();
  const at = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
  return `${setup.objective} ${shortLabel(student.label)} from ${shortLabel(teacher.label)} ${at}`;
}

/**
 * A run's event, after the run store has taken it (connect.ts routes it there first): the run's
 * record in the archive begins (a new run, or a resumed one rewound to its checkpoint, whose
 * history the charts then show again) and grows with each step, evaluation, checkpoint and state.
 */
export function persistTrainingEvent(event: Extract<LabEvent, { type: 'train.metrics' | 'train.eval' | 'train.checkpoint' | 'train.state' }>): void {
  if (event.type === 'train.state' && event.requestId === event.runId && event.state === 'running' && !archiveOf.has(event.runId)) {
    const s = starting;
    starting = null;
    if (s?.resumeOf && getRun(s.resumeOf)) {
      archiveOf.set(event.runId, s.resumeOf);
      rewindTo(s.resumeOf, event.step, 'running', event.message);
      const run = getRun(s.resumeOf)!;
      // The charts go on from the checkpoint: its points, then the new ones as they come.
      restoreHistory(run.steps, run.evals);
      useDistillRun.setState({ step: event.step, totalSteps: event.totalSteps });
      return;
    }
    const student = modelOf('student');
    const teacher = modelOf('teacher');
    const setup = s?.setup ?? useLab.getState().setup;
    const run = createRun({ label: runLabel(setup, student, teacher), setup, prompts: s?.prompts ?? null, models: { student, teacher }, totalSteps: event.totalSteps, message: event.message });
    archiveOf.set(event.runId, run.id);
    return;
  }
  const id = archiveOf.get(event.runId);
  if (!id) return;
  switch (event.type) {
    case 'train.metrics':
      return recordStep(id, event.metrics);
    case 'train.eval':
      return recordEval(id, event.evaluation);
    case 'train.checkpoint':
      if (event.file) void recordCheckpoint(id, event.step, event.file);
      return;
    case 'train.state':
      return recordState(id, event.state, event.step, event.message, event.totalSteps);
  }
}

// ---------------------------------------------------------------- showing and resuming archived runs

/** Shows an archived run's curves and where it stands in the Distill panel (when no run is going there). */
export function showArchivedRun(id: string): void {
  const run = getRun(id);
  const live = useDistillRun.getState();
  if (!run || live.starting || live.phase === 'running' || live.phase === 'paused') return;
  restoreHistory(run.steps, run.evals);
  useDistillRun.setState({
    runId: null,
    phase: run.status === 'interrupted' || run.status === 'running' || run.status === 'paused' ? 'stopped' : run.status,
    message: run.message,
    step: run.step,
    totalSteps: run.totalSteps,
    checkpoint: null,
    failure: null,
    pending: null,
  });
  useRuns.setState({ shown: id });
}

/** Opens the archive and, when the page has no run of its own yet, shows the newest interrupted run. */
export async function openRuns(): Promise<void> {
  await openArchive();
  const interrupted = useRunArchive.getState().runs.find((r) => r.status === 'interrupted');
  if (interrupted && useDistillRun.getState().phase === 'idle' && !useDistillRun.getState().starting) showArchivedRun(interrupted.id);
}

/** Whether a run can be resumed: it kept a checkpoint and did not finish. */
export function resumable(run: RunRecord): boolean {
  return run.checkpoints.length > 0 && run.step < run.totalSteps && (run.status === 'interrupted' || run.status === 'stopped' || run.status === 'failed');
}

export interface RunsState {
  /** The archived run whose curves the Distill panel shows (not driven by the worker). */
  shown: string | null;
  /** A resume under way: which run and what it is doing. */
  resuming: { id: string; stage: string } | null;
  resumeError: { id: string; message: string } | null;
  /** The banner: a lost device or a crashed worker, and what the lab did about it. */
  recovery: {
    cause: 'device-lost' | 'worker-crashed';
    /** recovering: restarting / resuming; resumed: the run goes on; offer: the person may resume; failed: it could not. */
    phase: 'recovering' | 'resumed' | 'offer' | 'failed';
    message: string;
    detail?: string;
    runId: string | null;
  } | null;
}

export const useRuns = create<RunsState>()(() => ({ shown: null, resuming: null, resumeError: null, recovery: null }));

/** Waits for the lab worker to be ready (after a restart). */
function labReady(timeoutMs = 120_000): Promise<boolean> {
  if (useLab.getState().phase === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      unsubscribe();
      resolve(false);
    }, timeoutMs);
    const unsubscribe = useLab.subscribe((s) => {
      if (s.phase === 'starting') return;
      clearTimeout(timer);
      unsubscribe();
      resolve(s.phase === 'ready');
    });
  });
}

/** Loads a run's model as `role` unless the same one is loaded; the sentence says why it could not. */
async function ensureModel(role: ModelRole, model: RunModel): Promise<string | null> {
  const slot = useLab.getState().models[role];
  if (slot.model && slot.model.label === model.label && !slot.loading) return null;
  const o = model.origin;
  if (!o || 'picked' in o) {
    return `The run's ${role} (${model.label}) was ${o ? 'loaded from files given to this page (a folder picked from your computer, or a trained student), which the page cannot reopen by itself' : 'loaded in a way the lab cannot repeat'}: load it as the ${role} again, then continue the run.`;
  }
  useRuns.setState((s) => ({ resuming: s.resuming && { ...s.resuming, stage: `Loading the ${role} (${shortLabel(model.label)})` } }));
  await loadModel(role, 'url' in o ? { url: o.url } : 'hub' in o ? { hub: o.hub } : { sameAs: o.sameAs });
  const after = useLab.getState().models[role];
  if (after.error || !after.model) return `The run's ${role} (${model.label}) could not be loaded again: ${after.error?.message ?? 'no model came back'}`;
  return null;
}

/**
 * Resumes an archived run from its last stored checkpoint: its student and teacher loaded again
 * (unless they are loaded), its setup put back in the panel, the run started from the checkpoint;
 * the step count and the curves go on from there. The sentence says why not, when it cannot.
 */
export async function resumeRun(id: string): Promise<boolean> {
  const run = getRun(id);
  if (!run) return false;
  useRuns.setState({ resuming: { id, stage: 'Reading the checkpoint' }, resumeError: null });
  const fail = (message: string) => {
    useRuns.setState({ resuming: null, resumeError: { id, message } });
    return false;
  };
  const checkpoint = await checkpointOf(id);
  if (!checkpoint) return fail('This run kept no checkpoint in this browser, so it cannot resume: start it again.');
  if (!(await labReady())) return fail('The lab worker is not ready (see the status bar): resume once it is.');
  // The teacher first: a student loaded as "the teacher's folder" (the sanity check) needs it.
  for (const role of ['teacher', 'student'] as const) {
    const problem = await ensureModel(role, run.models[role]);
    if (problem) return fail(problem);
  }
  useLab.getState().setSetup(run.setup);
  useRuns.setState({ resuming: { id, stage: `Resuming from the checkpoint of step ${checkpoint.step}` }, shown: null });
  resumeTarget = id;
  await startTraining(run.setup, run.prompts ?? undefined, undefined, { checkpoint: checkpoint.bytes });
  resumeTarget = null;
  const started = useDistillRun.getState();
  if (started.startError) return fail(started.startError.message);
  useRuns.setState({ resuming: null });
  return true;
}

// ---------------------------------------------------------------- a lost device, a crashed worker

/** A new worker numbers its requests from 1 again: the old worker's run ids mean nothing to it. */
async function restartWorker(): Promise<void> {
  archiveOf.clear();
  await restartLab();
}

/** The run going in the page when something went away: its archive id, step and checkpoint's step. */
function runGoing(): { id: string; step: number; checkpoint: number | null } | null {
  const live = useDistillRun.getState();
  if (!(live.phase === 'running' || live.phase === 'paused')) return null;
  const id = liveArchiveId();
  const run = id ? getRun(id) : undefined;
  if (!id || !run) return null;
  return { id, step: live.step, checkpoint: run.checkpoints.at(-1)?.step ?? null };
}

/** The live run is no longer driven by the worker: mark it interrupted in the archive and the panel. */
function interrupt(id: string, step: number, why: string): void {
  const run = getRun(id);
  const last = run?.checkpoints.at(-1)?.step;
  const message = `Interrupted after step ${step} of ${run?.totalSteps ?? '?'}: ${why}${last !== undefined ? ` It resumes from its checkpoint of step ${last}.` : ''}`;
  recordState(id, 'interrupted', step, message);
  // The old worker's last events (a failed step, say) no longer speak for this run.
  for (const [runId, archived] of archiveOf) if (archived === id) archiveOf.delete(runId);
  useDistillRun.setState({ runId: null, phase: 'stopped', message, pending: null, checkpoint: null });
  useRuns.setState({ shown: id });
}

let recovering = false;

/**
 * The GPU device was lost. With a run going: a new worker (a new device), the same student and
 * teacher, and the run resumed from its last checkpoint, all by itself; true. Without one: false
 * (the page shows the lost device as before).
 */
export function recoverFromDeviceLoss(error: LabError): boolean {
  const going = runGoing();
  if (!going || recovering) return false;
  recovering = true;
  const wasPaused = useDistillRun.getState().phase === 'paused';
  interrupt(going.id, going.step, 'the GPU device was lost.');
  const at = going.checkpoint !== null ? `its checkpoint of step ${going.checkpoint}` : 'its start (it had kept no checkpoint yet)';
  useRuns.setState({
    recovery: { cause: 'device-lost', phase: 'recovering', runId: going.id, message: `The GPU device was lost at step ${going.step}. Restarting the lab worker on a new device and resuming the run from ${at}…`, detail: error.message },
  });
  void (async () => {
    try {
      await restartWorker();
      const ok = going.checkpoint !== null ? await resumeRun(going.id) : await restartFromScratch(going.id);
      // A paused run comes back paused (the pause is read before its first step).
      if (ok && wasPaused) await controlTraining('pause');
      const resumedAt = useDistillRun.getState().step;
      useRuns.setState({
        recovery: ok
          ? { cause: 'device-lost', phase: 'resumed', runId: going.id, message: `The GPU device was lost at step ${going.step}. The lab restarted its worker on a new device, loaded the student and the teacher again and resumed the run from step ${resumedAt}.`, detail: error.message }
          : { cause: 'device-lost', phase: 'failed', runId: going.id, message: `The GPU device was lost at step ${going.step} and the run could not resume by itself: ${useRuns.getState().resumeError?.message ?? 'the lab worker did not start again.'}`, detail: error.message },
      });
    } finally {
      recovering = false;
    }
  })();
  return true;
}

/** A run that had kept no checkpoint yet: started again with its setup (the archive's record starts over). */
async function restartFromScratch(id: string): Promise<boolean> {
  const run = getRun(id);
  if (!run) return false;
  if (!(await labReady())) return false;
  for (const role of ['teacher', 'student'] as const) if (await ensureModel(role, run.models[role])) return false;
  rewindTo(id, -1, 'running', 'Starting again.');
  resumeTarget = id;
  await startTraining(run.setup, run.prompts ?? undefined);
  resumeTarget = null;
  return !useDistillRun.getState().startError;
}

/**
 * The lab worker crashed (an uncaught error): said at once, the worker restarted (a new device),
 * and the run that was going offered for resuming from its last checkpoint. True when handled;
 * false lets the page show the crash as before (e.g. when the worker never started).
 */
export function recoverFromCrash(error: LabError): boolean {
  // A second error of a worker being replaced says nothing new.
  if (recovering) return true;
  if (useLab.getState().phase !== 'ready') return false;
  recovering = true;
  const offerOf = (g: ReturnType<typeof runGoing>) =>
    g && g.checkpoint !== null ? ` The run was at step ${g.step}; it can resume from its checkpoint of step ${g.checkpoint}.` : g ? ` The run was at step ${g.step} and had kept no checkpoint.` : '';
  let going = runGoing();
  useRuns.setState({
    recovery: { cause: 'worker-crashed', phase: 'recovering', runId: going?.id ?? null, message: `The lab worker crashed; restarting it…${offerOf(going)}`, detail: error.detail ?? error.message },
  });
  // Said first: the banner is drawn before the restart's work (and the panels' re-render it brings) begins.
  setTimeout(() => {
    void (async () => {
      try {
        going = runGoing() ?? going;
        if (going) interrupt(going.id, going.step, 'the lab worker crashed.');
        const offer = offerOf(going);
        await restartWorker();
        const ready = useLab.getState().phase === 'ready';
        useRuns.setState({
          recovery: {
            cause: 'worker-crashed',
            phase: ready ? (going && going.checkpoint !== null ? 'offer' : 'resumed') : 'failed',
            runId: going?.id ?? null,
            message: !ready
              ? 'The lab worker crashed and did not start again: reload the page.'
              : going && going.checkpoint !== null
                ? `The lab worker crashed and was restarted on a new device.${offer} Resuming loads the student and the teacher again.`
                : `The lab worker crashed and was restarted on a new device: load the student and the teacher again to go on.${offer}`,
            detail: error.detail ?? error.message,
          },
        });
      } finally {
        recovering = false;
      }
    })();
  }, 100);
  return true;
}

export function dismissRecovery(): void {
  useRuns.setState({ recovery: null });
}
