/**
 * `opd-lab run show FILE`: what a run file holds (`NAME.opdrun.zip`, exported from the Distill
 * panel's run list: workers/contract/runFile.ts): its setup, where it stands, its metrics and its
 * checkpoint, whose trainer metadata is read to check it is one `opd-lab train --resume` takes.
 * `readRunFile` is also how `opd-lab train --resume FILE.opdrun.zip` reads one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from './main';
import { UsageError } from './args';
import { RunFileError, unpackRunFile, type RunRecord } from '../workers/contract/runFile';
import { readSafetensors } from '../workers/models/safetensors';
import { CHECKPOINT_FORMAT } from '../workers/train/checkpoint';

export interface ReadRunFile {
  record: RunRecord;
  checkpoint: { step: number; bytes: Uint8Array; format: string; trainerStep: number; runStep: number | null } | null;
}

/** A run file read and its checkpoint's metadata checked; the error is one sentence naming the file. */
export function readRunFile(path: string): ReadRunFile {
  const name = basename(path);
  if (!existsSync(path)) throw new UsageError(`${path}: no such file`);
  let unpacked: ReturnType<typeof unpackRunFile>;
  try {
    unpacked = unpackRunFile(new Uint8Array(readFileSync(path)), name);
  } catch (e) {
    if (e instanceof RunFileError) throw new Error(e.message);
    throw e;
  }
  const { record, checkpoint } = unpacked;
  if (!checkpoint) return { record, checkpoint: null };
  let meta: { format?: string; step?: number; run?: { step?: number } };
  try {
    meta = JSON.parse(readSafetensors(checkpoint.bytes, `${name}: checkpoint-step-${checkpoint.step}.safetensors`).metadata['opd-lab'] ?? '{}');
  } catch (e) {
    throw new Error(`${name}'s checkpoint of step ${checkpoint.step} cannot be read (${e instanceof Error ? e.message : String(e)}): export the run again.`);
  }
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${name}'s checkpoint of step ${checkpoint.step} is not an OPD Lab trainer checkpoint (its metadata names ${meta.format === undefined ? 'no format' : `the format ${JSON.stringify(meta.format)}`}): export the run again from the lab.`);
  return { record, checkpoint: { ...checkpoint, format: meta.format, trainerStep: meta.step ?? NaN, runStep: meta.run?.step ?? null } };
}

const fmt = (x: number | undefined, digits = 3) => (x === undefined ? '—' : Number.isFinite(x) ? x.toFixed(digits) : String(x));
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export const runCommand: Command = {
  summary: 'show what a run file (NAME.opdrun.zip, exported from the Distill panel) holds: setup, metrics, checkpoint',
  usage: 'opd-lab run show FILE [--json]',
  positional: (argv) => {
    if (argv[0] !== 'show') throw new UsageError(`run: the subcommand is 'show' (opd-lab run show FILE), got ${argv[0] === undefined ? 'none' : `'${argv[0]}'`}`);
    if (argv[1] === undefined || argv[1].startsWith('--')) throw new UsageError('run show: name the run file (opd-lab run show FILE.opdrun.zip)');
    return ['--file', argv[1], ...argv.slice(2)];
  },
  options: {
    file: { kind: 'string', required: true, help: 'the run file (given as opd-lab run show FILE)' },
    json: { kind: 'flag', help: 'print JSON' },
  },
  async run(o) {
    const path = String(o.file);
    const { record: r, checkpoint } = readRunFile(path);
    const lastStep = r.steps.at(-1);
    const lastEval = r.evals.at(-1);
    if (o.json) {
      const { examples: _x, probes: _p, ...evalNumbers } = (lastEval ?? {}) as Record<string, unknown>;
      console.log(JSON.stringify({
        id: r.id, label: r.label, status: r.status, step: r.step, totalSteps: r.totalSteps, createdAt: new Date(r.createdAt).toISOString(),
        setup: r.setup, prompts: r.prompts ? r.prompts.label : null, models: r.models,
        steps: r.steps.length, evals: r.evals.length, snapshots: r.snapshots.length,
        stepsRange: r.steps.length ? [r.steps[0].step, lastStep!.step] : null,
        lastStep: lastStep ?? null, lastEval: lastEval ? evalNumbers : null,
        checkpoint: checkpoint ? { step: checkpoint.step, bytes: checkpoint.bytes.byteLength, format: checkpoint.format, trainerStep: checkpoint.trainerStep, runStep: checkpoint.runStep } : null,
      }, null, 2));
      return;
    }
    const s = r.setup;
    console.log(`${basename(path)}: ${r.label}, ${r.status} at step ${r.step} of ${r.totalSteps}`);
    console.log(`  setup: ${s.objective} on ${r.prompts ? r.prompts.label : s.task}, ${s.totalSteps} steps of ${plural(s.batchPrompts, 'prompt')} × ${plural(s.groupSize, 'completion')}, lr ${s.lr}, seed ${s.seed}`);
    const origin = (m: RunRecord['models']['student']) => (m.origin ? Object.values(m.origin)[0] : m.label);
    console.log(`  student: ${origin(r.models.student)}`);
    console.log(`  teacher: ${origin(r.models.teacher)}`);
    console.log(`  ${plural(r.steps.length, 'step')} kept${lastStep ? ` (last: step ${lastStep.step}, loss ${fmt(lastStep.loss, 4)}, reverse KL ${fmt(lastStep.reverseKL)})` : ''}; ${plural(r.evals.length, 'evaluation')}${lastEval ? ` (last at step ${lastEval.step}: ${lastEval.accuracy !== undefined ? `accuracy ${(100 * lastEval.accuracy).toFixed(1)}%, ` : ''}reverse KL ${fmt(lastEval.reverseKL)})` : ''}`);
    console.log(
      checkpoint
        ? `  checkpoint of step ${checkpoint.step} (${mb(checkpoint.bytes.byteLength)}): opd-lab train --student DIR --teacher DIR --out RUN_DIR --resume ${basename(path)} goes on from it`
        : '  no checkpoint: this run cannot be resumed',
    );
  },
};
