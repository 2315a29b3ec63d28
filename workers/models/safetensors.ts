/**
 * Reading and writing `.safetensors` (Hugging Face's tensor file format): 8 bytes little-endian
 * header length N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}`, then the tensors' bytes, little-endian, row-major.
 *
 * Written here because no maintained npm library does both directions: `safetensors` (0.0.1, one
 * release, no repository) only loads through fetch + IndexedDB without validation, and
 * `@huggingface/hub` only parses headers of files on the Hub. The reader validates what the
 * reference implementation (huggingface/safetensors, Rust) validates — header bounds, known
 * dtypes, sizes that match shapes, offsets that tile the data without holes or overlaps — and
 * every error names the file. Tensors are returned as views into the file's bytes (no copies).
 */

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor's bytes (a view into the file when read). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  /** In file order (by data offset). */
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/** The reference implementation's cap on the JSON header (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** A header value for an error sentence: JSON, cut short; never a stack overflow on deep nesting. */
function show(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return Array.isArray(value) ? '(a list nested too deeply to show)' : '(an object nested too deeply to show)';
  }
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, value);
}

export function readSafetensors(bytes: Uint8Array, file = 'model.safetensors'): SafetensorsFile {
  const fail = (detail: string): never => {
    throw new SafetensorsError(file, detail);
  };
  if (bytes.byteLength < 8) fail(`is ${bytes.byteLength} bytes long; a safetensors file starts with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) {
    fail(`declares a ${headerLength}-byte header but ${bytes.byteLength - 8 < MAX_HEADER_BYTES ? `only ${bytes.byteLength - 8} bytes follow` : `the limit is ${MAX_HEADER_BYTES}`} (truncated or not a safetensors file)`);
  }
  const n = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('"__metadata__" is not an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`"__metadata__"."${k}" is not a string`);
        // defineProperty: a key "__proto__" is kept as a key, not taken as the object's prototype.
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof info !== 'object' || info === null) fail(`tensor "${name}": entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info!;
    if (!isDtype(dtype)) fail(`tensor "${name}": unknown dtype ${show(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor "${name}": shape ${show(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(`tensor "${name}": data_offsets ${show(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== expected) fail(`tensor "${name}": ${end - begin} bytes for ${dtype} shape [${shape}], which needs ${expected}`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin !== cursor) fail(`tensor "${e.name}" starts at byte ${e.begin} of the data, expected ${cursor} (tensors must tile the data without holes or overlaps)`);
    cursor = e.end;
  }
  if (cursor !== dataLength) fail(`tensors cover ${cursor} bytes of data but the file holds ${dataLength} after the header (truncated or padded file)`);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: bytes.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { tensors, metadata };
}

/** A tensor to write: a typed array whose element type matches the dtype, or raw bytes. */
export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

/**
 * Serialises tensors in the given order. The header is padded with spaces to a multiple of 8
 * bytes (as the reference implementation does) so every tensor starts 8-byte aligned.
 */
export function writeSafetensors(
  tensors: Iterable<[string, TensorToWrite]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__' || Object.prototype.hasOwnProperty.call(header, name)) throw new Error(`writeSafetensors: tensor name "${name}" is reserved or repeated`);
    if (!isDtype(t.dtype)) throw new Error(`writeSafetensors: tensor "${name}" has unknown dtype ${String(t.dtype)}`);
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) throw new Error(`writeSafetensors: tensor "${name}" has ${t.data.byteLength} bytes, ${t.dtype} [${t.shape}] needs ${expected}`);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + expected] };
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    offset += expected;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.fill(0x20, 8, 8 + headerLength);
  out.set(json, 8);
  let at = 8 + headerLength;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** float16 bits → number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * A tensor's values as a fresh float32 array (F32 copied bit for bit; F16 and BF16 widened
 * exactly). Other dtypes are an error naming the tensor.
 */
export function tensorToFloat32(tensor: SafetensorsTensor, name: string, file = 'model.safetensors'): Float32Array {
  const { bytes, dtype } = tensor;
  const count = bytes.byteLength / DTYPE_BYTES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    new Uint8Array(out.buffer).set(bytes); // byte copy: the file's little-endian bits, whatever the alignment
    return out;
  }
  if (dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    return out;
  }
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
    return out;
  }
  throw new SafetensorsError(file, `tensor "${name}" has dtype ${dtype}; the lab reads floating-point weights (F32, F16, BF16)`);
}
