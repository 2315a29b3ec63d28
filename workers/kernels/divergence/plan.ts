/**
 * How a divergence computation is cut to fit the device: workgroup sizes read from the adapter's
 * limits, rows grouped into chunks whose logits fit one storage binding (and one dispatch
 * dimension), and each row cut into vocabulary slices so that small batches still fill the GPU.
 */
import type { DivergenceTuning } from '../../gpu/tuning';
import { MAX_TOP_K } from './layout';

/** The limits the plan reads (a GPUSupportedLimits has them all). */
export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
}

export function planLimits(device: GPUDevice): PlanLimits {
  const l = device.limits;
  return {
    maxStorageBufferBindingSize: Number(l.maxStorageBufferBindingSize),
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
  };
}

/** A run of rows stored contiguously ([rows, vocab] f32, row-major) in one buffer. */
export interface RowBlock {
  buffer: GPUBuffer;
  rows: number;
  /** Where row 0 of the block starts; a multiple of 4. Default 0. */
  byteOffset?: number;
}

/**
 * Where a [positions, vocab] f32 matrix lives: one buffer (from byte 0), or consecutive blocks of
 * rows, e.g. when positions × vocab × 4 bytes exceed the adapter's maxBufferSize.
 */
export type RowMajorLogits = GPUBuffer | RowBlock[];

export class DivergenceInputError extends Error {
  constructor(
    readonly code: 'vocab-mismatch' | 'bad-shape' | 'bad-parameter' | 'buffer-too-small' | 'aliased-output' | 'too-large',
    message: string,
  ) {
    super(message);
    this.name = 'DivergenceInputError';
  }
}

export function toBlocks(source: RowMajorLogits, positions: number, what: string): Required<RowBlock>[] {
  const blocks = Array.isArray(source) ? source : [{ buffer: source, rows: positions, byteOffset: 0 }];
  let rows = 0;
  for (const b of blocks) {
    if (!Number.isInteger(b.rows) || b.rows < 1) throw new DivergenceInputError('bad-shape', `${what}: a row block holds ${b.rows} rows; it must hold a positive whole number`);
    const off = b.byteOffset ?? 0;
    if (!Number.isInteger(off) || off < 0 || off % 4 !== 0) throw new DivergenceInputError('bad-shape', `${what}: byteOffset ${off} must be a non-negative multiple of 4`);
    rows += b.rows;
  }
  if (rows !== positions) throw new DivergenceInputError('bad-shape', `${what}: the row blocks hold ${rows} rows in all, but there are ${positions} positions`);
  return blocks.map((b) => ({ buffer: b.buffer, rows: b.rows, byteOffset: b.byteOffset ?? 0 }));
}

/** A storage binding covering some rows of a block, and where those rows start in it (elements). */
export interface RowsBinding {
  binding: GPUBufferBinding & { offset: number; size: number };
  base: number;
}

export interface Chunk {
  firstRow: number;
  rows: number;
  splits: number;
  sliceLength: number;
  student: RowsBinding;
  teacher: RowsBinding;
  gradient?: RowsBinding;
}

export interface DivergencePlan {
  streamWorkgroupSize: number;
  topKWorkgroupSize: number;
  chunks: Chunk[];
  /** Largest rows × splits over the chunks: sizes the scratch buffers. */
  maxRowSlices: number;
}

function largestPowerOfTwoAtMost(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

function bindRows(block: Required<RowBlock>, blockFirstRow: number, firstRow: number, rows: number, vocab: number, alignment: number): RowsBinding {
  const start = block.byteOffset + (firstRow - blockFirstRow) * vocab * 4;
  const end = start + rows * vocab * 4;
  const offset = Math.floor(start / alignment) * alignment;
  return { binding: { buffer: block.buffer, offset, size: end - offset }, base: (start - offset) / 4 };
}

/** First row of each block, and a lookup of the block holding a row (binary search). */
function blockIndex(blocks: Required<RowBlock>[]): (row: number) => [number, number] {
  const firsts: number[] = [];
  let first = 0;
  for (const b of blocks) {
    firsts.push(first);
    first += b.rows;
  }
  return (row) => {
    if (row < 0 || row >= first) throw new Error(`row ${row} is outside the ${first} rows of the blocks`);
    let lo = 0;
    let hi = firsts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (firsts[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return [lo, firsts[lo]];
  };
}

export function planDivergences(
  limits: PlanLimits,
  tuning: DivergenceTuning,
  shape: { positions: number; vocab: number; topK: number },
  sources: { student: Required<RowBlock>[]; teacher: Required<RowBlock>[]; gradient?: Required<RowBlock>[] },
): DivergencePlan {
  const { positions, vocab } = shape;
  const maxInvocations = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const streamWorkgroupSize = Math.max(1, Math.min(tuning.streamWorkgroupSize, maxInvocations));
  const topKBytesPerInvocation = MAX_TOP_K * 8;
  const topKWorkgroupSize = largestPowerOfTwoAtMost(
    Math.min(tuning.topKWorkgroupSize, maxInvocations, Math.floor(limits.maxComputeWorkgroupStorageSize / topKBytesPerInvocation)),
  );
  const rowBytes = vocab * 4;
  const alignment = limits.minStorageBufferOffsetAlignment;
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const allSources = [sources.student, sources.teacher, ...(sources.gradient ? [sources.gradient] : [])];
  const lookups = new Map(allSources.map((blocks) => [blocks, blockIndex(blocks)]));
  /** Rows from `firstRow` that fit one binding in every source (a binding starts aligned, so a row may bring slack before it). */
  const rowsPerBinding = (firstRow: number) => {
    let rows = Infinity;
    for (const blocks of allSources) {
      const [index, blockFirstRow] = lookups.get(blocks)!(firstRow);
      const slack = (blocks[index].byteOffset + (firstRow - blockFirstRow) * rowBytes) % alignment;
      rows = Math.min(rows, Math.floor((limits.maxStorageBufferBindingSize - slack) / rowBytes));
    }
    if (rows < 1) {
      throw new DivergenceInputError('too-large', `one row of ${vocab} logits (${rowBytes} bytes) does not fit the adapter's storage binding limit (${limits.maxStorageBufferBindingSize} bytes)`);
    }
    return rows;
  };

  // Chunks never straddle a block boundary of any source.
  const boundaries = new Set<number>([0, positions]);
  for (const blocks of allSources) {
    let row = 0;
    for (const b of blocks) boundaries.add((row += b.rows));
  }
  const cuts = [...boundaries].sort((a, b) => a - b);

  const chunks: Chunk[] = [];
  let maxRowSlices = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    for (let firstRow = cuts[i]; firstRow < cuts[i + 1]; ) {
      let rows = Math.min(cuts[i + 1] - firstRow, rowsPerBinding(firstRow), maxDim);
      const wantedSplits = Math.ceil(tuning.minWorkgroups / rows);
      let sliceLength = Math.max(tuning.minSliceLength, Math.ceil(vocab / wantedSplits));
      // Whole trips of eight elements per invocation where the vocabulary allows it.
      const trip = streamWorkgroupSize * 8;
      sliceLength = Math.min(vocab, Math.ceil(sliceLength / trip) * trip);
      let splits = Math.ceil(vocab / sliceLength);
      if (splits > maxDim) {
        splits = maxDim;
        sliceLength = Math.ceil(vocab / splits);
      }
      // The per-invocation states of a chunk must fit one binding too (32 bytes each).
      const maxRowsForStates = Math.floor(limits.maxStorageBufferBindingSize / (splits * streamWorkgroupSize * 32));
      rows = Math.max(1, Math.min(rows, maxRowsForStates));
      const bind = (blocks: Required<RowBlock>[]) => {
        const [index, blockFirstRow] = lookups.get(blocks)!(firstRow);
        return bindRows(blocks[index], blockFirstRow, firstRow, rows, vocab, alignment);
      };
      chunks.push({
        firstRow,
        rows,
        splits,
        sliceLength,
        student: bind(sources.student),
        teacher: bind(sources.teacher),
        gradient: sources.gradient ? bind(sources.gradient) : undefined,
      });
      maxRowSlices = Math.max(maxRowSlices, rows * splits);
      firstRow += rows;
    }
  }
  return { streamWorkgroupSize, topKWorkgroupSize, chunks, maxRowSlices };
}

/** Size of the ChunkParams uniform every divergence kernel reads (WGSL struct ChunkParams). */
export const PARAMS_BYTES = 64;

/** The bytes of one chunk's ChunkParams; the field order is the WGSL struct's. */
export function chunkParams(chunk: Chunk, settings: { vocab: number; temperature: number; beta?: number; topK: number }, fieldStride: number): ArrayBuffer {
  const data = new ArrayBuffer(PARAMS_BYTES);
  const u32 = new Uint32Array(data);
  const f32 = new Float32Array(data);
  u32[0] = settings.vocab;
  u32[1] = chunk.rows;
  u32[2] = chunk.firstRow;
  u32[3] = chunk.splits;
  u32[4] = chunk.sliceLength;
  u32[5] = chunk.student.base;
  u32[6] = chunk.teacher.base;
  u32[7] = chunk.gradient?.base ?? 0;
  f32[8] = Math.LOG2E / settings.temperature;
  f32[9] = 1 / settings.temperature;
  // β < 0 means "no JSD": row_finalize then writes 0.
  f32[10] = settings.beta ?? -1;
  u32[11] = settings.topK;
  u32[12] = fieldStride;
  return data;
}
