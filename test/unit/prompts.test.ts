/**
 * Prompt sets without labels (workers/prompts/): parsing pasted text, .txt and .jsonl, the
 * sentence for each kind of bad input, the seeded split, rendering and the length check against
 * the student's context, and the training stream of a prompt set. Plain logic, no GPU.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePromptJsonl, parsePromptLines, PromptSetError } from '../../workers/prompts/parse';
import { splitPrompts } from '../../workers/prompts/split';
import { checkPromptLengths, promptStudentOf, promptTeacherOf, renderPromptItems, type PromptStudent } from '../../workers/prompts/render';
import { preparePromptSet, promptSetMaxTokens, promptSetTask } from '../../workers/prompts/set';
import { promptSourceOfFile, teacherRenderingSentence } from '../../workers/contract/prompts';
import { additionTokenizerFiles } from '../../workers/tasks/addition';
import { tokenizerFromJson } from '../../workers/models/tokenizer';
import { readModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { renderFolderChat } from '../../workers/chat/template';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'prompts-addition.txt');

function additionStudent(context = 32): PromptStudent {
  const files = additionTokenizerFiles();
  const json = JSON.parse(new TextDecoder().decode(files.get('tokenizer.json')!));
  const config = JSON.parse(new TextDecoder().decode(files.get('tokenizer_config.json')!));
  return { label: 'addition-student', tokenizer: tokenizerFromJson(json, config, 'addition-student'), context, chat: null };
}

const problem = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PromptSetError);
    return (e as Error).message;
  }
  throw new Error('expected a PromptSetError');
};

describe('parsing prompt sets', () => {
  it('reads one prompt per line, skipping blank lines and dropping \\r, keeping the rest of the line as written', () => {
    expect(parsePromptLines('a b \r\n\n   \nc\n', 'pasted prompts')).toEqual([{ text: 'a b ' }, { text: 'c' }]);
  });

  it('refuses text with no usable line', () => {
    expect(problem(() => parsePromptLines('\n  \n\r\n', 'prompts.txt'))).toBe('prompts.txt has no usable line: write one prompt per line.');
  });

  it('reads .jsonl lines with a prompt string or a messages array', () => {
    const text = '{"prompt": "Q: 1+2= A: "}\n\n{"messages": [{"role": "user", "content": "hi"}], "extra": 1}\n';
    expect(parsePromptJsonl(text, 'set.jsonl')).toEqual([{ text: 'Q: 1+2= A: ' }, { messages: [{ role: 'user', content: 'hi' }] }]);
  });

  it('names the line of each bad .jsonl line, and what is wrong with it', () => {
    const p = (text: string) => problem(() => parsePromptJsonl(text, 'set.jsonl'));
    expect(p('{"prompt": "a"}\n{"prompt": "b",\n')).toBe('Line 2 of set.jsonl is not JSON: each line of a .jsonl file must be one JSON object such as {"prompt": "…"}.');
    expect(p('{"prompt": "a"}\n\n{"text": "b"}')).toBe('Line 3 of set.jsonl has neither a "prompt" nor a "messages" field: each line needs one of them.');
    expect(p('{"prompt": 7}')).toBe('The "prompt" field on line 1 of set.jsonl is a number; it must be a string.');
    expect(p('{"messages": "hi"}')).toBe('The "messages" field on line 1 of set.jsonl is a string; it must be a non-empty array of {"role", "content"} objects.');
    expect(p('{"prompt": "a"}\n{"messages": [{"role": "user"}]}')).toBe('Message 1 on line 2 of set.jsonl is not an object with a "role" string and a "content" string.');
    expect(p('["a"]')).toBe('Line 1 of set.jsonl is an array, not a JSON object with a "prompt" or "messages" field.');
    expect(p('\n\n')).toBe('set.jsonl has no usable line: write one JSON object per line, with a "prompt" or "messages" field.');
  });

  it('takes the format from the file name', () => {
    expect(promptSourceOfFile('A.JSONL', 'x').kind).toBe('jsonl');
    expect(promptSourceOfFile('a.txt', 'x').kind).toBe('lines');
    // Lines as user messages: a .txt may ask for it; a .jsonl line says itself.
    expect(promptSourceOfFile('a.txt', 'x', true)).toEqual({ kind: 'lines', label: 'a.txt', text: 'x', asChat: true });
    expect(promptSourceOfFile('a.jsonl', 'x', true)).toEqual({ kind: 'jsonl', label: 'a.jsonl', text: 'x' });
  });

  it('reads each line as a user message when asked, blank lines still skipped', () => {
    expect(parsePromptLines('Why is the sky blue?\r\n\n  \nName a fruit.\n', 'the pasted text', true)).toEqual([
      { messages: [{ role: 'user', content: 'Why is the sky blue?' }] },
      { messages: [{ role: 'user', content: 'Name a fruit.' }] },
    ]);
    expect(problem(() => parsePromptLines('\n \n', 'the pasted text', true))).toBe('The pasted text has no usable line: write one prompt per line.');
  });
});

describe('the seeded split', () => {
  it('is deterministic, disjoint and complete, holds out round(fraction × n), and depends on the seed', () => {
    const a = splitPrompts(20, 0.25, 3);
    expect(splitPrompts(20, 0.25, 3)).toEqual(a);
    expect(a.heldOut.length).toBe(5);
    expect([...a.train, ...a.heldOut].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(a.train).toEqual([...a.train].sort((x, y) => x - y));
    expect(splitPrompts(20, 0.25, 4).heldOut).not.toEqual(a.heldOut);
  });

  it('keeps at least one prompt on each side, and refuses a set too small to split', () => {
    expect(splitPrompts(10, 0.01, 0).heldOut.length).toBe(1);
    expect(splitPrompts(10, 0.99, 0).train.length).toBe(1);
    expect(splitPrompts(2, 0.5, 0)).toMatchObject({ train: [expect.any(Number)], heldOut: [expect.any(Number)] });
    expect(problem(() => splitPrompts(1, 0.2, 0, 'the pasted text'))).toBe('The pasted text has 1 prompt: a run needs at least 2, one to train on and one held out to measure on; add prompts.');
    expect(problem(() => splitPrompts(5, 1, 0))).toBe('The held-out fraction must lie in (0, 1); got 1.');
  });
});

describe('rendering and the context check', () => {
  it('names the first prompt longer than the student’s context, by its index', () => {
    const student = additionStudent(16);
    checkPromptLengths(['Q:   1+  2= A: '], 'p.txt', student); // 15 tokens: one left for an answer
    expect(problem(() => checkPromptLengths(['Q: 1+2= A: ', 'Q: 1+2= A: 11111'], 'p.txt', student))).toBe(
      'Prompt 2 of p.txt is 16 tokens long, and the student addition-student reads at most 16 tokens, answer included: shorten the prompt or remove it.',
    );
    expect(problem(() => checkPromptLengths(['Q:   1+  2= A: 9'], 'p.txt', student))).toMatch(/^Prompt 1 of p\.txt is 16 tokens long/);
  });

  it('refuses a chat prompt with a sentence (never a silent fallback)', () => {
    const items = [{ text: 'a' }, { messages: [{ role: 'user', content: 'hi' }] }];
    expect(problem(() => renderPromptItems(items, 'set.jsonl', additionStudent()))).toBe(
      'Prompt 1 of set.jsonl is text and prompt 2 is a chat prompt (a "messages" field): a set is all text or all chat, since a chat prompt is rendered with the student\'s template; write them the same way.',
    );
    expect(problem(() => renderPromptItems([items[1]], 'set.jsonl', additionStudent()))).toBe(
      'Prompt 1 of set.jsonl is a chat prompt (a "messages" field), and the student addition-student has no chat template to render it with: write the prompts as text (a "prompt" field, or one per line), or use a student whose folder has a chat template.',
    );
  });

  it('renders chat prompts with the student’s own template and generation prompt (workers/chat/), encoded with no special tokens added', async () => {
    const folder = await readModelFolder(await dirSource(join(import.meta.dirname, '..', 'fixtures', 'hf', 'qwen3')));
    const student = promptStudentOf(folder);
    const messages = [{ role: 'user', content: 'What is 12+34?' }];
    const jsonl = JSON.stringify({ messages }) + '\n' + JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, ...messages] }) + '\n';
    const set = preparePromptSet({ kind: 'jsonl', label: 'chat.jsonl', text: jsonl }, { heldOutFraction: 0.5, splitSeed: 0 }, student);
    expect(set.rendered).toBe(true);
    expect([...set.train, ...set.heldOut]).toContain(renderFolderChat(folder, messages, { addGenerationPrompt: true }));
    expect(promptSetTask(set).rendered).toBe(true);
  });

  it('prepares the committed fixture: 20 prompts, 15 to train on and 5 held out, and a seeded training stream over them', () => {
    const text = readFileSync(FIXTURE, 'utf8');
    const student = additionStudent();
    const set = preparePromptSet(promptSourceOfFile('prompts-addition.txt', text), { heldOutFraction: 0.25, splitSeed: 0 }, student);
    expect(set.summary).toMatchObject({ label: 'prompts-addition.txt', prompts: 20, train: 15, heldOut: 5 });
    expect(new Set([...set.train, ...set.heldOut]).size).toBe(new Set(text.split('\n').filter((l) => l.trim())).size);
    // Prompts of 15 tokens in a context of 32: 17 new tokens at most.
    expect(promptSetMaxTokens(set, student)).toBe(17);
    const task = promptSetTask(set);
    expect(task.verify).toBeUndefined();
    expect(task.evalPrompts(64)).toEqual(set.heldOut);
    expect(task.evalPrompts(2)).toEqual(set.heldOut.slice(0, 2));
    const epoch = (seed: number, e: number) => Array.from({ length: 15 }, (_, i) => task.trainPrompt(seed, e * 15 + i));
    // Each epoch is a permutation of the training prompts; epochs and seeds differ; a seed repeats.
    expect([...epoch(1, 0)].sort()).toEqual([...set.train].sort());
    expect([...epoch(1, 1)].sort()).toEqual([...set.train].sort());
    expect(epoch(1, 1)).not.toEqual(epoch(1, 0));
    expect(epoch(2, 0)).not.toEqual(epoch(1, 0));
    expect(epoch(1, 0)).toEqual(epoch(1, 0));
    for (const p of epoch(1, 0)) expect(set.heldOut).not.toContain(p);
  });

  it('refuses an over-long prompt of a file by its index, before splitting', () => {
    const text = 'Q: 1+2= A: \n' + 'Q: '.padEnd(40, '1') + '\n';
    expect(problem(() => preparePromptSet({ kind: 'lines', label: 'long.txt', text }, { heldOutFraction: 0.5, splitSeed: 0 }, additionStudent()))).toBe(
      'Prompt 2 of long.txt is 40 tokens long, and the student addition-student reads at most 32 tokens, answer included: shorten the prompt or remove it.',
    );
  });
});

describe('what the teacher reads', () => {
  const HF = join(import.meta.dirname, '..', 'fixtures', 'hf');
  const CHAT = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'prompts-chat.jsonl'), 'utf8');
  const source = { kind: 'jsonl', label: 'prompts-chat.jsonl', text: CHAT } as const;
  const knobs = { heldOutFraction: 0.5, splitSeed: 0 };

  it('chat prompts: the teacher reads each one rendered with its own template, the task maps the student’s text to it, and the summary says so', async () => {
    const studentFolder = await readModelFolder(await dirSource(join(HF, 'qwen3')));
    const teacherFolder = await readModelFolder(await dirSource(join(HF, 'llama-teacher')));
    const student = promptStudentOf(studentFolder);
    // The teacher's side needs no family config (a frozen ONNX folder has none): only its chat side.
    const teacher = promptTeacherOf({ ...teacherFolder, config: null });
    expect(teacher.context).toBe(null);
    const set = preparePromptSet(source, knobs, student, teacher);
    const messages = CHAT.trim().split('\n').map((l) => JSON.parse(l).messages);
    const studentTexts = messages.map((m) => renderFolderChat(studentFolder, m, { addGenerationPrompt: true }));
    const teacherTexts = messages.map((m) => renderFolderChat(teacherFolder, m, { addGenerationPrompt: true }));
    expect(set.summary.teacherReads).toEqual({ kind: 'own-template', teacher: teacherFolder.label, differing: 4 });
    expect(teacherRenderingSentence(set.summary)).toBe(
      `The teacher ${teacherFolder.label} reads each chat prompt rendered with its own chat template, the student with its own: 4 of 4 prompts read differently, and each model is scored on its own.`,
    );
    const task = promptSetTask(set);
    for (const p of [...set.train, ...set.heldOut]) {
      const i = studentTexts.indexOf(p);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(task.teacherPrompt!(p)).toBe(teacherTexts[i]);
    }
    expect(task.teacherPrompt!(task.trainPrompt(5, 7))).toBe(teacherTexts[studentTexts.indexOf(task.trainPrompt(5, 7))]);
    expect(() => task.teacherPrompt!('Q: 1+2= A: ')).toThrow(/^The prompt "Q: 1\+2= A: " is not one of prompts-chat\.jsonl: the teacher's rendering of it is unknown\.$/);

    // With its context known, the teacher's longest rendering (49 tokens) bounds the answers too, and a teacher too short for a prompt is named.
    const withContext = promptTeacherOf(teacherFolder);
    const longestStudent = Math.max(...studentTexts.map((t) => studentFolder.tokenizer.encode(t, { addSpecialTokens: false }).length));
    expect(promptSetMaxTokens(set, student, { ...withContext, context: 60 })).toBe(11);
    expect(promptSetMaxTokens(set, student, withContext)).toBe(Math.min(64, student.context - longestStudent));
    expect(problem(() => preparePromptSet(source, knobs, student, { ...withContext, context: 40 }))).toBe(
      `Prompt 4 of prompts-chat.jsonl, rendered with the teacher's chat template, is 49 tokens long, and the teacher ${teacherFolder.label} reads at most 40 tokens, answer included: shorten the prompt or remove it.`,
    );

    // A teacher without a template reads the student's rendering (the task has no teacherPrompt).
    const bare = preparePromptSet(source, knobs, student, promptTeacherOf({ ...teacherFolder, label: 'plain-teacher', chatTemplate: null }));
    expect(bare.summary.teacherReads).toEqual({ kind: 'student-template', teacher: 'plain-teacher' });
    expect(teacherRenderingSentence(bare.summary)).toBe("The teacher plain-teacher has no chat template, so it reads the student's rendering of each chat prompt.");
    expect(bare.teacherTrain).toBeUndefined();
    expect(promptSetTask(bare).teacherPrompt).toBeUndefined();
    expect(bare.train).toEqual(set.train);
    // Before both models are loaded, what the teacher reads is not known yet.
    expect(preparePromptSet(source, knobs, student).summary.teacherReads).toEqual({ kind: 'unknown' });
    expect(preparePromptSet(source, knobs, null, teacher).summary.teacherReads).toEqual({ kind: 'unknown' });
  });

  it('lines read as user messages are chat prompts: each model renders them with its own template', async () => {
    const studentFolder = await readModelFolder(await dirSource(join(HF, 'qwen3')));
    const teacherFolder = await readModelFolder(await dirSource(join(HF, 'llama-teacher')));
    const lines = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'prompts-chat.txt'), 'utf8');
    const set = preparePromptSet(promptSourceOfFile('prompts-chat.txt', lines, true), { heldOutFraction: 0.25, splitSeed: 0 }, promptStudentOf(studentFolder), promptTeacherOf(teacherFolder));
    expect(set.rendered).toBe(true);
    expect(set.summary.teacherReads).toEqual({ kind: 'own-template', teacher: teacherFolder.label, differing: 20 });
    const first = lines.split('\n')[0];
    const i = set.train.indexOf(renderFolderChat(studentFolder, [{ role: 'user', content: first }], { addGenerationPrompt: true }));
    const at = i >= 0 ? { side: set.train, i } : { side: set.heldOut, i: set.heldOut.indexOf(renderFolderChat(studentFolder, [{ role: 'user', content: first }], { addGenerationPrompt: true })) };
    expect(at.i).toBeGreaterThanOrEqual(0);
    expect(promptSetTask(set).teacherPrompt!(at.side[at.i])).toBe(renderFolderChat(teacherFolder, [{ role: 'user', content: first }], { addGenerationPrompt: true }));
  });

  it('plain prompts: the teacher reads the student’s text, whatever its template', async () => {
    const teacherFolder = await readModelFolder(await dirSource(join(HF, 'llama-teacher')));
    const set = preparePromptSet(promptSourceOfFile('prompts-addition.txt', readFileSync(FIXTURE, 'utf8')), { heldOutFraction: 0.25, splitSeed: 0 }, additionStudent(), promptTeacherOf(teacherFolder));
    expect(set.summary.teacherReads).toEqual({ kind: 'text' });
    expect(teacherRenderingSentence(set.summary)).toBe('The teacher reads each prompt as written, as the student does.');
    expect(set.teacherTrain).toBeUndefined();
    expect(promptSetTask(set).teacherPrompt).toBeUndefined();
  });
});
