/**
 * What a cluster export carries: the run's setup from the knob schema, the two models (Hub ids
 * or folders, as the person named them) and the training prompts (plain text, or chat messages
 * the trainer renders with the student's template). Each target says in one sentence what it
 * cannot carry, instead of writing a script that silently trains something else.
 */
import { routeTeacherWords, type TrainSetup } from '../../contract/knobs';

export type ClusterPrompt = { text: string } | { messages: { role: string; content: string }[] };

export interface ClusterExperiment {
  setup: TrainSetup;
  /** The student and the teacher as the cluster loads them: Hub ids (ORG/NAME) or paths. */
  student: string;
  teacher: string;
  /** Training prompts (held-out ones stay out). */
  prompts: readonly ClusterPrompt[];
  /** New tokens per answer, resolved (the schema's 0 means "what the task needs": resolve it first). */
  maxTokens: number;
  /** AdamW's fixed settings in the lab's runs. */
  weightDecay: number;
  maxGradNorm: number;
}

export type ClusterTarget = 'trl' | 'tinker';

export class ClusterExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterExportError';
  }
}

/** The problems common to every target: a sentence each, or nothing. */
export function experimentProblems(e: ClusterExperiment): string[] {
  const problems: string[] = [];
  if (!e.student.trim()) problems.push('The student is not named: give its Hub id (ORG/NAME) or a path the cluster can read.');
  if (!e.teacher.trim()) problems.push('The teacher is not named: give its Hub id (ORG/NAME) or a path the cluster can read.');
  if (e.prompts.length === 0) problems.push('There are no training prompts to export.');
  if (e.setup.routeTask) {
    problems.push(`The routed task (${e.setup.routeTask}, scored by ${routeTeacherWords(e.setup.routeTeacher)}) cannot be exported: TRL's and tinker-cookbook's trainers give every prompt one teacher. Set "route a second task" to none to export the rest.`);
  }
  if (!Number.isInteger(e.maxTokens) || e.maxTokens < 1) problems.push(`Max tokens must be resolved to a whole number ≥ 1 before export; got ${e.maxTokens}.`);
  return problems;
}

/** Throws the first problem of `e` for `target`, if any. */
export function checkExperiment(e: ClusterExperiment, targetProblems: string[]): void {
  const problems = [...experimentProblems(e), ...targetProblems];
  if (problems.length > 0) throw new ClusterExportError(problems.join(' '));
}

/** A Python string literal (JSON's escapes are valid Python, and JSON strings cannot break out of quotes). */
export const py = (s: string): string => JSON.stringify(s);

/** A Python float literal that keeps every digit the lab has. */
export const pyFloat = (x: number): string => (Number.isInteger(x) ? `${x}.0` : String(x));

/** One JSON line per training prompt: `{"prompt": "..."}` or `{"prompt": [messages]}` (TRL's conversational form). */
export function promptsJsonl(prompts: readonly ClusterPrompt[]): string {
  return prompts.map((p) => JSON.stringify({ prompt: 'text' in p ? p.text : p.messages })).join('\n') + '\n';
}
