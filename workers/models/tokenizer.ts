/**
 * Tokenizers of model folders (tokenizer.json + tokenizer_config.json), loaded with the
 * maintained @huggingface/tokenizers library, and the check that a student and a teacher share
 * one tokenizer, which per-token distillation needs.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelFolderError, readJson, type ModelSource } from './source';

export const SPECIAL_ROLES = ['bos', 'eos', 'pad', 'unk'] as const;
export type SpecialRole = (typeof SPECIAL_ROLES)[number];

export interface LabTokenizer {
  /** The folder it came from. */
  readonly label: string;
  /** id → token string for every id the tokenizer knows, added tokens included; unknown ids are null. */
  readonly vocab: readonly (string | null)[];
  readonly specialTokens: Readonly<Record<SpecialRole, string | null>>;
  readonly eosTokenId: number | null;
  readonly chatTemplate: string | null;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** How one token reads on screen (its decoded text). */
  tokenText(id: number): string;
}

type TokenField = string | { content?: string } | null | undefined;

function tokenContent(field: TokenField): string | null {
  if (field == null) return null;
  if (typeof field === 'string') return field;
  return typeof field.content === 'string' ? field.content : null;
}

function chatTemplateOf(config: Record<string, unknown>): string | null {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  // Several named templates: [{ name, template }]; the default one is the one used.
  if (Array.isArray(t)) {
    const named = t as { name?: string; template?: string }[];
    return (named.find((x) => x.name === 'default') ?? named[0])?.template ?? null;
  }
  return null;
}

/** Builds a LabTokenizer from the parsed JSON of tokenizer.json and tokenizer_config.json. */
export function tokenizerFromJson(tokenizerJson: unknown, config: Record<string, unknown>, label: string): LabTokenizer {
  if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
    throw new ModelFolderError(`tokenizer.json in ${label} has no "model" section: it is not a Hugging Face tokenizer file.`, label, 'tokenizer.json');
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new ModelFolderError(`tokenizer.json in ${label} could not be loaded: ${(e as Error).message}.`, label, 'tokenizer.json');
  }
  const vocabMap = tokenizer.get_vocab(true);
  let size = 0;
  for (const id of vocabMap.values()) size = Math.max(size, id + 1);
  const vocab: (string | null)[] = new Array(size).fill(null);
  for (const [token, id] of vocabMap) vocab[id] = token;

  const specialTokens = {} as Record<SpecialRole, string | null>;
  for (const role of SPECIAL_ROLES) specialTokens[role] = tokenContent(config[`${role}_token`] as TokenField);
  const eosTokenId = specialTokens.eos !== null ? (tokenizer.token_to_id(specialTokens.eos) ?? null) : null;
  const textCache = new Map<number, string>();
  return {
    label,
    vocab,
    specialTokens,
    eosTokenId,
    chatTemplate: chatTemplateOf(config),
    encode: (text, options = {}) => tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids,
    decode: (ids, options = {}) => tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false }),
    tokenText(id) {
      let t = textCache.get(id);
      if (t === undefined) {
        t = tokenizer.decode([id], { skip_special_tokens: false });
        textCache.set(id, t);
      }
      return t;
    },
  };
}

/** Loads tokenizer.json (required) and tokenizer_config.json (optional) from a model folder. */
export async function loadTokenizer(source: ModelSource): Promise<LabTokenizer> {
  if (!(await source.has('tokenizer.json'))) {
    throw new ModelFolderError(`${source.label} has no tokenizer.json: a model folder needs one (the Hugging Face tokenizers format).`, source.label, 'tokenizer.json');
  }
  const json = await readJson(source, 'tokenizer.json');
  const config = (await source.has('tokenizer_config.json')) ? await readJson<Record<string, unknown>>(source, 'tokenizer_config.json') : {};
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new ModelFolderError(`tokenizer_config.json in ${source.label} must hold a JSON object.`, source.label, 'tokenizer_config.json');
  }
  return tokenizerFromJson(json, config, source.label);
}

export interface TokenizerComparison {
  /** Reasons the pair cannot be distilled per token (empty when they share a tokenizer). */
  errors: string[];
  /** Differences that bias the KL without breaking it: special tokens, chat templates. */
  warnings: string[];
}

const show = (t: string | null) => (t === null ? '(none)' : JSON.stringify(t));

/** Compares a student's and a teacher's tokenizers, naming the first tokens that differ. */
export function compareTokenizers(student: LabTokenizer, teacher: LabTokenizer, maxListed = 5): TokenizerComparison {
  const errors: string[] = [];
  const warnings: string[] = [];
  const n = Math.min(student.vocab.length, teacher.vocab.length);
  const differing: string[] = [];
  for (let id = 0; id < n && differing.length < maxListed; id++) {
    if (student.vocab[id] !== teacher.vocab[id]) differing.push(`id ${id}: student ${show(student.vocab[id])}, teacher ${show(teacher.vocab[id])}`);
  }
  if (student.vocab.length !== teacher.vocab.length) {
    errors.push(
      `The student's tokenizer has ${student.vocab.length} tokens and the teacher's ${teacher.vocab.length}: per-token distillation needs one shared tokenizer.` +
        (differing.length ? ` First differing tokens: ${differing.join('; ')}.` : ` The first ${n} tokens agree; the longer one adds more.`),
    );
  } else if (differing.length) {
    errors.push(`The student's and the teacher's tokenizers map ids to different tokens: ${differing.join('; ')}. Per-token distillation needs one shared tokenizer.`);
  }
  for (const role of SPECIAL_ROLES) {
    if (student.specialTokens[role] !== teacher.specialTokens[role]) {
      warnings.push(`The ${role} token differs: student ${show(student.specialTokens[role])}, teacher ${show(teacher.specialTokens[role])}.`);
    }
  }
  if (student.chatTemplate !== teacher.chatTemplate) {
    warnings.push(
      student.chatTemplate && teacher.chatTemplate
        ? 'The chat templates differ: prompts formatted for one model look foreign to the other, which biases every token’s KL.'
        : `Only the ${student.chatTemplate ? 'student' : 'teacher'} has a chat template: prompts will be formatted for one model only, which biases every token’s KL.`,
    );
  }
  return { errors, warnings };
}

export class TokenizerMismatchError extends Error {
  constructor(readonly comparison: TokenizerComparison) {
    super(comparison.errors.join(' '));
    this.name = 'TokenizerMismatchError';
  }
}

/** Throws TokenizerMismatchError when the pair cannot share per-token scores; returns the warnings. */
export function assertSameTokenizer(student: LabTokenizer, teacher: LabTokenizer): string[] {
  const c = compareTokenizers(student, teacher);
  if (c.errors.length) throw new TokenizerMismatchError(c);
  return c.warnings;
}
