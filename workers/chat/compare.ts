/** The student's and the teacher's renderings of one conversation: the same string or not, and where they part. */
import type { ChatMessage } from './render';
import { renderFolderChat, type ChatFolder } from './template';

export interface RenderingComparison {
  same: boolean;
  /** The index of the first character where the two differ (the shorter one's length when one is a prefix of the other); null when they are equal. */
  firstDifference: number | null;
}

export function compareRenderings(student: string, teacher: string): RenderingComparison {
  if (student === teacher) return { same: true, firstDifference: null };
  let i = 0;
  const n = Math.min(student.length, teacher.length);
  while (i < n && student[i] === teacher[i]) i++;
  return { same: false, firstDifference: i };
}

/** `messages` rendered with the student's template and with the teacher's (each folder's own special tokens), and how the two compare. */
export function renderForStudentAndTeacher(
  student: ChatFolder,
  teacher: ChatFolder,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean } = {},
): { student: string; teacher: string } & RenderingComparison {
  const s = renderFolderChat(student, messages, options);
  const t = renderFolderChat(teacher, messages, options);
  return { student: s, teacher: t, ...compareRenderings(s, t) };
}
