/**
 * What Inspect asks of a task (issue 14): `expected` (the correct completion, as the model writes
 * it), `readable` (a completion as people read it) and `formatNote`, for addition in its three
 * formats and for subtraction; and the engine's side, over the protocol in Node with a small
 * random addition folder: `task.draw` (a held-out prompt with the task's format), verdicts on
 * sampled and scored completions of the student's task (none on a prompt of no task), and
 * `sample` with a forced start (a branch): every completion starts with the forced tokens.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { additionPrompt, additionTask, answerText, ADDITION_FORMATS, evalProblems, type AdditionFormat } from '../../workers/tasks/addition';
import { subtractionPrompt, subtractionTask, subtractionEvalProblems } from '../../workers/tasks/subtraction';
import { LabEngine } from '../../workers/engine/lab';
import type { LabCommand, LabEvent } from '../../workers/protocol';
import { nodeGpu } from '../../workers/node/gpu';
import { dirSource } from '../../workers/node/fs-source';
import { writeRandomAdditionFolder, writeRandomGpt2Folder } from './fixtures';
import { cliDriverEnv } from './cli-driver';

// Mesa's lavapipe where it is installed (as distill.test.ts), before this process first loads Dawn.
Object.assign(process.env, cliDriverEnv());

describe("the tasks' expected completion, as written and as read", () => {
  it('addition: expected is the format\'s answer text, which the verifier accepts; readable gives the usual order', () => {
    const cases: [number, number, AdditionFormat, string, string][] = [
      [347, 589, 'reversed', '639', '936'],
      [347, 589, 'plain', '936', '936'],
      [347, 589, 'scratchpad', '6c3c9.', '936'],
      [999, 1, 'reversed', '0001', '1000'],
      [0, 0, 'reversed', '0', '0'],
      [7, 58, 'reversed', '56', '65'],
    ];
    for (const [a, b, format, written, read] of cases) {
      const task = additionTask({ format });
      const prompt = additionPrompt(a, b);
      expect(task.expected(prompt)).toBe(written);
      expect(task.readable(written)).toBe(read);
      expect(task.verify(prompt, written)).toEqual({ correct: true });
    }
    // Over held-out problems of every format: expected is what verify accepts, and reads as the answer.
    for (const format of ADDITION_FORMATS) {
      const task = additionTask({ format });
      for (const p of evalProblems(40, { format })) {
        expect(task.expected(p.prompt)).toBe(answerText(p.a, p.b, format));
        expect(task.verify(p.prompt, task.expected(p.prompt)).correct).toBe(true);
        expect(task.readable(task.expected(p.prompt))).toBe(p.answer);
      }
    }
    // A typed prompt without the alignment is still an addition prompt; anything else has none.
    const task = additionTask();
    expect(task.expected('Q: 12+3= A: ')).toBe('51');
    expect(task.expected('Q: 12+3=')).toBe('');
    expect(task.expected('Q: 589-347= A: ')).toBe('');
    expect(task.expected('hello')).toBe('');
    // A wrong or malformed completion reads as well as it can: digits in the usual order, else as written.
    expect(task.readable('539')).toBe('935');
    expect(task.readable('53x')).toBe('53x');
    expect(task.readable('')).toBe('');
  });

  it('addition: the format note says how the prompt and the answer are written, with a true example', () => {
    expect(additionTask().formatNote).toBe(
      'Prompts are written "Q: 347+589= A: ", each number right-aligned to 3 characters. The answer is written units first, then the end of text: 347+589 = 936 is written "639"; answers are shown here in the usual order too.',
    );
    expect(additionTask({ format: 'plain' }).formatNote).toContain('most significant digit first');
    expect(additionTask({ format: 'scratchpad' }).formatNote).toContain('347+589 = 936 is written "6c3c9."');
    expect(additionTask({ digits: [1, 2] }).formatNote).toContain('"Q:  7+ 8= A: ", each number right-aligned to 2 characters');
  });

  it('subtraction: expected is the difference units first, readable reverses it', () => {
    const task = subtractionTask();
    expect(task.expected(subtractionPrompt(589, 347))).toBe('242');
    expect(task.expected(subtractionPrompt(93, 58))).toBe('53');
    expect(task.readable('53')).toBe('35');
    expect(task.expected(subtractionPrompt(100, 1))).toBe('99');
    expect(task.expected(subtractionPrompt(5, 5))).toBe('0');
    expect(task.expected('Q: 3-5= A: ')).toBe('');
    expect(task.expected(additionPrompt(3, 5))).toBe('');
    for (const p of subtractionEvalProblems(40)) {
      expect(task.verify(p.prompt, task.expected(p.prompt))).toEqual({ correct: true });
      expect(task.readable(task.expected(p.prompt))).toBe(p.answer);
    }
    expect(task.formatNote).toContain('"Q: 589-347= A: "');
  });
});

describe('task prompts, verdicts and forced starts in the engine (Node)', () => {
  const events: LabEvent[] = [];
  const engine = new LabEngine({ gpu: nodeGpu(), emit: (e) => events.push(e), crossOriginIsolated: false, openSource: dirSource });
  let nextId = 1;
  const send = async (command: Record<string, unknown> & { type: string }): Promise<LabEvent> => {
    const requestId = nextId++;
    const from = events.length;
    await engine.handle({ ...command, requestId } as LabCommand);
    return events.slice(from).filter((e) => 'requestId' in e && e.requestId === requestId).at(-1)!;
  };
  afterAll(() => engine.gpuDevice?.destroy());

  it('draws a held-out prompt, judges samples and scores of it, and samples a branch from a forced start', { timeout: 120_000 }, async () => {
    expect((await send({ type: 'init' })).type).toBe('ready');
    // The fixture folder names the task: addition, reversed, operands of 1 to 2 digits.
    const student = await writeRandomAdditionFolder(5);
    const teacher = await writeRandomAdditionFolder(6);
    expect((await send({ type: 'model.load', role: 'student', url: student.dir })).type).toBe('model.loaded');
    expect((await send({ type: 'model.load', role: 'teacher', url: teacher.dir })).type).toBe('model.loaded');

    const drawn = await send({ type: 'task.draw', index: 259 });
    if (drawn.type !== 'task.drawn') throw new Error(JSON.stringify(drawn));
    const task = additionTask({ digits: [1, 2] });
    const heldOut = task.evalPrompts(drawn.drawn.heldOut);
    expect(drawn.drawn).toMatchObject({ task: 'addition', index: 259 % drawn.drawn.heldOut, prompt: heldOut[259 % drawn.drawn.heldOut], format: task.formatNote, maxTokens: 4 });
    expect(drawn.drawn.expected).toBe(task.expected(drawn.drawn.prompt));
    expect(drawn.drawn.expectedReadable).toBe(task.readable(drawn.drawn.expected));
    // Without an index, one at random among them.
    const random = await send({ type: 'task.draw' });
    expect(random.type === 'task.drawn' && heldOut.includes(random.drawn.prompt)).toBe(true);

    const { prompt } = drawn.drawn;
    const sampled = await send({ type: 'sample', prompt, n: 3, maxTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 2 });
    if (sampled.type !== 'sample.result') throw new Error(JSON.stringify(sampled));
    expect(sampled.verdicts).toHaveLength(3);
    sampled.completions.forEach((c, i) => {
      const v = sampled.verdicts![i];
      expect(v.correct).toBe(task.verify(prompt, c.text).correct);
      expect(v).toMatchObject({ task: 'addition', expected: drawn.drawn.expected, expectedReadable: drawn.drawn.expectedReadable, got: c.text, gotReadable: task.readable(c.text) });
      if (!v.correct) expect(v.reason).toMatch(/\.$/);
    });

    // The right answer scored: its verdict says so. A prompt of no task: no verdict.
    const right = await send({ type: 'score', prompt, completion: drawn.drawn.expected, topK: 3 });
    expect(right.type === 'score.result' && right.verdict).toEqual({ task: 'addition', correct: true, expected: drawn.drawn.expected, expectedReadable: drawn.drawn.expectedReadable, got: drawn.drawn.expected, gotReadable: drawn.drawn.expectedReadable });
    const wrong = await send({ type: 'score', prompt: 'Q: 12+3= A: ', completion: '52', topK: 3 });
    expect(wrong.type === 'score.result' && wrong.verdict).toMatchObject({ correct: false, expected: '51', expectedReadable: '15', got: '52', gotReadable: '25', reason: '25 is not 12+3 = 15.' });
    const free = await send({ type: 'score', prompt: 'Q: 12+3=', completion: '15', topK: 3 });
    expect(free.type === 'score.result' && free.verdict).toBeUndefined();
    const freeSample = await send({ type: 'sample', prompt: 'Q: 12+3=', n: 1, maxTokens: 2, temperature: 1, topK: 0, topP: 1, seed: 2 });
    expect(freeSample.type === 'sample.result' && freeSample.verdicts).toBeUndefined();

    // A branch: two forced tokens, then the student goes on from there.
    // ('2' and '3' are ids 3 and 4 of the character vocabulary.)
    const forced = [3, 4];
    const branch = await send({ type: 'sample', prompt, n: 2, maxTokens: 3, temperature: 1, topK: 0, topP: 1, seed: 7, forced });
    if (branch.type !== 'sample.result') throw new Error(JSON.stringify(branch));
    for (const c of branch.completions) {
      expect(c.tokens.slice(0, 2)).toEqual(forced);
      expect(c.tokens.length).toBeGreaterThan(2);
      expect(c.tokens.length).toBeLessThanOrEqual(2 + 3);
      expect(c.logprobs.slice(0, 2).every(Number.isNaN)).toBe(true);
      expect(c.logprobs.slice(2).every((x) => x <= 0)).toBe(true);
    }
    // The student's continuation after the forced start is what sampling the prompt + forced text gives, token for token.
    const direct = await send({ type: 'sample', prompt: prompt + '23', n: 2, maxTokens: 3, temperature: 1, topK: 0, topP: 1, seed: 7 });
    if (direct.type !== 'sample.result') throw new Error(JSON.stringify(direct));
    expect(direct.completions.map((c) => c.tokens)).toEqual(branch.completions.map((c) => c.tokens.slice(2)));
    // A forced start ending with the end of text leaves nothing to sample; an id outside the vocabulary is refused.
    const ended = await send({ type: 'sample', prompt, n: 1, maxTokens: 3, temperature: 1, topK: 0, topP: 1, seed: 7, forced: [3, 0] });
    expect(ended.type === 'sample.result' && ended.completions[0]).toMatchObject({ tokens: [3, 0], text: '2', finish: 'eos' });
    const outside = await send({ type: 'sample', prompt, n: 1, maxTokens: 3, temperature: 1, topK: 0, topP: 1, seed: 7, forced: [99] });
    expect(outside.type === 'error' && outside.error).toEqual({ code: 'bad-request', message: "the forced start of the completion has token id 99, outside the student's vocabulary (0..19)" });

    // A student that names no task: no prompt to draw, with the sentence saying so.
    const plain = await writeRandomGpt2Folder(8);
    expect((await send({ type: 'model.load', role: 'student', url: plain.dir })).type).toBe('model.loaded');
    const none = await send({ type: 'task.draw' });
    expect(none.type === 'error' && none.error.code).toBe('no-task');
    expect(none.type === 'error' && none.error.message).toMatch(/names no built-in task in its config\.json \("task"\), so there is no task prompt to draw/);
  });
});
