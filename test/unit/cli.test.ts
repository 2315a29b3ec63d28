import { describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ARITHMETIC_CHARS, charTokenizer, writeRandomGpt2Folder } from './fixtures';
import { Gpt2Reference } from '../reference/gpt2';
import { logSoftmax } from '../../workers/sampling/choose';
import { parseOptions } from '../../cli/args';
import { trainCommand } from '../../cli/train';
import { DistillRun } from '../../workers/distill/run';
import { cliDriverEnv, withoutDawnWarnings } from './cli-driver';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');

/**
 * A fresh process compiles onnxruntime-web's WebGPU shaders on its first model run: 10–45 s on
 * SwiftShader (CPU), a one-time cost per process; hence the long limits on the sampling calls.
 */
const CLI_TIMEOUT = 240_000;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: CLI_TIMEOUT, env: cliDriverEnv() });
  return { code: r.status, stdout: r.stdout, stderr: withoutDawnWarnings(r.stderr ?? '') };
}

describe('the opd-lab CLI', () => {
  it('info --json prints the WebGPU adapter it runs on', () => {
    const r = cli('info', '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    // The driver its process was given: lavapipe (mesa) when installed, else SwiftShader (google).
    expect(info.vendor).toBe(/lvp_icd/.test(cliDriverEnv().VK_ICD_FILENAMES ?? '') ? 'mesa' : 'google');
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
  });

  it('answers bad arguments with one line on stderr and exit code 2', () => {
    for (const args of [['frob'], ['info', '--bogus'], ['info', 'stray']]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^opd-lab: /);
    }
    expect(cli().code).toBe(2);
    expect(cli('--help').stdout).toContain('usage: opd-lab <command>');
  });
});

describe('opd-lab sample', () => {
  // Reproducibility by seed is tested in-process (sampler.test.ts); here the CLI's own path.
  it('samples from a model folder, with log-probs that match the reference', { timeout: CLI_TIMEOUT }, async () => {
    const { dir, config, params } = await writeRandomGpt2Folder(21);
    const first = cli('sample', '--model', dir, '--prompt', 'Q: 12+3=', '--n', '3', '--max-tokens', '6', '--seed', '5', '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.promptIds).toHaveLength('Q: 12+3='.length);
    expect(out.completions).toHaveLength(3);
    const reference = new Gpt2Reference(config, params);
    for (const c of out.completions) {
      const logits = reference.forward([...out.promptIds, ...c.tokens.slice(0, -1)]);
      c.tokens.forEach((t: number, i: number) => {
        // 2e-4: twice the decoder's logit tolerance (see sampler.test.ts).
        expect(Math.abs(logSoftmax(logits[out.promptIds.length - 1 + i])[t] - c.logprobs[i])).toBeLessThanOrEqual(2e-4);
      });
      expect(typeof c.text).toBe('string');
    }
  });

  it('says in one line what is wrong with a folder or a request', { timeout: CLI_TIMEOUT }, async () => {
    const missing = cli('sample', '--model', '/nonexistent/model', '--prompt', 'x');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('opd-lab: The model folder /nonexistent/model does not exist.');
    const { dir } = await writeRandomGpt2Folder(22);
    const long = cli('sample', '--model', dir, '--prompt', 'Q: 1+1=', '--max-tokens', '100');
    expect(long.code).toBe(1);
    expect(long.stderr).toContain("exceeds the model's 64 positions");
    expect(cli('sample', '--model', dir).stderr.trim()).toBe('opd-lab: sample: --prompt is required (the prompt text)');
    expect(cli('sample', '--model', dir, '--prompt', 'x', '--temperature', 'hot').code).toBe(2);
  });
});

describe('opd-lab score', () => {
  it('scores every completion token against the float64 reference of both models', { timeout: CLI_TIMEOUT }, async () => {
    const student = await writeRandomGpt2Folder(31);
    const teacher = await writeRandomGpt2Folder(32);
    const r = cli('score', '--student', student.dir, '--teacher', teacher.dir, '--prompt', 'Q: 12+3=', '--completion', ' A: 15', '--top-k', '3', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const sRef = new Gpt2Reference(student.config, student.params);
    const tRef = new Gpt2Reference(teacher.config, teacher.params);
    const completion = out.tokens.map((x: { id: number }) => x.id);
    expect(completion).toHaveLength(' A: 15'.length);
    expect(out.tokens.map((x: { text: string }) => x.text).join('')).toBe(' A: 15');
    const sLogits = sRef.forward([...out.promptIds, ...completion]);
    const tLogits = tRef.forward([...out.promptIds, ...completion]);
    // Logits agree with the reference within 1e-4 (gpt2-decoder.test.ts): log-probs then within
    // 2e-4, and a KL, a p-weighted sum of two log-prob differences, within 4e-4; 5e-4 is stated.
    const LP = 2e-4, KL = 5e-4;
    let sumRev = 0, sumSampled = 0;
    out.tokens.forEach((x: any, i: number) => {
      const s = logSoftmax(sLogits[out.promptIds.length - 1 + i]);
      const q = logSoftmax(tLogits[out.promptIds.length - 1 + i]);
      let rev = 0, fwd = 0;
      for (let v = 0; v < s.length; v++) {
        rev += Math.exp(s[v]) * (s[v] - q[v]);
        fwd += Math.exp(q[v]) * (q[v] - s[v]);
      }
      expect(Math.abs(x.studentLogprob - s[x.id])).toBeLessThanOrEqual(LP);
      expect(Math.abs(x.teacherLogprob - q[x.id])).toBeLessThanOrEqual(LP);
      expect(Math.abs(x.sampledKL - (s[x.id] - q[x.id]))).toBeLessThanOrEqual(2 * LP);
      expect(Math.abs(x.reverseKL - rev)).toBeLessThanOrEqual(KL);
      expect(Math.abs(x.forwardKL - fwd)).toBeLessThanOrEqual(KL);
      const best = Array.from(q.keys()).sort((a, b) => q[b] - q[a]).slice(0, 3);
      expect(x.teacherTop.map((c: { id: number }) => c.id)).toEqual(best);
      x.teacherTop.forEach((c: { id: number; logprob: number }) => expect(Math.abs(c.logprob - q[c.id])).toBeLessThanOrEqual(LP));
      sumRev += x.reverseKL;
      sumSampled += x.sampledKL;
    });
    expect(out.meanReverseKL).toBeCloseTo(sumRev / out.tokens.length, 10);
    expect(out.meanSampledKL).toBeCloseTo(sumSampled / out.tokens.length, 10);
  });

  it('refuses a teacher with another tokenizer, naming the first tokens that differ', async () => {
    const student = await writeRandomGpt2Folder(33);
    const other = await writeRandomGpt2Folder(34);
    const shuffled = charTokenizer(['1', '0', ...ARITHMETIC_CHARS.slice(2)]);
    writeFileSync(join(other.dir, 'tokenizer.json'), JSON.stringify(shuffled));
    const r = cli('score', '--student', student.dir, '--teacher', other.dir, '--prompt', 'Q: 1+1=', '--completion', ' A: 2');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('id 1: student "0", teacher "1"');
  });
});

describe('opd-lab train and eval', () => {
  const MODELS = join(import.meta.dirname, '..', '..', 'models');

  it('runs the self-distillation preset and writes the run: config, metrics with both accuracies, checkpoint, student', { timeout: 2 * CLI_TIMEOUT }, () => {
    const out = join(mkdtempSync(join(tmpdir(), 'opd-run-')), 'run');
    const r = cli('train', '--preset', 'self-distill', '--models', MODELS, '--steps', '2', '--batch', '2', '--group', '2', '--eval-every', '1', '--eval-prompts', '8', '--out', out);
    expect(r.stderr).not.toMatch(/^opd-lab: /m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*: 2 steps of opd-sampled; held-out addition accuracy \d+\.\d%, kept subtraction \d+\.\d%; the student is in /);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ preset: 'self-distill', task: 'addition', keptTask: 'subtraction', options: { objective: 'opd-sampled', batchPrompts: 2, groupSize: 2, evalPrompts: 8 } });
    expect(config.student).toMatch(/recovery-student$/);
    expect(config.teacher).toMatch(/recovery-teacher$/);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'step').map((l) => l.step)).toEqual([1, 2]);
    const evals = lines.filter((l) => l.type === 'eval');
    expect(evals.map((l) => l.step)).toEqual([0, 1, 2]);
    for (const e of evals) {
      expect(e.kept).toMatchObject({ task: 'subtraction', prompts: 8 });
      expect(e.kept.accuracy).toBeGreaterThanOrEqual(0);
      expect(e.prompts).toBe(8);
    }
    expect(existsSync(join(out, 'checkpoints', 'step-2.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'adapter'))).toBe(false); // no --lora: every weight trained, no PEFT adapter

    // The written student answers subtraction through `opd-lab eval`, its vocabulary kept ('-').
    const ev = cli('eval', '--model', join(out, 'student'), '--task', 'subtraction', '--prompts', '8');
    expect(ev.code).toBe(0);
    expect(ev.stdout).toMatch(/held-out accuracy \d+\.\d% \(\d\/8 subtraction prompts\)/);
  });

  it('with --lora R writes the merged student and the PEFT adapter (a Llama-family student, the fixture llama-tied)', { timeout: 2 * CLI_TIMEOUT }, () => {
    const HF = join(import.meta.dirname, '..', 'fixtures', 'hf');
    const out = join(mkdtempSync(join(tmpdir(), 'opd-run-')), 'run');
    const student = join(HF, 'llama-tied');
    const r = cli('train', '--student', student, '--teacher', join(HF, 'llama-teacher'), '--lora', '2', '--steps', '1', '--batch', '1', '--group', '2', '--eval-every', '0', '--eval-prompts', '1', '--checkpoint-every', '0', '--out', out, '--json');
    expect(r.stderr).not.toMatch(/^opd-lab: /m);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ student: join(out, 'student'), adapter: join(out, 'adapter') });
    const adapter = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(adapter).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 2, task_type: 'CAUSAL_LM', base_model_name_or_path: student, fan_in_fan_out: false });
    expect(existsSync(join(out, 'adapter', 'adapter_model.safetensors'))).toBe(true);
    for (const file of ['config.json', 'generation_config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']) expect(existsSync(join(out, 'student', file)), file).toBe(true);
  });

  it("drives the engine's run loop: 3 unapplied steps in a row fail the run (numerics), the checkpoint kept; no --keep-task keeps none", { timeout: 2 * CLI_TIMEOUT }, async () => {
    // In this process, so that the guard can be made to refuse every step (as engine.test.ts does with the engine).
    // On the driver the child processes above get (cli-driver.ts: lavapipe when installed, else
    // SwiftShader), set before this process first loads Dawn (nothing else in this file does):
    // the run loop's handling is the same on either, and lavapipe compiles its shaders far faster.
    Object.assign(process.env, cliDriverEnv());
    const real = DistillRun.prototype.trainStep;
    const spy = vi.spyOn(DistillRun.prototype, 'trainStep').mockImplementation(async function (this: DistillRun) {
      return { ...(await real.call(this)), applied: false, problem: 'the gradient norm is not finite' };
    });
    try {
      const out = join(mkdtempSync(join(tmpdir(), 'opd-run-')), 'run');
      // recovery-student's config.json names a task to keep (task_kept); without --keep-task none is kept, as in the lab.
      const argv = ['--student', join(MODELS, 'recovery-student'), '--teacher', join(MODELS, 'recovery-teacher'), '--steps', '10', '--batch', '1', '--group', '1', '--eval-every', '0', '--eval-prompts', '4', '--out', out];
      await expect(trainCommand.run(parseOptions(argv, trainCommand.options, 'train'))).rejects.toThrow(
        `train: failed at step 3 of 10: 3 steps in a row could not be applied (the gradient norm is not finite): the student's weights stay as they were before them. A lower learning rate or a higher temperature may help. The metrics and the checkpoint of step 3 are in ${out}.`,
      );
      const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.filter((l) => l.type === 'step').map((l) => [l.step, l.applied])).toEqual([[1, false], [2, false], [3, false]]);
      const evals = lines.filter((l) => l.type === 'eval');
      expect(evals.map((l) => l.step)).toEqual([0]);
      expect(evals[0].kept).toBeUndefined();
      expect(lines.filter((l) => l.type === 'checkpoint').map((l) => l.step)).toEqual([3]);
      expect(existsSync(join(out, 'checkpoints', 'step-3.safetensors'))).toBe(true);
      expect(existsSync(join(out, 'student'))).toBe(false);
      expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).keptTask).toBeNull();
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a kept task the student cannot write, and an unknown preset, in one line', { timeout: CLI_TIMEOUT }, () => {
    const out = join(mkdtempSync(join(tmpdir(), 'opd-run-')), 'run');
    const bad = cli('train', '--student', join(MODELS, 'addition-student'), '--teacher', join(MODELS, 'addition-teacher'), '--keep-task', 'subtraction', '--steps', '1', '--out', out);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/the subtraction task cannot run on .*addition-student: its tokenizer has no token for some characters/);
    const unknown = cli('train', '--preset', 'nope', '--steps', '1', '--out', out);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown --preset 'nope' \(presets: self-distill, self-distill-routed, llama-student, worked\)/);
  });
});
