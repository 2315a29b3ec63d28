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
  /** The graph's external data files (path as the graph names it, relative to the .onnx); default: those attached to the bytes. */
  externalData?: readonly ExternalDataFile[];
}

/** One external data file of an ONNX graph: `path` as its initializers name it (`model.onnx_data`). */
export interface ExternalDataFile {
  path: string;
  data: Uint8Array;
}

/**
 * External data travels with the graph's bytes: the folder reader attaches it, and every session
 * created from those bytes (sampling, scoring, the run loop) hands it to onnxruntime-web, without
 * each caller passing it along.
 */
const attached = new WeakMap<Uint8Array, readonly ExternalDataFile[]>();

export function attachExternalData(model: Uint8Array, files: readonly ExternalDataFile[]): Uint8Array {
  if (files.length) attached.set(model, files);
  return model;
}

export function externalDataOf(model: Uint8Array): readonly ExternalDataFile[] {
  return attached.get(model) ?? [];
}

export async function createSession(device: GPUDevice, model: Uint8Array, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const externalData = options.externalData ?? externalDataOf(model);
  return ort.InferenceSession.create(model, {
    executionProviders: [{ name: 'webgpu', device } as ort.InferenceSession.WebGpuExecutionProviderOption],
    preferredOutputLocation: options.gpuOutputs
      ? Object.fromEntries(options.gpuOutputs.map((name) => [name, 'gpu-buffer' as const]))
      : options.outputsOnGpu ? 'gpu-buffer' : 'cpu',
    graphOptimizationLevel: 'all',
    ...(externalData.length ? { externalData: externalData.map((f) => ({ path: f.path, data: f.data })) } : {}),
    ...(options.logSeverityLevel !== undefined ? { logSeverityLevel: options.logSeverityLevel, logVerbosityLevel: 0 } : {}),
  });
}

/**
 * Why a float16 graph (onnx-community's fp16/q4f16) cannot run on `device`, or null when it can:
 * onnxruntime-web accepts such a graph on a device without shader-f16 and fails only at the first
 * run ("requires f16 but the device does not support it"); the lab says so before, naming the way out.
 */
export function float16Refusal(device: GPUDevice): string | null {
  if (device.features.has('shader-f16')) return null;
  return 'computes in float16, and this adapter has no shader-f16: load the folder with dtype fp32, q4 or quantized (whichever files it has), or use an adapter with shader-f16';
}

/** A float32 tensor that *is* `buffer` on the GPU: ORT reads it in place. */
export function gpuTensor(buffer: GPUBuffer, dims: number[]): ort.Tensor {
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims });
}

export const ORT_VERSION: string = ort.env.versions.web ?? 'unknown';
