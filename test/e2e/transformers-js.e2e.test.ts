/**
 * Folders exported by the lab load in transformers.js, in Debian's Chromium on SwiftShader's
 * WebGPU (scripts/bench/compare-browser.ts: one page runs transformers.js — AutoModelForCausalLM,
 * its own onnxruntime-web, greedy `generate` — another the lab's sampler on the same folder):
 *
 *   - GPT-2: the served student folder, exported again by the lab's writer: the reference
 *     model's logits, and greedy tokens equal to the lab's sampler and the float64 reference;
 *   - the Llama family (issue 12: "Its export loads in transformers.js in Chromium, with greedy
 *     tokens equal to ours"): the lab's export of a trained student (workers/distill/run.ts
 *     trainedStudentFolder: config, generation config, tokenizer, model.safetensors,
 *     onnx/model.onnx with the weights as initializers) from the weights of test/fixtures/hf,
 *     two folders between them covering what transformers.js reads differently per folder:
 *       · qwen3 untrained (model_type qwen3; q/k norm; head_dim 32 ≠ hidden/heads, which sizes
 *         transformers.js's KV cache; untied head) gives PyTorch's last-position logits and
 *         greedy tokens (reference.json, which the lab's own sampler gives too:
 *         test/unit/llama-decoder.test.ts);
 *       · llama-tied after two LoRA steps on the GPU (model_type llama; tied head; the merged
 *         weights W + s·A·B) gives the last-position logits of the float64 reference
 *         (test/reference/llama.ts, held to PyTorch by llama-reference.test.ts) of its merged
 *         weights, and the greedy tokens of that reference, which are the lab's own: the
 *         trainer's forward (its graph, base + LoRA) over the decoded tokens puts its argmax on
 *         each next one; and not the untrained model's tokens.
 *     (The untrained llama-tied and qwen2 (q/k/v biases) folders were also loaded here, a page
 *     each, 68-71 s apiece with the 2 cores at load 13: their graphs are the same builder's,
 *     held to PyTorch in Node by test/unit/llama-decoder.test.ts and llama-export.test.ts, and
 *     llama-tied's model_type and tied head reach transformers.js in the LoRA-trained folder.
 *     llama-teacher's llama3 rope scaling lives in the lab's cos/sin tables, the same graph: the
 *     unit tests cover it.)
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openComparePages, type ComparePage, type ComparePages } from '../../scripts/bench/compare-browser';
import { readModelFolder, writeModelFolder, type ModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { writeFolder } from '../../workers/node/fs-folder';
import { trainedStudentFolder } from '../../workers/distill/run';
import { Trainer } from '../../workers/train/trainer';
import { Gpt2Reference } from '../reference/gpt2';
import { llamaLogits } from '../reference/llama';
import type { LlamaConfig } from '../../workers/models/llama/config';
import { trainingSequences } from '../unit/hf-fixtures';
import { testDevice } from '../unit/gpu';

/**
 * float32 forward of a 2-layer, 16-wide model against the float64 reference: errors of a few
 * 1e-6 are float32 rounding through LayerNorm and softmax; 1e-4 leaves room for other kernels.
 */
const LOGIT_TOLERANCE = 1e-4;

/**
 * Llama-family last-position logits against float64 (PyTorch's; the float64 reference's for the
 * LoRA-trained weights): issue 12's bound, 2e-4. The exported
 * graph gathers rotary cos/sin from float64 tables (no in-graph Sin/Cos, which onnxruntime-web's
 * WebGPU computes to ~1e-4 only), so float32 through 2-3 layers gives ~1e-5.
 */
const LLAMA_LOGIT_TOLERANCE = 2e-4;

const HF = join(import.meta.dirname, '../fixtures/hf');
const LLAMA_FOLDERS = ['qwen3'] as const;
const PROMPTS = ['347+589=', 'The cat sat on', 'chat'] as const;
const NEW_TOKENS = 10;

interface PromptReference {
  ids: number[];
  last_logits_f64: number[];
  greedy_ids: number[];
}
const reference = JSON.parse(readFileSync(join(HF, 'reference.json'), 'utf8')).models as Record<string, { prompts: Record<string, PromptReference> }>;

let pages: ComparePages;
const temporary: string[] = [];
beforeAll(async () => {
  pages = await openComparePages();
});
afterAll(async () => {
  await pages?.close();
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** Writes `files` to a fresh temporary folder and serves it as <url>name/. */
async function serve(name: string, files: Map<string, Uint8Array>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `opd-export-${name}-`));
  temporary.push(dir);
  await writeFolder(dir, files);
  return pages.serveFolder(name, dir);
}

async function closePage(page: ComparePage | undefined): Promise<void> {
  await page?.page.context().close();
}

/**
 * One transformers.js page for every folder of this file, each folder loaded into it in turn
 * (the page's load() runs from_pretrained afresh and replaces the model): a new page costs a
 * browser context and transformers.js's and its onnxruntime-web's start again. A folder that
 * failed to load would leave the previous model, whose vocabulary and logits the tests would see.
 */
let tjsPage: ComparePage | undefined;
async function transformersJs(folderUrl: string): Promise<ComparePage> {
  if (!tjsPage) return (tjsPage = await pages.open('tjs', folderUrl));
  await tjsPage.page.evaluate((url) => window.opdCompare!.load(url), folderUrl);
  return tjsPage;
}

describe('a folder exported by the lab loads in transformers.js', () => {
  let exportedUrl: string;
  let gpt2: Gpt2Reference;
  beforeAll(async () => {
    // Import the served student folder, export it again with the lab's writer, serve the export.
    const imported = await readModelFolder(await dirSource(inject('studentDir')));
    if (!imported.gpt2 || !imported.weights) throw new Error('the test student should be a trainable GPT-2 folder');
    exportedUrl = await serve('exported', writeModelFolder(imported.gpt2, imported.weights, imported.tokenizerFiles));
    gpt2 = new Gpt2Reference(imported.gpt2, imported.weights);
  });

  it("gives the reference model's logits, and greedy generate agrees token for token with the lab's sampler", async () => {
    const tjs = await transformersJs(exportedUrl);
    expect(tjs.adapter).toMatch(/swiftshader/i);
    const ids = [13, 16, 11, 2, 3, 12, 4, 14];
    const { vocab, logits } = await tjs.forward(ids);
    const expected = gpt2.forward(ids);
    expect(vocab).toBe(expected[0].length);
    expect(logits.length).toBe(ids.length * vocab);
    let worst = 0;
    for (let t = 0; t < ids.length; t++) for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(logits[t * vocab + v] - expected[t][v]));
    expect(worst).toBeLessThan(LOGIT_TOLERANCE);

    const theirs = await tjs.generate(ids, 2, 12);
    const oursPage = await pages.open('ours', exportedUrl);
    const ours = await oursPage.generate(ids, 2, 12);
    expect(theirs.tokens).toBe(24);
    expect(theirs.sequences).toEqual(ours.sequences);
    // Greedy decoding by the float64 reference gives the same tokens.
    const greedy: number[] = [];
    const { cache, logits: prefill } = gpt2.prefill(ids);
    let next = argmax(prefill[prefill.length - 1]);
    for (let i = 0; i < 12; i++) {
      greedy.push(next);
      if (i < 11) next = argmax(gpt2.step(cache, next));
    }
    expect(theirs.sequences[0]).toEqual(greedy);
    expect(tjs.errors).toEqual([]);
    expect(oursPage.errors).toEqual([]);
    await closePage(oursPage);
  });
});

describe('a Llama-family student exported by the lab loads in transformers.js', () => {
  const urls = new Map<string, string>();
  const measured: Record<string, number> = {};
  /** llama-tied after two LoRA steps: its merged weights' config and float64 parameters (the reference's input). */
  let trained: { config: LlamaConfig; params: Map<string, Float64Array> };
  /** The trained student's greedy tokens per prompt, by the float64 reference of its merged weights. */
  const trainedGreedy = new Map<string, number[]>();
  const readFixture = async (name: string): Promise<ModelFolder> => readModelFolder(await dirSource(join(HF, name)), { requireWeights: true });
  beforeAll(async () => {
    for (const name of LLAMA_FOLDERS) {
      const folder = await readFixture(name);
      urls.set(name, await serve(name, trainedStudentFolder(folder, folder.weights!)));
    }
    // llama-tied after two LoRA steps (rank 4, alpha 8) on reference.json's batch: its merged weights.
    const folder = await readFixture('llama-tied');
    const trainer = await Trainer.create(await testDevice(), folder.config!, folder.weights!, {
      lora: { rank: 4, alpha: 8 },
      schedule: { lr: 2e-2, warmupSteps: 0, totalSteps: 2, schedule: 'constant' },
    });
    try {
      for (let s = 0; s < 2; s++) {
        await trainer.accumulate(trainingSequences(), { kind: 'ce' });
        await trainer.applyStep();
      }
      const weights = await trainer.readWeights();
      urls.set('llama-tied-lora', await serve('llama-tied-lora', trainedStudentFolder(folder, weights)));
      trained = { config: folder.config as LlamaConfig, params: new Map([...weights].map(([n, w]) => [n, Float64Array.from(w)])) };
      const V = trained.config.vocabSize;
      for (const prompt of PROMPTS) {
        // Greedy decoding by the float64 reference of the merged weights (full recompute)…
        const tokens = [...reference['llama-tied'].prompts[prompt].ids];
        const start = tokens.length;
        while (tokens.length < start + NEW_TOKENS) tokens.push(argmax(llamaLogits(trained.config, trained.params, { tokens }).at(-1)!));
        trainedGreedy.set(prompt, tokens.slice(start));
        // …is the lab's own: the trainer's forward (its graph, base + LoRA) over the decoded
        // sequence puts its argmax on each next token (causal: position t sees only the prefix).
        const { logits } = await trainer.logits([{ tokens, weights: tokens.map(() => 0) }]);
        for (let t = start - 1; t < tokens.length - 1; t++) expect(argmax(logits.subarray(t * V, (t + 1) * V)), `${prompt}, position ${t}`).toBe(tokens[t + 1]);
      }
    } finally {
      trainer.destroy();
    }
  });
  afterAll(() => {
    console.log('Llama-family exports in transformers.js, max |last-position logit − float64| (PyTorch; the float64 reference for the LoRA-trained one):', measured);
  });

  it.each(LLAMA_FOLDERS)("%s: transformers.js gives PyTorch's logits and greedy tokens", async (name) => {
    const tjs = await transformersJs(urls.get(name)!);
    expect(tjs.adapter).toMatch(/swiftshader/i);
    let worst = 0;
    for (const prompt of PROMPTS) {
      const ref = reference[name].prompts[prompt];
      const { vocab, logits } = await tjs.forward(ref.ids);
      expect(vocab).toBe(ref.last_logits_f64.length);
      const last = logits.slice((ref.ids.length - 1) * vocab);
      for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(last[v] - ref.last_logits_f64[v]));
      const theirs = await tjs.generate(ref.ids, 1, NEW_TOKENS);
      expect(theirs.sequences[0], `${name}, ${prompt}`).toEqual(ref.greedy_ids);
    }
    measured[name] = worst;
    expect(worst).toBeLessThan(LLAMA_LOGIT_TOLERANCE);
    expect(tjs.errors).toEqual([]);
  });

  it("llama-tied after two LoRA steps (merged weights): transformers.js gives the trained weights' logits and the lab's greedy tokens, not the untrained model's", async () => {
    const tjs = await transformersJs(urls.get('llama-tied-lora')!);
    expect(tjs.adapter).toMatch(/swiftshader/i);
    let changed = 0;
    let worst = 0;
    for (const prompt of PROMPTS) {
      const { ids, greedy_ids: untrained } = reference['llama-tied'].prompts[prompt];
      const { vocab, logits } = await tjs.forward(ids);
      const expected = llamaLogits(trained.config, trained.params, { tokens: ids }).at(-1)!;
      expect(vocab).toBe(expected.length);
      const last = logits.slice((ids.length - 1) * vocab);
      for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(last[v] - expected[v]));
      const theirs = await tjs.generate(ids, 1, NEW_TOKENS);
      expect(theirs.sequences[0], prompt).toEqual(trainedGreedy.get(prompt));
      if (theirs.sequences[0].some((t, i) => t !== untrained[i])) changed++;
    }
    measured['llama-tied-lora'] = worst;
    expect(worst).toBeLessThan(LLAMA_LOGIT_TOLERANCE);
    expect(changed).toBeGreaterThan(0); // the export carries the training, not the base weights
    expect(tjs.errors).toEqual([]);
  });
});

function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}
