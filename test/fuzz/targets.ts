/**
 * What the fuzzer feeds and what it calls: the real files of test/fixtures/hf/ and models/ as
 * seeds, one mutated file per case, and the lab's own loaders on it, as the lab calls them:
 *
 *   config       every family's config reader (gpt2ConfigFromJson, parseGpt2Config,
 *                llamaConfigFromJson) and readModelFolder on an in-memory folder
 *   tokenizer    loadTokenizer (tokenizer.json or tokenizer_config.json mutated), then encode
 *                and decode of a short prompt when it loads
 *   safetensors  readSafetensors, the folder's family readSafetensors with its real config, and
 *                (one case in four) readModelFolder with the mutated model.safetensors
 *   onnx         readModelFolder of a folder that runs its onnx/model.onnx (a model_type no
 *                family reads, and a family folder without model.safetensors), then
 *                ModelProto.decode of onnx-proto, the decoder the lab builds its graphs with
 *
 * A case's outcome: accepted, refused with one of the lab's typed errors, or a failure: any
 * other exception (TypeError, RangeError, a JSON SyntaxError, …). Hangs and out-of-memory are
 * caught by the runner (run.ts), which runs cases in worker threads with a time limit.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { Rng } from '../../workers/random/rng';
import { ModelFolderError, type ModelSource } from '../../workers/models/source';
import { readModelFolder } from '../../workers/models/folder';
import { loadTokenizer } from '../../workers/models/tokenizer';
import { readSafetensors, SafetensorsError } from '../../workers/models/safetensors';
import { gpt2ConfigFromJson, parseGpt2Config, Gpt2ConfigError } from '../../workers/models/gpt2/config';
import { llamaConfigFromJson, LlamaConfigError } from '../../workers/models/llama/config';
import { familyOf } from '../../workers/models/registry';
import { Gpt2ParamsError } from '../../workers/models/gpt2/params';
import { ModelFileError } from '../../workers/models/decoder-session';
import { externalDataLocations } from '../../workers/ort/external-data';
import { int, mutateBytes, mutateJson, mutateProtobuf, mutateSafetensors, pick } from './mutate';

import { KINDS, type Kind } from './kinds';

export { KINDS, type Kind };

/** The lab's typed errors: a refusal with a sentence, not a crash. */
export const TYPED_ERRORS = [ModelFolderError, Gpt2ConfigError, LlamaConfigError, SafetensorsError, Gpt2ParamsError, ModelFileError] as const;

export type Outcome = (
  | { result: 'accepted' }
  | { result: 'refused'; error: string }
  /** An exception that is not one of the lab's typed errors: a bug to fix. */
  | { result: 'untyped'; error: string; where: string }
) & {
  /** onnx cases: what onnx-proto's ModelProto.decode made of the bytes ("decoded", "threw RangeError"). */
  decode?: string;
};

const ROOT = resolve(import.meta.dirname, '..', '..');
const SEED_DIRS = [join(ROOT, 'test', 'fixtures', 'hf'), join(ROOT, 'models')];

interface Folder {
  name: string;
  files: Map<string, Uint8Array>;
}

let seedsCache: Folder[] | null = null;

/** The seed folders: every fixture and built-in model folder, files as bytes. */
export function seedFolders(): Folder[] {
  if (seedsCache) return seedsCache;
  const folders: Folder[] = [];
  for (const dir of SEED_DIRS) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const folder = join(dir, entry.name);
      if (!entry.isDirectory() || !existsSync(join(folder, 'config.json'))) continue;
      const files = new Map<string, Uint8Array>();
      for (const path of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors', 'onnx/model.onnx']) {
        if (existsSync(join(folder, path))) files.set(path, new Uint8Array(readFileSync(join(folder, path))));
      }
      folders.push({ name: entry.name, files });
    }
  }
  if (!folders.length) throw new Error('fuzz: no seed folders found under test/fixtures/hf/ or models/');
  seedsCache = folders;
  return folders;
}

/** A ModelSource over files in memory, as the page's picked folder or a URL would give them. */
export function memorySource(files: ReadonlyMap<string, Uint8Array>, label: string): ModelSource {
  return {
    label,
    async has(path) {
      return files.has(path);
    },
    async read(path) {
      const bytes = files.get(path);
      if (!bytes) throw new ModelFolderError(`${path} is missing from ${label}.`, label, path);
      return bytes;
    },
  };
}

export interface FuzzCase {
  index: number;
  kind: Kind;
  seedFolder: string;
  /** The file that was mutated. */
  file: string;
  bytes: Uint8Array;
}

/** Case `index` of a run seeded with `seed`: the same case on every machine and in every worker. */
export function makeCase(seed: number, index: number): FuzzCase {
  const rng = Rng.forStream(seed, index);
  const kind = KINDS[index % KINDS.length];
  const seeds = seedFolders();
  const withFile = (path: string) => seeds.filter((f) => f.files.has(path));
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  switch (kind) {
    case 'config': {
      const folder = pick(rng, seeds);
      // Mostly config.json; now and then generation_config.json, which readModelFolder reads too.
      const file = rng.next() < 0.85 || !folder.files.has('generation_config.json') ? 'config.json' : 'generation_config.json';
      const text = dec.decode(folder.files.get(file)!);
      const bytes = rng.next() < 0.75 ? enc.encode(mutateJson(text, rng)) : mutateBytes(enc.encode(text), rng);
      return { index, kind, seedFolder: folder.name, file, bytes };
    }
    case 'tokenizer': {
      const folder = pick(rng, withFile('tokenizer.json'));
      const file = rng.next() < 0.8 || !folder.files.has('tokenizer_config.json') ? 'tokenizer.json' : 'tokenizer_config.json';
      const text = dec.decode(folder.files.get(file)!);
      const bytes = rng.next() < 0.75 ? enc.encode(mutateJson(text, rng)) : mutateBytes(enc.encode(text), rng);
      return { index, kind, seedFolder: folder.name, file, bytes };
    }
    case 'safetensors': {
      const folder = pick(rng, withFile('model.safetensors'));
      return { index, kind, seedFolder: folder.name, file: 'model.safetensors', bytes: mutateSafetensors(folder.files.get('model.safetensors')!, rng) };
    }
    case 'onnx': {
      const folder = pick(rng, withFile('onnx/model.onnx'));
      const seedBytes = folder.files.get('onnx/model.onnx')!;
      // One case in five: the real graph with an initializer moved to external data at a hostile location.
      const bytes = rng.next() < 0.2 ? withExternalData(seedBytes, rng) : mutateProtobuf(seedBytes, rng);
      return { index, kind, seedFolder: folder.name, file: 'onnx/model.onnx', bytes };
    }
  }
}

const HOSTILE_LOCATIONS = [
  'model.onnx_data', 'model.onnx_data_1', '../model.safetensors', '../../../../etc/passwd', '/etc/passwd', 'C:\\Windows\\x', 'https://example.invalid/w',
  '//example.invalid/w', 'a/../../b', '.', '..', '', '\u0000', '%2e%2e/x', 'x?y=1', 'x#y', 'A'.repeat(100_000), '__proto__', 'constructor', 'onnx/model.onnx',
];

/** The graph with one initializer (or a new one) stored as external data at a location from HOSTILE_LOCATIONS. */
function withExternalData(bytes: Uint8Array, rng: Rng): Uint8Array {
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph ?? onnx.GraphProto.create({ name: 'g' });
  const location = pick(rng, HOSTILE_LOCATIONS);
  const entries = [onnx.StringStringEntryProto.create({ key: 'location', value: location })];
  if (rng.next() < 0.5) entries.push(onnx.StringStringEntryProto.create({ key: pick(rng, ['offset', 'length']), value: pick(rng, ['-1', '1e30', '18446744073709551615', 'x']) }));
  const tensor = graph.initializer?.length && rng.next() < 0.7 ? graph.initializer[int(rng, graph.initializer.length)] : onnx.TensorProto.create({ name: 'fuzz', dataType: 1, dims: [4] });
  tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  tensor.externalData = entries;
  tensor.rawData = new Uint8Array(0);
  if (!graph.initializer?.includes(tensor)) graph.initializer = [...(graph.initializer ?? []), tensor];
  model.graph = graph;
  return onnx.ModelProto.encode(model).finish();
}

const isTyped = (e: unknown) => TYPED_ERRORS.some((T) => e instanceof T);
const describeError = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : `non-Error thrown: ${String(e)}`).slice(0, 300);

/** Runs one loader call: its outcome, typed refusals told apart from everything else. */
async function attempt(where: string, call: () => unknown): Promise<Outcome> {
  try {
    await call();
    return { result: 'accepted' };
  } catch (e) {
    return isTyped(e) ? { result: 'refused', error: describeError(e) } : { result: 'untyped', error: describeError(e), where };
  }
}

/** The first untyped outcome if any, else the outcome of the loader that decides (`main`). */
function combine(main: Outcome, ...others: Outcome[]): Outcome {
  return [main, ...others].find((o) => o.result === 'untyped') ?? main;
}

/** Runs one case through the loaders of its kind. */
export async function runCase(c: FuzzCase): Promise<Outcome> {
  const seed = seedFolders().find((f) => f.name === c.seedFolder)!;
  const files = new Map(seed.files);
  files.set(c.file, c.bytes);
  const label = `fuzz case ${c.index} (${c.seedFolder}, ${c.file} mutated)`;
  switch (c.kind) {
    case 'config': {
      if (c.file !== 'config.json') return attempt('readModelFolder', () => readModelFolder(memorySource(files, label)));
      const text = new TextDecoder().decode(c.bytes);
      let parsed: unknown;
      let parses = true;
      try {
        parsed = JSON.parse(text);
      } catch {
        parses = false;
      }
      const direct: Outcome[] = [await attempt('parseGpt2Config', () => parseGpt2Config(text, 'config.json'))];
      if (parses) {
        direct.push(await attempt('gpt2ConfigFromJson', () => gpt2ConfigFromJson(parsed, 'config.json')));
        direct.push(await attempt('llamaConfigFromJson', () => llamaConfigFromJson(parsed, 'config.json')));
      }
      const folder = await attempt('readModelFolder', () => readModelFolder(memorySource(files, label)));
      return combine(folder, ...direct);
    }
    case 'tokenizer': {
      let tokenizer: Awaited<ReturnType<typeof loadTokenizer>> | null = null;
      const load = await attempt('loadTokenizer', async () => {
        tokenizer = await loadTokenizer(memorySource(files, label));
      });
      if (!tokenizer) return load;
      const t = tokenizer as Awaited<ReturnType<typeof loadTokenizer>>;
      // A tokenizer that loads is used at once: encoding a prompt, reading its tokens.
      const use = await attempt('encode/decode', () => {
        const ids = t.encode('Hello, world! 12+34=46 <|im_start|>user\n');
        t.decode(ids);
        for (const id of ids.slice(0, 4)) t.tokenText(id);
      });
      return combine(load, use);
    }
    case 'safetensors': {
      const raw = await attempt('readSafetensors', () => readSafetensors(c.bytes, 'model.safetensors'));
      const configJson = JSON.parse(new TextDecoder().decode(seed.files.get('config.json')!)) as Record<string, unknown>;
      const family = familyOf(configJson.model_type);
      if (!family) return raw;
      const config = family.configFromJson(configJson, 'config.json');
      const familyRead = await attempt(`${family.name} readSafetensors`, () => family.readSafetensors(config, c.bytes, 'model.safetensors'));
      if (c.index % 16 !== 2) return combine(familyRead, raw);
      return combine(await attempt('readModelFolder', () => readModelFolder(memorySource(files, label))), familyRead, raw);
    }
    case 'onnx': {
      // Without weights the folder runs its ONNX: once as a model no family reads, once as a family folder.
      const foreign = new Map(files);
      foreign.set('config.json', new TextEncoder().encode(JSON.stringify({ model_type: 'fuzz_foreign', vocab_size: 512 })));
      foreign.delete('model.safetensors');
      const asForeign = await attempt('readModelFolder (foreign model_type)', async () => {
        const folder = await readModelFolder(memorySource(foreign, label));
        if (folder.onnx !== c.bytes) throw new Error('readModelFolder did not hand over the ONNX bytes it read');
      });
      const family = new Map(files);
      family.delete('model.safetensors');
      const asFamily = await attempt('readModelFolder (family, no safetensors)', () => readModelFolder(memorySource(family, label)));
      // The lab does not decode ONNX itself: onnxruntime-web parses it and createDecoderSession
      // names the file when it cannot. onnx-proto (protobufjs), the library the lab builds its
      // graphs with, decodes each case too, and its verdict is tallied on the side ("decode"):
      // what a future reader of ONNX in the lab would meet.
      let decode: string;
      try {
        onnxProto.onnx.ModelProto.decode(c.bytes);
        decode = 'decoded';
      } catch (e) {
        decode = e instanceof Error ? `threw ${e.name}${/call stack/i.test(e.message) ? ' (stack overflow)' : ''}` : 'threw a non-Error';
      }
      const locations = await attempt('externalDataLocations', () => externalDataLocations(c.bytes));
      return { ...combine(asForeign, asFamily, locations), decode };
    }
  }
}

/** For reports: a case's description in one line. */
export const caseLabel = (c: Pick<FuzzCase, 'index' | 'kind' | 'seedFolder' | 'file'>) => `#${c.index} ${c.kind} (${c.seedFolder}/${c.file})`;

export { int };
