/**
 * Counts the GPU memory a benchmark allocates: every `device.createBuffer` on one GPUDevice —
 * ours (the trainer, its kernels) and onnxruntime-web's (it allocates on the device we give it) —
 * with its size and label, until it is destroyed or garbage-collected (Dawn frees a buffer nothing
 * references; some per-device scratch buffers are dropped that way). `live` is what is held now,
 * `peak` the most ever held at once, with what it was made of at that moment, by kind.
 *
 * What a buffer holds is read from its label (workers/train/, workers/models/llama/graph.ts,
 * workers/gpu/ name their buffers); onnxruntime-web's buffers have no label of ours. This counts
 * what the lab asks for, not what a driver adds (on SwiftShader, GPU memory is host memory). The
 * operands of the benchmark's own matmul peak measurement are left out: they are not the run's.
 */

/** What a buffer holds, as the training memory check (workers/models/memory.ts) groups it. */
export type BufferKind =
  | 'weights (frozen, f32)'
  | 'LoRA frozen bases (f16)'
  | 'LoRA merged W_eff'
  | 'LoRA factors A, B'
  | 'optimizer state'
  | 'activations'
  | 'onnxruntime-web (sampler: KV cache, intermediates, logits)'
  | 'read-back staging'
  | 'kernel uniforms'
  | 'other';

/** Operands of the matmul peak measurement (measureMatmulGflops): the benchmark's own, not the run's; not counted. */
const NOT_COUNTED = /^matmul bench [ABC]$/;

const ACTIVATION_LABELS = new Set([
  // batch-buffers.ts
  'logits', 'dlogits', 'loss stats', 'tokens', 'positions', 'key mask', 'targets', 'loss mask', 'weights', 'old logprobs', 'advantages',
  // trainer.ts, loss-gradient.ts, layers.ts
  'micro-batch stats', 'reverse KL per row', 'embedding row grouping',
  // llama/graph.ts (not per layer)
  'q', 'k', 'v', 'x final', 'model.norm', 'model.norm rstd', 'attention scratch',
]);

const OPTIMIZER_LABELS = new Set(['LoRA dW_eff', 'gradient norms', 'weight norms', 'gradient clip']);

/** The kind of a buffer by its label; `paramNames` are the model's parameter names (the base weights' labels). */
export function kindOf(label: string, paramNames: ReadonlySet<string>): BufferKind {
  if (paramNames.has(label)) return 'weights (frozen, f32)';
  if (label.endsWith(' (f16 base)')) return 'LoRA frozen bases (f16)';
  if (label.endsWith(' (merged)')) return 'LoRA merged W_eff';
  if (/\.lora_[AB]$/.test(label)) return 'LoRA factors A, B';
  if (OPTIMIZER_LABELS.has(label) || / (grad|adam [mv]|backup|adam [mv] backup)$/.test(label)) return 'optimizer state';
  if (ACTIVATION_LABELS.has(label) || /^layer \d+ /.test(label) || /^d /.test(label) || / per head$/.test(label)) return 'activations';
  if (label.startsWith('read ')) return 'read-back staging';
  if (label.endsWith(' params')) return 'kernel uniforms';
  if (label === '') return 'onnxruntime-web (sampler: KV cache, intermediates, logits)';
  return 'other';
}

export interface MemorySnapshot {
  bytes: number;
  byKind: Partial<Record<BufferKind, number>>;
  /** Labels counted as 'other', with their bytes (so nothing is hidden in it). */
  otherLabels: Record<string, number>;
}

interface Record_ {
  size: number;
  kind: BufferKind;
  label: string;
  gone: boolean;
}

export class GpuMemoryCounter {
  private live = 0;
  private readonly byKind = new Map<BufferKind, number>();
  private readonly other = new Map<string, number>();
  private peakSnapshot: MemorySnapshot = { bytes: 0, byKind: {}, otherLabels: {} };
  private paramNames: ReadonlySet<string> = new Set();
  private readonly collected = new FinalizationRegistry<Record_>((r) => this.release(r));

  /** Wraps `device.createBuffer` (and each buffer's destroy) to count from now on. */
  constructor(device: GPUDevice) {
    const create = device.createBuffer.bind(device);
    (device as { createBuffer: GPUDevice['createBuffer'] }).createBuffer = (descriptor: GPUBufferDescriptor) => {
      const buffer = create(descriptor);
      const label = descriptor.label ?? '';
      if (NOT_COUNTED.test(label)) return buffer;
      const record: Record_ = { size: descriptor.size, kind: kindOf(label, this.paramNames), label, gone: false };
      this.add(record);
      const destroy = buffer.destroy.bind(buffer);
      (buffer as { destroy: () => undefined }).destroy = () => {
        this.release(record);
        return destroy();
      };
      this.collected.register(buffer, record);
      return buffer;
    };
  }

  /** The model's parameter names: buffers labelled so are base weights. */
  setParamNames(names: Iterable<string>): void {
    this.paramNames = new Set(names);
  }

  private add(r: Record_): void {
    this.live += r.size;
    this.byKind.set(r.kind, (this.byKind.get(r.kind) ?? 0) + r.size);
    if (r.kind === 'other') this.other.set(r.label, (this.other.get(r.label) ?? 0) + r.size);
    if (this.live > this.peakSnapshot.bytes) this.peakSnapshot = this.snapshot();
  }

  private release(r: Record_): void {
    if (r.gone) return;
    r.gone = true;
    this.live -= r.size;
    this.byKind.set(r.kind, this.byKind.get(r.kind)! - r.size);
    if (r.kind === 'other') this.other.set(r.label, this.other.get(r.label)! - r.size);
  }

  /** What is held now. */
  snapshot(): MemorySnapshot {
    const nonzero = <K extends string>(m: Map<K, number>) => Object.fromEntries([...m].filter(([, v]) => v > 0)) as Partial<Record<K, number>>;
    return { bytes: this.live, byKind: nonzero(this.byKind), otherLabels: nonzero(this.other) as Record<string, number> };
  }

  /** The most held at once since the last resetPeak, and what it was made of. */
  peak(): MemorySnapshot {
    return this.peakSnapshot;
  }

  /** Starts a new peak from what is held now. */
  resetPeak(): void {
    this.peakSnapshot = this.snapshot();
  }
}
