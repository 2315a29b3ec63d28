/**
 * The lab engine driven through its protocol in Node, exactly as the browser worker drives it:
 * start-up, loading model folders, sampling with tokens streamed as events, scoring, and the
 * errors a person can act on.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LabEngine } from '../../workers/engine/lab';
import type { LabCommand, LabEvent, LabEventOf, TrainSetup } from '../../workers/protocol';
import { nodeGpu } from '../../workers/node/gpu';
import { dirSource } from '../../workers/node/fs-source';
import { DEFAULT_SETUP } from '../../workers/contract/knobs';
import { DistillRun } from '../../workers/distill/run';
import { readModelFolder } from '../../workers/models/folder';
import { filesSource } from '../../workers/models/source';
import { readSafetensors } from '../../workers/models/safetensors';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../../workers/train/peft-adapter';
import { writeRandomAdditionFolder, writeRandomGpt2Folder } from './fixtures';
import { cliDriverEnv } from './cli-driver';

// Mesa's lavapipe when it is installed and no driver was chosen (cli-driver.ts), else SwiftShader;
// set before nodeGpu() below first loads Dawn, as distill.test.ts does. What this file checks is the
// engine's protocol (events, errors, run loop, checkpoints, exports), the same on any adapter; the
// kernels are held to their float64 references on SwiftShader by their own files, and DistillRun
// runs on SwiftShader in distill-chat.test.ts and the e2e Distill runs (Chromium's SwiftShader).
// The file took 24 s on lavapipe against 198 s on SwiftShader, run one after the other at load 9-11
// (41 s on SwiftShader in a fresh-clone run).
Object.assign(process.env, cliDriverEnv());

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

afterAll(() => engine.gpuDevice?.destroy());

describe('the lab engine over its protocol (Node)', () => {
  it('starts, loads a student, samples with streamed tokens, and scores against a teacher', { timeout: 240_000 }, async () => {
    expect(last(await send({ type: 'init' })).type).toBe('ready');

    const early = last(await send({ type: 'sample', prompt: 'Q: 1+1=', n: 2, maxTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 1 }));
    expect(early.type === 'error' && early.error.code).toBe('no-model');
    const noStudent = last(await send({ type: 'train.start', setup: DEFAULT_SETUP }));
    expect(noStudent.type === 'error' && noStudent.error).toEqual({ code: 'no-model', message: 'No student model is loaded: load a model folder as the student first.' });

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
    expect(scored.chat).toBeUndefined();
    // The teacher's alternatives carry the student's log-prob of each too.
    for (const c of scored.tokens[0].teacherTop) expect(c.studentLogprob).toBeLessThanOrEqual(0);
    expect(scored.tokens[0].teacherTop.some((c) => c.studentLogprob !== scored.tokens[0].teacherTop[0].studentLogprob)).toBe(true);

    // Characters the character tokenizer has no token for are refused before scoring, named, not scored as its unknown token.
    const unk = last(await send({ type: 'score', prompt: 'Q: 1+1=', completion: ' A: x2é', topK: 3 }));
    expect(unk.type === 'error' && unk.error).toEqual({
      code: 'bad-request',
      message: `The student's tokenizer (${student.dir}) has no token for "x", "é" in the completion: scoring would score its unknown token, not the text. Remove or replace them and score again.`,
    });
    const unkPrompt = last(await send({ type: 'score', prompt: 'Q: 1?1=', completion: ' A: 2', topK: 3 }));
    expect(unkPrompt.type === 'error' && unkPrompt.error.message).toMatch(/has no token for "\?" in the prompt: .* Remove or replace it and/);

    // A chat prompt for folders with no chat template: a sentence naming the folder (sampling and scoring).
    for (const command of [
      { type: 'sample', prompt: 'Q: 1+1=', chat: true, n: 1, maxTokens: 2, temperature: 1, topK: 0, topP: 1, seed: 1 },
      { type: 'score', prompt: 'Q: 1+1=', chat: true, completion: ' A: 2', topK: 3 },
    ]) {
      const refused = last(await send(command));
      expect(refused.type === 'error' && refused.error.code).toBe('bad-request');
      expect(refused.type === 'error' && refused.error.message).toMatch(/ has no chat template \(neither chat_template\.jinja nor a chat_template in tokenizer_config\.json\)/);
    }
  });

  it('answers a folder that does not exist with a model-folder error naming it', async () => {
    const r = last(await send({ type: 'model.load', role: 'teacher', url: '/nonexistent/teacher' }));
    expect(r.type === 'error' && r.error).toEqual({ code: 'model-folder', message: 'The model folder /nonexistent/teacher does not exist.' });
  });
});

/** The events of run `runId` (the requestId of its train.start), from the first on. */
const runEvents = (runId: number) => events.filter((e) => 'runId' in e && e.runId === runId);

/** Waits until `pick` finds an event (polling; the training loop runs on its own). */
async function waitFor<T>(pick: () => T | undefined, timeoutMs = 180_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = pick();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error('timed out waiting for an event');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The event answering command `requestId` (a train.state or an error). */
const answerTo = (requestId: number) =>
  waitFor(() => events.find((e): e is LabEventOf<'train.state'> | LabEventOf<'error'> => 'requestId' in e && e.requestId === requestId && (e.type === 'train.state' || e.type === 'error')));

/** Sends a command without waiting for its answer; returns its requestId. */
async function post(command: Record<string, unknown> & { type: string }): Promise<number> {
  const requestId = nextId++;
  await engine.handle({ ...command, requestId } as LabCommand);
  return requestId;
}

const ended = (runId: number) =>
  waitFor(() => runEvents(runId).find((e): e is LabEventOf<'train.state'> => e.type === 'train.state' && ['stopped', 'finished', 'failed'].includes(e.state)));

const small = (over: Partial<TrainSetup>): TrainSetup => ({
  ...DEFAULT_SETUP, objective: 'opd-sampled', totalSteps: 3, batchPrompts: 2, groupSize: 2, lr: 1e-2, evalEvery: 1, evalPrompts: 4, checkpointEvery: 0, seed: 5, ...over,
});

describe('distillation runs over the protocol (Node)', () => {
  it('refuses a run it cannot do, each time with a code and a sentence', { timeout: 240_000 }, async () => {
    const stop = last(await send({ type: 'train.stop' }));
    expect(stop.type === 'error' && stop.error).toEqual({ code: 'no-run', message: 'No training run is in progress: start one first.' });

    const badLr = last(await send({ type: 'train.start', setup: small({ lr: 0 }) }));
    expect(badLr.type === 'error' && badLr.error).toEqual({ code: 'bad-options', message: 'The learning rate must lie in (0, 1); got 0.' });
    const badRl = last(await send({ type: 'train.start', setup: small({ objective: 'rl', groupSize: 1 }) }));
    expect(badRl.type === 'error' && badRl.error.code).toBe('bad-options');
    // Nothing to export before any run.
    const noExport = last(await send({ type: 'train.export', what: 'student' }));
    expect(noExport.type === 'error' && noExport.error).toEqual({ code: 'no-run', message: 'There is nothing to export yet: no run has kept a checkpoint. Start a run first.' });
    const badTask = last(await send({ type: 'train.start', setup: small({ task: 'chess' }) }));
    expect(badTask.type === 'error' && badTask.error.message).toBe('The task must be one of addition, subtraction, worked-addition; got chess.');
    const badKeep = last(await send({ type: 'train.start', setup: small({ keepTask: 'chess' }) }));
    expect(badKeep.type === 'error' && badKeep.error.message).toBe('The task to keep must be one of addition, subtraction, worked-addition, or none; got chess.');
    const sameKeep = last(await send({ type: 'train.start', setup: small({ keepTask: 'addition' }) }));
    expect(sameKeep.type === 'error' && sameKeep.error.message).toBe('The task to keep must differ from the task trained on (both are addition).');

    // A student without model.safetensors has nothing to train.
    const frozen = await writeRandomAdditionFolder(61);
    rmSync(join(frozen.dir, 'model.safetensors'));
    expect(last(await send({ type: 'model.load', role: 'student', url: frozen.dir })).type).toBe('model.loaded');
    const teacher = await writeRandomAdditionFolder(62, { nLayer: 2, nEmbd: 32 });
    expect(last(await send({ type: 'model.load', role: 'teacher', url: teacher.dir })).type).toBe('model.loaded');
    const notTrainable = last(await send({ type: 'train.start', setup: small({}) }));
    expect(notTrainable.type === 'error' && notTrainable.error.code).toBe('not-trainable');
    expect(notTrainable.type === 'error' && notTrainable.error.message).toMatch(/cannot be trained: .*has no model\.safetensors\.$/);

    // The character-level tokenizer of the other fixtures is not the addition tokenizer.
    const other = await writeRandomGpt2Folder(63);
    expect(last(await send({ type: 'model.load', role: 'student', url: other.dir })).type).toBe('model.loaded');
    const mismatch = last(await send({ type: 'train.start', setup: small({}) }));
    expect(mismatch.type === 'error' && mismatch.error.code).toBe('tokenizer-mismatch');
    expect(mismatch.type === 'error' && mismatch.error.message).toMatch(/tokenizer/);
  });

  it('runs opd-sampled step by step: metrics, evaluations at step 0 and every step, checkpoints, finished', { timeout: 400_000 }, async () => {
    const student = await writeRandomAdditionFolder(64);
    expect(last(await send({ type: 'model.load', role: 'student', url: student.dir })).type).toBe('model.loaded');

    const runId = await post({ type: 'train.start', setup: small({ checkpointEvery: 2 }) });
    const started = await answerTo(runId);
    expect(started.type === 'train.state' && started.state).toBe('running');
    // A second run cannot start while this one holds the GPU.
    const again = last(await send({ type: 'train.start', setup: small({}) }));
    expect(again.type === 'error' && again.error.code).toBe('run-active');

    // Pause between steps: no step is taken while paused, and resume goes on.
    const pause = await post({ type: 'train.pause' });
    const paused = await answerTo(pause);
    expect(paused.type === 'train.state' && paused.state).toBe('paused');
    const stepsWhenPaused = runEvents(runId).filter((e) => e.type === 'train.metrics').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(runEvents(runId).filter((e) => e.type === 'train.metrics')).toHaveLength(stepsWhenPaused);
    const resumed = await answerTo(await post({ type: 'train.resume' }));
    expect(resumed.type === 'train.state' && resumed.state).toBe('running');

    const end = await ended(runId);
    expect(end.state).toBe('finished');
    expect(end.step).toBe(3);
    expect(end.message).toMatch(/^Finished 3 steps of opd-sampled\. Held-out accuracy \d+\.\d% \(\d+\/4\)\.$/);

    const mine = runEvents(runId);
    const metrics = mine.flatMap((e) => (e.type === 'train.metrics' ? [e.metrics] : []));
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    for (const m of metrics) {
      expect(m.objective).toBe('opd-sampled');
      expect(m.applied).toBe(true);
      for (const x of [m.loss, m.gradNorm, m.reverseKL, m.sampledKL, m.studentEntropy, m.meanRatio, m.wallMs]) expect(Number.isFinite(x)).toBe(true);
      expect(m.flops.studentSampling).toBeGreaterThan(0);
      expect(m.flops.teacherScoring).toBeGreaterThan(0);
      expect(m.flops.training).toBeGreaterThan(0);
    }
    const evals = mine.flatMap((e) => (e.type === 'train.eval' ? [e.evaluation] : []));
    expect(evals.map((e) => e.step)).toEqual([0, 1, 2, 3]);
    expect(evals[0].flopsTotal).toBe(0);
    for (const e of evals) {
      expect(e.prompts).toBe(4);
      expect(e.examples).toHaveLength(4);
    }
    const checkpoints = mine.flatMap((e) => (e.type === 'train.checkpoint' ? [e] : []));
    expect(checkpoints.map((c) => c.step)).toEqual([2, 3]);
    expect(engine.training.latestCheckpoint?.step).toBe(3);
    expect(engine.training.latestCheckpoint?.bytes.byteLength).toBe(checkpoints[1].bytes);
    // The run is over: the controls have nothing to act on.
    const late = last(await send({ type: 'train.pause' }));
    expect(late.type === 'error' && late.error.code).toBe('no-run');

    // What the run made can still be exported, from its last checkpoint: the checkpoint file as kept,
    // and the student as a model folder whose weights are the checkpoint's (not the loaded ones).
    const ckpt = last(await send({ type: 'train.export', what: 'checkpoint' }));
    if (ckpt.type !== 'train.exported') throw new Error(`expected train.exported, got ${JSON.stringify(ckpt)}`);
    expect(ckpt.step).toBe(3);
    expect(ckpt.files.map((f) => f.path)).toEqual(['checkpoint-step-3.safetensors']);
    expect(Buffer.from(ckpt.files[0].bytes).equals(Buffer.from(engine.training.latestCheckpoint!.bytes))).toBe(true);
    const exported = last(await send({ type: 'train.export', what: 'student' }));
    if (exported.type !== 'train.exported') throw new Error(`expected train.exported, got ${JSON.stringify(exported)}`);
    expect(exported.files.map((f) => f.path)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json']));
    const folder = await readModelFolder(filesSource(exported.files.map((f) => ({ path: f.path, file: new Blob([f.bytes as Uint8Array<ArrayBuffer>]) })), 'exported'), { requireWeights: true });
    const trained = readSafetensors(ckpt.files[0].bytes).tensors.get('transformer.wte.weight')!;
    const wte = folder.weights!.get('transformer.wte.weight')!;
    expect(Buffer.from(wte.buffer, wte.byteOffset, wte.byteLength).equals(Buffer.from(trained.bytes))).toBe(true);
    const original = (await readModelFolder(await dirSource(student.dir), { requireWeights: true })).weights!.get('transformer.wte.weight')!;
    expect(original.some((x, i) => x !== wte[i])).toBe(true);
    // A run that trains every weight has no LoRA adapter to export.
    const noAdapter = last(await send({ type: 'train.export', what: 'adapter' }));
    expect(noAdapter.type === 'error' && noAdapter.error).toEqual({ code: 'bad-request', message: 'This run trains every weight (LoRA rank 0), so it has no LoRA adapter: download the student instead, or start a run with a LoRA rank.' });
  });

  it("a LoRA run's PEFT adapter is exported from its last checkpoint", { timeout: 400_000 }, async () => {
    const runId = await post({ type: 'train.start', setup: small({ loraRank: 2, totalSteps: 1, evalEvery: 0, checkpointEvery: 1 }) });
    expect((await ended(runId)).state).toBe('finished');
    const exported = last(await send({ type: 'train.export', what: 'adapter' }));
    if (exported.type !== 'train.exported') throw new Error(`expected train.exported, got ${JSON.stringify(exported)}`);
    expect(exported).toMatchObject({ what: 'adapter', step: 1 });
    const files = new Map(exported.files.map((f) => [f.path, f.bytes]));
    expect([...files.keys()].sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
    const config = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG)));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: ['c_attn', 'c_proj', 'c_fc'], fan_in_fan_out: true });
    const names = [...readSafetensors(files.get(ADAPTER_WEIGHTS)!).tensors.keys()];
    expect(names).toContain('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight');
  });

  it('stops between steps when asked, keeping a checkpoint of where it stopped', { timeout: 400_000 }, async () => {
    const runId = await post({ type: 'train.start', setup: small({ totalSteps: 50, evalEvery: 0 }) });
    expect((await answerTo(runId)).type).toBe('train.state');
    await waitFor(() => runEvents(runId).find((e) => e.type === 'train.metrics'));
    const stop = await post({ type: 'train.stop' });
    const stopped = await answerTo(stop);
    expect(stopped.type === 'train.state' && stopped.state).toBe('stopped');
    if (stopped.type !== 'train.state') return;
    expect(stopped.step).toBeGreaterThanOrEqual(1);
    expect(stopped.step).toBeLessThan(50);
    expect(stopped.message).toBe(`Stopped after step ${stopped.step} of 50; the history and the checkpoint of step ${stopped.step} are kept.`);
    expect(engine.training.latestCheckpoint).toMatchObject({ runId, step: stopped.step });
  });

  it('a failing step ends the run as failed, with the history and the last checkpoint kept', { timeout: 400_000 }, async () => {
    const real = DistillRun.prototype.trainStep;
    const spy = vi.spyOn(DistillRun.prototype, 'trainStep').mockImplementation(async function (this: DistillRun) {
      if (this.step >= 1) throw new Error('simulated failure of the second step');
      return real.call(this);
    });
    try {
      const runId = await post({ type: 'train.start', setup: small({ totalSteps: 5, evalEvery: 0, checkpointEvery: 1 }) });
      const end = await ended(runId);
      expect(end.state).toBe('failed');
      expect(end.error?.code).toBe('internal');
      expect(end.error?.detail).toContain('simulated failure of the second step');
      expect(end.message).toMatch(/^Failed at step 2 of 5: .* The history and the checkpoint of step 1 are kept\.$/);
      expect(runEvents(runId).filter((e) => e.type === 'train.metrics')).toHaveLength(1);
      expect(engine.training.latestCheckpoint).toMatchObject({ runId, step: 1 });
    } finally {
      spy.mockRestore();
    }
  });

  it('steps the numerics guard refuses are reported, and three in a row fail the run', { timeout: 400_000 }, async () => {
    const real = DistillRun.prototype.trainStep;
    const spy = vi.spyOn(DistillRun.prototype, 'trainStep').mockImplementation(async function (this: DistillRun) {
      return { ...(await real.call(this)), applied: false, problem: 'the gradient norm is not finite' };
    });
    try {
      const runId = await post({ type: 'train.start', setup: small({ totalSteps: 10, evalEvery: 0 }) });
      const end = await ended(runId);
      expect(end.state).toBe('failed');
      expect(end.error?.code).toBe('numerics');
      expect(end.message).toContain('Failed at step 3 of 10: 3 steps in a row could not be applied (the gradient norm is not finite)');
      const metrics = runEvents(runId).flatMap((e) => (e.type === 'train.metrics' ? [e.metrics] : []));
      expect(metrics.map((m) => m.problem)).toEqual(Array(3).fill('the gradient norm is not finite'));
    } finally {
      spy.mockRestore();
    }
  });

  it("the kept task is the setup's keepTask, the CLI's rule: '' keeps none even for a student whose config.json names one", { timeout: 400_000 }, async () => {
    const models = join(import.meta.dirname, '..', '..', 'models');
    expect(last(await send({ type: 'model.load', role: 'student', url: join(models, 'recovery-student') })).type).toBe('model.loaded');
    expect(last(await send({ type: 'model.load', role: 'teacher', url: join(models, 'recovery-teacher') })).type).toBe('model.loaded');
    // Every step refused by the guard: each run ends at step 3 with the numerics failure, as `opd-lab train` does (cli.test.ts).
    const real = DistillRun.prototype.trainStep;
    const spy = vi.spyOn(DistillRun.prototype, 'trainStep').mockImplementation(async function (this: DistillRun) {
      return { ...(await real.call(this)), applied: false, problem: 'the gradient norm is not finite' };
    });
    try {
      for (const keepTask of ['', 'subtraction']) {
        const runId = await post({ type: 'train.start', setup: small({ keepTask, totalSteps: 10, evalEvery: 0, batchPrompts: 1, groupSize: 1, evalPrompts: 4 }) });
        const end = await ended(runId);
        expect(end.state).toBe('failed');
        expect(end.error?.code).toBe('numerics');
        expect(end.message).toBe(
          "Failed at step 3 of 10: 3 steps in a row could not be applied (the gradient norm is not finite): the student's weights stay as they were before them. A lower learning rate or a higher temperature may help. The history and the checkpoint of step 3 are kept.",
        );
        const evals = runEvents(runId).flatMap((e) => (e.type === 'train.eval' ? [e.evaluation] : []));
        expect(evals.map((e) => e.step)).toEqual([0]);
        expect(evals[0].kept?.task).toBe(keepTask === '' ? undefined : 'subtraction');
      }
    } finally {
      spy.mockRestore();
    }
  });
});
