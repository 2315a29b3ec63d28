/**
 * The tour's store and runner. Opening a step shows its panel and, for the three methods, starts
 * its run on the built-in pair (loaded afresh at the first run, as the race does) with the race's
 * setup and the tour's steps per run. Leaving a step while its run goes stops that run: the tour
 * never leaves a run behind it, and every run it made stays in the archive for Compare.
 */
import { create } from 'zustand';
import type { ObjectiveName } from '../../workers/contract/run';
import { loadBuiltInPair } from '../components/ModelLoader';
import { controlTraining } from '../lab/connect';
import { focusCompareFromNow, pairLoaded, RACE_SETUP, runToEnd } from '../lab/race';
import { runGoing, useDistillRun } from '../state/distillRun';
import { useLab } from '../state/labStore';
import { TOUR_STEPS } from './steps';

export const DEFAULT_TOUR_STEPS_PER_RUN = 10;

export interface TourRun {
  objective: ObjectiveName;
  status: 'loading' | 'running' | 'finished' | 'stopped' | 'failed';
  message: string;
}

export interface TourState {
  active: boolean;
  index: number;
  stepsPerRun: number;
  /** Held-out prompts of each evaluation of the tour's runs. */
  evalPrompts: number;
  /** The run of the step shown, when it has one. */
  run: TourRun | null;
}

export const useTour = create<TourState>()(() => ({ active: false, index: 0, stepsPerRun: DEFAULT_TOUR_STEPS_PER_RUN, evalPrompts: RACE_SETUP.evalPrompts, run: null }));

/** Bumped at every move: a run's end reported after the tour moved on is not shown. */
let generation = 0;
let loadedPair = false;

async function stopTourRun(): Promise<void> {
  const r = useTour.getState().run;
  const phase = useDistillRun.getState().phase;
  if (r && (r.status === 'running' || r.status === 'loading') && (phase === 'running' || phase === 'paused')) await controlTraining('stop');
}

export function startTour(): void {
  generation++;
  loadedPair = false;
  // Compare's default selection becomes the runs the tour makes.
  focusCompareFromNow();
  useTour.setState({ active: true, index: 0, run: null });
}

export function setTourRuns(change: Partial<Pick<TourState, 'stepsPerRun' | 'evalPrompts'>>): void {
  useTour.setState(change);
}

/** Opens step `index`: its panel, and its run when it has one. */
export async function goToStep(index: number): Promise<void> {
  const step = TOUR_STEPS[index];
  if (!step) return;
  await stopTourRun();
  const mine = ++generation;
  useTour.setState({ index, run: null });
  if (step.panel) useLab.getState().setPanel(step.panel);
  if (!step.run) return;
  const objective = step.run;
  const { stepsPerRun, evalPrompts } = useTour.getState();
  const update = (run: TourRun) => {
    if (generation === mine) useTour.setState({ run });
  };
  if (runGoing()) {
    update({ objective, status: 'failed', message: 'A run is going in the Distill panel: stop it, then open this step again.' });
    return;
  }
  if (!loadedPair || !pairLoaded()) {
    update({ objective, status: 'loading', message: 'Loading the built-in student and teacher…' });
    await loadBuiltInPair();
    if (!pairLoaded()) {
      update({ objective, status: 'failed', message: 'The built-in student and teacher did not load: see the Distill panel’s loaders for why.' });
      return;
    }
    loadedPair = true;
  }
  if (generation !== mine) return;
  update({ objective, status: 'running', message: `Running ${objective} for ${stepsPerRun} steps…` });
  const end = await runToEnd({ ...RACE_SETUP, objective, totalSteps: stepsPerRun, evalPrompts, evalEvery: Math.max(1, Math.round(stepsPerRun / 5)) });
  if (typeof end !== 'string') update({ objective, status: 'failed', message: `The run was refused: ${end.refused}` });
  else if (end === 'failed') update({ objective, status: 'failed', message: `The run failed: ${useDistillRun.getState().failure?.message ?? 'see the Distill panel'}` });
  else update({ objective, status: end, message: end === 'finished' ? `${objective} finished its ${stepsPerRun} steps.` : `${objective} was stopped.` });
}

export async function endTour(): Promise<void> {
  generation++;
  await stopTourRun();
  useTour.setState({ active: false, run: null });
}
