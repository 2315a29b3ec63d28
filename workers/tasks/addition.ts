/**
 * The built-in task: multi-digit addition, with a verifiable answer and no network.
 *
 *   prompt      "Q: 347+589= A: "        ("Q:   7+ 58= A: ": operands right-aligned, see below)
 *   completion  "639<|endoftext|>"        (default format 'reversed': answer digits units first)
 *   answer      "936"                     (what people are shown: displayAnswer / verdict.shown)
 *
 * Formats (`AdditionFormat`; the prompt is the same in all three, only the completion differs):
 * - 'plain'      "936"       the answer as written on paper, most significant digit first.
 * - 'reversed'   "639"       the answer's digits least significant first.           (default)
 * - 'scratchpad' "6c3c9."    units first, each digit followed by its carry-out mark: 'c' when
 *                            that column carries into the next, '.' when it does not.
 * Every completion ends with <|endoftext|> (id 0). People never have to read reversed digits:
 * `displayAnswer` and the verifier's `shown` give the answer in the usual order, and
 * `completionLayout` maps every completion token to the column (place value) it belongs to.
 *
 * Why this format. The models trained on this task are tiny GPT-2s (~100K parameters) trained on
 * 2 CPU cores, with a budget of a few hundred thousand tokens. Two choices make that enough:
 * 1. Units first ('reversed'). In 'plain' order the first digit written depends on every carry
 *    below it, to be resolved in one forward pass before anything is written. Units first, each
 *    digit depends on two operand digits and the carry into its column, which is already decided
 *    by what the model wrote: carry into column i = 1 exactly when a[i-1] + b[i-1] > s[i-1]
 *    (s[i-1] = the digit just written). (Lee et al. 2023, "Teaching Arithmetic to Small
 *    Transformers", report the same: reversed output learns from far fewer examples.)
 * 2. Right-aligned operands. Each operand is padded with spaces to the width of the digit range
 *    (digits[1]), so every prompt has one length and the digit worth 10^i always sits at the same
 *    position: the model finds "the tens digit of b" by position alone. Without it, operands of
 *    1 to 3 digits move the digits around and the model must first learn where each number ends.
 * Measured (a GPT-2 of 2 layers, width 64, 4 heads, 104K parameters, in a float32 NumPy replica
 * of the lab's model; AdamW 3e-3 with a cosine schedule over the run, batch 32; cross-entropy on
 * the completion; greedy exact match on 500 held-out problems of digits [1, 3]; tokens counted
 * over whole sequences, prompt included; 3 seeds unless noted):
 *   aligned, 'reversed'     300K tokens: 88-99%;  375K: 97-99%;  450K: 100%   (the default)
 *   aligned, 'scratchpad'   225K tokens: 88-99%;  300K: ≥99%;    375K: 100%
 *   aligned, 'plain'        1.2M tokens: 9% (1 seed)
 *   unaligned, 'reversed'   1.2M tokens: 8%, 32% (2 seeds)
 *   unaligned, 'plain'      1.2M tokens: 45%;   unaligned 'scratchpad' 1.2M tokens: 74% (1 seed)
 * 'scratchpad' spells each carry out as a token and learns a little faster per token, but its
 * answers are twice as long: twice the sampling steps per completion, which is what the lab pays
 * most for on a CPU. It is kept for demos where the carries should be tokens of their own (the
 * heatmap then shows a dropped carry as a penalised '.' where a 'c' belongs).
 *
 * Operands: each operand's length is drawn uniformly from digits = [min, max], then the operand
 * uniformly among numbers of that length (1 digit: 0..9; d > 1 digits: no leading zero).
 *
 * Train / eval split: a pair belongs to the held-out set when a fixed hash of the UNORDERED pair
 * {a, b} falls in 1/16 of its range (`isEvalProblem`). The split depends on nothing else (not the
 * seed, the count, the digit range or the format), so no held-out pair, nor its commuted twin
 * b + a, ever appears in any training stream.
 *
 * Verification (`verifyAddition`) is exact match on the completion's text, read up to the first
 * <|endoftext|> or newline; whatever follows the end of text is ignored (the sampler stops there).
 * A missing end of text is accepted by default, since callers usually decode with special tokens
 * dropped; `requireEos: true` makes it a failure. Before the end of text nothing is tolerated:
 * no spaces, no extra digits, no leading zeros, no trailing garbage: a model rewarded for "936 "
 * or "0936" would learn to write them. Malformed answers get a code and a sentence; the verifier
 * never throws.
 *
 * Tokenizer: one token per character (WordLevel over single characters, a Split pre-tokenizer
 * isolating each character, a Fuse decoder), <|endoftext|> at id 0 as BOS/EOS/pad, then the
 * characters of `ADDITION_CHARS`, then <unk> for any other character (so a typo in a typed prompt
 * shows up as <unk>, never as a silent end of text).
 */
import { Rng } from '../random/rng';

// ---------------------------------------------------------------------------------------------
// Vocabulary and tokenizer files.

export const ADDITION_EOS = '<|endoftext|>';
export const ADDITION_EOS_ID = 0;
export const ADDITION_UNK = '<unk>';
/** Carry marks of the 'scratchpad' format: the column carries into the next one, or it does not. */
export const CARRY_MARK = 'c';
export const NO_CARRY_MARK = '.';
/** Every character any format writes, in id order (ids 1..18). */
export const ADDITION_CHARS: readonly string[] = [...'0123456789', '+', '=', ' ', 'Q', 'A', ':', CARRY_MARK, NO_CARRY_MARK];
/** id → token: <|endoftext|> (0), the characters (1..18), <unk> (19). */
export const ADDITION_VOCAB: readonly string[] = [ADDITION_EOS, ...ADDITION_CHARS, ADDITION_UNK];
export const ADDITION_UNK_ID = ADDITION_VOCAB.length - 1;

/**
 * tokenizer.json (Hugging Face tokenizers format) of the character-level addition tokenizer, or
 * of a vocabulary that extends it (`vocabulary`: ADDITION_VOCAB followed by more characters, as the
 * subtraction task's '-' does; <|endoftext|> and <unk> keep their ids).
 */
export function additionTokenizerJson(vocabulary: readonly string[] = ADDITION_VOCAB): Record<string, unknown> {
  if (vocabulary.slice(0, ADDITION_VOCAB.length).join('\u0000') !== ADDITION_VOCAB.join('\u0000')) {
    throw new Error('A character vocabulary for the arithmetic tasks must start with the addition vocabulary, in its order.');
  }
  const vocab: Record<string, number> = {};
  vocabulary.forEach((token, id) => (vocab[token] = id));
  const added = (id: number) => ({ id, content: vocabulary[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(ADDITION_EOS_ID), added(ADDITION_UNK_ID)],
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: '.' }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: ADDITION_UNK },
  };
}

/** tokenizer_config.json: <|endoftext|> is BOS, EOS and padding; nothing is added when encoding. */
export function additionTokenizerConfig(modelMaxLength = 64): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: ADDITION_EOS,
    eos_token: ADDITION_EOS,
    pad_token: ADDITION_EOS,
    unk_token: ADDITION_UNK,
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
  };
}

/** tokenizer.json and tokenizer_config.json of the addition tokenizer, ready for a model folder. */
export function additionTokenizerFiles(options: { modelMaxLength?: number; vocabulary?: readonly string[] } = {}): Map<string, Uint8Array> {
  const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');
  return new Map([
    ['tokenizer.json', encode(additionTokenizerJson(options.vocabulary))],
    ['tokenizer_config.json', encode(additionTokenizerConfig(options.modelMaxLength))],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Problems.

export type AdditionFormat = 'plain' | 'reversed' | 'scratchpad';
export const ADDITION_FORMATS: readonly AdditionFormat[] = ['plain', 'reversed', 'scratchpad'];
export const DEFAULT_ADDITION_FORMAT: AdditionFormat = 'reversed';
/** Operand lengths of the built-in task: 1 to 3 digits. */
export const DEFAULT_ADDITION_DIGITS: readonly [number, number] = [1, 3];
/** The longest operand the generator writes (sums stay exact integers). */
export const MAX_ADDITION_DIGITS = 15;
/** The seed of the fixed held-out set. */
export const ADDITION_EVAL_SEED = 0x0add_e7a1;
/** 1 pair in EVAL_MODULUS (by hash) is held out. */
const EVAL_MODULUS = 16;

export type AdditionSplit = 'train' | 'eval';

export interface AdditionOptions {
  /** Operand lengths [min, max] in digits, 1 ≤ min ≤ max ≤ 15. Default [1, 3]. */
  digits?: readonly [number, number];
  /** How the completion writes the answer. Default 'reversed'. */
  format?: AdditionFormat;
}

export interface AdditionProblem {
  a: number;
  b: number;
  sum: number;
  /** "Q: 347+589= A: " */
  prompt: string;
  /** The answer as people read it: "936". */
  answer: string;
  /** What the model should write after the prompt, end of text included: "639<|endoftext|>". */
  completion: string;
  format: AdditionFormat;
  split: AdditionSplit;
}

export function checkOperand(x: number, name: string): void {
  if (!Number.isSafeInteger(x) || x < 0 || String(x).length > MAX_ADDITION_DIGITS) {
    throw new RangeError(`Operand ${name} must be an integer from 0 to ${MAX_ADDITION_DIGITS} digits, got ${x}.`);
  }
}

function checkFormat(format: unknown): asserts format is AdditionFormat {
  if (!ADDITION_FORMATS.includes(format as AdditionFormat)) {
    throw new RangeError(`Unknown addition format ${JSON.stringify(format)}: expected one of ${ADDITION_FORMATS.join(', ')}.`);
  }
}

export function checkDigits(digits: readonly [number, number]): void {
  const [min, max] = digits;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min || max > MAX_ADDITION_DIGITS) {
    throw new RangeError(`digits must be [min, max] with 1 ≤ min ≤ max ≤ ${MAX_ADDITION_DIGITS}, got [${min}, ${max}].`);
  }
}

export const reverse = (s: string) => [...s].reverse().join('');

/**
 * The prompt for a + b: "Q: 347+589= A: ". Each operand is right-aligned with spaces to the width
 * of the digit range's longest operand (digits[1]): "Q:   7+ 58= A: " for digits [1, 3], so every
 * prompt of a task has one length and a digit's position says its place value. Operands longer
 * than that are written whole.
 */
export function additionPrompt(a: number, b: number, options: AdditionOptions = {}): string {
  checkOperand(a, 'a');
  checkOperand(b, 'b');
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  checkDigits(digits);
  return `Q: ${String(a).padStart(digits[1])}+${String(b).padStart(digits[1])}= A: `;
}

/**
 * The answer's columns, units first: per column i (worth 10^i) its digit, whether a carry comes
 * into it and whether it carries out. The top column of a longer sum is the final carry itself.
 */
function columns(a: number, b: number): { digit: number; carryIn: boolean; carryOut: boolean }[] {
  const da = reverse(String(a));
  const db = reverse(String(b));
  const out: { digit: number; carryIn: boolean; carryOut: boolean }[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(da.length, db.length) || carry; i++) {
    const s = Number(da[i] ?? 0) + Number(db[i] ?? 0) + carry;
    out.push({ digit: s % 10, carryIn: carry === 1, carryOut: s >= 10 });
    carry = s >= 10 ? 1 : 0;
  }
  return out;
}

/** The completion's text for a + b in `format`, without the end of text: "639", "936", "6c3c9.". */
export function answerText(a: number, b: number, format: AdditionFormat = DEFAULT_ADDITION_FORMAT): string {
  checkOperand(a, 'a');
  checkOperand(b, 'b');
  checkFormat(format);
  const cols = columns(a, b);
  if (format === 'plain') return String(a + b);
  if (format === 'reversed') return cols.map((c) => c.digit).join('');
  return cols.map((c) => `${c.digit}${c.carryOut ? CARRY_MARK : NO_CARRY_MARK}`).join('');
}

/**
 * The answer digits that receive a carry, as places (0 = units, i = the digit worth 10^i), in
 * increasing order. 347 + 589 = 936 → [1, 2]: 7+9 carries into the tens, 4+8+1 into the hundreds.
 * 999 + 1 = 1000 → [1, 2, 3] (the leading 1 is the last carry itself). A digit written wrong at
 * one of these places is often a dropped carry.
 */
export function carryPositions(a: number, b: number): number[] {
  checkOperand(a, 'a');
  checkOperand(b, 'b');
  const places: number[] = [];
  columns(a, b).forEach((c, i) => c.carryIn && places.push(i));
  return places;
}

export interface CompletionSlot {
  /** The character (one token), or <|endoftext|>. */
  text: string;
  /** 'digit': an answer digit; 'carry-mark': a scratchpad 'c' / '.'; 'eos': the end of text. */
  role: 'digit' | 'carry-mark' | 'eos';
  /** The column it belongs to (0 = units); null for the end of text. */
  place: number | null;
  /** digit: a carry comes into its column; carry-mark: its column carries out; eos: false. */
  carry: boolean;
}

/**
 * The correct completion of a + b, token by token (one character is one token), each with the
 * column it belongs to: what the UI needs to say "this token is the hundreds digit, which
 * receives a carry" under a heatmap.
 */
export function completionLayout(a: number, b: number, format: AdditionFormat = DEFAULT_ADDITION_FORMAT): CompletionSlot[] {
  const text = answerText(a, b, format);
  const cols = columns(a, b);
  const slots: CompletionSlot[] = [];
  if (format === 'plain') {
    [...text].forEach((ch, j) => {
      const place = text.length - 1 - j;
      slots.push({ text: ch, role: 'digit', place, carry: cols[place].carryIn });
    });
  } else {
    cols.forEach((c, place) => {
      slots.push({ text: String(c.digit), role: 'digit', place, carry: c.carryIn });
      if (format === 'scratchpad') slots.push({ text: c.carryOut ? CARRY_MARK : NO_CARRY_MARK, role: 'carry-mark', place, carry: c.carryOut });
    });
  }
  slots.push({ text: ADDITION_EOS, role: 'eos', place: null, carry: false });
  return slots;
}

/** Tokens of the longest prompt + completion with operands of up to `digits[1]` digits. */
export function maxAdditionTokens(options: AdditionOptions = {}): number {
  const [, max] = options.digits ?? DEFAULT_ADDITION_DIGITS;
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  checkDigits(options.digits ?? DEFAULT_ADDITION_DIGITS);
  checkFormat(format);
  const prompt = 'Q: '.length + max + 1 + max + '= A: '.length;
  const answerDigits = max + 1;
  return prompt + (format === 'scratchpad' ? 2 * answerDigits : answerDigits) + 1;
}

// ---------------------------------------------------------------------------------------------
// The train / eval split.

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A fixed 32-bit hash of the unordered pair {a, b}. */
function pairHash(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  let h = 0x6a09e667;
  for (const x of [lo, hi]) {
    h = mix32(h ^ (x >>> 0));
    h = mix32((h + Math.floor(x / 4294967296)) | 0);
  }
  return h;
}

/** Whether a + b belongs to the held-out set (so does b + a). Fixed for all seeds, counts, formats. */
export function isEvalProblem(a: number, b: number): boolean {
  return pairHash(a, b) % EVAL_MODULUS === 0;
}

export function splitFor(problem: { a: number; b: number }): AdditionSplit {
  return isEvalProblem(problem.a, problem.b) ? 'eval' : 'train';
}

/** The problem a + b with these options (the digit range sets the prompt's alignment, the format the completion). */
export function additionProblem(a: number, b: number, options: AdditionOptions = {}): AdditionProblem {
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  const text = answerText(a, b, format);
  return { a, b, sum: a + b, prompt: additionPrompt(a, b, options), answer: String(a + b), completion: text + ADDITION_EOS, format, split: splitFor({ a, b }) };
}

// ---------------------------------------------------------------------------------------------
// Generators.

function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

function randomOperand(rng: Rng, [min, max]: readonly [number, number]): number {
  const length = min + randomInt(rng, max - min + 1);
  if (length === 1) return randomInt(rng, 10);
  let x = 1 + randomInt(rng, 9);
  for (let i = 1; i < length; i++) x = x * 10 + randomInt(rng, 10);
  return x;
}

/** Draws pairs from `rng` until one belongs to `split` ('any': the first). */
export function drawPair(rng: Rng, digits: readonly [number, number], split: AdditionSplit | 'any'): [number, number] {
  // A split holds 1/16 or 15/16 of the pairs (at least one pair whenever digits ≥ 1), so this ends.
  for (let attempt = 0; ; attempt++) {
    const a = randomOperand(rng, digits);
    const b = randomOperand(rng, digits);
    if (split === 'any' || splitFor({ a, b }) === split) return [a, b];
    if (attempt > 1_000_000) throw new Error(`No ${split} pair found with digits [${digits.join(', ')}].`);
  }
}

export interface AdditionProblemsOptions extends AdditionOptions {
  seed: number;
  count: number;
  /** Only pairs of this split ('any': both). Default 'any'. */
  split?: AdditionSplit | 'any';
  /** No pair twice (a + b and b + a count as different problems). Default false. */
  distinct?: boolean;
}

/**
 * `count` problems drawn from one seeded stream: the same options give the same problems on every
 * platform, and a shorter count gives a prefix of a longer one.
 */
export function additionProblems(options: AdditionProblemsOptions): AdditionProblem[] {
  const { seed, count, split = 'any', distinct = false } = options;
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  checkDigits(digits);
  checkFormat(format);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}.`);
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const out: AdditionProblem[] = [];
  const maxAttempts = 1000 + 100 * count;
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= maxAttempts) {
      throw new RangeError(`Only ${out.length} distinct ${split} problems found with digits [${digits.join(', ')}]; asked for ${count}.`);
    }
    const [a, b] = drawPair(rng, digits, split);
    if (distinct) {
      const key = `${a}+${b}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    out.push(additionProblem(a, b, { digits, format }));
  }
  return out;
}

/**
 * The `index`-th problem of the training stream `seed`: depends on (seed, index) only, so a run
 * can resume anywhere in its stream. Never a held-out pair.
 */
export function trainProblem(seed: number, index: number, options: AdditionOptions = {}): AdditionProblem {
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  checkDigits(digits);
  checkFormat(format);
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`index must be a non-negative integer, got ${index}.`);
  const [a, b] = drawPair(Rng.forStream(seed, index), digits, 'train');
  return additionProblem(a, b, { digits, format });
}

/** Problems 0..count−1 of the training stream `seed` (repeats possible, held-out pairs never). */
export function trainProblems(seed: number, count: number, options: AdditionOptions = {}): AdditionProblem[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}.`);
  return Array.from({ length: count }, (_, i) => trainProblem(seed, i, options));
}

/**
 * The fixed held-out set: `count` distinct held-out problems (the first `count` of one fixed
 * sequence, so evalProblems(100) is a prefix of evalProblems(1000)). Throws a RangeError when the
 * digit range has fewer held-out pairs than asked for (e.g. 1-digit operands: a handful).
 */
export function evalProblems(count: number, options: AdditionOptions = {}): AdditionProblem[] {
  return additionProblems({ ...options, seed: ADDITION_EVAL_SEED, count, split: 'eval', distinct: true });
}

// ---------------------------------------------------------------------------------------------
// Reading and verifying answers.

/** Reads "Q: 347+589= A: " (spaces around the parts optional, leading zeros allowed); null if it is not one. */
export function parseAdditionPrompt(prompt: string): { a: number; b: number } | null {
  if (typeof prompt !== 'string') return null;
  const m = /^\s*Q:\s*(\d{1,15})\s*\+\s*(\d{1,15})\s*=\s*A:\s*$/.exec(prompt);
  return m ? { a: Number(m[1]), b: Number(m[2]) } : null;
}

/** The completion up to its end (<|endoftext|> or a newline), and whether it had one. */
export function answerSegment(completion: string): { segment: string; ended: boolean } {
  const cuts = [completion.indexOf(ADDITION_EOS), completion.indexOf('\n')].filter((i) => i >= 0);
  if (!cuts.length) return { segment: completion, ended: false };
  return { segment: completion.slice(0, Math.min(...cuts)), ended: true };
}

type Parsed =
  | { ok: true; digits: string; marks: string | null }
  | { ok: false; code: 'empty' | 'not-digits' | 'malformed'; sentence: string };

/** Reads a completion's answer segment in `format`: its digits in the usual order (and scratchpad marks). */
function parseSegment(segment: string, format: AdditionFormat): Parsed {
  if (segment === '') return { ok: false, code: 'empty', sentence: 'The completion is empty: no answer before the end of text.' };
  if (format === 'scratchpad') {
    if (!/^(?:\d[c.])+$/.test(segment)) {
      return {
        ok: false,
        code: 'malformed',
        sentence: `${JSON.stringify(segment)} is not in the scratchpad form: each answer digit, units first, followed by '${CARRY_MARK}' (carries) or '${NO_CARRY_MARK}' (does not).`,
      };
    }
    const pairs = segment.match(/\d[c.]/g) as string[];
    return { ok: true, digits: pairs.map((p) => p[0]).reverse().join(''), marks: pairs.map((p) => p[1]).join('') };
  }
  const bad = [...segment].find((ch) => ch < '0' || ch > '9');
  if (bad !== undefined) return { ok: false, code: 'not-digits', sentence: `${JSON.stringify(segment)} has ${JSON.stringify(bad)} where only digits belong.` };
  return { ok: true, digits: format === 'reversed' ? reverse(segment) : segment, marks: null };
}

/**
 * The answer a completion gives, as people read it (most significant digit first): "639" in the
 * reversed format reads "936", "6c3c9." in the scratchpad format reads "936". A completion that is
 * not in the format is returned as written (up to its end of text).
 */
export function displayAnswer(completionText: string, format: AdditionFormat = DEFAULT_ADDITION_FORMAT): string {
  const { segment } = answerSegment(String(completionText ?? ''));
  if (!ADDITION_FORMATS.includes(format)) return segment;
  const parsed = parseSegment(segment, format);
  return parsed.ok ? parsed.digits : segment;
}

export type AdditionVerdictCode =
  | 'bad-prompt' // the prompt is not "Q: a+b= A: "
  | 'bad-format' // the format option is not one of ADDITION_FORMATS
  | 'empty' // nothing before the end of text
  | 'not-digits' // plain / reversed: something other than digits
  | 'malformed' // scratchpad: not digit + carry mark, repeated
  | 'leading-zero' // the right number, written with leading zeros
  | 'too-long' // more digits than the answer has
  | 'wrong' // a well-formed, wrong number
  | 'wrong-carry' // scratchpad: the right digits with a wrong carry mark
  | 'no-eos' // right, but without the end of text, when requireEos is set
  | 'internal'; // the verifier itself failed (a bug): reported, never thrown

export interface AdditionVerdict {
  correct: boolean;
  /** a + b; NaN when the prompt could not be read. */
  expected: number;
  /** The number the completion gives; null when it gives none (or one too long to hold exactly). */
  got: number | null;
  /** The completion's answer as people read it (see displayAnswer). */
  shown: string;
  /** Whether the completion ended (<|endoftext|> or a newline). */
  ended: boolean;
  /** Why it is not correct: a code and a sentence. Absent when correct. */
  code?: AdditionVerdictCode;
  reason?: string;
}

export interface VerifyOptions {
  format?: AdditionFormat;
  /** A completion without <|endoftext|> (or a newline) is wrong. Default false. */
  requireEos?: boolean;
}

function verdictOf(prompt: string, completionText: string, options: VerifyOptions): AdditionVerdict {
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  const text = typeof completionText === 'string' ? completionText : String(completionText ?? '');
  const { segment, ended } = answerSegment(text);
  const fail = (expected: number, got: number | null, shown: string, code: AdditionVerdictCode, reason: string): AdditionVerdict => ({
    correct: false, expected, got, shown, ended, code, reason,
  });
  if (!ADDITION_FORMATS.includes(format)) {
    return fail(NaN, null, segment, 'bad-format', `Unknown addition format ${JSON.stringify(format)}: expected one of ${ADDITION_FORMATS.join(', ')}.`);
  }
  const operands = parseAdditionPrompt(prompt);
  if (!operands) return fail(NaN, null, segment, 'bad-prompt', `${JSON.stringify(prompt)} is not an addition prompt like "Q: 347+589= A: ".`);
  const { a, b } = operands;
  const expected = a + b;
  const parsed = parseSegment(segment, format);
  if (!parsed.ok) return fail(expected, null, segment, parsed.code, parsed.sentence);

  const { digits } = parsed;
  const got = digits.length <= 16 && Number.isSafeInteger(Number(digits)) ? Number(digits) : null;
  const want = String(expected);
  if (digits !== want) {
    if (got === expected) return fail(expected, got, digits, 'leading-zero', `${digits} is ${expected} written with leading zeros.`);
    if (digits.length > want.length) return fail(expected, got, digits, 'too-long', `${digits} has ${digits.length} digits; ${a}+${b} = ${want} has ${want.length}.`);
    return fail(expected, got, digits, 'wrong', `${digits} is not ${a}+${b} = ${want}.`);
  }
  if (format === 'scratchpad') {
    const marks = answerText(a, b, 'scratchpad').replace(/\d/g, '');
    const i = [...marks].findIndex((m, j) => parsed.marks?.[j] !== m);
    if (i >= 0) {
      const sentence = marks[i] === CARRY_MARK ? 'carries into the next column' : 'does not carry';
      return fail(expected, got, digits, 'wrong-carry', `The digits are right but column ${i} (worth 10^${i}) ${sentence}: its mark should be '${marks[i]}'.`);
    }
  }
  if (options.requireEos && !ended) return fail(expected, got, digits, 'no-eos', `${digits} is right but the completion never ends (no ${ADDITION_EOS}).`);
  return { correct: true, expected, got, shown: digits, ended };
}

/**
 * Checks a completion (decoded text, with or without <|endoftext|>) against the prompt's sum, in
 * `format` (default 'reversed'). Exact match, read up to the end of text; see the module header
 * for what is tolerated. Never throws: every failure is a verdict with a code and a reason.
 */
export function verifyAddition(prompt: string, completionText: string, options: VerifyOptions = {}): AdditionVerdict {
  try {
    return verdictOf(prompt, completionText, options ?? {});
  } catch (e) {
    return { correct: false, expected: NaN, got: null, shown: '', ended: false, code: 'internal', reason: `The verifier failed: ${String(e)}.` };
  }
}

// ---------------------------------------------------------------------------------------------
// The task as a distillation run sees it.

/**
 * The addition task in the shape a distillation run asks of a task: an endless seeded stream of
 * training prompts, a fixed held-out set, and the verifier (its `reason` is the verdict's sentence).
 */
export function additionTask(options: AdditionOptions = {}) {
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  checkDigits(digits);
  checkFormat(format);
  const settings: Required<AdditionOptions> = { digits, format };
  let evalCache: AdditionProblem[] = [];
  return {
    name: 'addition',
    ...settings,
    trainPrompt: (seed: number, index: number): string => trainProblem(seed, index, settings).prompt,
    evalPrompts(count: number): string[] {
      if (evalCache.length < count) evalCache = evalProblems(count, settings);
      return evalCache.slice(0, count).map((p) => p.prompt);
    },
    verify(prompt: string, completion: string): { correct: boolean; reason?: string } {
      const v = verifyAddition(prompt, completion, { format });
      return v.correct ? { correct: true } : { correct: false, reason: v.reason };
    },
    /** The correct completion of `prompt` in this task's format, without the end of text ("639" for 347+589); '' for a prompt that is not an addition prompt. */
    expected(prompt: string): string {
      const operands = parseAdditionPrompt(prompt);
      return operands ? answerText(operands.a, operands.b, format) : '';
    },
    /** The answer as people read it: "639" (units first) → "936"; a completion that does not parse, as written. */
    readable: (completion: string): string => displayAnswer(completion, format),
    formatNote: additionFormatNote(settings),
  };
}

/** How the task's prompts and answers are written, for people (Inspect shows it beside a drawn prompt). */
export function additionFormatNote(options: AdditionOptions = {}): string {
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  const format = options.format ?? DEFAULT_ADDITION_FORMAT;
  const [a, b] = digits[1] >= 3 ? [347, 589] : [7, 8];
  const prompt = `Prompts are written ${JSON.stringify(additionPrompt(a, b, { digits }))}, each number right-aligned to ${digits[1]} character${digits[1] === 1 ? '' : 's'}.`;
  const example = `${a}+${b} = ${a + b} is written ${JSON.stringify(answerText(a, b, format))}`;
  if (format === 'plain') return `${prompt} The answer is written as usual, most significant digit first, then the end of text.`;
  if (format === 'reversed') return `${prompt} The answer is written units first, then the end of text: ${example}; answers are shown here in the usual order too.`;
  return `${prompt} The answer is written units first, each digit followed by 'c' when its column carries into the next and '.' when it does not: ${example}.`;
}
