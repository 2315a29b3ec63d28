/**
 * The race: `opd-sampled`, `opd-full`, `sft` and `rl` on a preset's pair and task
 * (racePresets.ts) with the same seed, steps and batch, one after the other (the lab trains one
 * run at a time),
 * each recorded in the run archive like any run, so the Compare panel draws them as they go.
 * Nothing of the person's Distill setup changes: each run is started with the race's own setup.
 */
import { create } from 'zustand';
import type { ObjectiveName } from '../../workers/contract/run';
import type { TrainSetup } from '../../workers/contract/knobs';
import { DEFAULT_RACE_STEPS, RACE_OBJECTIVES, RACE_PRESETS, RACE_SETUP, type RacePreset, type RacePresetName } from './racePresets';
import { runGoing, useDistillRun } from '../state/distillRun';
import { useLab } from '../state/labStore';
import { loadBuiltInPair } from '../components/ModelLoader';
import { controlTraining, loadModel, startTraining } from './connect';
import { builtInModelUrl } from './builtInModels';

export { DEFAULT_RACE_STEPS, RACE_OBJECTIVES, RACE_PRESETS, RACE_SETUP, type RacePreset, type RacePresetName } from './racePresets';

export interface RaceState {
  status: 'idle' | 'loading' | 'running' | 'done' | 'cancelled' | 'failed';
  /** The objective running now (while running). */
  current: ObjectiveName | null;
  /** Objectives whose run has ended. */
  done: ObjectiveName[];
  steps: number;
  /** Date.now() when the race began: the Compare panel selects the runs created since. */
  startedAt: number | null;
  /** A sentence for the panel. */
  message: string;
}

export const useRace = create<RaceState>()(() => ({ status: 'idle', current: null, done: [], steps: DEFAULT_RACE_STEPS, startedAt: null, message: '' }));

let cancelled = false;

/** Resolves when the run started last has ended (finished, stopped or failed). */
function runEnded(): Promise<'finished' | 'stopped' | 'failed'> {
  return new Promise((resolve) => {
    const check = (s = useDistillRun.getState()) => {
      if (!s.starting && (s.phase === 'finished' || s.phase === 'stopped' || s.phase === 'failed')) {
        unsubscribe();
        resolve(s.phase);
        return true;
      }
      return false;
    };
    const unsubscribe = useDistillRun.subscribe((s) => void check(s));
    check();
  });
}

/** Starts a run with `setup` and resolves when it has ended, or with the sentence that refused it. */
export async function runToEnd(setup: TrainSetup): Promise<'finished' | 'stopped' | 'failed' | { refused: string }> {
  await startTraining(setup);
  const refused = useDistillRun.getState().startError;
  if (refused) return { refused: refused.message };
  return runEnded();
}

/** Points the Compare panel's default selection at the runs created from now on (a race, the tour). */
export function focusCompareFromNow(): void {
  useRace.setState({ startedAt: Date.now() });
}

export const pairLoaded = () => {
  const { models } = useLab.getState();
  return models.student.model !== null && !models.student.error && models.teacher.model !== null && !models.teacher.error;
};

/** Runs the four objectives in turn; a second call while one races is ignored. */
export async function startRace(steps: number, evalPrompts: number = RACE_SETUP.evalPrompts, presetName: RacePresetName = 'demo'): Promise<void> {
  const preset: RacePreset = RACE_PRESETS[presetName];
  const s = useRace.getState();
  if (s.status === 'loading' || s.status === 'running') return;
  if (runGoing()) {
    useRace.setState({ status: 'failed', message: 'A run is going in the Distill panel: stop it (or let it finish) before the race.' });
    return;
  }
  cancelled = false;
  useRace.setState({ status: 'loading', current: null, done: [], steps, startedAt: Date.now(), message: 'Loading the built-in student and teacher…' });
  // The pair is loaded afresh: whatever the person loaded last, the race is the preset's.
  if (preset.pair) {
    await loadModel('student', { url: builtInModelUrl(preset.pair.student) });
    await loadModel('teacher', { url: builtInModelUrl(preset.pair.teacher) });
  } else await loadBuiltInPair();
  if (!pairLoaded()) {
    useRace.setState({ status: 'failed', message: 'The built-in student and teacher did not load: see the Distill panel’s loaders for why.' });
    return;
  }
  for (const objective of RACE_OBJECTIVES) {
    if (cancelled) break;
    useRace.setState({ status: 'running', current: objective, message: `Racing ${objective}: ${useRace.getState().done.length + 1} of ${RACE_OBJECTIVES.length}.` });
    const end = await runToEnd({ ...preset.setup, objective, lr: preset.lr[objective], totalSteps: steps, evalPrompts });
    if (typeof end !== 'string') {
      useRace.setState({ status: 'failed', current: null, message: `The ${objective} run was refused: ${end.refused}` });
      return;
    }
    useRace.setState((r) => ({ done: [...r.done, objective] }));
    if (end === 'failed') {
      useRace.setState({ status: 'failed', current: null, message: `The ${objective} run failed: ${useDistillRun.getState().failure?.message ?? 'see the Distill panel'}` });
      return;
    }
  }
  const done = useRace.getState().done.length;
  useRace.setState(
    cancelled
      ? { status: 'cancelled', current: null, message: `Race stopped after ${done} of ${RACE_OBJECTIVES.length} runs.` }
      : { status: 'done', current: null, message: `Race finished: ${RACE_OBJECTIVES.length} runs of ${steps} steps each, the same seed and budget.` },
  );
}

/** Stops the run racing now and starts no more. */
export async function stopRace(): Promise<void> {
  cancelled = true;
  const phase = useDistillRun.getState().phase;
  if (phase === 'running' || phase === 'paused') await controlTraining('stop');
}
