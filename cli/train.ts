/**
 * `opd-lab train`: a distillation run from the terminal, driven by the same run loop as the lab's
 * Distill panel (workers/distill/loop.ts), with the same knobs (workers/contract/knobs.ts: every
 * knob's flag, default, range and help come from there). Writes RUN_DIR/config.json, RUN_DIR/metrics.jsonl (one line per step and per
 * evaluation, with every field of StepMetrics / EvalMetrics; the progress line shows a few), RUN_DIR/checkpoints/step-N.safetensors and the final student as a Hugging Face
 * folder in RUN_DIR/student/ (a LoRA run's merged weights), and with --lora R the LoRA adapter as
 * PEFT saves it in RUN_DIR/adapter/ (adapter_config.json, adapter_model.safetensors). Progress goes to the terminal (stderr); nothing already written is
 * lost when a later step fails.
 *
 * `opd-lab eval`: held-out accuracy of a model folder on a built-in task.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { totalmem } from 'node:os';
import type { Command } from './main';
import { UsageError, wasGiven, type OptionSpec, type Parsed } from './args';
import { cliDevice } from './device';
import { DTYPE_HELP, folderOptions, isHubArgument, openModel } from './models';
import { writeFolder } from '../workers/node/fs-folder';
import { readModelFolder } from '../workers/models/folder';
import { DistillRun, type PromptRoute } from '../workers/distill/run';
import { evaluateFolder } from '../workers/distill/evaluate';
import { builtInTask, TASK_NAMES } from '../workers/tasks/registry';
import { knobRoutes, resolveTasks, runLoop } from '../workers/distill/loop';
import { distillOptions } from '../workers/distill/setup';
import { DEFAULT_SETUP, KNOBS, rangeText, setupProblem, choiceWord, knobProblem, type Knob, type TrainSetup } from '../workers/contract/knobs';
import type { EvalMetrics } from '../workers/contract/run';
import { PRESETS, type Preset } from '../workers/contract/presets';
import { promptSourceOfFile, teacherRenderingSentence } from '../workers/contract/prompts';
import { preparePromptSet, type PromptSetPrepared } from '../workers/prompts/set';
import { promptStudentOf, promptTeacherOf } from '../workers/prompts/render';
import { isZip } from '../workers/contract/runFile';
import { readRunFile, type ReadRunFile } from './run';

function bar(done: number, total: number, width = 24): string {
  const filled = Math.round((done / Math.max(1, total)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** A model option as the run records it: a folder's absolute path, a Hub id as given. */
const where = (model: string) => (isHubArgument(model) ? model : resolve(model));

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** A knob's value as the command line gave it: a choice's word for none ('none') is ''. */
export const knobFromCli = (k: Knob, v: string | number | boolean | undefined): string | number =>
  k.kind === 'choice' ? (v === k.noneWord ? '' : String(v)) : Number(v);

/** The option of `opd-lab train` for a knob of the schema: its flag, default, help and check. */
export function knobOption(k: Knob): OptionSpec {
  const usedBy = k.usedBy ? ` Used by ${k.usedBy.join(', ')}.` : '';
  return {
    kind: k.kind === 'choice' ? 'string' : k.integer ? 'int' : 'number',
    ...(k.requiredOnCli ? { required: true } : { default: k.kind === 'choice' ? choiceWord(k, k.default) : k.default }),
    help: `${k.help} Must ${rangeText(k)}.${usedBy}`,
    check: (v) => knobProblem(k, knobFromCli(k, v)),
  };
}

/** The options of `opd-lab train` that are knobs, by flag, in the schema's order. */
export const KNOB_OPTIONS: Record<string, OptionSpec> = Object.fromEntries(KNOBS.map((k) => [k.flag, knobOption(k)]));

/**
 * The setup a command line asks for: the schema's defaults, then the preset's values, then (when
 * resuming from a run file) the run's setup, then the options given.
 */
export function setupFromOptions(o: Parsed, preset: Preset | undefined, runSetup?: TrainSetup): TrainSetup {
  const setup: Record<string, unknown> = { ...DEFAULT_SETUP, ...preset?.setup, ...runSetup };
  for (const k of KNOBS) if (wasGiven(o, k.flag)) setup[k.name] = knobFromCli(k, o[k.flag]);
  return setup as TrainSetup;
}

export const trainCommand: Command = {
  summary: 'distil a student from a teacher (opd-sampled, opd-full, sft or rl) and write the run',
  options: {
    student: { kind: 'string', help: 'trainable student folder (GPT-2, Llama, Qwen2 or Qwen3, with model.safetensors) or Hugging Face id ORG/NAME[@REVISION]; required unless --preset' },
    teacher: { kind: 'string', help: 'teacher folder or Hugging Face id (same tokenizer); required unless --preset' },
    'teacher-dtype': { kind: 'string', help: `the teacher's ${DTYPE_HELP}; a student trains from model.safetensors` },
    preset: { kind: 'string', help: `a ready-made experiment on the built-in models (${Object.keys(PRESETS).join(', ')}): its folders and knobs, which the options given override` },
    models: { kind: 'string', default: 'models', help: 'where the built-in folders of --preset are' },
    prompts: {
      kind: 'string',
      help: 'train on your own prompts instead of --task: a .txt file (one prompt per line, blank lines skipped) or a .jsonl file (a "prompt" string or "messages" array per line); no verifier, so evaluations report the held-out reverse KL and sampled KL instead of accuracy (split with --held-out and --split-seed)',
    },
    route: {
      kind: 'string',
      repeatable: true,
      help: `route a second prompt set to its own teacher: TASK=TEACHER_DIR (a built-in task, ${TASK_NAMES.join(', ')}, and a teacher folder or Hugging Face id of the student's tokenizer); repeat it or separate routes with commas. Each step's prompts come from the main task and each routed task in turn, each scored (and for sft and gkd sampled) by its own teacher; every evaluation reports each routed task's held-out accuracy and reverse KL against its own teacher`,
    },
    'chat-lines': { kind: 'flag', help: 'with a .txt --prompts file: each line is a user message, rendered with each model\'s chat template (as a .jsonl "messages" line is)' },
    out: { kind: 'string', required: true, help: 'run folder to write (created; must be empty or absent unless --resume)' },
    ...KNOB_OPTIONS,
    resume: {
      kind: 'string',
      help: 'continue from this checkpoint file (written by an earlier run), or from a run file exported by the Distill panel (NAME.opdrun.zip: its checkpoint, and its setup for the knobs not given; its steps and evaluations up to the checkpoint open metrics.jsonl)',
    },
    json: { kind: 'flag', help: 'print the final summary as JSON' },
  },
  async run(o) {
    const out = resolve(String(o.out));
    if (!o.resume && existsSync(out) && existsSync(join(out, 'metrics.jsonl'))) {
      throw new Error(`${out} already holds a run (metrics.jsonl): choose another --out, or --resume one of its checkpoints`);
    }
    let preset: Preset | undefined;
    if (o.preset !== undefined) {
      preset = PRESETS[String(o.preset)];
      if (!preset) throw new UsageError(`train: unknown --preset '${String(o.preset)}' (presets: ${Object.keys(PRESETS).join(', ')})`);
    }
    // A run file (the Distill panel's export) brings its setup and history; a bare checkpoint only its state.
    let runFile: ReadRunFile | undefined;
    if (o.resume !== undefined) {
      const resumePath = String(o.resume);
      if (!existsSync(resumePath)) throw new UsageError(`train: --resume ${resumePath}: no such file`);
      if (isZip(new Uint8Array(readFileSync(resumePath).subarray(0, 4)))) {
        runFile = readRunFile(resumePath);
        if (!runFile.checkpoint) throw new Error(`${basename(resumePath)} holds no checkpoint (the run kept none before it was exported), so it cannot be resumed: start a new run.`);
      }
    }
    const setup = setupFromOptions(o, preset, runFile?.record.setup);
    if (o.prompts !== undefined && wasGiven(o, 'task')) throw new UsageError('train: --prompts and --task are two sources of prompts: give one of them');
    if (o['chat-lines'] && o.prompts === undefined) throw new UsageError('train: --chat-lines reads the lines of a --prompts file as user messages: give --prompts FILE.txt');
    const problem = setupProblem(setup);
    if (problem) throw new UsageError(`train: ${problem}`);
    const routeArgs = o.route !== undefined ? parseRoutes(String(o.route), o.prompts !== undefined ? null : setup.task) : [];
    const studentDir = o.student !== undefined ? String(o.student) : preset ? join(String(o.models), preset.student) : undefined;
    const teacherDir = o.teacher !== undefined ? String(o.teacher) : preset ? join(String(o.models), preset.teacher) : undefined;
    if (!studentDir || !teacherDir) throw new UsageError('train: --student and --teacher are required (or a --preset that names them)');
    const student = await readModelFolder(await openModel(studentDir), { requireWeights: true });
    // A dtype is chosen against the adapter (float16 graphs need shader-f16): only then is the device needed this early.
    const teacherOptions = o['teacher-dtype'] !== undefined ? folderOptions(o['teacher-dtype'], await cliDevice(), '--teacher-dtype') : {};
    const teacher = await readModelFolder(await openModel(teacherDir), teacherOptions);
    let promptSet: PromptSetPrepared | undefined;
    const promptFile = o.prompts !== undefined ? resolve(String(o.prompts)) : undefined;
    if (promptFile) {
      if (!existsSync(promptFile)) throw new UsageError(`train: --prompts ${String(o.prompts)}: no such file`);
      promptSet = preparePromptSet(promptSourceOfFile(basename(promptFile), readFileSync(promptFile, 'utf8'), Boolean(o['chat-lines'])), setup, promptStudentOf(student), promptTeacherOf(teacher));
      const s = promptSet.summary;
      process.stderr.write(`${s.label}: ${s.train} training / ${s.heldOut} held-out prompts. ${teacherRenderingSentence(s)}\n`);
    }
    const { task, keptTask, routedTask } = resolveTasks(setup, student.rawConfig, promptSet && { set: promptSet, student: promptStudentOf(student), teacher: promptTeacherOf(teacher) });
    // --route-task (the panel's knob): the routed task, scored by the student as loaded or by --teacher.
    const routed: (PromptRoute & { maxTokens: number; dir: string })[] = knobRoutes(setup, routedTask, { student, teacher }).map((r) => ({
      ...r, maxTokens: routedTask!.maxTokens, dir: setup.routeTeacher === 'student' ? studentDir : teacherDir,
    }));
    if (routedTask && routeArgs.some((r) => r.task === setup.routeTask)) {
      throw new UsageError(`train: --route-task ${setup.routeTask} and --route ${setup.routeTask}=… route one task twice: give it one teacher`);
    }
    for (const r of routeArgs) {
      const info = builtInTask(r.task, student.rawConfig);
      routed.push({ task: info.task, maxTokens: info.maxTokens, teacher: await readModelFolder(await openModel(r.dir)), label: r.task, dir: r.dir });
    }
    const steps = setup.totalSteps;
    const device = await cliDevice();
    const checkpoint = runFile ? runFile.checkpoint!.bytes : o.resume ? new Uint8Array(readFileSync(String(o.resume))) : undefined;
    // On a CPU adapter (SwiftShader, lavapipe) the GPU's memory is the machine's: the memory
    // check can hold the run to it. A GPU does not say how much it has.
    const memoryBudgetBytes = device.adapterInfo?.isFallbackAdapter ? totalmem() : undefined;
    // Routed tasks share the run's max tokens: the longest answer any of its tasks needs.
    const maxTokens = Math.max(task.maxTokens, ...routed.map((r) => r.maxTokens));
    const routes = routed.map(({ task: t, teacher: tr, label }) => ({ task: t, teacher: tr, label }));
    const run = await DistillRun.create(device, { student, teacher, task: task.task, options: distillOptions(setup, maxTokens), checkpoint, keptTask, memoryBudgetBytes, routes });
    try {
      mkdirSync(join(out, 'checkpoints'), { recursive: true });
      writeFileSync(join(out, 'config.json'), JSON.stringify({ student: where(studentDir), teacher: where(teacherDir), task: promptSet ? null : task.task.name, keptTask: keptTask?.task.name ?? null,
        prompts: promptSet ? { file: promptFile, prompts: promptSet.summary.prompts, train: promptSet.train.length, heldOut: promptSet.heldOut.length, heldOutFraction: setup.heldOutFraction, splitSeed: setup.splitSeed, teacherReads: promptSet.summary.teacherReads } : null, routes: routed.map((r) => ({ task: r.task.name, teacher: where(r.dir) })), preset: preset?.name ?? null, options: run.options, resumedFrom: o.resume ?? null }, null, 2) + '\n');
      const metricsFile = join(out, 'metrics.jsonl');
      const record = (line: object) => appendFileSync(metricsFile, JSON.stringify(line) + '\n');
      // A run file's history up to its checkpoint opens a new run folder, so its curves go on from there.
      if (runFile && !existsSync(metricsFile)) {
        const upTo = run.step;
        // In the order the run wrote them: each step, then the evaluation made after it.
        const lines = [...runFile.record.steps.map((m) => ({ at: m.step, order: 0, line: { type: 'step', ...m } })), ...runFile.record.evals.map((e) => ({ at: e.step, order: 1, line: { type: 'eval', ...e } }))];
        for (const l of lines.filter((l) => l.at <= upTo).sort((a, b) => a.at - b.at || a.order - b.order)) record(l.line);
        process.stderr.write(`${basename(String(o.resume))}: resuming ${runFile.record.label} from its checkpoint of step ${upTo} of ${steps}\n`);
      }
      const tty = process.stderr.isTTY;
      const end = await runLoop(run, setup, {
        step: (m) => record({ type: 'step', ...m }),
        evaluation: (e) => record({ type: 'eval', ...e }),
        checkpoint: (step, bytes) => {
          const file = join(out, 'checkpoints', `step-${step}.safetensors`);
          writeFileSync(file, bytes);
          record({ type: 'checkpoint', step, file });
        },
        stepDone: (m, lastEval) => {
          const line = `${bar(m.step, steps)} step ${m.step}/${steps}  loss ${fmt(m.loss, 4)}  reverse KL ${fmt(m.reverseKL)}  ${m.reward !== undefined ? `reward ${fmt(m.reward, 2)}` : `sampled KL ${fmt(m.sampledKL)}`}${m.topkOverlap !== undefined ? `  top-${m.topkK} overlap ${fmt(m.topkOverlap, 2)}` : ''}${heldOut(lastEval)}${lastEval?.kept ? `  kept ${lastEval.kept.task} ${(lastEval.kept.accuracy * 100).toFixed(1)}%` : ''}${routedText(lastEval)}${m.problem ? `  (${m.problem})` : ''}`;
          process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
        },
      });
      if (tty) process.stderr.write('\n');
      if (end.state === 'failed') {
        if (end.numerics === undefined) throw end.exception;
        const kept = end.checkpointStep !== null ? ` and the checkpoint of step ${end.checkpointStep}` : '';
        throw new Error(`train: failed at step ${end.failedAt} of ${steps}: ${end.numerics} The metrics${kept} are in ${out}.`);
      }
      const lastEval = end.lastEval;
      const files = await run.exportStudent();
      await writeFolder(join(out, 'student'), files);
      // PEFT records its base as it was loaded: here, the student folder as the command named it.
      const adapterFiles = await run.exportAdapter(studentDir);
      const adapterDir = adapterFiles ? join(out, 'adapter') : null;
      if (adapterFiles) await writeFolder(adapterDir!, adapterFiles);
      const summary = { out, steps: run.step, objective: setup.objective, student: join(out, 'student'), adapter: adapterDir, flops: run.flops, finalEval: lastEval ? { accuracy: lastEval.accuracy ?? null, reverseKL: lastEval.reverseKL, sampledKL: lastEval.sampledKL ?? null, prompts: lastEval.prompts, kept: lastEval.kept ? { task: lastEval.kept.task, accuracy: lastEval.kept.accuracy } : null, routed: (lastEval.routed ?? []).map((r) => ({ task: r.task, teacher: r.teacher, accuracy: r.accuracy ?? null, reverseKL: r.reverseKL })) } : null };
      if (o.json) console.log(JSON.stringify(summary, null, 2));
      else {
        const kept = lastEval?.kept ? `, kept ${lastEval.kept.task} ${(lastEval.kept.accuracy * 100).toFixed(1)}%` : '';
        const measured = !lastEval
          ? `held-out ${task.task.name} not measured`
          : lastEval.accuracy !== undefined
            ? `held-out ${task.task.name} accuracy ${(lastEval.accuracy * 100).toFixed(1)}%`
            : `held-out reverse KL ${fmt(lastEval.reverseKL, 4)} and sampled KL ${fmt(lastEval.sampledKL ?? NaN, 4)} nats per token on ${lastEval.prompts} prompts of ${task.task.name}`;
        console.log(`wrote ${out}: ${run.step} steps of ${run.options.objective}; ${measured}${kept}${routedText(lastEval, ', routed', ',')}; the student is in ${join(out, 'student')}${adapterDir ? ` (LoRA merged), its PEFT adapter in ${adapterDir}` : ''}`);
      }
    } finally {
      await run.release();
    }
  },
};

/**
 * `--route TASK=TEACHER_DIR[,TASK=TEACHER_DIR…]` as routes, checked before any folder is read:
 * each a built-in task, not the main task (`mainTask`; null on a prompt set), routed once, and a
 * teacher folder that exists (or a Hugging Face id). Each problem is one UsageError sentence.
 */
export function parseRoutes(value: string, mainTask: string | null): { task: string; dir: string }[] {
  const routes: { task: string; dir: string }[] = [];
  for (const part of value.split(',').map((p) => p.trim())) {
    const eq = part.indexOf('=');
    const name = eq > 0 ? part.slice(0, eq).trim() : '';
    const dir = eq > 0 ? part.slice(eq + 1).trim() : '';
    if (!name || !dir) throw new UsageError(`train: --route '${part}' is not TASK=TEACHER_DIR (e.g. subtraction=models/recovery-student)`);
    if (!(TASK_NAMES as readonly string[]).includes(name)) throw new UsageError(`train: --route ${part}: unknown task '${name}' (built-in tasks: ${TASK_NAMES.join(', ')})`);
    if (name === mainTask) throw new UsageError(`train: --route ${part}: ${name} is the run's main task, which --teacher scores; route another task`);
    if (routes.some((r) => r.task === name)) throw new UsageError(`train: --route routes ${name} twice: give each task one teacher`);
    if (!isHubArgument(dir) && !existsSync(dir)) throw new UsageError(`train: --route ${part}: no such teacher folder ${dir}`);
    routes.push({ task: name, dir });
  }
  return routes;
}

/** Each routed task's held-out accuracy (or, without a verifier, its reverse KL) for a progress or summary line. */
function routedText(e: EvalMetrics | undefined, lead = '', sep = ''): string {
  const routed = e?.routed ?? [];
  if (routed.length === 0) return '';
  const parts = routed.map((r) => `${r.task} ${r.accuracy !== undefined ? `${(r.accuracy * 100).toFixed(1)}%` : `reverse KL ${fmt(r.reverseKL)}`}`);
  return lead ? `${lead} ${parts.join(`${sep} `)}` : parts.map((p) => `  ${p}`).join('');
}

/** The progress line's held-out figure: accuracy with a verifier, else the reverse KL. */
function heldOut(e: EvalMetrics | undefined): string {
  if (!e) return '';
  return e.accuracy !== undefined ? `  held-out ${(e.accuracy * 100).toFixed(1)}%` : `  held-out reverse KL ${fmt(e.reverseKL)}`;
}

export const evalCommand: Command = {
  summary: "held-out accuracy of a model folder on a built-in task (greedy answers, the task's verifier)",
  options: {
    model: { kind: 'string', required: true, help: 'model folder (GPT-2, Llama, Qwen2 or Qwen3) or Hugging Face id ORG/NAME[@REVISION]' },
    task: { kind: 'string', default: 'addition', help: `built-in task (${TASK_NAMES.join(', ')})` },
    prompts: { kind: 'int', default: 500, min: 1, max: 100_000, help: 'held-out prompts' },
    json: { kind: 'flag', help: 'print JSON (with every answer)' },
  },
  async run(o) {
    const folder = await readModelFolder(await openModel(String(o.model)));
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
