/**
 * A Llama-family student distilled from the GPT-2 teacher on the built-in task, through
 * `opd-lab train --preset llama-student` (models/addition-student-llama taught by
 * models/addition-teacher, objective opd-sampled): the run's reverse KL to the teacher falls.
 *
 * The measurement is the run's own: the reverse KL of the student's greedy answers to the first
 * EVAL_PROMPTS held-out prompts, scored by the teacher, in the evaluation before the first step
 * and in the one after the last (the same prompts both times, so the fall is the student's, not
 * the prompts'). A step's own reverse KL (on that step's samples) is not used: with a few prompts
 * per step it moves more with which prompts the stream gives than with training.
 *
 * Measured over seeds 0-7 with this run (16 steps of 8 prompts × 4 completions at the preset's
 * lr 2e-4, 128 prompts): 1.750 → 1.612, 1.563, 1.557, 1.592, 1.544, 1.534, 1.576, 1.547, a fall
 * of 7.9-12.3% (held-out accuracy 48% → 56-64%); the test asks for 4%, half the smallest.
 *
 * The CLI runs on Mesa's lavapipe when it is installed (npm test installs it for the f16 pass)
 * and no driver was chosen with VK_ICD_FILENAMES, else on SwiftShader. Both give the same numbers
 * (seed 0: 1.7498 → 1.6117 on both); this test took 18 s on lavapipe and 113 s on SwiftShader, on
 * this project's 2 shared cores.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LLAMA_STUDENT } from '../../workers/contract/presets';
import { readModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { cliDriverEnv } from './cli-driver';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');
const MODELS = join(import.meta.dirname, '..', '..', 'models');
/** SwiftShader took 113 s for this run with the 2 cores shared; lavapipe 18 s. */
const CLI_TIMEOUT = 600_000;

/** The run: the preset's objective and learning rate; fewer steps and prompts than its own. */
const STEPS = 16;
const BATCH = 8;
const GROUP = 4;
const EVAL_PROMPTS = 128;
const SEED = 0;
/** The fall asserted, relative to the first evaluation: half the smallest of the 8 seeds measured (7.9%). */
const MARGIN = 0.04;

describe('opd-lab train: a Llama-family student distilled from the GPT-2 teacher', () => {
  it('opd-sampled lowers the reverse KL of its answers against the run’s first evaluation, and writes a Llama folder', { timeout: CLI_TIMEOUT }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'opd-llama-')), 'run');
    const started = performance.now();
    const r = spawnSync(
      process.execPath,
      [BIN, 'train', '--preset', LLAMA_STUDENT.name, '--models', MODELS, '--steps', String(STEPS), '--batch', String(BATCH), '--group', String(GROUP),
        '--eval-every', '0', '--eval-prompts', String(EVAL_PROMPTS), '--checkpoint-every', '0', '--seed', String(SEED), '--out', out],
      { encoding: 'utf8', timeout: CLI_TIMEOUT, env: cliDriverEnv() },
    );
    console.log(`opd-lab train --preset ${LLAMA_STUDENT.name} (${cliDriverEnv().VK_ICD_FILENAMES ?? 'the CLI’s default driver'}): ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(r.stderr).not.toMatch(/^opd-lab: /m);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^wrote .*: ${STEPS} steps of opd-sampled; held-out addition accuracy \\d+\\.\\d%; the student is in `));

    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ preset: LLAMA_STUDENT.name, task: 'addition', keptTask: null, options: { objective: 'opd-sampled', lr: LLAMA_STUDENT.setup.lr } });
    expect(config.student).toMatch(/addition-student-llama$/);
    expect(config.teacher).toMatch(/addition-teacher$/);

    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.type === 'step');
    expect(steps.map((l) => l.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    for (const m of steps) {
      expect(m.applied).toBe(true);
      expect(m.objective).toBe('opd-sampled');
      expect(Number.isFinite(m.reverseKL) && Number.isFinite(m.loss) && Number.isFinite(m.gradNorm)).toBe(true);
    }
    // On-policy: the sampler's log-probs are the trainer's (ρ = 1 before each update).
    expect(Math.abs(steps[0].meanRatio - 1)).toBeLessThan(1e-3);
    const [first, last] = lines.filter((l) => l.type === 'eval');
    expect([first.step, last.step, first.prompts, last.prompts]).toEqual([0, STEPS, EVAL_PROMPTS, EVAL_PROMPTS]);
    console.log(`reverse KL of the greedy answers ${first.reverseKL.toFixed(4)} → ${last.reverseKL.toFixed(4)}, accuracy ${first.accuracy} → ${last.accuracy}`);
    expect(last.reverseKL).toBeLessThan(first.reverseKL * (1 - MARGIN));

    // The trained student is a Llama folder again, with the run's weights.
    const trained = await readModelFolder(await dirSource(join(out, 'student')), { requireWeights: true });
    const original = await readModelFolder(await dirSource(join(MODELS, LLAMA_STUDENT.student)), { requireWeights: true });
    expect(trained.rawConfig.model_type).toBe('llama');
    expect(trained.rawConfig.num_key_value_heads).toBe(2);
    const name = 'model.layers.0.self_attn.q_proj.weight';
    expect(trained.weights!.get(name)!.some((x, i) => x !== original.weights!.get(name)![i])).toBe(true);
  });
});
