/**
 * How every training kernel is launched: WGSL source + override constants → a cached pipeline;
 * shape parameters → a small uniform buffer (cached per device by content, since a training
 * run repeats the same shapes every step); storage buffers → @group(0) @binding(0..n-1) in
 * order, with the uniform (when given) bound last. Dispatches are recorded into the caller's
 * command encoder, so a whole training step is one submit.
 */
import { bindBuffers, computePipeline, createUniformBuffer } from '../../gpu/buffers';

/** One uniform value: u32 unless written as `{ f32: x }` or `{ i32: x }`. */
export type UniformValue = number | { f32: number } | { i32: number };

const uniformCache = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();
const MAX_CACHED_UNIFORMS = 4096;

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

export interface KernelLaunch {
  /** WGSL source of the kernel (entry point `main` unless `entryPoint` says otherwise). */
  code: string;
  label: string;
  /** Pipeline-overridable constants (`override` in WGSL): workgroup sizes, flags, tile sizes. */
  constants?: Record<string, number>;
  entryPoint?: string;
  /** Storage buffers, bound to @binding(0..n-1) in order. */
  buffers: GPUBuffer[];
  /** Uniform words, bound at @binding(n) right after the storage buffers. */
  uniforms?: readonly UniformValue[];
  workgroups: [number, number?, number?];
}

/** Records one dispatch into `encoder` (its own compute pass). Zero workgroups records nothing. */
export function launch(device: GPUDevice, encoder: GPUCommandEncoder, k: KernelLaunch): void {
  const [x, y = 1, z = 1] = k.workgroups;
  if (x === 0 || y === 0 || z === 0) return;
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max || z > max) throw new Error(`${k.label}: ${x}×${y}×${z} workgroups exceed the adapter's ${max} per dimension`);
  const pipeline = computePipeline(device, k.code, k.label, k.constants ?? {}, k.entryPoint ?? 'main');
  const buffers = k.uniforms ? [...k.buffers, uniformBuffer(device, k.uniforms, `${k.label} params`)] : k.buffers;
  const bindGroup = bindBuffers(device, pipeline, buffers, k.label);
  const pass = encoder.beginComputePass({ label: k.label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y, z);
  pass.end();
}

/** Workgroups needed to cover `n` items with `size` per workgroup. */
export const groups = (n: number, size: number): number => Math.ceil(n / size);
