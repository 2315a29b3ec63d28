/**
 * Llama-family folders through the loader the CLI and the worker use (workers/models/folder.ts,
 * workers/engine/inference.ts): the registry knows the family under each model_type; a fixture
 * folder (no onnx/model.onnx) loads with the architecture the Models panel shows; config.json
 * written by the lab says what transformers 5 wrote; a folder written by the lab reads back
 * bit-identical; bad input gets one clear sentence (unknown model_type, unsupported rope_type,
 * a tensor missing from model.safetensors). Pure logic: no GPU.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { familyNames, familyOf } from '../../workers/models/registry';
import { readModelFolder, writeModelFolder } from '../../workers/models/folder';
import { ModelFolderError } from '../../workers/models/source';
import { dirSource } from '../../workers/node/fs-source';
import { writeFolder } from '../../workers/node/fs-folder';
import { loadModel } from '../../workers/engine/inference';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../workers/models/safetensors';

const FIXTURES = join(__dirname, '../fixtures/hf');
const FOLDERS = ['llama-tied', 'qwen2', 'qwen3', 'llama-teacher'] as const;
const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')).models as Record<string, { n_parameters: number }>;
const rawConfig = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8')) as Record<string, unknown>;

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});
/** A copy of a fixture folder to break. */
function copyOf(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `opd-${name}-`));
  temporary.push(dir);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}
async function failure(dir: string): Promise<Error> {
  const e = await readModelFolder(await dirSource(dir), { requireWeights: true }).then(
    () => new Error('the folder was accepted'),
    (err: Error) => err,
  );
  return e;
}

describe('Llama-family folders', () => {
  it('are registered under llama, qwen2 and qwen3, named as people know them', () => {
    expect(familyNames()).toBe('GPT-2, Llama, Qwen2, Qwen3');
    expect(['llama', 'qwen2', 'qwen3'].map((t) => familyOf(t)?.name)).toEqual(['Llama', 'Qwen2', 'Qwen3']);
    expect(familyOf('mistral')).toBeUndefined();
  });

  it.each(FOLDERS)('%s loads without onnx/model.onnx, with the architecture the Models panel shows', async (name) => {
    const model = await loadModel(await dirSource(join(FIXTURES, name)), 'teacher');
    expect(model.folder.onnxLabel).toMatch(/decoder built from model\.safetensors\)$/);
    expect(model.summary.parameters).toBe(reference[name].n_parameters);
    expect(model.summary.trainable).toBe(true);
    const raw = rawConfig(name);
    expect(model.summary.architecture).toMatchObject({
      layers: raw.num_hidden_layers,
      hidden: raw.hidden_size,
      heads: raw.num_attention_heads,
      kvHeads: raw.num_key_value_heads,
      headDim: raw.head_dim ?? Number(raw.hidden_size) / Number(raw.num_attention_heads),
      intermediate: raw.intermediate_size,
      tiedHead: raw.tie_word_embeddings,
      parameters: reference[name].n_parameters,
    });
  });

  it('describes what sets each fixture apart', async () => {
    const arch = async (name: string) => (await loadModel(await dirSource(join(FIXTURES, name)), 'student')).summary.architecture!;
    expect(await arch('llama-teacher')).toMatchObject({ family: 'Llama', positions: 'rotary (llama3, θ 500,000, factor 4, from 64 positions)', extras: [] });
    expect(await arch('qwen2')).toMatchObject({ family: 'Qwen2', positions: 'rotary (θ 1,000,000)', extras: ['q/k/v biases'] });
    expect(await arch('qwen3')).toMatchObject({ family: 'Qwen3', headDim: 32, tiedHead: false, extras: ['q/k RMSNorm'] });
    expect((await loadModel(await dirSource(join(FIXTURES, 'gpt2-small')), 'student')).summary.architecture).toMatchObject({ family: 'GPT-2', layers: 2, heads: 4, kvHeads: 4 });
  });

  it.each(FOLDERS)('%s: the config.json the lab writes says what transformers 5 wrote', async (name) => {
    const folder = await readModelFolder(await dirSource(join(FIXTURES, name)));
    const written = folder.family!.configToJson(folder.config!);
    const raw = rawConfig(name);
    for (const [key, value] of Object.entries(written)) {
      if (key in raw) expect(value, key).toEqual(raw[key]);
    }
    // Everything that shapes the computation is written.
    for (const key of ['architectures', 'model_type', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'rms_norm_eps', 'rope_parameters', 'tie_word_embeddings', 'vocab_size', 'max_position_embeddings']) {
      expect(written[key], key).toEqual(raw[key]);
    }
    expect(folder.family!.configFromJson(JSON.parse(JSON.stringify(written)))).toEqual(folder.config);
  });

  it('writes a folder that reads back bit-identical, its safetensors byte-identical to transformers’', async () => {
    const folder = await readModelFolder(await dirSource(join(FIXTURES, 'qwen3')), { requireWeights: true });
    const files = writeModelFolder(folder.config!, folder.weights!, folder.tokenizerFiles);
    expect([...files.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    expect(Buffer.compare(Buffer.from(files.get('model.safetensors')!), readFileSync(join(FIXTURES, 'qwen3', 'model.safetensors')))).toBe(0);
    const dir = await writeFolder(mkdtempSync(join(tmpdir(), 'opd-qwen3-out-')), files);
    temporary.push(dir);
    const again = await readModelFolder(await dirSource(dir), { requireWeights: true });
    expect(again.config).toEqual(folder.config);
    for (const [n, data] of folder.weights!) expect(Buffer.from(again.weights!.get(n)!.buffer).equals(Buffer.from(data.buffer)), n).toBe(true);
  });

  it('names an unknown model_type in one sentence', async () => {
    const dir = copyOf('llama-tied');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...rawConfig('llama-tied'), model_type: 'mistral' }));
    const e = await failure(dir);
    expect(e).toBeInstanceOf(ModelFolderError);
    expect(e.message).toBe(`${dir} is a 'mistral' model, none of the families the lab knows (GPT-2, Llama, Qwen2, Qwen3), and has no onnx/model.onnx: the lab can run it only from an ONNX export in the transformers.js layout.`);
  });

  it('names an unsupported rope_type in one sentence', async () => {
    const dir = copyOf('llama-teacher');
    const raw = rawConfig('llama-teacher');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...raw, rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 4 } }));
    const e = await failure(dir);
    expect(e).toBeInstanceOf(ModelFolderError);
    expect(e.message).toBe(
      `${dir}/config.json: field "rope_parameters.rope_type" is "yarn", which the lab does not implement: it runs rope types default, linear and llama3 (choose a model without yarn scaling)`,
    );
  });

  it('names a tensor missing from model.safetensors, with the shape it needs, in one sentence', async () => {
    const dir = copyOf('qwen2');
    const { tensors, metadata } = readSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
    const kept: [string, TensorToWrite][] = [...tensors].filter(([n]) => n !== 'model.layers.1.self_attn.v_proj.bias').map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape, data: t.bytes }]);
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(kept, metadata));
    const e = await failure(dir);
    expect(e).toBeInstanceOf(ModelFolderError);
    expect((e as ModelFolderError).file).toBe('model.safetensors');
    expect(e.message).toBe(`${dir}/model.safetensors: tensor "model.layers.1.self_attn.v_proj.bias" is missing; this config.json (qwen2, num_hidden_layers 2, hidden_size 64) needs it with shape [32]`);
  });
});
