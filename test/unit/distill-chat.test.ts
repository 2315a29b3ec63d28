/**
 * A distillation run on chat prompts (workers/distill/run.ts with a prompt set of
 * test/fixtures/prompts-chat.jsonl): the teacher reads each conversation rendered with its own
 * chat template, not the student's. The fixtures' templates differ (test/fixtures/hf/: qwen3
 * writes Llama 3's headers, llama-teacher ChatML), so the two prompts differ in length, and the
 * teacher's logits must be put back at the student's rows (workers/scoring/align.ts).
 *
 * Checked against a float64 forward of both models (test/reference/llama.ts, the reverse KL of
 * test/reference/gpt2-training.ts) on exactly the tokens the run scored (read from the trainer's
 * divergencesAgainst): every completion token's teacher log-prob and reverse KL, the evaluation's
 * and the first step's means, the step's loss (opd-full trains on the aligned logits) and the
 * teacher's FLOPs (its own token counts). The same numbers with the teacher fed the student's
 * rendering are far off, so the check can fail. Then sft with the roles swapped (the teacher's
 * prompts now the longer): the teacher samples on its own rendering, so its sampler log-probs
 * equal its scoring log-probs (sampled KL 0).
 */
import { describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { testDevice } from './gpu';
import { fixtureConfig, fixtureParams, HF_DIR } from './hf-fixtures';
import { llamaLogits } from '../reference/llama';
import { logSoftmax, reverseKL } from '../reference/gpt2-training';
import { configureOrt } from '../../workers/ort/runtime';
import { readModelFolder, type ModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { DistillRun, type DistillOptions } from '../../workers/distill/run';
import { preparePromptSet, promptSetTask } from '../../workers/prompts/set';
import { promptStudentOf, promptTeacherOf } from '../../workers/prompts/render';
import type { LabTask } from '../../workers/tasks/task';
import type { TrainSequence } from '../../workers/train/batch';
import type { StudentDivergences } from '../../workers/train/trainer';

const PROMPTS = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'prompts-chat.jsonl'), 'utf8');
/** float32 forwards (ORT's teacher, the lab's WGSL student) against float64. */
const TOL = 1e-4;

const folder = async (name: string, requireWeights = false) => readModelFolder(await dirSource(join(HF_DIR, name)), { requireWeights });
const f64 = (name: string) => ({ config: fixtureConfig(name), params: new Map([...fixtureParams(name)].map(([n, d]) => [n, Float64Array.from(d)])) });
const logprobs = (m: ReturnType<typeof f64>, tokens: number[]) => llamaLogits(m.config, m.params, { tokens }).map((z) => logSoftmax(z));

async function chatRun(student: ModelFolder, teacher: ModelFolder, options: Partial<DistillOptions>) {
  const set = preparePromptSet({ kind: 'jsonl', label: 'prompts-chat.jsonl', text: PROMPTS }, { heldOutFraction: 0.5, splitSeed: 0 }, promptStudentOf(student), promptTeacherOf(teacher));
  expect(set.summary.teacherReads).toMatchObject({ kind: 'own-template', differing: 4 });
  const task = promptSetTask(set);
  const run = await DistillRun.create(await testDevice(), { student, teacher, task, options: { batchPrompts: 2, groupSize: 1, evalPrompts: 2, maxTokens: 4, seed: 1, lr: 1e-3, totalSteps: 2, ...options } });
  return { run, task, prompts: [...set.train, ...set.heldOut] };
}

interface Scored {
  /** Per completion token of every sequence: the run's numbers and float64's. */
  tokens: { teacherLogprob: number; rowTeacherLogprob: number; reverseKL: number; f64TeacherOwn: number; f64TeacherReused: number; f64KLOwn: number; f64KLReused: number }[];
  /** Tokens the teacher read on its own rendering, and the student's sequences' tokens. */
  teacherTokens: number;
  studentTokens: number;
  /** The positions the teacher's KV-cache decoder ran to sample these: the left-padded prompts once, then one per row and step. */
  teacherSamplingPositions: number;
}

/** The run's per-token numbers for the sequences it scored, beside float64 with the teacher on its own rendering and on the student's. */
function againstFloat64(sequences: readonly TrainSequence[], div: StudentDivergences, task: LabTask, prompts: string[], encode: (t: string) => number[], names: { student: string; teacher: string }): Scored {
  const S = f64(names.student);
  const T = f64(names.teacher);
  const width = Math.max(...sequences.map((s) => s.tokens.length));
  const out: Scored = { tokens: [], teacherTokens: 0, studentTokens: 0, teacherSamplingPositions: 0 };
  let longestPrompt = 0;
  let longestCompletion = 0;
  sequences.forEach((seq, b) => {
    const P = seq.weights.findIndex((w) => w !== 0) + 1;
    const tokens = [...seq.tokens];
    const completion = tokens.slice(P);
    const prompt = prompts.find((p) => encode(p).join() === tokens.slice(0, P).join());
    expect(prompt, `sequence ${b}'s prompt is one of the set`).toBeDefined();
    const teacherIds = encode(task.teacherPrompt!(prompt!));
    expect(teacherIds.length).not.toBe(P);
    out.teacherTokens += teacherIds.length + completion.length;
    out.studentTokens += tokens.length;
    longestPrompt = Math.max(longestPrompt, teacherIds.length);
    longestCompletion = Math.max(longestCompletion, completion.length);
    const s = llamaLogits(S.config, S.params, { tokens });
    const own = logprobs(T, [...teacherIds, ...completion]);
    const reused = logprobs(T, tokens);
    const Pt = teacherIds.length;
    const weights = tokens.map((_, t) => (t >= P - 1 && t < tokens.length - 1 ? 1 : 0));
    const klOwn = reverseKL(s, { teacherLogprobs: tokens.map((_, t) => (weights[t] ? own[Pt - P + t] : new Float64Array(s[0].length))), weights }).kl;
    const klReused = reverseKL(s, { teacherLogprobs: tokens.map((_, t) => reused[t]), weights }).kl;
    completion.forEach((token, k) => {
      const t = P - 1 + k;
      const row = div.rows.find((r) => r.row === b * width + t);
      expect(row, `sequence ${b}, position ${t} is a scored row`).toBeDefined();
      out.tokens.push({
        teacherLogprob: row!.teacherLogprob, rowTeacherLogprob: div.teacherLogprob(b, t), reverseKL: row!.reverseKL,
        f64TeacherOwn: own[Pt - 1 + k][token], f64TeacherReused: reused[t][token], f64KLOwn: klOwn[t], f64KLReused: klReused[t],
      });
    });
  });
  expect(div.rows.length).toBe(out.tokens.length);
  out.teacherSamplingPositions = sequences.length * (longestPrompt + longestCompletion - 1);
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const maxAbs = (xs: number[]) => Math.max(...xs.map(Math.abs));

describe('a distillation run on chat prompts: the teacher reads its own chat template', () => {
  it('opd-full, qwen3 from llama-teacher: evaluation and step equal float64 with the teacher on its own rendering, not the student’s; 2 steps run', async () => {
    configureOrt({ numThreads: 1 });
    const student = await folder('qwen3', true);
    const teacher = await folder('llama-teacher');
    const { run, task, prompts } = await chatRun(student, teacher, { objective: 'opd-full' });
    const encode = (t: string) => student.tokenizer.encode(t, { addSpecialTokens: false });
    const names = { student: 'qwen3', teacher: 'llama-teacher' };
    try {
      const spy = vi.spyOn(run.trainer, 'divergencesAgainst');
      const e0 = await run.evaluate();
      const evaluated = againstFloat64(spy.mock.calls[0][0], await spy.mock.results[0].value, task, prompts, encode, names);
      const m1 = await run.trainStep();
      // The step's forward is the last call (the evaluation also scored its probes' fixed answers).
      const k = spy.mock.calls.length - 1;
      const stepped = againstFloat64(spy.mock.calls[k][0], await spy.mock.results[k].value, task, prompts, encode, names);
      for (const [what, s] of [['evaluation', evaluated], ['step 1', stepped]] as const) {
        const t = s.tokens;
        const errs = {
          teacherLogprob: maxAbs(t.map((x) => x.teacherLogprob - x.f64TeacherOwn)),
          rowTeacherLogprob: maxAbs(t.map((x) => x.rowTeacherLogprob - x.f64TeacherOwn)),
          reverseKL: maxAbs(t.map((x) => x.reverseKL - x.f64KLOwn)),
        };
        const reusedGap = { teacherLogprob: mean(t.map((x) => Math.abs(x.f64TeacherReused - x.f64TeacherOwn))), reverseKL: Math.abs(mean(t.map((x) => x.f64KLReused)) - mean(t.map((x) => x.f64KLOwn))) };
        console.log(`[distill-chat] ${what}: ${t.length} tokens, max |run − float64| ${JSON.stringify(errs)}; the student's rendering would move the teacher's log-prob by ${reusedGap.teacherLogprob.toFixed(4)} and the mean reverse KL by ${reusedGap.reverseKL.toFixed(4)} nats`);
        for (const [k, v] of Object.entries(errs)) expect(v, `${what}: ${k}`).toBeLessThan(TOL);
        // The student's rendering would give other numbers, far beyond the tolerance.
        expect(reusedGap.teacherLogprob).toBeGreaterThan(100 * TOL);
        expect(reusedGap.reverseKL).toBeGreaterThan(100 * TOL);
      }
      expect(Math.abs(e0.reverseKL - mean(evaluated.tokens.map((x) => x.f64KLOwn)))).toBeLessThan(TOL);
      expect(Math.abs(m1.reverseKL - mean(stepped.tokens.map((x) => x.f64KLOwn)))).toBeLessThan(TOL);
      // opd-full trains on the aligned logits: its loss (Σ w·KL) is the step's mean reverse KL.
      expect(Math.abs(m1.loss - m1.reverseKL)).toBeLessThan(1e-5);
      // The teacher's forward counts the tokens it read (its shorter prompts), not the student's.
      const pTeacher = teacher.family!.countParameters(teacher.config!);
      expect(stepped.teacherTokens).toBeLessThan(stepped.studentTokens);
      expect(m1.flops.teacherScoring).toBe(2 * pTeacher * stepped.teacherTokens);

      // A second step on the updated student (an evaluation after it would cost another 5 s here for nothing new).
      const m2 = await run.trainStep();
      expect([m1.applied, m2.applied, m2.step]).toEqual([true, true, 2]);
      expect(Number.isFinite(m2.loss) && Number.isFinite(m2.reverseKL) && Number.isFinite(m2.gradNorm)).toBe(true);
      console.log(`[distill-chat] reverse KL: held-out ${e0.reverseKL.toFixed(4)} before, step 1 ${m1.reverseKL.toFixed(4)}, step 2 ${m2.reverseKL.toFixed(4)}`);
    } finally {
      await run.release();
    }
  });

  it('sft, llama-teacher from qwen3 (the teacher’s prompts the longer): the teacher samples on its own rendering', async () => {
    const student = await folder('llama-teacher', true);
    const teacher = await folder('qwen3');
    const { run, task, prompts } = await chatRun(student, teacher, { objective: 'sft' });
    const encode = (t: string) => student.tokenizer.encode(t, { addSpecialTokens: false });
    try {
      const spy = vi.spyOn(run.trainer, 'divergencesAgainst');
      const m = await run.trainStep();
      const sequences: readonly TrainSequence[] = spy.mock.calls[0][0];
      const scored = againstFloat64(sequences, await spy.mock.results[0].value, task, prompts, encode, { student: 'llama-teacher', teacher: 'qwen3' });
      expect(scored.teacherTokens).toBeGreaterThan(scored.studentTokens);
      // The sampler's log-probs are the teacher's own at temperature 1, on the prompt it sampled from.
      const old = sequences.flatMap((s) => s.tokens.slice(0, -1).flatMap((_, t) => (s.weights[t] !== 0 ? [s.oldLogprobs![t]] : [])));
      const errs = { sampler: maxAbs(old.map((x, i) => x - scored.tokens[i].f64TeacherOwn)), scoring: maxAbs(scored.tokens.map((x) => x.teacherLogprob - x.f64TeacherOwn)) };
      console.log(`[distill-chat] sft: ${old.length} tokens sampled by the teacher, max |run − float64| ${JSON.stringify(errs)}, sampled KL ${m.sampledKL.toExponential(2)}`);
      expect(errs.sampler).toBeLessThan(TOL);
      expect(errs.scoring).toBeLessThan(TOL);
      expect(Math.abs(m.sampledKL)).toBeLessThan(TOL);
      expect(mean(scored.tokens.map((x) => Math.abs(x.f64TeacherReused - x.f64TeacherOwn)))).toBeGreaterThan(100 * TOL);
      // sft's teacher FLOPs are its sampling on its own prompts: the positions its KV-cache decoder
      // ran (the padded prompts, then one per row until the longest completion ended), more than
      // the prompt and completion tokens themselves.
      expect(m.flops.teacherScoring).toBe(2 * teacher.family!.countParameters(teacher.config!) * scored.teacherSamplingPositions);
      expect(scored.teacherSamplingPositions).toBeGreaterThanOrEqual(scored.teacherTokens);
      expect(m.applied).toBe(true);
    } finally {
      await run.release();
    }
  });
});
