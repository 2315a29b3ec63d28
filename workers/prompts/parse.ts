/**
 * Prompt files and pasted prompts into prompt items. Every problem is a PromptSetError carrying
 * one sentence that names the source and, for a file, the line; nothing is half-read.
 */
import type { PromptItem } from '../contract/prompts';

export class PromptSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptSetError';
  }
}

/**
 * One prompt per line; blank (or whitespace-only) lines are skipped; a trailing '\r' is dropped.
 * `asChat`: each line is a one-turn conversation, a user message.
 */
export function parsePromptLines(text: string, label: string, asChat = false): PromptItem[] {
  const items = text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '')
    .map((l): PromptItem => (asChat ? { messages: [{ role: 'user', content: l }] } : { text: l }));
  if (items.length === 0) throw new PromptSetError(`${opening(label)} has no usable line: write one prompt per line.`);
  return items;
}

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** A `.jsonl` file: per non-blank line a JSON object with a `prompt` string or a `messages` array of {role, content} strings. */
export function parsePromptJsonl(text: string, label: string): PromptItem[] {
  const items: PromptItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const at = `line ${i + 1} of ${label}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new PromptSetError(`${capital(at)} is not JSON: each line of a .jsonl file must be one JSON object such as {"prompt": "…"}.`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new PromptSetError(`${capital(at)} is ${describe(value)}, not a JSON object with a "prompt" or "messages" field.`);
    }
    const o = value as Record<string, unknown>;
    if ('prompt' in o) {
      if (typeof o.prompt !== 'string') throw new PromptSetError(`The "prompt" field on ${at} is ${describe(o.prompt)}; it must be a string.`);
      if (o.prompt.trim() === '') throw new PromptSetError(`The "prompt" field on ${at} is empty; write the prompt, or remove the line.`);
      items.push({ text: o.prompt });
    } else if ('messages' in o) {
      const m = o.messages;
      if (!Array.isArray(m) || m.length === 0) throw new PromptSetError(`The "messages" field on ${at} is ${Array.isArray(m) ? 'empty' : describe(m)}; it must be a non-empty array of {"role", "content"} objects.`);
      const messages = m.map((x, j) => {
        if (x === null || typeof x !== 'object' || typeof (x as Record<string, unknown>).role !== 'string' || typeof (x as Record<string, unknown>).content !== 'string') {
          throw new PromptSetError(`Message ${j + 1} on ${at} is not an object with a "role" string and a "content" string.`);
        }
        const { role, content } = x as { role: string; content: string };
        return { role, content };
      });
      items.push({ messages });
    } else {
      throw new PromptSetError(`${capital(at)} has neither a "prompt" nor a "messages" field: each line needs one of them.`);
    }
  }
  if (items.length === 0) throw new PromptSetError(`${opening(label)} has no usable line: write one JSON object per line, with a "prompt" or "messages" field.`);
  return items;
}

/** A label at the start of a sentence: "the pasted text" → "The pasted text"; a file name as it is. */
export function opening(label: string): string {
  return label.startsWith('the ') ? 'T' + label.slice(1) : label;
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
