/**
 * How every kernel is dispatched, the one path for all kernel families: WGSL source + override
 * constants → a pipeline cached per device; shape parameters → a small uniform buffer (cached per
 * device by content, since a training run repeats the same shapes every step); storage bindings →
 * @group(0) @binding(0..n-1) in order, with the uniform (when given) bound last. A binding is a
 * whole buffer or a sub-range of one (`{ buffer, offset, size }`: rows of a larger logits buffer,
 * one chunk's slot of a uniform array). Dispatches are recorded into the caller's command encoder
 * (a compute pass of their own, so a whole training step is one submit) or into a compute pass
 * the caller has open (many dispatches in one pass, as the divergence kernels record them).
 */
import { createUniformBuffer } from './buffers';

const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * A compute pipeline for WGSL `code`, with pipeline-overridable constants (`override` in WGSL:
 * workgroup sizes, chunk lengths). Cached per device, code and constants.
 */
function computePipeline(device: GPUDevice, code: string, label: string, constants: Record<string, number>, entryPoint: string): GPUComputePipeline {
  let cache = pipelineCache.get(device);
  if (!cache) pipelineCache.set(device, (cache = new Map()));
  const key = `${entryPoint}|${JSON.stringify(constants)}|${code}`;
  let pipeline = cache.get(key);
  if (!pipeline) {
    const module = device.createShaderModule({ label, code });
    pipeline = device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint, constants } });
    cache.set(key, pipeline);
  }
  return pipeline;
}

/** One uniform value: u32 unless written as `{ f32: x }` or `{ i32: x }`. */
export type UniformValue = number | { f32: number } | { i32: number };

const uniformCache = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();
export const MAX_CACHED_UNIFORMS = 4096;

/**
 * Packs `values` as consecutive 4-byte words (u32 by default) into a uniform buffer, reusing a
 * buffer with the same bytes. The WGSL struct must declare its fields in the same order, all
 * 4-byte scalars.
 */
export function uniformBuffer(device: GPUDevice, values: readonly UniformValue[], label = 'params'): GPUBuffer {
  const words = new ArrayBuffer(Math.max(16, Math.ceil((values.length * 4) / 16) * 16));
  const view = new DataView(words);
  values.forEach((value, i) => {
    if (typeof value === 'number') {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`${label}: uniform word ${i} = ${value} is not a u32`);
      view.setUint32(i * 4, value, true);
    } else if ('f32' in value) view.setFloat32(i * 4, value.f32, true);
    else view.setInt32(i * 4, value.i32, true);
  });
  const key = Array.from(new Uint32Array(words)).join(',');
  let cache = uniformCache.get(device);
  if (!cache) uniformCache.set(device, (cache = new Map()));
  let buffer = cache.get(key);
  if (!buffer) {
    if (cache.size >= MAX_CACHED_UNIFORMS) {
      // Shapes that change every call (tests over random shapes): start over rather than grow.
      // Buffers still referenced by recorded commands stay valid until those commands finish.
      cache.clear();
    }
    buffer = createUniformBuffer(device, new Uint8Array(words), label);
    cache.set(key, buffer);
  }
  return buffer;
}

/** A whole buffer, or a sub-range of one (offset a multiple of the adapter's binding alignment). */
export type KernelBinding = GPUBuffer | GPUBufferBinding;

export interface KernelLaunch {
  /** WGSL source of the kernel (entry point `main` unless `entryPoint` says otherwise). */
  code: string;
  label: string;
  /** Pipeline-overridable constants (`override` in WGSL): workgroup sizes, flags, tile sizes. */
  constants?: Record<string, number>;
  entryPoint?: string;
  /** Bound to @binding(0..n-1) in order: storage buffers, or a uniform range the caller wrote. */
  buffers: readonly KernelBinding[];
  /** Uniform words, bound at @binding(n) right after `buffers`. */
  uniforms?: readonly UniformValue[];
  workgroups: [number, number?, number?];
}

function isPass(target: GPUCommandEncoder | GPUComputePassEncoder): target is GPUComputePassEncoder {
  return 'dispatchWorkgroups' in target;
}

/**
 * Records one dispatch: into `target`'s open compute pass, or, given a command encoder, in a
 * compute pass of its own. Zero workgroups records nothing.
 */
export function launch(device: GPUDevice, target: GPUCommandEncoder | GPUComputePassEncoder, k: KernelLaunch): void {
  const [x, y = 1, z = 1] = k.workgroups;
  if (x === 0 || y === 0 || z === 0) return;
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max || z > max) throw new Error(`${k.label}: ${x}×${y}×${z} workgroups exceed the adapter's ${max} per dimension`);
  const pipeline = computePipeline(device, k.code, k.label, k.constants ?? {}, k.entryPoint ?? 'main');
  const bindings = k.uniforms ? [...k.buffers, uniformBuffer(device, k.uniforms, `${k.label} params`)] : k.buffers;
  const bindGroup = device.createBindGroup({
    label: k.label,
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.map((b, binding) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } })),
  });
  const pass = isPass(target) ? target : target.beginComputePass({ label: k.label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y, z);
  if (pass !== target) pass.end();
}

/** Workgroups needed to cover `n` items with `size` per workgroup. */
export const groups = (n: number, size: number): number => Math.ceil(n / size);
