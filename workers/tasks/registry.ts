/** The lab's built-in tasks by name (the CLI's --task, the Distill panel's task list). */
import type { LabTask } from './task';
import { TASK_NAMES } from '../contract/run';
import { additionTask, type AdditionFormat } from './addition';
import { subtractionTask } from './subtraction';
import { DEFAULT_WORKED_DIGITS, maxWorkedTokens, workedAdditionTask, WORKED_TASK_NAME } from './worked-addition';

export interface TaskInfo {
  task: LabTask;
  /** New tokens an answer needs at most (sampling budget). */
  maxTokens: number;
}

export { TASK_NAMES };

function digitsHint(hints: Record<string, unknown>, fallback: readonly [number, number] = [1, 3]): [number, number] {
  const d = hints.task_digits;
  return Array.isArray(d) && d.length === 2 && d.every((x) => Number.isInteger(x)) ? [d[0], d[1]] : [fallback[0], fallback[1]];
}

/** A built-in task, configured from a model folder's config.json hints (task_format, task_digits) when present. */
export function builtInTask(name: string, hints: Record<string, unknown> = {}): TaskInfo {
  if (name === WORKED_TASK_NAME) {
    // Addition with its working written out (3-digit operands unless the folder says otherwise).
    const worked = digitsHint(hints, DEFAULT_WORKED_DIGITS);
    return { task: workedAdditionTask({ digits: worked }), maxTokens: maxWorkedTokens({ digits: worked }) };
  }
  const digits = digitsHint(hints);
  if (name === 'subtraction') {
    // a − b with a ≥ b has at most as many digits as a, then the end of text.
    return { task: subtractionTask({ digits }), maxTokens: digits[1] + 1 };
  }
  if (name !== 'addition') throw new Error(`unknown task '${name}' (built-in tasks: ${TASK_NAMES.join(', ')})`);
  const format = (typeof hints.task_format === 'string' ? hints.task_format : 'reversed') as AdditionFormat;
  const task = additionTask({ format, digits });
  // The answer has at most max+1 digits (scratchpad: a carry mark after each), then the end of text.
  const answerDigits = digits[1] + 1;
  return { task, maxTokens: (format === 'scratchpad' ? 2 * answerDigits : answerDigits) + 1 };
}

/**
 * The task a model folder says it must keep while it is distilled on its main task
 * (config.json `task_kept`, e.g. the self-distillation preset's student: fine-tuned on
 * subtraction, distilled on addition), or null.
 */
export function keptTaskOf(hints: Record<string, unknown>): TaskInfo | null {
  const name = hints.task_kept;
  return typeof name === 'string' && (TASK_NAMES as readonly string[]).includes(name) ? builtInTask(name, hints) : null;
}
