/**
 * Distillation runs inside the lab engine: one run at a time, of the student and teacher that
 * `model.load` put in place, driven by the run loop (distill/loop.ts, the same loop as
 * `opd-lab train`) with hooks that emit train.metrics / train.eval / train.checkpoint, queue each
 * piece of GPU work behind the other requests, and yield to the event loop between steps, so
 * `train.pause|resume|stop` (and sampling, scoring, loading) are answered while it runs. The
 * latest checkpoint is held after the run is gone: nothing already trained is lost when a run is
 * stopped or fails.
 */
import type { EvalMetrics, LabError, LabEvent, TrainExportKind, TrainSetup, TrainStateName } from '../protocol';
import { routeTeacherWords } from '../contract/knobs';
import { DistillError, DistillRun, trainedAdapterFolder, trainedStudentFolder } from '../distill/run';
import { asSentence, distillOptions, setupProblem } from '../distill/setup';
import { knobRoutes, MAX_UNAPPLIED_IN_A_ROW, resolveTasks, runLoop } from '../distill/loop';
import type { TaskInfo } from '../tasks/registry';
import { compareTokenizers } from '../models/tokenizer';
import type { LoadedModel } from './inference';
import { restoreCheckpoint } from '../train/checkpoint';
import type { ModelFolder } from '../models/folder';
import { familyNames } from '../models/registry';
import type { PromptSetSummary, PromptTextSource } from '../contract/prompts';
import { preparePromptSet, PromptSetError, type PromptSetPrepared, type SplitKnobs } from '../prompts/set';
import { promptStudentOf, promptTeacherOf } from '../prompts/render';

/**
 * A prompt set read, rendered for the student (when one is loaded) and for the teacher (chat
 * prompts, with its own template, when one is loaded), checked and split, as the run would take
 * it: its summary (which says what the teacher reads), or the 'bad-prompts' sentence.
 */
export function checkPromptSet(source: PromptTextSource, knobs: SplitKnobs, student: ModelFolder | null, teacher: ModelFolder | null = null): PromptSetSummary | LabError {
  const prepared = preparePrompts(source, knobs, student, teacher);
  return 'code' in prepared ? prepared : prepared.summary;
}

function preparePrompts(source: PromptTextSource, knobs: SplitKnobs, student: ModelFolder | null, teacher: ModelFolder | null): PromptSetPrepared | LabError {
  try {
    return preparePromptSet(source, knobs, student && student.config ? promptStudentOf(student) : null, teacher ? promptTeacherOf(teacher) : null);
  } catch (e) {
    if (e instanceof PromptSetError) return { code: 'bad-prompts', message: e.message };
    throw e;
  }
}

export { MAX_UNAPPLIED_IN_A_ROW };

export interface TrainingHost {
  emit(event: LabEvent): void;
  /** Runs GPU work one piece at a time: a training step never overlaps a sample or a score request. */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** An unexpected exception as an error value. */
  describe(e: unknown): LabError;
}

interface Waiter {
  requestId: number;
  until: 'paused' | 'stopped';
}

interface ActiveRun {
  /** The requestId of the train.start that began it. */
  id: number;
  run: DistillRun;
  setup: TrainSetup;
  state: 'running' | 'paused';
  pauseRequested: boolean;
  stopRequested: boolean;
  /** Steps left before the run pauses by itself (train.step, train.start's pauseAfter); null: it runs on. */
  stepsLeft: number | null;
  /** Commands answered when the loop reaches the state they asked for (or the run ends). */
  waiters: Waiter[];
  /** Resumes a paused loop. */
  wake?: () => void;
  lastEval?: EvalMetrics;
}

export interface KeptCheckpoint {
  runId: number;
  step: number;
  bytes: Uint8Array;
  /** The run's student folder (its config and tokenizer go into an exported folder). */
  student: ModelFolder;
}

/** Lets the worker's message loop run (the next command is a macrotask, not a microtask). */
const macrotask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

export class Training {
  private active: ActiveRun | undefined;
  private starting = false;
  private kept: KeptCheckpoint | null = null;
  /** The loop of the latest run; settles when it has ended and released its GPU resources. */
  loopDone: Promise<void> = Promise.resolve();

  constructor(private readonly host: TrainingHost) {}

  /** The latest checkpoint of the latest run (trainer tensors and run state, safetensors). */
  get latestCheckpoint(): KeptCheckpoint | null {
    return this.kept;
  }

  /** Sets a run up and starts its loop; the error says why not, when it cannot start. */
  async start(
    requestId: number,
    device: GPUDevice,
    models: { student?: LoadedModel; teacher?: LoadedModel },
    setup: TrainSetup,
    prompts?: PromptTextSource,
    pauseAfter?: number,
    /** A checkpoint to resume from (trainer tensors and run state; the page kept it). */
    resume?: { checkpoint: Uint8Array },
  ): Promise<LabError | null> {
    if (this.starting) return { code: 'run-active', message: 'A run is being set up already: wait for it, or stop it once it runs.' };
    if (this.active) {
      return { code: 'run-active', message: `A run is in progress (${this.active.state} at step ${this.active.run.step}): stop it before starting another.` };
    }
    const problem = setupProblem(setup);
    if (problem) return { code: 'bad-options', message: problem };
    if (pauseAfter !== undefined && !(Number.isInteger(pauseAfter) && pauseAfter >= 1)) {
      return { code: 'bad-options', message: `A run can pause after a whole number of steps, 1 or more; got ${pauseAfter}.` };
    }
    const { student, teacher } = models;
    for (const [role, m] of [['student', student], ['teacher', teacher]] as const) {
      if (!m) return { code: 'no-model', message: `No ${role} model is loaded: load a model folder as the ${role} first.` };
    }
    const folder = student!.folder;
    if (!folder.family || !folder.config || !folder.weights) {
      return {
        code: 'not-trainable',
        message: `The student ${folder.label} cannot be trained: training needs a folder of a model family the lab knows (${familyNames()}) with its weights in model.safetensors, and this one ${
          folder.family ? 'has no model.safetensors' : `is a '${student!.summary.modelType}' model`
        }.`,
      };
    }
    const tokenizers = compareTokenizers(student!.folder.tokenizer, teacher!.folder.tokenizer);
    if (tokenizers.errors.length) return { code: 'tokenizer-mismatch', message: tokenizers.errors.join(' ') };
    let promptSet: PromptSetPrepared | undefined;
    if (prompts) {
      const prepared = preparePrompts(prompts, setup, folder, teacher!.folder);
      if ('code' in prepared) return prepared;
      promptSet = prepared;
    }
    let task: TaskInfo;
    let keptTask: TaskInfo | null;
    let routedTask: TaskInfo | null;
    try {
      ({ task, keptTask, routedTask } = resolveTasks(setup, student!.folder.rawConfig, promptSet && { set: promptSet, student: promptStudentOf(folder), teacher: promptTeacherOf(teacher!.folder) }));
    } catch (e) {
      return { code: 'bad-options', message: asSentence(e instanceof Error ? e.message : String(e)) };
    }
    const routes = knobRoutes(setup, routedTask, { student: folder, teacher: teacher!.folder });
    // A routed task shares the run's max tokens: the longer answer of the two tasks.
    const options = distillOptions(setup, Math.max(task.maxTokens, routedTask?.maxTokens ?? 0));
    this.host.emit({ type: 'progress', requestId, stage: `Setting up the run: the student's trainer and live-weights sampler, the teacher's scorer${routes.length ? ', the routed task’s scorer' : ''}` });
    this.starting = true;
    let run: DistillRun;
    try {
      run = await this.host.exclusive(() => DistillRun.create(device, { student: student!.folder, teacher: teacher!.folder, task: task.task, options, keptTask, routes, ...(resume ? { checkpoint: resume.checkpoint } : {}) }));
    } catch (e) {
      if (e instanceof DistillError) return { code: 'bad-options', message: asSentence(e.message) };
      if (resume) return { code: 'bad-request', message: `The checkpoint to resume from cannot be read for this student (${e instanceof Error ? e.message : String(e)}): load the student the run trained, or start a new run.` };
      return this.host.describe(e);
    } finally {
      this.starting = false;
    }
    const a: ActiveRun = { id: requestId, run, setup, state: 'running', pauseRequested: false, stopRequested: false, stepsLeft: pauseAfter ?? null, waiters: [] };
    this.active = a;
    const keeping = keptTask ? ` (keeping ${keptTask.task.name}, evaluated beside it)` : '';
    const routing = routedTask
      ? ` and ${routedTask.task.name}, routed to ${routeTeacherWords(setup.routeTeacher)} (its prompts alternate with the first task’s)`
      : '';
    const on = promptSet ? `${task.task.name} (${promptSet.train.length} training prompts, ${promptSet.heldOut.length} held out; no verifier)` : task.task.name;
    const pausing = pauseAfter === undefined ? '' : ` Pausing after ${pauseAfter === 1 ? 'the first step' : `${pauseAfter} steps`}.`;
    const resumed = resume ? `, resumed from the checkpoint of step ${run.step}` : '';
    this.emitState(a, 'running', `Running ${setup.objective} on ${on}${routing}${keeping}${resumed}: ${setup.totalSteps} steps of ${setup.batchPrompts} prompts × ${setup.groupSize} completions.${pausing}`, [requestId]);
    this.loopDone = this.loop(a);
    return null;
  }

  /**
   * The trained student as a model folder, the checkpoint file, or a LoRA run's PEFT adapter: of
   * the run in progress at its current step (between steps), else of the latest run's last
   * checkpoint.
   */
  async export(device: GPUDevice, what: TrainExportKind): Promise<{ step: number; files: { path: string; bytes: Uint8Array }[] } | LabError> {
    const a = this.active;
    const asList = (files: Map<string, Uint8Array>) => [...files].map(([path, bytes]) => ({ path, bytes }));
    const noAdapter: LabError = { code: 'bad-request', message: 'This run trains every weight (LoRA rank 0), so it has no LoRA adapter: download the student instead, or start a run with a LoRA rank.' };
    if (a) {
      return this.host.exclusive(async () => {
        if (what === 'checkpoint') return { step: a.run.step, files: [{ path: `checkpoint-step-${a.run.step}.safetensors`, bytes: await a.run.checkpoint() }] };
        if (what === 'student') return { step: a.run.step, files: asList(await a.run.exportStudent()) };
        const adapter = await a.run.exportAdapter();
        return adapter ? { step: a.run.step, files: asList(adapter) } : noAdapter;
      });
    }
    const kept = this.kept;
    if (!kept) return { code: 'no-run', message: 'There is nothing to export yet: no run has kept a checkpoint. Start a run first.' };
    if (what === 'checkpoint') return { step: kept.step, files: [{ path: `checkpoint-step-${kept.step}.safetensors`, bytes: kept.bytes }] };
    return this.host.exclusive(async () => {
      const { trainer } = await restoreCheckpoint(device, kept.bytes);
      try {
        if (what === 'student') return { step: kept.step, files: asList(trainedStudentFolder(kept.student, await trainer.readWeights())) };
        const adapter = await trainedAdapterFolder(kept.student, trainer);
        return adapter ? { step: kept.step, files: asList(adapter) } : noAdapter;
      } finally {
        trainer.destroy();
      }
    });
  }

  pause(requestId: number): LabError | null {
    const a = this.active;
    if (!a) return this.noRun();
    if (a.state === 'paused') this.emitState(a, 'paused', this.pausedMessage(a), [requestId]);
    else {
      a.pauseRequested = true;
      a.waiters.push({ requestId, until: 'paused' });
    }
    return null;
  }

  resume(requestId: number): LabError | null {
    const a = this.active;
    if (!a) return this.noRun();
    a.pauseRequested = false;
    a.stepsLeft = null;
    // A pause asked for and not reached yet is answered by the resume that cancels it.
    const cancelled = a.waiters.filter((w) => w.until === 'paused').map((w) => w.requestId);
    a.waiters = a.waiters.filter((w) => w.until !== 'paused');
    const wasPaused = a.state === 'paused';
    a.state = 'running';
    this.emitState(a, 'running', wasPaused ? `Running again from step ${a.run.step} of ${a.setup.totalSteps}.` : `Running: step ${a.run.step} of ${a.setup.totalSteps}.`, [requestId, ...cancelled]);
    a.wake?.();
    return null;
  }

  /** One more step of a paused run, then paused again (the waiter is answered when it pauses, or the run ends). */
  step(requestId: number): LabError | null {
    const a = this.active;
    if (!a) return this.noRun();
    if (a.state !== 'paused' || a.stopRequested) {
      const why = a.stopRequested ? 'is stopping' : a.pauseRequested ? 'is pausing after the current step' : 'is running';
      return { code: 'run-active', message: `The run ${why} (step ${a.run.step} of ${a.setup.totalSteps}): one step at a time works on a paused run, so pause it first.` };
    }
    a.stepsLeft = 1;
    a.pauseRequested = false;
    a.state = 'running';
    a.waiters.push({ requestId, until: 'paused' });
    this.emitState(a, 'running', `Running step ${a.run.step + 1} of ${a.setup.totalSteps}, then pausing.`, []);
    a.wake?.();
    return null;
  }

  stop(requestId: number): LabError | null {
    const a = this.active;
    if (!a) return this.noRun();
    a.stopRequested = true;
    a.waiters.push({ requestId, until: 'stopped' });
    a.wake?.();
    return null;
  }

  private noRun(): LabError {
    return {
      code: 'no-run',
      message: this.starting ? 'The run is still being set up: try again in a moment.' : 'No training run is in progress: start one first.',
    };
  }

  private pausedMessage(a: ActiveRun): string {
    return `Paused after step ${a.run.step} of ${a.setup.totalSteps}: the student keeps its weights; resume to go on.`;
  }

  /** One event per command it answers (each echoing its requestId), or one event for all. */
  private emitState(a: ActiveRun, state: TrainStateName, message: string, requestIds: number[], error?: LabError): void {
    const base = { type: 'train.state' as const, runId: a.id, state, step: a.run.step, totalSteps: a.setup.totalSteps, message, ...(error ? { error } : {}) };
    if (requestIds.length === 0) this.host.emit(base);
    for (const requestId of requestIds) this.host.emit({ ...base, requestId });
  }

  private async waitWhilePaused(a: ActiveRun): Promise<void> {
    a.state = 'paused';
    const answered = a.waiters.filter((w) => w.until === 'paused').map((w) => w.requestId);
    a.waiters = a.waiters.filter((w) => w.until !== 'paused');
    const woken = new Promise<void>((resolve) => (a.wake = resolve));
    this.emitState(a, 'paused', this.pausedMessage(a), answered);
    await woken;
    a.wake = undefined;
  }

  private async loop(a: ActiveRun): Promise<void> {
    const { run, setup } = a;
    const end = await runLoop(run, setup, {
      exclusive: (work) => this.host.exclusive(work),
      beforeStep: async () => {
        await macrotask();
        // The steps asked for (Step, pauseAfter) are done: pause as train.pause would.
        if (a.stepsLeft === 0) {
          a.stepsLeft = null;
          a.pauseRequested = true;
        }
        while (a.pauseRequested && !a.stopRequested) await this.waitWhilePaused(a);
        if (a.stopRequested) return false;
        if (a.stepsLeft !== null) a.stepsLeft--;
        return true;
      },
      step: (metrics) => this.host.emit({ type: 'train.metrics', runId: a.id, metrics }),
      evaluation: (evaluation) => {
        a.lastEval = evaluation;
        this.host.emit({ type: 'train.eval', runId: a.id, evaluation });
      },
      checkpoint: (step, bytes) => {
        this.kept = { runId: a.id, step, bytes, student: run.student };
        // The page keeps a copy (IndexedDB), so a reload or a lost device resumes from here.
        this.host.emit({ type: 'train.checkpoint', runId: a.id, step, bytes: bytes.byteLength, file: bytes });
      },
    });
    let failure: LabError | undefined;
    let failedAt = 0;
    if (end.state === 'failed') {
      failedAt = end.failedAt;
      failure = end.numerics !== undefined ? { code: 'numerics', message: end.numerics } : this.host.describe(end.exception);
    }
    const step = run.step;
    const kept = this.kept?.runId === a.id ? this.kept.step : null;
    try {
      await this.host.exclusive(() => run.release());
    } catch {
      // Released or not, this run is over; its GPU objects go with the device at worst.
    }
    this.active = undefined;
    const answered = a.waiters.map((w) => w.requestId);
    if (failure) {
      const keptText = kept !== null ? ` The history and the checkpoint of step ${kept} are kept.` : ' The history is kept.';
      this.emitState(a, 'failed', `Failed at step ${failedAt} of ${setup.totalSteps}: ${failure.message}${keptText}`, answered, failure);
    } else if (step < setup.totalSteps) {
      this.emitState(a, 'stopped', `Stopped after step ${step} of ${setup.totalSteps}; the history and the checkpoint of step ${step} are kept.`, answered);
    } else {
      const ev = a.lastEval;
      const accuracy = !ev ? '' : ev.accuracy !== undefined ? ` Held-out accuracy ${percent(ev.accuracy)} (${ev.correct}/${ev.prompts}).` : ` Held-out reverse KL ${ev.reverseKL.toFixed(3)} nats per token (${ev.prompts} prompts).`;
      this.emitState(a, 'finished', `Finished ${step} steps of ${setup.objective}.${accuracy}`, answered);
    }
  }
}
