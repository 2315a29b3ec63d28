/**
 * Prompt sets through the lab engine's protocol, as the Distill panel uses them: prompts.check
 * answers with the split or with 'bad-prompts' and the sentence (before and after a student is
 * loaded: then its context counts), and train.start refuses prompts it cannot run (rl without a
 * verifier, an empty or one-line paste) with a sentence.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabEngine } from '../../workers/engine/lab';
import type { LabCommand, LabEvent } from '../../workers/protocol';
import { nodeGpu } from '../../workers/node/gpu';
import { dirSource } from '../../workers/node/fs-source';
import { DEFAULT_SETUP } from '../../workers/contract/knobs';

const ROOT = join(import.meta.dirname, '..', '..');
const PROMPTS = readFileSync(join(ROOT, 'test', 'fixtures', 'prompts-addition.txt'), 'utf8');
const events: LabEvent[] = [];
const engine = new LabEngine({ gpu: nodeGpu(), emit: (e) => events.push(e), crossOriginIsolated: false, openSource: dirSource });
let nextId = 1;

async function send(command: Record<string, unknown> & { type: string }): Promise<LabEvent> {
  const requestId = nextId++;
  const from = events.length;
  await engine.handle({ ...command, requestId } as LabCommand);
  const mine = events.slice(from).filter((e) => 'requestId' in e && e.requestId === requestId);
  return mine[mine.length - 1];
}

afterAll(() => engine.gpuDevice?.destroy());

const pasted = (text: string) => ({ kind: 'lines', label: 'the pasted text', text });

describe('prompt sets over the protocol (Node)', () => {
  it('prompts.check: the split, or the sentence; with a student loaded, its context counts', { timeout: 120_000 }, async () => {
    expect((await send({ type: 'init' })).type).toBe('ready');
    const ok = await send({ type: 'prompts.check', source: pasted(PROMPTS), heldOutFraction: 0.25, splitSeed: 0 });
    expect(ok.type === 'prompts.checked' && ok.summary).toMatchObject({ label: 'the pasted text', prompts: 20, train: 15, heldOut: 5, teacherReads: { kind: 'text' } });
    // Chat prompts before any model is loaded: which rendering the teacher reads is not known yet.
    const chat = await send({ type: 'prompts.check', source: { kind: 'jsonl', label: 'chat.jsonl', text: '{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": [{"role": "user", "content": "yo"}]}\n' }, heldOutFraction: 0.5, splitSeed: 0 });
    expect(chat.type === 'prompts.checked' && chat.summary.teacherReads).toEqual({ kind: 'unknown' });
    const bad = await send({ type: 'prompts.check', source: { kind: 'jsonl', label: 'set.jsonl', text: '{"prompt": "a"}\n{"messages": 3}\n' }, heldOutFraction: 0.25, splitSeed: 0 });
    expect(bad.type === 'error' && bad.error).toEqual({
      code: 'bad-prompts',
      message: 'The "messages" field on line 2 of set.jsonl is a number; it must be a non-empty array of {"role", "content"} objects.',
    });
    const long = 'Q: 1+2= A: \n' + 'Q: '.padEnd(40, '1') + '\n';
    // No student yet: nothing says how long a prompt may be.
    expect((await send({ type: 'prompts.check', source: pasted(long), heldOutFraction: 0.5, splitSeed: 0 })).type).toBe('prompts.checked');
    expect((await send({ type: 'model.load', role: 'student', url: join(ROOT, 'models', 'addition-student') })).type).toBe('model.loaded');
    expect((await send({ type: 'model.load', role: 'teacher', url: join(ROOT, 'models', 'addition-teacher') })).type).toBe('model.loaded');
    const tooLong = await send({ type: 'prompts.check', source: pasted(long), heldOutFraction: 0.5, splitSeed: 0 });
    expect(tooLong.type === 'error' && tooLong.error.code).toBe('bad-prompts');
    expect(tooLong.type === 'error' && tooLong.error.message).toMatch(/^Prompt 2 of the pasted text is 40 tokens long, and the student .*addition-student.* reads at most 32 tokens, answer included: shorten the prompt or remove it\.$/);
  });

  it('train.start with prompts it cannot run answers with the sentence, before anything is allocated', { timeout: 120_000 }, async () => {
    // The run itself on pasted prompts (evaluations without accuracy, the held-out reverse KL
    // falling) goes through this engine in test/e2e/prompts.e2e.test.ts.
    const setup = { ...DEFAULT_SETUP, objective: 'opd-sampled', totalSteps: 2, batchPrompts: 2, groupSize: 2, evalEvery: 0, checkpointEvery: 0, heldOutFraction: 0.25 };
    const rl = await send({ type: 'train.start', setup: { ...setup, objective: 'rl' }, prompts: pasted(PROMPTS) });
    expect(rl.type === 'error' && rl.error).toEqual({
      code: 'bad-options',
      message: "The rl objective trains on a verifier's reward, and the pasted text has no verifier (its prompts have no answers to check): choose opd-sampled, opd-full or sft, or a built-in task.",
    });
    const empty = await send({ type: 'train.start', setup, prompts: pasted('\n \n') });
    expect(empty.type === 'error' && empty.error).toEqual({ code: 'bad-prompts', message: 'The pasted text has no usable line: write one prompt per line.' });
    const one = await send({ type: 'train.start', setup, prompts: pasted('Q:  1+  2= A: ') });
    expect(one.type === 'error' && one.error).toEqual({ code: 'bad-prompts', message: 'The pasted text has 1 prompt: a run needs at least 2, one to train on and one held out to measure on; add prompts.' });
    // Nothing started: no run to stop.
    const stop = await send({ type: 'train.stop' });
    expect(stop.type === 'error' && stop.error.code).toBe('no-run');
  });
});
