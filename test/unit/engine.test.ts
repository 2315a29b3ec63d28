/**
 * The lab engine driven through its protocol in Node, exactly as the browser worker drives it:
 * start-up, loading model folders, sampling with tokens streamed as events, scoring, and the
 * errors a person can act on.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LabEngine } from '../../workers/engine/lab';
import type { LabCommand, LabEvent } from '../../workers/protocol';
import { nodeGpu } from '../../workers/node/gpu';
import { dirSource } from '../../workers/node/fs-source';
import { writeRandomGpt2Folder } from './fixtures';

const events: LabEvent[] = [];
const engine = new LabEngine({ gpu: nodeGpu(), emit: (e) => events.push(e), crossOriginIsolated: false, openSource: dirSource });
let nextId = 1;

/** Sends a command; returns every event answering it, the last being its result or its error. */
async function send(command: Record<string, unknown> & { type: string }): Promise<LabEvent[]> {
  const requestId = nextId++;
  const from = events.length;
  await engine.handle({ ...command, requestId } as LabCommand);
  return events.slice(from).filter((e) => 'requestId' in e && e.requestId === requestId);
}
const last = (es: LabEvent[]) => es[es.length - 1];

describe('the lab engine over its protocol (Node)', () => {
  afterAll(() => engine.gpuDevice?.destroy());

  it('starts, loads a student, samples with streamed tokens, and scores against a teacher', { timeout: 240_000 }, async () => {
    expect(last(await send({ type: 'init' })).type).toBe('ready');

    const early = last(await send({ type: 'sample', prompt: 'Q: 1+1=', n: 2, maxTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 1 }));
    expect(early.type === 'error' && early.error.code).toBe('no-model');

    const student = await writeRandomGpt2Folder(41);
    const loaded = last(await send({ type: 'model.load', role: 'student', url: student.dir }));
    expect(loaded.type).toBe('model.loaded');
    if (loaded.type !== 'model.loaded') return;
    expect(loaded.model).toMatchObject({ role: 'student', modelType: 'gpt2', vocabSize: student.config.vocabSize, trainable: true });

    const sampled = await send({ type: 'sample', prompt: 'Q: 1+1=', n: 2, maxTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 1 });
    const result = last(sampled);
    expect(result.type).toBe('sample.result');
    if (result.type !== 'sample.result') return;
    const streamed = sampled.filter((e) => e.type === 'tokens');
    expect(streamed).toHaveLength(result.completions.reduce((a, c) => a + c.tokens.length, 0));
    // Each completion's streamed tokens, in order, are its final tokens.
    result.completions.forEach((c, i) => {
      const mine = streamed.filter((e) => e.type === 'tokens' && e.completion === i);
      expect(mine.map((e) => (e.type === 'tokens' ? e.token : -1))).toEqual(c.tokens);
      expect(mine.at(-1)!.type === 'tokens' && mine.at(-1)!.done).toBe(true);
    });

    const noTeacher = last(await send({ type: 'score', prompt: 'Q: 1+1=', completion: ' A: 2', topK: 3 }));
    expect(noTeacher.type === 'error' && noTeacher.error.message).toBe('No teacher model is loaded: load a model folder as the teacher first.');

    const teacher = await writeRandomGpt2Folder(42);
    expect(last(await send({ type: 'model.load', role: 'teacher', url: teacher.dir })).type).toBe('model.loaded');
    const scored = last(await send({ type: 'score', prompt: 'Q: 1+1=', completion: ' A: 2', topK: 3 }));
    expect(scored.type).toBe('score.result');
    if (scored.type !== 'score.result') return;
    expect(scored.tokens.map((t) => t.text).join('')).toBe(' A: 2');
    for (const t of scored.tokens) {
      expect(t.reverseKL).toBeGreaterThan(0);
      expect(t.teacherTop).toHaveLength(3);
      expect(Math.abs(t.sampledKL - (t.studentLogprob - t.teacherLogprob))).toBeLessThan(1e-5);
    }
  });

  it('answers a folder that does not exist with a model-folder error naming it', async () => {
    const r = last(await send({ type: 'model.load', role: 'teacher', url: '/nonexistent/teacher' }));
    expect(r.type === 'error' && r.error).toEqual({ code: 'model-folder', message: 'The model folder /nonexistent/teacher does not exist.' });
  });
});
