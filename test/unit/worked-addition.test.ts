import { describe, expect, it } from 'vitest';
import { ADDITION_EOS, additionTokenizerJson, isEvalProblem } from '../../workers/tasks/addition';
import {
  firstErrorIndex,
  maxWorkedTokens,
  verifyWorked,
  workedAdditionTask,
  workedAnswerText,
  workedEvalProblems,
  workedProblem,
  workedTrainProblem,
  WORKED_VOCAB,
} from '../../workers/tasks/worked-addition';
import { builtInTask } from '../../workers/tasks/registry';
import { tokenizerFromJson } from '../../workers/models/tokenizer';

const P = 'Q: 347+589= A: ';
const W = '7+9+0=16 4+8+1=13 3+5+1=09 so 936';

describe('worked addition: the format', () => {
  it('writes every column with its carry-in and two-digit sum, units first, then the answer the usual way round', () => {
    expect(workedProblem(347, 589)).toMatchObject({ prompt: P, answer: '936', completion: W + ADDITION_EOS });
    expect(workedAnswerText(947, 589)).toBe('7+9+0=16 4+8+1=13 9+5+1=15 so 1536');
    expect(workedAnswerText(100, 100)).toBe('0+0+0=00 0+0+0=00 1+1+0=02 so 200');
    // Shorter operands: padded with 0 in the working, right-aligned in the prompt.
    expect(workedProblem(7, 58, { digits: [1, 3] })).toMatchObject({ prompt: 'Q:   7+ 58= A: ', completion: '7+8+0=15 0+5+1=06 0+0+0=00 so 65' + ADDITION_EOS });
    // Every answer is 20+ tokens; the longest fits maxWorkedTokens (end of text included).
    for (let i = 0; i < 200; i++) {
      const p = workedTrainProblem(1, i);
      expect(p.completion.length - ADDITION_EOS.length + 1).toBeGreaterThanOrEqual(34);
      expect(p.completion.length - ADDITION_EOS.length + 1).toBeLessThanOrEqual(maxWorkedTokens());
    }
    expect(maxWorkedTokens()).toBe(35);
  });

  it('encodes one token per character with the extended vocabulary', () => {
    const tok = tokenizerFromJson(additionTokenizerJson(WORKED_VOCAB), {}, 'worked');
    const ids = tok.encode(W);
    expect(ids.length).toBe(W.length);
    expect(ids.includes(WORKED_VOCAB.length - 1)).toBe(true); // 'o'
    expect(tok.decode(ids)).toBe(W);
  });
});

describe('worked addition: the split', () => {
  it('never trains on a held-out pair (nor its commuted twin) and keeps a fixed, distinct, prefix-stable held-out set', () => {
    const held = workedEvalProblems(300);
    expect(new Set(held.map((p) => p.prompt)).size).toBe(300);
    expect(held.every((p) => p.split === 'eval' && isEvalProblem(p.b, p.a))).toBe(true);
    expect(workedEvalProblems(50)).toEqual(held.slice(0, 50));
    const heldKeys = new Set(held.map((p) => `${Math.min(p.a, p.b)}+${Math.max(p.a, p.b)}`));
    for (let i = 0; i < 3000; i++) {
      const p = workedTrainProblem(7, i);
      expect(p.split).toBe('train');
      expect(heldKeys.has(`${Math.min(p.a, p.b)}+${Math.max(p.a, p.b)}`)).toBe(false);
    }
    expect(workedTrainProblem(7, 11)).toEqual(workedTrainProblem(7, 11));
    expect(workedTrainProblem(7, 11).prompt).not.toBe(workedTrainProblem(8, 11).prompt);
  });
});

describe('worked addition: the verifier and the first error', () => {
  it('accepts the exact completion with or without its end of text, and names what is wrong', () => {
    expect(verifyWorked(P, W).correct).toBe(true);
    expect(verifyWorked(P, W + ADDITION_EOS + 'junk').correct).toBe(true);
    // A dropped carry into the tens: the working goes wrong at token 13 (the 1 of "4+8+1").
    const dropped = '7+9+0=16 4+8+0=12 3+5+1=09 so 926';
    expect(verifyWorked(P, dropped)).toMatchObject({ correct: false, code: 'wrong-step', firstError: 13 });
    expect(verifyWorked(P, dropped).reason).toBe('Column 2 (the tens) should read 4+8+1=13; the completion has "4+8+0=12".');
    expect(verifyWorked(P, '7+9+0=16 4+8+1=13 3+5+1=09 so 946')).toMatchObject({ code: 'wrong-answer', firstError: 31 });
    expect(verifyWorked(P, '7+9+0=16 4+8+1=13 3+5+1=09 so 946').reason).toBe('The working is right but the answer should be 936; the completion says "946".');
    expect(verifyWorked(P, '7+9+0=16 4+8+1=13')).toMatchObject({ code: 'too-short', firstError: 17 });
    expect(verifyWorked(P, W + '6')).toMatchObject({ code: 'too-long', firstError: 33 });
    expect(verifyWorked(P, '')).toMatchObject({ code: 'empty', firstError: 0 });
    expect(verifyWorked(P, '7+9+0=16_4')).toMatchObject({ code: 'wrong-step', firstError: 8 });
    expect(verifyWorked('347+589', W)).toMatchObject({ correct: false, code: 'bad-prompt' });
    // Never throws, whatever it is given.
    expect(verifyWorked(null as unknown as string, undefined as unknown as string).correct).toBe(false);
    expect(verifyWorked(P, 42 as unknown as string).correct).toBe(false);
  });

  it('finds the first token that departs, counting <|endoftext|> as one token', () => {
    expect(firstErrorIndex(P, W)).toBeNull();
    expect(firstErrorIndex(P, W + ADDITION_EOS)).toBeNull();
    expect(firstErrorIndex(P, '7+9+0=16 4+8+0=12 3+5+1=09 so 926' + ADDITION_EOS)).toBe(13);
    expect(firstErrorIndex(P, '8')).toBe(0);
    expect(firstErrorIndex(P, '7+9' + ADDITION_EOS)).toBe(3); // stopped early: the end of text is the error
    expect(firstErrorIndex(P, '7+9')).toBe(3);
    expect(firstErrorIndex(P, W + '6' + ADDITION_EOS)).toBe(33); // a digit where the end of text belongs
    expect(firstErrorIndex('not a prompt', W)).toBeNull();
  });

  it('is the task the registry builds, with expected() for Inspect', () => {
    const { task, maxTokens } = builtInTask('worked-addition', { task_digits: [3, 3] });
    expect(task.name).toBe('worked-addition');
    expect(maxTokens).toBe(35);
    expect((task as ReturnType<typeof workedAdditionTask>).expected(P)).toBe(W);
    expect(task.verify!(P, W)).toEqual({ correct: true });
    expect(task.verify!(P, W.replace('936', '935')).reason).toMatch(/should be 936/);
    expect(task.evalPrompts(5)).toEqual(workedEvalProblems(5).map((p) => p.prompt));
    expect(task.trainPrompt(3, 4)).toBe(workedTrainProblem(3, 4).prompt);
    expect(builtInTask('worked-addition').task.evalPrompts(1)[0]).toMatch(/^Q: \d{3}\+\d{3}= A: $/);
  });
});
