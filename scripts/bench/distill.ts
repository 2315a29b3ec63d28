/**
 * `npm run bench -- distill [--out FILE] [--plot FILE.svg] [options]`: the method's headline claim
 * in miniature. From the shipped student, each objective (opd-sampled, opd-full, sft, rl) is run
 * with each learning rate of a small sweep over several seeds until its held-out accuracy reaches
 * the target, evaluating every `--eval-every` steps; the FLOPs spent when the target was first
 * seen are that run's cost (a run that never reached it counts with its whole budget, and says
 * so). Per objective the best learning rate (lowest median cost) is kept, and the ratios of median
 * FLOPs to target are reported: rlOverOpd = rl / opd-sampled, sftOverOpd = sft / opd-sampled.
 *
 * Target (default): halfway from the student's held-out accuracy to the teacher's, both measured
 * at the start on the same eval prompts. FLOPs as DESIGN.md counts them (workers/distill/run.ts).
 *
 * Options: --student DIR --teacher DIR (default the shipped models), --objectives a,b,…,
 * --seeds N (3), --lrs a,b,… (1e-3,3e-3), --sweep-seeds N (the learning-rate sweep runs every rate
 * on the first N seeds, 1 by default; the rate with the lowest median cost there is then run on
 * the remaining seeds, and the objective is reported over all --seeds at that rate; N = --seeds
 * sweeps every rate on every seed), --max-steps N (the FLOP budget per run is this many
 * opd-sampled steps, 40), --budget-flops X (or give it directly), --eval-every N (5),
 * --eval-prompts N (128), --batch B (8), --group G (4), --target X (fraction).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { nodeGpu, NODE_GPU_ADVICE } from '../../workers/node/gpu';
import { acquireDevice } from '../../workers/gpu/device';
import { configureOrt } from '../../workers/ort/runtime';
import { readModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { DistillRun } from '../../workers/distill/run';
import { OBJECTIVES, type ObjectiveName } from '../../workers/contract/run';
import { evaluateFolder } from '../../workers/distill/evaluate';
import { builtInTask } from '../../workers/tasks/registry';
import { countGpt2Parameters } from '../../workers/models/gpt2/params';

interface RunResult {
  objective: ObjectiveName;
  lr: number;
  seed: number;
  reached: boolean;
  stepsToTarget: number;
  flopsToTarget: number;
  curve: { step: number; flops: number; accuracy: number }[];
  seconds: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function run(args: Record<string, string>): Promise<object> {
  const studentDir = resolve(args.student ?? 'models/addition-student');
  const teacherDir = resolve(args.teacher ?? 'models/addition-teacher');
  const objectives = (args.objectives ?? OBJECTIVES.join(',')).split(',') as ObjectiveName[];
  for (const o of objectives) if (!(OBJECTIVES as readonly string[]).includes(o)) throw new Error(`--objectives: unknown objective '${o}' (${OBJECTIVES.join(', ')})`);
  const seeds = Number(args.seeds ?? 3);
  const lrs = (args.lrs ?? '1e-3,3e-3').split(',').map(Number);
  const sweepSeeds = Math.min(seeds, Number(args['sweep-seeds'] ?? 1));
  const maxSteps = Number(args['max-steps'] ?? 40);
  const evalEvery = Number(args['eval-every'] ?? 5);
  const evalPrompts = Number(args['eval-prompts'] ?? 128);
  const batch = Number(args.batch ?? 8);
  const group = Number(args.group ?? 4);
  for (const [name, v] of [['seeds', seeds], ['sweep-seeds', sweepSeeds], ['max-steps', maxSteps], ['eval-every', evalEvery], ['eval-prompts', evalPrompts], ['batch', batch], ['group', group]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive whole number`);
  }
  if (lrs.some((x) => !(x > 0 && x < 1))) throw new Error('--lrs must be learning rates in (0, 1), comma-separated');

  const acquired = await acquireDevice(nodeGpu());
  if (!acquired.ok) throw new Error(`${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  const { device, summary } = acquired;
  configureOrt({ numThreads: 1 });
  const student = await readModelFolder(await dirSource(studentDir), { requireWeights: true });
  const teacher = await readModelFolder(await dirSource(teacherDir));
  const { task, maxTokens } = builtInTask('addition', student.rawConfig);
  const started = performance.now();
  const studentAcc = (await evaluateFolder(device, student, task, evalPrompts, maxTokens)).accuracy;
  const teacherAcc = (await evaluateFolder(device, teacher, task, evalPrompts, maxTokens)).accuracy;
  const target = args.target !== undefined ? Number(args.target) : studentAcc + (teacherAcc - studentAcc) / 2;
  // One FLOP budget for every run: --max-steps steps of opd-sampled (its samples scored by the
  // teacher and trained on), estimated at full answer length. A run stops when it reaches the
  // target or has spent the budget; an unreached run costs the whole budget.
  const pS = countGpt2Parameters(student.gpt2!);
  const pT = teacher.gpt2 ? countGpt2Parameters(teacher.gpt2) : pS;
  const tokensPerStep = batch * group * (student.tokenizer.encode(task.evalPrompts(1)[0]).length + maxTokens);
  const budget = args['budget-flops'] !== undefined ? Number(args['budget-flops']) : maxSteps * tokensPerStep * (2 * pS + 2 * pT + 6 * pS);
  if (!(budget > 0)) throw new Error('--budget-flops must be a positive number');
  console.error(`distill bench: student ${(studentAcc * 100).toFixed(1)}%, teacher ${(teacherAcc * 100).toFixed(1)}%, target ${(target * 100).toFixed(1)}% on ${evalPrompts} held-out prompts`);

  const runs: RunResult[] = [];
  const runOne = async (objective: ObjectiveName, lr: number, seed: number) => {
    const t0 = performance.now();
    const r = await DistillRun.create(device, {
      student, teacher, task,
      options: { objective, lr, seed, batchPrompts: batch, groupSize: group, maxTokens, evalPrompts, totalSteps: maxSteps },
    });
    const curve: RunResult['curve'] = [];
    let reachedAt: { step: number; flops: number } | undefined;
    try {
      const first = await r.evaluate();
      curve.push({ step: 0, flops: 0, accuracy: first.accuracy! });
      let spent = 0;
      while (spent < budget && r.step < 20 * maxSteps && !reachedAt) {
        const m = await r.trainStep();
        spent = m.flops.total;
        if (m.step % evalEvery === 0 || spent >= budget) {
          const e = await r.evaluate();
          curve.push({ step: m.step, flops: m.flops.total, accuracy: e.accuracy! });
          if (e.accuracy! >= target) reachedAt = { step: m.step, flops: m.flops.total };
        }
      }
    } finally {
      await r.release();
    }
    const last = curve[curve.length - 1];
    const result: RunResult = {
      objective, lr, seed, reached: reachedAt !== undefined,
      stepsToTarget: reachedAt?.step ?? last.step, flopsToTarget: reachedAt?.flops ?? Math.max(budget, last.flops),
      curve, seconds: (performance.now() - t0) / 1000,
    };
    runs.push(result);
    console.error(`distill bench: ${objective} lr ${lr} seed ${seed}: ${result.reached ? `target at step ${result.stepsToTarget}` : `not reached in ${result.stepsToTarget} steps (budget ${budget.toExponential(2)} FLOPs)`}, ${result.flopsToTarget.toExponential(2)} FLOPs, ${result.seconds.toFixed(0)} s`);
    if (args['partial-out']) writeFileSync(args['partial-out'], JSON.stringify({ target, studentAcc, teacherAcc, budget, runs }, null, 1));
  };
  const sweepMedian = (objective: ObjectiveName, lr: number) =>
    median(runs.filter((x) => x.objective === objective && x.lr === lr).map((x) => x.flopsToTarget));
  for (const objective of objectives) {
    for (const lr of lrs) for (let seed = 0; seed < sweepSeeds; seed++) await runOne(objective, lr, seed);
    const bestLr = lrs.reduce((a, b) => (sweepMedian(objective, b) < sweepMedian(objective, a) ? b : a));
    for (let seed = sweepSeeds; seed < seeds; seed++) await runOne(objective, bestLr, seed);
  }

  const perObjective: Record<string, object> = {};
  const best: Record<string, { median: number }> = {};
  for (const objective of objectives) {
    const byLr = lrs.map((lr) => {
      const rs = runs.filter((x) => x.objective === objective && x.lr === lr);
      return { lr, runs: rs, median: median(rs.map((x) => x.flopsToTarget)) };
    });
    // The rate run on every seed (the sweep's winner); with --sweep-seeds = --seeds, the lowest median.
    const full = byLr.filter((b) => b.runs.length === seeds);
    const chosen = full.reduce((a, b) => (b.median < a.median ? b : a));
    const flops = chosen.runs.map((x) => x.flopsToTarget);
    best[objective] = { median: chosen.median };
    perObjective[objective] = {
      bestLr: chosen.lr,
      flopsToTarget: { median: chosen.median, min: Math.min(...flops), max: Math.max(...flops) },
      stepsToTarget: { median: median(chosen.runs.map((x) => x.stepsToTarget)), all: chosen.runs.map((x) => x.stepsToTarget) },
      reached: `${chosen.runs.filter((x) => x.reached).length} of ${chosen.runs.length} seeds`,
      unreachedCountAsBudget: chosen.runs.some((x) => !x.reached),
      sweep: byLr.map((b) => ({ lr: b.lr, seeds: b.runs.length, medianFlops: b.median, reached: b.runs.filter((x) => x.reached).length })),
    };
  }
  const ratio = (a: string, b: string) => (best[a] && best[b] ? best[a].median / best[b].median : null);
  const result = {
    bench: 'distill',
    adapter: `${summary.vendor} / ${summary.architecture}${summary.isFallbackAdapter ? ' (fallback, CPU)' : ''}`,
    student: studentDir, teacher: teacherDir,
    studentAccuracy: studentAcc, teacherAccuracy: teacherAcc, target, evalPrompts,
    settings: { seeds, sweepSeeds, lrs, maxSteps, budgetFlops: budget, evalEvery, batchPrompts: batch, groupSize: group, maxTokens },
    counted: 'FLOPs to target: student sampling 2·P_s per prompt+completion token, teacher scoring 2·P_t per token (OPD; sft: the teacher sampling its answers), training 6·P_s per token; evaluation not counted; first eval at or above the target; a run that never reached it counts the whole FLOP budget (the same for every run: --max-steps steps of opd-sampled at full answer length, unless --budget-flops)',
    perObjective,
    rlOverOpd: ratio('rl', 'opd-sampled'),
    sftOverOpd: ratio('sft', 'opd-sampled'),
    seconds: Math.round((performance.now() - started) / 1000),
    runs,
  };
  if (args.plot) {
    mkdirSync(dirname(resolve(args.plot)), { recursive: true });
    writeFileSync(args.plot, plotSvg(runs, perObjective as Record<string, { bestLr: number }>, target));
    console.error(`distill bench: wrote ${args.plot}`);
  }
  return result;
}

const COLOURS: Record<string, string> = { 'opd-sampled': '#1f77b4', 'opd-full': '#17becf', sft: '#ff7f0e', rl: '#d62728' };

/** Held-out accuracy against FLOPs, every seed of each objective's best learning rate, as an SVG. */
function plotSvg(runs: RunResult[], perObjective: Record<string, { bestLr: number }>, target: number): string {
  const W = 720;
  const H = 420;
  const m = { l: 70, r: 170, t: 30, b: 50 };
  const chosen = runs.filter((r) => perObjective[r.objective]?.bestLr === r.lr);
  const maxFlops = Math.max(1, ...chosen.flatMap((r) => r.curve.map((p) => p.flops)));
  const x = (f: number) => m.l + (f / maxFlops) * (W - m.l - m.r);
  const y = (a: number) => H - m.b - a * (H - m.t - m.b);
  const lines = chosen.map((r) => `<polyline fill="none" stroke="${COLOURS[r.objective]}" stroke-width="1.5" stroke-opacity="0.8" points="${r.curve.map((p) => `${x(p.flops).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(' ')}"/>`);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((a) => `<text x="${m.l - 8}" y="${y(a) + 4}" text-anchor="end" font-size="11">${Math.round(a * 100)}%</text><line x1="${m.l}" x2="${W - m.r}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/>`);
  const xt = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${x(f * maxFlops)}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${(f * maxFlops).toExponential(1)}</text>`);
  const legend = Object.keys(perObjective).map((o, i) => `<rect x="${W - m.r + 16}" y="${m.t + i * 20}" width="12" height="3" fill="${COLOURS[o]}"/><text x="${W - m.r + 34}" y="${m.t + i * 20 + 5}" font-size="12">${o} (lr ${perObjective[o].bestLr})</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${ticks.join('\n')}
<line x1="${m.l}" x2="${W - m.r}" y1="${y(target)}" y2="${y(target)}" stroke="#888" stroke-dasharray="4 3"/><text x="${W - m.r - 4}" y="${y(target) - 4}" text-anchor="end" font-size="11" fill="#555">target</text>
${lines.join('\n')}
${xt.join('\n')}
<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle" font-size="12">FLOPs spent (student sampling + teacher scoring + training)</text>
<text x="16" y="${(m.t + H - m.b) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${(m.t + H - m.b) / 2})">held-out accuracy</text>
${legend.join('\n')}
</svg>
`;
}
