/** Small model folders for tests: a character-level tokenizer and random GPT-2 weights. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { randomGpt2Params } from '../../workers/models/gpt2/params';
import { writeModelFolder } from '../../workers/models/folder';
import { writeFolder } from '../../workers/node/fs-folder';
import { additionTokenizerFiles, ADDITION_EOS_ID, ADDITION_VOCAB } from '../../workers/tasks/addition';

export const EOS_TEXT = '<|endoftext|>';
export const ARITHMETIC_CHARS = '0123456789+= QA:'.split('');

/** A character-level tokenizer in the Hugging Face tokenizer.json format; id 0 is the special token. */
export function charTokenizer(chars: readonly string[], special = EOS_TEXT) {
  const vocab: Record<string, number> = { [special]: 0 };
  chars.forEach((c, i) => (vocab[c] = i + 1));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: special, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: '.' }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: special },
  };
}

export function charTokenizerFiles(chars: readonly string[] = ARITHMETIC_CHARS): Map<string, Uint8Array> {
  const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  return new Map([
    ['tokenizer.json', encode(charTokenizer(chars))],
    ['tokenizer_config.json', encode({ eos_token: EOS_TEXT, model_max_length: 64 })],
  ]);
}

export function smallGpt2Config(over: Partial<Gpt2Config> = {}): Gpt2Config {
  return {
    modelType: 'gpt2', nLayer: 2, nHead: 2, nEmbd: 16, nInner: 64, nPositions: 64, vocabSize: ARITHMETIC_CHARS.length + 1,
    layerNormEpsilon: 1e-5, activationFunction: 'gelu_new', eosTokenId: 0, ...over,
  };
}

/** Writes a random GPT-2 model folder into a fresh temporary directory; returns its path and weights. */
export async function writeRandomGpt2Folder(seed: number, config = smallGpt2Config()) {
  const params = randomGpt2Params(config, { seed, scheme: 'test' });
  const dir = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-model-')), writeModelFolder(config, params, charTokenizerFiles()));
  return { dir, config, params };
}

/** A random GPT-2 folder with the addition task's tokenizer (for distillation-loop tests). */
export async function writeRandomAdditionFolder(seed: number, over: Partial<Gpt2Config> = {}) {
  const config = smallGpt2Config({ vocabSize: ADDITION_VOCAB.length, nPositions: 32, eosTokenId: ADDITION_EOS_ID, bosTokenId: ADDITION_EOS_ID, ...over });
  const params = randomGpt2Params(config, { seed, scheme: 'hf' });
  const dir = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-addition-')), writeModelFolder(config, params, additionTokenizerFiles(), { task: 'addition', task_format: 'reversed', task_digits: [1, 2] }));
  return { dir, config, params };
}
