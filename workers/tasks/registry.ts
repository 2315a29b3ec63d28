/** The lab's built-in tasks by name (the CLI's --task, the Distill panel's task list). */
import type { LabTask } from '../distill/task';
import { additionTask, type AdditionFormat } from './addition';

export interface TaskInfo {
  task: LabTask;
  /** New tokens an answer needs at most (sampling budget). */
  maxTokens: number;
}

export const TASK_NAMES = ['addition'] as const;

/** A built-in task, configured from a model folder's config.json hints (task_format, task_digits) when present. */
export function builtInTask(name: string, hints: Record<string, unknown> = {}): TaskInfo {
  if (name !== 'addition') throw new Error(`unknown task '${name}' (built-in tasks: ${TASK_NAMES.join(', ')})`);
  const format = (typeof hints.task_format === 'string' ? hints.task_format : 'reversed') as AdditionFormat;
  const d = hints.task_digits;
  const digits: [number, number] = Array.isArray(d) && d.length === 2 && d.every((x) => Number.isInteger(x)) ? [d[0], d[1]] : [1, 3];
  const task = additionTask({ format, digits });
  // The answer has at most max+1 digits (scratchpad: a carry mark after each), then the end of text.
  const answerDigits = digits[1] + 1;
  return { task, maxTokens: (format === 'scratchpad' ? 2 * answerDigits : answerDigits) + 1 };
}
