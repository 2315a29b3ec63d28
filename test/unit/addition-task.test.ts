import { describe, expect, it } from 'vitest';
import {
  ADDITION_CHARS,
  ADDITION_EOS,
  ADDITION_FORMATS,
  ADDITION_UNK_ID,
  ADDITION_VOCAB,
  additionProblem,
  additionProblems,
  additionPrompt,
  additionTask,
  additionTokenizerFiles,
  answerText,
  carryPositions,
  completionLayout,
  displayAnswer,
  evalProblems,
  isEvalProblem,
  maxAdditionTokens,
  parseAdditionPrompt,
  splitFor,
  trainProblem,
  trainProblems,
  verifyAddition,
  type AdditionFormat,
} from '../../workers/tasks/addition';
import { loadTokenizer } from '../../workers/models/tokenizer';
import { filesSource } from '../../workers/models/source';

const P = additionPrompt(347, 589);

describe('addition problems and formats', () => {
  it('writes the prompt and the completion in each format', () => {
    expect(P).toBe('Q: 347+589= A: ');
    expect(additionPrompt(7, 589)).toBe('Q:   7+589= A: ');
    expect(answerText(347, 589, 'plain')).toBe('936');
    expect(answerText(347, 589, 'reversed')).toBe('639');
    expect(answerText(347, 589, 'scratchpad')).toBe('6c3c9.');
    expect(answerText(999, 1, 'plain')).toBe('1000');
    expect(answerText(999, 1, 'reversed')).toBe('0001');
    expect(answerText(999, 1, 'scratchpad')).toBe('0c0c0c1.');
    expect(answerText(0, 0, 'scratchpad')).toBe('0.');
    expect(answerText(5, 5, 'reversed')).toBe('01');
    expect(answerText(12, 3)).toBe('51'); // the default format is 'reversed'
    const p = additionProblem(347, 589, { format: 'reversed' });
    expect(p).toEqual({ a: 347, b: 589, sum: 936, prompt: P, answer: '936', completion: `639${ADDITION_EOS}`, format: 'reversed', split: splitFor(p) });
    expect(() => additionPrompt(-1, 2)).toThrow(RangeError);
    expect(() => additionPrompt(1.5, 2)).toThrow(RangeError);
    expect(() => answerText(1, 2, 'roman' as AdditionFormat)).toThrow(/Unknown addition format/);
  });

  it('right-aligns the operands to the widest of the digit range', () => {
    expect(additionPrompt(7, 58)).toBe('Q:   7+ 58= A: ');
    expect(additionPrompt(7, 58, { digits: [1, 5] })).toBe('Q:     7+   58= A: ');
    expect(additionPrompt(7, 58, { digits: [1, 1] })).toBe('Q: 7+58= A: '); // too long for the field: written whole
    // Every prompt of a digit range has the same length: a digit's position is its place value.
    const problems = trainProblems(2, 300, { digits: [1, 4] });
    expect(new Set(problems.map((p) => p.prompt.length))).toEqual(new Set(['Q: 9999+9999= A: '.length]));
    for (const p of problems) {
      expect(p.prompt).toBe(`Q: ${String(p.a).padStart(4)}+${String(p.b).padStart(4)}= A: `);
      expect(parseAdditionPrompt(p.prompt)).toEqual({ a: p.a, b: p.b });
      expect(verifyAddition(p.prompt, p.completion).correct).toBe(true);
    }
    expect(verifyAddition('Q: 7+58= A: ', '56').correct).toBe(true); // an unaligned, typed prompt still verifies
  });

  it('names the places that receive a carry, and lays the completion out by column', () => {
    expect(carryPositions(347, 589)).toEqual([1, 2]);
    expect(carryPositions(999, 1)).toEqual([1, 2, 3]);
    expect(carryPositions(123, 456)).toEqual([]);
    expect(carryPositions(95, 5)).toEqual([1, 2]);
    expect(carryPositions(50, 50)).toEqual([2]);
    const rev = completionLayout(347, 589, 'reversed');
    expect(rev.map((s) => s.text).join('')).toBe(`639${ADDITION_EOS}`);
    expect(rev.map((s) => [s.place, s.carry])).toEqual([[0, false], [1, true], [2, true], [null, false]]);
    const plain = completionLayout(999, 1, 'plain');
    expect(plain.map((s) => s.place)).toEqual([3, 2, 1, 0, null]);
    expect(plain.map((s) => s.carry)).toEqual([true, true, true, false, false]);
    const pad = completionLayout(347, 589, 'scratchpad');
    expect(pad.map((s) => s.text).join('')).toBe(`6c3c9.${ADDITION_EOS}`);
    expect(pad.map((s) => s.role)).toEqual(['digit', 'carry-mark', 'digit', 'carry-mark', 'digit', 'carry-mark', 'eos']);
    expect(pad.filter((s) => s.role === 'carry-mark').map((s) => s.carry)).toEqual([true, true, false]);
    // Every format's layout spells its completion, and its carries agree with carryPositions.
    for (const { a, b } of trainProblems(3, 200, { digits: [1, 5] })) {
      for (const format of ADDITION_FORMATS) {
        const layout = completionLayout(a, b, format);
        expect(layout.map((s) => s.text).join('')).toBe(additionProblem(a, b, { format }).completion);
        const carried = layout.filter((s) => s.role === 'digit' && s.carry).map((s) => s.place as number);
        expect(carried.sort((x, y) => x - y)).toEqual(carryPositions(a, b));
      }
    }
  });

  it('generates the same problems from the same seed, different ones from another', () => {
    const a = additionProblems({ seed: 7, count: 300 });
    expect(additionProblems({ seed: 7, count: 300 })).toEqual(a);
    expect(additionProblems({ seed: 7, count: 50 })).toEqual(a.slice(0, 50));
    const b = additionProblems({ seed: 8, count: 300 });
    expect(b.filter((p, i) => p.a === a[i].a && p.b === a[i].b).length).toBeLessThan(30);
    expect(trainProblems(7, 100)).toEqual(trainProblems(7, 100));
    expect(trainProblems(7, 40)).toEqual(trainProblems(7, 100).slice(0, 40));
    expect(trainProblem(7, 57)).toEqual(trainProblems(7, 100)[57]);
    expect(trainProblems(8, 100)).not.toEqual(trainProblems(7, 100));
    // The format changes the completion only.
    const pad = trainProblems(7, 100, { format: 'scratchpad' });
    expect(pad.map((p) => p.prompt)).toEqual(trainProblems(7, 100).map((p) => p.prompt));
  });

  it('draws operands of every length in the digit range, and rejects bad options', () => {
    const lengths = new Map<number, number>();
    for (const p of trainProblems(1, 3000, { digits: [2, 4] })) {
      for (const x of [p.a, p.b]) lengths.set(String(x).length, (lengths.get(String(x).length) ?? 0) + 1);
      expect(p.sum).toBe(p.a + p.b);
      expect(p.answer).toBe(String(p.a + p.b));
    }
    expect([...lengths.keys()].sort()).toEqual([2, 3, 4]);
    for (const n of lengths.values()) expect(n).toBeGreaterThan(1700); // ~2000 each
    expect(trainProblems(1, 500, { digits: [1, 1] }).every((p) => p.a <= 9 && p.b <= 9)).toBe(true);
    expect(trainProblems(1, 5, { digits: [15, 15] }).every((p) => String(p.a).length === 15 && Number.isSafeInteger(p.sum))).toBe(true);
    expect(() => trainProblems(1, 5, { digits: [0, 3] })).toThrow(RangeError);
    expect(() => trainProblems(1, 5, { digits: [3, 2] })).toThrow(RangeError);
    expect(() => trainProblems(1, 5, { digits: [1, 16] })).toThrow(RangeError);
    expect(() => additionProblems({ seed: 1, count: -1 })).toThrow(RangeError);
    expect(() => trainProblem(1, -1)).toThrow(RangeError);
    expect(maxAdditionTokens()).toBe('Q: 999+999= A: '.length + 4 + 1);
    expect(maxAdditionTokens({ digits: [1, 3], format: 'scratchpad' })).toBe('Q: 999+999= A: '.length + 8 + 1);
  });
});

describe('the train / eval split', () => {
  it('never puts a held-out pair (or its commuted twin) in any training stream', () => {
    const held = evalProblems(2000);
    expect(held.every((p) => p.split === 'eval' && isEvalProblem(p.a, p.b) && isEvalProblem(p.b, p.a))).toBe(true);
    const heldKeys = new Set(held.flatMap((p) => [`${p.a}+${p.b}`, `${p.b}+${p.a}`]));
    expect(new Set(held.map((p) => `${p.a}+${p.b}`)).size).toBe(2000);
    const train = [0, 1, 2, 12345, -7].flatMap((seed) => trainProblems(seed, 4000));
    expect(train).toHaveLength(20000);
    expect(train.filter((p) => p.split !== 'train' || heldKeys.has(`${p.a}+${p.b}`))).toEqual([]);
    const small = additionProblems({ seed: 9, count: 4000, split: 'train', digits: [1, 2], format: 'plain' });
    expect(small.filter((p) => isEvalProblem(p.a, p.b))).toEqual([]);
  });

  it('holds out about 1 pair in 16, the same for every seed, count and format', () => {
    const any = additionProblems({ seed: 5, count: 16000, digits: [3, 3] });
    const heldOut = any.filter((p) => p.split === 'eval').length / any.length;
    expect(heldOut).toBeGreaterThan(0.05);
    expect(heldOut).toBeLessThan(0.075);
    expect(evalProblems(300)).toEqual(evalProblems(300));
    expect(evalProblems(100)).toEqual(evalProblems(300).slice(0, 100));
    const prompts = (f: AdditionFormat) => evalProblems(100, { format: f }).map((p) => p.prompt);
    expect(prompts('scratchpad')).toEqual(prompts('reversed'));
    expect(evalProblems(200, { digits: [2, 2] }).every((p) => p.a >= 10 && p.a <= 99 && p.split === 'eval')).toBe(true);
  });

  it('refuses a held-out set larger than the digit range holds', () => {
    expect(() => evalProblems(100, { digits: [1, 1] })).toThrow(/distinct eval problems/);
  });
});

describe('verifyAddition', () => {
  const v = (completion: string, format?: AdditionFormat, requireEos?: boolean) => verifyAddition(P, completion, { format, requireEos });

  it('accepts the exact answer in each format, with or without the end of text', () => {
    expect(v('639')).toEqual({ correct: true, expected: 936, got: 936, shown: '936', ended: false });
    expect(v(`639${ADDITION_EOS}`)).toMatchObject({ correct: true, got: 936, ended: true });
    expect(v(`639${ADDITION_EOS}Q: 1+1= A: 2`)).toMatchObject({ correct: true }); // after the end: ignored
    expect(v('639\nrest')).toMatchObject({ correct: true, ended: true });
    expect(v(`936${ADDITION_EOS}`, 'plain')).toMatchObject({ correct: true, shown: '936' });
    expect(v(`6c3c9.${ADDITION_EOS}`, 'scratchpad')).toMatchObject({ correct: true, shown: '936' });
    expect(verifyAddition(additionPrompt(999, 1), '0001')).toMatchObject({ correct: true, expected: 1000, got: 1000 });
    expect(verifyAddition(additionPrompt(0, 0), '0')).toMatchObject({ correct: true, expected: 0, got: 0 });
    expect(verifyAddition('  Q: 0347 + 589 = A:', '639')).toMatchObject({ correct: true }); // a typed prompt
    for (const format of ADDITION_FORMATS) {
      for (const p of trainProblems(11, 200, { format, digits: [1, 6] })) expect(verifyAddition(p.prompt, p.completion, { format, requireEos: true }).correct).toBe(true);
    }
  });

  it('reads the reversed format units first: the usual order is a wrong answer there', () => {
    expect(v('936')).toMatchObject({ correct: false, code: 'wrong', got: 639, shown: '639' });
    expect(v('639', 'plain')).toMatchObject({ correct: false, code: 'wrong', got: 639 });
    expect(verifyAddition(additionPrompt(500, 55), '555', { format: 'reversed' }).correct).toBe(true); // a palindrome reads the same
  });

  it('names what is wrong with a malformed answer', () => {
    expect(v('')).toMatchObject({ correct: false, code: 'empty', got: null, expected: 936 });
    expect(v(ADDITION_EOS)).toMatchObject({ correct: false, code: 'empty', ended: true });
    expect(v('63x')).toMatchObject({ correct: false, code: 'not-digits', got: null });
    expect(v('abc').reason).toContain('"a"');
    expect(v('639 ')).toMatchObject({ correct: false, code: 'not-digits' }); // trailing space: not tolerated
    expect(v(' 639')).toMatchObject({ correct: false, code: 'not-digits' });
    expect(v('6391')).toMatchObject({ correct: false, code: 'too-long', got: 1936 });
    expect(v('6390')).toMatchObject({ correct: false, code: 'leading-zero', got: 936, shown: '0936' });
    expect(v('0936', 'plain')).toMatchObject({ correct: false, code: 'leading-zero' });
    expect(v('63')).toMatchObject({ correct: false, code: 'wrong', got: 36 });
    expect(v('6'.repeat(40))).toMatchObject({ correct: false, code: 'too-long', got: null });
    expect(v('639', undefined, true)).toMatchObject({ correct: false, code: 'no-eos', got: 936 });
    expect(v(`639${ADDITION_EOS}`, undefined, true).correct).toBe(true);
    expect(v('639<unk>')).toMatchObject({ correct: false, code: 'not-digits' });
  });

  it('checks the scratchpad form and its carry marks', () => {
    expect(v('639', 'scratchpad')).toMatchObject({ correct: false, code: 'malformed', got: null });
    expect(v('6c3c9', 'scratchpad')).toMatchObject({ correct: false, code: 'malformed' }); // last mark missing
    expect(v('6c3.9.', 'scratchpad')).toMatchObject({ correct: false, code: 'wrong-carry', got: 936 });
    expect(v('6c3.9.', 'scratchpad').reason).toContain('column 1');
    expect(v('6c2.9.', 'scratchpad')).toMatchObject({ correct: false, code: 'wrong', got: 926 }); // a dropped carry
    expect(v('6c3c9.0.', 'scratchpad')).toMatchObject({ correct: false, code: 'leading-zero' });
  });

  it('never throws, whatever it is given', () => {
    expect(verifyAddition('What is 2+2?', '4')).toMatchObject({ correct: false, code: 'bad-prompt', got: null });
    expect(Number.isNaN(verifyAddition('', '4').expected)).toBe(true);
    expect(verifyAddition(P, '639', { format: 'roman' as AdditionFormat })).toMatchObject({ correct: false, code: 'bad-format' });
    const junk: unknown[] = [undefined, null, 42, {}, [], Symbol('x')];
    for (const x of junk) {
      expect(() => verifyAddition(x as string, x as string)).not.toThrow();
      expect(verifyAddition(x as string, x as string).correct).toBe(false);
      expect(verifyAddition(P, x as string).correct).toBe(false);
    }
    expect(verifyAddition(P, '639', null as never).correct).toBe(true);
  });

  it('shows answers in the usual order', () => {
    expect(displayAnswer('639')).toBe('936');
    expect(displayAnswer(`639${ADDITION_EOS}junk`)).toBe('936');
    expect(displayAnswer('936', 'plain')).toBe('936');
    expect(displayAnswer('6c3c9.', 'scratchpad')).toBe('936');
    expect(displayAnswer('6x3')).toBe('6x3'); // not in the format: as written
  });

  it('serves as a distillation task: a seeded prompt stream, a fixed held-out set, the verifier', () => {
    const task = additionTask();
    expect(task.name).toBe('addition');
    expect(task.trainPrompt(4, 10)).toBe(trainProblem(4, 10).prompt);
    expect(task.evalPrompts(20)).toEqual(evalProblems(20).map((p) => p.prompt));
    expect(task.evalPrompts(5)).toEqual(task.evalPrompts(20).slice(0, 5));
    expect(task.verify(P, '639')).toEqual({ correct: true });
    expect(task.verify(P, '936').correct).toBe(false);
    expect(task.verify(P, '936').reason).toContain('not 347+589 = 936');
  });
});

describe('the addition tokenizer', () => {
  const load = () => {
    const files = [...additionTokenizerFiles()].map(([path, bytes]) => ({ path, file: new Blob([new Uint8Array(bytes)]) }));
    return loadTokenizer(filesSource(files, 'addition tokenizer'));
  };

  it('is a character-level Hugging Face tokenizer with <|endoftext|> at id 0', async () => {
    const tok = await load();
    expect(tok.vocab).toEqual(ADDITION_VOCAB);
    expect(tok.vocab.length).toBeLessThan(32);
    expect(tok.eosTokenId).toBe(0);
    expect(tok.specialTokens).toEqual({ bos: ADDITION_EOS, eos: ADDITION_EOS, pad: ADDITION_EOS, unk: '<unk>' });
    ADDITION_CHARS.forEach((ch, i) => {
      expect(tok.encode(ch, { addSpecialTokens: false })).toEqual([i + 1]);
      expect(tok.tokenText(i + 1)).toBe(ch);
    });
    expect(tok.encode('Q: 1x2', { addSpecialTokens: false })[4]).toBe(ADDITION_UNK_ID); // a typo is visible
    expect(tok.encode('12', { addSpecialTokens: true })).toEqual(tok.encode('12', { addSpecialTokens: false })); // adds nothing
  });

  it('round-trips every prompt and completion of every format, one token per character', async () => {
    const tok = await load();
    const known = new Set(ADDITION_CHARS);
    for (const format of ADDITION_FORMATS) {
      const problems = [...trainProblems(21, 150, { format, digits: [1, 8] }), ...evalProblems(50, { format }), additionProblem(999, 1, { format }), additionProblem(0, 0, { format })];
      for (const p of problems) {
        const text = p.prompt + p.completion;
        const body = text.slice(0, -ADDITION_EOS.length);
        for (const ch of body) expect(known.has(ch)).toBe(true);
        const ids = tok.encode(text, { addSpecialTokens: false });
        expect(ids.length).toBe(body.length + 1);
        expect(ids.at(-1)).toBe(0);
        expect(ids.includes(ADDITION_UNK_ID)).toBe(false);
        expect(tok.decode(ids)).toBe(text);
        expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(body);
        // The verifier reads what the tokenizer gives back, with or without special tokens.
        const completionIds = tok.encode(p.completion, { addSpecialTokens: false });
        expect(verifyAddition(p.prompt, tok.decode(completionIds, { skipSpecialTokens: true }), { format }).correct).toBe(true);
        expect(ids.length).toBeLessThanOrEqual(maxAdditionTokens({ digits: [1, 8], format }));
      }
    }
  });
});

describe('prompt parsing', () => {
  it('reads prompts back, and refuses what is not one', () => {
    expect(parseAdditionPrompt(P)).toEqual({ a: 347, b: 589 });
    expect(parseAdditionPrompt('Q: 1+2=')).toBeNull();
    expect(parseAdditionPrompt('Q: -1+2= A: ')).toBeNull();
    expect(parseAdditionPrompt('Q: 1+2= A: 3')).toBeNull();
  });
});
