/**
 * `npm run bench -- distill [--task worked-addition|addition] [--out FILE.json] [--plot FILE.svg]
 * [--partial-out FILE] [options]`: the write-up's claim in miniature, with the write-up's protocol.
 *
 * 0. SFT until its returns flatten. From the shipped student, sft (cross-entropy on the teacher's
 *    samples) runs at `--flat-lr`, evaluated every `--flat-eval-every` steps on the held-out
 *    prompts, until the best accuracy of the last `--flat-patience` evaluations is no more than
 *    `--flat-delta` above the best before them (or `--flat-max-steps`). That student is every
 *    objective's start, saved as a model folder beside the partial results.
 * 1. The target: `--target`, else halfway from the flattened student's accuracy to the teacher's.
 * 2. The race from there: continued sft, rl (the verifier's sparse 1/0 reward), opd-sampled and
 *    opd-full. For each objective, each learning rate of `--lrs` runs on the first
 *    `--sweep-seeds` seeds; the rate with the lowest median cost there (ties and all-censored:
 *    the highest accuracy reached) then runs on every one of `--seeds` seeds. A run stops at its
 *    first evaluation at or above the target (its cost: the FLOPs spent by then) or at its cap.
 *    The OPD objectives run first, capped at `--opd-max-steps` steps; sft and rl are then capped
 *    at `--cap-ratio` × the larger of the two OPD medians (the learning-rate sweep at
 *    `--sweep-cap-ratio` ×), so that a ratio is measured up to at least that factor. A run that
 *    never reaches the target is a bound, `{"atLeast": FLOPs at its cap}`, and a median over
 *    seeds that falls on bounds is a bound too: never a ratio of two budgets.
 * 3. Two accountings (workers/distill/run.ts counts FLOPs; sampling counts the positions the
 *    KV-cache decoder really ran): with the SFT data given (sft pays only its training), and with
 *    the data's generation by the teacher counted (sft also pays the teacher's sampling).
 *
 * The JSON has rlOverOpd, sftOverOpd and sftOverOpdCountingData against opd-sampled (the
 * write-up's per-token estimator), the same against opd-full, per objective the chosen learning
 * rate, the cost of each seed and how many reached the target, SFT's flattening curve and every
 * run's curve. `--plot` draws phase 0 and the race (accuracy against FLOPs, every seed).
 *
 * Runs are resumable: every finished run (and phase 0) is written to `--partial-out` (default
 * <work>/partial.json, <work> = --work-dir, default bench-output/distill-<task>), and a restart
 * with the same settings skips what it holds.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { lavapipeIcd } from '../vulkan-drivers.mjs';
import { acquireDevice } from '../../workers/gpu/device';
import { configureOrt } from '../../workers/ort/runtime';
import { readModelFolder } from '../../workers/models/folder';
import { evaluateFolder } from '../../workers/distill/evaluate';
import { dirSource } from '../../workers/node/fs-source';
import { DistillRun } from '../../workers/distill/run';
import type { ObjectiveName, StepMetrics } from '../../workers/contract/run';
import { builtInTask } from '../../workers/tasks/registry';
import { censoredMedian, costRatio, evalSteps, flattened, ratioText, reachedCount, type Cost, type FlatPoint, type Ratio } from './distill-stats';

const RACE: readonly ObjectiveName[] = ['opd-sampled', 'opd-full', 'sft', 'rl'];
const OPD: readonly ObjectiveName[] = ['opd-sampled', 'opd-full'];
const SHIPPED: Record<string, [string, string]> = {
  'worked-addition': ['models/worked-student', 'models/worked-teacher'],
  addition: ['models/addition-student', 'models/addition-teacher'],
};

/** One evaluation of a race run. `flops`: as the run counts them (sft's include the teacher's sampling); `flopsDataGiven`: without the SFT data's generation. */
interface Point {
  step: number;
  flops: number;
  flopsDataGiven: number;
  accuracy: number;
  reverseKL: number;
}

interface RaceRun {
  objective: ObjectiveName;
  lr: number;
  seed: number;
  /** The FLOP cap (data given) it ran under, or null for a step cap. */
  capFlops: number | null;
  capSteps: number;
  reached: boolean;
  /** FLOPs to the target with the SFT data given, or at least its FLOPs at the cap. */
  cost: Cost;
  /** The same, counting the teacher's generation of sft's data. */
  costCountingData: Cost;
  steps: number;
  bestAccuracy: number;
  curve: Point[];
  seconds: number;
}

interface Flat {
  curve: (FlatPoint & { flops: number; flopsDataGiven: number })[];
  stoppedAtStep: number;
  accuracy: number;
  why: string;
  folder: string;
  seconds: number;
}

interface Settings {
  task: string;
  student: string;
  teacher: string;
  seeds: number;
  sweepSeeds: number;
  lrs: number[];
  batchPrompts: number;
  groupSize: number;
  evalPrompts: number;
  flat: { lr: number; evalEvery: number; patience: number; delta: number; maxSteps: number };
  target: number | null;
  capRatio: number;
  sweepCapRatio: number;
  opdMaxSteps: number;
  maxSteps: number;
  evalSchedule: { dense: number; growth: number; maxGap: number };
}

interface BenchState {
  settings: Settings;
  studentAccuracy?: number;
  teacherAccuracy?: number;
  flat?: Flat;
  runs: RaceRun[];
}

const num = (args: Record<string, string>, name: string, fallback: number, check: (x: number) => boolean, what: string): number => {
  const v = args[name] !== undefined ? Number(args[name]) : fallback;
  if (!check(v)) throw new Error(`--${name} must be ${what}, got ${args[name]}`);
  return v;
};
const whole = (x: number) => Number.isInteger(x) && x >= 1;
const fraction = (x: number) => x > 0 && x < 1;

function settingsFrom(args: Record<string, string>): Settings {
  const task = args.task ?? 'worked-addition';
  const shipped = SHIPPED[task];
  if (!shipped) throw new Error(`--task must be one of ${Object.keys(SHIPPED).join(', ')}, got ${task}`);
  const lrs = (args.lrs ?? '1e-4,3e-4,1e-3').split(',').map(Number);
  if (lrs.some((x) => !fraction(x))) throw new Error('--lrs must be learning rates in (0, 1), comma-separated');
  const seeds = num(args, 'seeds', 5, whole, 'a whole number ≥ 1');
  return {
    task,
    student: resolve(args.student ?? shipped[0]),
    teacher: resolve(args.teacher ?? shipped[1]),
    seeds,
    sweepSeeds: Math.min(seeds, num(args, 'sweep-seeds', 1, whole, 'a whole number ≥ 1')),
    lrs,
    batchPrompts: num(args, 'batch', 8, whole, 'a whole number ≥ 1'),
    groupSize: num(args, 'group', 4, (x) => whole(x) && x >= 2, 'a whole number ≥ 2 (rl compares a prompt’s completions)'),
    evalPrompts: num(args, 'eval-prompts', 128, whole, 'a whole number ≥ 1'),
    flat: {
      lr: num(args, 'flat-lr', task === 'addition' ? 1e-3 : 3e-4, fraction, 'a learning rate in (0, 1)'),
      evalEvery: num(args, 'flat-eval-every', 5, whole, 'a whole number ≥ 1'),
      patience: num(args, 'flat-patience', 3, whole, 'a whole number ≥ 1'),
      delta: num(args, 'flat-delta', 0.02, (x) => x >= 0 && x < 1, 'an accuracy difference in [0, 1)'),
      maxSteps: num(args, 'flat-max-steps', 300, whole, 'a whole number ≥ 1'),
    },
    target: args.target !== undefined ? num(args, 'target', 0, fraction, 'an accuracy in (0, 1)') : null,
    capRatio: num(args, 'cap-ratio', 30, (x) => x >= 1, 'a number ≥ 1'),
    sweepCapRatio: num(args, 'sweep-cap-ratio', 10, (x) => x >= 1, 'a number ≥ 1'),
    opdMaxSteps: num(args, 'opd-max-steps', 150, whole, 'a whole number ≥ 1'),
    maxSteps: num(args, 'max-steps', 3000, whole, 'a whole number ≥ 1'),
    evalSchedule: {
      dense: num(args, 'eval-dense', 8, whole, 'a whole number ≥ 1'),
      growth: num(args, 'eval-growth', 1.25, (x) => x > 1, 'a number > 1'),
      maxGap: num(args, 'eval-max-gap', 20, whole, 'a whole number ≥ 1'),
    },
  };
}

/** FLOPs with the SFT data given: sft's teacher sampling (its `teacherScoring`) is the data's generation. */
const dataGiven = (objective: ObjectiveName, f: StepMetrics['flops']) => (objective === 'sft' ? f.total - f.teacherScoring : f.total);

export async function run(args: Record<string, string>): Promise<object> {
  const settings = settingsFrom(args);
  const workDir = resolve(args['work-dir'] ?? `bench-output/distill-${settings.task}`);
  const partialPath = resolve(args['partial-out'] ?? join(workDir, 'partial.json'));
  mkdirSync(workDir, { recursive: true });
  mkdirSync(dirname(partialPath), { recursive: true });
  let state: BenchState = { settings, runs: [] };
  if (existsSync(partialPath)) {
    const old = JSON.parse(readFileSync(partialPath, 'utf8')) as BenchState;
    if (JSON.stringify(old.settings) === JSON.stringify(settings)) {
      state = old;
      console.error(`distill bench: resuming ${partialPath}: ${state.flat ? 'phase 0 done, ' : ''}${state.runs.length} race runs done`);
    } else {
      throw new Error(`${partialPath} holds a run of other settings: give another --partial-out (or delete it to start again)`);
    }
  }
  const save = () => writeFileSync(partialPath, JSON.stringify(state, null, 1));
  const started = performance.now();

  // Mesa's lavapipe where it is installed and no driver was chosen: the same numbers as
  // SwiftShader, several times faster on these CPUs (test/unit/cli-driver.ts says the same).
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && lavapipeIcd()) process.env.VK_ICD_FILENAMES = lavapipeIcd()!;
  const acquired = await acquireDevice(nodeGpu());
  if (!acquired.ok) throw new Error(`${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  const { device, summary } = acquired;
  configureOrt({ numThreads: 1 });
  const shippedStudent = await readModelFolder(await dirSource(settings.student), { requireWeights: true });
  const teacher = await readModelFolder(await dirSource(settings.teacher));
  const { task, maxTokens } = builtInTask(settings.task, shippedStudent.rawConfig);
  const base = { batchPrompts: settings.batchPrompts, groupSize: settings.groupSize, maxTokens, evalPrompts: settings.evalPrompts, probes: 0, evalEvery: 0, checkpointEvery: 0 };

  // The teacher's greedy accuracy on the same held-out prompts.
  if (state.teacherAccuracy === undefined) {
    state.teacherAccuracy = (await evaluateFolder(device, teacher, task, settings.evalPrompts, maxTokens)).accuracy;
    save();
  }

  // Phase 0: SFT until its returns flatten.
  const flatDir = join(workDir, 'sft-flat');
  if (!state.flat || !existsSync(join(flatDir, 'config.json'))) {
    const t0 = performance.now();
    const { lr, evalEvery, patience, delta, maxSteps } = settings.flat;
    const r = await DistillRun.create(device, { student: shippedStudent, teacher, task, options: { ...base, objective: 'sft', lr, seed: 0, totalSteps: maxSteps } });
    const curve: Flat['curve'] = [];
    let why = `reached --flat-max-steps ${maxSteps}`;
    try {
      curve.push({ step: 0, accuracy: (await r.evaluate()).accuracy!, flops: 0, flopsDataGiven: 0 });
      state.studentAccuracy = curve[0].accuracy;
      while (r.step < maxSteps) {
        const m = await r.trainStep();
        if (!m.applied) throw new Error(`phase 0: sft step ${m.step} was not applied: ${m.problem ?? 'no reason given'}`);
        if (m.step % evalEvery !== 0) continue;
        curve.push({ step: m.step, accuracy: (await r.evaluate()).accuracy!, flops: m.flops.total, flopsDataGiven: dataGiven('sft', m.flops) });
        console.error(`distill bench: phase 0 (sft, lr ${lr}) step ${m.step}: held-out ${(curve[curve.length - 1].accuracy * 100).toFixed(1)}%`);
        if (flattened(curve, patience, delta)) {
          why = `the best accuracy of the last ${patience} evaluations (every ${evalEvery} steps) was no more than ${delta * 100} points above the best before them`;
          break;
        }
      }
      mkdirSync(flatDir, { recursive: true });
      for (const [path, bytes] of await r.exportStudent({ opd_lab_bench: `sft until flat, ${r.step} steps at lr ${lr}` })) {
        mkdirSync(dirname(join(flatDir, path)), { recursive: true });
        writeFileSync(join(flatDir, path), bytes);
      }
    } finally {
      await r.release();
    }
    const last = curve[curve.length - 1];
    state.flat = { curve, stoppedAtStep: last.step, accuracy: last.accuracy, why, folder: flatDir, seconds: (performance.now() - t0) / 1000 };
    save();
    console.error(`distill bench: phase 0 flattened at step ${last.step} (${(last.accuracy * 100).toFixed(1)}%): ${why}`);
  }
  const flat = state.flat!;
  const start = await readModelFolder(await dirSource(flatDir), { requireWeights: true });
  const target = settings.target ?? flat.accuracy + (state.teacherAccuracy! - flat.accuracy) / 2;
  console.error(`distill bench: ${settings.task}: shipped student ${pct(state.studentAccuracy!)}, after SFT ${pct(flat.accuracy)}, teacher ${pct(state.teacherAccuracy!)}, target ${pct(target)} on ${settings.evalPrompts} held-out prompts`);
  const schedule = new Set(evalSteps(settings.maxSteps, settings.evalSchedule));

  /** The run of this objective, rate, seed and cap already done (this invocation or one resumed), if any. */
  const doneRun = (objective: ObjectiveName, lr: number, seed: number, cap: { flops: number | null; steps: number }) =>
    state.runs.find((x) => x.objective === objective && x.lr === lr && x.seed === seed && x.capFlops === cap.flops && x.capSteps === cap.steps);

  const runOne = async (objective: ObjectiveName, lr: number, seed: number, cap: { flops: number | null; steps: number }): Promise<RaceRun> => {
    const done = doneRun(objective, lr, seed, cap);
    if (done) return done;
    const t0 = performance.now();
    const r = await DistillRun.create(device, { student: start, teacher, task, options: { ...base, objective, lr, seed, totalSteps: cap.steps } });
    const curve: Point[] = [];
    let reached = false;
    let last: StepMetrics | undefined;
    try {
      const e0 = await r.evaluate();
      curve.push({ step: 0, flops: 0, flopsDataGiven: 0, accuracy: e0.accuracy!, reverseKL: e0.reverseKL });
      while (r.step < cap.steps) {
        last = await r.trainStep();
        if (!last.applied) throw new Error(`${objective} lr ${lr} seed ${seed}: step ${last.step} was not applied: ${last.problem ?? 'no reason given'}`);
        const spent = dataGiven(objective, last.flops);
        const capped = cap.flops !== null && spent >= cap.flops;
        if (!schedule.has(last.step) && !capped && last.step < cap.steps) continue;
        const e = await r.evaluate();
        curve.push({ step: last.step, flops: last.flops.total, flopsDataGiven: spent, accuracy: e.accuracy!, reverseKL: e.reverseKL });
        console.error(`distill bench:   ${objective} lr ${lr} seed ${seed} step ${last.step}: held-out ${pct(e.accuracy!)}, ${spent.toExponential(2)} FLOPs`);
        if (e.accuracy! >= target) {
          reached = true;
          break;
        }
        if (capped || diverged(curve)) break;
      }
    } finally {
      await r.release();
    }
    const end = curve[curve.length - 1];
    const result: RaceRun = {
      objective, lr, seed, capFlops: cap.flops, capSteps: cap.steps, reached,
      cost: reached ? end.flopsDataGiven : { atLeast: end.flopsDataGiven },
      costCountingData: reached ? end.flops : { atLeast: end.flops },
      steps: end.step, bestAccuracy: Math.max(...curve.map((p) => p.accuracy)), curve,
      seconds: (performance.now() - t0) / 1000,
    };
    state.runs.push(result);
    save();
    const why = diverged(curve) ? 'diverged' : 'cap';
    console.error(`distill bench: ${objective} lr ${lr} seed ${seed}: ${reached ? `target at step ${end.step}` : `not reached by step ${end.step} (${why})`}, ${end.flopsDataGiven.toExponential(2)} FLOPs, best ${pct(result.bestAccuracy)}, ${result.seconds.toFixed(0)} s`);
    return result;
  };

  /** Sweeps the rates on the sweep seeds, then runs the chosen one on every seed. */
  const race = async (objective: ObjectiveName, sweepCap: { flops: number | null; steps: number }, finalCap: { flops: number | null; steps: number }) => {
    const sweep: { lr: number; median: Cost; bestAccuracy: number }[] = [];
    for (const lr of settings.lrs) {
      const rs: RaceRun[] = [];
      for (let seed = 0; seed < settings.sweepSeeds; seed++) rs.push(await runOne(objective, lr, seed, sweepCap));
      sweep.push({ lr, median: censoredMedian(rs.map((x) => x.cost)), bestAccuracy: Math.max(...rs.map((x) => x.bestAccuracy)) });
    }
    const better = (a: (typeof sweep)[number], b: (typeof sweep)[number]) => {
      if (typeof a.median === 'number' && typeof b.median === 'number') return a.median <= b.median ? a : b;
      if (typeof a.median === 'number') return a;
      if (typeof b.median === 'number') return b;
      return a.bestAccuracy >= b.bestAccuracy ? a : b;
    };
    const chosen = sweep.reduce(better);
    const runs: RaceRun[] = [];
    for (let seed = 0; seed < settings.seeds; seed++) {
      // A sweep run that reached the target under its cap is the same run under a larger one.
      const swept = doneRun(objective, chosen.lr, seed, sweepCap);
      runs.push(swept && (swept.reached || (sweepCap.flops === finalCap.flops && sweepCap.steps === finalCap.steps)) ? swept : await runOne(objective, chosen.lr, seed, finalCap));
    }
    return { chosenLr: chosen.lr, sweep, runs, cap: finalCap };
  };

  const results: Partial<Record<ObjectiveName, Awaited<ReturnType<typeof race>>>> = {};
  const opdCap = { flops: null, steps: settings.opdMaxSteps };
  for (const o of OPD) results[o] = await race(o, opdCap, opdCap);
  const opdMedians = OPD.map((o) => censoredMedian(results[o]!.runs.map((x) => x.cost)));
  // The caps of sft and rl: multiples of the larger OPD median (a bound's value where a median is one).
  const opdScale = Math.max(...opdMedians.map((m) => (typeof m === 'number' ? m : m.atLeast)));
  const steps = settings.maxSteps;
  results.sft = await race('sft', { flops: settings.sweepCapRatio * opdScale, steps }, { flops: settings.capRatio * opdScale, steps });
  results.rl = await race('rl', { flops: settings.sweepCapRatio * opdScale, steps }, { flops: settings.capRatio * opdScale, steps });

  const perObjective: Record<string, object> = {};
  const medians: Partial<Record<ObjectiveName, { dataGiven: Cost; countingData: Cost }>> = {};
  for (const o of RACE) {
    const r = results[o]!;
    const costs = r.runs.map((x) => x.cost);
    const countingData = r.runs.map((x) => x.costCountingData);
    medians[o] = { dataGiven: censoredMedian(costs), countingData: censoredMedian(countingData) };
    perObjective[o] = {
      chosenLr: r.chosenLr,
      reached: reachedCount(costs),
      seeds: costs.length,
      flopsToTarget: costs,
      flopsToTargetCountingData: countingData,
      stepsToTarget: r.runs.map((x) => (x.reached ? x.steps : { atLeast: x.steps })),
      medianFlopsToTarget: medians[o]!.dataGiven,
      medianFlopsToTargetCountingData: medians[o]!.countingData,
      // The seeds' cap (a seed whose sweep run reached the target kept that run). sft's and rl's
      // runs stop at their FLOP cap or at --max-steps, whichever comes first.
      cap: r.cap.flops !== null ? { flops: r.cap.flops, steps: r.cap.steps } : { steps: r.cap.steps },
      sweep: r.sweep.map((s) => ({ lr: s.lr, seeds: settings.sweepSeeds, medianFlopsToTarget: s.median, bestAccuracy: s.bestAccuracy })),
    };
  }
  const against = (opd: ObjectiveName) => ({
    rlOverOpd: costRatio(medians.rl!.dataGiven, medians[opd]!.dataGiven),
    sftOverOpd: costRatio(medians.sft!.dataGiven, medians[opd]!.dataGiven),
    sftOverOpdCountingData: costRatio(medians.sft!.countingData, medians[opd]!.dataGiven),
  });
  const headline = against('opd-sampled');
  const result = {
    bench: 'distill',
    task: settings.task,
    adapter: `${summary.vendor} / ${summary.architecture}${summary.isFallbackAdapter ? ' (fallback, CPU)' : ''}`,
    seeds: settings.seeds,
    ...headline,
    opdReference: 'opd-sampled',
    againstOpdFull: against('opd-full'),
    readable: Object.fromEntries(Object.entries(headline).map(([k, v]) => [k, ratioText(v as Ratio)])),
    protocol: {
      settings,
      phase0: `sft from the shipped student (lr ${settings.flat.lr}, seed 0), evaluated every ${settings.flat.evalEvery} steps, stopped when the best accuracy of the last ${settings.flat.patience} evaluations was no more than ${settings.flat.delta * 100} points above the best before them (at most ${settings.flat.maxSteps} steps); every objective starts from that student`,
      target: settings.target !== null ? 'given (--target)' : 'halfway from the SFT-flattened student’s held-out accuracy to the teacher’s',
      race: `per objective, every rate of ${settings.lrs.join(', ')} on ${settings.sweepSeeds} seed(s), then the rate with the lowest median cost (all censored: the highest accuracy reached) on ${settings.seeds} seeds; opd-sampled and opd-full capped at ${settings.opdMaxSteps} steps, sft and rl at ${settings.capRatio}× the larger OPD median in FLOPs (the sweep at ${settings.sweepCapRatio}×) or ${settings.maxSteps} steps, whichever comes first`,
      evaluation: `greedy held-out accuracy on ${settings.evalPrompts} prompts at steps 1..${settings.evalSchedule.dense}, then growing ×${settings.evalSchedule.growth} (at most ${settings.evalSchedule.maxGap} apart), and at a cap; a run's cost is the FLOPs at its first evaluation at or above the target; a run whose last ${DIVERGED_EVALS} evaluations were all more than ${DIVERGED_DROP * 100} points below its start is stopped as diverged (a bound at the FLOPs it had spent)`,
      accounting: 'FLOPs as workers/distill/run.ts counts them: a forward 2·P per token position, training 6·P per token; sampling (student, or sft’s teacher) counts the positions the KV-cache decoder really ran; OPD counts the teacher’s scoring forward, rl and sft do not (it only feeds their metrics); evaluation is not counted. With the SFT data given, sft pays only its training; counting the data, it also pays the teacher’s sampling. A run that never reached the target is {"atLeast": FLOPs at its cap}; a median that falls on such runs is a bound, and so is a ratio with it.',
    },
    studentAccuracy: state.studentAccuracy,
    teacherAccuracy: state.teacherAccuracy,
    target,
    phase0: { ...flat, folder: undefined },
    opdMedianFlops: Object.fromEntries(OPD.map((o, i) => [o, opdMedians[i]])),
    perObjective,
    seconds: Math.round((performance.now() - started) / 1000),
    runSeconds: Math.round(flat.seconds + state.runs.reduce((a, x) => a + x.seconds, 0)),
    runs: state.runs,
  };
  if (args.plot) {
    mkdirSync(dirname(resolve(args.plot)), { recursive: true });
    const chosen = RACE.flatMap((o) => results[o]!.runs);
    writeFileSync(args.plot, plotSvg(settings.task, flat, chosen, perObjective as Record<string, { chosenLr: number }>, target));
    console.error(`distill bench: wrote ${args.plot}`);
  }
  return result;
}

/**
 * A run that has collapsed: its last DIVERGED_EVALS evaluations all more than DIVERGED_DROP below
 * its start. It stops there (saving the rest of its cap) and counts as not reaching the target,
 * a bound at the FLOPs it had spent.
 */
const DIVERGED_DROP = 0.2;
const DIVERGED_EVALS = 3;
function diverged(curve: readonly Point[]): boolean {
  if (curve.length < DIVERGED_EVALS + 1) return false;
  return curve.slice(-DIVERGED_EVALS).every((p) => p.accuracy < curve[0].accuracy - DIVERGED_DROP);
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

const COLOURS: Record<string, string> = { 'opd-sampled': '#1f77b4', 'opd-full': '#17becf', sft: '#ff7f0e', rl: '#d62728' };

/** Phase 0 (accuracy against sft steps) beside the race (accuracy against FLOPs, log scale, every seed of each objective's chosen rate). */
function plotSvg(taskName: string, flat: Flat, runs: RaceRun[], perObjective: Record<string, { chosenLr: number }>, target: number): string {
  const W = 980;
  const H = 440;
  const top = 40;
  const bottom = 56;
  const left0 = 60;
  const w0 = 220;
  const left1 = left0 + w0 + 80;
  const w1 = W - left1 - 190;
  const accs = [flat.accuracy, target, ...flat.curve.map((p) => p.accuracy), ...runs.flatMap((r) => r.curve.map((p) => p.accuracy))];
  const lo = Math.max(0, Math.floor(Math.min(...accs) * 10) / 10);
  const y = (a: number) => H - bottom - ((a - lo) / (1 - lo)) * (H - top - bottom);
  const maxFlatStep = Math.max(1, ...flat.curve.map((p) => p.step));
  const x0 = (s: number) => left0 + (s / maxFlatStep) * w0;
  const flops = runs.flatMap((r) => r.curve.map((p) => p.flopsDataGiven)).filter((f) => f > 0);
  const fMin = 10 ** Math.floor(Math.log10(Math.min(...flops, 1e9)));
  const fMax = 10 ** Math.ceil(Math.log10(Math.max(...flops, fMin * 10)));
  const x1 = (f: number) => left1 + ((Math.log10(Math.max(f, fMin)) - Math.log10(fMin)) / (Math.log10(fMax) - Math.log10(fMin))) * w1;
  const out: string[] = [];
  const yTicks: number[] = [];
  for (let a = lo; a <= 1.0001; a += 0.1) yTicks.push(Math.round(a * 10) / 10);
  for (const [l, w] of [[left0, w0], [left1, w1]]) {
    for (const a of yTicks) out.push(`<line x1="${l}" x2="${l + w}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/><text x="${l - 6}" y="${y(a) + 4}" text-anchor="end" font-size="11">${Math.round(a * 100)}%</text>`);
    out.push(`<line x1="${l}" x2="${l + w}" y1="${y(target)}" y2="${y(target)}" stroke="#888" stroke-dasharray="4 3"/>`);
  }
  out.push(`<text x="${left1 + w1 - 4}" y="${y(target) - 4}" text-anchor="end" font-size="11" fill="#555">target ${pct(target)}</text>`);
  // Phase 0.
  out.push(`<text x="${left0}" y="${top - 14}" font-size="13" font-weight="bold">0. SFT until it flattens</text>`);
  out.push(`<polyline fill="none" stroke="${COLOURS.sft}" stroke-width="2" points="${flat.curve.map((p) => `${x0(p.step).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(' ')}"/>`);
  out.push(`<circle cx="${x0(flat.stoppedAtStep)}" cy="${y(flat.accuracy)}" r="4" fill="${COLOURS.sft}"/><text x="${x0(flat.stoppedAtStep) - 4}" y="${y(flat.accuracy) + 16}" text-anchor="end" font-size="11">start: ${pct(flat.accuracy)}</text>`);
  for (const f of [0, 0.5, 1]) out.push(`<text x="${x0(f * maxFlatStep)}" y="${H - bottom + 16}" text-anchor="middle" font-size="11">${Math.round(f * maxFlatStep)}</text>`);
  out.push(`<text x="${left0 + w0 / 2}" y="${H - bottom + 34}" text-anchor="middle" font-size="12">sft steps</text>`);
  // The race.
  out.push(`<text x="${left1}" y="${top - 14}" font-size="13" font-weight="bold">1. The race from there (${taskName}, every seed)</text>`);
  for (const r of runs) {
    const pts = r.curve.filter((p) => p.flopsDataGiven > 0);
    const start = `${x1(fMin).toFixed(1)},${y(r.curve[0].accuracy).toFixed(1)}`;
    out.push(`<polyline fill="none" stroke="${COLOURS[r.objective]}" stroke-width="1.4" stroke-opacity="0.75" points="${[start, ...pts.map((p) => `${x1(p.flopsDataGiven).toFixed(1)},${y(p.accuracy).toFixed(1)}`)].join(' ')}"/>`);
    const end = r.curve[r.curve.length - 1];
    out.push(r.reached ? `<circle cx="${x1(end.flopsDataGiven).toFixed(1)}" cy="${y(end.accuracy).toFixed(1)}" r="3" fill="${COLOURS[r.objective]}"/>` : `<text x="${x1(end.flopsDataGiven).toFixed(1)}" y="${(y(end.accuracy) + 4).toFixed(1)}" font-size="11" fill="${COLOURS[r.objective]}">×</text>`);
  }
  for (let e = Math.log10(fMin); e <= Math.log10(fMax) + 1e-9; e++) out.push(`<text x="${x1(10 ** e)}" y="${H - bottom + 16}" text-anchor="middle" font-size="11">1e${e}</text>`);
  out.push(`<text x="${left1 + w1 / 2}" y="${H - bottom + 34}" text-anchor="middle" font-size="12">FLOPs from the SFT-flattened start (log; sft without its data’s generation)</text>`);
  out.push(`<text x="16" y="${(top + H - bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${(top + H - bottom) / 2})">held-out accuracy</text>`);
  Object.keys(perObjective).forEach((o, i) => {
    out.push(`<rect x="${W - 176}" y="${top + i * 20}" width="14" height="3" fill="${COLOURS[o]}"/><text x="${W - 156}" y="${top + i * 20 + 5}" font-size="12">${o} (lr ${perObjective[o].chosenLr})</text>`);
  });
  out.push(`<text x="${W - 176}" y="${top + 4 * 20 + 10}" font-size="11" fill="#555">● reached the target</text><text x="${W - 176}" y="${top + 5 * 20 + 6}" font-size="11" fill="#555">× stopped at its cap</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${out.join('\n')}\n</svg>\n`;
}

