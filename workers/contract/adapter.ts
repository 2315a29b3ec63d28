/** What the page shows about the GPU and the runtime the lab runs on. */

/** Limits of the adapter that the lab reads, shows and plans its kernels around. */
export interface GpuLimitsSummary {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
}

/** What the status bar shows about the GPU the lab runs on. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** Optional features that the lab requested because the adapter has them. */
  features: string[];
  limits: GpuLimitsSummary;
}

export interface RuntimeSummary {
  /** The execution provider onnxruntime-web sessions use: always the lab's shared WebGPU device. */
  executionProvider: 'webgpu';
  ortVersion: string;
  /** True when ORT sessions were created on the very GPUDevice our kernels use. */
  sharedDevice: boolean;
  crossOriginIsolated: boolean;
}
