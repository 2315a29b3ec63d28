/**
 * Rendering a conversation with a model's chat template, as transformers' apply_chat_template
 * does, through @huggingface/jinja (the Jinja implementation transformers.js uses). The template
 * sees `messages`, `add_generation_prompt` and the tokenizer's special tokens by name
 * (`bos_token`, `eos_token`, …); @huggingface/jinja's Template compiles with trim_blocks and
 * lstrip_blocks, as transformers' environment does, and provides raise_exception and strftime_now.
 */
import { Template } from '@huggingface/jinja';

/** One turn of a conversation. Fields beyond role and content reach the template unchanged. */
export interface ChatMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

/**
 * The special tokens a template may name, by their tokenizer_config.json names (`bos_token`,
 * `eos_token`, `pad_token`, `unk_token`, … as strings; `additional_special_tokens` as a list).
 * A token left out is undefined in the template, as transformers leaves out a token that is None.
 */
export type ChatSpecialTokens = Readonly<Record<string, string | readonly string[]>>;

export interface RenderChatOptions {
  /** Append the template's opening of the assistant's turn (transformers' add_generation_prompt). Default true: the lab renders prompts to generate from. */
  addGenerationPrompt?: boolean;
  specialTokens?: ChatSpecialTokens;
  /** The model whose template it is, named in error sentences (a folder label). */
  model?: string;
}

/** A template that does not parse or does not render, in one sentence naming the model and Jinja's error. */
export class ChatTemplateError extends Error {
  constructor(
    message: string,
    readonly model: string,
  ) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** Parsed templates by their text: a prompt set renders hundreds of prompts with one or two templates. */
const parsed = new Map<string, Template>();
const MAX_CACHED = 16;

function compile(template: string, model: string): Template {
  let t = parsed.get(template);
  if (t) return t;
  try {
    t = new Template(template);
  } catch (e) {
    throw new ChatTemplateError(`The chat template of ${model} is not valid Jinja (${errorText(e)}): fix the template, or use plain prompts.`, model);
  }
  if (parsed.size >= MAX_CACHED) parsed.delete(parsed.keys().next().value as string);
  parsed.set(template, t);
  return t;
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/\.\s*$/, '');
}

/**
 * `messages` rendered with `template`. Throws ChatTemplateError (one sentence naming the model
 * and Jinja's error) when the template does not parse, fails while rendering (a
 * `raise_exception` included), or is given no messages.
 */
export function renderChat(template: string, messages: readonly ChatMessage[], options: RenderChatOptions = {}): string {
  const model = options.model ?? 'the model';
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ChatTemplateError(`There are no messages to render with the chat template of ${model}: a chat prompt needs at least one { role, content } message.`, model);
  }
  messages.forEach((m, i) => {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new ChatTemplateError(`Message ${i + 1} for the chat template of ${model} is not a { role, content } object with string fields.`, model);
    }
  });
  const compiled = compile(template, model);
  const variables: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options.specialTokens ?? {})) variables[name] = Array.isArray(value) ? [...value] : value;
  // Plain copies: the interpreter wraps what it is given, and the caller's objects stay untouched.
  variables.messages = messages.map((m) => ({ ...m }));
  variables.add_generation_prompt = options.addGenerationPrompt ?? true;
  // transformers passes tools and documents as None when there are none: defined, and none.
  variables.tools = null;
  variables.documents = null;
  try {
    return compiled.render(variables);
  } catch (e) {
    throw new ChatTemplateError(`The chat template of ${model} failed to render the messages (${errorText(e)}).`, model);
  }
}
