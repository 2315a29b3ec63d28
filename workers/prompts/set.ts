/**
 * A prompt set from its source to what a run draws from: parsed, rendered for the student (and
 * chat prompts for the teacher with its own template), checked against their contexts, split into
 * training and held-out prompts, and wrapped as a LabTask with no verifier (`promptSetTask`).
 */
import type { PromptItem, PromptSetSummary, PromptTextSource, TeacherRendering } from '../contract/prompts';
import { Rng } from '../random/rng';
import type { LabTask } from '../tasks/task';
import { parsePromptJsonl, parsePromptLines, PromptSetError } from './parse';
import { checkPromptLengths, checkTeacherPromptLengths, renderPromptItems, renderTeacherPrompts, type PromptStudent, type PromptTeacher } from './render';
import { seededPermutation, splitPrompts } from './split';

export { PromptSetError };

export interface PromptSetPrepared {
  label: string;
  /** Rendered texts, each side in the set's order. */
  train: string[];
  /** Chat prompts rendered with the student's template: encoded with no special tokens added. */
  rendered: boolean;
  heldOut: string[];
  /**
   * The teacher's own rendering of each prompt, parallel to `train` and `heldOut`: present when the
   * prompts are chat prompts and the teacher has a chat template; absent when the teacher reads
   * the student's text (plain prompts, or a teacher with no template).
   */
  teacherTrain?: string[];
  teacherHeldOut?: string[];
  summary: PromptSetSummary;
}

export interface SplitKnobs {
  heldOutFraction: number;
  splitSeed: number;
}

/** The items of a text source (pasted or a file); a built-in task has none here. */
export function parsePromptSource(source: PromptTextSource): PromptItem[] {
  return source.kind === 'jsonl' ? parsePromptJsonl(source.text, source.label) : parsePromptLines(source.text, source.label, source.asChat);
}

/**
 * Parses, renders for the student (when given) and for the teacher (when given: chat prompts with
 * its own template, when it has one), checks the lengths and splits. Throws PromptSetError.
 */
export function preparePromptSet(source: PromptTextSource, knobs: SplitKnobs, student: PromptStudent | null, teacher: PromptTeacher | null = null): PromptSetPrepared {
  const label = source.label;
  const items = parsePromptSource(source);
  let texts: string[];
  let teacherTexts: string[] | null = null;
  let rendered = false;
  const chat = items.some((it) => 'messages' in it);
  let teacherReads: TeacherRendering = chat ? { kind: 'unknown' } : { kind: 'text' };
  if (student) {
    ({ texts, rendered } = renderPromptItems(items, label, student));
    checkPromptLengths(texts, label, student, rendered);
    if (teacher && chat) {
      teacherTexts = renderTeacherPrompts(items, label, teacher);
      if (teacherTexts) {
        checkTeacherPromptLengths(teacherTexts, label, teacher, student.tokenizer);
        teacherReads = { kind: 'own-template', teacher: teacher.label, differing: teacherTexts.filter((t, i) => t !== texts[i]).length };
      } else teacherReads = { kind: 'student-template', teacher: teacher.label };
    }
  } else {
    // No student yet, so no template: a chat prompt is shown as its messages, marked as such
    // (for the summary only; a run always renders with its student, or refuses).
    texts = items.map((it) => ('text' in it ? it.text : `[chat] ${it.messages.map((m) => `${m.role}: ${m.content}`).join(' | ')}`));
  }
  const split = splitPrompts(texts.length, knobs.heldOutFraction, knobs.splitSeed, label);
  const train = split.train.map((i) => texts[i]);
  const heldOut = split.heldOut.map((i) => texts[i]);
  return {
    label,
    train,
    heldOut,
    rendered,
    ...(teacherTexts ? { teacherTrain: split.train.map((i) => teacherTexts[i]), teacherHeldOut: split.heldOut.map((i) => teacherTexts[i]) } : {}),
    summary: { label, prompts: texts.length, train: train.length, heldOut: heldOut.length, trainExamples: train.slice(0, 3), heldOutExamples: heldOut.slice(0, 3), teacherReads },
  };
}

/** New tokens an answer may take when max tokens is 0 on a prompt set: what the context leaves after the longest prompt, at most this. */
export const PROMPT_SET_MAX_TOKENS = 64;

/**
 * Max tokens 0 on a prompt set: what the student's context leaves after its longest prompt, at
 * most PROMPT_SET_MAX_TOKENS; when the teacher reads its own rendering and its context is known,
 * also no more than the teacher's context leaves after its longest rendering.
 */
export function promptSetMaxTokens(
  set: Pick<PromptSetPrepared, 'train' | 'heldOut' | 'rendered' | 'teacherTrain' | 'teacherHeldOut'>,
  student: PromptStudent,
  teacher: PromptTeacher | null = null,
): number {
  const longestOf = (texts: string[]) => Math.max(...texts.map((t) => student.tokenizer.encode(t, { addSpecialTokens: !set.rendered }).length));
  let room = student.context - longestOf([...set.train, ...set.heldOut]);
  if (teacher?.context != null && set.teacherTrain && set.teacherHeldOut) room = Math.min(room, teacher.context - longestOf([...set.teacherTrain, ...set.teacherHeldOut]));
  return Math.max(1, Math.min(PROMPT_SET_MAX_TOKENS, room));
}

/**
 * The set as a task with no verifier: training prompt i of seed s is taken from epoch
 * floor(i / n), a permutation of the training prompts drawn from (s, epoch), so every prompt comes
 * once an epoch and the stream is the same on every run with the same seed; the held-out prompts
 * are the evaluation's (the first `count`, in the set's order).
 */
export function promptSetTask(set: Pick<PromptSetPrepared, 'label' | 'train' | 'heldOut' | 'rendered' | 'teacherTrain' | 'teacherHeldOut'>): LabTask {
  const n = set.train.length;
  if (n === 0 || set.heldOut.length === 0) throw new PromptSetError(`${set.label} needs at least one training and one held-out prompt.`);
  let cached: { seed: number; epoch: number; order: number[] } | null = null;
  const teacherPrompt = teacherPromptOf(set);
  return {
    name: set.label,
    rendered: set.rendered,
    ...(teacherPrompt ? { teacherPrompt } : {}),
    trainPrompt(seed: number, index: number): string {
      const epoch = Math.floor(index / n);
      if (!cached || cached.seed !== seed || cached.epoch !== epoch) cached = { seed, epoch, order: seededPermutation(n, Rng.forStream(seed, epoch)) };
      return set.train[cached.order[index % n]];
    },
    evalPrompts(count: number): string[] {
      return set.heldOut.slice(0, count);
    },
  };
}

/**
 * The teacher's text of a prompt the task gave (the student's text), from the set's two parallel
 * renderings; null when the teacher reads the student's text. Two chat prompts that the student's
 * template writes the same way but the teacher's does not (a template that drops a field the
 * other keeps) would leave the teacher's text ambiguous: refused with a sentence.
 */
function teacherPromptOf(set: Pick<PromptSetPrepared, 'label' | 'train' | 'heldOut' | 'teacherTrain' | 'teacherHeldOut'>): ((prompt: string) => string) | null {
  if (!set.teacherTrain || !set.teacherHeldOut) return null;
  const map = new Map<string, string>();
  const add = (studentText: string, teacherText: string) => {
    const known = map.get(studentText);
    if (known !== undefined && known !== teacherText) {
      throw new PromptSetError(
        `Two prompts of ${set.label} read the same for the student but differently for the teacher (its chat template keeps something the student's drops): remove one of them, or make them the same.`,
      );
    }
    map.set(studentText, teacherText);
  };
  set.train.forEach((p, i) => add(p, set.teacherTrain![i]));
  set.heldOut.forEach((p, i) => add(p, set.teacherHeldOut![i]));
  return (prompt: string) => {
    const text = map.get(prompt);
    if (text === undefined) throw new PromptSetError(`The prompt ${JSON.stringify(prompt.slice(0, 80))} is not one of ${set.label}: the teacher's rendering of it is unknown.`);
    return text;
  };
}
