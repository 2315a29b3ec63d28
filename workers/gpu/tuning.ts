/**
 * Adapter tuning: which class a device belongs to (a CPU adapter such as SwiftShader, or a GPU)
 * and, for every kernel family (divergence, matmul, layers, optimizer, loss, attention), the
 * workgroup shapes and choices used on each class, with why they were picked. Kernel wrappers
 * read their table through the `…Tuning(device)` functions here; every value is still clamped to
 * the device's limits by the wrapper that uses it.
 */

/** True when the device runs on the CPU (a fallback adapter such as SwiftShader). */
export function isCpuDevice(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).adapterInfo;
  if (!info) return false;
  return info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${info.architecture} ${info.device} ${info.description}`);
}

// ---------------------------------------------------------------------------------------------
// Divergence kernels (kernels/divergence)

/** Per-adapter-class choices; every one is clamped to the device's limits by `planDivergences`. */
export interface DivergenceTuning {
  /** Invocations per workgroup of the passes that stream the vocabulary (row_stats, row_extras). */
  streamWorkgroupSize: number;
  /** Invocations per workgroup of teacher_topk; rounded down to a power of two. */
  topKWorkgroupSize: number;
  /** Fewest workgroups a streaming pass should have (rows × slices): enough to fill the device. */
  minWorkgroups: number;
  /** Shortest vocabulary slice worth a workgroup of its own. */
  minSliceLength: number;
}

/**
 * CPU adapters (SwiftShader, lavapipe): 16 invocations per workgroup measured fastest on
 * SwiftShader (4 ≈ 16 < 64 < 256: each workgroup runs its invocations 4 at a time on one core,
 * and small workgroups keep a core's reads close together); whole rows per workgroup unless the
 * batch is too small to keep every core busy; tiny workgroups for the barrier-heavy top-k merge.
 */
export const CPU_DIVERGENCE_TUNING: DivergenceTuning = { streamWorkgroupSize: 16, topKWorkgroupSize: 4, minWorkgroups: 16, minSliceLength: 4096 };

/** GPUs: full workgroups, and enough of them to cover every compute unit several times. */
export const GPU_DIVERGENCE_TUNING: DivergenceTuning = { streamWorkgroupSize: 256, topKWorkgroupSize: 64, minWorkgroups: 1024, minSliceLength: 4096 };

export function divergenceTuning(device: GPUDevice): DivergenceTuning {
  return isCpuDevice(device) ? CPU_DIVERGENCE_TUNING : GPU_DIVERGENCE_TUNING;
}

// ---------------------------------------------------------------------------------------------
// Matrix products and the column sum (kernels/train/matmul.ts)

/**
 * Invocations per workgroup (and the slice of k per step of the tiled kernel). An invocation owns
 * an 8×8 block of C in the register kernel, 4×4 in the tiled one.
 */
export interface MatmulTuning {
  register: { wgX: number; wgY: number };
  tiled: { wgX: number; wgY: number; bk: number };
  columnSum: { wgX: number; wgY: number };
}

/**
 * CPU adapters (SwiftShader on 2 shared cores; differences between these and neighbouring sizes
 * were within the noise): 8 invocations per register-kernel workgroup (64 columns × 8 rows of
 * C); 16 per tiled workgroup (barriers cost SwiftShader a switch per invocation); the column
 * sum without the workgroup tree.
 */
export const CPU_MATMUL_TUNING: MatmulTuning = {
  register: { wgX: 8, wgY: 1 },
  tiled: { wgX: 4, wgY: 4, bk: 16 },
  columnSum: { wgX: 16, wgY: 1 },
};

/**
 * GPUs (not measured here): tiled, 64×64 tiles of C per 256-invocation workgroup, 16 of k per
 * step (8.3 KiB of workgroup memory); register, 128×64 per 128 invocations.
 */
export const GPU_MATMUL_TUNING: MatmulTuning = {
  register: { wgX: 16, wgY: 8 },
  tiled: { wgX: 16, wgY: 16, bk: 16 },
  columnSum: { wgX: 32, wgY: 8 },
};

export function matmulTuning(device: GPUDevice): MatmulTuning {
  return isCpuDevice(device) ? CPU_MATMUL_TUNING : GPU_MATMUL_TUNING;
}

/** Which matmul kernel runs before `pickMatmulVariant` has timed both, and how it times them. */
export interface MatmulPick {
  defaultVariant: 'register' | 'tiled';
  /** The product timed, and how many times (after one warm-up). */
  shape: { m: number; n: number; k: number };
  repeats: number;
}

/**
 * CPU adapters: the register kernel (no workgroup memory); 256³ products, a few runs (well under
 * 2 s on SwiftShader).
 */
export const CPU_MATMUL_PICK: MatmulPick = { defaultVariant: 'register', shape: { m: 256, n: 256, k: 256 }, repeats: 2 };

/** GPUs: the tiled kernel; 1024³, where launch overhead no longer hides the kernels' speed. */
export const GPU_MATMUL_PICK: MatmulPick = { defaultVariant: 'tiled', shape: { m: 1024, n: 1024, k: 1024 }, repeats: 10 };

export function matmulPick(device: GPUDevice): MatmulPick {
  return isCpuDevice(device) ? CPU_MATMUL_PICK : GPU_MATMUL_PICK;
}

// ---------------------------------------------------------------------------------------------
// LayerNorm, GELU, add, embedding (kernels/train/layers.ts)

/** Workgroup shapes of the small layers; `layerTuning(device)` picks one per adapter class. */
export interface LayerTuning {
  /** Invocations per workgroup of the per-row (LayerNorm) and elementwise kernels; a power of two. */
  workgroupSize: number;
  /**
   * LayerNorm and RMSNorm forward and dx with one invocation per row (no barriers; rows per
   * workgroup = workgroupSize) instead of one workgroup per row (RMSNorm: lanes per row).
   */
  layerNormRowPerInvocation: boolean;
  /** layernorm_param_grad's workgroup: `paramGradColumns` columns × `paramGradLanes` row lanes (a power of two). */
  paramGradColumns: number;
  paramGradLanes: number;
  /** Fewest workgroups layernorm_param_grad should have (column groups × row splits), to fill the device. */
  minParamGradWorkgroups: number;
  /** Fewest rows each lane sums in one row split (below it, splitting costs more than it gains). */
  minRowsPerLane: number;
  /**
   * RMSNorm forward and dx when not one row per invocation (kernels/train/rmsnorm.ts): lanes per
   * row = the smallest power of two ≥ width / rmsNormElementsPerLane, at most workgroupSize, and
   * workgroupSize / lanes rows per workgroup, so that short rows (Qwen3's q/k norm over a
   * head_dim of 64..256) do not leave most of a workgroup idle.
   */
  rmsNormElementsPerLane: number;
}

/**
 * CPU adapters (SwiftShader…): 64-wide workgroups; no row splits (a few cores are full anyway);
 * LayerNorm and RMSNorm one row per invocation (LayerNorm on the training bench's 256×128 rows
 * ~15× faster than a workgroup per row, whose ~16 barriers per row each cost SwiftShader a
 * switch per invocation).
 */
export const CPU_LAYER_TUNING: LayerTuning = { workgroupSize: 64, layerNormRowPerInvocation: true, paramGradColumns: 16, paramGradLanes: 4, minParamGradWorkgroups: 1, minRowsPerLane: 16, rmsNormElementsPerLane: 4 };

/**
 * GPUs: 256-wide workgroups, a workgroup per LayerNorm row, 32 columns (128 bytes per row read) ×
 * 8 lanes, ≥ 512 workgroups; RMSNorm 4 elements per lane (a 64-wide head: 16 lanes, 16 rows per
 * workgroup; a 4096-wide row: 256 lanes, a workgroup per row).
 */
export const GPU_LAYER_TUNING: LayerTuning = { workgroupSize: 256, layerNormRowPerInvocation: false, paramGradColumns: 32, paramGradLanes: 8, minParamGradWorkgroups: 512, minRowsPerLane: 16, rmsNormElementsPerLane: 4 };

const layerTuningCache = new WeakMap<GPUDevice, LayerTuning>();

export function layerTuning(device: GPUDevice): LayerTuning {
  let t = layerTuningCache.get(device);
  if (!t) layerTuningCache.set(device, (t = isCpuDevice(device) ? CPU_LAYER_TUNING : GPU_LAYER_TUNING));
  return t;
}

// ---------------------------------------------------------------------------------------------
// Gradient norms, clipping, AdamW, LoRA (kernels/train/optimizer.ts)

/** Workgroup sizes and the partial-sum fan-out of the norm reduction. */
export interface OptimizerTuning {
  /** Invocations per workgroup of every optimizer kernel; a power of two. */
  workgroupSize: number;
  /** Most stage-1 partial sums per tensor in sum_squares (its stage-1 workgroups). */
  maxPartials: number;
  /**
   * Most workgroups of the element-wise kernels (adamw, lora_*); beyond that, invocations step
   * through the tensor. Also capped by the adapter's workgroups per dimension (65535 at least).
   */
  maxWorkgroups: number;
}

/** CPU adapters (SwiftShader, lavapipe): 64-wide workgroups, few partial sums. */
export const CPU_OPTIMIZER_TUNING: Readonly<OptimizerTuning> = Object.freeze({ workgroupSize: 64, maxPartials: 64, maxWorkgroups: 65535 });
/** GPUs: 256-wide workgroups and up to 1024 of them per tensor norm (enough to fill the device). */
export const GPU_OPTIMIZER_TUNING: Readonly<OptimizerTuning> = Object.freeze({ workgroupSize: 256, maxPartials: 1024, maxWorkgroups: 65535 });

export function optimizerTuning(device: GPUDevice): Readonly<OptimizerTuning> {
  return isCpuDevice(device) ? CPU_OPTIMIZER_TUNING : GPU_OPTIMIZER_TUNING;
}

// ---------------------------------------------------------------------------------------------
// The loss gradient (kernels/train/loss.ts)

export interface LossTuning {
  /**
   * Invocations per workgroup of loss_grad (one workgroup per logits row), before the device's
   * limits; independent of the vocabulary, so one pipeline per device serves every call.
   */
  workgroupSize: number;
}

export const CPU_LOSS_TUNING: LossTuning = { workgroupSize: 64 };
export const GPU_LOSS_TUNING: LossTuning = { workgroupSize: 256 };

export function lossTuning(device: GPUDevice): LossTuning {
  return isCpuDevice(device) ? CPU_LOSS_TUNING : GPU_LOSS_TUNING;
}

// ---------------------------------------------------------------------------------------------
// Attention (kernels/train/attention.ts)

export interface AttentionTuning {
  /**
   * Invocations per workgroup of the fused kernels, before the device's limits. Independent of T
   * and D: one pipeline per device serves every batch shape (a new one costs seconds to compile
   * on SwiftShader).
   */
  workgroupSize: number;
  /** The path used until `pickAttentionPath` has chosen (or when it does not time them). */
  defaultPath: 'fused' | 'matmul';
  /** Whether `pickAttentionPath` times both paths without being asked to. */
  measure: boolean;
  /** The shape timed, and how many times (after one warm-up). */
  measureDims: { batch: number; seq: number; heads: number; headDim: number };
  measureRepeats: number;
}

/**
 * CPU adapters: 'matmul' without measuring. On SwiftShader (2 cores), 4 × 64 tokens, 4 heads of
 * 32, the forward took ~10 ms against ~160 ms for 'fused', the backward ~12 ms against ~170 ms
 * (SwiftShader pays a thread switch per invocation at every barrier, and 'fused' has ~15 per
 * row). When asked to measure: 2 × 32 tokens, 2 heads of 16.
 */
export const CPU_ATTENTION_TUNING: AttentionTuning = {
  workgroupSize: 64,
  defaultPath: 'matmul',
  measure: false,
  measureDims: { batch: 2, seq: 32, heads: 2, headDim: 16 },
  measureRepeats: 2,
};

/** GPUs: 'fused' until both are timed on a GPT-2-small-like shape, 4 × 256 tokens, 12 heads of 64. */
export const GPU_ATTENTION_TUNING: AttentionTuning = {
  workgroupSize: 256,
  defaultPath: 'fused',
  measure: true,
  measureDims: { batch: 4, seq: 256, heads: 12, headDim: 64 },
  measureRepeats: 10,
};

export function attentionTuning(device: GPUDevice): AttentionTuning {
  return isCpuDevice(device) ? CPU_ATTENTION_TUNING : GPU_ATTENTION_TUNING;
}
