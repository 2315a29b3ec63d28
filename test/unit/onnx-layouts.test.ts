/**
 * onnx-community / transformers.js layouts (test/fixtures/onnx-layouts/, made by its make.py from
 * the lab's own llama-tied export): the dtype variants, external data in two files and a merged
 * decoder with use_cache_branch. Each variant either runs — its last-position logits against
 * onnxruntime's (CPU, Python) in reference.json, and its greedy tokens from the lab's sampler with
 * the graph's own KV cache against onnxruntime's — or is refused with a sentence naming the file.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { dirSource } from '../../workers/node/fs-source';
import { chooseOnnxDtype, readModelFolder, type OnnxDtype, type ReadFolderOptions } from '../../workers/models/folder';
import type { DecoderSession } from '../../workers/models/decoder-session';
import { decoderRunner, openSamplingSession } from '../../workers/sampling/runner';
import { sampleCompletions } from '../../workers/sampling/sampler';
import { forwardLogits, openScoringSession } from '../../workers/scoring/forward';

const DIR = join(import.meta.dirname, '../fixtures/onnx-layouts');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as {
  prompt: number[];
  newTokens: number;
  variants: Record<string, { lastLogits: number[]; greedy: number[] }>;
};

const read = async (folder: string, options: ReadFolderOptions = {}) => readModelFolder(await dirSource(join(DIR, folder)), options);

describe('choosing the ONNX variant', () => {
  it('defaults to fp32, else the smallest the adapter runs; refuses what is missing or needs shader-f16', async () => {
    const all: OnnxDtype[] = ['fp32', 'fp16', 'q4', 'q4f16', 'quantized'];
    expect(chooseOnnxDtype('m', all, {})).toBe('fp32');
    expect(chooseOnnxDtype('m', ['fp16', 'q4f16', 'q4', 'quantized'], { shaderF16: true })).toBe('q4f16');
    expect(chooseOnnxDtype('m', ['fp16', 'q4f16', 'q4', 'quantized'], { shaderF16: false })).toBe('q4');
    expect(chooseOnnxDtype('m', ['fp16', 'quantized'], {})).toBe('quantized');
    expect(chooseOnnxDtype('m', ['fp16'], { shaderF16: true })).toBe('fp16');
    expect(() => chooseOnnxDtype('m', ['fp16', 'q4f16'], { shaderF16: false })).toThrow(
      'm has only float16 ONNX variants (fp16, q4f16), and this adapter has no shader-f16: use an adapter with shader-f16, or a folder with onnx/model.onnx, model_q4.onnx or model_quantized.onnx.',
    );
    expect(() => chooseOnnxDtype('m', ['fp32', 'fp16'], { dtype: 'q4' })).toThrow('m has no onnx/model_q4.onnx (dtype q4): pick one of the dtypes it has (fp32, fp16).');

    // On a real folder: the file read is the one chosen; fp16 without shader-f16 is refused before any session.
    const folder = await read('dtypes', { dtype: 'q4' });
    expect(folder.onnxLabel.endsWith('dtypes/onnx/model_q4.onnx')).toBe(true);
    expect(folder.onnxDtype).toBe('q4');
    expect(folder.weights).toBeNull();
    expect((await read('dtypes')).onnxDtype).toBe('fp32');
    await expect(read('dtypes', { dtype: 'fp16', shaderF16: false })).rejects.toThrow(
      /dtypes\/onnx\/model_fp16\.onnx computes in float16, and this adapter has no shader-f16: load it with dtype fp32 or q4 or quantized\.$/,
    );
  });

  it('reads external data beside the graph, and names a missing file', async () => {
    const folder = await read('external');
    expect(folder.onnx.byteLength).toBeLessThan(20_000);
    const tmp = mkdtempSync(join(tmpdir(), 'onnx-layouts-'));
    try {
      cpSync(join(DIR, 'external'), tmp, { recursive: true });
      rmSync(join(tmp, 'onnx', 'model.onnx_data_1'));
      await expect(readModelFolder(await dirSource(tmp))).rejects.toThrow(
        /\/onnx\/model\.onnx keeps its weights in model\.onnx_data_1, which .* does not have: put onnx\/model\.onnx_data_1 beside it \(as the export wrote it\), or pick another dtype\.$/,
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('a layout the lab does not read', () => {
  it('is refused naming the file found and what to do', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'onnx-layouts-'));
    try {
      cpSync(join(DIR, 'merged'), tmp, { recursive: true });
      renameSync(join(tmp, 'onnx', 'model.onnx'), join(tmp, 'onnx', 'decoder_model_merged.onnx'));
      await expect(readModelFolder(await dirSource(tmp))).rejects.toThrow(
        /has onnx\/decoder_model_merged\.onnx but no onnx\/model\.onnx: that is an older optimum \/ transformers\.js v2 layout, .*; use the model's onnx-community export, or save onnx\/decoder_model_merged\.onnx as onnx\/model\.onnx \(a merged decoder with use_cache_branch runs as it is\)\.$/,
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('running each variant on the adapter', () => {
  const sessions: DecoderSession[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.session.release();
  });

  // Tolerance on the last-position logits against onnxruntime's CPU (Python): 1e-4 for all (measured
  // on SwiftShader: fp32, external and merged 4.5e-6, q4 6.1e-6, int8 1.4e-6: int8's MatMulInteger
  // runs on onnxruntime-web's CPU side, MatMulNBits dequantizes exactly); greedy tokens exact.
  const cases: { key: string; folder: string; dtype?: OnnxDtype; tolerance: number }[] = [
    { key: 'dtypes/fp32', folder: 'dtypes', dtype: 'fp32', tolerance: 1e-4 },
    { key: 'external/fp32', folder: 'external', tolerance: 1e-4 },
    { key: 'merged/fp32', folder: 'merged', tolerance: 1e-4 },
    { key: 'dtypes/q4', folder: 'dtypes', dtype: 'q4', tolerance: 1e-4 },
    { key: 'dtypes/quantized', folder: 'dtypes', dtype: 'quantized', tolerance: 1e-4 },
  ];
  for (const c of cases) {
    it(`${c.key}: logits and greedy tokens as onnxruntime's`, async () => {
      configureOrt({ numThreads: 1 });
      const device = await testDevice();
      const folder = await read(c.folder, { dtype: c.dtype, shaderF16: device.features.has('shader-f16') });
      const decoder = await openSamplingSession(device, folder.config!, folder.onnx, folder.onnxLabel);
      sessions.push(decoder);
      const ref = reference.variants[c.key];
      // Scoring's one forward pass (use_cache_branch false on a merged graph).
      const forward = await forwardLogits(decoder.session, [reference.prompt], 0, device);
      const all = (await forward.logits.getData(true)) as Float32Array;
      const V = forward.vocab;
      const last = all.subarray((reference.prompt.length - 1) * V, reference.prompt.length * V);
      let worst = 0;
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(last[v] - ref.lastLogits[v]));
      console.log(`${c.key}: max |logit − onnxruntime CPU| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(c.tolerance);
      // The sampler with the graph's own KV cache (use_cache_branch true after the first step).
      const [completion] = await sampleCompletions(decoderRunner(folder.config!, decoder), {
        prompts: [reference.prompt], n: 1, maxTokens: reference.newTokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, eosTokenId: null,
      });
      expect(completion.tokens).toEqual(ref.greedy);
    });
  }

  it('refuses the float16 variants on an adapter without shader-f16, naming the file', async () => {
    const device = await testDevice();
    expect(device.features.has('shader-f16')).toBe(false); // SwiftShader; the f16 pass runs them on lavapipe
    for (const dtype of ['fp16', 'q4f16'] as const) {
      // Read without telling the reader about the adapter: the session says it.
      const folder = await read('dtypes', { dtype, shaderF16: true });
      await expect(openSamplingSession(device, folder.config!, folder.onnx, folder.onnxLabel)).rejects.toThrow(
        `${folder.onnxLabel}: computes in float16, and this adapter has no shader-f16: load the folder with dtype fp32, q4 or quantized (whichever files it has), or use an adapter with shader-f16`,
      );
      await expect(openScoringSession(device, folder.onnx, folder.onnxLabel)).rejects.toThrow(`${folder.onnxLabel} computes in float16, and this adapter has no shader-f16`);
    }
  });
});
