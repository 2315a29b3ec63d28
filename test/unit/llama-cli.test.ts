/**
 * The opd-lab CLI on Llama-family folders written by transformers (test/fixtures/hf, no
 * onnx/model.onnx: the lab builds the decoder from model.safetensors), against PyTorch's numbers
 * in reference.json:
 *   - `opd-lab sample` on llama-tied, greedy: PyTorch's 10 greedy tokens, and the sampler's
 *     log-prob of each equal to PyTorch's (the llama-tied × llama-teacher pair has them);
 *   - `opd-lab score` with a GPT-2 student and the Llama teacher (mixed families, one tokenizer):
 *     both models' log-probs of "589=" after "347+" equal PyTorch's next-token log-probs.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliDriverEnv, withoutDawnWarnings } from './cli-driver';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hf');
const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8'));

/** A fresh process compiles onnxruntime-web's WebGPU shaders on its first run (10–45 s on SwiftShader). */
const CLI_TIMEOUT = 240_000;
/** As llama-decoder.test.ts: log-probs within 2e-4 of PyTorch float64 (measured there: ≤ 8e-6). */
const TOLERANCE = 2e-4;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: CLI_TIMEOUT, env: cliDriverEnv() });
  return { code: r.status, stdout: r.stdout, stderr: withoutDawnWarnings(r.stderr ?? '') };
}

describe('opd-lab on Llama-family folders', () => {
  it('sample: llama-tied gives PyTorch’s greedy tokens and log-probs', { timeout: CLI_TIMEOUT }, () => {
    const prompt = '347+589=';
    const expected = reference.models['llama-tied'].prompts[prompt];
    const r = cli('sample', '--model', join(FIXTURES, 'llama-tied'), '--prompt', prompt, '--n', '2', '--max-tokens', '10', '--temperature', '0', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.promptIds).toEqual(expected.ids);
    expect(out.completions).toHaveLength(2);
    const pair = reference.pairs.find((p: { student: string }) => p.student === 'llama-tied');
    for (const c of out.completions) {
      expect(c.tokens).toEqual(expected.greedy_ids);
      expect(c.finish).toBe('length');
      pair.per_token.forEach((t: { token: number; student_logprob_f64: number }, k: number) => {
        expect(c.tokens[k]).toBe(t.token);
        expect(Math.abs(c.logprobs[k] - t.student_logprob_f64)).toBeLessThanOrEqual(TOLERANCE);
      });
    }
  });

  it('score: a GPT-2 student against the Llama teacher gives PyTorch’s log-probs', { timeout: CLI_TIMEOUT }, () => {
    const r = cli('score', '--student', join(FIXTURES, 'gpt2-small'), '--teacher', join(FIXTURES, 'llama-teacher'), '--prompt', '347+', '--completion', '589=', '--top-k', '3', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const ids = reference.models['gpt2-small'].prompts['347+589='].ids as number[];
    expect(out.promptIds).toEqual(ids.slice(0, 4));
    expect(out.tokens.map((t: { id: number }) => t.id)).toEqual(ids.slice(4));
    // next_token_logprobs[t] = log p(ids[t+1] | ids[..t]): completion token k is ids[4 + k], t = 3 + k.
    const student = reference.models['gpt2-small'].prompts['347+589='].next_token_logprobs_f64 as number[];
    const teacher = reference.models['llama-teacher'].prompts['347+589='].next_token_logprobs_f64 as number[];
    out.tokens.forEach((t: { studentLogprob: number; teacherLogprob: number; sampledKL: number; reverseKL: number; forwardKL: number; teacherTop: unknown[] }, k: number) => {
      expect(Math.abs(t.studentLogprob - student[3 + k])).toBeLessThanOrEqual(TOLERANCE);
      expect(Math.abs(t.teacherLogprob - teacher[3 + k])).toBeLessThanOrEqual(TOLERANCE);
      expect(Math.abs(t.sampledKL - (student[3 + k] - teacher[3 + k]))).toBeLessThanOrEqual(2 * TOLERANCE);
      expect(t.reverseKL).toBeGreaterThan(0);
      expect(t.forwardKL).toBeGreaterThan(0);
      expect(t.teacherTop).toHaveLength(3);
    });
  });
});
