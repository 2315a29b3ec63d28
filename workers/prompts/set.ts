/**
 * A prompt set from its source to what a run draws from: parsed, rendered for the student,
 * checked against its context, split into training and held-out prompts, and wrapped as a
 * LabTask with no verifier (`promptSetTask`).
 */
import type { PromptItem, PromptSetSummary, PromptTextSource } from '../contract/prompts';
import { Rng } from '../random/rng';
import type { LabTask } from '../tasks/task';
import { parsePromptJsonl, parsePromptLines, PromptSetError } from './parse';
import { checkPromptLengths, renderPromptItems, type PromptStudent } from './render';
import { seededPermutation, splitPrompts } from './split';

export { PromptSetError };

export interface PromptSetPrepared {
  label: string;
  /** Rendered texts, each side in the set's order. */
  train: string[];
  /** Chat prompts rendered with the student's template: encoded with no special tokens added. */
  rendered: boolean;
  heldOut: string[];
  summary: PromptSetSummary;
}

export interface SplitKnobs {
  heldOutFraction: number;
  splitSeed: number;
}

/** The items of a text source (pasted or a file); a built-in task has none here. */
export function parsePromptSource(source: PromptTextSource): PromptItem[] {
  return source.kind === 'jsonl' ? parsePromptJsonl(source.text, source.label) : parsePromptLines(source.text, source.label);
}

/** Parses, renders for the student (when given), checks the lengths and splits. Throws PromptSetError. */
export function preparePromptSet(source: PromptTextSource, knobs: SplitKnobs, student: PromptStudent | null): PromptSetPrepared {
  const label = source.label;
  const items = parsePromptSource(source);
  let texts: string[];
  let rendered = false;
  if (student) {
    ({ texts, rendered } = renderPromptItems(items, label, student));
    checkPromptLengths(texts, label, student, rendered);
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
    summary: { label, prompts: texts.length, train: train.length, heldOut: heldOut.length, trainExamples: train.slice(0, 3), heldOutExamples: heldOut.slice(0, 3) },
  };
}

/** New tokens an answer may take when max tokens is 0 on a prompt set: what the context leaves after the longest prompt, at most this. */
export const PROMPT_SET_MAX_TOKENS = 64;

/** Max tokens 0 on a prompt set: what the student's context leaves after its longest prompt, at most PROMPT_SET_MAX_TOKENS. */
export function promptSetMaxTokens(set: Pick<PromptSetPrepared, 'train' | 'heldOut' | 'rendered'>, student: PromptStudent): number {
  const longest = Math.max(...[...set.train, ...set.heldOut].map((t) => student.tokenizer.encode(t, { addSpecialTokens: !set.rendered }).length));
  return Math.max(1, Math.min(PROMPT_SET_MAX_TOKENS, student.context - longest));
}

/**
 * The set as a task with no verifier: training prompt i of seed s is taken from epoch
 * floor(i / n), a permutation of the training prompts drawn from (s, epoch), so every prompt comes
 * once an epoch and the stream is the same on every run with the same seed; the held-out prompts
 * are the evaluation's (the first `count`, in the set's order).
 */
export function promptSetTask(set: Pick<PromptSetPrepared, 'label' | 'train' | 'heldOut' | 'rendered'>): LabTask {
  const n = set.train.length;
  if (n === 0 || set.heldOut.length === 0) throw new PromptSetError(`${set.label} needs at least one training and one held-out prompt.`);
  let cached: { seed: number; epoch: number; order: number[] } | null = null;
  return {
    name: set.label,
    rendered: set.rendered,
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
