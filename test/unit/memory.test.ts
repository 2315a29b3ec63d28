import { describe, expect, it } from 'vitest';
import { checkModelFits, checkTrainingFits, estimateMemory, estimateTrainingMemory, ModelTooLargeError, type TrainingMemoryEstimate } from '../../workers/models/memory';
import { countGpt2Parameters, gpt2ParamSpecs } from '../../workers/models/gpt2/params';
import { numel } from '../../workers/models/family';
import { smallGpt2Config } from './fixtures';

const GiB = 1024 ** 3;
const gpt2 = smallGpt2Config({ nLayer: 12, nHead: 12, nEmbd: 768, nInner: 3072, nPositions: 1024, vocabSize: 50257 });
const limits = { maxBufferSize: GiB, maxStorageBufferBindingSize: GiB };

describe('GPU memory of a GPT-2 family model', () => {
  it('counts the weights, the KV cache and the logits of a batch', () => {
    const e = estimateMemory(gpt2, 4, 128);
    expect(e.weightsBytes).toBe(countGpt2Parameters(gpt2) * 4);
    expect(e.kvCacheBytes).toBe(2 * 12 * 4 * 12 * 128 * 64 * 4);
    expect(e.logitsBytes).toBe(4 * 128 * 50257 * 4);
    expect(e.tensors[0].bytes).toBeGreaterThanOrEqual(e.tensors[1].bytes);
  });

  it('lets gpt2 through at a normal batch and refuses a batch whose logits exceed one binding', () => {
    expect(() => checkModelFits(gpt2, 4, 128, limits)).not.toThrow();
    // 8 × 1024 × 50257 × 4 B = 1.53 GiB of logits.
    const err = (() => {
      try {
        checkModelFits(gpt2, 8, 1024, limits, 'models/gpt2');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(ModelTooLargeError);
    expect(err!.message).toContain('models/gpt2 does not fit this GPU for a batch of 8 × 1024 tokens: logits needs 1.5 GiB');
    expect(err!.message).toContain('binds at most 1 GiB per tensor; use a smaller batch or fewer tokens: a batch of at most 5 sequences (× 1024 tokens) or at most 667 tokens per sequence (batch 8).');
  });

  it('says when the model itself is too large (an embedding over the binding limit)', () => {
    const huge = smallGpt2Config({ nEmbd: 4096, nHead: 32, nInner: 16384, vocabSize: 262144 });
    expect(() => checkModelFits(huge, 1, 16, limits)).toThrow('transformer.wte.weight needs 4 GiB');
    expect(() => checkModelFits(huge, 1, 16, limits)).toThrow('the model itself is too large for this GPU');
  });
});

describe('GPU memory of a training run', () => {
  const gpt2Specs = gpt2ParamSpecs(gpt2);
  const P = countGpt2Parameters(gpt2);
  const adapted = gpt2Specs.filter((s) => s.loraTarget);
  const adaptedValues = adapted.reduce((a, s) => a + numel(s.shape), 0);
  const groupBytes = (e: TrainingMemoryEstimate, name: string) => e.groups.find((g) => g.name === name)!.bytes;
  const part = (e: TrainingMemoryEstimate, name: string) => e.groups.flatMap((g) => g.parts).find((p) => p.name.startsWith(name))!.bytes;

  it('counts weights, optimizer state, activations by name and the KV cache, full and LoRA (f32 or f16 base)', () => {
    const full = estimateTrainingMemory(gpt2, { batch: 4, sequence: 128, loraRank: 0, f16Base: false });
    expect(groupBytes(full, 'weights')).toBe(P * 4);
    // Gradients, AdamW m and v, and the guard's copies of weights, m and v: 6 floats a parameter.
    expect(groupBytes(full, 'optimizer state')).toBe(6 * P * 4);
    expect(part(full, 'logits and their gradient')).toBe(2 * 4 * 128 * 50257 * 4);
    expect(part(full, 'attention probabilities')).toBe(13 * 4 * 12 * 128 * 128 * 4);
    expect(part(full, 'MLP activations')).toBe(2 * 12 * 4 * 128 * 3072 * 4);
    expect(groupBytes(full, 'KV cache')).toBe(2 * 12 * 4 * 12 * 128 * 64 * 4);
    expect(full.totalBytes).toBe(full.groups.reduce((a, g) => a + g.bytes, 0));

    const r = 8;
    const factors = adapted.reduce((a, s) => a + r * (s.shape[0] + s.shape[1]), 0);
    const lora32 = estimateTrainingMemory(gpt2, { batch: 4, sequence: 128, loraRank: r, f16Base: false });
    const lora16 = estimateTrainingMemory(gpt2, { batch: 4, sequence: 128, loraRank: r, f16Base: true });
    // Weights: the unadapted ones, each adapted weight's frozen base and its f32 W_eff, and A, B.
    expect(groupBytes(lora32, 'weights')).toBe((P - adaptedValues) * 4 + adaptedValues * 4 + adaptedValues * 4 + factors * 4);
    expect(groupBytes(lora32, 'weights') - groupBytes(lora16, 'weights')).toBe(adaptedValues * 2);
    const largest = Math.max(...adapted.map((s) => numel(s.shape)));
    expect(groupBytes(lora32, 'optimizer state')).toBe(6 * factors * 4 + largest * 4);
    expect(groupBytes(lora16, 'activations')).toBe(groupBytes(full, 'activations'));
  });

  it('a tensor over one binding: names it and the largest batch and sequence that fit', () => {
    const setup = { batch: 32, sequence: 256, loraRank: 0, f16Base: false };
    expect(() => checkTrainingFits(gpt2, setup, limits, { what: 'gpt2', batchWhat: '32 sequences a step (8 prompts × 4 completions)' })).toThrow(
      new ModelTooLargeError(
        'gpt2 cannot be trained on this GPU with 32 sequences a step (8 prompts × 4 completions) of 256 tokens: logits needs 1.5 GiB, but the adapter binds at most 1 GiB per tensor; ' +
          'use a batch of at most 20 sequences (× 256 tokens) or at most 166 tokens per sequence (batch 32).',
      ),
    );
    // The advice's numbers are the largest that fit: 20 × 256 and 32 × 166 do, one more does not.
    const logits = (b: number, s: number) => b * s * 50257 * 4;
    expect([logits(20, 256), logits(21, 256), logits(32, 166), logits(32, 167)].map((x) => x <= GiB)).toEqual([true, false, true, false]);
    expect(() => checkTrainingFits(gpt2, { ...setup, batch: 20 }, limits)).not.toThrow();
    // A weight over the binding: LoRA and f16 cannot help (the weight is bound whole, in f32).
    const huge = smallGpt2Config({ nEmbd: 4096, nHead: 32, nInner: 16384, vocabSize: 262144 });
    expect(() => checkTrainingFits(huge, { batch: 1, sequence: 16, loraRank: 8, f16Base: true }, limits)).toThrow(
      'transformer.wte.weight needs 4 GiB, but the adapter binds at most 1 GiB per tensor; the model itself is too large for this GPU (LoRA and an f16 base do not help: the weight is bound whole, in f32).',
    );
  });

  it('over the memory budget: names each kind of memory with its parts and sizes, and what to change with the totals it gives', () => {
    const setup = { batch: 8, sequence: 128, loraRank: 0, f16Base: false };
    const budget = 2 * GiB;
    const message = (() => {
      try {
        checkTrainingFits(gpt2, setup, limits, { budgetBytes: budget, shaderF16: true, what: 'gpt2' });
      } catch (e) {
        expect(e).toBeInstanceOf(ModelTooLargeError);
        return (e as Error).message;
      }
    })();
    console.log(message);
    expect(message).toBe(
      'gpt2 cannot be trained on this GPU with 8 sequences of 128 tokens: it needs 4.4 GiB — weights 474.7 MiB, ' +
        "optimizer state 2.8 GiB (the numerics guard's copies of weights and moments 1.4 GiB, AdamW moments m and v 949.4 MiB, gradients 474.7 MiB), " +
        'activations 1.1 GiB (logits and their gradient 392.6 MiB, MLP activations (fc and GELU) 288 MiB, residual stream and LayerNorm outputs 150 MiB, …), KV cache 72 MiB — ' +
        'but the GPU has 2 GiB; to fit, train LoRA adapters (rank 8, whose frozen base is then f16 on this adapter): 1.8 GiB in all.',
    );
    // The totals the advice gives are the estimate's: LoRA fits, a batch of 1 alone would not.
    expect(estimateTrainingMemory(gpt2, { ...setup, loraRank: 8, f16Base: true }).totalBytes).toBeLessThanOrEqual(budget);
    expect(estimateTrainingMemory(gpt2, { ...setup, batch: 1 }).totalBytes).toBeGreaterThan(budget);

    // A LoRA run with an f32 base on an adapter with shader-f16: the f16 base, a smaller batch,
    // shorter sequences.
    const lora = { batch: 8, sequence: 128, loraRank: 16, f16Base: false };
    expect(() => checkTrainingFits(gpt2, lora, limits, { budgetBytes: 1.3 * GiB, shaderF16: true })).toThrow(
      "— but the GPU has 1.3 GiB; to fit, use a batch of at most 3 sequences (1.3 GiB in all), or use at most 52 tokens per sequence (1.3 GiB in all), " +
        "or keep LoRA's frozen base in f16 (the default on this adapter) and use a batch of at most 4 sequences (1.3 GiB in all).",
    );
    for (const [change, fits] of [[{ batch: 3 }, true], [{ batch: 4 }, false], [{ sequence: 52 }, true], [{ sequence: 53 }, false], [{ f16Base: true, batch: 4 }, true], [{ f16Base: true, batch: 5 }, false]] as const) {
      expect(estimateTrainingMemory(gpt2, { ...lora, ...change }).totalBytes <= 1.3 * GiB, JSON.stringify(change)).toBe(fits);
    }
    // Without shader-f16 the f16 base is not offered; a budget nothing fits says so.
    expect(() => checkTrainingFits(gpt2, lora, limits, { budgetBytes: 1.3 * GiB, shaderF16: false })).toThrow(/or use at most 52 tokens per sequence \(1\.3 GiB in all\)\.$/);
    expect(() => checkTrainingFits(gpt2, setup, limits, { budgetBytes: 512 * 1024 ** 2, shaderF16: false })).toThrow(
      "but the GPU has 512 MiB; even LoRA of rank 8 on one sequence of 2 tokens needs 841.3 MiB: the model is too large for this GPU's memory.",
    );
    expect(() => checkTrainingFits(gpt2, setup, limits, { budgetBytes: 5 * GiB })).not.toThrow();
  });
});
