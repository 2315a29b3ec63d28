import { describe, expect, it } from 'vitest';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { Gpt2ParamsError, gpt2ParamSpecs, randomGpt2Params } from '../../workers/models/gpt2/params';
import { readGpt2Safetensors, writeGpt2Safetensors } from '../../workers/models/gpt2/weights';
import { readSafetensors, SafetensorsError, tensorToFloat32, writeSafetensors, type TensorToWrite } from '../../workers/models/safetensors';

const CONFIG: Gpt2Config = {
  modelType: 'gpt2', nLayer: 2, nHead: 3, nEmbd: 24, nInner: 96, nPositions: 40, vocabSize: 131,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function safetensorsError(bytes: Uint8Array): SafetensorsError {
  try {
    readSafetensors(bytes, 'ckpt/model.safetensors');
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as Error).message).toMatch(/^ckpt\/model\.safetensors: /);
    return e as SafetensorsError;
  }
  throw new Error('expected the file to be rejected');
}

/** A file with a hand-written header (as another writer might produce it). */
function rawFile(header: object, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors io', () => {
  it('GPT-2 weights: write → read is bit-identical, and write(read(file)) reproduces the file', () => {
    const params = randomGpt2Params(CONFIG, { seed: 7, scheme: 'test' });
    // Awkward float bit patterns must survive too: −0, a subnormal, ±∞, and a NaN with a payload.
    const special = params.get('transformer.ln_f.bias')!;
    bits(special).set([0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x7fc12345]);
    const file = writeGpt2Safetensors(CONFIG, params, { note: 'round trip' });
    const back = readGpt2Safetensors(CONFIG, file);
    expect([...back.keys()]).toEqual(gpt2ParamSpecs(CONFIG).map((s) => s.name));
    for (const [name, data] of params) expect(bits(back.get(name)!), name).toEqual(bits(data));
    const { tensors, metadata } = readSafetensors(file);
    expect(metadata).toEqual({ format: 'pt', note: 'round trip' });
    const rewritten = writeSafetensors([...tensors].map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape, data: t.bytes }] as [string, TensorToWrite]), metadata);
    expect(rewritten).toEqual(file);
    // 8-byte aligned data section, as the reference writer does.
    expect(Number(new DataView(file.buffer).getBigUint64(0, true)) % 8).toBe(0);
  });

  it('reads a Hugging Face GPT-2 checkpoint layout: no "transformer." prefix, attn.bias buffers, tied lm_head', () => {
    const params = randomGpt2Params(CONFIG, { seed: 8, scheme: 'hf' });
    const entries: [string, TensorToWrite][] = [];
    for (const spec of gpt2ParamSpecs(CONFIG)) entries.push([spec.name.replace(/^transformer\./, ''), { dtype: 'F32', shape: spec.shape, data: params.get(spec.name)! }]);
    for (let l = 0; l < CONFIG.nLayer; l++) {
      const n = CONFIG.nPositions;
      entries.push([`h.${l}.attn.bias`, { dtype: 'U8', shape: [1, 1, n, n], data: new Uint8Array(n * n).fill(1) }]);
      entries.push([`h.${l}.attn.masked_bias`, { dtype: 'F32', shape: [], data: new Float32Array([-1e4]) }]);
    }
    entries.push(['lm_head.weight', { dtype: 'F32', shape: [CONFIG.vocabSize, CONFIG.nEmbd], data: params.get('transformer.wte.weight')! }]);
    const back = readGpt2Safetensors(CONFIG, writeSafetensors(entries.reverse(), { format: 'pt' }));
    expect(back.size).toBe(params.size);
    for (const [name, data] of params) expect(bits(back.get(name)!), name).toEqual(bits(data));
  });

  it('rejects checkpoints that do not fit the config, naming the tensor', () => {
    const params = randomGpt2Params(CONFIG, { seed: 9, scheme: 'hf' });
    const entries = () => gpt2ParamSpecs(CONFIG).map((s) => [s.name, { dtype: 'F32', shape: s.shape, data: params.get(s.name)! }] as [string, TensorToWrite]);
    const reject = (list: [string, TensorToWrite][], pattern: RegExp) => {
      expect(() => readGpt2Safetensors(CONFIG, writeSafetensors(list), 'ckpt/model.safetensors')).toThrow(Gpt2ParamsError);
      expect(() => readGpt2Safetensors(CONFIG, writeSafetensors(list), 'ckpt/model.safetensors')).toThrow(pattern);
    };
    reject(entries().filter(([n]) => n !== 'transformer.h.1.mlp.c_fc.bias'), /ckpt\/model\.safetensors: is missing 1 GPT-2 parameter\(s\): transformer\.h\.1\.mlp\.c_fc\.bias/);
    const wrongShape = entries();
    const at = wrongShape.findIndex(([n]) => n === 'transformer.h.0.attn.c_attn.weight');
    wrongShape[at] = [wrongShape[at][0], { ...wrongShape[at][1], shape: [...wrongShape[at][1].shape].reverse() }];
    reject(wrongShape, /tensor "transformer\.h\.0\.attn\.c_attn\.weight" has shape \[72,24\], config\.json implies \[24,72\]/);
    reject([...entries(), ['transformer.h.2.ln_1.weight', { dtype: 'F32', shape: [24], data: new Float32Array(24) }]], /tensor "transformer\.h\.2\.ln_1\.weight" is not a parameter/);
    reject([...entries(), ['lm_head.weight', { dtype: 'F32', shape: [131, 24], data: new Float32Array(131 * 24) }]], /lm_head\.weight" differs from transformer\.wte\.weight/);
    reject([...entries(), ['h.0.ln_1.weight', { dtype: 'F32', shape: [24], data: new Float32Array(24) }]], /appears twice/);
  });

  it('widens F16 and BF16 exactly, and refuses integer weights', () => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x8000]); // 1, −2, 2^−24, 65504, ∞, −0
    const bf16 = new Uint16Array([0x3f80, 0xc0a0, 0x0001]); // 1, −5, 2^−133 (bf16 subnormal)
    const file = writeSafetensors([
      ['h', { dtype: 'F16', shape: [6], data: f16 }],
      ['b', { dtype: 'BF16', shape: [3], data: bf16 }],
      ['i', { dtype: 'I32', shape: [1], data: new Int32Array([3]) }],
    ]);
    const { tensors } = readSafetensors(file);
    expect([...tensorToFloat32(tensors.get('h')!, 'h')]).toEqual([1, -2, 2 ** -24, 65504, Infinity, -0]);
    expect([...tensorToFloat32(tensors.get('b')!, 'b')]).toEqual([1, -5, 2 ** -133]);
    expect(() => tensorToFloat32(tensors.get('i')!, 'i', 'x.safetensors')).toThrow(/x\.safetensors: tensor "i" has dtype I32/);
  });

  it('accepts a header padded with spaces, and a file with metadata only', () => {
    const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    const { tensors } = readSafetensors(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data, 5));
    expect([...tensorToFloat32(tensors.get('w')!, 'w')]).toEqual([1.5, -2]);
    expect(readSafetensors(rawFile({ __metadata__: { format: 'pt' } }, new Uint8Array(0))).tensors.size).toBe(0);
  });

  it('rejects corrupt files with an error naming the file', () => {
    const good = writeGpt2Safetensors(CONFIG, randomGpt2Params(CONFIG, { seed: 1, scheme: 'hf' }));
    const data = new Uint8Array(16);
    const f32 = (offsets: number[], shape = [2]) => ({ dtype: 'F32', shape, data_offsets: offsets });
    expect(safetensorsError(new Uint8Array(5)).message).toMatch(/is 5 bytes long/);
    expect(safetensorsError(good.subarray(0, 100)).message).toMatch(/declares a \d+-byte header but only 92 bytes follow/);
    expect(safetensorsError(good.subarray(0, good.length - 4)).message).toMatch(/truncated or padded file/);
    const hugeHeader = new Uint8Array(good);
    new DataView(hugeHeader.buffer).setBigUint64(0, 1n << 60n, true);
    expect(safetensorsError(hugeHeader).message).toMatch(/declares a \d+-byte header/);
    const badJson = new Uint8Array(good);
    badJson[9] = 0x7b; // '{{'
    expect(safetensorsError(badJson).message).toMatch(/header is not valid UTF-8 JSON/);
    expect(safetensorsError(rawFile([1, 2], new Uint8Array(0))).message).toMatch(/header is not a JSON object/);
    expect(safetensorsError(rawFile({ a: f32([0, 8]), b: f32([12, 20]) }, new Uint8Array(20))).message).toMatch(/tensor "b" starts at byte 12 of the data, expected 8/);
    expect(safetensorsError(rawFile({ a: f32([0, 8]), b: f32([4, 12]) }, new Uint8Array(12))).message).toMatch(/tensor "b" starts at byte 4/);
    expect(safetensorsError(rawFile({ a: f32([0, 12]) }, data)).message).toMatch(/tensor "a": 12 bytes for F32 shape \[2\], which needs 8/);
    expect(safetensorsError(rawFile({ a: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, data)).message).toMatch(/unknown dtype "F33"/);
    expect(safetensorsError(rawFile({ a: f32([0, 8], [2, -1]) }, data)).message).toMatch(/shape \[2,-1\] is not a list/);
    expect(safetensorsError(rawFile({ a: f32([8, 0]) }, data)).message).toMatch(/data_offsets \[8,0\]/);
    expect(safetensorsError(rawFile({ __metadata__: { format: 1 } }, new Uint8Array(0))).message).toMatch(/"__metadata__"."format" is not a string/);
  });

  it('refuses to write a tensor whose bytes do not match its shape, or a repeated name', () => {
    expect(() => writeSafetensors([['a', { dtype: 'F32', shape: [3], data: new Float32Array(2) }]])).toThrow(/"a" has 8 bytes, F32 \[3\] needs 12/);
    expect(() => writeSafetensors([['a', { dtype: 'F32', shape: [1], data: new Float32Array(1) }], ['a', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]])).toThrow(/reserved or repeated/);
  });
});
