/**
 * A distillation run kept whole: what the page stores in IndexedDB (app/state/runArchive.ts) and
 * what one run file carries (`NAME.opdrun.zip`): the setup, where the models came from, every
 * step's and evaluation's metrics, heatmap snapshots, and the latest checkpoint. The page writes
 * and imports it; `opd-lab run show FILE` reads it and `opd-lab train --resume FILE` resumes from
 * its checkpoint.
 *
 * The file is a zip (fflate) of `run.json` (a RunRecord) and, when the run kept one,
 * `checkpoint-step-N.safetensors` (the trainer's checkpoint of step N, as `train.export`
 * 'checkpoint' gives it).
 */
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { withDefaults, type TrainSetup } from './knobs';
import type { EvalMetrics, StepMetrics } from './run';
import type { PromptTextSource } from './prompts';

export const RUN_FILE_FORMAT = 'opd-lab-run';
export const RUN_FILE_VERSION = 1;
/** The file name's ending: the page's downloads and the CLI's help say it. */
export const RUN_FILE_SUFFIX = '.opdrun.zip';

/**
 * Where a run stands. 'interrupted': it was running or paused when the page that drove it went
 * away (a reload, a closed tab, a crashed worker); it resumes from its last checkpoint.
 */
export type RunStatus = 'running' | 'paused' | 'stopped' | 'finished' | 'failed' | 'interrupted';

/**
 * How a run's model was loaded, so it can be loaded again to resume: a folder URL, a Hugging Face
 * id (with the endpoint it came from), the teacher's folder loaded as the student (the sanity
 * check), or a folder picked from the computer (which a page cannot reopen by itself: the
 * person picks it again).
 */
export type ModelOrigin = { url: string } | { hub: string; endpoint?: string } | { sameAs: 'student' | 'teacher' } | { picked: string };

export interface RunModel {
  /** The model's label as the lab showed it. */
  label: string;
  origin: ModelOrigin | null;
}

/** A checkpoint the archive holds: its bytes are stored apart (one record per checkpoint). */
export interface CheckpointMeta {
  step: number;
  bytes: number;
  /** Date.now() when it was kept. */
  savedAt: number;
}

/**
 * A heatmap kept with the run at a step (the probe prompts' per-token penalties, written at each
 * evaluation): `kind` names what `data` holds, so a reader skips kinds it does not know.
 */
export interface RunSnapshot {
  step: number;
  kind: string;
  data: unknown;
}

export interface RunRecord {
  /** Unique in the archive (random; an imported run whose id is taken gets a new one). */
  id: string;
  /** For people: the objective, the models and the date. */
  label: string;
  createdAt: number;
  updatedAt: number;
  status: RunStatus;
  /** The worker's last sentence about the run. */
  message: string;
  /** The last step done (the step counter a resumed run goes on from is its checkpoint's). */
  step: number;
  totalSteps: number;
  setup: TrainSetup;
  /** The run's prompts when they are not the setup's built-in task (pasted or a file's text). */
  prompts: PromptTextSource | null;
  models: { student: RunModel; teacher: RunModel };
  /** Every step's metrics, in order (FLOPs split by where they went). */
  steps: StepMetrics[];
  /** Every held-out evaluation, in order. */
  evals: EvalMetrics[];
  /** The checkpoints kept (oldest first); the archive keeps the last few per run. */
  checkpoints: CheckpointMeta[];
  snapshots: RunSnapshot[];
}

export class RunFileError extends Error {}

const CHECKPOINT_NAME = /^checkpoint-step-(\d+)\.safetensors$/;

/** One run file: the record, and the checkpoint when there is one. */
export function packRunFile(record: RunRecord, checkpoint: { step: number; bytes: Uint8Array } | null): Uint8Array {
  const json = JSON.stringify({ format: RUN_FILE_FORMAT, version: RUN_FILE_VERSION, run: record }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
  const files: Zippable = { 'run.json': [new TextEncoder().encode(json), { level: 6 }] };
  // Safetensors are dense floats: stored, not deflated (level 0 keeps the export quick).
  if (checkpoint) files[`checkpoint-step-${checkpoint.step}.safetensors`] = [checkpoint.bytes, { level: 0 }];
  return zipSync(files);
}

/** Non-finite metrics are written as strings ("NaN", "Infinity") and read back as numbers. */
const reviveNumbers = (_k: string, v: unknown) => (v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : v);

/** A run file read back; a RunFileError's sentence says what is wrong with it. */
export function unpackRunFile(bytes: Uint8Array, name = 'the file'): { record: RunRecord; checkpoint: { step: number; bytes: Uint8Array } | null } {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch {
    throw new RunFileError(`${name} is not a run file: it is not a zip (a run file is what the Distill panel's "Export the run" saves, ending in ${RUN_FILE_SUFFIX}).`);
  }
  const json = files['run.json'];
  if (!json) throw new RunFileError(`${name} is not a run file: it has no run.json (a run file is what the Distill panel's "Export the run" saves).`);
  let parsed: { format?: unknown; version?: unknown; run?: RunRecord };
  try {
    parsed = JSON.parse(new TextDecoder().decode(json), reviveNumbers);
  } catch {
    throw new RunFileError(`${name}'s run.json is not JSON: the file is damaged; export the run again.`);
  }
  if (parsed.format !== RUN_FILE_FORMAT) throw new RunFileError(`${name}'s run.json is not an OPD Lab run (its format is ${JSON.stringify(parsed.format)}, not '${RUN_FILE_FORMAT}').`);
  if (typeof parsed.version !== 'number' || parsed.version > RUN_FILE_VERSION) {
    throw new RunFileError(`${name} is a run file of version ${String(parsed.version)}, newer than this lab reads (${RUN_FILE_VERSION}): update the lab.`);
  }
  const r = parsed.run;
  if (!r || typeof r.id !== 'string' || !r.setup || !Array.isArray(r.steps) || !Array.isArray(r.evals)) {
    throw new RunFileError(`${name}'s run.json lacks the run's id, setup, steps or evaluations: the file is damaged; export the run again.`);
  }
  const record: RunRecord = { ...r, setup: withDefaults(r.setup), checkpoints: Array.isArray(r.checkpoints) ? r.checkpoints : [], snapshots: Array.isArray(r.snapshots) ? r.snapshots : [], prompts: r.prompts ?? null };
  let checkpoint: { step: number; bytes: Uint8Array } | null = null;
  for (const [path, data] of Object.entries(files)) {
    const m = CHECKPOINT_NAME.exec(path);
    if (m && (!checkpoint || Number(m[1]) > checkpoint.step)) checkpoint = { step: Number(m[1]), bytes: data };
  }
  return { record, checkpoint };
}

/** Whether bytes look like a zip (a run file) rather than a bare safetensors checkpoint. */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}
