import { describe, expect, it } from 'vitest';
import { ADDITION_UNK_ID, ADDITION_VOCAB, additionTokenizerFiles, additionTokenizerJson, isEvalProblem } from '../../workers/tasks/addition';
import {
  ARITHMETIC_VOCAB,
  MINUS_ID,
  parseSubtractionPrompt,
  subtractionEvalProblems,
  subtractionProblem,
  subtractionPrompt,
  subtractionTask,
  subtractionTrainProblem,
  verifySubtraction,
} from '../../workers/tasks/subtraction';
import { builtInTask, keptTaskOf } from '../../workers/tasks/registry';
import { loadTokenizer } from '../../workers/models/tokenizer';
import { filesSource } from '../../workers/models/source';

describe('subtraction problems', () => {
  it('writes the prompt right-aligned, larger operand first, and the answer units first', () => {
    expect(subtractionPrompt(589, 347)).toBe('Q: 589-347= A: ');
    expect(subtractionPrompt(58, 7)).toBe('Q:  58-  7= A: ');
    expect(() => subtractionPrompt(7, 58)).toThrow(/a ≥ b/);
    expect(subtractionProblem(589, 347).completion).toBe('242<|endoftext|>');
    expect(subtractionProblem(105, 5).completion).toBe('001<|endoftext|>'); // 100, units first
    expect(subtractionProblem(589, 587).completion).toBe('2<|endoftext|>');
    expect(subtractionProblem(42, 42).completion).toBe('0<|endoftext|>');
    expect(parseSubtractionPrompt('Q: 589-347= A: ')).toEqual({ a: 589, b: 347 });
    expect(parseSubtractionPrompt('Q: 589+347= A: ')).toBeNull();
  });

  it('draws training problems that are never held out, with a ≥ b, deterministically', () => {
    for (let i = 0; i < 2000; i++) {
      const p = subtractionTrainProblem(3, i);
      expect(p.a).toBeGreaterThanOrEqual(p.b);
      expect(isEvalProblem(p.a, p.b)).toBe(false);
      expect(p.split).toBe('train');
    }
    expect(subtractionTrainProblem(3, 17)).toEqual(subtractionTrainProblem(3, 17));
    expect(subtractionTrainProblem(3, 17).prompt).not.toBe(subtractionTrainProblem(4, 17).prompt);
  });

  it('has a fixed, distinct held-out set, prefix-stable', () => {
    const ev = subtractionEvalProblems(300);
    expect(new Set(ev.map((p) => p.prompt)).size).toBe(300);
    expect(ev.every((p) => p.split === 'eval' && p.a >= p.b)).toBe(true);
    expect(subtractionEvalProblems(40)).toEqual(ev.slice(0, 40));
  });
});

describe('the subtraction verifier', () => {
  const P = 'Q: 589-347= A: ';
  it('accepts the exact answer, units first, with or without the end of text', () => {
    expect(verifySubtraction(P, '242')).toMatchObject({ correct: true, expected: 242, got: 242, shown: '242' });
    expect(verifySubtraction(P, '242<|endoftext|>junk').correct).toBe(true);
    expect(verifySubtraction('Q: 105-  5= A: ', '001').correct).toBe(true);
    expect(verifySubtraction('Q: 105-  5= A: ', '100')).toMatchObject({ correct: false, code: 'wrong', shown: '001' });
  });

  it('names every malformed answer and never throws', () => {
    expect(verifySubtraction(P, '')).toMatchObject({ correct: false, code: 'empty' });
    expect(verifySubtraction(P, '24-2')).toMatchObject({ correct: false, code: 'not-digits' });
    expect(verifySubtraction(P, '2420')).toMatchObject({ correct: false, code: 'leading-zero' });
    expect(verifySubtraction(P, '24211')).toMatchObject({ correct: false, code: 'too-long' });
    expect(verifySubtraction(P, '342')).toMatchObject({ correct: false, code: 'wrong', reason: '243 is not 589-347 = 242.' });
    expect(verifySubtraction('Q: 347-589= A: ', '242')).toMatchObject({ correct: false, code: 'bad-prompt' });
    expect(verifySubtraction('Q: 347+589= A: ', '639')).toMatchObject({ correct: false, code: 'bad-prompt' });
    expect(verifySubtraction(P, undefined as unknown as string)).toMatchObject({ correct: false, code: 'empty' });
  });

  it('is a lab task, and the registry gives it and the kept task of a folder', () => {
    const task = subtractionTask();
    expect(task.name).toBe('subtraction');
    expect(task.evalPrompts(10)).toEqual(subtractionEvalProblems(10).map((p) => p.prompt));
    expect(task.verify(P, '242')).toEqual({ correct: true });
    expect(task.verify(P, '243').reason).toContain('not 589-347 = 242');
    expect(builtInTask('subtraction').maxTokens).toBe(4);
    expect(keptTaskOf({ task_kept: 'subtraction' })?.task.name).toBe('subtraction');
    expect(keptTaskOf({})).toBeNull();
    expect(keptTaskOf({ task_kept: 'division' })).toBeNull();
    expect(() => builtInTask('division')).toThrow(/unknown task 'division'/);
  });
});

describe('the arithmetic tokenizer', () => {
  it("extends the addition vocabulary by '-' at id 20, every addition id unchanged", async () => {
    expect(ARITHMETIC_VOCAB.slice(0, ADDITION_VOCAB.length)).toEqual(ADDITION_VOCAB);
    expect(MINUS_ID).toBe(ADDITION_VOCAB.length);
    const files = [...additionTokenizerFiles({ vocabulary: ARITHMETIC_VOCAB })].map(([path, bytes]) => ({ path, file: new Blob([new Uint8Array(bytes)]) }));
    const tok = await loadTokenizer(filesSource(files, 'arithmetic tokenizer'));
    expect(tok.vocab).toEqual(ARITHMETIC_VOCAB);
    const ids = tok.encode('Q: 589-347= A: ');
    expect(ids[6]).toBe(MINUS_ID);
    expect(ids).not.toContain(ADDITION_UNK_ID);
    expect(tok.decode(ids)).toBe('Q: 589-347= A: ');
    expect(() => additionTokenizerJson(['x', ...ADDITION_VOCAB])).toThrow(/must start with the addition vocabulary/);
  });
});
