/**
 * Prompt items into the text the student reads, and the check that each fits its context.
 *
 * A `messages` prompt must go through the student's chat template (with the generation prompt
 * added), exactly as the model was trained to read a conversation; it is never flattened into
 * text some other way, which would teach the student on a format it never sees in use.
 */
import type { PromptItem } from '../contract/prompts';
import type { LabTokenizer } from '../models/tokenizer';
import { PromptSetError } from './parse';

/** What rendering and the length check need of the student. */
export interface PromptStudent {
  /** The folder's label, for sentences. */
  label: string;
  tokenizer: LabTokenizer;
  /** The longest sequence the student takes (its config's positions), in tokens. */
  context: number;
}

/** The text of every item, in order; a `messages` item through the student's chat template. */
export function renderPromptItems(items: PromptItem[], label: string, student: PromptStudent): string[] {
  return items.map((item, i) => {
    if ('text' in item) return item.text;
    if (!student.tokenizer.chatTemplate) {
      throw new PromptSetError(
        `Prompt ${i + 1} of ${label} is a chat prompt (a "messages" field), and the student ${student.label} has no chat template to render it with: write the prompts as text (a "prompt" field, or one per line), or use a student whose tokenizer_config.json has a chat_template.`,
      );
    }
    throw new PromptSetError(
      `Prompt ${i + 1} of ${label} is a chat prompt (a "messages" field), and the lab cannot apply ${student.label}'s chat template yet: write the prompts as text (a "prompt" field, or one per line), rendered as the model expects.`,
    );
  });
}

/** Throws a sentence naming the first prompt (1-based, in the set's order) that leaves the student no room for an answer. */
export function checkPromptLengths(texts: string[], label: string, student: PromptStudent): void {
  texts.forEach((text, i) => {
    const n = student.tokenizer.encode(text).length;
    if (n >= student.context) {
      throw new PromptSetError(
        `Prompt ${i + 1} of ${label} is ${n} tokens long, and the student ${student.label} reads at most ${student.context} tokens, answer included: shorten the prompt or remove it.`,
      );
    }
  });
}

/** What the prompt checks need of a trainable student folder: its label, tokenizer and context length (config positions). */
export function promptStudentOf(folder: { label: string; tokenizer: LabTokenizer; config: { nPositions: number } | null }): PromptStudent {
  if (!folder.config) throw new PromptSetError(`${folder.label} is not a model of a family the lab knows, so its context length is unknown: prompt sets run on a trainable student.`);
  return { label: folder.label, tokenizer: folder.tokenizer, context: folder.config.nPositions };
}
