/**
 * `npm run build:models [-- --out models] [--steps-scale 1]`: the recipe of the shipped models,
 * run on the lab's own trainer (WGSL on the local WebGPU adapter; on a machine without a GPU,
 * SwiftShader on the CPU). Reproducible from RECIPE.seed: the same recipe on the same adapter
 * gives the same models.
 *
 * 1. The teacher: a GPT-2 (RECIPE.teacher.config) trained from random weights by cross-entropy
 *    on the addition task's ground-truth answers (training stream, never a held-out pair), until
 *    its greedy held-out accuracy reaches RECIPE.teacher.target or its step budget ends.
 * 2. The student: a smaller GPT-2 (RECIPE.student.config) trained briefly by cross-entropy on the
 *    teacher's own samples (off-policy distillation) and stopped as soon as its held-out accuracy
 *    passes RECIPE.student.stopAbove: clearly worse than the teacher, making the local mistakes
 *    (a dropped carry) that the heatmap shows.
 * 3. The self-distillation pair (the recovery preset): the teacher's weights with one more
 *    embedding row, for the new token '-' (the mean of the others), are `recovery-teacher` (the
 *    checkpoint before fine-tuning: addition as before, no subtraction). That model fine-tuned by
 *    cross-entropy on subtraction (ground truth, training stream), with a small share of
 *    addition in every batch (RECIPE.recovery.additionPerBatch), until its held-out subtraction
 *    accuracy passes RECIPE.recovery.target, is `recovery-student`: the new skill learned,
 *    addition partly forgotten (both accuracies logged at every evaluation).
 * 4. The Llama-family student (`--only llama-student` builds it alone, leaving the others as they
 *    are): a Llama (RECIPE.llamaStudent.config: RMSNorm, rotary positions, grouped-query attention,
 *    SwiGLU, tied head) with the addition tokenizer, so the GPT-2 addition-teacher can teach it,
 *    trained by cross-entropy on ground truth (training stream) and stopped as soon as its held-out
 *    accuracy passes RECIPE.llamaStudent.stopAbove, as the GPT-2 student is.
 * 5. The reasoning pair (`--only worked` builds it alone, leaving the others as they are): the
 *    worked-addition task (workers/tasks/worked-addition.ts: every column's working written out,
 *    then the answer), a Llama teacher (RECIPE.worked.teacher) trained by cross-entropy on ground
 *    truth until its held-out accuracy reaches RECIPE.worked.teacher.target, and a smaller Llama
 *    student (RECIPE.worked.student) trained by cross-entropy on that teacher's own samples and
 *    stopped as soon as it passes RECIPE.worked.student.stopAbove (`--only worked-student` builds the
 *    student alone, taught by the worked-teacher already in --out).
 * Each folder gets the model files, `recipe.json` (this recipe, the measured accuracies and the
 * time taken) and `training-log.jsonl` (every step's loss and every evaluation).
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { nodeGpu, NODE_GPU_ADVICE } from '../workers/node/gpu';
import { acquireDevice } from '../workers/gpu/device';
import { configureOrt } from '../workers/ort/runtime';
import type { Gpt2Config } from '../workers/models/gpt2/config';
import type { LlamaConfig } from '../workers/models/llama/config';
import { numel, type FamilyConfig, type ModelParams } from '../workers/models/family';
import { familyFor } from '../workers/models/registry';
import { seededRandom } from '../workers/random/seeded-normal';
import { countGpt2Parameters, randomGpt2Params, type Gpt2Params } from '../workers/models/gpt2/params';
import type { LabTokenizer } from '../workers/models/tokenizer';
import type { LabTask } from '../workers/tasks/task';
import { ARITHMETIC_VOCAB, subtractionTask, subtractionTrainProblem } from '../workers/tasks/subtraction';
import { readModelFolder, writeModelFolder } from '../workers/models/folder';
import { tokenizerFromJson } from '../workers/models/tokenizer';
import { decoderRunner, openSamplingSession } from '../workers/sampling/runner';
import { sampleCompletions, type DecoderRunner } from '../workers/sampling/sampler';
import { Trainer } from '../workers/train/trainer';
import type { TrainSequence } from '../workers/train/batch';
import { evaluateFolder, evaluateRunner } from '../workers/distill/evaluate';
import { dirSource } from '../workers/node/fs-source';
import { builtInTask } from '../workers/tasks/registry';
import { writeFolder } from '../workers/node/fs-folder';
import {
  additionTask,
  additionTokenizerConfig,
  additionTokenizerFiles,
  additionTokenizerJson,
  ADDITION_EOS_ID,
  ADDITION_VOCAB,
  trainProblem,
  type AdditionOptions,
} from '../workers/tasks/addition';
import { maxWorkedTokens, workedAdditionTask, workedTrainProblem, WORKED_TASK_NAME, WORKED_VOCAB, type WorkedOptions } from '../workers/tasks/worked-addition';

const TASK = { digits: [1, 3] as [number, number], format: 'reversed' as const } satisfies AdditionOptions;

const base = { modelType: 'gpt2', nPositions: 32, vocabSize: ADDITION_VOCAB.length, layerNormEpsilon: 1e-5, activationFunction: 'gelu_new', bosTokenId: ADDITION_EOS_ID, eosTokenId: ADDITION_EOS_ID } as const;

export const RECIPE = {
  seed: 1,
  task: TASK,
  teacher: {
    config: { ...base, nLayer: 2, nHead: 4, nEmbd: 64, nInner: 256 } satisfies Gpt2Config,
    batch: 32, lr: 3e-3, warmupSteps: 50, maxSteps: 2000, schedule: 'cosine' as const, weightDecay: 0.01,
    evalEvery: 100, evalPrompts: 256, target: 0.97,
  },
  student: {
    config: { ...base, nLayer: 2, nHead: 4, nEmbd: 48, nInner: 192 } satisfies Gpt2Config,
    batch: 32, lr: 5e-3, warmupSteps: 20, maxSteps: 800, schedule: 'constant' as const, weightDecay: 0.01,
    evalEvery: 25, evalPrompts: 256, stopAbove: 0.45, teacherTemperature: 1,
  },
  recovery: {
    batch: 32, additionPerBatch: 8, lr: 3e-3, warmupSteps: 20, maxSteps: 1500, schedule: 'constant' as const, weightDecay: 0.01,
    evalEvery: 50, evalPrompts: 256, target: 0.85,
  },
  llamaStudent: {
    config: {
      modelType: 'llama', nLayer: 2, hidden: 48, nHead: 4, nKvHead: 2, headDim: 12, intermediate: 128, vocabSize: ADDITION_VOCAB.length, nPositions: 32,
      rmsNormEps: 1e-5, tiedEmbeddings: true, qkvBias: false, outputBias: false, mlpBias: false, qkNorm: false, rope: { type: 'default', theta: 10000 },
      bosTokenId: ADDITION_EOS_ID, eosTokenId: ADDITION_EOS_ID,
    } satisfies LlamaConfig,
    // Hugging Face's Llama initialisation: normal(0, initializer_range) weights, RMSNorm weights 1.
    initializerRange: 0.02,
    batch: 32, lr: 2e-3, warmupSteps: 20, maxSteps: 3000, schedule: 'constant' as const, weightDecay: 0.01,
    evalEvery: 50, evalPrompts: 256, stopAbove: 0.45,
  },
  worked: {
    task: { digits: [3, 3] as [number, number] } satisfies WorkedOptions,
    teacher: {
      config: {
        modelType: 'llama', nLayer: 2, hidden: 64, nHead: 4, nKvHead: 2, headDim: 16, intermediate: 192, vocabSize: WORKED_VOCAB.length, nPositions: 64,
        rmsNormEps: 1e-5, tiedEmbeddings: true, qkvBias: false, outputBias: false, mlpBias: false, qkNorm: false, rope: { type: 'default', theta: 10000 },
        bosTokenId: ADDITION_EOS_ID, eosTokenId: ADDITION_EOS_ID,
      } satisfies LlamaConfig,
      initializerRange: 0.02,
      // Cosine down to a tenth by maxSteps: at a constant 3e-3 the held-out accuracy swung
      // (39% at step 400, 54% at 600, 23% at 700) instead of settling.
      batch: 32, lr: 3e-3, warmupSteps: 50, maxSteps: 1600, schedule: 'cosine' as const, weightDecay: 0.01,
      evalEvery: 100, evalPrompts: 128, target: 0.97,
    },
    student: {
      config: {
        modelType: 'llama', nLayer: 2, hidden: 48, nHead: 4, nKvHead: 2, headDim: 12, intermediate: 128, vocabSize: WORKED_VOCAB.length, nPositions: 64,
        rmsNormEps: 1e-5, tiedEmbeddings: true, qkvBias: false, outputBias: false, mlpBias: false, qkNorm: false, rope: { type: 'default', theta: 10000 },
        bosTokenId: ADDITION_EOS_ID, eosTokenId: ADDITION_EOS_ID,
      } satisfies LlamaConfig,
      initializerRange: 0.02,
      batch: 32, lr: 3e-3, warmupSteps: 20, maxSteps: 2000, schedule: 'constant' as const, weightDecay: 0.01,
      evalEvery: 50, evalPrompts: 128, stopAbove: 0.45, teacherTemperature: 1,
      // The teacher answers poolSize training prompts once (poolChunk at a time), and the student
      // goes through those answers again and again. Fresh answers for every step (as the GPT-2
      // student had) cost 165 s of sampling per 1024 answers here, 5 s per step of 32, ten
      // times the step itself: the student would have taken over an hour.
      poolSize: 2048, poolChunk: 1024,
    },
  },
  finalEvalPrompts: 1000,
};

const task = additionTask(TASK);
const tokenizer = tokenizerFromJson(additionTokenizerJson(), additionTokenizerConfig(), 'addition');
/** New tokens an answer needs at most (its digits and the end of text). */
const completionTokens = builtInTask('addition', { task_format: TASK.format, task_digits: TASK.digits }).maxTokens;

interface LogLine {
  [key: string]: unknown;
}

function log(lines: LogLine[], line: LogLine): void {
  lines.push(line);
  const parts = Object.entries(line).map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v}`);
  console.error(`build:models  ${parts.join('  ')}`);
}

/** A prompt + completion pair as a training sequence scored on the completion (EOS included). */
function sequence(prompt: string, completionIds: readonly number[], weight: number, tok: LabTokenizer = tokenizer): TrainSequence {
  const p = tok.encode(prompt);
  const tokens = [...p, ...completionIds];
  return { tokens, weights: tokens.map((_, t) => (t >= p.length - 1 && t < tokens.length - 1 ? weight : 0)) };
}

function normalise(sequences: TrainSequence[]): TrainSequence[] {
  const scored = sequences.reduce((a, s) => a + s.weights.filter((w) => w !== 0).length, 0);
  return sequences.map((s) => ({ ...s, weights: s.weights.map((w) => (w !== 0 ? 1 / scored : 0)) }));
}

async function liveRunner(device: GPUDevice, trainer: Trainer<FamilyConfig>): Promise<{ runner: DecoderRunner; release: () => Promise<void> }> {
  const decoder = await openSamplingSession(device, trainer.config, trainer.family.buildDecoder(trainer.config, { kind: 'inputs' }), 'live weights');
  return { runner: decoderRunner(trainer.config, decoder, trainer.weightFeeds()), release: () => decoder.session.release() };
}

interface Phase {
  name: 'teacher' | 'student' | 'recovery' | 'llama-student' | 'worked-teacher' | 'worked-student';
  /** Initial weights (default: random GPT-2 weights, seeded). */
  init?: ModelParams;
  /** Held-out evaluation (default: the addition task's accuracy). */
  evaluate?: (runner: DecoderRunner) => Promise<{ accuracy: number; line: LogLine }>;
  config: FamilyConfig;
  batch: number;
  lr: number;
  warmupSteps: number;
  maxSteps: number;
  schedule: 'constant' | 'cosine';
  weightDecay: number;
  evalEvery: number;
  evalPrompts: number;
  /** Stop when the held-out accuracy is ≥ this. */
  stopAt: number;
  /** The step's training sequences. */
  batchAt(step: number): Promise<TrainSequence[]>;
}

async function train(device: GPUDevice, phase: Phase, lines: LogLine[]): Promise<{ trainer: Trainer<FamilyConfig>; accuracy: number; steps: number }> {
  const params = phase.init ?? randomGpt2Params(phase.config as Gpt2Config, { seed: RECIPE.seed + (phase.name === 'teacher' ? 0 : 1000), scheme: 'hf' });
  const trainer = await Trainer.create(device, phase.config, params, {
    adamw: { weightDecay: phase.weightDecay, maxGradNorm: 1 },
    schedule: { lr: phase.lr, warmupSteps: phase.warmupSteps, totalSteps: phase.maxSteps, schedule: phase.schedule, minLrRatio: 0.1 },
  });
  const live = await liveRunner(device, trainer);
  let accuracy = 0;
  let step = 0;
  try {
    const t0 = performance.now();
    while (step < phase.maxSteps) {
      const report = await trainer.trainStep([normalise(await phase.batchAt(step))], { kind: 'ce' });
      step++;
      if (!report.applied) throw new Error(`${phase.name} step ${step}: ${report.problem}`);
      if (step % 10 === 0 || step === 1) log(lines, { phase: phase.name, step, loss: report.loss, lr: report.lr, gradNorm: report.gradNorm, seconds: Math.round((performance.now() - t0) / 1000) });
      if (step % phase.evalEvery === 0 || step === phase.maxSteps) {
        if (phase.evaluate) {
          const e = await phase.evaluate(live.runner);
          accuracy = e.accuracy;
          log(lines, { phase: phase.name, step, ...e.line });
        } else {
          const e = await evaluateRunner(live.runner, tokenizer, ADDITION_EOS_ID, task, phase.evalPrompts, completionTokens);
          accuracy = e.accuracy;
          log(lines, { phase: phase.name, step, evalAccuracy: accuracy, evalPrompts: e.prompts, example: `${e.examples[0].prompt}${e.examples[0].completion}` });
        }
        if (accuracy >= phase.stopAt) break;
      }
    }
  } finally {
    await live.release();
  }
  return { trainer, accuracy, steps: step };
}

interface FolderSpec {
  role: 'teacher' | 'student';
  /** The task config.json names (default: addition, in TASK's format and digits). */
  task?: Record<string, unknown>;
  /** More config.json fields (the recovery pair: lab_preset, task_kept). */
  hints?: Record<string, unknown>;
  vocabulary?: readonly string[];
}

async function exportWeights(dir: string, config: FamilyConfig, weights: ModelParams, spec: FolderSpec, recipe: object, lines: LogLine[]): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = writeModelFolder(config, weights, additionTokenizerFiles({ vocabulary: spec.vocabulary }), { ...(spec.task ?? { task: 'addition', task_format: TASK.format, task_digits: TASK.digits }), lab_role: spec.role, ...spec.hints });
  files.set('recipe.json', new TextEncoder().encode(JSON.stringify(recipe, null, 2) + '\n'));
  files.set('training-log.jsonl', new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join('\n') + '\n'));
  await writeFolder(dir, files);
}

async function exportFolder(dir: string, trainer: Trainer<FamilyConfig>, role: 'teacher' | 'student', recipe: object, lines: LogLine[]): Promise<void> {
  await exportWeights(dir, trainer.config, await trainer.readWeights(), { role }, recipe, lines);
}

/** The weights with one more embedding row (tied, so also one more output logit): the mean of the others. */
function withExtraToken(config: Gpt2Config, weights: Gpt2Params): { config: Gpt2Config; weights: Map<string, Float32Array> } {
  const wte = weights.get('transformer.wte.weight');
  if (!wte) throw new Error('the teacher has no transformer.wte.weight');
  const V = config.vocabSize;
  const E = config.nEmbd;
  const grown = new Float32Array((V + 1) * E);
  grown.set(wte);
  for (let e = 0; e < E; e++) {
    let sum = 0;
    for (let v = 0; v < V; v++) sum += wte[v * E + e];
    grown[V * E + e] = sum / V;
  }
  const out = new Map(weights);
  out.set('transformer.wte.weight', grown);
  return { config: { ...config, vocabSize: V + 1 }, weights: out };
}

/**
 * Step 3, the self-distillation pair: `recovery-teacher` (the addition teacher with the token '-'
 * added: the checkpoint before fine-tuning) and `recovery-student` (fine-tuned on subtraction).
 */
async function buildRecoveryPair(device: GPUDevice, out: string, teacherDir: string, adapter: string): Promise<void> {
  const R = RECIPE.recovery;
  const started = performance.now();
  const teacher = await readModelFolder(await dirSource(teacherDir), { requireWeights: true });
  const grown = withExtraToken(teacher.gpt2!, teacher.weights!);
  const arithmetic = tokenizerFromJson(additionTokenizerJson(ARITHMETIC_VOCAB), additionTokenizerConfig(), 'arithmetic');
  const subtraction = subtractionTask({ digits: TASK.digits });
  const subTokens = builtInTask('subtraction', { task_digits: TASK.digits }).maxTokens;
  const hints = { lab_preset: 'self-distill', task_kept: 'subtraction' };
  const beforeDir = join(out, 'recovery-teacher');
  const afterDir = join(out, 'recovery-student');
  const both = async (runner: DecoderRunner, count: number) => {
    const add = await evaluateRunner(runner, arithmetic, ADDITION_EOS_ID, task, count, completionTokens);
    const sub = await evaluateRunner(runner, arithmetic, ADDITION_EOS_ID, subtraction, count, subTokens);
    return { add, sub };
  };
  const lines: LogLine[] = [];
  const run = await train(device, {
    name: 'recovery', config: grown.config, init: grown.weights, ...R, stopAt: R.target,
    batchAt: async (step) => Array.from({ length: R.batch }, (_, i) => {
      // The last R.additionPerBatch places of each batch: addition, so the model must keep telling
      // '+' from '-' (the data mix of a fine-tune that does not mean to forget).
      const p = i < R.batch - R.additionPerBatch
        ? subtractionTrainProblem(RECIPE.seed + 2, step * R.batch + i, { digits: TASK.digits })
        : trainProblem(RECIPE.seed + 2, step * R.batch + i, TASK);
      return sequence(p.prompt, arithmetic.encode(p.completion), 1, arithmetic);
    }),
    evaluate: async (runner) => {
      const { add, sub } = await both(runner, R.evalPrompts);
      return { accuracy: sub.accuracy, line: { subtractionAccuracy: sub.accuracy, additionAccuracy: add.accuracy, evalPrompts: R.evalPrompts, example: `${sub.examples[0].prompt}${sub.examples[0].completion}` } };
    },
  }, lines);
  const seconds = (performance.now() - started) / 1000;
  const trained = await run.trainer.readWeights();
  run.trainer.destroy();
  const recipe = (role: 'teacher' | 'student', description: string, steps: number) => ({
    role, description, preset: 'self-distill', task: TASK, keptTask: 'subtraction', seed: RECIPE.seed, adapter, parameters: countGpt2Parameters(grown.config), steps,
    recipe: RECIPE.recovery, buildSeconds: { recovery: Math.round(seconds) },
  });
  await exportWeights(beforeDir, grown.config, grown.weights, { role: 'teacher', hints, vocabulary: ARITHMETIC_VOCAB }, recipe('teacher', 'the checkpoint before fine-tuning on subtraction: addition-teacher with the token "-" added', 0), [
    { phase: 'recovery-teacher', note: 'not trained: the weights of addition-teacher, with embedding row 20 (the token "-") added as the mean of rows 0-19' },
  ]);
  await exportWeights(afterDir, grown.config, trained, { role: 'student', hints, vocabulary: ARITHMETIC_VOCAB }, recipe('student', 'recovery-teacher fine-tuned on subtraction (ground truth; 8 addition problems in each batch of 32)', run.steps), lines);
  // Both accuracies of both folders, from their own ONNX files.
  for (const dir of [beforeDir, afterDir]) {
    const folder = await readModelFolder(await dirSource(dir));
    const add = await evaluateFolder(device, folder, task, RECIPE.finalEvalPrompts, completionTokens);
    const sub = await evaluateFolder(device, folder, subtraction, RECIPE.finalEvalPrompts, subTokens);
    const path = join(dir, 'recipe.json');
    const r = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    // heldOutAccuracy is the main task's (addition), keptAccuracy the kept task's (subtraction).
    writeFileSync(path, JSON.stringify({ ...r, heldOutPrompts: RECIPE.finalEvalPrompts, heldOutAccuracy: add.accuracy, keptAccuracy: sub.accuracy, examples: [...add.examples.slice(0, 6), ...sub.examples.slice(0, 6)] }, null, 2) + '\n');
    console.error(`build:models ${dir}: addition ${(add.accuracy * 100).toFixed(1)}%, subtraction ${(sub.accuracy * 100).toFixed(1)}% held-out (${RECIPE.finalEvalPrompts} prompts each)`);
  }
}

/**
 * Random weights of any family, as Hugging Face initialises a Llama: linear weights and the
 * embedding normal(0, std), norm weights 1, biases 0 (the family's parameter roles say which is which).
 */
function randomFamilyParams(config: FamilyConfig, seed: number, std: number): Map<string, Float32Array> {
  const rng = seededRandom(seed);
  const params = new Map<string, Float32Array>();
  for (const spec of familyFor(config).paramSpecs(config)) {
    const data = new Float32Array(numel(spec.shape));
    if (spec.role === 'norm-weight') data.fill(1);
    else if (spec.role === 'embedding' || spec.role === 'linear-weight') for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
    params.set(spec.name, data);
  }
  return params;
}

/**
 * Step 4, the Llama-family student: cross-entropy on ground truth from random weights, stopped as
 * soon as it passes RECIPE.llamaStudent.stopAbove; its held-out accuracy from its own folder.
 */
async function buildLlamaStudent(device: GPUDevice, out: string, adapter: string): Promise<void> {
  const L = RECIPE.llamaStudent;
  const started = performance.now();
  const lines: LogLine[] = [];
  const run = await train(device, {
    name: 'llama-student', ...L, stopAt: L.stopAbove,
    init: randomFamilyParams(L.config, RECIPE.seed + 3000, L.initializerRange),
    batchAt: async (step) => Array.from({ length: L.batch }, (_, i) => {
      const p = trainProblem(RECIPE.seed + 3, step * L.batch + i, TASK);
      return sequence(p.prompt, tokenizer.encode(p.completion), 1);
    }),
  }, lines);
  const seconds = (performance.now() - started) / 1000;
  const dir = join(out, 'addition-student-llama');
  const description = 'a Llama-family student (RMSNorm, rotary positions, 4 query heads sharing 2 key/value heads, SwiGLU, tied head) with the addition tokenizer, trained briefly on ground truth; addition-teacher (GPT-2) can teach it';
  await exportWeights(dir, L.config, await run.trainer.readWeights(), { role: 'student', hints: { lab_preset: 'llama-student' } }, {}, lines);
  run.trainer.destroy();
  const final = await evaluateFolder(device, await readModelFolder(await dirSource(dir)), task, RECIPE.finalEvalPrompts, completionTokens);
  const recipe = {
    role: 'student', description, preset: 'llama-student', task: TASK, seed: RECIPE.seed, adapter, parameters: familyFor(L.config).countParameters(L.config), steps: run.steps,
    heldOutAccuracy: final.accuracy, heldOutPrompts: final.prompts, buildSeconds: { student: Math.round(seconds) },
    recipe: L, examples: final.examples.slice(0, 12),
  };
  writeFileSync(join(dir, 'recipe.json'), JSON.stringify(recipe, null, 2) + '\n');
  console.error(`build:models ${dir}: ${run.steps} steps in ${Math.round(seconds)} s, ${(final.accuracy * 100).toFixed(1)}% held-out (${final.prompts} prompts)`);
}

/**
 * Step 5, the reasoning pair: a Llama teacher on the worked-addition task's ground truth, then a
 * smaller Llama student on the teacher's own samples (temperature 1), stopped as soon as it passes
 * RECIPE.worked.student.stopAbove; both accuracies from the exported folders' own ONNX files.
 */
async function buildWorkedPair(device: GPUDevice, out: string, adapter: string, reuseTeacher = false): Promise<void> {
  const W = RECIPE.worked;
  const workedTask = workedAdditionTask(W.task);
  const workedTokens = maxWorkedTokens(W.task);
  const tok = tokenizerFromJson(additionTokenizerJson(WORKED_VOCAB), additionTokenizerConfig(), 'worked');
  const evaluate = (count: number) => async (runner: DecoderRunner) => {
    const e = await evaluateRunner(runner, tok, ADDITION_EOS_ID, workedTask, count, workedTokens);
    const wrong = e.examples.find((x) => !x.correct) ?? e.examples[0];
    return { accuracy: e.accuracy, line: { evalAccuracy: e.accuracy, evalPrompts: e.prompts, example: `${wrong.prompt}${wrong.completion}` } };
  };
  const folderTask = { task: WORKED_TASK_NAME, task_format: 'worked', task_digits: W.task.digits };
  const hints = { lab_preset: 'worked' };
  const teacherDir = join(out, 'worked-teacher');
  const studentDir = join(out, 'worked-student');

  // The teacher, on ground truth (or, with --only worked-student, the one already in `out`).
  const T = W.teacher;
  let teacherRun: { steps: number };
  let teacherSeconds: number;
  if (reuseTeacher) {
    // Its steps and time: the last line of its training log.
    const logLines = readFileSync(join(teacherDir, 'training-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogLine);
    const last = logLines.filter((l) => l.phase === 'worked-teacher' && typeof l.seconds === 'number').at(-1);
    const steps = logLines.filter((l) => l.phase === 'worked-teacher').reduce((m, l) => Math.max(m, Number(l.step ?? 0)), 0);
    if (!last) throw new Error(`${teacherDir}/training-log.jsonl has no worked-teacher step: build the teacher with --only worked`);
    teacherRun = { steps };
    teacherSeconds = Number(last.seconds);
    console.error(`build:models: reusing the teacher in ${teacherDir} (${steps} steps, about ${teacherSeconds} s of training when it was built)`);
  } else {
    const teacherStarted = performance.now();
    const teacherLines: LogLine[] = [];
    const trained = await train(device, {
      name: 'worked-teacher', ...T, stopAt: T.target, evaluate: evaluate(T.evalPrompts),
      init: randomFamilyParams(T.config, RECIPE.seed + 5000, T.initializerRange),
      batchAt: async (step) => Array.from({ length: T.batch }, (_, i) => {
        const p = workedTrainProblem(RECIPE.seed + 5, step * T.batch + i, W.task);
        return sequence(p.prompt, tok.encode(p.completion), 1, tok);
      }),
    }, teacherLines);
    teacherSeconds = (performance.now() - teacherStarted) / 1000;
    teacherRun = trained;
    await exportWeights(teacherDir, T.config, await trained.trainer.readWeights(), { role: 'teacher', task: folderTask, hints, vocabulary: WORKED_VOCAB }, {}, teacherLines);
    trained.trainer.destroy();
    console.error(`build:models ${teacherDir}: ${trained.steps} steps in ${Math.round(teacherSeconds)} s`);
  }

  // The student, on the teacher's samples (a seeded pool of S.poolSize answers, sampled POOL_CHUNK at a time, cycled).
  const S = W.student;
  const studentStarted = performance.now();
  const teacherFolder = await readModelFolder(await dirSource(teacherDir));
  const teacherDecoder = await openSamplingSession(device, teacherFolder.config!, teacherFolder.onnx, teacherFolder.onnxLabel);
  const teacherRunner = decoderRunner(teacherFolder.config!, teacherDecoder);
  const pool: TrainSequence[] = [];
  const POOL_CHUNK = S.poolChunk;
  const studentLines: LogLine[] = [];
  const studentRun = await train(device, {
    name: 'worked-student', ...S, stopAt: S.stopAbove, evaluate: evaluate(S.evalPrompts),
    init: randomFamilyParams(S.config, RECIPE.seed + 6000, S.initializerRange),
    batchAt: async (step) => {
      while (pool.length < S.poolSize) {
        const start = pool.length;
        const prompts = Array.from({ length: POOL_CHUNK }, (_, i) => workedTrainProblem(RECIPE.seed + 6, start + i, W.task).prompt);
        const samples = await sampleCompletions(teacherRunner, {
          prompts: prompts.map((p) => tok.encode(p)), n: 1, maxTokens: workedTokens, seed: RECIPE.seed * 7919 + start, eosTokenId: ADDITION_EOS_ID,
          sampling: { temperature: S.teacherTemperature, topK: 0, topP: 1 },
        });
        for (const c of samples) pool.push(sequence(prompts[c.promptIndex], c.tokens, 1, tok));
        console.error(`build:models  worked-student: the teacher has answered ${pool.length} of ${S.poolSize} prompts (${Math.round((performance.now() - studentStarted) / 1000)} s)`);
      }
      // Batches walk the pool in order, wrapping around (poolSize is a multiple of the batch).
      const from = (step * S.batch) % S.poolSize;
      return pool.slice(from, from + S.batch);
    },
  }, studentLines);
  await teacherDecoder.session.release();
  const studentSeconds = (performance.now() - studentStarted) / 1000;
  await exportWeights(studentDir, S.config, await studentRun.trainer.readWeights(), { role: 'student', task: folderTask, hints, vocabulary: WORKED_VOCAB }, {}, studentLines);
  studentRun.trainer.destroy();

  // Both folders' held-out accuracy, from their own ONNX files.
  const buildSeconds = { teacher: Math.round(teacherSeconds), student: Math.round(studentSeconds), total: Math.round(teacherSeconds + studentSeconds) };
  for (const [dir, role, run, config, recipe, description] of [
    [teacherDir, 'teacher', teacherRun, T.config, T, 'a Llama teacher of the worked-addition task (every column written out, then the answer), trained on ground truth'],
    [studentDir, 'student', studentRun, S.config, S, 'a smaller Llama student of the worked-addition task, trained briefly on worked-teacher\'s own samples: it drops and invents carries'],
  ] as const) {
    const final = await evaluateFolder(device, await readModelFolder(await dirSource(dir)), workedTask, RECIPE.finalEvalPrompts, workedTokens);
    const summary = {
      role, description, preset: 'worked', task: { ...W.task, format: 'worked' }, seed: RECIPE.seed, adapter, parameters: familyFor(config).countParameters(config), steps: run.steps,
      heldOutAccuracy: final.accuracy, heldOutPrompts: final.prompts, buildSeconds, recipe,
      examples: [...final.examples.filter((x) => !x.correct).slice(0, 6), ...final.examples.filter((x) => x.correct).slice(0, 6)],
    };
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify(summary, null, 2) + '\n');
    console.error(`build:models ${dir}: ${run.steps} steps, ${(final.accuracy * 100).toFixed(1)}% held-out (${final.prompts} prompts)`);
  }
}

/** Step 2, the student on the teacher's samples; then both folders' final held-out accuracy. */
async function buildStudent(device: GPUDevice, out: string, teacherDir: string, adapter: string, teacherSteps: number, teacherSeconds: number): Promise<void> {
  const T = RECIPE.teacher;
  const studentStarted = performance.now();

  // 2. The student, on the teacher's samples.
  const teacherFolder = await readModelFolder(await dirSource(teacherDir));
  const teacherDecoder = await openSamplingSession(device, teacherFolder.gpt2!, teacherFolder.onnx, `${teacherDir}/onnx/model.onnx`);
  const teacherRunner = decoderRunner(teacherFolder.gpt2!, teacherDecoder);
  const studentLines: LogLine[] = [];
  const S = RECIPE.student;
  const pool: TrainSequence[] = [];
  const POOL_CHUNK = 512;
  const studentRun = await train(device, {
    name: 'student', ...S, stopAt: S.stopAbove,
    batchAt: async (step) => {
      // The teacher answers prompts in large batches (cheaper per token than 32 at a time); each
      // step takes the next S.batch answers of that seeded pool.
      while (pool.length < (step + 1) * S.batch) {
        const start = pool.length;
        const prompts = Array.from({ length: POOL_CHUNK }, (_, i) => trainProblem(RECIPE.seed + 1, start + i, TASK).prompt);
        const samples = await sampleCompletions(teacherRunner, {
          prompts: prompts.map((p) => tokenizer.encode(p)), n: 1, maxTokens: completionTokens, seed: RECIPE.seed * 7919 + start, eosTokenId: ADDITION_EOS_ID,
          sampling: { temperature: S.teacherTemperature, topK: 0, topP: 1 },
        });
        for (const c of samples) pool.push(sequence(prompts[c.promptIndex], c.tokens, 1));
      }
      return pool.slice(step * S.batch, (step + 1) * S.batch);
    },
  }, studentLines);
  await teacherDecoder.session.release();
  const studentDir = join(out, 'addition-student');
  const studentSeconds = (performance.now() - studentStarted) / 1000;
  const totalSeconds = teacherSeconds + studentSeconds;

  // Final held-out accuracy of both exported folders, run from their own ONNX files.
  await exportFolder(studentDir, studentRun.trainer, 'student', {}, studentLines);
  studentRun.trainer.destroy();
  const finalTeacher = await evaluateFolder(device, teacherFolder, task, RECIPE.finalEvalPrompts, completionTokens);
  const finalStudent = await evaluateFolder(device, await readModelFolder(await dirSource(studentDir)), task, RECIPE.finalEvalPrompts, completionTokens);
  const summaryOf = (role: 'teacher' | 'student', steps: number, e: typeof finalTeacher, config: Gpt2Config) => ({
    role, task: TASK, seed: RECIPE.seed, adapter, parameters: countGpt2Parameters(config), steps,
    heldOutAccuracy: e.accuracy, heldOutPrompts: e.prompts,
    buildSeconds: { teacher: Math.round(teacherSeconds), student: Math.round(studentSeconds), total: Math.round(totalSeconds) },
    recipe: role === 'teacher' ? RECIPE.teacher : RECIPE.student,
    examples: e.examples.slice(0, 12),
  });
  writeFileSync(join(teacherDir, 'recipe.json'), JSON.stringify(summaryOf('teacher', teacherSteps, finalTeacher, T.config), null, 2) + '\n');
  writeFileSync(join(studentDir, 'recipe.json'), JSON.stringify(summaryOf('student', studentRun.steps, finalStudent, S.config), null, 2) + '\n');
  console.error(`build:models done in ${Math.round(totalSeconds)} s: teacher ${(finalTeacher.accuracy * 100).toFixed(1)}% held-out, student ${(finalStudent.accuracy * 100).toFixed(1)}% (${RECIPE.finalEvalPrompts} prompts)`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const outArg = args.indexOf('--out');
  // --reuse-teacher DIR: skip step 1 and take the teacher this recipe built earlier (its recipe.json
  // says how); --reuse-student DIR as well: skip step 2 too (only the recovery pair is built).
  const out = resolve(outArg >= 0 ? args[outArg + 1] : 'models');
  // --only llama-student: step 4 alone; --only worked: step 5 alone (the other folders are left as they
  // are); --only worked-student: step 5's student alone, taught by the worked-teacher already in --out.
  const onlyArg = args.indexOf('--only');
  const only = onlyArg >= 0 ? args[onlyArg + 1] : undefined;
  if (only !== undefined && !['llama-student', 'worked', 'worked-student'].includes(only)) throw new Error(`--only takes llama-student, worked or worked-student (the steps that run alone); got ${JSON.stringify(only)}`);
  const acquired = await acquireDevice(nodeGpu());
  if (!acquired.ok) throw new Error(`${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  const { device, summary } = acquired;
  configureOrt({ numThreads: 1 });
  const started = performance.now();
  const adapter = `${summary.vendor} / ${summary.architecture}${summary.isFallbackAdapter ? ' (fallback, CPU)' : ''}`;
  if (only === 'llama-student') {
    console.error(`build:models on ${adapter}; writing ${out}/addition-student-llama only`);
    await buildLlamaStudent(device, out, adapter);
    process.exit(0);
  }
  if (only === 'worked' || only === 'worked-student') {
    console.error(`build:models on ${adapter}; writing ${out}/worked-teacher and ${out}/worked-student only${only === 'worked-student' ? ' (the teacher reused)' : ''}`);
    await buildWorkedPair(device, out, adapter, only === 'worked-student');
    process.exit(0);
  }
  console.error(`build:models on ${adapter}; writing ${out}/addition-teacher, addition-student, recovery-teacher, recovery-student, addition-student-llama, worked-teacher and worked-student`);

  // 1. The teacher, on ground truth (or, with --reuse-teacher DIR, a teacher this recipe built before).
  const teacherLines: LogLine[] = [];
  const T = RECIPE.teacher;
  const reuseArg = args.indexOf('--reuse-teacher');
  const teacherDir = join(out, 'addition-teacher');
  let teacherSteps = 0;
  let teacherSeconds = 0;
  if (reuseArg >= 0) {
    const from = resolve(args[reuseArg + 1]);
    const previous = JSON.parse(readFileSync(join(from, 'recipe.json'), 'utf8')) as { steps: number; buildSeconds?: { teacher: number } };
    if (from !== resolve(teacherDir)) cpSync(from, teacherDir, { recursive: true });
    teacherSteps = previous.steps;
    teacherSeconds = previous.buildSeconds?.teacher ?? NaN;
    console.error(`build:models: reusing the teacher in ${from} (${teacherSteps} steps, ${teacherSeconds} s when it was built)`);
  } else {
  const teacherRun = await train(device, {
    name: 'teacher', ...T, stopAt: T.target,
    batchAt: async (step) => Array.from({ length: T.batch }, (_, i) => {
      const p = trainProblem(RECIPE.seed, step * T.batch + i, TASK);
      return sequence(p.prompt, tokenizer.encode(p.completion), 1);
    }),
  }, teacherLines);
  teacherSeconds = (performance.now() - started) / 1000;
  teacherSteps = teacherRun.steps;
  await exportFolder(teacherDir, teacherRun.trainer, 'teacher', { recipe: RECIPE.teacher, seed: RECIPE.seed, task: TASK, steps: teacherRun.steps, buildSeconds: { teacher: Math.round(teacherSeconds) } }, teacherLines);
  teacherRun.trainer.destroy();
  }
  const reuseStudentArg = args.indexOf('--reuse-student');
  if (reuseStudentArg >= 0) {
    // --reuse-student DIR (with --reuse-teacher): only step 3 runs.
    const from = resolve(args[reuseStudentArg + 1]);
    const studentDir = join(out, 'addition-student');
    if (from !== resolve(studentDir)) cpSync(from, studentDir, { recursive: true });
    console.error(`build:models: reusing the student in ${from}`);
  } else {
    await buildStudent(device, out, teacherDir, adapter, teacherSteps, teacherSeconds);
  }

  // 3. The self-distillation pair.
  await buildRecoveryPair(device, out, teacherDir, adapter);
  // 4. The Llama-family student.
  await buildLlamaStudent(device, out, adapter);
  // 5. The reasoning pair.
  await buildWorkedPair(device, out, adapter);
  console.error(`build:models: all done in ${Math.round((performance.now() - started) / 1000)} s`);
  process.exit(0);
}

main().catch((e) => {
  console.error(`build:models: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exit(1);
});
