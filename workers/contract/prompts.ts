/**
 * Prompt sets without labels, as the page and the engine exchange them: where the prompts come
 * from (`PromptSource`), one prompt (`PromptItem`), and what the engine says about a set once it
 * has read and split it (`PromptSetSummary`). Parsing, the split and the checks live in
 * workers/prompts/.
 */

/** One prompt: plain text, or chat messages rendered with the student's chat template. */
export type PromptItem = { text: string } | { messages: { role: string; content: string }[] };

/**
 * Where a run's prompts come from: a built-in task (its prompts, held-out set and verifier), or
 * text: pasted or a `.txt` file (`lines`: one prompt per line, blank lines skipped), or a
 * `.jsonl` file (`jsonl`: a `prompt` string or a `messages` array per line). `label` names the
 * source in sentences ("pasted prompts", "prompts.jsonl").
 */
export type PromptSource =
  | { kind: 'task'; task: string }
  | { kind: 'lines'; label: string; text: string }
  | { kind: 'jsonl'; label: string; text: string };

/** A source of prompts written out (pasted or a file), as opposed to a built-in task. */
export type PromptTextSource = Exclude<PromptSource, { kind: 'task' }>;

/** The source kind a file's name asks for: `.jsonl` is JSON lines, anything else one prompt per line. */
export function promptSourceOfFile(name: string, text: string): PromptTextSource {
  return /\.jsonl$/i.test(name) ? { kind: 'jsonl', label: name, text } : { kind: 'lines', label: name, text };
}

/** A prompt set read and split: how many prompts each side holds, and the first few of each. */
export interface PromptSetSummary {
  label: string;
  prompts: number;
  train: number;
  heldOut: number;
  /** The first few training and held-out prompts as the model will read them. */
  trainExamples: string[];
  heldOutExamples: string[];
}
