/**
 * Sampling from the frozen graph of a model whose model_type the lab does not know: the KV cache's
 * layout read from the graph's past_key_values inputs, the context and EOS from the folder
 * (workers/models/graph-config.ts). The model is test/fixtures/onnx-layouts/dtypes' float32 graph
 * (the lab's llama-tied export) in a temporary folder whose config.json names an unknown
 * model_type: its greedy tokens and log-probs through the Inspect path (sampleText) must be those
 * of the same graph loaded as the llama it is, and it must serve as sft's teacher.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { dirSource } from '../../workers/node/fs-source';
import { readModelFolder } from '../../workers/models/folder';
import { loadModel, releaseModel, sampleText, type LoadedModel } from '../../workers/engine/inference';
import { DistillRun } from '../../workers/distill/run';
import { promptSetTask } from '../../workers/prompts/set';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const KNOWN = join(FIXTURES, 'onnx-layouts/dtypes');

/** The fixture's fp32 graph and folder files in a temporary folder, config.json changed by `change`. */
function mysteryFolder(change: (config: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'graph-decoder-'));
  mkdirSync(join(dir, 'onnx'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'onnx/model.onnx']) copyFileSync(join(KNOWN, f), join(dir, f));
  const config = JSON.parse(readFileSync(join(KNOWN, 'config.json'), 'utf8'));
  config.model_type = 'mystery-lm';
  config.architectures = ['MysteryForCausalLM'];
  change(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

describe('sampling a graph of a model_type the lab does not know', () => {
  const dirs: string[] = [];
  const models: LoadedModel[] = [];
  afterAll(async () => {
    for (const m of models) await releaseModel(m);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reads the KV layout from the graph: the same greedy tokens and log-probs as the graph loaded as its family', async () => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    const dir = mysteryFolder(() => {});
    dirs.push(dir);
    const known = await loadModel(await dirSource(KNOWN), 'student');
    const mystery = await loadModel(await dirSource(dir), 'student');
    models.push(known, mystery);
    expect(known.folder.family?.name).toBe('Llama');
    expect(mystery.folder.family).toBeNull();
    expect(mystery.summary.modelType).toBe('mystery-lm');
    const params = { prompt: 'Hello world', n: 1, maxTokens: 6, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0 };
    const a = await sampleText(device, known, params);
    const b = await sampleText(device, mystery, params);
    // Layers, KV heads and head_dim from the graph's past_key_values inputs, as the llama config gives them.
    expect(mystery.sampling!.shape).toEqual(known.sampling!.shape);
    expect(mystery.sampling!.shape).toEqual({ layers: 2, kvHeads: 2, headDim: 16 });
    expect(mystery.sampling!.graphVocabSize).toBe(512);
    console.log(`greedy tokens: ${b.completions[0].tokens.join(' ')} (finish ${b.completions[0].finish})`);
    expect(b.promptIds).toEqual(a.promptIds);
    for (let i = 0; i < params.n; i++) {
      expect(b.completions[i].tokens).toEqual(a.completions[i].tokens);
      expect(b.completions[i].finish).toBe(a.completions[i].finish);
      // The same graph on the same adapter: the same numbers.
      b.completions[i].logprobs.forEach((lp, t) => expect(Math.abs(lp - a.completions[i].logprobs[t])).toBeLessThan(1e-6));
    }
  });

  it('says what is missing: a config.json with no context length', async () => {
    const device = await testDevice();
    const dir = mysteryFolder((c) => delete c.max_position_embeddings);
    dirs.push(dir);
    const model = await loadModel(await dirSource(dir), 'student');
    models.push(model);
    await expect(sampleText(device, model, { prompt: 'Hi', n: 1, maxTokens: 2, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0 })).rejects.toThrow(
      /\(a 'mystery-lm' model the lab knows only from its graph\) has no context length in config\.json \(max_position_embeddings, n_positions, n_ctx\): sampling needs to know how many tokens the model takes; add max_position_embeddings to config\.json\.$/,
    );
    expect(model.sampling).toBeUndefined(); // refused before any session was opened
  });

  it('samples as sft’s teacher (the runner the first test checks, wired into a run)', async () => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    const dir = mysteryFolder(() => {});
    dirs.push(dir);
    const task = promptSetTask({ label: 'prompts', train: ['Hello there'], heldOut: ['Good night'], rendered: false });
    const student = await readModelFolder(await dirSource(join(FIXTURES, 'hf/gpt2-small')), { requireWeights: true });
    const teacher = await readModelFolder(await dirSource(dir));
    expect(teacher.family).toBeNull();
    const run = await DistillRun.create(device, { student, teacher, task, options: { objective: 'sft', batchPrompts: 1, groupSize: 2, maxTokens: 4, lr: 1e-3, seed: 2 } });
    try {
      const m = await run.trainStep();
      console.log(`sft step with the mystery-lm teacher: loss ${m.loss.toFixed(4)}, ${m.tokensSampled} tokens sampled by the teacher`);
      expect(m.applied).toBe(true);
      expect(m.tokensSampled).toBeGreaterThan(0);
      expect(Number.isFinite(m.loss) && Number.isFinite(m.reverseKL)).toBe(true);
    } finally {
      await run.release();
    }
  });
});
