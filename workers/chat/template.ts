/**
 * What a model folder gives the chat renderer: its template (ModelFolder.chatTemplate, read from
 * chat_template.jinja or tokenizer_config.json by workers/models/folder.ts) and the special
 * tokens that transformers hands the template (its special_tokens_map: each role's token as a
 * string, AddedToken objects by their content, None left out).
 */
import type { ModelFolder } from '../models/folder';
import { ChatTemplateError, renderChat, type ChatMessage, type ChatSpecialTokens } from './render';

/** The special-token roles transformers passes to a chat template, by tokenizer_config.json name. */
export const CHAT_SPECIAL_TOKEN_NAMES = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

function content(field: unknown): string | null {
  if (typeof field === 'string') return field;
  if (field && typeof field === 'object' && typeof (field as { content?: unknown }).content === 'string') return (field as { content: string }).content;
  return null;
}

/** The special tokens of a parsed tokenizer_config.json, as the template sees them. */
export function chatSpecialTokens(tokenizerConfig: Record<string, unknown>): ChatSpecialTokens {
  const out: Record<string, string | string[]> = {};
  for (const name of CHAT_SPECIAL_TOKEN_NAMES) {
    const token = content(tokenizerConfig[name]);
    if (token !== null) out[name] = token;
  }
  const extra = tokenizerConfig.additional_special_tokens;
  if (Array.isArray(extra)) {
    const tokens = extra.map(content).filter((t): t is string => t !== null);
    if (tokens.length) out.additional_special_tokens = tokens;
  }
  return out;
}

/** The folder's tokenizer_config.json as parsed JSON ({} without one, or when it is not an object). */
export function folderTokenizerConfig(folder: Pick<ModelFolder, 'tokenizerFiles'>): Record<string, unknown> {
  const bytes = folder.tokenizerFiles.get('tokenizer_config.json');
  if (!bytes) return {};
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The folder's chat template, or a ChatTemplateError saying it has none. */
export function requireChatTemplate(folder: Pick<ModelFolder, 'label' | 'chatTemplate'>): string {
  if (folder.chatTemplate === null) {
    throw new ChatTemplateError(
      `${folder.label} has no chat template (neither chat_template.jinja nor a chat_template in tokenizer_config.json): a chat prompt cannot be rendered for it; use a plain prompt, or add the model's template.`,
      folder.label,
    );
  }
  return folder.chatTemplate;
}

/** What rendering needs of a model folder. */
export type ChatFolder = Pick<ModelFolder, 'label' | 'chatTemplate' | 'tokenizerFiles'>;

/** `messages` rendered with the folder's own template and special tokens. */
export function renderFolderChat(
  folder: ChatFolder,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean } = {},
): string {
  return renderChat(requireChatTemplate(folder), messages, {
    addGenerationPrompt: options.addGenerationPrompt ?? true,
    specialTokens: chatSpecialTokens(folderTokenizerConfig(folder)),
    model: folder.label,
  });
}
