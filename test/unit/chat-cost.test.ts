/**
 * What a chat-template mismatch costs (workers/engine/chat.ts scoreChat), on the fixtures of
 * test/fixtures/hf/: the qwen3 student (Llama-3-like template) against the llama-teacher
 * (ChatML). The two renderings are transformers' (reference.json), and every number is checked
 * against a float64 forward of both models (test/reference/llama.ts) with the KLs summed in
 * float64: the teacher's shift KL(p_T(·|x_S) ‖ p_T(·|x_T)), the reverse KL with the teacher fed
 * the student's rendering and with its own, and the teacher's log-prob shift of each token.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { fixtureConfig, fixtureParams, HF_DIR } from './hf-fixtures';
import { llamaLogits } from '../reference/llama';
import { configureOrt } from '../../workers/ort/runtime';
import { dirSource } from '../../workers/node/fs-source';
import { loadModel, releaseModel, type LoadedModel } from '../../workers/engine/inference';
import { scoreChat } from '../../workers/engine/chat';
import { readFileSync } from 'node:fs';

const reference = JSON.parse(readFileSync(join(HF_DIR, 'reference.json'), 'utf8'));
const messages = reference.tokenizer.chat_messages;
const COMPLETION = 'It is 46.';
const TOL = 5e-5;

function logSoftmax(z: Float64Array): Float64Array {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v);
  let s = 0;
  for (const v of z) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  return z.map((v) => v - lse);
}

function kl(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.exp(a[i]) * (a[i] - b[i]);
  return s;
}

const f64 = (folder: string) => ({ config: fixtureConfig(folder), params: new Map([...fixtureParams(folder)].map(([n, d]) => [n, Float64Array.from(d)])) });
const logits = (m: ReturnType<typeof f64>, tokens: number[]) => llamaLogits(m.config, m.params, { tokens }).map(logSoftmax);

describe('the cost of a chat-template mismatch', () => {
  const loaded: LoadedModel[] = [];
  afterAll(async () => {
    for (const m of loaded) await releaseModel(m);
  });

  it('qwen3 (Llama-3 template) against llama-teacher (ChatML): both renderings, and the costs equal a float64 forward', async () => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    const student = await loadModel(await dirSource(join(HF_DIR, 'qwen3')), 'student');
    const teacher = await loadModel(await dirSource(join(HF_DIR, 'llama-teacher')), 'teacher');
    loaded.push(student, teacher);
    const r = await scoreChat(device, student, teacher, messages, COMPLETION, { topK: 3 });

    expect(r.chat.studentPrompt).toBe(reference.tokenizer.chat.llama3.rendered);
    expect(r.chat.teacherPrompt).toBe(reference.tokenizer.chat.chatml.rendered);
    expect(r.promptIds).toEqual(reference.tokenizer.chat.llama3.ids);
    expect(r.chat.studentPromptTokens).toBe(reference.tokenizer.chat.llama3.ids.length);
    expect(r.chat.teacherPromptTokens).toBe(reference.tokenizer.chat.chatml.ids.length);
    expect(r.chat.same).toBe(false);
    expect(r.chat.firstDifference).toBe(2);
    const cost = r.chat.cost!;
    const y = student.folder.tokenizer.encode(COMPLETION, { addSpecialTokens: false });
    expect(cost.tokens).toBe(y.length);
    expect(r.tokens.map((t) => t.id)).toEqual(y);

    // float64: the student on x_S + y, the teacher on x_T + y and on x_S + y.
    const xs = [...reference.tokenizer.chat.llama3.ids, ...y];
    const xt = [...reference.tokenizer.chat.chatml.ids, ...y];
    const ps = reference.tokenizer.chat.llama3.ids.length;
    const pt = reference.tokenizer.chat.chatml.ids.length;
    const S = logits(f64('qwen3'), xs);
    const T = f64('llama-teacher');
    const Tt = logits(T, xt);
    const Ts = logits(T, xs);
    let shift = 0, reused = 0, own = 0, dlp = 0, sampled = 0;
    y.forEach((token, k) => {
      const s = S[ps - 1 + k], tOwn = Tt[pt - 1 + k], tReused = Ts[ps - 1 + k];
      shift += kl(tReused, tOwn);
      reused += kl(s, tReused);
      own += kl(s, tOwn);
      dlp += Math.abs(tReused[token] - tOwn[token]);
      sampled += s[token] - tOwn[token];
      expect(Math.abs(r.tokens[k].reverseKL - kl(s, tOwn)), `token ${k} reverse KL`).toBeLessThan(TOL);
      expect(Math.abs(r.tokens[k].teacherLogprob - tOwn[token]), `token ${k} teacher log-prob`).toBeLessThan(TOL);
    });
    const n = y.length;
    const measured = { shift: cost.teacherShiftKL, reused: cost.reverseKLStudentRendering, own: cost.reverseKLTeacherRendering, dlp: cost.meanAbsTeacherLogprobShift };
    const expected = { shift: shift / n, reused: reused / n, own: own / n, dlp: dlp / n };
    console.log(`[chat-cost] ${n} tokens, measured ${JSON.stringify(measured)}, float64 ${JSON.stringify(expected)}`);
    for (const k of Object.keys(expected) as (keyof typeof expected)[]) expect(Math.abs(measured[k] - expected[k]), k).toBeLessThan(TOL);
    expect(Math.abs(r.meanReverseKL - own / n)).toBeLessThan(TOL);
    expect(Math.abs(r.meanSampledKL - sampled / n)).toBeLessThan(TOL);
    expect(cost.reverseKLTeacherRendering).toBe(r.meanReverseKL);
    // The mismatch moves the teacher: a cost a test can see, not a rounding error.
    expect(cost.teacherShiftKL).toBeGreaterThan(1e-3);
  });

  it('one template for both (the teacher against itself): the renderings are the same, no cost, and a reverse KL of 0', async () => {
    const device = await testDevice();
    const teacher = loaded[1];
    const r = await scoreChat(device, teacher, teacher, messages, COMPLETION, { topK: 0 });
    expect(r.chat.same).toBe(true);
    expect(r.chat.firstDifference).toBe(null);
    expect(r.chat.cost).toBe(null);
    expect(r.chat.studentPrompt).toBe(reference.tokenizer.chat.chatml.rendered);
    expect(Math.abs(r.meanReverseKL)).toBeLessThan(1e-6);
  });

  it('a model with no chat template: one sentence naming it, before any forward', async () => {
    const device = await testDevice();
    const [student, teacher] = loaded;
    const bare = { ...teacher, folder: { ...teacher.folder, label: 'plain-teacher', chatTemplate: null } };
    await expect(scoreChat(device, student, bare, messages, COMPLETION, { topK: 0 })).rejects.toThrow(
      /^plain-teacher has no chat template \(neither chat_template\.jinja nor a chat_template in tokenizer_config\.json\): a chat prompt cannot be rendered for it; use a plain prompt, or add the model's template\.$/,
    );
  });
});
