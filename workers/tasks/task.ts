/**
 * What a distillation run needs from a task: training prompts (an endless seeded stream), a
 * fixed held-out set, and a verifier of the final answer (the RL baseline's reward and the
 * accuracy every run is judged by). A prompt set without labels (workers/prompts/) is a task
 * with no verifier: its runs are judged by the held-out reverse KL alone.
 */
export interface LabTask {
  /** Short name, e.g. "addition". */
  name: string;
  /**
   * The prompts already hold every special token the model wants (chat prompts rendered with
   * the student's template, which writes the BOS token itself): encode them without adding any,
   * as transformers' apply_chat_template does.
   */
  rendered?: boolean;
  /**
   * The text the teacher reads for `prompt` (one this task gave), when it differs in kind from the
   * student's: a chat prompt rendered with the teacher's own chat template (workers/prompts/).
   * Absent: the teacher reads the student's text. Encoded as the student's is (`rendered`).
   */
  teacherPrompt?(prompt: string): string;
  /** The i-th training prompt of the stream for `seed` (never one of the eval prompts). */
  trainPrompt(seed: number, index: number): string;
  /** The held-out prompts (fixed, disjoint from every training stream). */
  evalPrompts(count: number): string[];
  /** Whether `completion` (decoded text, special tokens dropped) answers `prompt` correctly; absent for prompts without labels. */
  verify?(prompt: string, completion: string): { correct: boolean; reason?: string };
  /**
   * The correct completion of `prompt` as the model should write it (decoded text, without the
   * end of text: what `verify` accepts), or '' when `prompt` is not one of this task's. Inspect
   * shows it beside a verdict ("the answer should be …").
   */
  expected?(prompt: string): string;
  /**
   * A completion of this task as a person reads it, where the format writes it otherwise
   * (addition's units-first "639" is 936). Absent: a completion reads as it is written.
   */
  readable?(completion: string): string;
  /** How this task's prompts and answers are written, in a sentence or two for people (Inspect shows it beside a drawn prompt). */
  formatNote?: string;
}
