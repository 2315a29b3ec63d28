import { describe, expect, it } from 'vitest';
import { checkModelFits, estimateMemory, ModelTooLargeError } from '../../workers/models/memory';
import { countGpt2Parameters } from '../../workers/models/gpt2/params';
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
    expect(err!.message).toContain('binds at most 1 GiB per tensor; use a smaller batch or fewer tokens');
  });

  it('says when the model itself is too large (an embedding over the binding limit)', () => {
    const huge = smallGpt2Config({ nEmbd: 4096, nHead: 32, nInner: 16384, vocabSize: 262144 });
    expect(() => checkModelFits(huge, 1, 16, limits)).toThrow('transformer.wte.weight needs 4 GiB');
    expect(() => checkModelFits(huge, 1, 16, limits)).toThrow('the model itself is too large for this GPU');
  });
});
