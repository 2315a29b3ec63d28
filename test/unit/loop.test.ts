/**
 * The run loop (workers/distill/loop.ts) on a stand-in run, no GPU: the cadence of evaluations
 * and checkpoints, the final checkpoint however the run ends, the numerics stop, and the rule
 * that gives the kept task. The lab engine and `opd-lab train` drive this same loop
 * (engine.test.ts and cli.test.ts run it on real models).
 */
import { describe, expect, it } from 'vitest';
import { knobRoutes, MAX_UNAPPLIED_IN_A_ROW, resolveTasks, runLoop, type LoopCadence, type LoopHooks, type LoopRun } from '../../workers/distill/loop';
import { DistillError } from '../../workers/distill/options';
import { DEFAULT_SETUP, setupProblem } from '../../workers/contract/knobs';
import type { ModelFolder } from '../../workers/models/folder';
import type { EvalMetrics, StepMetrics } from '../../workers/contract/run';

/** A run that counts its steps; `applied(step)` says whether the guard applied that step, `fails(step)` throws in it. */
function standIn(options: { startAt?: number; applied?: (step: number) => boolean; fails?: (step: number) => boolean } = {}) {
  let step = options.startAt ?? 0;
  const run: LoopRun = {
    get step() {
      return step;
    },
    async trainStep() {
      if (options.fails?.(step + 1)) throw new Error(`step ${step + 1} broke`);
      step++;
      const applied = options.applied?.(step) ?? true;
      return { step, applied, ...(applied ? {} : { problem: 'the gradient norm is not finite' }) } as StepMetrics;
    },
    async evaluate() {
      return { step, accuracy: 0.5 } as EvalMetrics;
    },
    async checkpoint() {
      return new Uint8Array([step]);
    },
  } as LoopRun;
  return run;
}

/** Hooks that record what the loop did, in order. */
function recorder(stopAfter?: number) {
  const log: string[] = [];
  let steps = 0;
  const hooks: LoopHooks = {
    beforeStep: async () => stopAfter === undefined || steps < stopAfter,
    step: (m) => {
      steps++;
      log.push(`step ${m.step}`);
    },
    evaluation: (e) => void log.push(`eval ${e.step}`),
    checkpoint: (step, bytes) => {
      expect(bytes[0]).toBe(step);
      log.push(`checkpoint ${step}`);
    },
  };
  return { log, hooks };
}

const cadence = (over: Partial<LoopCadence>): LoopCadence => ({ totalSteps: 5, evalEvery: 2, checkpointEvery: 3, ...over });

describe('the run loop', () => {
  it('evaluates at step 0, every evalEvery steps and after the last; checkpoints every checkpointEvery steps and at the end', async () => {
    const { log, hooks } = recorder();
    const end = await runLoop(standIn(), cadence({}), hooks);
    expect(end).toMatchObject({ state: 'finished', step: 5, checkpointStep: 5 });
    expect(end.lastEval?.step).toBe(5);
    expect(log).toEqual(['eval 0', 'step 1', 'step 2', 'eval 2', 'step 3', 'checkpoint 3', 'step 4', 'eval 4', 'step 5', 'eval 5', 'checkpoint 5']);
  });

  it('with cadence 0: evaluations only before the first step and after the last, one checkpoint at the end', async () => {
    const { log, hooks } = recorder();
    await runLoop(standIn(), cadence({ totalSteps: 3, evalEvery: 0, checkpointEvery: 0 }), hooks);
    expect(log).toEqual(['eval 0', 'step 1', 'step 2', 'step 3', 'eval 3', 'checkpoint 3']);
  });

  it('a stopped run keeps a checkpoint of where it stopped; a resumed run does not evaluate before its first step', async () => {
    const stopped = recorder(2);
    expect(await runLoop(standIn(), cadence({ checkpointEvery: 2 }), stopped.hooks)).toMatchObject({ state: 'stopped', step: 2, checkpointStep: 2 });
    // Step 2 was checkpointed by the cadence: the end does not write it twice.
    expect(stopped.log).toEqual(['eval 0', 'step 1', 'step 2', 'eval 2', 'checkpoint 2']);
    const resumed = recorder();
    await runLoop(standIn({ startAt: 3 }), cadence({}), resumed.hooks);
    expect(resumed.log).toEqual(['step 4', 'eval 4', 'step 5', 'eval 5', 'checkpoint 5']);
  });

  it(`${MAX_UNAPPLIED_IN_A_ROW} unapplied steps in a row fail the run with the numerics sentence, and a checkpoint is kept`, async () => {
    expect(MAX_UNAPPLIED_IN_A_ROW).toBe(3);
    const { log, hooks } = recorder();
    const end = await runLoop(standIn({ applied: (s) => s < 2 }), cadence({ totalSteps: 10, evalEvery: 1, checkpointEvery: 0 }), hooks);
    expect(end).toMatchObject({ state: 'failed', failedAt: 4, step: 4, checkpointStep: 4 });
    expect(end.state === 'failed' && end.numerics).toBe(
      "3 steps in a row could not be applied (the gradient norm is not finite): the student's weights stay as they were before them. A lower learning rate or a higher temperature may help.",
    );
    expect(log).toEqual(['eval 0', 'step 1', 'eval 1', 'step 2', 'eval 2', 'step 3', 'eval 3', 'step 4', 'checkpoint 4']);
    // Two in a row, then an applied step: the count starts again.
    const { hooks: h2 } = recorder();
    expect(await runLoop(standIn({ applied: (s) => s % 3 === 0 }), cadence({ totalSteps: 9 }), h2)).toMatchObject({ state: 'finished', step: 9 });
  });

  it('a step that throws fails the run at that step; the last checkpoint stands, none is taken of a broken step', async () => {
    const { log, hooks } = recorder();
    const end = await runLoop(standIn({ fails: (s) => s === 3 }), cadence({ evalEvery: 0, checkpointEvery: 1 }), hooks);
    expect(end).toMatchObject({ state: 'failed', failedAt: 3, step: 2, checkpointStep: 2 });
    expect(end.state === 'failed' && (end.exception as Error).message).toBe('step 3 broke');
    expect(log).toEqual(['eval 0', 'step 1', 'checkpoint 1', 'step 2', 'checkpoint 2']);
  });

  it('stepped one step at a time (the Step button: beforeStep waits for each release), a run does exactly what a free run does, and nothing more between releases', async () => {
    const free = recorder();
    await runLoop(standIn(), cadence({}), free.hooks);
    const stepped = recorder();
    let release: (() => void) | undefined;
    let waiting = 0;
    const hooks: LoopHooks = {
      ...stepped.hooks,
      beforeStep: () => {
        waiting++;
        return new Promise<boolean>((resolve) => (release = () => resolve(true)));
      },
    };
    const ended = runLoop(standIn(), cadence({}), hooks);
    const settle = () => new Promise((r) => setTimeout(r, 0));
    await settle();
    // Paused before step 1, after the step-0 evaluation, as Step from no run shows it.
    expect(stepped.log).toEqual(['eval 0']);
    for (let step = 1; step <= 5; step++) {
      expect(waiting).toBe(step);
      const before = stepped.log.length;
      release!();
      await settle();
      // Exactly one step ran (with the evaluation and checkpoint due after it), then the loop waits again.
      expect(stepped.log.slice(before).filter((e) => e.startsWith('step'))).toEqual([`step ${step}`]);
    }
    expect(await ended).toMatchObject({ state: 'finished', step: 5, checkpointStep: 5 });
    expect(stepped.log).toEqual(free.log);
  });

  it("the kept task: the setup's keepTask, '' for none, whatever the student's config.json hints", () => {
    const hints = { task_kept: 'subtraction' };
    expect(resolveTasks({ task: 'addition', keepTask: '', routeTask: '' }, hints).keptTask).toBeNull();
    const both = resolveTasks({ task: 'addition', keepTask: 'subtraction', routeTask: '' }, hints);
    expect([both.task.task.name, both.keptTask?.task.name]).toEqual(['addition', 'subtraction']);
    expect(() => resolveTasks({ task: 'addition', keepTask: 'addition', routeTask: '' }, {})).toThrow(new DistillError('the task to keep must differ from the task trained on (both are addition)'));
    expect(() => resolveTasks({ task: 'addition', keepTask: 'chess', routeTask: '' }, {})).toThrow(DistillError);
  });

  it("the routed task: the setup's routeTask with its teacher, the student as loaded or the run's teacher", () => {
    const routed = resolveTasks({ task: 'addition', keepTask: '', routeTask: 'subtraction' }, {});
    expect([routed.task.task.name, routed.keptTask, routed.routedTask?.task.name]).toEqual(['addition', null, 'subtraction']);
    expect(resolveTasks({ task: 'addition', keepTask: '', routeTask: '' }, {}).routedTask).toBeNull();
    expect(() => resolveTasks({ task: 'addition', keepTask: '', routeTask: 'addition' }, {})).toThrow(new DistillError('the routed task must differ from the task trained on (both are addition)'));
    const student = { label: 'the student' } as ModelFolder;
    const teacher = { label: 'the teacher' } as ModelFolder;
    const [toStudent] = knobRoutes({ routeTask: 'subtraction', routeTeacher: 'student' }, routed.routedTask, { student, teacher });
    expect([toStudent.label, toStudent.task.name, toStudent.teacher]).toEqual(['subtraction', 'subtraction', student]);
    expect(knobRoutes({ routeTask: 'subtraction', routeTeacher: 'teacher' }, routed.routedTask, { student, teacher })[0].teacher).toBe(teacher);
    expect(knobRoutes({ routeTask: '', routeTeacher: 'student' }, null, { student, teacher })).toEqual([]);
    // The setup's own check says the same before any folder is read, and forbids a task both routed and kept.
    expect(setupProblem({ ...DEFAULT_SETUP, routeTask: 'addition' })).toBe('The routed task must differ from the task trained on (both are addition): route another task, or none.');
    expect(setupProblem({ ...DEFAULT_SETUP, routeTask: 'subtraction', keepTask: 'subtraction' })).toBe('Subtraction is both routed (trained on) and kept (never trained on): choose one.');
    expect(setupProblem({ ...DEFAULT_SETUP, routeTask: 'subtraction', routeTeacher: 'someone' as 'student' })).toMatch(/^The routed task’s teacher must be one of student, teacher/);
  });
});
