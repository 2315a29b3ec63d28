/**
 * The reasoning task: addition with the working written out, column by column, as a person does
 * it on paper, then the answer in the usual order.
 *
 *   prompt      "Q: 347+589= A: "
 *   completion  "7+9+0=16 4+8+1=13 3+5+1=09 so 936<|endoftext|>"
 *   answer      "936"
 *
 * Each column, units first, is written "a+b+c=ts": the column's two digits, the carry coming in
 * (c, 0 or 1: the tens digit t of the column before), and the column's sum as two digits: t is
 * the carry going out, s the digit of the answer. After the last column, " so " and the answer as
 * it is read (most significant digit first, no leading zeros: the last column's carry, if any,
 * then the s digits from the top column down). 7+58 with 3 columns: "7+8+0=15 0+5+1=06
 * 0+0+0=00 so 65".
 *
 * Why this format (for the heatmap, and for a model of ~100K parameters trained on 2 CPU cores):
 * - Long enough to show where a mistake starts and what follows: 3 columns make 26 tokens of
 *   working and 4 to 8 of answer (33 or 34 tokens with the end of text), against the plain
 *   format's 4 or 5. A dropped carry is a token of its own (the c of the next column, written 0
 *   where 1 belongs), and the tokens after it show the model carrying its mistake on.
 * - Fixed width: every column is 8 characters and a space, whatever its values (the carry-in is
 *   written even when 0, the sum always has two digits: "09", not "9"), so the k-th character of
 *   a column always sits at the same distance from the operand digits it copies, and from the
 *   column before whose carry it reads. A tiny model finds each thing by position alone (the
 *   same reason the addition task right-aligns its operands); variable-width columns would make
 *   it first find where each column starts.
 * - The order a person reads: the working goes the way addition is done by hand (units column
 *   first, carrying to the left), and the answer is then written the usual way round, so nobody
 *   has to be told that digits are reversed. The answer is copied from the working, so it is
 *   easy for the model once the working is right.
 * - Every prompt has digits[1] columns (3 by default): shorter operands are padded with 0 in the
 *   working (the prompt right-aligns them with spaces, like the addition task's), so every
 *   completion of a task has the same layout up to the answer.
 * The default digit range is [3, 3]: every column is a real column (no "0+0+0=00" padding) and
 * about half of them carry, so most answers have a carry to get right or to drop.
 *
 * Vocabulary: the addition task's (ids 0..19, one character per token, <|endoftext|> at id 0)
 * followed by 's' and 'o' (ids 20, 21) for " so " (WORKED_VOCAB). Everything else is addition's:
 * the prompt, the train / held-out split by a hash of the unordered pair (isEvalProblem), the
 * generators (drawPair), and exact-match verification up to the end of text, which never throws.
 * The verifier checks the whole completion, working included: a right answer reached by wrong
 * working is wrong, since the working is what the model is taught and what the heatmap shows.
 */
import { Rng } from '../random/rng';
import {
  ADDITION_EOS,
  ADDITION_VOCAB,
  additionPrompt,
  answerSegment,
  checkDigits,
  checkOperand,
  drawPair,
  isEvalProblem,
  parseAdditionPrompt,
  reverse,
  type AdditionSplit,
} from './addition';

export const WORKED_TASK_NAME = 'worked-addition';
/** The addition vocabulary, then 's' (id 20) and 'o' (id 21) for " so ". */
export const WORKED_VOCAB: readonly string[] = [...ADDITION_VOCAB, 's', 'o'];
/** Operand lengths of the built-in reasoning task: 3 digits each. */
export const DEFAULT_WORKED_DIGITS: readonly [number, number] = [3, 3];
/** The seed of the fixed held-out sequence (its own, so it differs from addition's). */
export const WORKED_EVAL_SEED = 0x0c01_e7a1;
/** Between the working and the answer. */
export const WORKED_SO = ' so ';

export interface WorkedOptions {
  /** Operand lengths [min, max] in digits. Default [3, 3]. The working has max(digits[1], the operands' lengths) columns. */
  digits?: readonly [number, number];
}

export interface WorkedColumn {
  a: number;
  b: number;
  /** The carry coming in (0 or 1). */
  carryIn: number;
  /** a + b + carryIn, 0..19: its tens digit is the carry going out, its units the answer's digit. */
  sum: number;
}

export interface WorkedProblem {
  a: number;
  b: number;
  sum: number;
  prompt: string;
  /** The answer as people read it: "936". */
  answer: string;
  /** What the model should write, end of text included. */
  completion: string;
  split: AdditionSplit;
}

function digitsOf(options: WorkedOptions): readonly [number, number] {
  const digits = options.digits ?? DEFAULT_WORKED_DIGITS;
  checkDigits(digits);
  return digits;
}

/** The prompt for a + b: the addition task's ("Q: 347+589= A: ", operands right-aligned to digits[1]). */
export function workedPrompt(a: number, b: number, options: WorkedOptions = {}): string {
  return additionPrompt(a, b, { digits: digitsOf(options) });
}

/** The columns of a + b, units first: max(digits[1], the operands' lengths) of them. */
export function workedColumns(a: number, b: number, options: WorkedOptions = {}): WorkedColumn[] {
  checkOperand(a, 'a');
  checkOperand(b, 'b');
  const da = reverse(String(a));
  const db = reverse(String(b));
  const n = Math.max(digitsOf(options)[1], da.length, db.length);
  const out: WorkedColumn[] = [];
  let carry = 0;
  for (let i = 0; i < n; i++) {
    const x = Number(da[i] ?? 0);
    const y = Number(db[i] ?? 0);
    out.push({ a: x, b: y, carryIn: carry, sum: x + y + carry });
    carry = x + y + carry >= 10 ? 1 : 0;
  }
  return out;
}

/** One column as written: "4+8+1=13". */
export const columnText = (c: WorkedColumn): string => `${c.a}+${c.b}+${c.carryIn}=${String(c.sum).padStart(2, '0')}`;

/** The correct completion of a + b without the end of text: "7+9+0=16 4+8+1=13 3+5+1=09 so 936". */
export function workedAnswerText(a: number, b: number, options: WorkedOptions = {}): string {
  return workedColumns(a, b, options).map(columnText).join(' ') + WORKED_SO + String(a + b);
}

export function workedProblem(a: number, b: number, options: WorkedOptions = {}): WorkedProblem {
  return {
    a, b, sum: a + b, prompt: workedPrompt(a, b, options), answer: String(a + b),
    completion: workedAnswerText(a, b, options) + ADDITION_EOS, split: isEvalProblem(a, b) ? 'eval' : 'train',
  };
}

/** New tokens the longest completion needs: digits[1] columns of 9 characters (the last without its space), " so ", the answer, the end of text. */
export function maxWorkedTokens(options: WorkedOptions = {}): number {
  const [, max] = digitsOf(options);
  return max * 9 - 1 + WORKED_SO.length + (max + 1) + 1;
}

/** The `index`-th problem of training stream `seed`: depends on (seed, index) only; never held out. */
export function workedTrainProblem(seed: number, index: number, options: WorkedOptions = {}): WorkedProblem {
  const digits = digitsOf(options);
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`index must be a non-negative integer, got ${index}.`);
  // A stream of its own (seed offset), so the addition and worked streams of one seed differ.
  return workedProblem(...drawPair(Rng.forStream(seed ^ 0xc01, index), digits, 'train'), { digits });
}

/** The fixed held-out set: the first `count` distinct held-out problems of one fixed sequence (prefix-stable). */
export function workedEvalProblems(count: number, options: WorkedOptions = {}): WorkedProblem[] {
  const digits = digitsOf(options);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}.`);
  const rng = new Rng(WORKED_EVAL_SEED);
  const seen = new Set<string>();
  const out: WorkedProblem[] = [];
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= 1000 + 100 * count) throw new RangeError(`Only ${out.length} distinct held-out problems with digits [${digits.join(', ')}]; asked for ${count}.`);
    const [a, b] = drawPair(rng, digits, 'eval');
    if (seen.has(`${a}+${b}`)) continue;
    seen.add(`${a}+${b}`);
    out.push(workedProblem(a, b, { digits }));
  }
  return out;
}

/** A completion as tokens: <|endoftext|> is one, every other character one. */
function tokensOf(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    if (text.startsWith(ADDITION_EOS, i)) {
      out.push(ADDITION_EOS);
      i += ADDITION_EOS.length;
    } else {
      const ch = String.fromCodePoint(text.codePointAt(i)!);
      out.push(ch);
      i += ch.length;
    }
  }
  return out;
}

/**
 * The index of the first token (one token per character, <|endoftext|> one token) where
 * `completion` departs from the correct completion of `prompt` (end of text included), or null
 * when it does not: the completion is right (with or without its end of text), or the prompt is
 * not an addition prompt (nothing to compare with). A completion that stops early (it ends, or
 * it is a strict prefix) departs where its end of text is, or would be.
 */
export function firstErrorIndex(prompt: string, completion: string, options: WorkedOptions = {}): number | null {
  const operands = parseAdditionPrompt(prompt);
  if (!operands) return null;
  const want = [...workedAnswerText(operands.a, operands.b, options), ADDITION_EOS];
  const got = tokensOf(String(completion ?? ''));
  for (let i = 0; i < want.length; i++) {
    if (i >= got.length) return i === want.length - 1 ? null : i; // the end of text dropped when decoding: still right
    if (got[i] !== want[i]) return i;
  }
  return null;
}

export type WorkedVerdictCode = 'bad-prompt' | 'empty' | 'wrong-step' | 'wrong-answer' | 'too-long' | 'too-short' | 'internal';

export interface WorkedVerdict {
  correct: boolean;
  /** a + b; NaN when the prompt could not be read. */
  expected: number;
  /** The correct completion (without the end of text); '' when the prompt could not be read. */
  expectedText: string;
  /** The completion up to its end of text. */
  shown: string;
  /** The first token that departs (firstErrorIndex), or null when correct. */
  firstError: number | null;
  code?: WorkedVerdictCode;
  reason?: string;
}

const PLACE = ['units', 'tens', 'hundreds', 'thousands'];

function workedVerdict(prompt: string, completion: string, options: WorkedOptions): WorkedVerdict {
  const text = typeof completion === 'string' ? completion : String(completion ?? '');
  const { segment } = answerSegment(text);
  const operands = parseAdditionPrompt(prompt);
  const fail = (expected: number, expectedText: string, firstError: number | null, code: WorkedVerdictCode, reason: string): WorkedVerdict =>
    ({ correct: false, expected, expectedText, shown: segment, firstError, code, reason });
  if (!operands) return fail(NaN, '', null, 'bad-prompt', `${JSON.stringify(prompt)} is not an addition prompt like "Q: 347+589= A: ".`);
  const { a, b } = operands;
  const want = workedAnswerText(a, b, options);
  if (segment === want) return { correct: true, expected: a + b, expectedText: want, shown: segment, firstError: null };
  // Compare the answer segment alone (a newline ends it as <|endoftext|> does).
  const first = firstErrorIndex(prompt, segment + ADDITION_EOS, options) ?? 0;
  if (segment === '') return fail(a + b, want, 0, 'empty', 'The completion is empty: no working and no answer before the end of text.');
  if (want.startsWith(segment)) return fail(a + b, want, first, 'too-short', `The completion stops after ${JSON.stringify(segment)}; it should go on to ${JSON.stringify(want)}.`);
  if (segment.startsWith(want)) return fail(a + b, want, first, 'too-long', `The completion goes on after the answer: ${JSON.stringify(segment.slice(want.length))} follows ${JSON.stringify(want)}.`);
  const columns = workedColumns(a, b, options);
  const working = columns.length * 9 - 1;
  if (first < working) {
    const k = Math.floor(first / 9);
    if (first % 9 === 8) return fail(a + b, want, first, 'wrong-step', `A space belongs after column ${k + 1}; the completion has ${JSON.stringify(segment[first])}.`);
    const place = PLACE[k] ?? `10^${k}`;
    return fail(a + b, want, first, 'wrong-step', `Column ${k + 1} (the ${place}) should read ${columnText(columns[k])}; the completion has ${JSON.stringify(segment.slice(k * 9, k * 9 + 8))}.`);
  }
  const rest = segment.slice(working);
  const said = rest.startsWith(WORKED_SO) ? `says ${JSON.stringify(rest.slice(WORKED_SO.length))}` : `has ${JSON.stringify(rest)} where ${JSON.stringify(WORKED_SO + (a + b))} belongs`;
  return fail(a + b, want, first, 'wrong-answer', `The working is right but the answer should be ${a + b}; the completion ${said}.`);
}

/** Checks a completion (decoded text, with or without <|endoftext|>) against the worked answer of the prompt. Never throws. */
export function verifyWorked(prompt: string, completion: string, options: WorkedOptions = {}): WorkedVerdict {
  try {
    return workedVerdict(prompt, completion, options ?? {});
  } catch (e) {
    return { correct: false, expected: NaN, expectedText: '', shown: '', firstError: null, code: 'internal', reason: `The verifier failed: ${String(e)}.` };
  }
}

/** The reasoning task in the shape a distillation run asks of a task, with `expected` (the correct completion) for Inspect's verdict. */
export function workedAdditionTask(options: WorkedOptions = {}) {
  const digits = digitsOf(options);
  let evalCache: WorkedProblem[] = [];
  return {
    name: WORKED_TASK_NAME,
    digits,
    trainPrompt: (seed: number, index: number): string => workedTrainProblem(seed, index, { digits }).prompt,
    evalPrompts(count: number): string[] {
      if (evalCache.length < count) evalCache = workedEvalProblems(count, { digits });
      return evalCache.slice(0, count).map((p) => p.prompt);
    },
    verify(prompt: string, completion: string): { correct: boolean; reason?: string } {
      const v = verifyWorked(prompt, completion, { digits });
      return v.correct ? { correct: true } : { correct: false, reason: v.reason };
    },
    formatNote: `Prompts are written ${JSON.stringify(workedPrompt(347, 589, { digits }))}. The answer works column by column from the units, each column as its two digits + the carry coming in = its two-digit sum (the first digit is the carry going out), then " so " and the sum: ${JSON.stringify(workedAnswerText(347, 589, { digits }))}, then the end of text.`,
    /** The correct completion of `prompt` (without the end of text); '' when it is not an addition prompt. */
    expected(prompt: string): string {
      const operands = parseAdditionPrompt(prompt);
      return operands ? workedAnswerText(operands.a, operands.b, { digits }) : '';
    },
    firstErrorIndex: (prompt: string, completion: string): number | null => firstErrorIndex(prompt, completion, { digits }),
  };
}
