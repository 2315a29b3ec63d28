/**
 * Data the benchmarks make up for random-weight models, shared by them: a WordLevel tokenizer of
 * the whole vocabulary (the models never see text) and seeded training sequences.
 */
import type { TrainSequence } from '../../workers/train/batch';

/** tokenizer.json (WordLevel over `t1 … t{V-1}`, id 0 the end-of-text token) and tokenizer_config.json as given. */
export function benchTokenizerFiles(vocabSize: number, tokenizerConfig: Record<string, unknown>): Map<string, Uint8Array> {
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  for (let i = 1; i < vocabSize; i++) vocab[`t${i}`] = i;
  const tokenizer = {
    version: '1.0', truncation: null, padding: null, normalizer: null, post_processor: null, decoder: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    pre_tokenizer: { type: 'WhitespaceSplit' },
    model: { type: 'WordLevel', vocab, unk_token: '<|endoftext|>' },
  };
  const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  return new Map([['tokenizer.json', encode(tokenizer)], ['tokenizer_config.json', encode(tokenizerConfig)]]);
}

/** `batch` sequences of `seq` seeded token ids; every position scored but the last, weights 1/(scored tokens). */
export function benchSequences(batch: number, seq: number, vocab: number): TrainSequence[] {
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const scored = batch * (seq - 1);
  return Array.from({ length: batch }, () => {
    const tokens = Array.from({ length: seq }, () => next() % vocab);
    return { tokens, weights: tokens.map((_, t) => (t < seq - 1 ? 1 / scored : 0)) };
  });
}
