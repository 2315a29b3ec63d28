/**
 * Model folders in and out: a GPT-2 family student written as a Hugging Face folder and read
 * back is bit-identical (weights, tokenizer, config), and broken folders get errors naming the
 * folder and the file.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpt2ParamSpecs, randomGpt2Params } from '../../workers/models/gpt2/params';
import { readModelFolder, writeModelFolder } from '../../workers/models/folder';
import { ModelFolderError } from '../../workers/models/source';
import { dirSource } from '../../workers/node/fs-source';
import { writeFolder } from '../../workers/node/fs-folder';
import { charTokenizerFiles, smallGpt2Config } from './fixtures';

const tokenizerFiles = charTokenizerFiles();
const config = smallGpt2Config();

describe('model folders', () => {
  it('import → export → import is lossless: weights bit-identical, tokenizer and config identical', async () => {
    const params = randomGpt2Params(config, { seed: 3, scheme: 'test' });
    const dir = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-folder-')), writeModelFolder(config, params, tokenizerFiles));
    const first = await readModelFolder(await dirSource(dir), { requireWeights: true });
    expect(first.gpt2).toEqual(config);
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    for (const spec of gpt2ParamSpecs(config)) {
      expect(bytes(first.weights!.get(spec.name)!).equals(bytes(params.get(spec.name)!)), spec.name).toBe(true);
    }
    expect(first.tokenizer.encode('Q: 1+2= A: 3', { addSpecialTokens: false })).toHaveLength(12);

    const again = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-folder-')), writeModelFolder(first.gpt2!, first.weights!, first.tokenizerFiles));
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors', 'onnx/model.onnx']) {
      expect(Buffer.compare(readFileSync(join(dir, file)), readFileSync(join(again, file))), file).toBe(0);
    }
    rmSync(dir, { recursive: true });
    rmSync(again, { recursive: true });
  });

  it('names the folder and the file when the folder is not a usable model', async () => {
    const params = randomGpt2Params(config, { seed: 3, scheme: 'test' });
    const dir = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-folder-')), writeModelFolder(config, params, tokenizerFiles));
    const read = async () => readModelFolder(await dirSource(dir), { requireWeights: true });

    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 2, n_head: 'two', n_embd: 16, vocab_size: config.vocabSize, n_positions: 64 }));
    const bad = await read().catch((e) => e);
    expect(bad).toBeInstanceOf(ModelFolderError);
    expect(bad.message).toContain('config.json: field "n_head"');

    writeFileSync(join(dir, 'config.json'), '{ "model_type": "gpt2", ');
    await expect(read()).rejects.toThrow('config.json in');

    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'mamba' }));
    await expect(read()).rejects.toThrow("is a 'mamba' model: the lab trains GPT-2, Llama, Qwen2, Qwen3 family students only");
    // A family the lab knows: its config is checked field by field.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    await expect(read()).rejects.toThrow('config.json: field "num_hidden_layers" must be an integer');

    rmSync(join(dir, 'config.json'));
    await expect(read()).rejects.toThrow('has no config.json');
    rmSync(dir, { recursive: true });
  });
});
