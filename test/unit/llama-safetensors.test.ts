/**
 * Llama-family model.safetensors (workers/models/llama/weights.ts): the fixture files transformers
 * wrote read into the lab's [in, out] layout and written back are byte-identical to the files
 * transformers wrote (names, shapes, dtypes, order, metadata and values); a missing, misshapen or
 * foreign tensor is one sentence naming the file, the tensor and the expected shape. Pure logic.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llamaConfigFromJson, type LlamaConfig } from '../../workers/models/llama/config';
import { llamaParamSpecs } from '../../workers/models/llama/params';
import { readLlamaSafetensors, writeLlamaSafetensors } from '../../workers/models/llama/weights';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../workers/models/safetensors';

const dir = join(__dirname, '../fixtures/hf');
const FOLDERS = ['llama-tied', 'qwen2', 'qwen3', 'llama-teacher'];
const configOf = (name: string): LlamaConfig => llamaConfigFromJson(JSON.parse(readFileSync(join(dir, name, 'config.json'), 'utf8')));
const fileOf = (name: string) => new Uint8Array(readFileSync(join(dir, name, 'model.safetensors')));

/** The fixture's tensors minus some, or with one replaced, written again. */
function edited(bytes: Uint8Array, edit: (name: string, t: TensorToWrite) => TensorToWrite | null, extra: [string, TensorToWrite][] = []): Uint8Array {
  const { tensors, metadata } = readSafetensors(bytes);
  const out: [string, TensorToWrite][] = [];
  for (const [name, t] of tensors) {
    const e = edit(name, { dtype: t.dtype, shape: t.shape, data: t.bytes });
    if (e) out.push([name, e]);
  }
  return writeSafetensors([...out, ...extra], metadata);
}

describe('Llama-family model.safetensors', () => {
  it.each(FOLDERS)('%s: read then written is byte-identical to the file transformers wrote', (name) => {
    const config = configOf(name);
    const bytes = fileOf(name);
    const params = readLlamaSafetensors(config, bytes);
    expect([...params.keys()].sort()).toEqual(llamaParamSpecs(config).map((s) => s.name).sort());
    expect(params.has('lm_head.weight')).toBe(!config.tiedEmbeddings);
    const written = writeLlamaSafetensors(config, params);
    expect(Buffer.compare(Buffer.from(written), Buffer.from(bytes))).toBe(0);
    // And reading what we wrote gives the same parameters, bit for bit.
    const again = readLlamaSafetensors(config, written);
    for (const [n, data] of params) expect(Buffer.from(again.get(n)!.buffer).equals(Buffer.from(data.buffer)), n).toBe(true);
  });

  it('keeps projections [in, out] in the lab: q_proj is the transpose of the file’s [out, in]', () => {
    const config = configOf('qwen3');
    const params = readLlamaSafetensors(config, fileOf('qwen3'));
    const file = readSafetensors(fileOf('qwen3')).tensors.get('model.layers.1.self_attn.q_proj.weight')!;
    expect(file.shape).toEqual([config.nHead * config.headDim, config.hidden]); // [128, 64]
    const view = new Float32Array(file.bytes.slice().buffer);
    const lab = params.get('model.layers.1.self_attn.q_proj.weight')!;
    const [out, inDim] = file.shape;
    for (const [o, i] of [[0, 0], [5, 17], [out - 1, inDim - 1], [100, 3]]) expect(lab[i * out + o]).toBe(view[o * inDim + i]);
    // Norms, biases and the embedding are not transposed.
    expect(Array.from(params.get('model.layers.0.self_attn.k_norm.weight')!)).toEqual(Array.from(new Float32Array(readSafetensors(fileOf('qwen3')).tensors.get('model.layers.0.self_attn.k_norm.weight')!.bytes.slice().buffer)));
  });

  it('names the file, the tensor and the expected shape when a tensor is missing, misshapen or foreign', () => {
    const config = configOf('llama-teacher');
    const bytes = fileOf('llama-teacher');
    const read = (b: Uint8Array) => () => readLlamaSafetensors(config, b, 'teacher/model.safetensors');
    expect(read(edited(bytes, (n, t) => (n === 'model.layers.2.mlp.up_proj.weight' ? null : t)))).toThrow(
      'teacher/model.safetensors: tensor "model.layers.2.mlp.up_proj.weight" is missing; this config.json (llama, num_hidden_layers 3, hidden_size 96) needs it with shape [256, 96]',
    );
    expect(read(edited(bytes, (n, t) => (n === 'lm_head.weight' ? null : t)))).toThrow('tensor "lm_head.weight" is missing');
    expect(read(edited(bytes, (n, t) => (n === 'model.layers.0.self_attn.k_proj.weight' ? { ...t, shape: [96, 32] } : t)))).toThrow(
      'teacher/model.safetensors: tensor "model.layers.0.self_attn.k_proj.weight" has shape [96, 32], but this config.json (llama, num_hidden_layers 3, hidden_size 96) needs [32, 96]',
    );
    const extra: [string, TensorToWrite] = ['model.layers.3.input_layernorm.weight', { dtype: 'F32', shape: [96], data: new Float32Array(96) }];
    expect(read(edited(bytes, (_, t) => t, [extra]))).toThrow('tensor "model.layers.3.input_layernorm.weight" is not a parameter of this config.json');
    // What a tied model's file may carry besides its parameters: a copy of the head, old rotary buffers.
    const tied = configOf('llama-tied');
    const embed = readSafetensors(fileOf('llama-tied')).tensors.get('model.embed_tokens.weight')!;
    const withCopies = edited(fileOf('llama-tied'), (_, t) => t, [
      ['lm_head.weight', { dtype: 'F32', shape: embed.shape, data: embed.bytes }],
      ['model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [8], data: new Float32Array(8) }],
    ]);
    expect(readLlamaSafetensors(tied, withCopies).has('lm_head.weight')).toBe(false);
  });

  it('reads F16 and BF16 files, and a base model’s names without the `model.` prefix', () => {
    const config = configOf('llama-tied');
    const params = readLlamaSafetensors(config, fileOf('llama-tied'));
    const bf16 = edited(fileOf('llama-tied'), (_, t) => {
      const f = new Float32Array((t.data as Uint8Array).slice().buffer);
      const bits = new Uint32Array(f.buffer);
      return { dtype: 'BF16', shape: t.shape, data: Uint16Array.from(bits, (b) => b >>> 16) };
    });
    const fromBf16 = readLlamaSafetensors(config, bf16);
    const w = 'model.layers.1.mlp.down_proj.weight';
    const rel = Math.max(...Array.from(params.get(w)!, (v, i) => Math.abs(fromBf16.get(w)![i] - v) / Math.max(Math.abs(v), 1e-3)));
    expect(rel).toBeLessThan(2 ** -7); // bf16 keeps 8 significant bits (truncated)
    const stripped = writeSafetensors([...readSafetensors(fileOf('llama-tied')).tensors].map(([n, t]) => [n.replace(/^model\./, ''), { dtype: t.dtype, shape: t.shape, data: t.bytes }] as [string, TensorToWrite]));
    expect(readLlamaSafetensors(config, stripped).get(w)).toEqual(params.get(w));
  });
});
