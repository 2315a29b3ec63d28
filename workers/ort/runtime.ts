/**
 * onnxruntime-web on the lab's own GPUDevice. Every session the lab creates runs on the WebGPU
 * execution provider of the `onnxruntime-web/webgpu` build, given the device our kernels use, so
 * tensors move between ORT and our WGSL as GPU buffers, never through the CPU.
 */
import * as ort from 'onnxruntime-web/webgpu';

export type Ort = typeof ort;
export { ort };

export interface OrtSetup {
  /** Where ORT's .wasm/.mjs files are served; the lab serves them itself (no CDN). */
  wasmPaths?: string;
  /** wasm threads for ORT's CPU side; the heavy work runs on the GPU. */
  numThreads?: number;
}

export function configureOrt(setup: OrtSetup): void {
  if (setup.wasmPaths) ort.env.wasm.wasmPaths = setup.wasmPaths;
  if (setup.numThreads !== undefined) ort.env.wasm.numThreads = setup.numThreads;
  ort.env.logLevel = 'warning';
}

export interface SessionOptions {
  /** Leave every output on the GPU (`tensor.gpuBuffer`) instead of downloading it. */
  outputsOnGpu?: boolean;
  /** Only these outputs stay on the GPU, the others are downloaded (overrides `outputsOnGpu`). */
  gpuOutputs?: readonly string[];
  /** ORT's log level for this session (0 verbose … 4 fatal); verbose logs show node placement. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export async function createSession(device: GPUDevice, model: Uint8Array, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: [{ name: 'webgpu', device } as ort.InferenceSession.WebGpuExecutionProviderOption],
    preferredOutputLocation: options.gpuOutputs
      ? Object.fromEntries(options.gpuOutputs.map((name) => [name, 'gpu-buffer' as const]))
      : options.outputsOnGpu ? 'gpu-buffer' : 'cpu',
    graphOptimizationLevel: 'all',
    ...(options.logSeverityLevel !== undefined ? { logSeverityLevel: options.logSeverityLevel, logVerbosityLevel: 0 } : {}),
  });
}

/** A float32 tensor that *is* `buffer` on the GPU: ORT reads it in place. */
export function gpuTensor(buffer: GPUBuffer, dims: number[]): ort.Tensor {
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims });
}

export const ORT_VERSION: string = ort.env.versions.web ?? 'unknown';
