/**
 * LoRA's frozen base where the adapter has no shader-f16 (SwiftShader, the unit tests' adapter):
 * the f32 base is taken, and the run is exactly what it was before f16 bases existed. The f16
 * path itself is tested on lavapipe (lora-f16.f16.test.ts, the suite's f16 pass).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { alignTo, createStorageBuffer } from '../../workers/gpu/buffers';
import { encodeLoraMerge } from '../../workers/kernels/train/optimizer';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { gpt2ParamSpecs } from '../../workers/models/gpt2/params';
import { numel } from '../../workers/models/family';
import { readModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { Trainer, type TrainerOptions } from '../../workers/train/trainer';
import type { TrainSequence } from '../../workers/train/batch';
import { referenceLoraMerge } from '../reference/optimizer';

const SHIPPED = join(import.meta.dirname, '..', '..', 'models');
const U = 2 ** -24;

describe('LoRA without shader-f16: the f32 base', () => {
  it('keeps every base weight in f32, bit for bit, and W_eff = W + s·A·B after a step matches float64 (built-in student)', async () => {
    const device = await testDevice();
    const folder = await readModelFolder(await dirSource(join(SHIPPED, 'addition-student')), { requireWeights: true });
    const config = folder.config as Gpt2Config;
    const params = folder.weights!;
    const text = 'Q: 305+48= A: 353';
    const tokens = folder.tokenizer.encode(text);
    const sequences: TrainSequence[] = [{ tokens, weights: tokens.map((_, i) => (i >= 9 && i + 1 < tokens.length ? 1 / 5 : 0)) }];
    // On an adapter with shader-f16 the default stores an f16 base; f16Base: false is the fallback
    // this test checks there. On SwiftShader (no shader-f16) the default is the fallback itself.
    const hasF16 = device.features.has('shader-f16');
    const rank = 4;
    const alpha = 8;
    const options: TrainerOptions = { schedule: { lr: 1e-2 }, lora: { rank, alpha, ...(hasF16 ? { f16Base: false } : {}) }, seed: 7 };
    const trainer = await Trainer.create(device, config, params, options);
    try {
      expect(trainer.f16Base).toBe(false);
      expect(trainer.options.lora?.f16Base).toBe(false); // recorded in checkpoints
      for (const b of trainer.baseStorage()) {
        const spec = gpt2ParamSpecs(config).find((s) => s.name === b.name)!;
        expect(b).toEqual({ name: b.name, dtype: 'f32', bytes: alignTo(numel(spec.shape) * 4, 16) });
      }
      const started = performance.now();
      for (let i = 0; i < 2; i++) expect((await trainer.trainStep([sequences], { kind: 'ce' })).applied).toBe(true);
      console.log(`two LoRA steps of the built-in student: ${(performance.now() - started).toFixed(0)} ms`);
      const { base, trainable } = await trainer.readState();
      const weights = await trainer.readWeights();
      let worst = 0;
      for (const spec of gpt2ParamSpecs(config)) {
        // The base is the parameters exactly as given: nothing was rounded.
        expect(Buffer.from(base.get(spec.name)!.buffer).equals(Buffer.from(params.get(spec.name)!.buffer)), spec.name).toBe(true);
        if (!spec.loraTarget) continue;
        const [inDim, outDim] = spec.shape;
        const a = trainable.get(`${spec.name}.lora_A`)!.param;
        const b = trainable.get(`${spec.name}.lora_B`)!.param;
        const w = params.get(spec.name)!;
        const ref = referenceLoraMerge(w, a, b, inDim, outDim, rank, alpha / rank);
        const mag = referenceLoraMerge(w.map(Math.abs), a.map(Math.abs), b.map(Math.abs), inDim, outDim, rank, alpha / rank);
        const got = weights.get(spec.name)!;
        // The f32 merge's bound (train-optimizer.test.ts): (r + 2)·u·(|W| + s·Σ|A·B|).
        for (let j = 0; j < got.length; j++) worst = Math.max(worst, Math.abs(got[j] - ref[j]) / ((rank + 2) * U * mag[j] + 1e-45));
      }
      console.log(`f32 base: W_eff after two steps, worst error/tolerance ${worst.toFixed(3)}`);
      expect(worst).toBeLessThanOrEqual(1);
    } finally {
      trainer.destroy();
    }
  });

  it('the merge refuses an f16 base on a device without shader-f16, with a sentence', async () => {
    const device = await testDevice();
    if (device.features.has('shader-f16')) return expect(device.features.has('shader-f16')).toBe(true); // checked in the f16 pass instead
    const buf = (bytes: number, label: string) => createStorageBuffer(device, bytes, label);
    const [w, a, b, merged] = [buf(16, 'W'), buf(16, 'A'), buf(16, 'B'), buf(16, 'W_eff')];
    const encoder = device.createCommandEncoder();
    expect(() => encodeLoraMerge(device, encoder, { inDim: 2, outDim: 2, rank: 1, scale: 1, weight: w, weightDtype: 'f16', a, b, merged })).toThrow(
      'LoRA merge: an f16 base needs a device created with the shader-f16 feature, and this one has none',
    );
    [w, a, b, merged].forEach((x) => x.destroy());
  });
});
