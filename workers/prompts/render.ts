/**
 * Prompt items into the text the student reads (and, for chat prompts, the text the teacher
 * reads: its own template's rendering), and the check that each fits its model's context.
 *
 * A `messages` prompt must go through the student's chat template (with the generation prompt
 * added), exactly as the model was trained to read a conversation; it is never flattened into
 * text some other way, which would teach the student on a format it never sees in use.
 */
import type { PromptItem } from '../contract/prompts';
import type { LabTokenizer } from '../models/tokenizer';
import type { ModelFolder } from '../models/folder';
import { ChatTemplateError } from '../chat/render';
import { renderFolderChat, type ChatFolder } from '../chat/template';
import { PromptSetError } from './parse';

/** What rendering and the length check need of the student. */
export interface PromptStudent {
  /** The folder's label, for sentences. */
  label: string;
  tokenizer: LabTokenizer;
  /** The longest sequence the student takes (its config's positions), in tokens. */
  context: number;
  /** Its chat template and special tokens (workers/chat/), for `messages` prompts; null: it has none. */
  chat: Pick<ModelFolder, 'label' | 'chatTemplate' | 'tokenizerFiles'> | null;
}

/** A set's prompts as the student reads them; `rendered` when they went through its chat template (encoded with no special tokens added). */
export interface RenderedPrompts {
  texts: string[];
  rendered: boolean;
}

/**
 * The text of every item, in order; a `messages` item through the student's chat template with the
 * generation prompt added. A set is all text or all chat: the two are encoded differently (a
 * rendered chat prompt already holds its special tokens), so a mix is refused.
 */
export function renderPromptItems(items: PromptItem[], label: string, student: PromptStudent): RenderedPrompts {
  const firstChat = items.findIndex((it) => 'messages' in it);
  if (firstChat < 0) return { texts: items.map((it) => ('text' in it ? it.text : '')), rendered: false };
  const firstText = items.findIndex((it) => 'text' in it);
  if (firstText >= 0) {
    throw new PromptSetError(
      `Prompt ${firstText + 1} of ${label} is text and prompt ${firstChat + 1} is a chat prompt (a "messages" field): a set is all text or all chat, since a chat prompt is rendered with the student's template; write them the same way.`,
    );
  }
  const chat = student.chat;
  if (!chat || chat.chatTemplate === null) {
    throw new PromptSetError(
      `Prompt ${firstChat + 1} of ${label} is a chat prompt (a "messages" field), and the student ${student.label} has no chat template to render it with: write the prompts as text (a "prompt" field, or one per line), or use a student whose folder has a chat template.`,
    );
  }
  return { texts: renderChatItems(items, label, chat, ''), rendered: true };
}

/** Every (chat) item through `chat`'s template with the generation prompt; a template error names the prompt (`whose`: " with the teacher's template", or ''). */
function renderChatItems(items: PromptItem[], label: string, chat: ChatFolder, whose: string): string[] {
  return items.map((it, i) => {
    try {
      return renderFolderChat(chat, (it as { messages: { role: string; content: string }[] }).messages, { addGenerationPrompt: true });
    } catch (e) {
      if (e instanceof ChatTemplateError) throw new PromptSetError(`Prompt ${i + 1} of ${label} could not be rendered${whose}: ${e.message}`);
      throw e;
    }
  });
}

/**
 * What rendering needs of the teacher: its chat side only. It may be a frozen ONNX folder with no
 * family config (then its context is unknown and unchecked); it shares the student's tokenizer
 * (a run checks that), so its prompts are encoded with the student's.
 */
export interface PromptTeacher {
  label: string;
  /** Its chat template and special tokens; `chatTemplate` null: it has none, and reads the student's rendering. */
  chat: ChatFolder;
  /** The longest sequence it takes (its config's positions), in tokens; null when its folder has no family config. */
  context: number | null;
}

/** The teacher's side of a prompt set from its folder: no config needed. */
export function promptTeacherOf(folder: Pick<ModelFolder, 'label' | 'chatTemplate' | 'tokenizerFiles' | 'config'>): PromptTeacher {
  return { label: folder.label, chat: folder, context: folder.config?.nPositions ?? null };
}

/**
 * The teacher's own rendering of every chat item (its template, its special tokens, the
 * generation prompt), in order; null when the items are text or the teacher has no chat template
 * (then it reads the student's text). Call after renderPromptItems (which refuses mixed sets).
 */
export function renderTeacherPrompts(items: PromptItem[], label: string, teacher: PromptTeacher): string[] | null {
  if (!items.some((it) => 'messages' in it) || teacher.chat.chatTemplate === null) return null;
  return renderChatItems(items, label, teacher.chat, " with the teacher's template");
}

/** Throws a sentence naming the first prompt whose teacher rendering leaves the teacher no room for an answer (when its context is known). */
export function checkTeacherPromptLengths(texts: string[], label: string, teacher: PromptTeacher, tokenizer: LabTokenizer): void {
  if (teacher.context === null) return;
  checkLengths(texts, tokenizer, false, teacher.context, (i, n) => `Prompt ${i + 1} of ${label}, rendered with the teacher's chat template, is ${n} tokens long, and the teacher ${teacher.label} reads at most ${teacher.context} tokens`);
}

/** Throws a sentence naming the first prompt (1-based, in the set's order) that leaves the student no room for an answer. */
export function checkPromptLengths(texts: string[], label: string, student: PromptStudent, rendered = false): void {
  checkLengths(texts, student.tokenizer, !rendered, student.context, (i, n) => `Prompt ${i + 1} of ${label} is ${n} tokens long, and the student ${student.label} reads at most ${student.context} tokens`);
}

/** Throws, for the first text of `context` tokens or more, the sentence `what` begins (prompt index i, its length n). */
function checkLengths(texts: string[], tokenizer: LabTokenizer, addSpecialTokens: boolean, context: number, what: (i: number, n: number) => string): void {
  texts.forEach((text, i) => {
    const n = tokenizer.encode(text, { addSpecialTokens }).length;
    if (n >= context) throw new PromptSetError(`${what(i, n)}, answer included: shorten the prompt or remove it.`);
  });
}

/** What the prompt checks need of a trainable student folder: its label, tokenizer and context length (config positions). */
export function promptStudentOf(folder: Pick<ModelFolder, 'label' | 'tokenizer' | 'config' | 'chatTemplate' | 'tokenizerFiles'>): PromptStudent {
  if (!folder.config) throw new PromptSetError(`${folder.label} is not a model of a family the lab knows, so its context length is unknown: prompt sets run on a trainable student.`);
  return { label: folder.label, tokenizer: folder.tokenizer, context: folder.config.nPositions, chat: folder };
}
