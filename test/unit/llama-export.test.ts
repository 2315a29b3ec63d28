/**
 * A trained Llama-family student written back as a Hugging Face folder (workers/distill/run.ts
 * trainedStudentFolder → workers/models/folder.ts trainedFolderFiles), and a LoRA run's PEFT
 * adapter beside it (trainedAdapterFolder → workers/train/peft-adapter.ts):
 *   - untrained, each fixture (llama-tied, qwen2, qwen3, llama-teacher) goes out as transformers
 *     wrote it: config.json with every field and value of the source's (and no other, but
 *     possibly Qwen2's head_dim, the value transformers derives), model.safetensors, generation_config.json and the tokenizer
 *     files (chat template included) byte for byte or value for value; onnx/model.onnx holds the
 *     weights as initializers, takes the transformers.js inputs only, and is the very decoder the
 *     lab builds when it reads the folder back (whose weights are the same, bit for bit);
 *   - a transformers 4 config.json (top-level rope_theta / rope_scaling, torch_dtype bfloat16)
 *     goes out with transformers 5's rope_parameters beside them and float32 as its dtype;
 *   - trained on the GPU (one AdamW step of reference.json's batch): full fine-tuning writes the
 *     trainer's weights and writes no adapter; LoRA (rank 4, alpha 8) writes the merged weights,
 *     equal to W + s·lora_B·lora_A computed from the adapter's own file as PEFT merges it, and an
 *     adapter whose tensor names, shapes and dtypes are those of PEFT's lora-init.safetensors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { HF_DIR, trainingSequences } from './hf-fixtures';
import { testDevice } from './gpu';
import { readModelFolder, type ModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { writeFolder } from '../../workers/node/fs-folder';
import { readSafetensors } from '../../workers/models/safetensors';
import { trainedAdapterFolder, trainedStudentFolder } from '../../workers/distill/run';
import { Trainer } from '../../workers/train/trainer';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, peftTensorName } from '../../workers/train/peft-adapter';
import { pastKeyName, pastValueName } from '../../workers/ort/decoder-io';
import type { LlamaConfig } from '../../workers/models/llama/config';

const FOLDERS = ['llama-tied', 'qwen2', 'qwen3', 'llama-teacher'] as const;
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json'];
const json = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
const fixtureFile = (folder: string, file: string) => new Uint8Array(readFileSync(join(HF_DIR, folder, file)));

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});
function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `opd-export-${tag}-`));
  temporary.push(dir);
  return dir;
}

const readFixture = async (name: string): Promise<ModelFolder> => readModelFolder(await dirSource(join(HF_DIR, name)), { requireWeights: true });

/** The graph's input names and initializer names. */
function onnxNames(bytes: Uint8Array): { inputs: string[]; outputs: string[]; initializers: Set<string> } {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  return { inputs: graph.input!.map((i) => i.name!), outputs: graph.output!.map((o) => o.name!), initializers: new Set(graph.initializer!.map((t) => t.name!)) };
}

describe('the exported Llama-family student', () => {
  it.each(FOLDERS)('%s, untrained, goes out as transformers wrote it, with a self-contained ONNX decoder the lab reads back', async (name) => {
    const folder = await readFixture(name);
    const files = trainedStudentFolder(folder, folder.weights!);
    expect([...files.keys()].sort()).toEqual(FILES);

    const source = json(fixtureFile(name, 'config.json'));
    const written = json(files.get('config.json')!);
    for (const [key, value] of Object.entries(source)) expect(written[key], key).toEqual(value);
    const added = Object.keys(written).filter((k) => !(k in source));
    // transformers 5 does not write head_dim for Qwen2 (it derives hidden_size / heads): the lab may, with that value.
    expect(added.filter((k) => k !== 'head_dim')).toEqual([]);
    if (added.includes('head_dim')) expect(written.head_dim).toBe(Number(source.hidden_size) / Number(source.num_attention_heads));
    expect(written).toMatchObject({ dtype: 'float32', architectures: [{ 'llama-tied': 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', 'llama-teacher': 'LlamaForCausalLM' }[name]] });

    expect(json(files.get('generation_config.json')!)).toEqual(json(fixtureFile(name, 'generation_config.json')));
    for (const file of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(Buffer.from(files.get(file)!).equals(Buffer.from(fixtureFile(name, file))), file).toBe(true);
    }

    const config = folder.config as LlamaConfig;
    const onnx = onnxNames(files.get('onnx/model.onnx')!);
    const cache = Array.from({ length: config.nLayer }, (_, l) => [pastKeyName(l), pastValueName(l)]).flat();
    expect(onnx.inputs).toEqual(['input_ids', 'attention_mask', 'position_ids', ...cache]);
    expect(onnx.outputs[0]).toBe('logits');
    for (const param of folder.weights!.keys()) expect(onnx.initializers.has(param), param).toBe(true);

    const dir = await writeFolder(tempDir(name), files);
    const again = await readModelFolder(await dirSource(dir), { requireWeights: true });
    expect(again.config).toEqual(folder.config);
    expect(again.generationConfig).toEqual(folder.generationConfig);
    expect(again.tokenizer.chatTemplate).toBe(folder.tokenizer.chatTemplate);
    for (const [n, data] of folder.weights!) expect(Buffer.from(again.weights!.get(n)!.buffer).equals(Buffer.from(data.buffer)), n).toBe(true);
    // What transformers.js runs (onnx/model.onnx) is the decoder the lab builds from the folder.
    expect(Buffer.from(again.onnx).equals(Buffer.from(files.get('onnx/model.onnx')!))).toBe(true);
  });

  it("a transformers 4 config.json (rope_theta, rope_scaling, torch_dtype bfloat16) goes out with rope_parameters beside them, and float32", async () => {
    const dir = tempDir('tf4');
    cpSync(join(HF_DIR, 'llama-teacher'), dir, { recursive: true });
    const v5 = json(fixtureFile('llama-teacher', 'config.json'));
    const rope = v5.rope_parameters as Record<string, unknown>;
    const { rope_parameters: _drop, dtype: _dtype, ...rest } = v5;
    const { rope_theta: theta, ...scaling } = rope;
    const v4 = { ...rest, rope_theta: theta, rope_scaling: scaling, torch_dtype: 'bfloat16', transformers_version: '4.46.0' };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(v4));
    const folder = await readModelFolder(await dirSource(dir), { requireWeights: true });
    const written = json(trainedStudentFolder(folder, folder.weights!).get('config.json')!);
    expect(written.rope_parameters).toEqual(rope); // as transformers 5 writes it
    expect(written).toMatchObject({ rope_theta: theta, rope_scaling: scaling, torch_dtype: 'float32', dtype: 'float32' });
  });

  it('trained in full on the GPU: the folder holds the trainer’s weights, and there is no adapter', async () => {
    const device = await testDevice();
    const folder = await readFixture('llama-tied');
    const trainer = await Trainer.create(device, folder.config!, folder.weights!, { schedule: { lr: 1e-2, warmupSteps: 0, totalSteps: 1, schedule: 'constant' } });
    try {
      await trainer.accumulate(trainingSequences(), { kind: 'ce' });
      await trainer.applyStep();
      const weights = await trainer.readWeights();
      expect(await trainedAdapterFolder(folder, trainer)).toBeNull();
      const dir = await writeFolder(tempDir('full'), trainedStudentFolder(folder, weights));
      const again = await readModelFolder(await dirSource(dir), { requireWeights: true });
      let moved = 0;
      for (const [n, data] of weights) {
        expect(Buffer.from(again.weights!.get(n)!.buffer).equals(Buffer.from(data.buffer)), n).toBe(true);
        const before = folder.weights!.get(n)!;
        for (let i = 0; i < data.length; i++) moved = Math.max(moved, Math.abs(data[i] - before[i]));
      }
      expect(moved).toBeGreaterThan(1e-3); // the step changed the weights the folder holds
    } finally {
      trainer.destroy();
    }
  });

  it.each(['llama-tied', 'qwen3'] as const)(
    '%s, LoRA on the GPU: the folder holds W + s·A·B as PEFT merges the adapter written beside it, which has PEFT’s names and shapes',
    async (name) => {
      const device = await testDevice();
      const folder = await readFixture(name);
      const trainer = await Trainer.create(device, folder.config!, folder.weights!, {
        lora: { rank: 4, alpha: 8, f16Base: false },
        schedule: { lr: 1e-2, warmupSteps: 0, totalSteps: 2, schedule: 'constant' },
      });
      try {
        // Two steps: B leaves 0 at the first, A moves at the second.
        for (let s = 0; s < 2; s++) {
          await trainer.accumulate(trainingSequences(), { kind: 'ce' });
          await trainer.applyStep();
        }
        const adapterFiles = (await trainedAdapterFolder(folder, trainer))!;
        expect([...adapterFiles.keys()].sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
        expect(json(adapterFiles.get(ADAPTER_CONFIG)!)).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, base_model_name_or_path: name, fan_in_fan_out: false, task_type: 'CAUSAL_LM' });
        const adapter = readSafetensors(adapterFiles.get(ADAPTER_WEIGHTS)!, 'adapter');
        const peft = readSafetensors(fixtureFile(name, 'lora-init.safetensors'), 'lora-init');
        expect([...adapter.tensors].map(([n, t]) => [n, t.dtype, t.shape])).toEqual([...peft.tensors].map(([n, t]) => [n, t.dtype, t.shape]));

        // The student folder, read back by our own loader, in torch's layout: W_torch [out, in].
        const dir = await writeFolder(tempDir(`lora-${name}`), trainedStudentFolder(folder, await trainer.readWeights()));
        const student = readSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'student');
        const base = readSafetensors(fixtureFile(name, 'model.safetensors'), 'base');
        const f32 = (t: { bytes: Uint8Array }) => new Float32Array(t.bytes.slice().buffer);
        let worst = 0;
        let delta = 0;
        for (const [tensor, t] of base.tensors) {
          const merged = f32(student.tensors.get(tensor)!);
          const w = f32(t);
          const a = adapter.tensors.get(peftTensorName(tensor, 'A'));
          if (!a) {
            expect(merged, tensor).toEqual(w); // frozen
            continue;
          }
          const la = f32(a); // [r, in]
          const lb = f32(adapter.tensors.get(peftTensorName(tensor, 'B'))!); // [out, r]
          const [out, inDim] = t.shape;
          for (let o = 0; o < out; o++) {
            for (let i = 0; i < inDim; i++) {
              let d = 0;
              for (let r = 0; r < 4; r++) d += lb[o * 4 + r] * la[r * inDim + i];
              worst = Math.max(worst, Math.abs(merged[o * inDim + i] - (w[o * inDim + i] + 2 * d)));
              delta = Math.max(delta, Math.abs(2 * d));
            }
          }
        }
        console.log(`${name} LoRA export: max |merged − (W + s·lora_B·lora_A)| = ${worst.toExponential(2)}, largest |s·B·A| = ${delta.toExponential(2)}`);
        expect(delta).toBeGreaterThan(1e-3);
        expect(worst).toBeLessThan(1e-6);
      } finally {
        trainer.destroy();
      }
    },
  );
});
