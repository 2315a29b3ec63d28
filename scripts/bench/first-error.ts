/**
 * `npm run bench -- first-error [--out FILE] [--student models/worked-student]
 *   [--teacher models/worked-teacher] [--wrong 50] [--temperature T] [--seed 0] [--batch 32]`
 *
 * Issue 14's acceptance point on the reasoning task: does the token where the student's answer
 * first goes wrong carry its largest penalty? The student answers the worked-addition task's
 * held-out prompts, in order, --batch at a time, until --wrong of its answers are wrong. Each
 * wrong answer (end of text included, as sampled) is scored against the teacher by the lab's
 * scorer, `scoreText` (workers/engine/inference.ts: what Inspect and `opd-lab score` show): the
 * exact reverse KL at every token, and the sampled KL k_t = log π_student(y_t) − log π_teacher(y_t).
 * The first wrong token is `firstErrorIndex` (workers/tasks/worked-addition.ts): the first token
 * that departs from the correct completion. Reported: the fraction of wrong answers whose largest
 * reverse KL is at that token, within ±1 token of it, and whether the largest falls before or
 * after it; the same for the sampled KL.
 *
 * Two ways of drawing the student's answers, both measured unless --temperature picks one:
 * - greedy (temperature 0): the student's own answer, the one an evaluation verifies. Its first
 *   wrong token is the student's most likely token there, a mistake it believes in.
 * - temperature 1: how on-policy distillation draws the answers the teacher's penalties train
 *   on, and how Inspect samples by default. A wrong answer may start at a token the student
 *   itself thought unlikely (drawn by chance), where the exact reverse KL, a property of the two
 *   distributions and not of the token drawn, is small; the sampled KL is that token's own cost.
 * Measured on the built-in pair (models/README.md): greedy, the largest reverse KL is on the first
 * wrong token in 41 of 50 wrong answers (82%); at temperature 1 in 16 of 50 (32%) only, the
 * largest falling after it in 26 (the teacher, reading a prefix already wrong, disagrees with
 * what the student writes next), while the largest sampled KL is on it in 38 of 50 (76%).
 *
 * `measureFirstError` is the measurement itself, shared with test/unit/worked-first-error.test.ts.
 */
import { join } from 'node:path';
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { acquireDevice } from '../../workers/gpu/device';
import { configureOrt } from '../../workers/ort/runtime';
import { dirSource } from '../../workers/node/fs-source';
import { loadModel, releaseModel, scoreText, type LoadedModel } from '../../workers/engine/inference';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions } from '../../workers/sampling/sampler';
import { builtInTask } from '../../workers/tasks/registry';
import { firstErrorIndex, WORKED_TASK_NAME } from '../../workers/tasks/worked-addition';

const MODELS = join(import.meta.dirname, '..', '..', 'models');

export interface FirstErrorOptions {
  studentDir?: string;
  teacherDir?: string;
  /** Wrong answers to collect. */
  wrong?: number;
  /** Sampling temperature of the student (0: greedy). */
  temperature?: number;
  seed?: number;
  /** Prompts sampled at a time. */
  batch?: number;
}

export interface FirstErrorCase {
  prompt: string;
  /** The student's completion, end of text included when it wrote one. */
  completion: string;
  tokens: number;
  firstError: number;
  /** Where the largest exact reverse KL, and the largest sampled KL, are. */
  argmaxReverseKL: number;
  argmaxSampledKL: number;
  reverseKLAtFirstError: number;
  maxReverseKL: number;
}

/** Where the largest penalties fell, relative to the first wrong token. */
export interface Placement {
  at: number;
  within1: number;
  before: number;
  after: number;
  /** at / wrong answers. */
  fraction: number;
  fractionWithin1: number;
}

export interface FirstErrorResult {
  student: string;
  teacher: string;
  temperature: number;
  seed: number;
  /** Held-out prompts answered to find the wrong answers, and how many of those answers were right. */
  answered: number;
  right: number;
  wrong: number;
  reverseKL: Placement;
  sampledKL: Placement;
  seconds: number;
  cases: FirstErrorCase[];
}

const argmax = (xs: number[]): number => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

function placement(cases: FirstErrorCase[], key: 'argmaxReverseKL' | 'argmaxSampledKL'): Placement {
  const n = Math.max(1, cases.length);
  const at = cases.filter((c) => c[key] === c.firstError).length;
  const within1 = cases.filter((c) => Math.abs(c[key] - c.firstError) <= 1).length;
  const before = cases.filter((c) => c[key] < c.firstError).length;
  return { at, within1, before, after: cases.length - at - before, fraction: at / n, fractionWithin1: within1 / n };
}

async function openFolder(dir: string, role: 'student' | 'teacher'): Promise<LoadedModel> {
  return loadModel(await dirSource(dir), role);
}

/** Samples the student on held-out prompts until `wrong` answers are wrong, and scores each against the teacher. */
export async function measureFirstError(device: GPUDevice, options: FirstErrorOptions = {}): Promise<FirstErrorResult> {
  const studentDir = options.studentDir ?? join(MODELS, 'worked-student');
  const teacherDir = options.teacherDir ?? join(MODELS, 'worked-teacher');
  const wanted = options.wrong ?? 50;
  const temperature = options.temperature ?? 1;
  const seed = options.seed ?? 0;
  const batch = options.batch ?? 32;
  const started = performance.now();
  const student = await openFolder(studentDir, 'student');
  const teacher = await openFolder(teacherDir, 'teacher');
  try {
    if (student.folder.rawConfig.task !== WORKED_TASK_NAME) throw new Error(`${studentDir} is not a ${WORKED_TASK_NAME} model (its config.json names task ${JSON.stringify(student.folder.rawConfig.task)}): pass --student with the worked-addition student`);
    const config = student.folder.config;
    if (!config) throw new Error(`${studentDir} is not a model of a family the lab samples`);
    const { task, maxTokens } = builtInTask(WORKED_TASK_NAME, student.folder.rawConfig);
    const tok = student.folder.tokenizer;
    const eos = tok.eosTokenId ?? 0;
    student.sampling ??= await openSamplingSession(device, config, student.folder.onnx, student.folder.onnxLabel);
    const runner = decoderRunner(config, student.sampling);
    const cases: FirstErrorCase[] = [];
    let answered = 0;
    let right = 0;
    for (let start = 0; cases.length < wanted; start += batch) {
      // The held-out set is prefix-stable: asking for more prompts keeps the ones already answered.
      const prompts = task.evalPrompts(start + batch).slice(start);
      if (prompts.length === 0) throw new Error(`the held-out set ran out after ${answered} prompts with ${cases.length} wrong answers`);
      const completions = await sampleCompletions(runner, {
        prompts: prompts.map((p) => tok.encode(p)), n: 1, maxTokens, seed: seed * 1_000_003 + start, eosTokenId: eos,
        sampling: { temperature, topK: 0, topP: 1 },
      });
      for (const c of completions) {
        if (cases.length >= wanted) break;
        answered++;
        const prompt = prompts[c.promptIndex];
        const completion = tok.decode(c.tokens, { skipSpecialTokens: false });
        const first = firstErrorIndex(prompt, completion);
        if (first === null) {
          right++;
          continue;
        }
        if (first >= c.tokens.length) throw new Error(`the first error of ${JSON.stringify(completion)} (token ${first}) is past its ${c.tokens.length} tokens`);
        const scored = await scoreText(device, student, teacher, prompt, completion, { topK: 1 });
        if (scored.tokens.length !== c.tokens.length) {
          throw new Error(`the scorer read ${scored.tokens.length} tokens in ${JSON.stringify(completion)}, which the student sampled as ${c.tokens.length}`);
        }
        const reverse = scored.tokens.map((t) => t.reverseKL);
        const sampled = scored.tokens.map((t) => t.sampledKL);
        cases.push({
          prompt, completion, tokens: c.tokens.length, firstError: first,
          argmaxReverseKL: argmax(reverse), argmaxSampledKL: argmax(sampled),
          reverseKLAtFirstError: reverse[first], maxReverseKL: Math.max(...reverse),
        });
      }
    }
    return {
      student: studentDir, teacher: teacherDir, temperature, seed, answered, right, wrong: cases.length,
      reverseKL: placement(cases, 'argmaxReverseKL'), sampledKL: placement(cases, 'argmaxSampledKL'),
      seconds: Math.round((performance.now() - started) / 100) / 10, cases,
    };
  } finally {
    await releaseModel(student);
    await releaseModel(teacher);
  }
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/** One line for people. */
export function summaryLine(r: FirstErrorResult): string {
  const how = r.temperature === 0 ? 'greedy' : `temperature ${r.temperature}`;
  return `first-error: ${r.wrong} wrong answers (${r.answered} held-out prompts, ${how}, seed ${r.seed}): the largest reverse KL is on the first wrong token in ${r.reverseKL.at}/${r.wrong} (${pct(r.reverseKL.fraction)}), within ±1 in ${pct(r.reverseKL.fractionWithin1)}, before it in ${r.reverseKL.before}, after it in ${r.reverseKL.after}; the largest sampled KL: ${r.sampledKL.at}/${r.wrong} (${pct(r.sampledKL.fraction)}), within ±1 in ${pct(r.sampledKL.fractionWithin1)}`;
}

export async function run(args: Record<string, string>): Promise<object> {
  const acquired = await acquireDevice(nodeGpu());
  if (!acquired.ok) throw new Error(`${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  configureOrt({ numThreads: 1 });
  const { vendor, architecture } = acquired.summary;
  const num = (name: string, fallback: number) => (args[name] === undefined ? fallback : Number(args[name]));
  const temperatures = args.temperature === undefined ? [0, 1] : [Number(args.temperature)];
  const results: FirstErrorResult[] = [];
  for (const temperature of temperatures) {
    results.push(await measureFirstError(acquired.device, {
      studentDir: args.student, teacherDir: args.teacher, wrong: num('wrong', 50), temperature, seed: num('seed', 0), batch: num('batch', 32),
    }));
  }
  console.error(results.map(summaryLine).join('\n'));
  return { bench: 'first-error', adapter: `${vendor} / ${architecture}`, results };
}
