/**
 * Seeded mutations of the files a person hands the lab: bytes (flips, truncation, insertions,
 * splices of hostile text), JSON values (huge and negative numbers, wrong types, deep nesting,
 * prototype-pollution keys, very long strings), safetensors headers (forged header lengths,
 * giant offsets and shapes, unknown dtypes) and protobufs (forged lengths and varints, wrong
 * wire types, deeply nested messages). Each mutator takes a seeded Rng, so a case is rebuilt
 * from (seed, index) alone: a worker thread regenerates it, and a failure is reproduced by its
 * index.
 */
import { Rng } from '../../workers/random/rng';

export const int = (rng: Rng, n: number): number => Math.floor(rng.next() * n);
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

/** Numbers that break size arithmetic: overflow, precision loss, sign, zero, fractions. */
export const HOSTILE_NUMBERS: readonly number[] = [
  0, -0, -1, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e308, -1e308,
  Number.MIN_VALUE, 0.5, 1.5, -(2 ** 31), 1 << 24, (1 << 24) + 1, 65536, 3.14159,
];

/** Tokens that are not JSON numbers but slip into hand-written files. */
const NON_JSON_NUMBERS = ['NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '0x10', '1_000', '+1', '.5', '00', '1e', '-'];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

const hugeString = (rng: Rng) => 'A'.repeat(pick(rng, [1 << 10, 1 << 16, 1 << 20]));

/** A JSON value of the wrong kind, or a hostile one of the right kind. */
export function hostileValue(rng: Rng): unknown {
  switch (int(rng, 12)) {
    case 0:
    case 1:
      return pick(rng, HOSTILE_NUMBERS);
    case 2:
      return pick(rng, ['', 'NaN', '1', 'true', 'null', '\u0000', '\ud800', 'gpt2', 'llama', 'F32', '__proto__']);
    case 3:
      return hugeString(rng);
    case 4:
      return null;
    case 5:
      return rng.next() < 0.5;
    case 6:
      return [];
    case 7:
      return {};
    case 8:
      return Array.from({ length: int(rng, 5) + 1 }, () => pick(rng, HOSTILE_NUMBERS));
    case 9:
      return { __proto__: null, ...Object.fromEntries([[pick(rng, PROTO_KEYS), { polluted: true }]]) };
    case 10:
      return Array.from({ length: pick(rng, [1000, 100_000]) }, (_, i) => i);
    default:
      return pick(rng, [-1, -7, -(2 ** 31)]);
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every container in a parsed JSON tree with the keys under it (capped: big vocabularies). */
function containers(root: Json, rng: Rng, limit = 400): { node: Json[] | Record<string, Json>; key: string | number }[] {
  const out: { node: Json[] | Record<string, Json>; key: string | number }[] = [];
  const stack: Json[] = [root];
  while (stack.length && out.length < limit * 4) {
    const node = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    // Large maps (vocab, merges): sample a few keys so the walk stays cheap.
    const chosen = keys.length > 32 ? Array.from({ length: 8 }, () => pick(rng, keys)) : keys;
    for (const key of chosen) {
      out.push({ node: node as Json[] | Record<string, Json>, key });
      stack.push((node as Record<string | number, Json>)[key]);
    }
  }
  return out;
}

/** Sets an own property, even "__proto__" (a plain assignment would set the prototype). */
function setOwn(node: Json[] | Record<string, Json>, key: string | number, value: unknown): void {
  Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Structural mutations of a parsed JSON document; the result is serialised text. */
export function mutateJson(text: string, rng: Rng): string {
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch {
    return mutateBytesAsText(text, rng);
  }
  const rounds = 1 + int(rng, 3);
  let deepDepth = 0;
  for (let r = 0; r < rounds; r++) {
    const spots = containers(root, rng);
    if (!spots.length) break;
    const { node, key } = pick(rng, spots);
    switch (int(rng, 9)) {
      case 0:
      case 1:
      case 2:
        setOwn(node, key, hostileValue(rng));
        break;
      case 3:
        if (Array.isArray(node)) node.splice(Number(key), 1);
        else delete node[key as string];
        break;
      case 4:
        if (!Array.isArray(node)) setOwn(node, pick(rng, PROTO_KEYS), hostileValue(rng));
        else node.push(hostileValue(rng) as Json);
        break;
      case 5: {
        // Renamed key (the loader sees a field missing and an unknown one).
        if (!Array.isArray(node)) {
          const v = node[key as string];
          delete node[key as string];
          setOwn(node, `${String(key)}${pick(rng, ['_', ' ', 'X', '\u0000'])}`, v);
        }
        break;
      }
      case 6:
        // A nested value where a scalar was: loaders that recurse meet depth.
        deepDepth = pick(rng, [64, 5000, 200_000]);
        setOwn(node, key, '\u0001DEEP\u0001');
        break;
      case 7:
        // The value of one field copied into another (right type, wrong meaning).
      {
        const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
        setOwn(node, key, structuredClone((node as Record<string | number, Json>)[pick(rng, keys)] ?? null));
      }
        break;
      default:
      {
        // A negative of the number that was there (a hostile value may be a null-prototype object: no Number() of it).
        const was = (node as Record<string | number, Json>)[key];
        setOwn(node, key, -Math.abs(typeof was === 'number' ? was : 1) - int(rng, 3));
      }
    }
  }
  let out = JSON.stringify(root);
  if (deepDepth) out = out.replace('"\\u0001DEEP\\u0001"', `${'['.repeat(deepDepth)}${']'.repeat(deepDepth)}`);
  if (rng.next() < 0.15) {
    // Non-JSON tokens a hand-edited file may hold: JSON.parse refuses them.
    const at = int(rng, out.length);
    out = `${out.slice(0, at)}${pick(rng, NON_JSON_NUMBERS)}${out.slice(at)}`;
  }
  if (rng.next() < 0.1) out = `{"a":1,${out.slice(1)}`; // a duplicated key is valid JSON; last wins
  return out;
}

function mutateBytesAsText(text: string, rng: Rng): string {
  return dec.decode(mutateBytes(enc.encode(text), rng));
}

/** Byte-level mutations: flips, random bytes, truncation, insertions, deletions, duplications. */
export function mutateBytes(bytes: Uint8Array, rng: Rng, window?: { start: number; end: number }): Uint8Array {
  let out: Uint8Array = bytes.slice();
  const lo = Math.min(window?.start ?? 0, out.length);
  const hi = Math.max(lo, Math.min(window?.end ?? out.length, out.length));
  const pos = () => lo + int(rng, Math.max(1, hi - lo));
  const rounds = 1 + int(rng, 4);
  for (let r = 0; r < rounds; r++) {
    switch (int(rng, 7)) {
      case 0: {
        for (let i = 0, n = 1 + int(rng, 8); i < n && out.length; i++) out[Math.min(pos(), out.length - 1)] ^= 1 << int(rng, 8);
        break;
      }
      case 1: {
        for (let i = 0, n = 1 + int(rng, 16); i < n && out.length; i++) out[Math.min(pos(), out.length - 1)] = int(rng, 256);
        break;
      }
      case 2:
        out = out.slice(0, pos());
        break;
      case 3: {
        const at = pos();
        const ins = rng.next() < 0.5 ? enc.encode(pick(rng, [...NON_JSON_NUMBERS, '"__proto__":{"x":1},', '{', '[', '"', '\\', '\u0000', '\xff'])) : Uint8Array.from({ length: 1 + int(rng, 32) }, () => int(rng, 256));
        out = concat(out.subarray(0, at), ins, out.subarray(at));
        break;
      }
      case 4: {
        const at = pos();
        out = concat(out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + int(rng, 256))));
        break;
      }
      case 5: {
        const at = pos();
        const chunk = out.slice(at, at + 1 + int(rng, 512));
        out = concat(out.subarray(0, at), chunk, chunk, out.subarray(at));
        break;
      }
      default:
        // 0xff runs: giant little-endian lengths, invalid UTF-8.
        for (let i = 0, at = pos(), n = 1 + int(rng, 8); i < n && at + i < out.length; i++) out[at + i] = 0xff;
    }
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The JSON header of a safetensors file and the bytes after it, or null when it has none. */
function splitSafetensors(bytes: Uint8Array): { header: Record<string, Json>; data: Uint8Array } | null {
  if (bytes.length < 8) return null;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (n > bytes.length - 8) return null;
  try {
    return { header: JSON.parse(dec.decode(bytes.subarray(8, 8 + n))) as Record<string, Json>, data: bytes.subarray(8 + n) };
  } catch {
    return null;
  }
}

function joinSafetensors(headerText: string, data: Uint8Array, forgedLength?: bigint): Uint8Array {
  const json = enc.encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, forgedLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/**
 * Safetensors mutations: the header's fields (offsets, shapes, dtypes, names), the 8-byte
 * header length, the data's length; or bytes anywhere in the first kilobytes.
 */
export function mutateSafetensors(bytes: Uint8Array, rng: Rng): Uint8Array {
  const parts = splitSafetensors(bytes);
  const choice = int(rng, 10);
  if (!parts || choice >= 8) {
    const headerEnd = bytes.length >= 8 ? Math.min(bytes.length, 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))) : bytes.length;
    return mutateBytes(bytes, rng, { start: 0, end: Math.min(headerEnd + 64, bytes.length) });
  }
  const { header } = parts;
  let data = parts.data;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = names.length ? pick(rng, names) : '__metadata__';
  const entry = (header[name] ?? {}) as Record<string, Json>;
  let forged: bigint | undefined;
  const big = () => pick(rng, [2 ** 53 - 1, 2 ** 53 + 2, 2 ** 63, 1e300, 2 ** 40, 2 ** 32, -1, -(2 ** 53), 1.5, 4294967296 * 4]);
  switch (choice) {
    case 0:
      entry.data_offsets = pick(rng, [[0, big()], [big(), big()], [-8, 0], [5, 3], [0], [0, 1, 2], 'x', null, [0, NaN as unknown as number]]) as Json;
      break;
    case 1:
      entry.shape = pick(rng, [[-1], [big()], [2 ** 31, 2 ** 31, 2 ** 31], [1e300, 0], [0.5], ['4'], [], null, Array(5000).fill(1), [2 ** 26, 2 ** 26]]) as Json;
      break;
    case 2:
      entry.dtype = pick(rng, ['F8', 'f32', '', 'F32 ', 'BOOL', 'I64', 'U8', 'F64', '__proto__', 'constructor', null, 4]) as Json;
      break;
    case 3: {
      // A tensor renamed to a prototype key, duplicated, or a new one pointing past the data.
      const v = header[name];
      if (rng.next() < 0.5) delete header[name];
      setOwn(header, pick(rng, [...PROTO_KEYS, '', 'model.' + name, name + '.x']), rng.next() < 0.5 ? v : { dtype: 'F32', shape: [big()], data_offsets: [0, big()] });
      break;
    }
    case 4:
      forged = pick(rng, [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, BigInt(2 ** 53), 100_000_001n, BigInt(data.length + 10), 7n]);
      break;
    case 5:
      data = rng.next() < 0.5 ? data.subarray(0, int(rng, data.length)) : concat(data, new Uint8Array(1 + int(rng, 64)));
      break;
    case 6:
      header.__metadata__ = hostileValue(rng) as Json;
      break;
    default:
      return joinSafetensors(mutateJson(JSON.stringify(header), rng), data);
  }
  return joinSafetensors(JSON.stringify(header), data, forged);
}

// ---- protobuf -------------------------------------------------------------------------------

function varint(value: number | bigint): number[] {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

const tag = (field: number, wire: number) => varint((field << 3) | wire);
const lengthDelimited = (field: number, body: number[]) => [...tag(field, 2), ...varint(body.length), ...body];

/**
 * A ModelProto whose graph holds a node whose attribute holds a graph whose node … `depth` times
 * (ModelProto.graph = 7, GraphProto.node = 1, NodeProto.attribute = 5, AttributeProto.g = 6):
 * a decoder that recurses per message meets the stack.
 */
export function deeplyNestedOnnx(depth: number): Uint8Array {
  // Every level only puts three (tag, length) prefixes in front of the level inside it, so the
  // prefixes are computed from the inside out and written once (no quadratic copying).
  const prefixes: number[][] = [];
  let inner = 0; // bytes of the graph inside
  for (let i = 0; i < depth; i++) {
    const attribute = [...tag(6, 2), ...varint(inner)];
    const attributeLength = attribute.length + inner;
    const node = [...tag(5, 2), ...varint(attributeLength)];
    const nodeLength = node.length + attributeLength;
    const graph = [...tag(1, 2), ...varint(nodeLength)];
    inner = graph.length + nodeLength;
    prefixes.push([...graph, ...node, ...attribute]);
  }
  const head = [...tag(1, 0), 8, ...tag(7, 2), ...varint(inner)];
  const out = new Uint8Array(head.length + inner);
  out.set(head, 0);
  let at = head.length;
  for (let i = prefixes.length - 1; i >= 0; i--) {
    out.set(prefixes[i], at);
    at += prefixes[i].length;
  }
  return out;
}

/** Offsets of the top-level fields of a protobuf message (as far as they parse). */
function topLevelFields(bytes: Uint8Array): { at: number; wire: number; lengthAt?: number }[] {
  const out: { at: number; wire: number; lengthAt?: number }[] = [];
  let i = 0;
  const readVarint = (): number => {
    let v = 0;
    let s = 0;
    while (i < bytes.length) {
      const b = bytes[i++];
      v += (b & 0x7f) * 2 ** s;
      s += 7;
      if (!(b & 0x80)) break;
    }
    return v;
  };
  while (i < bytes.length && out.length < 64) {
    const at = i;
    const key = readVarint();
    const wire = key & 7;
    if (wire === 0) readVarint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const lengthAt = i;
      const len = readVarint();
      out.push({ at, wire, lengthAt });
      i += len;
      continue;
    } else break;
    out.push({ at, wire });
  }
  return out;
}

/** Protobuf mutations: forged lengths, varints and wire types at field boundaries, nesting, bytes. */
export function mutateProtobuf(bytes: Uint8Array, rng: Rng): Uint8Array {
  const fields = topLevelFields(bytes);
  const choice = int(rng, 8);
  if (choice === 0) return deeplyNestedOnnx(pick(rng, [100, 2000, 20_000]));
  if (choice <= 2 || !fields.length) return mutateBytes(bytes, rng);
  const f = pick(rng, fields);
  if (choice === 3 && f.lengthAt !== undefined) {
    // A length prefix claiming far more than the file holds.
    const forged = varint(pick(rng, [2 ** 31 - 1, 2 ** 32 - 1, 2 ** 53, 2n ** 63n, bytes.length * 2]));
    let end = f.lengthAt;
    while (end < bytes.length && bytes[end] & 0x80) end++;
    return concat(bytes.subarray(0, f.lengthAt), Uint8Array.from(forged), bytes.subarray(end + 1));
  }
  if (choice === 4) {
    // The same field number with another wire type (3/4 are groups, 6/7 invalid).
    const out = bytes.slice();
    out[f.at] = (out[f.at] & ~7) | int(rng, 8);
    return out;
  }
  if (choice === 5) {
    // A huge or negative varint (ir_version, opset version, dims, data_type).
    const extra = Uint8Array.from([...tag(pick(rng, [1, 2, 3, 4, 5, 8, 14]), 0), ...varint(pick(rng, [-1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 31n]))]);
    const at = pick(rng, [...fields.map((x) => x.at), bytes.length]);
    return concat(bytes.subarray(0, at), extra, bytes.subarray(at));
  }
  if (choice === 6) return bytes.slice(0, int(rng, bytes.length));
  // Deep mutation inside one length-delimited field (the graph: nodes, initializers, dims).
  return mutateBytes(bytes, rng, { start: f.at, end: Math.min(bytes.length, f.at + 4096 + int(rng, bytes.length)) });
}
