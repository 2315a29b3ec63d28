/**
 * The loaders under hostile input (issue 13, untrusted input): a short fuzz run through the same
 * runner as `npm run fuzz` (worker threads, a time limit per case), and the inputs the full run
 * found, each pinned as a case of its own: every one is refused with the lab's typed error and a
 * sentence, none crashes, hangs or allocates by the gigabyte.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatReport, runFuzz } from '../fuzz/run';
import { KINDS } from '../fuzz/kinds';
import { memorySource, seedFolders } from '../fuzz/targets';
import { deeplyNestedOnnx } from '../fuzz/mutate';
import { loadTokenizer, tokenizerFromJson } from '../../workers/models/tokenizer';
import { ModelFolderError } from '../../workers/models/source';
import { readSafetensors, SafetensorsError } from '../../workers/models/safetensors';
import { gpt2ConfigFromJson, Gpt2ConfigError } from '../../workers/models/gpt2/config';
import { llamaConfigFromJson, LlamaConfigError } from '../../workers/models/llama/config';
import { readModelFolder } from '../../workers/models/folder';
import onnxProto from 'onnx-proto';

const enc = new TextEncoder();
const fixture = (path: string) => readFileSync(new URL(`../fixtures/hf/${path}`, import.meta.url));
const deep = (n: number) => JSON.parse(`${'['.repeat(n)}${']'.repeat(n)}`) as unknown;

describe('fuzzing the loaders', () => {
  it('a few hundred mutated config.json, tokenizer.json, safetensors and ONNX files: accepted or refused with a typed error, none hangs or crashes', async () => {
    const report = await runFuzz({ cases: 160, seed: 7, timeoutMs: 15_000 });
    const text = formatReport(report);
    expect(report.failures, text).toEqual([]);
    for (const kind of KINDS) {
      const c = report.byKind[kind];
      expect(c.cases, text).toBe(40);
      expect(c.accepted + c.refused, text).toBe(40);
    }
    // The mutations reach past the first check: each kind has refusals, and configs and
    // tokenizers that still load (the fuzzer is not only producing unparseable bytes).
    for (const kind of ['config', 'tokenizer', 'safetensors'] as const) expect(report.byKind[kind].refused, text).toBeGreaterThan(3);
    for (const kind of ['config', 'tokenizer', 'onnx'] as const) expect(report.byKind[kind].accepted, text).toBeGreaterThan(3);
    expect(report.byKind.safetensors.refusedBy.SafetensorsError, text).toBeGreaterThan(0);
  }, 120_000);
});

describe('inputs the fuzzer found', () => {
  it('a token id far past the vocabulary is refused before anything is sized by it', async () => {
    const json = JSON.parse(fixture('qwen3/tokenizer.json').toString('utf8'));
    const vocab = json.model.vocab as Record<string, number>;
    vocab[Object.keys(vocab)[5]] = 2 ** 31;
    const t0 = performance.now();
    expect(() => tokenizerFromJson(json, {}, 'forged')).toThrow(/gives a token the id 2147483648 but names only \d+ tokens/);
    expect(performance.now() - t0).toBeLessThan(1000);
    vocab[Object.keys(vocab)[5]] = -3;
    expect(() => tokenizerFromJson(json, {}, 'forged')).toThrow(ModelFolderError);
  });

  it('a vocabulary that is a megabyte string, not a table, is refused at once (the library took 18 s over it)', () => {
    const json = JSON.parse(fixture('qwen3/tokenizer.json').toString('utf8'));
    json.model.vocab = 'A'.repeat(1 << 20);
    const t0 = performance.now();
    expect(() => tokenizerFromJson(json, {}, 'stringy')).toThrow(/gives "model"."vocab" as a string, not a table of tokens/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('a tokenizer whose parts break on the first encode is refused when it loads', () => {
    const json = JSON.parse(fixture('qwen3/tokenizer.json').toString('utf8'));
    json.pre_tokenizer = { type: 'Split', pattern: { Regex: '.' }, behavior: 7, invert: false };
    expect(() => tokenizerFromJson(json, {}, 'broken')).toThrow(/broken loads but cannot encode and decode text/);
  });

  it('decoding no tokens gives empty text (the library refuses an empty list)', async () => {
    const files = seedFolders().find((f) => f.name === 'qwen3')!.files;
    const tokenizer = await loadTokenizer(memorySource(files, 'qwen3'));
    expect(tokenizer.decode([])).toBe('');
  });

  it('a chat_template list with nulls in it is read, not a TypeError', () => {
    const json = JSON.parse(fixture('qwen3/tokenizer.json').toString('utf8'));
    expect(tokenizerFromJson(json, { chat_template: [null, 3, { name: 'default', template: 'T' }] }, 'x').chatTemplate).toBe('T');
    expect(tokenizerFromJson(json, { chat_template: [null] }, 'x').chatTemplate).toBeNull();
  });

  it('a config field nested 200,000 deep is one sentence, not a stack overflow', () => {
    const gpt2 = { ...JSON.parse(fixture('gpt2-small/config.json').toString('utf8')), n_head: deep(200_000) };
    expect(() => gpt2ConfigFromJson(gpt2)).toThrow(Gpt2ConfigError);
    expect(() => gpt2ConfigFromJson(gpt2)).toThrow(/field "n_head" must be an integer in 1\.\.16777216; got a list nested too deeply to show/);
    const llama = { ...JSON.parse(fixture('qwen3/config.json').toString('utf8')), hidden_size: deep(200_000) };
    expect(() => llamaConfigFromJson(llama)).toThrow(LlamaConfigError);
    // (seed 2 of the full run: a rope_type nested deep overflowed the stack in String().)
    const rope = { ...JSON.parse(fixture('qwen3/config.json').toString('utf8')), rope_parameters: { rope_theta: 1e6, rope_type: deep(200_000) } };
    expect(() => llamaConfigFromJson(rope)).toThrow(/field "rope_parameters.rope_type" is a list nested too deeply to show, which the lab does not implement/);
  });

  it('a safetensors header with a shape nested 200,000 deep, a forged header length, or giant offsets is a SafetensorsError', () => {
    const header = (h: unknown) => {
      const json = typeof h === 'string' ? enc.encode(h) : enc.encode(JSON.stringify(h));
      const out = new Uint8Array(8 + json.length + 16);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };
    const nested = `{"w":{"dtype":"F32","shape":${'['.repeat(200_000)}${']'.repeat(200_000)},"data_offsets":[0,16]}}`;
    expect(() => readSafetensors(header(nested))).toThrow(/shape \(a list nested too deeply to show\)/);
    expect(() => readSafetensors(header({ w: { dtype: 'F32', shape: [2 ** 31, 2 ** 31, 2 ** 31], data_offsets: [0, 16] } }))).toThrow(SafetensorsError);
    expect(() => readSafetensors(header({ w: { dtype: 'F32', shape: [2 ** 50], data_offsets: [0, 2 ** 52] } }))).toThrow(/tensors cover \d+ bytes of data but the file holds 16/);
    const forged = header({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } });
    new DataView(forged.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    expect(() => readSafetensors(forged)).toThrow(/declares a 18446744073709551615-byte header/);
    const proto = readSafetensors(header('{"__metadata__":{"__proto__":"x"},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'));
    expect(Object.getPrototypeOf(proto.metadata)).toBe(Object.prototype);
    expect(proto.metadata.__proto__).toBe('x');
  });

  it('an ONNX graph whose external data lies outside its folder (../, /, C:, a URL) is refused before anything is read', async () => {
    const { onnx } = onnxProto;
    const graphNaming = (location: string) =>
      onnx.ModelProto.encode(
        onnx.ModelProto.create({
          irVersion: 8,
          graph: onnx.GraphProto.create({
            name: 'g',
            initializer: [onnx.TensorProto.create({ name: 'w', dataType: 1, dims: [4], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [onnx.StringStringEntryProto.create({ key: 'location', value: location })] })],
          }),
        }),
      ).finish();
    const files = new Map(seedFolders().find((f) => f.name === 'addition-student')!.files);
    files.delete('model.safetensors');
    const asked: string[] = [];
    const source = memorySource(files, 'evil');
    const watched = { ...source, has: (p: string) => (asked.push(p), source.has(p)), read: (p: string) => (asked.push(p), source.read(p)) };
    for (const location of ['../../secret.bin', '/etc/passwd', 'C:\\w.bin', 'https://evil.example/w.bin', 'a/../../b', '..']) {
      files.set('onnx/model.onnx', graphNaming(location));
      asked.length = 0;
      await expect(readModelFolder(watched), location).rejects.toThrow(/names its external data .*, which is not a file name beside it/);
      expect(asked.filter((p) => p.includes('secret') || p.includes('passwd') || p.includes('evil') || p.includes('..'))).toEqual([]);
    }
    // A name beside it is looked for as usual (and missing here: the sentence says so).
    files.set('onnx/model.onnx', graphNaming('model.onnx_data'));
    await expect(readModelFolder(memorySource(files, 'ok'))).rejects.toThrow(/keeps its weights in model.onnx_data, which ok does not have/);
  });

  it('an ONNX file nested 20,000 messages deep is handed over as bytes (onnxruntime parses it), the folder read as usual', async () => {
    const files = new Map(seedFolders().find((f) => f.name === 'addition-student')!.files);
    files.delete('model.safetensors');
    const onnx = deeplyNestedOnnx(20_000);
    files.set('onnx/model.onnx', onnx);
    const folder = await readModelFolder(memorySource(files, 'deep'));
    expect(folder.onnx).toBe(onnx);
  });
});
