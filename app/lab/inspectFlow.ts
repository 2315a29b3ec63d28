/**
 * Inspect's flows beyond one request each (issue 14): "Try it" (the built-in pair loaded, a task
 * prompt drawn, the student's answer sampled and scored, from one click), drawing a prompt from
 * the student's task, and branching (the student's completion up to a token, then one of the
 * teacher's alternatives, continued by the student, scored and shown beside the original).
 *
 * The prompt and completion fields live here (not in the panel) so that a flow can fill them.
 */
import { create } from 'zustand';
import type { DrawnTaskPrompt, LabError, LabEventOf } from '../../workers/protocol';
import { LabRequestError } from './client';
import { labClient, loadModel, sampleFromStudent, scoreCompletion } from './connect';
import { builtInModelUrl, fetchBuiltIns, useBuiltIns, type BuiltInModelsIndex } from './builtInModels';
import { useLab } from '../state/labStore';

/**
 * The pairs "Try it" may load (built-in folders under models/), in order of preference: the first
 * whose two folders this build serves (models/index.json). The reasoning pair's answers are long
 * enough to show where the student's working goes wrong; the addition pair is the fallback.
 */
export const TRY_IT_PAIRS = [
  { student: 'worked-student', teacher: 'worked-teacher', what: 'addition with its working written out' },
  { student: 'addition-student', teacher: 'addition-teacher', what: 'addition' },
] as const;
export type TryItPair = (typeof TRY_IT_PAIRS)[number];

/** The pair Try it loads from this build: the first of TRY_IT_PAIRS that index.json lists (the last one before it is read). */
export function tryItPair(index: BuiltInModelsIndex | null): TryItPair {
  const served = (name: string) => index?.models.some((m) => m.name === name) ?? false;
  return TRY_IT_PAIRS.find((p) => served(p.student) && served(p.teacher)) ?? TRY_IT_PAIRS[TRY_IT_PAIRS.length - 1];
}

export type TryItStage = 'load' | 'draw' | 'sample' | 'score';
export const TRY_IT_STAGES: { stage: TryItStage; label: string }[] = [
  { stage: 'load', label: 'Loading the built-in student and teacher' },
  { stage: 'draw', label: 'Drawing a prompt the student never trained on' },
  { stage: 'sample', label: 'The student answers' },
  { stage: 'score', label: 'The teacher scores every token' },
];

type ScoreResult = Omit<LabEventOf<'score.result'>, 'type' | 'requestId'>;

/** A branch: the original completion's tokens before `index`, then the teacher's `alternative`, then what the student wrote. */
export interface Branch {
  /** The token of the original completion the branch replaces. */
  index: number;
  /** The alternative's text, as the teacher's top-k lists it. */
  alternative: string;
  state: 'sampling' | 'scoring' | 'done' | 'failed';
  completion: string | null;
  result: ScoreResult | null;
  error: LabError | null;
}

export interface InspectFlowState {
  prompt: string;
  completion: string;
  chat: boolean;
  /** The last prompt drawn from the student's task, kept while the prompt field still holds it. */
  drawn: DrawnTaskPrompt | null;
  drawing: boolean;
  drawError: LabError | null;
  /** "Try it": the stage under way (null: not running), and why it stopped when it failed. */
  tryIt: { stage: TryItStage | null; done: boolean; error: LabError | null };
  /** What the heatmap shows was scored from (the fields may change after). */
  scored: { prompt: string; completion: string; chat: boolean } | null;
  /** The branch made from one of the teacher's alternatives (shown beside the original). */
  branch: Branch | null;
}

export const useInspectFlow = create<InspectFlowState>()(() => ({
  prompt: '',
  completion: '',
  chat: false,
  drawn: null,
  drawing: false,
  drawError: null,
  tryIt: { stage: null, done: false, error: null },
  scored: null,
  branch: null,
}));

export const setPrompt = (prompt: string) => useInspectFlow.setState((s) => ({ prompt, drawn: s.drawn?.prompt === prompt ? s.drawn : null }));
export const setCompletion = (completion: string) => useInspectFlow.setState({ completion });
export const setChat = (chat: boolean) => useInspectFlow.setState({ chat });

const randomSeed = () => Math.floor(Math.random() * 1e9);

/** A prompt from the loaded student's task (a held-out one), into the prompt field; null with the sentence kept when there is none. */
export async function drawTaskPrompt(): Promise<DrawnTaskPrompt | null> {
  const client = labClient();
  if (!client) return null;
  useInspectFlow.setState({ drawing: true, drawError: null });
  try {
    const { drawn } = await client.request({ type: 'task.draw' }, ['task.drawn']);
    useInspectFlow.setState({ drawing: false, drawn, prompt: drawn.prompt, chat: false });
    return drawn;
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useInspectFlow.setState({ drawing: false, drawError: e.error });
    return null;
  }
}

/** Scores the completion in the fields (the Score button); a new score drops the branch of the old one. */
export async function scoreFields(): Promise<void> {
  const { prompt, completion, chat } = useInspectFlow.getState();
  useInspectFlow.setState({ branch: null, scored: { prompt, completion, chat } });
  await scoreCompletion(prompt, completion, 5, chat);
}

/** Whether the loaded model of `role` came from this built-in folder. */
function holds(role: 'student' | 'teacher', name: string): boolean {
  const label = useLab.getState().models[role].model?.label;
  return label === builtInModelUrl(name);
}

/**
 * "Try it": loads the built-in pair (unless it is loaded), draws a held-out prompt of its task,
 * lets the student answer it once and the teacher score that answer. Each stage shows as it
 * goes; a failure stops it with the stage's sentence.
 */
export async function tryIt(): Promise<void> {
  const fail = (error: LabError) => useInspectFlow.setState({ tryIt: { stage: null, done: false, error } });
  const stage = (s: TryItStage) => useInspectFlow.setState({ tryIt: { stage: s, done: false, error: null } });
  useInspectFlow.setState({ branch: null });
  stage('load');
  await fetchBuiltIns();
  // A read already under way (the loader's) is waited for, so the pair comes from index.json.
  if (useBuiltIns.getState().status === 'loading') {
    await new Promise<void>((resolve) => {
      const stop = useBuiltIns.subscribe((b) => b.status !== 'loading' && (stop(), resolve()));
    });
  }
  const pair = tryItPair(useBuiltIns.getState().index);
  for (const role of ['student', 'teacher'] as const) {
    if (holds(role, pair[role])) continue;
    await loadModel(role, { url: builtInModelUrl(pair[role]) });
    const slot = useLab.getState().models[role];
    if (slot.error || !slot.model) return fail(slot.error ?? { code: 'internal', message: `The built-in ${role} did not load.` });
  }
  stage('draw');
  const drawn = await drawTaskPrompt();
  if (!drawn) return fail(useInspectFlow.getState().drawError ?? { code: 'internal', message: 'No prompt could be drawn.' });
  stage('sample');
  // An answer that is only the end of text has no token to score: the student tries again (at most 3 times).
  let text = '';
  for (let attempt = 0; attempt < 3 && !text; attempt++) {
    await sampleFromStudent(drawn.prompt, { n: 1, maxTokens: drawn.maxTokens, temperature: 1, seed: randomSeed() });
    const inspect = useLab.getState().inspect;
    if (inspect.sampleError) return fail(inspect.sampleError);
    text = inspect.samples[0]?.text ?? '';
  }
  if (!text) return fail({ code: 'internal', message: 'The student ended its answer at once three times: there is no token to score. Press Try it again.' });
  useInspectFlow.setState({ completion: text, scored: { prompt: drawn.prompt, completion: text, chat: false } });
  stage('score');
  await scoreCompletion(drawn.prompt, text, 5, false);
  const { error } = useLab.getState().inspect;
  if (error) return fail(error);
  useInspectFlow.setState({ tryIt: { stage: null, done: true, error: null } });
}

/**
 * Branches the scored completion at token `index`: its tokens before it, then `alternativeId`
 * (one of the teacher's top-k there), forced; the student samples the rest; the new completion
 * is scored and shown beside the original.
 */
export async function branchFrom(index: number, alternativeId: number, alternativeText: string, scoredPrompt: string, chat: boolean): Promise<void> {
  const client = labClient();
  const original = useLab.getState().inspect.result;
  if (!client || !original) return;
  const forced = [...original.tokens.slice(0, index).map((t) => t.id), alternativeId];
  const set = (change: Partial<Branch>) => useInspectFlow.setState((s) => (s.branch ? { branch: { ...s.branch, ...change } } : s));
  useInspectFlow.setState({ branch: { index, alternative: alternativeText, state: 'sampling', completion: null, result: null, error: null } });
  // As long as the original could have gone on, with room for the end of text.
  const budget = Math.max(original.tokens.length - forced.length, 0) + 4;
  try {
    const sampled = await client.request(
      { type: 'sample', prompt: scoredPrompt, ...(chat ? { chat } : {}), n: 1, maxTokens: budget, temperature: 1, topK: 0, topP: 1, seed: randomSeed(), forced },
      ['sample.result'],
    );
    const completion = sampled.completions[0].text;
    set({ state: 'scoring', completion });
    const { type: _type, requestId: _id, ...result } = await client.request({ type: 'score', prompt: scoredPrompt, completion, topK: 5, ...(chat ? { chat } : {}) }, ['score.result']);
    set({ state: 'done', result });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    set({ state: 'failed', error: e.error });
  }
}
