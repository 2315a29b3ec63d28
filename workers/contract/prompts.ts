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
 * text: pasted or a `.txt` file (`lines`: one prompt per line, blank lines skipped; with `asChat`
 * each line is a user message, rendered with each model's chat template as a `messages` prompt
 * is), or a `.jsonl` file (`jsonl`: a `prompt` string or a `messages` array per line). `label`
 * names the source in sentences ("pasted prompts", "prompts.jsonl").
 */
export type PromptSource =
  | { kind: 'task'; task: string }
  | { kind: 'lines'; label: string; text: string; asChat?: boolean }
  | { kind: 'jsonl'; label: string; text: string };

/** A source of prompts written out (pasted or a file), as opposed to a built-in task. */
export type PromptTextSource = Exclude<PromptSource, { kind: 'task' }>;

/**
 * The source kind a file's name asks for: `.jsonl` is JSON lines, anything else one prompt per
 * line (each a user message with `asChat`; a .jsonl line says itself whether it is chat).
 */
export function promptSourceOfFile(name: string, text: string, asChat = false): PromptTextSource {
  return /\.jsonl$/i.test(name) ? { kind: 'jsonl', label: name, text } : { kind: 'lines', label: name, text, ...(asChat ? { asChat } : {}) };
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
  /** Which rendering of each prompt the teacher reads (`teacherRenderingSentence` says it in words). */
  teacherReads: TeacherRendering;
}

/**
 * Which text the teacher reads for a prompt of the set:
 * - `text`: plain prompts; the teacher reads the same text as the student;
 * - `own-template`: chat prompts, rendered for the teacher with its own chat template (and for
 *   the student with the student's); `differing` of the set's prompts render differently;
 * - `student-template`: chat prompts, and the teacher has no chat template: it reads the
 *   student's rendering;
 * - `unknown`: chat prompts checked before both models were loaded.
 */
export type TeacherRendering =
  | { kind: 'text' }
  | { kind: 'own-template'; teacher: string; differing: number }
  | { kind: 'student-template'; teacher: string }
  | { kind: 'unknown' };

/** One sentence saying which rendering the teacher reads, for the Distill panel and the CLI. */
export function teacherRenderingSentence(summary: Pick<PromptSetSummary, 'prompts' | 'teacherReads'>): string {
  const r = summary.teacherReads;
  switch (r.kind) {
    case 'text':
      return 'The teacher reads each prompt as written, as the student does.';
    case 'own-template':
      return r.differing === 0
        ? `The teacher ${r.teacher} reads each chat prompt rendered with its own chat template, which writes every prompt of the set as the student's does.`
        : `The teacher ${r.teacher} reads each chat prompt rendered with its own chat template, the student with its own: ${r.differing} of ${summary.prompts} prompts read differently, and each model is scored on its own.`;
    case 'student-template':
      return `The teacher ${r.teacher} has no chat template, so it reads the student's rendering of each chat prompt.`;
    case 'unknown':
      return 'Which rendering of these chat prompts the teacher reads is known once a student and a teacher are loaded.';
  }
}
