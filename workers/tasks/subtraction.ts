/**
 * The second built-in task: subtraction with a non-negative answer, written like the addition
 * task so that one small model can hold both.
 *
 *   prompt      "Q: 589-347= A: "        (operands right-aligned, the larger first)
 *   completion  "242<|endoftext|>"        (answer digits units first, like addition's default)
 *   answer      "242"                     (what people are shown)
 *
 * Its use in the lab: the self-distillation recovery preset. A model that knows addition is
 * fine-tuned on subtraction (a new skill, with a new token '-') and forgets addition; on-policy
 * distillation on addition prompts, with the model's own checkpoint from before the fine-tune as
 * the teacher, brings addition back while subtraction is kept (scripts/build-models.ts builds the
 * two folders; `opd-lab train --preset self-distill` and the Distill panel run it).
 *
 * Vocabulary: the addition vocabulary (ids 0..19, see addition.ts) followed by '-' at id 20
 * (ARITHMETIC_VOCAB). The addition task reads and writes nothing new, so an addition model whose
 * embedding gains that one row (the fine-tune's first step) still answers addition exactly as
 * before.
 *
 * Problems: both operands drawn as addition draws them (1 to 3 digits), the larger written first.
 * The held-out set is the addition task's rule applied to the pair {a, b} (a fixed hash, 1 in 16),
 * so no held-out pair is ever trained on. The answer is written without leading zeros (units
 * first: without trailing zeros), and 0 is written "0".
 *
 * The verifier is exact match up to <|endoftext|> (or a newline), like addition's, and never
 * throws: every failure has a code and a sentence.
 */
import { Rng } from '../random/rng';
import {
  ADDITION_EOS,
  ADDITION_VOCAB,
  DEFAULT_ADDITION_DIGITS,
  answerSegment,
  checkDigits,
  checkOperand,
  drawPair,
  isEvalProblem,
  reverse,
  type AdditionSplit,
} from './addition';

export const MINUS = '-';
/** The addition vocabulary and '-' (id 20). */
export const ARITHMETIC_VOCAB: readonly string[] = [...ADDITION_VOCAB, MINUS];
export const MINUS_ID = ARITHMETIC_VOCAB.indexOf(MINUS);
/** The seed of the subtraction task's fixed held-out sequence. */
export const SUBTRACTION_EVAL_SEED = 0x5ab_e7a1;

export interface SubtractionOptions {
  /** Operand lengths [min, max] in digits. Default [1, 3]. */
  digits?: readonly [number, number];
}

export interface SubtractionProblem {
  a: number;
  b: number;
  difference: number;
  prompt: string;
  answer: string;
  completion: string;
  split: AdditionSplit;
}

/** "Q: 589-347= A: ", operands right-aligned to the digit range's width; a ≥ b ≥ 0. */
export function subtractionPrompt(a: number, b: number, options: SubtractionOptions = {}): string {
  checkOperand(a, 'a');
  checkOperand(b, 'b');
  if (a < b) throw new RangeError(`Subtraction problems have a ≥ b (the answer is never negative); got ${a}-${b}.`);
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  checkDigits(digits);
  return `Q: ${String(a).padStart(digits[1])}${MINUS}${String(b).padStart(digits[1])}= A: `;
}

export function subtractionProblem(a: number, b: number, options: SubtractionOptions = {}): SubtractionProblem {
  const prompt = subtractionPrompt(a, b, options);
  const answer = String(a - b);
  return { a, b, difference: a - b, prompt, answer, completion: reverse(answer) + ADDITION_EOS, split: isEvalProblem(a, b) ? 'eval' : 'train' };
}

/** The larger operand first. */
function ordered([x, y]: [number, number]): [number, number] {
  return x >= y ? [x, y] : [y, x];
}

/** The `index`-th problem of training stream `seed`: depends on (seed, index) only; never held out. */
export function subtractionTrainProblem(seed: number, index: number, options: SubtractionOptions = {}): SubtractionProblem {
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  checkDigits(digits);
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`index must be a non-negative integer, got ${index}.`);
  // A stream of its own (seed offset), so subtraction and addition streams of one seed differ.
  const [a, b] = ordered(drawPair(Rng.forStream(seed ^ 0x5ab, index), digits, 'train'));
  return subtractionProblem(a, b, options);
}

/** The fixed held-out set: the first `count` distinct held-out problems of one fixed sequence. */
export function subtractionEvalProblems(count: number, options: SubtractionOptions = {}): SubtractionProblem[] {
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  checkDigits(digits);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}.`);
  const rng = new Rng(SUBTRACTION_EVAL_SEED);
  const seen = new Set<string>();
  const out: SubtractionProblem[] = [];
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= 1000 + 100 * count) throw new RangeError(`Only ${out.length} distinct held-out subtraction problems with digits [${digits.join(', ')}]; asked for ${count}.`);
    const [a, b] = ordered(drawPair(rng, digits, 'eval'));
    if (seen.has(`${a}-${b}`)) continue;
    seen.add(`${a}-${b}`);
    out.push(subtractionProblem(a, b, options));
  }
  return out;
}

/** Reads "Q: 589-347= A: " (spaces optional); null if it is not a subtraction prompt. */
export function parseSubtractionPrompt(prompt: string): { a: number; b: number } | null {
  if (typeof prompt !== 'string') return null;
  const m = /^\s*Q:\s*(\d{1,15})\s*-\s*(\d{1,15})\s*=\s*A:\s*$/.exec(prompt);
  return m ? { a: Number(m[1]), b: Number(m[2]) } : null;
}

export type SubtractionVerdictCode = 'bad-prompt' | 'empty' | 'not-digits' | 'leading-zero' | 'too-long' | 'wrong' | 'internal';

export interface SubtractionVerdict {
  correct: boolean;
  expected: number;
  got: number | null;
  /** The answer as people read it (most significant digit first). */
  shown: string;
  code?: SubtractionVerdictCode;
  reason?: string;
}

function subtractionVerdict(prompt: string, completionText: string): SubtractionVerdict {
  const { segment } = answerSegment(typeof completionText === 'string' ? completionText : String(completionText ?? ''));
  const fail = (expected: number, got: number | null, shown: string, code: SubtractionVerdictCode, reason: string): SubtractionVerdict => ({ correct: false, expected, got, shown, code, reason });
  const operands = parseSubtractionPrompt(prompt);
  if (!operands || operands.a < operands.b) return fail(NaN, null, segment, 'bad-prompt', `${JSON.stringify(prompt)} is not a subtraction prompt like "Q: 589-347= A: " (larger operand first).`);
  const { a, b } = operands;
  const expected = a - b;
  if (segment === '') return fail(expected, null, '', 'empty', 'The completion is empty: no answer before the end of text.');
  const bad = [...segment].find((ch) => ch < '0' || ch > '9');
  if (bad !== undefined) return fail(expected, null, segment, 'not-digits', `${JSON.stringify(segment)} has ${JSON.stringify(bad)} where only digits belong.`);
  const digits = reverse(segment);
  const got = digits.length <= 16 ? Number(digits) : null;
  const want = String(expected);
  if (digits === want) return { correct: true, expected, got, shown: digits };
  if (got === expected) return fail(expected, got, digits, 'leading-zero', `${digits} is ${expected} written with leading zeros.`);
  if (digits.length > want.length) return fail(expected, got, digits, 'too-long', `${digits} has ${digits.length} digits; ${a}-${b} = ${want} has ${want.length}.`);
  return fail(expected, got, digits, 'wrong', `${digits} is not ${a}-${b} = ${want}.`);
}

/** Checks a completion (units first, read up to the end of text) against a − b. Never throws. */
export function verifySubtraction(prompt: string, completionText: string): SubtractionVerdict {
  try {
    return subtractionVerdict(prompt, completionText);
  } catch (e) {
    return { correct: false, expected: NaN, got: null, shown: '', code: 'internal', reason: `The verifier failed: ${String(e)}.` };
  }
}

/** The subtraction task in the shape a distillation run asks of a task. */
export function subtractionTask(options: SubtractionOptions = {}) {
  const digits = options.digits ?? DEFAULT_ADDITION_DIGITS;
  checkDigits(digits);
  let evalCache: SubtractionProblem[] = [];
  return {
    name: 'subtraction',
    digits,
    trainPrompt: (seed: number, index: number): string => subtractionTrainProblem(seed, index, { digits }).prompt,
    evalPrompts(count: number): string[] {
      if (evalCache.length < count) evalCache = subtractionEvalProblems(count, { digits });
      return evalCache.slice(0, count).map((p) => p.prompt);
    },
    verify(prompt: string, completion: string): { correct: boolean; reason?: string } {
      const v = verifySubtraction(prompt, completion);
      return v.correct ? { correct: true } : { correct: false, reason: v.reason };
    },
    /** The correct completion of `prompt`, units first, without the end of text ("242" for 589-347); '' for a prompt that is not a subtraction prompt (a < b included). */
    expected(prompt: string): string {
      const operands = parseSubtractionPrompt(prompt);
      return operands && operands.a >= operands.b ? reverse(String(operands.a - operands.b)) : '';
    },
    /** The answer as people read it ("242" units first → "242", "58" → "85"); a completion that is not all digits, as written. */
    readable(completion: string): string {
      const { segment } = answerSegment(completion);
      return /^\d+$/.test(segment) ? reverse(segment) : segment;
    },
    formatNote: `Prompts are written ${JSON.stringify(subtractionPrompt(589, 347, { digits }))}, the larger number first, each right-aligned to ${digits[1]} characters. The answer is written units first, then the end of text: 589-347 = 242 is written "242", 93-58 = 35 is written "53"; answers are shown here in the usual order too.`,
  };
}
