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
  /** The id text it cannot write becomes (the model's unk_token), or null when it has none (byte-level tokenizers write anything). */
  readonly unkTokenId: number | null;
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
    const named = t.filter((x): x is { name?: unknown; template?: unknown } => typeof x === 'object' && x !== null);
    const chosen = (named.find((x) => x.name === 'default') ?? named[0])?.template;
    return typeof chosen === 'string' ? chosen : null;
  }
  return null;
}

/**
 * Ids past this many times the tokens the file names (plus a margin for reserved ranges) are a
 * corrupt file: the id → token table is as long as the largest id, so one forged id would
 * allocate it by the gigabyte.
 */
function maxPlausibleId(tokens: number): number {
  return Math.max(2 * tokens, tokens + 65_536);
}

/**
 * The ids tokenizer.json declares (model.vocab as { token: id }, added_tokens[].id), counted, with
 * the largest, and the first one that is not a whole number ≥ 0 (as a phrase), if any. Unigram
 * vocabularies (a list; ids are positions) declare none.
 */
function declaredIds(json: Record<string, unknown>): { count: number; max: number; bad: string | null } {
  let count = 0;
  let max = -1;
  let bad: string | null = null;
  const see = (id: unknown, what: string) => {
    count++;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) bad ??= `${what} the id ${typeof id === 'number' ? String(id) : typeof id}`;
    else max = Math.max(max, id);
  };
  const model = json.model as Record<string, unknown> | null;
  const vocab = model && typeof model === 'object' ? model.vocab : undefined;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) see(id, `token ${JSON.stringify(token.slice(0, 40))}`);
  } else if (vocab !== undefined && vocab !== null && !Array.isArray(vocab)) {
    // (The library would walk a string as a table of one token per character: a megabyte of it takes seconds.)
    bad = `"model"."vocab" as a ${typeof vocab}, not a table of tokens (an object of ids, or a list)`;
  }
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens) see(t && typeof t === 'object' ? (t as { id?: unknown }).id : undefined, 'an added token');
  }
  return { count, max, bad };
}

/** A short text every tokenizer must encode and decode: a loaded one is tried on it at once. */
const PROBE_TEXT = 'Hello, world! 12+34=46';

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Builds a LabTokenizer from the parsed JSON of tokenizer.json and tokenizer_config.json. */
export function tokenizerFromJson(tokenizerJson: unknown, config: Record<string, unknown>, label: string): LabTokenizer {
  if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
    throw new ModelFolderError(`tokenizer.json in ${label} has no "model" section: it is not a Hugging Face tokenizer file.`, label, 'tokenizer.json');
  }
  const fail = (detail: string, file = 'tokenizer.json'): never => {
    throw new ModelFolderError(`${file} in ${label} ${detail}`, label, file);
  };
  // The library sizes tables by the largest id it is given: forged ids are refused before it sees them.
  const declared = declaredIds(tokenizerJson as Record<string, unknown>);
  if (declared.bad !== null) fail(`gives ${declared.bad}: a vocabulary maps tokens to ids, whole numbers from 0 (a corrupt file).`);
  if (declared.max + 1 > maxPlausibleId(declared.count)) {
    fail(`gives a token the id ${declared.max} but names only ${declared.count} tokens: ids must number the tokens from 0 without vast gaps (a corrupt file).`);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new ModelFolderError(`tokenizer.json in ${label} could not be loaded: ${(e as Error).message}.`, label, 'tokenizer.json');
  }
  let vocabMap: Map<string, number>;
  try {
    vocabMap = tokenizer.get_vocab(true);
  } catch (e) {
    return fail(`could not be loaded: its vocabulary cannot be read (${reason(e)}).`);
  }
  let size = 0;
  for (const [token, id] of vocabMap) {
    if (!Number.isSafeInteger(id) || id < 0) fail(`gives token ${JSON.stringify(token.slice(0, 40))} the id ${String(id)}: ids must be whole numbers from 0 (a corrupt file).`);
    size = Math.max(size, id + 1);
  }
  if (size > maxPlausibleId(vocabMap.size)) {
    fail(`gives a token the id ${size - 1} but names only ${vocabMap.size} tokens: ids must number the tokens from 0 without vast gaps (a corrupt file).`);
  }
  const vocab: (string | null)[] = new Array(size).fill(null);
  for (const [token, id] of vocabMap) vocab[id] = token;
  // The library checks the file's parts lazily (a pre-tokenizer's options are read on the first
  // encode): one encode and decode now turns a broken part into this sentence, not a TypeError later.
  try {
    const ids = tokenizer.encode(PROBE_TEXT, { add_special_tokens: true }).ids.filter((id) => Number.isInteger(id));
    // (A vocabulary without the probe's characters and without an unknown token gives no ids: decode one of its own.)
    tokenizer.decode(ids.length ? ids : [vocabMap.values().next().value ?? 0], { skip_special_tokens: false });
  } catch (e) {
    fail(`loads but cannot encode and decode text (${reason(e)}): the file is corrupt or uses a part the tokenizers library does not support.`);
  }

  const specialTokens = {} as Record<SpecialRole, string | null>;
  for (const role of SPECIAL_ROLES) specialTokens[role] = tokenContent(config[`${role}_token`] as TokenField);
  const eosTokenId = specialTokens.eos !== null ? (tokenizer.token_to_id(specialTokens.eos) ?? null) : null;
  const textCache = new Map<number, string>();
  return {
    label,
    vocab,
    specialTokens,
    eosTokenId,
    unkTokenId: unkIdOf(tokenizerJson as Record<string, unknown>, specialTokens.unk, tokenizer),
    chatTemplate: chatTemplateOf(config),
    encode(text, options = {}) {
      try {
        return tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
      } catch (e) {
        return fail(`could not encode a text of ${text.length} characters (${reason(e)}).`);
      }
    },
    decode(ids, options = {}) {
      // The library refuses an empty list; an empty completion reads as empty text.
      if (ids.length === 0) return '';
      try {
        return tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
      } catch (e) {
        return fail(`could not decode ${ids.length} token ids (${reason(e)}).`);
      }
    },
    tokenText(id) {
      let t = textCache.get(id);
      if (t === undefined) {
        try {
          t = tokenizer.decode([id], { skip_special_tokens: false });
        } catch (e) {
          return fail(`could not decode token id ${id} (${reason(e)}).`);
        }
        textCache.set(id, t);
      }
      return t;
    },
  };
}

/**
 * The unknown token's id: the model section's unk_token (WordLevel, WordPiece, BPE) or unk_id
 * (Unigram), else tokenizer_config.json's unk_token; null when none of them names a known token.
 */
function unkIdOf(json: Record<string, unknown>, configUnk: string | null, tokenizer: Tokenizer): number | null {
  const model = (json.model ?? {}) as Record<string, unknown>;
  if (typeof model.unk_id === 'number' && Number.isInteger(model.unk_id) && model.unk_id >= 0) return model.unk_id;
  const text = typeof model.unk_token === 'string' ? model.unk_token : configUnk;
  return text === null ? null : (tokenizer.token_to_id(text) ?? null);
}

/** Text a tokenizer can only write as its unknown token: scoring it would score that token, not the text. */
export class UnwritableTextError extends Error {}

/**
 * The characters of `text` the tokenizer has no token for, each once, in order of appearance:
 * those it writes only as its unknown token, and those the tokenizers library gives no id at all
 * (a WordLevel vocabulary answers an unknown character with an undefined id even when it names an
 * unk_token). Each character is encoded alone, so the unknown token's own text written literally
 * (an added token) is not one.
 */
export function unwritableCharacters(tok: LabTokenizer, text: string): string[] {
  const unk = tok.unkTokenId;
  const unwritable = (ids: readonly number[]) => ids.some((id) => id === unk || !Number.isInteger(id));
  if (!unwritable(tok.encode(text, { addSpecialTokens: false }))) return [];
  const found: string[] = [];
  for (const c of new Set(Array.from(text))) if (unwritable(tok.encode(c, { addSpecialTokens: false }))) found.push(c);
  return found;
}

/** Refuses `text` (named `what`: "the prompt", "the completion") when the tokenizer has no token for some of its characters. */
export function assertWritable(tok: LabTokenizer, text: string, what: string): void {
  const bad = unwritableCharacters(tok, text);
  if (bad.length === 0) return;
  const shown = bad.slice(0, 10).map((c) => JSON.stringify(c)).join(', ') + (bad.length > 10 ? ` and ${bad.length - 10} more` : '');
  throw new UnwritableTextError(
    `The student's tokenizer (${tok.label}) has no token for ${shown} in ${what}: scoring would score its unknown token, not the text. Remove or replace ${bad.length === 1 ? 'it' : 'them'} and score again.`,
  );
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
