/**
 * Token choice on the GPU (choose_token.wgsl): per row of a decoding step's logits, read in place
 * from the decoder's output buffer, the token and its log-prob exactly as sampling/choose.ts
 * computes them, written where the next decoder step reads its input_ids (int64), and recorded in
 * slots that come back to the CPU a few steps at a time. Only ids, log-probs and a status word
 * per row and step ever come back; the logits stay on the GPU.
 */
import chooseTokenWgsl from './choose_token.wgsl?raw';
import { withFloat64 } from './float64';
import { createStorageBuffer, writeBuffer } from '../../gpu/buffers';
import { launch } from '../../gpu/launch';
import { isCpuDevice } from '../../gpu/tuning';

export interface TokenChoiceSettings {
  /** 0: greedy. */
  temperature: number;
  /** 0: no limit. */
  topK: number;
  /** 1: no limit. */
  topP: number;
  /** A row that chooses it is finished: later steps skip it and leave its next input id as is. */
  eosTokenId: number | null;
}

/** What the kernel says about a row at a step. */
export const CHOICE_STATUS = { chosen: 0, nanLogit: 1, allNegInf: 2, posInf: 3, skipped: 4 } as const;

export interface ChoiceRecord {
  token: number;
  /** log π(token) under softmax(logits / T) over the whole vocabulary (T = 1 when greedy). */
  logprob: number;
  /** CHOICE_STATUS; for nanLogit, `token` is the first NaN logit's id. */
  status: number;
}

/**
 * Invocations per row. GPUs: 256, so the parallel stages (e^x per logit) and the sort use a whole
 * workgroup (not measured: no GPU here). CPU adapters: 16, since SwiftShader runs a workgroup's
 * invocations a few at a time on one core and each barrier of the sort switches between them;
 * 16 and 64 measured within the noise of each other there (1.3–2.4 s a step for 4 × 512 logits).
 */
export function chooseWorkgroupSize(device: GPUDevice): number {
  return Math.min(isCpuDevice(device) ? 16 : 256, device.limits.maxComputeInvocationsPerWorkgroup);
}

const MODE = { greedy: 0, full: 1, sorted: 2 } as const;
const RECORD_BYTES = 16;

function float64Words(x: number): [number, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x, true);
  return [view.getUint32(0, true), view.getUint32(4, true)];
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Bytes of scratch and records the kernel needs for `rows` rows of `vocab` logits. */
export function chooserBytes(rows: number, vocab: number, slots: number, settings: TokenChoiceSettings): { largest: number; total: number } {
  const sorted = rows * sortSizeOf(vocab, settings) * 16;
  const work = rows * vocab * 16;
  return { largest: Math.max(work, sorted), total: work + sorted + rows * (8 + 4 + 8) + slots * rows * RECORD_BYTES };
}

/** Whether the kernel's largest buffer fits the adapter's storage-binding limit. */
export function chooserFits(device: GPUDevice, rows: number, vocab: number, settings: TokenChoiceSettings): boolean {
  return chooserBytes(rows, vocab, 1, settings).largest <= device.limits.maxStorageBufferBindingSize;
}

function modeOf(vocab: number, settings: TokenChoiceSettings): number {
  if (settings.temperature === 0) return MODE.greedy;
  const limitK = settings.topK > 0 && settings.topK < vocab;
  return !limitK && !(settings.topP < 1) ? MODE.full : MODE.sorted;
}

function sortSizeOf(vocab: number, settings: TokenChoiceSettings): number {
  return modeOf(vocab, settings) === MODE.sorted ? nextPowerOfTwo(vocab) : 1;
}

/**
 * The kernel and its buffers for a batch of `rows` rows over a vocabulary of `vocab`, recording
 * up to `slots` steps between two read-backs. Steps are submitted one at a time (`step`), in the
 * queue's order with the decoder runs around them.
 */
export class GpuTokenChooser {
  /** The next step's input_ids: int64 [rows, 1] as (low, high) u32 words, for Tensor.fromGpuBuffer. */
  readonly nextIds: GPUBuffer;
  private readonly work: GPUBuffer;
  private readonly sorted: GPUBuffer;
  private readonly draws: GPUBuffer;
  private readonly done: GPUBuffer;
  private readonly records: GPUBuffer;
  private readonly uniformWords: number[];
  private readonly sortSize: number;
  private readonly workgroupSize: number;

  constructor(
    private readonly device: GPUDevice,
    readonly rows: number,
    readonly vocab: number,
    readonly slots: number,
    settings: TokenChoiceSettings,
  ) {
    if (!(rows >= 1 && vocab >= 1 && slots >= 1)) throw new Error(`GpuTokenChooser: rows ${rows}, vocab ${vocab} and slots ${slots} must be ≥ 1`);
    const max = device.limits.maxComputeWorkgroupsPerDimension;
    if (rows > max) throw new Error(`token choice on the GPU: ${rows} rows exceed the adapter's ${max} workgroups per dimension; sample fewer completions at once`);
    const greedy = settings.temperature === 0;
    const limitK = settings.topK > 0 && settings.topK < vocab;
    const limitP = settings.topP < 1;
    const mode = modeOf(vocab, settings);
    this.sortSize = sortSizeOf(vocab, settings);
    const { largest } = chooserBytes(rows, vocab, slots, settings);
    const limit = device.limits.maxStorageBufferBindingSize;
    if (largest > limit) {
      throw new Error(
        `token choice on the GPU needs a ${(largest / 2 ** 20).toFixed(0)} MiB scratch buffer for ${rows} rows × ${vocab} logits, above the adapter's ${(limit / 2 ** 20).toFixed(0)} MiB per binding: sample fewer completions at once, or choose in JavaScript (tokenChoice 'js')`,
      );
    }
    const [tLo, tHi] = float64Words(greedy ? 1 : settings.temperature);
    const [pLo, pHi] = float64Words(settings.topP);
    const eos = settings.eosTokenId;
    // vocab, width and slot are filled per step (indices 0..2).
    this.uniformWords = [vocab, 1, 0, mode, limitK ? settings.topK : vocab, limitP ? 1 : 0, eos ?? 0, eos === null ? 0 : 1, this.sortSize, tLo, tHi, pLo, pHi];
    this.workgroupSize = chooseWorkgroupSize(device);
    this.work = createStorageBuffer(device, rows * vocab * 16, 'token choice work');
    this.sorted = createStorageBuffer(device, rows * this.sortSize * 16, 'token choice sort');
    this.draws = createStorageBuffer(device, rows * 8, 'token choice draws');
    this.done = createStorageBuffer(device, rows * 4, 'token choice done');
    this.records = createStorageBuffer(device, slots * rows * RECORD_BYTES, 'token choice records');
    this.nextIds = createStorageBuffer(device, rows * 8, 'next input_ids');
  }

  /** Every row unfinished again (a new batch of sequences). */
  reset(): void {
    writeBuffer(this.device, this.done, new Uint32Array(this.rows));
  }

  /**
   * One step: the uniform numbers of this step (one per row) and the dispatch reading row r's
   * logits at position width − 1 of `logits` ([rows, width, vocab] float32), recorded in `slot`.
   */
  step(logits: GPUBuffer, width: number, slot: number, draws: Float64Array): void {
    if (draws.length !== this.rows) throw new Error(`token choice: ${draws.length} draws for ${this.rows} rows`);
    if (!(slot >= 0 && slot < this.slots)) throw new Error(`token choice: slot ${slot} outside 0..${this.slots - 1}`);
    const logitBytes = this.rows * width * this.vocab * 4;
    if (logits.size < logitBytes) throw new Error(`token choice: the logits buffer (${logits.size} bytes) is smaller than ${this.rows} × ${width} × ${this.vocab} float32`);
    writeBuffer(this.device, this.draws, draws);
    const uniforms = [...this.uniformWords];
    uniforms[1] = width;
    uniforms[2] = slot;
    const encoder = this.device.createCommandEncoder({ label: 'token choice' });
    launch(this.device, encoder, {
      code: withFloat64(chooseTokenWgsl),
      label: 'choose_token',
      constants: { WG: this.workgroupSize },
      // Only the step's logits (ORT's buffer may be larger: its pool rounds sizes up).
      buffers: [{ buffer: logits, offset: 0, size: logitBytes }, this.work, this.sorted, this.draws, this.done, this.records, this.nextIds],
      uniforms,
      workgroups: [this.rows],
    });
    this.device.queue.submit([encoder.finish()]);
  }

  /**
   * The records of slots 0..count−1 ([slot][row]), copied after every step submitted so far. The
   * copy is queued at once, so later steps may reuse the slots while the map is pending.
   */
  async read(count: number): Promise<ChoiceRecord[][]> {
    const bytes = count * this.rows * RECORD_BYTES;
    const staging = this.device.createBuffer({ label: 'token choice read', size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder({ label: 'token choice read' });
    encoder.copyBufferToBuffer(this.records, 0, staging, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const view = new DataView(staging.getMappedRange());
      const out: ChoiceRecord[][] = [];
      for (let s = 0; s < count; s++) {
        const slot: ChoiceRecord[] = [];
        for (let r = 0; r < this.rows; r++) {
          const at = (s * this.rows + r) * RECORD_BYTES; // (token, log-prob low word, high word, status)
          slot.push({ token: view.getUint32(at, true), logprob: view.getFloat64(at + 4, true), status: view.getUint32(at + 12, true) });
        }
        out.push(slot);
      }
      staging.unmap();
      return out;
    } finally {
      staging.destroy();
    }
  }

  destroy(): void {
    for (const b of [this.work, this.sorted, this.draws, this.done, this.records, this.nextIds]) b.destroy();
  }
}
