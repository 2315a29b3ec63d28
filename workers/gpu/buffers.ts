/**
 * Small helpers every kernel wrapper uses: storage and uniform buffers from typed arrays, reading
 * a buffer back, and turning GPU errors into exceptions. Dispatching a kernel: launch.ts.
 */

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** WebGPU wants buffer sizes that are multiples of 4; we round every size up to that. */
export function alignTo(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

/**
 * Dawn (Node) rejects writeBuffer from views on SharedArrayBuffer memory (e.g. a wasm heap);
 * copying such a view into a plain ArrayBuffer first is correct everywhere.
 */
function plainView(data: ArrayBufferView): ArrayBufferView {
  if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) {
    return new Uint8Array(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return data;
}

export function writeBuffer(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  const view = plainView(data);
  device.queue.writeBuffer(buffer, byteOffset, view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
}

/**
 * Storage buffers are padded to 16 bytes: onnxruntime-web's WebGPU kernels read elementwise
 * inputs as vec4, so a buffer handed to it with `Tensor.fromGpuBuffer` whose size is not a
 * multiple of 16 gets its last lanes read out of bounds (measured: wrong values at the tail).
 */
export const STORAGE_ALIGNMENT = 16;

/** A storage buffer (also copyable both ways) holding `data`, or `data` bytes of zeros. */
export function createStorageBuffer(device: GPUDevice, data: ArrayBufferView | number, label: string, extraUsage = 0): GPUBuffer {
  const byteLength = typeof data === 'number' ? data : data.byteLength;
  const buffer = device.createBuffer({ label, size: Math.max(STORAGE_ALIGNMENT, alignTo(byteLength, STORAGE_ALIGNMENT)), usage: STORAGE() | extraUsage });
  if (typeof data !== 'number') {
    if (data.byteLength % 4 === 0) writeBuffer(device, buffer, data);
    else {
      const padded = new Uint8Array(alignTo(data.byteLength, 4));
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      writeBuffer(device, buffer, padded);
    }
  }
  return buffer;
}

export function createUniformBuffer(device: GPUDevice, data: ArrayBufferView, label: string): GPUBuffer {
  const buffer = device.createBuffer({ label, size: alignTo(Math.max(16, data.byteLength), 16), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  writeBuffer(device, buffer, data);
  return buffer;
}

/** Copies `byteLength` bytes of `buffer` (from `byteOffset`) to the CPU. */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, byteLength = buffer.size, byteOffset = 0): Promise<ArrayBuffer> {
  const size = alignTo(byteLength, 4);
  const staging = device.createBuffer({ label: `read ${buffer.label}`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0, byteLength);
  staging.unmap();
  staging.destroy();
  return copy;
}

/**
 * Several buffers' leading bytes copied to the CPU at once: one staging buffer, one submit, one
 * map (each `readBuffer` waits for its own), for a caller that needs them all.
 */
export async function readBuffers(device: GPUDevice, parts: readonly { buffer: GPUBuffer; byteLength: number }[]): Promise<ArrayBuffer[]> {
  const offsets: number[] = [];
  let total = 0;
  for (const p of parts) {
    offsets.push(total);
    total += alignTo(p.byteLength, 4);
  }
  const staging = device.createBuffer({ label: `read ${parts.map((p) => p.buffer.label).join(', ')}`, size: Math.max(4, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  parts.forEach((p, i) => encoder.copyBufferToBuffer(p.buffer, 0, staging, offsets[i], alignTo(p.byteLength, 4)));
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const range = staging.getMappedRange();
  const copies = parts.map((p, i) => range.slice(offsets[i], offsets[i] + p.byteLength));
  staging.unmap();
  staging.destroy();
  return copies;
}

export async function readFloat32(device: GPUDevice, buffer: GPUBuffer, count: number, offsetElements = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, count * 4, offsetElements * 4));
}

/**
 * Runs `fn` inside a validation + out-of-memory error scope and throws if the GPU reported an
 * error, so a wrong binding or an oversize buffer is an exception, not silently wrong output.
 */
export async function withGpuErrorScope<T>(device: GPUDevice, what: string, fn: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = await fn();
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    const err = validation ?? oom;
    if (err) throw new Error(`${what}: GPU ${validation ? 'validation' : 'out-of-memory'} error: ${err.message}`);
  }
  return result;
}
