/**
 * The run loop: the one loop that drives a DistillRun from its first step to its end, for the lab
 * worker (workers/engine/training.ts) and for `opd-lab train` (cli/train.ts) alike. It owns
 *
 *   - the kept and routed tasks: `resolveTasks` reads the task, the task to keep and the routed
 *     task from the setup, one rule for both (keepTask, routeTask; '' for none), and
 *     `knobRoutes` gives the routed task its teacher (routeTeacher: the student as loaded, frozen,
 *     or the run's teacher);
 *   - the cadence: an evaluation before the first step (unless the run resumes later), every
 *     `evalEvery` steps and after the last step; a checkpoint every `checkpointEvery` steps and
 *     a final one whenever the run ends, finished, stopped or failed by the numerics guard;
 *   - the numerics stop: MAX_UNAPPLIED_IN_A_ROW steps in a row that the guard refused to apply
 *     end the run as failed (the weights stay as they were before them).
 *
 * What differs between the page and the terminal goes through hooks: the engine emits events,
 * queues GPU work behind other requests, yields between steps and reads pause and stop; the CLI
 * writes files and prints progress.
 */
import type { EvalMetrics, StepMetrics } from '../contract/run';
import type { TrainSetup } from '../contract/knobs';
import { builtInTask, type TaskInfo } from '../tasks/registry';
import { DistillError } from './options';
import { promptSetMaxTokens, promptSetTask, type PromptSetPrepared } from '../prompts/set';
import type { PromptStudent, PromptTeacher } from '../prompts/render';
import type { DistillRun, PromptRoute } from './run';
import type { ModelFolder } from '../models/folder';

/** Steps in a row that the numerics guard refused to apply before the run is called failed. */
export const MAX_UNAPPLIED_IN_A_ROW = 3;

/** What the loop uses of a run (a DistillRun; tests may pass a stand-in). */
export type LoopRun = Pick<DistillRun, 'step' | 'trainStep' | 'evaluate' | 'checkpoint'>;

export type LoopCadence = Pick<TrainSetup, 'totalSteps' | 'evalEvery' | 'checkpointEvery'>;

export interface LoopHooks {
  /** Runs one piece of GPU work (the engine queues it behind other requests); default: runs it now. */
  exclusive?<T>(work: () => Promise<T>): Promise<T>;
  /** Before each step; false ends the run as stopped (the engine yields here, waits while paused, reads a stop). */
  beforeStep?(): Promise<boolean>;
  step(metrics: StepMetrics): void | Promise<void>;
  evaluation(evaluation: EvalMetrics): void | Promise<void>;
  checkpoint(step: number, bytes: Uint8Array): void | Promise<void>;
  /** After a step and the evaluation and checkpoint that followed it, if any. */
  stepDone?(metrics: StepMetrics, lastEval: EvalMetrics | undefined): void;
}

interface EndCommon {
  /** The run's step when it ended. */
  step: number;
  lastEval?: EvalMetrics;
  /** The step of the run's last checkpoint, or null when none was kept. */
  checkpointStep: number | null;
}

export type LoopEnd =
  | (EndCommon & { state: 'finished' | 'stopped' })
  /** `failedAt`: the step that failed; `numerics`: why the guard stopped the run, else `exception`: what was thrown. */
  | (EndCommon & { state: 'failed'; failedAt: number; numerics?: string; exception?: unknown });

/**
 * The task a setup trains on and the task it keeps (null for none), configured from the student's
 * config.json hints. With a prompt set (read, split and checked for the student:
 * workers/prompts/set.ts) the run trains on it instead of the setup's task: a task with no
 * verifier, its answers as long as `promptSetMaxTokens` allows.
 */
export function resolveTasks(
  setup: Pick<TrainSetup, 'task' | 'keepTask' | 'routeTask'>,
  hints: Record<string, unknown>,
  promptSet?: { set: PromptSetPrepared; student: PromptStudent; teacher?: PromptTeacher | null },
): { task: TaskInfo; keptTask: TaskInfo | null; routedTask: TaskInfo | null } {
  try {
    const task = promptSet
      ? { task: promptSetTask(promptSet.set), maxTokens: promptSetMaxTokens(promptSet.set, promptSet.student, promptSet.teacher ?? null) }
      : builtInTask(setup.task, hints);
    const keptTask = setup.keepTask === '' ? null : builtInTask(setup.keepTask, hints);
    if (keptTask && keptTask.task.name === task.task.name) throw new Error(`the task to keep must differ from the task trained on (both are ${task.task.name})`);
    const routedTask = setup.routeTask === '' ? null : builtInTask(setup.routeTask, hints);
    if (routedTask && routedTask.task.name === task.task.name) throw new Error(`the routed task must differ from the task trained on (both are ${task.task.name})`);
    return { task, keptTask, routedTask };
  } catch (e) {
    throw e instanceof DistillError ? e : new DistillError(e instanceof Error ? e.message : String(e));
  }
}

/**
 * The routes a setup's routeTask asks for (none without one): the routed task, scored by a frozen
 * copy of the student as loaded (routeTeacher 'student': DistillRun scores with the folder's own
 * weights, never the trained ones) or by the run's teacher. `opd-lab train --route` adds others.
 */
export function knobRoutes(setup: Pick<TrainSetup, 'routeTask' | 'routeTeacher'>, routedTask: TaskInfo | null, folders: { student: ModelFolder; teacher: ModelFolder }): PromptRoute[] {
  if (!routedTask) return [];
  return [{ task: routedTask.task, teacher: setup.routeTeacher === 'student' ? folders.student : folders.teacher, label: setup.routeTask }];
}

export async function runLoop(run: LoopRun, cadence: LoopCadence, hooks: LoopHooks): Promise<LoopEnd> {
  const gpu = hooks.exclusive ? <T,>(work: () => Promise<T>) => hooks.exclusive!(work) : <T,>(work: () => Promise<T>) => work();
  let lastEval: EvalMetrics | undefined;
  let checkpointStep: number | null = null;
  const evaluate = async () => {
    const evaluation = await gpu(() => run.evaluate());
    lastEval = evaluation;
    await hooks.evaluation(evaluation);
  };
  const checkpoint = async () => {
    if (checkpointStep === run.step) return;
    const step = run.step;
    const bytes = await gpu(() => run.checkpoint());
    checkpointStep = step;
    await hooks.checkpoint(step, bytes);
  };
  const end = () => ({ step: run.step, lastEval, checkpointStep });
  let unapplied = 0;
  try {
    if (run.step === 0) await evaluate();
    while (run.step < cadence.totalSteps) {
      if (hooks.beforeStep && !(await hooks.beforeStep())) break;
      const m = await gpu(() => run.trainStep());
      await hooks.step(m);
      unapplied = m.applied ? 0 : unapplied + 1;
      if (unapplied >= MAX_UNAPPLIED_IN_A_ROW) {
        const numerics = `${unapplied} steps in a row could not be applied (${m.problem ?? 'non-finite numbers'}): the student's weights stay as they were before them. A lower learning rate or a higher temperature may help.`;
        // The guard left the weights as they were, so even a run failed that way keeps a checkpoint.
        await checkpoint();
        return { state: 'failed', failedAt: m.step, numerics, ...end() };
      }
      if ((cadence.evalEvery > 0 && m.step % cadence.evalEvery === 0) || m.step === cadence.totalSteps) await evaluate();
      if (cadence.checkpointEvery > 0 && m.step % cadence.checkpointEvery === 0) await checkpoint();
      hooks.stepDone?.(m, lastEval);
    }
    await checkpoint();
    return { state: run.step < cadence.totalSteps ? 'stopped' : 'finished', ...end() };
  } catch (exception) {
    // A step that threw may have left the trainer half-way: no checkpoint of it; the last one stands.
    return { state: 'failed', failedAt: run.step + 1, exception, ...end() };
  }
}
