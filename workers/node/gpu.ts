/**
 * WebGPU in Node: Dawn's Node binding (npm `webgpu`) over a Vulkan driver. On a machine without
 * a GPU, SwiftShader's Vulkan driver from Debian's chromium package serves; we point the Vulkan
 * loader at it unless the caller chose a driver with VK_ICD_FILENAMES / VK_DRIVER_FILES.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export const NODE_GPU_ADVICE =
  'To run WebGPU in Node the lab needs a Vulkan driver: on Debian/Ubuntu `apt-get install -y chromium libvulkan1` ' +
  `(SwiftShader's CPU driver, found at ${SWIFTSHADER_ICD}), or a GPU's Vulkan driver with VK_ICD_FILENAMES pointing at its ICD JSON.`;

let cached: GPU | undefined;

/** The `GPU` object (what `navigator.gpu` is in a browser), installing WebGPU's globals once. */
export function nodeGpu(): GPU {
  if (cached) return cached;
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  // Quiet a harmless warning from the Vulkan loader about a missing XDG_RUNTIME_DIR.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const require = createRequire(import.meta.url);
  const { create, globals } = require('webgpu') as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, globals);
  allowSharedMemoryWrites(globals.GPUQueue as { prototype: GPUQueue });
  cached = create([]);
  // onnxruntime-web looks for navigator.gpu to decide that WebGPU exists; Node 20 has no navigator.
  const nav = ((globalThis as { navigator?: object }).navigator ??= {}) as { gpu?: GPU };
  if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: cached, configurable: true });
  return cached;
}

/**
 * Dawn's Node binding rejects `queue.writeBuffer` from views on SharedArrayBuffer memory, which
 * is where onnxruntime-web's threaded wasm heap lives ("Invalid argument"). Browsers accept it.
 * Copy such views into plain memory first; other writes pass through untouched.
 */
function allowSharedMemoryWrites(queueClass: { prototype: GPUQueue }): void {
  const proto = queueClass.prototype as GPUQueue & { __opdShared?: boolean };
  if (proto.__opdShared) return;
  const original = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset?: number, size?: number) {
    const bytes = ArrayBuffer.isView(data) ? data.buffer : data;
    if (typeof SharedArrayBuffer !== 'undefined' && bytes instanceof SharedArrayBuffer) {
      const elementSize = ArrayBuffer.isView(data) ? ((data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1) : 1;
      const base = ArrayBuffer.isView(data) ? data.byteOffset : 0;
      const total = ArrayBuffer.isView(data) ? data.byteLength : (data as SharedArrayBuffer).byteLength;
      const start = base + (dataOffset ?? 0) * elementSize;
      const length = size !== undefined ? size * elementSize : total - (dataOffset ?? 0) * elementSize;
      const copy = new Uint8Array(length);
      copy.set(new Uint8Array(bytes, start, length));
      return original.call(this, buffer, offset, copy.buffer, 0, length);
    }
    return original.call(this, buffer, offset, data as BufferSource, dataOffset, size);
  } as GPUQueue['writeBuffer'];
  proto.__opdShared = true;
}
