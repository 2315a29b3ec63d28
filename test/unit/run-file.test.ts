/**
 * The run file (workers/contract/runFile.ts: NAME.opdrun.zip, what the Distill panel's run list
 * exports and imports): written and read back whole, refused with a sentence when it is not one,
 * and read by `opd-lab run show` and `opd-lab train --resume`. The e2e test
 * (test/e2e/persistence.e2e.test.ts) reads a file the page exported with `opd-lab run show`.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { isZip, packRunFile, RunFileError, unpackRunFile, type RunRecord } from '../../workers/contract/runFile';
import { DEFAULT_SETUP, setupProblem, type TrainSetup } from '../../workers/contract/knobs';
import { writeSafetensors } from '../../workers/models/safetensors';
import { CHECKPOINT_FORMAT } from '../../workers/train/checkpoint';
import type { StepMetrics } from '../../workers/contract/run';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');

function step(n: number, loss = 0.5 / n): StepMetrics {
  return {
    step: n, objective: 'opd-sampled', applied: true, sampledKL: 0.1, reverseKL: 0.2, studentEntropy: 1, meanRatio: 1, ratioStd: 0, loss, gradNorm: 0.3, lr: 1e-3,
    tokensSampled: 16, flops: { studentSampling: 1e6 * n, teacherScoring: 2e6 * n, training: 3e6 * n, total: 6e6 * n }, wallMs: 100,
  };
}

function record(over: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'run-test-1', label: 'opd-sampled add-student from add-teacher', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_100_000,
    status: 'interrupted', message: 'Interrupted after step 3 of 10.', step: 3, totalSteps: 10, setup: { ...DEFAULT_SETUP, totalSteps: 10 }, prompts: null,
    models: { student: { label: 'http://x/add-student/', origin: { url: 'http://x/add-student/' } }, teacher: { label: 'http://x/add-teacher/', origin: { url: 'http://x/add-teacher/' } } },
    // A non-finite loss (a step the guard refused) must survive JSON.
    steps: [step(1), step(2, NaN), step(3)],
    evals: [{ step: 0, accuracy: 0.25, correct: 1, prompts: 4, reverseKL: 0.5, sampledKL: 0.4, flopsTotal: 0, examples: [] }],
    checkpoints: [{ step: 2, bytes: 10, savedAt: 1 }], snapshots: [{ step: 0, kind: 'probe', data: { tokens: [1, 2] } }],
    ...over,
  };
}

/** A checkpoint file with the trainer's metadata (as train/checkpoint.ts writes it) and one tensor. */
function checkpointBytes(stepN: number): Uint8Array {
  return writeSafetensors([['w', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]], { format: 'pt', 'opd-lab': JSON.stringify({ format: CHECKPOINT_FORMAT, version: 1, step: stepN, run: { step: stepN } }) });
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the run file', () => {
  it('is read back as written: the record (a NaN loss too), the snapshots and the checkpoint', () => {
    const ckpt = checkpointBytes(2);
    const bytes = packRunFile(record(), { step: 2, bytes: ckpt });
    expect(isZip(bytes)).toBe(true);
    expect(isZip(ckpt)).toBe(false);
    const back = unpackRunFile(bytes);
    expect(back.record).toEqual(record());
    expect(Number.isNaN(back.record.steps[1].loss)).toBe(true);
    expect(back.checkpoint?.step).toBe(2);
    expect(Buffer.from(back.checkpoint!.bytes).equals(Buffer.from(ckpt))).toBe(true);
    expect(unpackRunFile(packRunFile(record(), null)).checkpoint).toBeNull();
  });

  it('keeps the per-step top-k agreement and loss range, and reads a run recorded before them without them', () => {
    const withDiagnostics = { ...step(3), lossMin: -0.25, lossMax: 1.5, topkK: 16, teacherTopkMass: 0.97, studentTopkMass: 0.81, topkOverlap: 0.6875 };
    const now = unpackRunFile(packRunFile(record({ steps: [step(1), withDiagnostics] }), null)).record;
    expect(now.steps[1]).toEqual(withDiagnostics);
    // step(n) is a step as the lab wrote it before these fields: it reads, and they are absent (no zeros made up).
    const old = unpackRunFile(packRunFile(record(), null)).record;
    expect(old.steps).toHaveLength(3);
    for (const f of ['lossMin', 'lossMax', 'topkK', 'teacherTopkMass', 'studentTopkMass', 'topkOverlap'] as const) expect(old.steps[2][f]).toBeUndefined();
  });

  it('reads a run whose setup was recorded before some knobs existed: those knobs at their defaults, and it can run', () => {
    const { routeTask: _r, routeTeacher: _t, topK: _k, ...older } = { ...DEFAULT_SETUP, totalSteps: 10, lr: 3e-4 };
    const back = unpackRunFile(packRunFile(record({ setup: older as TrainSetup }), null)).record;
    expect(back.setup).toEqual({ ...DEFAULT_SETUP, totalSteps: 10, lr: 3e-4 });
    expect(setupProblem(back.setup)).toBeNull();
  });

  it('refuses what is not a run file, each time with a sentence', () => {
    const json = (o: unknown) => zipSync({ 'run.json': new TextEncoder().encode(JSON.stringify(o)) });
    const cases: [Uint8Array, RegExp][] = [
      [new TextEncoder().encode('hello'), /^x\.zip is not a run file: it is not a zip/],
      [zipSync({ 'other.txt': new Uint8Array([1]) }), /^x\.zip is not a run file: it has no run\.json/],
      [zipSync({ 'run.json': new TextEncoder().encode('{nope') }), /^x\.zip's run\.json is not JSON/],
      [json({ format: 'something-else', version: 1, run: record() }), /is not an OPD Lab run \(its format is "something-else"/],
      [json({ format: 'opd-lab-run', version: 99, run: record() }), /^x\.zip is a run file of version 99, newer than this lab reads \(1\): update the lab\.$/],
      [json({ format: 'opd-lab-run', version: 1, run: { id: 'r' } }), /lacks the run's id, setup, steps or evaluations/],
    ];
    for (const [bytes, sentence] of cases) {
      expect(() => unpackRunFile(bytes, 'x.zip')).toThrow(RunFileError);
      expect(() => unpackRunFile(bytes, 'x.zip')).toThrow(sentence);
    }
  });

  it('opd-lab run show reads it (text and JSON); a bad file is one line and a non-zero exit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opd-run-file-'));
    const file = join(dir, 'r.opdrun.zip');
    writeFileSync(file, packRunFile(record(), { step: 2, bytes: checkpointBytes(2) }));
    const json = cli('run', 'show', file, '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      id: 'run-test-1', status: 'interrupted', step: 3, totalSteps: 10, steps: 3, evals: 1, snapshots: 1, stepsRange: [1, 3],
      checkpoint: { step: 2, format: CHECKPOINT_FORMAT, trainerStep: 2, runStep: 2 },
    });
    const text = cli('run', 'show', file);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('r.opdrun.zip: opd-sampled add-student from add-teacher, interrupted at step 3 of 10');
    expect(text.stdout).toMatch(/checkpoint of step 2 \([\d.]+ MB\): opd-lab train --student DIR --teacher DIR --out RUN_DIR --resume r\.opdrun\.zip goes on from it/);

    const notTrainer = join(dir, 'bad.opdrun.zip');
    writeFileSync(notTrainer, packRunFile(record(), { step: 2, bytes: writeSafetensors([['w', { dtype: 'F32', shape: [1], data: new Float32Array([0]) }]]) }));
    const bad = cli('run', 'show', notTrainer);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe("opd-lab: bad.opdrun.zip's checkpoint of step 2 is not an OPD Lab trainer checkpoint (its metadata names no format): export the run again from the lab.");

    // train --resume takes a run file's checkpoint; one without a checkpoint is refused before anything is read.
    const empty = join(dir, 'empty.opdrun.zip');
    writeFileSync(empty, packRunFile(record({ checkpoints: [] }), null));
    const resume = cli('train', '--student', join(dir, 'nowhere'), '--teacher', join(dir, 'nowhere'), '--out', join(dir, 'out'), '--steps', '12', '--resume', empty);
    expect(resume.code).toBe(1);
    expect(resume.stderr.trim()).toBe('opd-lab: empty.opdrun.zip holds no checkpoint (the run kept none before it was exported), so it cannot be resumed: start a new run.');
  }, 120_000);
});
