/**
 * The PEFT adapter writer (workers/train/peft-adapter.ts) against files PEFT 0.21 wrote:
 *   - adapter_model.safetensors: test/fixtures/hf/<llama-tied|qwen2|qwen3>/lora-init.safetensors
 *     (get_peft_model_state_dict, saved with {"format": "pt"}): the same tensor names in the same
 *     order, shapes, dtypes, and the same bytes when given the same factors; read back, the
 *     factors are the ones written;
 *   - adapter_config.json: test/fixtures/peft/<llama-tied|gpt2-small>.adapter_config.json
 *     (PeftModel.save_pretrained; make.py there): every key and value (target_modules as a set,
 *     since PEFT writes a Python set's arbitrary order);
 *   - the factors' meaning: PEFT's merge W_torch + s·lora_B·lora_A, transposed to the lab's
 *     [in, out], is the lab's W + s·A·B;
 *   - a LoRA trainer (GPT-2 on the GPU, the family that trains today) exports factors whose
 *     merge onto the base is the trainer's effective weights, which the student folder holds.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_DIR, fixtureConfig, fixtureLoraInit, TRAINED_FOLDERS } from './hf-fixtures';
import { llamaParamSpecs } from '../../workers/models/llama/params';
import { gpt2ConfigFromJson } from '../../workers/models/gpt2/config';
import { gpt2ParamSpecs, randomGpt2Params } from '../../workers/models/gpt2/params';
import { readSafetensors, writeSafetensors } from '../../workers/models/safetensors';
import type { ParamSpec } from '../../workers/models/family';
import {
  ADAPTER_CONFIG, ADAPTER_WEIGHTS, peftAdapterConfig, peftAdapterFiles, peftTensorName, readPeftAdapter, trainerLoraAdapter, writePeftAdapterWeights, type PeftAdapter,
} from '../../workers/train/peft-adapter';
import { Trainer } from '../../workers/train/trainer';
import { testDevice } from './gpu';
import { smallGpt2Config } from './fixtures';

const PEFT_DIR = join(__dirname, '../fixtures/peft');
const peftConfig = (name: string) => JSON.parse(readFileSync(join(PEFT_DIR, `${name}.adapter_config.json`), 'utf8')) as Record<string, unknown>;

/** reference.json's LoRA: rank 4, alpha 8 on q, k, v, o, gate, up, down (test/fixtures/hf/README.md). */
const RANK = 4;
const ALPHA = 8;

/** Deterministic values in [-1, 1) (no Math.random in tests). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function randomAdapter(specs: readonly ParamSpec[], rank: number, alpha: number, seed: number): PeftAdapter {
  const factors = new Map(specs.filter((s) => s.loraTarget).map((s, i) => [s.name, { a: values(s.shape[0] * rank, seed + 2 * i), b: values(rank * s.shape[1], seed + 2 * i + 1) }]));
  return { rank, alpha, factors };
}

describe('the PEFT adapter writer', () => {
  for (const folder of TRAINED_FOLDERS) {
    it(`${folder}: adapter_model.safetensors has PEFT's names, order, shapes and dtypes, and its bytes for the same factors`, () => {
      const config = fixtureConfig(folder);
      const specs = llamaParamSpecs(config);
      const peftBytes = new Uint8Array(readFileSync(join(HF_DIR, folder, 'lora-init.safetensors')));
      const peft = readSafetensors(peftBytes, `${folder}/lora-init.safetensors`);
      // The factors in the lab's layout, read by the test helper (its own transposition).
      const factors = fixtureLoraInit(folder, config);
      const ours = writePeftAdapterWeights(specs, { rank: RANK, alpha: ALPHA, factors });
      const read = readSafetensors(ours, 'ours');
      expect([...read.tensors.keys()]).toEqual([...peft.tensors.keys()]);
      for (const [name, t] of peft.tensors) {
        const o = read.tensors.get(name)!;
        expect([name, o.dtype, o.shape]).toEqual([name, t.dtype, t.shape]);
      }
      expect(read.metadata).toEqual(peft.metadata);
      expect(Buffer.from(ours).equals(Buffer.from(peftBytes))).toBe(true);
    });
  }

  it('round-trips non-zero factors of every fixture family (Llama, Qwen2, Qwen3, GPT-2) through the two files', () => {
    const gpt2 = gpt2ConfigFromJson(JSON.parse(readFileSync(join(HF_DIR, 'gpt2-small/config.json'), 'utf8')));
    const cases: [string, ParamSpec[]][] = [...TRAINED_FOLDERS.map((f) => [f, llamaParamSpecs(fixtureConfig(f))] as [string, ParamSpec[]]), ['gpt2-small', gpt2ParamSpecs(gpt2)]];
    for (const [name, specs] of cases) {
      const adapter = randomAdapter(specs, 3, 5, 7);
      const files = peftAdapterFiles(specs, adapter, name);
      expect([...files.keys()].sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
      const back = readPeftAdapter(specs, files.get(ADAPTER_CONFIG)!, files.get(ADAPTER_WEIGHTS)!, name);
      expect([back.rank, back.alpha]).toEqual([3, 5]);
      expect([...back.factors.keys()]).toEqual([...adapter.factors.keys()]);
      for (const [w, f] of adapter.factors) {
        expect(back.factors.get(w)!.a).toEqual(f.a);
        expect(back.factors.get(w)!.b).toEqual(f.b);
      }
    }
  });

  it("adapter_config.json has every key and value PEFT 0.21's save_pretrained wrote (Llama: Linear; GPT-2: Conv1D, fan_in_fan_out)", () => {
    const gpt2 = gpt2ConfigFromJson(JSON.parse(readFileSync(join(HF_DIR, 'gpt2-small/config.json'), 'utf8')));
    const cases: [string, ParamSpec[]][] = [['llama-tied', llamaParamSpecs(fixtureConfig('llama-tied'))], ['gpt2-small', gpt2ParamSpecs(gpt2)]];
    for (const [name, specs] of cases) {
      const expected = peftConfig(name);
      const files = peftAdapterFiles(specs, randomAdapter(specs, RANK, ALPHA, 1), name);
      const text = new TextDecoder().decode(files.get(ADAPTER_CONFIG));
      const ours = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(ours)).toEqual(Object.keys(expected)); // the same keys, sorted as PEFT sorts them
      const set = (x: unknown) => [...(x as string[])].sort();
      expect(set(ours.target_modules)).toEqual(set(expected.target_modules));
      expect({ ...ours, target_modules: null }).toEqual({ ...expected, target_modules: null });
      expect(ours).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: RANK, lora_alpha: ALPHA, lora_dropout: 0, bias: 'none', inference_mode: true, base_model_name_or_path: name, fan_in_fan_out: name === 'gpt2-small' });
    }
    expect(peftConfig('llama-tied').target_modules).toHaveLength(7);
  });

  it("PEFT's merge of the written factors (W_torch + s·lora_B·lora_A) is the lab's W + s·A·B", () => {
    const config = fixtureConfig('qwen3');
    const specs = llamaParamSpecs(config);
    const adapter = randomAdapter(specs, 2, 6, 3); // s = 3
    const file = readSafetensors(writePeftAdapterWeights(specs, adapter), 'ours');
    for (const spec of specs.filter((s) => s.loraTarget)) {
      const [inDim, outDim] = spec.shape;
      const { a, b } = adapter.factors.get(spec.name)!;
      const la = new Float32Array(file.tensors.get(peftTensorName(spec.name, 'A'))!.bytes.slice().buffer); // [r, in]
      const lb = new Float32Array(file.tensors.get(peftTensorName(spec.name, 'B'))!.bytes.slice().buffer); // [out, r]
      let worst = 0;
      for (let i = 0; i < inDim; i++) {
        for (let o = 0; o < outDim; o++) {
          let lab = 0;
          let torch = 0;
          for (let r = 0; r < 2; r++) {
            lab += a[i * 2 + r] * b[r * outDim + o];
            torch += lb[o * 2 + r] * la[r * inDim + i]; // (lora_B · lora_A)[o, i]
          }
          worst = Math.max(worst, Math.abs(3 * lab - 3 * torch));
        }
      }
      expect(worst).toBe(0);
    }
  });

  it('refuses what it cannot read or write, each in one sentence naming the file and the tensor', () => {
    const config = fixtureConfig('llama-tied');
    const specs = llamaParamSpecs(config);
    const files = peftAdapterFiles(specs, randomAdapter(specs, RANK, ALPHA, 2), 'llama-tied');
    const cfg = files.get(ADAPTER_CONFIG)!;
    const weights = readSafetensors(files.get(ADAPTER_WEIGHTS)!, 'w');
    const rewrite = (edit: (entries: [string, { dtype: 'F32'; shape: number[]; data: Uint8Array }][]) => void) => {
      const entries = [...weights.tensors].map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.bytes }] as [string, { dtype: 'F32'; shape: number[]; data: Uint8Array }]);
      edit(entries);
      return writeSafetensors(entries);
    };
    const q = peftTensorName('model.layers.0.self_attn.q_proj.weight', 'B');
    expect(() => readPeftAdapter(specs, cfg, rewrite((e) => e.splice(e.findIndex(([n]) => n === q), 1)), 'run/adapter')).toThrow(
      `run/adapter/adapter_model.safetensors: tensor "${q}" is missing (its partner base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight is there)`,
    );
    expect(() => readPeftAdapter(specs, cfg, rewrite((e) => (e.find(([n]) => n === q)![1].shape = [32, 8])), 'run/adapter')).toThrow(
      `tensor "${q}" has shape [32, 8], but r 4 on model.layers.0.self_attn.q_proj.weight needs [64, 4]`,
    );
    expect(() => readPeftAdapter(specs, cfg, rewrite((e) => e.push(['base_model.model.lm_head.lora_A.weight', { dtype: 'F32', shape: [1], data: new Uint8Array(4) }])), 'run/adapter')).toThrow(
      'tensor "base_model.model.lm_head.lora_A.weight" is not a LoRA factor of a weight this model lets LoRA adapt',
    );
    const dora = new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(cfg)), use_dora: true }));
    expect(() => readPeftAdapter(specs, dora, files.get(ADAPTER_WEIGHTS)!, 'run/adapter')).toThrow('run/adapter/adapter_config.json: use_dora is true; the lab applies plain LoRA (W + alpha/r·A·B) only');
    expect(() => peftAdapterConfig(specs.filter((s) => !s.loraTarget), RANK, ALPHA, 'x')).toThrow('this model has no weights LoRA can adapt');
    const short = randomAdapter(specs, RANK, ALPHA, 2);
    short.factors.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => writePeftAdapterWeights(specs, short)).toThrow('the LoRA factors of model.layers.1.mlp.up_proj.weight are missing');
  });

  it("a LoRA trainer's adapter, merged onto the base, is the trainer's effective weights (GPT-2 on the GPU, 2 steps)", async () => {
    const device = await testDevice();
    const config = smallGpt2Config();
    const params = randomGpt2Params(config, { seed: 21, scheme: 'test' });
    const specs = gpt2ParamSpecs(config);
    // rank 2, alpha 6 (s = 3); an f32 base so that the base here is the base the trainer merges.
    const trainer = await Trainer.create(device, config, params, { lora: { rank: 2, alpha: 6, f16Base: false }, schedule: { lr: 3e-2, warmupSteps: 0, totalSteps: 2, schedule: 'constant' } });
    try {
      const seqs = [{ tokens: [1, 2, 3, 4, 5, 6], weights: [0, 0.25, 0.25, 0.25, 0.25, 0] }];
      for (let step = 0; step < 2; step++) {
        await trainer.accumulate(seqs, { kind: 'ce' });
        await trainer.applyStep();
      }
      const adapter = (await trainerLoraAdapter(trainer))!;
      expect([adapter.rank, adapter.alpha]).toEqual([2, 6]);
      const files = peftAdapterFiles(specs, adapter, 'gpt2-test');
      const back = readPeftAdapter(specs, files.get(ADAPTER_CONFIG)!, files.get(ADAPTER_WEIGHTS)!);
      const merged = await trainer.readWeights();
      let worst = 0;
      let moved = 0;
      for (const spec of specs) {
        const base = params.get(spec.name)!;
        const eff = merged.get(spec.name)!;
        const f = back.factors.get(spec.name);
        if (!f) {
          expect(eff).toEqual(base); // not adapted: frozen
          continue;
        }
        const [inDim, outDim] = spec.shape;
        for (let i = 0; i < inDim; i++) {
          for (let o = 0; o < outDim; o++) {
            let d = 0;
            for (let r = 0; r < 2; r++) d += f.a[i * 2 + r] * f.b[r * outDim + o];
            const want = base[i * outDim + o] + 3 * d;
            worst = Math.max(worst, Math.abs(eff[i * outDim + o] - want));
            moved = Math.max(moved, Math.abs(3 * d));
          }
        }
      }
      console.log(`LoRA merge: max |W_eff − (W + s·A·B)| = ${worst.toExponential(2)}, largest |s·A·B| = ${moved.toExponential(2)}`);
      expect(moved).toBeGreaterThan(1e-3); // B moved away from 0: the check below sees the factors
      expect(worst).toBeLessThan(1e-6);
    } finally {
      trainer.destroy();
    }
  });
});
