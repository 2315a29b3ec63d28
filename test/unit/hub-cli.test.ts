/**
 * opd-lab by Hugging Face id: `opd-lab score` with HF_ENDPOINT on the local Hub (test/hub/),
 * then again with the Hub stopped, from the cache (OPD_LAB_CACHE), with identical numbers; an
 * unknown id is exit code 1 and one sentence naming it. `opd-lab cache` lists and deletes.
 *
 * Issue 13's acceptance in the CLI: two chat models by id (qwen3 and llama-teacher, whose chat
 * templates differ), a chat prompt scored (`score --chat`), then an OPD run on 20 prompts
 * (test/fixtures/prompts-chat.txt, each line a user message that each model reads through its
 * own template, 15 training / 5 held out) whose held-out reverse KL falls; then both again with
 * the Hub stopped, from the cache, with identical numbers. The run, opd-full at lr 1e-2, 4 steps
 * of 4 prompts × 2 answers, 16 tokens, measured on lavapipe over seeds 0–3: held-out reverse KL
 * 3.1194 → 2.0768, 2.0929, 2.1416, 2.1266 (a fall of 31.3–33.4%); the test asks for 15%.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES_DIR, startHub, type HubServer } from '../hub/server';
import { cliDriverEnv, withoutDawnWarnings } from './cli-driver';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');
/** A fresh process compiles onnxruntime-web's WebGPU shaders on its first run (10–45 s on SwiftShader). */
const CLI_TIMEOUT = 240_000;

/** The CLI in a child process, asynchronously: the Hub answers from this process meanwhile. */
function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...cliDriverEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT - 5_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let hub: HubServer;
let cache: string;
beforeAll(async () => {
  hub = await startHub();
  cache = mkdtempSync(join(tmpdir(), 'opd-hub-cli-'));
});
afterAll(async () => {
  await hub.close();
  rmSync(cache, { recursive: true, force: true });
});

describe('opd-lab by Hugging Face id', () => {
  it('score downloads both models with progress, then scores them again from the cache with the Hub stopped', { timeout: 2 * CLI_TIMEOUT }, async () => {
    const args = ['score', '--student', 'opd-lab-test/gpt2-small', '--teacher', 'opd-lab-test/llama-teacher', '--prompt', '347+', '--completion', '589=', '--top-k', '2', '--json'];
    const env = { HF_ENDPOINT: hub.url, OPD_LAB_CACHE: cache, HF_TOKEN: '' };
    const online = await cli(env, ...args);
    expect(online.code, online.stderr).toBe(0);
    // A line per file on stderr (not a terminal here), bytes done out of the total.
    expect(online.stderr).toMatch(/^opd-lab: opd-lab-test\/llama-teacher model\.safetensors 1\.\d MB \/ 1\.\d MB \(folder [\d.]+ MB \/ [\d.]+ MB so far\)$/m);
    expect(online.stderr).toMatch(/^opd-lab: opd-lab-test\/gpt2-small config\.json \d+ B \/ \d+ B \(folder \d+ B \/ \d+ B so far\)$/m);
    const asked = hub.requests.length;
    expect(hub.requests.some((r) => r.path === '/cdn/opd-lab-test/gpt2-small/main/model.safetensors' && r.status === 200)).toBe(true);
    await hub.close();

    const offline = await cli(env, ...args);
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stderr).toMatch(/^opd-lab: opd-lab-test\/llama-teacher model\.safetensors 1\.\d MB \/ 1\.\d MB from the cache/m);
    expect(hub.requests.length).toBe(asked);
    // One line per file, a file read twice (the tokenizer) reported once.
    expect(offline.stderr.match(/^opd-lab: opd-lab-test\/gpt2-small tokenizer\.json /gm)).toHaveLength(1);
    const a = JSON.parse(online.stdout);
    expect(a.tokens).toHaveLength(4);
    expect(Number.isFinite(a.meanReverseKL)).toBe(true);
    expect(offline.stdout).toBe(online.stdout);

    // The cache's models with their sizes; deleting one.
    const list = await cli(env, 'cache', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(listed.cache).toBe(cache);
    expect(listed.models.map((m: { repo: string; revision: string }) => `${m.repo}@${m.revision}`)).toEqual(['opd-lab-test/gpt2-small@main', 'opd-lab-test/llama-teacher@main']);
    const weights = statSync(join(FIXTURES_DIR, 'llama-teacher', 'model.safetensors')).size;
    expect(listed.models[1].files).toContainEqual({ file: 'model.safetensors', size: weights, etag: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const gone = await cli(env, 'cache', '--delete', 'opd-lab-test/gpt2-small');
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stdout).toMatch(/^deleted opd-lab-test\/gpt2-small@main \(0\.6 MB\) from /);
    expect(JSON.parse((await cli(env, 'cache', '--json')).stdout).models.map((m: { repo: string }) => m.repo)).toEqual(['opd-lab-test/llama-teacher']);
  });

  it('an unknown id is exit code 1 and one sentence naming it', { timeout: CLI_TIMEOUT }, async () => {
    const server = await startHub();
    try {
      const r = await cli({ HF_ENDPOINT: server.url, OPD_LAB_CACHE: cache }, 'sample', '--model', 'opd-lab-test/no-such-model', '--prompt', 'x');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(withoutDawnWarnings(r.stderr)).toBe(`opd-lab: There is no model opd-lab-test/no-such-model on ${server.url} (HTTP 404): check the id (ORG/NAME), or give an access token (HF_TOKEN) if it is a private model.\n`);
    } finally {
      await server.close();
    }
  });

  it('scores a chat prompt and runs OPD on 20 prompts by id, then again from the cache with the Hub stopped: identical numbers', { timeout: 4 * CLI_TIMEOUT }, async () => {
    const server = await startHub();
    const dir = mkdtempSync(join(tmpdir(), 'opd-hub-accept-'));
    const env = { HF_ENDPOINT: server.url, OPD_LAB_CACHE: join(dir, 'cache'), HF_TOKEN: '' };
    const ids = ['--student', 'opd-lab-test/qwen3', '--teacher', 'opd-lab-test/llama-teacher'];
    const score = ['score', ...ids, '--chat', '--prompt', 'What is 12+34?', '--completion', ' It is 46.', '--top-k', '2', '--json'];
    const PROMPTS = join(import.meta.dirname, '..', 'fixtures', 'prompts-chat.txt');
    const train = (out: string) => [
      'train', ...ids, '--prompts', PROMPTS, '--chat-lines', '--held-out', '0.25', '--objective', 'opd-full', '--lr', '1e-2',
      '--steps', '4', '--batch', '4', '--group', '2', '--max-tokens', '16', '--eval-every', '0', '--out', join(dir, out), '--json',
    ];
    /** The run as numbers: every metrics.jsonl line but its wall time and file path, and the summary without its paths. */
    const numbers = (out: string, stdout: string) => ({
      metrics: readFileSync(join(dir, out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map(({ wallMs, file, ...m }) => m),
      summary: (({ out: _o, student: _s, ...rest }) => rest)(JSON.parse(stdout)),
    });
    try {
      const scored = await cli(env, ...score);
      expect(scored.code, scored.stderr).toBe(0);
      const chat = JSON.parse(scored.stdout);
      expect(chat.chat.same).toBe(false);
      expect(chat.chat.studentPrompt).toMatch(/^<\|endoftext\|><\|start_header_id\|>user<\|end_header_id\|>\n\nWhat is 12\+34\?/);
      expect(chat.chat.teacherPrompt).toMatch(/^<\|im_start\|>system\n/);
      expect(chat.chat.cost.teacherShiftKL).toBeGreaterThan(0);
      expect(chat.tokens.length).toBeGreaterThan(0);
      for (const t of chat.tokens) expect(Number.isFinite(t.reverseKL)).toBe(true);

      const online = await cli(env, ...train('online'));
      expect(online.code, online.stderr).toBe(0);
      expect(online.stderr).toMatch(/^prompts-chat\.txt: 15 training \/ 5 held-out prompts\. The teacher opd-lab-test\/llama-teacher reads each chat prompt rendered with its own chat template, the student with its own: 20 of 20 prompts read differently/m);
      const run = numbers('online', online.stdout);
      const evals = run.metrics.filter((m) => m.type === 'eval');
      expect(evals.map((e) => e.step)).toEqual([0, 4]);
      expect(evals[0].prompts).toBe(5);
      expect(evals[0].accuracy).toBeUndefined();
      expect(evals[1].reverseKL).toBeLessThan(0.85 * evals[0].reverseKL);

      await server.close();
      server.requests.length = 0;
      const scoredAgain = await cli(env, ...score);
      expect(scoredAgain.code, scoredAgain.stderr).toBe(0);
      expect(scoredAgain.stdout).toBe(scored.stdout);
      const offline = await cli(env, ...train('offline'));
      expect(offline.code, offline.stderr).toBe(0);
      expect(offline.stderr).toMatch(/^opd-lab: opd-lab-test\/qwen3 model\.safetensors [\d.]+ kB \/ [\d.]+ kB from the cache/m);
      expect(numbers('offline', offline.stdout)).toEqual(run);
      expect(server.requests).toEqual([]);
    } finally {
      await server.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
