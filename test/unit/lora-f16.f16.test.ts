/**
 * LoRA with an f16 frozen base, on an adapter with shader-f16 (Mesa's lavapipe: this file runs in
 * the suite's f16 pass, vitest.f16.config.ts, and fails, saying what to install, without one).
 *
 * - the merge kernel reading an f16 W against a float64 reference, on awkward shapes;
 * - a LoRA step on the built-in GPT-2 student (models/addition-student) with an f16 base: it is
 *   bit for bit the f32-base step on the f16-rounded weights (the rounding is the only change),
 *   and within the rounding's reach of the f32-base step on the weights as they were;
 * - the base buffers really are f16 (their byte size), checkpoints and the exported weights.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testF16Device } from './gpu';
import { alignTo, createStorageBuffer, readFloat32, withGpuErrorScope } from '../../workers/gpu/buffers';
import { CPU_OPTIMIZER_TUNING, GPU_OPTIMIZER_TUNING, optimizerTuning, type OptimizerTuning } from '../../workers/gpu/tuning';
import { encodeLoraMerge, loraScale } from '../../workers/kernels/train/optimizer';
import { gpt2ParamSpecs, randomGpt2Params, seededRandom } from '../../workers/models/gpt2/params';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { readModelFolder } from '../../workers/models/folder';
import { numel, type ModelParams } from '../../workers/models/family';
import { dirSource } from '../../workers/node/fs-source';
import { fromHalfBits, HALF_UNIT_ROUNDOFF, roundToHalf, toHalfBits } from '../../workers/train/half';
import { Trainer, type TrainerOptions } from '../../workers/train/trainer';
import type { TrainSequence } from '../../workers/train/batch';
import { restoreCheckpoint, saveCheckpoint } from '../../workers/train/checkpoint';
import { referenceLoraMerge } from '../reference/optimizer';
import { smallGpt2Config } from './fixtures';

/** float32's unit roundoff, 2^-24. */
const U = 2 ** -24;
const SHIPPED = join(import.meta.dirname, '..', '..', 'models');

async function run(device: GPUDevice, what: string, record: (encoder: GPUCommandEncoder) => void): Promise<void> {
  await withGpuErrorScope(device, what, async () => {
    const encoder = device.createCommandEncoder();
    record(encoder);
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  });
}

function randomArray(n: number, rng: ReturnType<typeof seededRandom>, std: number): Float32Array {
  return Float32Array.from({ length: n }, () => std * rng.normal());
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** How many elements of a and b differ in their bits (NaN never appears here). */
function bitDifferences(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  const x = bits(a);
  const y = bits(b);
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}

/** ‖a − b‖₂ / ‖b‖₂ over all tensors of two maps with the same names. */
function relativeDifference(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): number {
  let num = 0;
  let den = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) {
      num += (x[i] - y[i]) ** 2;
      den += y[i] ** 2;
    }
  }
  return Math.sqrt(num / den);
}

describe('the LoRA merge with an f16 base (adapter with shader-f16)', () => {
  // Shapes (in, out, r): one element, odd sizes (an odd count of f16 values: the buffer's last
  // half-word is padding), rank 64, and more elements than one pass of the grid.
  const SHAPES: [number, number, number][] = [
    [1, 1, 1],
    [5, 7, 3],
    [33, 71, 8],
    [100, 45, 64],
    [131, 301, 16],
  ];
  const TUNINGS: [string, (device: GPUDevice) => OptimizerTuning][] = [
    ['device tuning', (d) => optimizerTuning(d)],
    ['GPU tuning', () => GPU_OPTIMIZER_TUNING],
    ['3 workgroups', () => ({ ...CPU_OPTIMIZER_TUNING, maxWorkgroups: 3 })],
  ];
  // The reference is float64 on W as stored (the f16 values, widened exactly) plus s·A·B. The
  // kernel widens W exactly, sums r products and adds: |error| ≤ (r + 2)·u·(|W| + s·Σ|A·B|), u =
  // float32's 2^-24 (the same bound as the f32 merge: the f16 storage adds no error of its own).
  for (const [name, tuningOf] of TUNINGS) {
    it(`W_eff = f32(W₁₆) + s·A·B on ${SHAPES.length} shapes matches float64 (${name})`, async () => {
      const device = await testF16Device();
      const tuning = tuningOf(device);
      const rng = seededRandom(1601);
      let worst = 0;
      for (const [inDim, outDim, rank] of SHAPES) {
        const scale = loraScale(16, rank);
        // Weights over several binades, subnormal f16 values and zeros included.
        const w = Float32Array.from({ length: inDim * outDim }, (_, i) => (i % 11 === 0 ? 0 : rng.normal() * 10 ** (-(i % 7))));
        const half = toHalfBits(w, 'W');
        const wStored = fromHalfBits(half);
        const a = randomArray(inDim * rank, rng, 0.3);
        const b = randomArray(rank * outDim, rng, 0.3);
        const W = createStorageBuffer(device, half, 'W (f16)');
        expect(W.size).toBe(alignTo(inDim * outDim * 2, 16));
        const A = createStorageBuffer(device, a, 'A');
        const B = createStorageBuffer(device, b, 'B');
        const merged = createStorageBuffer(device, inDim * outDim * 4, 'W_eff');
        await run(device, 'lora merge f16', (enc) => encodeLoraMerge(device, enc, { inDim, outDim, rank, scale, weight: W, weightDtype: 'f16', a: A, b: B, merged }, tuning));
        const got = await readFloat32(device, merged, inDim * outDim);
        const ref = referenceLoraMerge(wStored, a, b, inDim, outDim, rank, scale);
        const mag = referenceLoraMerge(wStored.map(Math.abs), a.map(Math.abs), b.map(Math.abs), inDim, outDim, rank, Math.abs(scale));
        for (let j = 0; j < got.length; j++) worst = Math.max(worst, Math.abs(got[j] - ref[j]) / ((rank + 2) * U * mag[j] + 1e-45));
        [W, A, B, merged].forEach((x) => x.destroy());
      }
      console.log(`LoRA merge, f16 base (${name}): worst error/tolerance ${worst.toFixed(3)}`);
      expect(worst).toBeLessThanOrEqual(1);
    });
  }
});

/** Addition problems as CE sequences for the shipped student's char tokenizer. */
async function shippedStudent() {
  const folder = await readModelFolder(await dirSource(join(SHIPPED, 'addition-student')), { requireWeights: true });
  const config = folder.config as Gpt2Config;
  const texts = ['Q: 12+7= A: 91', 'Q: 305+48= A: 353', 'Q: 9+9= A: 81', 'Q: 640+361= A: 1001'];
  const sequences: TrainSequence[] = texts.map((t) => {
    const tokens = folder.tokenizer.encode(t);
    const answerStart = t.indexOf('A:') + 2;
    const promptTokens = folder.tokenizer.encode(t.slice(0, answerStart)).length;
    // Score the answer's tokens (predicted from the position before each); nothing after the last.
    const weights = tokens.map((_, i) => (i + 1 >= promptTokens && i + 1 < tokens.length ? 1 : 0));
    return { tokens, weights };
  });
  const scored = sequences.reduce((a, s) => a + s.weights.filter((w) => w !== 0).length, 0);
  return { config, params: folder.weights!, sequences: sequences.map((s) => ({ ...s, weights: s.weights.map((w) => w / scored) })) };
}

interface StepResult {
  logits: Float32Array;
  loss: number[];
  grads: Map<string, Float32Array>;
  weights: Map<string, Float32Array>;
  factors: Map<string, Float32Array>;
}

/** Two CE steps (the first moves only B, since B starts at 0; the second moves A too). */
async function twoSteps(trainer: Trainer, sequences: readonly TrainSequence[]): Promise<StepResult> {
  const { logits } = await trainer.logits(sequences);
  const loss: number[] = [];
  let grads = new Map<string, Float32Array>();
  for (let step = 0; step < 2; step++) {
    await trainer.accumulate(sequences, { kind: 'ce' });
    grads = await trainer.readGradients();
    const report = await trainer.applyStep();
    expect(report.applied).toBe(true);
    loss.push(report.loss);
  }
  const factors = new Map([...(await trainer.readState()).trainable].map(([n, t]) => [n, t.param] as const));
  return { logits, loss, grads, weights: await trainer.readWeights(), factors };
}

describe('LoRA on the built-in GPT-2 student with an f16 base (adapter with shader-f16)', () => {
  const options = (f16Base: boolean): TrainerOptions => ({ schedule: { lr: 1e-2 }, lora: { rank: 4, alpha: 8, f16Base }, seed: 7 });

  it('stores every adapted base in f16 (half the bytes), is the f32 step on the f16-rounded base bit for bit, and stays within the rounding of the f32 step', async () => {
    const device = await testF16Device();
    const { config, params, sequences } = await shippedStudent();
    const specs = gpt2ParamSpecs(config);
    const adapted = new Set(specs.filter((s) => s.loraTarget).map((s) => s.name));
    // What an f16 base holds: the adapted weights rounded to f16, everything else as it was.
    const rounded: ModelParams = new Map([...params].map(([n, x]) => [n, adapted.has(n) ? roundToHalf(x, n) : x] as const));

    const half = await Trainer.create(device, config, params, options(true));
    const roundedF32 = await Trainer.create(device, config, rounded, options(false));
    const plain = await Trainer.create(device, config, params, options(false));
    try {
      // The base buffers: f16 for each adapted weight (2 bytes a value, padded to 16), f32 otherwise.
      expect(half.f16Base).toBe(true);
      expect(plain.f16Base).toBe(false);
      let bytesHalf = 0;
      let bytesPlain = 0;
      const plainStorage = new Map(plain.baseStorage().map((b) => [b.name, b] as const));
      for (const b of half.baseStorage()) {
        const spec = specs.find((s) => s.name === b.name)!;
        const n = numel(spec.shape);
        expect(b.dtype, b.name).toBe(adapted.has(b.name) ? 'f16' : 'f32');
        expect(b.bytes, b.name).toBe(alignTo(n * (adapted.has(b.name) ? 2 : 4), 16));
        expect(plainStorage.get(b.name)!).toEqual({ name: b.name, dtype: 'f32', bytes: alignTo(n * 4, 16) });
        bytesHalf += b.bytes;
        bytesPlain += plainStorage.get(b.name)!.bytes;
      }
      const adaptedValues = specs.filter((s) => adapted.has(s.name)).reduce((a, s) => a + numel(s.shape), 0);
      console.log(`f16 base: ${adapted.size} adapted weights (${adaptedValues} values); base buffers ${bytesHalf} bytes against ${bytesPlain} with an f32 base (saved ${bytesPlain - bytesHalf})`);
      expect(bytesPlain - bytesHalf).toBe(2 * adaptedValues);

      const [h, r, p] = [await twoSteps(half, sequences), await twoSteps(roundedF32, sequences), await twoSteps(plain, sequences)];

      // (1) The f16 base changes nothing but the rounding: the same numbers as the f32 path on
      // the rounded weights, bit for bit (the merge widens f16 exactly, then adds as before).
      expect(bitDifferences(h.logits, r.logits), 'logits').toBe(0);
      expect(h.loss).toEqual(r.loss);
      for (const [name, g] of h.grads) expect(bitDifferences(g, r.grads.get(name)!), `gradient of ${name}`).toBe(0);
      for (const [name, x] of h.factors) expect(bitDifferences(x, r.factors.get(name)!), name).toBe(0);
      for (const [name, x] of h.weights) expect(bitDifferences(x, r.weights.get(name)!), `W_eff ${name}`).toBe(0);

      // (2) Against the f32 base as it was. Each adapted weight moves by at most 2^-11 of itself
      // (f16's unit roundoff δ), or by 2^-25 below f16's normal range (half the subnormals'
      // spacing; this student has such weights, under 6.1e-5 in magnitude). A logit passes
      // through the 4·n_layer = 8 rounded matrices, each perturbing its product by ≤ δ relative
      // (LayerNorm keeps the gain between them near 1): tolerance 8δ = 3.9e-3 relative in the
      // 2-norm over all logits. The gradients of the factors see the rounded matrices on the way
      // forward and back: tolerance 16δ = 7.8e-3. The losses: 8δ relative.
      const delta = HALF_UNIT_ROUNDOFF;
      const logitDiff = relativeDifference(new Map([['logits', h.logits]]), new Map([['logits', p.logits]]));
      const gradDiff = relativeDifference(h.grads, p.grads);
      const lossDiff = Math.max(...h.loss.map((l, i) => Math.abs(l - p.loss[i]) / Math.abs(p.loss[i])));
      let weightWorst = 0;
      for (const name of adapted) {
        const w = params.get(name)!;
        const stored = rounded.get(name)!;
        for (let i = 0; i < w.length; i++) weightWorst = Math.max(weightWorst, Math.abs(stored[i] - w[i]) / Math.max(delta * Math.abs(w[i]), 2 ** -25));
      }
      console.log(
        `f16 base against the f32 base: base rounding ${weightWorst.toFixed(3)} of its bound; logits ${logitDiff.toExponential(2)} relative (tolerance ${(8 * delta).toExponential(2)}), ` +
          `factor gradients ${gradDiff.toExponential(2)} (tolerance ${(16 * delta).toExponential(2)}), loss ${lossDiff.toExponential(2)}`,
      );
      expect(weightWorst).toBeLessThanOrEqual(1);
      expect(logitDiff).toBeGreaterThan(0); // the base really was rounded
      expect(logitDiff).toBeLessThanOrEqual(8 * delta);
      expect(gradDiff).toBeLessThanOrEqual(16 * delta);
      expect(lossDiff).toBeLessThanOrEqual(8 * delta);
    } finally {
      [half, roundedF32, plain].forEach((t) => t.destroy());
    }
  });

  it('checkpoints keep the f16-rounded base the run trained on, and a resumed run continues bit for bit', async () => {
    const device = await testF16Device();
    const { config, params, sequences } = await shippedStudent();
    const adapted = gpt2ParamSpecs(config).filter((s) => s.loraTarget).map((s) => s.name);
    const trainer = await Trainer.create(device, config, params, options(true));
    try {
      await trainer.trainStep([sequences], { kind: 'ce' });
      const bytes = await saveCheckpoint(trainer);
      const { base } = await trainer.readState();
      // The checkpoint's base is the rounded base (widened to f32 exactly), the rest untouched.
      for (const [name, x] of base) {
        const expected = adapted.includes(name) ? roundToHalf(params.get(name)!) : params.get(name)!;
        expect(bitDifferences(x, expected), name).toBe(0);
      }
      const restored = (await restoreCheckpoint(device, bytes)).trainer;
      try {
        expect(restored.f16Base).toBe(true);
        expect(restored.options.lora?.f16Base).toBe(true);
        // The exported weights (W_eff) are the same, and the next step is the same.
        const [a, b] = [await trainer.readWeights(), await restored.readWeights()];
        for (const [name, x] of a) expect(bitDifferences(x, b.get(name)!), `W_eff ${name}`).toBe(0);
        const [ra, rb] = [await trainer.trainStep([sequences], { kind: 'ce' }), await restored.trainStep([sequences], { kind: 'ce' })];
        expect(rb.loss).toBe(ra.loss);
        const [wa, wb] = [await trainer.readWeights(), await restored.readWeights()];
        for (const [name, x] of wa) expect(bitDifferences(x, wb.get(name)!), `W_eff ${name} after the resumed step`).toBe(0);
      } finally {
        restored.destroy();
      }
    } finally {
      trainer.destroy();
    }
  });

  it('f16Base: false keeps an f32 base, full fine-tuning never rounds, and a weight beyond f16 range is refused by name', async () => {
    const device = await testF16Device();
    const config = smallGpt2Config();
    const params = randomGpt2Params(config, { seed: 3, scheme: 'test' });
    const off = await Trainer.create(device, config, params, { lora: { rank: 2, f16Base: false } });
    const full = await Trainer.create(device, config, params, {});
    try {
      expect(off.f16Base).toBe(false);
      expect(off.baseStorage().every((b) => b.dtype === 'f32')).toBe(true);
      expect(full.f16Base).toBe(false);
      expect(full.baseStorage().every((b) => b.dtype === 'f32')).toBe(true);
    } finally {
      off.destroy();
      full.destroy();
    }
    const name = gpt2ParamSpecs(config).find((s) => s.loraTarget)!.name;
    const huge = new Map(params);
    const w = Float32Array.from(params.get(name)!);
    w[5] = 70000;
    huge.set(name, w);
    await expect(Trainer.create(device, config, huge, { lora: { rank: 2 } })).rejects.toThrow(
      `${name} holds 70000 at index 5, beyond f16's range (±65504), so it cannot be stored as an f16 base; train with an f32 base instead (LoRA option f16Base: false)`,
    );
  });
});
