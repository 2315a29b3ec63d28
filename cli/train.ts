/**
 * `opd-lab train`: a distillation run from the terminal, on the same loop as the lab's Distill
 * panel. Writes RUN_DIR/config.json, RUN_DIR/metrics.jsonl (one line per step and per
 * evaluation), RUN_DIR/checkpoints/step-N.safetensors and the final student as a Hugging Face
 * folder in RUN_DIR/student/. Progress goes to the terminal (stderr); nothing already written is
 * lost when a later step fails.
 *
 * `opd-lab eval`: held-out accuracy of a model folder on a built-in task.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from './main';
import { UsageError, wasGiven } from './args';
import { cliDevice } from './device';
import { dirSource } from '../workers/node/fs-source';
import { writeFolder } from '../workers/node/fs-folder';
import { readModelFolder } from '../workers/models/folder';
import { DistillRun, OBJECTIVES, type DistillOptions, type ObjectiveName } from '../workers/distill/run';
import { evaluateFolder } from '../workers/distill/evaluate';
import { builtInTask, keptTaskOf, TASK_NAMES } from '../workers/tasks/registry';
import { PRESETS, type Preset } from '../workers/distill/presets';

function bar(done: number, total: number, width = 24): string {
  const filled = Math.round((done / Math.max(1, total)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

export const trainCommand: Command = {
  summary: 'distil a student from a teacher (opd-sampled, opd-full, sft or rl) and write the run',
  options: {
    student: { kind: 'string', help: 'trainable student folder (GPT-2 family with model.safetensors); required unless --preset' },
    teacher: { kind: 'string', help: 'teacher folder (same tokenizer); required unless --preset' },
    preset: { kind: 'string', help: `a ready-made experiment on the built-in models (${Object.keys(PRESETS).join(', ')}): its folders and setup, which the other options override` },
    models: { kind: 'string', default: 'models', help: 'where the built-in folders of --preset are' },
    'keep-task': { kind: 'string', help: `a built-in task evaluated beside --task and never trained on, a skill to keep ('none': no such task; default: the student's config.json task_kept)` },
    objective: { kind: 'string', default: 'opd-sampled', help: `one of ${OBJECTIVES.join(', ')}` },
    steps: { kind: 'int', required: true, min: 1, max: 1_000_000, help: 'optimizer steps' },
    out: { kind: 'string', required: true, help: 'run folder to write (created; must be empty or absent unless --resume)' },
    task: { kind: 'string', default: 'addition', help: `built-in task (${TASK_NAMES.join(', ')})` },
    batch: { kind: 'int', default: 8, min: 1, max: 1024, help: 'prompts per step (B)' },
    group: { kind: 'int', default: 4, min: 1, max: 256, help: 'completions per prompt (G)' },
    lr: { kind: 'number', default: 1e-3, min: 1e-8, max: 0.5, help: 'peak learning rate' },
    warmup: { kind: 'int', default: 0, min: 0, help: 'warm-up steps' },
    schedule: { kind: 'string', default: 'constant', help: 'learning-rate schedule: constant, linear or cosine' },
    lora: { kind: 'int', default: 0, min: 0, max: 256, help: 'LoRA rank (0: full fine-tune)' },
    'kl-coef': { kind: 'number', default: 1, min: 0, help: 'KL coefficient λ of the OPD advantages' },
    discount: { kind: 'number', default: 0, min: 0, max: 1, help: 'discount γ of the OPD advantages' },
    clip: { kind: 'number', default: 0.2, min: 0, max: 10, help: 'PPO clip ε of the importance ratio (0: none)' },
    temperature: { kind: 'number', default: 1, min: 0.01, max: 100, help: 'sampling temperature' },
    'max-tokens': { kind: 'int', default: 0, min: 0, max: 4096, help: 'new tokens per completion (0: what the task needs)' },
    'eval-every': { kind: 'int', default: 10, min: 0, help: 'evaluate every N steps (0: only at the end)' },
    'eval-prompts': { kind: 'int', default: 128, min: 1, max: 100_000, help: 'held-out prompts per evaluation' },
    'checkpoint-every': { kind: 'int', default: 0, min: 0, help: 'checkpoint every N steps (0: only at the end)' },
    seed: { kind: 'int', default: 0, help: 'seed of the prompts and the sampling' },
    resume: { kind: 'string', help: 'continue from this checkpoint file (written by an earlier run)' },
    json: { kind: 'flag', help: 'print the final summary as JSON' },
  },
  async run(o) {
    const objective = String(o.objective);
    if (!(OBJECTIVES as readonly string[]).includes(objective)) throw new UsageError(`train: --objective must be one of ${OBJECTIVES.join(', ')}, got '${objective}'`);
    const schedule = String(o.schedule);
    if (!['constant', 'linear', 'cosine'].includes(schedule)) throw new UsageError(`train: --schedule must be constant, linear or cosine, got '${schedule}'`);
    const out = resolve(String(o.out));
    if (!o.resume && existsSync(out) && existsSync(join(out, 'metrics.jsonl'))) {
      throw new Error(`${out} already holds a run (metrics.jsonl): choose another --out, or --resume one of its checkpoints`);
    }
    let preset: Preset | undefined;
    if (o.preset !== undefined) {
      preset = PRESETS[String(o.preset)];
      if (!preset) throw new UsageError(`train: unknown --preset '${String(o.preset)}' (presets: ${Object.keys(PRESETS).join(', ')})`);
    }
    // An option given on the command line wins over the preset's value.
    const pick = <T,>(name: string, fromPreset: T | undefined): T => (preset && fromPreset !== undefined && !wasGiven(o, name) ? fromPreset : (o[name] as T));
    const studentDir = o.student !== undefined ? String(o.student) : preset ? join(String(o.models), preset.student) : undefined;
    const teacherDir = o.teacher !== undefined ? String(o.teacher) : preset ? join(String(o.models), preset.teacher) : undefined;
    if (!studentDir || !teacherDir) throw new UsageError('train: --student and --teacher are required (or a --preset that names them)');
    const student = await readModelFolder(await dirSource(studentDir), { requireWeights: true });
    const teacher = await readModelFolder(await dirSource(teacherDir));
    const { task, maxTokens } = builtInTask(String(pick('task', preset?.setup.task)), student.rawConfig);
    const keepName = o['keep-task'] !== undefined ? String(o['keep-task']) : preset?.setup.keepTask;
    const keptTask = keepName === undefined ? keptTaskOf(student.rawConfig) : keepName === 'none' || keepName === '' ? null : builtInTask(keepName, student.rawConfig);
    if (keptTask && keptTask.task.name === task.name) throw new UsageError(`train: --keep-task must differ from --task (both are ${task.name})`);
    const steps = Number(o.steps);
    const options: Partial<DistillOptions> = {
      objective: pick('objective', preset?.setup.objective) as ObjectiveName,
      batchPrompts: pick('batch', preset?.setup.batchPrompts), groupSize: pick('group', preset?.setup.groupSize), lr: pick('lr', preset?.setup.lr), warmupSteps: Number(o.warmup), totalSteps: steps,
      schedule: schedule as DistillOptions['schedule'], loraRank: Number(o.lora), klCoef: Number(o['kl-coef']), discount: Number(o.discount),
      clipEpsilon: Number(o.clip), temperature: Number(o.temperature), maxTokens: Number(o['max-tokens']) || maxTokens,
      evalPrompts: pick('eval-prompts', preset?.setup.evalPrompts), seed: Number(o.seed),
    };
    const device = await cliDevice();
    const checkpoint = o.resume ? new Uint8Array(readFileSync(String(o.resume))) : undefined;
    const run = await DistillRun.create(device, { student, teacher, task, options, checkpoint, keptTask });
    mkdirSync(join(out, 'checkpoints'), { recursive: true });
    writeFileSync(join(out, 'config.json'), JSON.stringify({ student: resolve(studentDir), teacher: resolve(teacherDir), task: task.name, keptTask: keptTask?.task.name ?? null, preset: preset?.name ?? null, options: run.options, resumedFrom: o.resume ?? null }, null, 2) + '\n');
    const metricsFile = join(out, 'metrics.jsonl');
    const record = (line: object) => appendFileSync(metricsFile, JSON.stringify(line) + '\n');
    const evalEvery = Number(pick('eval-every', preset?.setup.evalEvery));
    const checkpointEvery = Number(o['checkpoint-every']);
    const saveCheckpoint = async () => {
      const file = join(out, 'checkpoints', `step-${run.step}.safetensors`);
      writeFileSync(file, await run.checkpoint());
      record({ type: 'checkpoint', step: run.step, file });
    };
    let lastEval = run.step === 0 ? await run.evaluate() : undefined;
    if (lastEval) record({ type: 'eval', ...lastEval });
    const tty = process.stderr.isTTY;
    try {
      while (run.step < steps) {
        const m = await run.trainStep();
        record({ type: 'step', ...m });
        if ((evalEvery > 0 && m.step % evalEvery === 0) || m.step === steps) {
          lastEval = await run.evaluate();
          record({ type: 'eval', ...lastEval });
        }
        if ((checkpointEvery > 0 && m.step % checkpointEvery === 0) || m.step === steps) await saveCheckpoint();
        const line = `${bar(m.step, steps)} step ${m.step}/${steps}  loss ${fmt(m.loss, 4)}  reverse KL ${fmt(m.reverseKL)}  reward ${fmt(m.reward, 2)}${lastEval ? `  held-out ${(lastEval.accuracy * 100).toFixed(1)}%` : ''}${lastEval?.kept ? `  kept ${lastEval.kept.task} ${(lastEval.kept.accuracy * 100).toFixed(1)}%` : ''}${m.problem ? `  (${m.problem})` : ''}`;
        process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
      }
      if (tty) process.stderr.write('\n');
      const files = await run.exportStudent();
      await writeFolder(join(out, 'student'), files);
      const summary = { out, steps: run.step, objective, flops: run.flops, finalEval: lastEval ? { accuracy: lastEval.accuracy, reverseKL: lastEval.reverseKL, prompts: lastEval.prompts, kept: lastEval.kept ? { task: lastEval.kept.task, accuracy: lastEval.kept.accuracy } : null } : null };
      if (o.json) console.log(JSON.stringify(summary, null, 2));
      else {
        const kept = lastEval?.kept ? `, kept ${lastEval.kept.task} ${(lastEval.kept.accuracy * 100).toFixed(1)}%` : '';
        console.log(`wrote ${out}: ${run.step} steps of ${run.options.objective}; held-out ${task.name} accuracy ${lastEval ? `${(lastEval.accuracy * 100).toFixed(1)}%` : 'not measured'}${kept}; the student is in ${join(out, 'student')}`);
      }
    } finally {
      await run.release();
    }
  },
};

export const evalCommand: Command = {
  summary: "held-out accuracy of a model folder on a built-in task (greedy answers, the task's verifier)",
  options: {
    model: { kind: 'string', required: true, help: 'model folder (GPT-2 family ONNX)' },
    task: { kind: 'string', default: 'addition', help: `built-in task (${TASK_NAMES.join(', ')})` },
    prompts: { kind: 'int', default: 500, min: 1, max: 100_000, help: 'held-out prompts' },
    json: { kind: 'flag', help: 'print JSON (with every answer)' },
  },
  async run(o) {
    const folder = await readModelFolder(await dirSource(String(o.model)));
    const { task, maxTokens } = builtInTask(String(o.task), folder.rawConfig);
    const device = await cliDevice();
    const result = await evaluateFolder(device, folder, task, Number(o.prompts), maxTokens);
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`${folder.label}: held-out accuracy ${(result.accuracy * 100).toFixed(1)}% (${result.correct}/${result.prompts} ${task.name} prompts)`);
      for (const e of result.examples.slice(0, 5)) console.log(`  ${e.correct ? 'ok   ' : 'wrong'} ${JSON.stringify(e.prompt + e.completion)}${e.reason ? `  ${e.reason}` : ''}`);
    }
  },
};
