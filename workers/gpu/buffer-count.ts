/**
 * Counts the GPU buffers alive on one device: every `createBuffer` on it (the lab's kernels and
 * onnxruntime-web's, which allocates on the device the lab gives it), less those destroyed or
 * garbage-collected. The soak benchmark reads it (`memory.report`) at the start and the end of a
 * long run: a count that keeps growing is a leak.
 */
import type { BufferCount } from '../contract/reports';

export type { BufferCount };

export function countBuffers(device: GPUDevice): () => BufferCount {
  const count: BufferCount = { buffers: 0, bytes: 0, created: 0 };
  const released = new WeakSet<GPUBuffer>();
  const release = (size: number) => {
    count.buffers--;
    count.bytes -= size;
  };
  // A buffer dropped without destroy() is freed by the garbage collector: it stops counting then.
  const collected = new FinalizationRegistry<number>(release);
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buffer = create(descriptor);
    const size = descriptor.size;
    count.buffers++;
    count.bytes += size;
    count.created++;
    collected.register(buffer, size, buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      if (!released.has(buffer)) {
        released.add(buffer);
        collected.unregister(buffer);
        release(size);
      }
      destroy();
    };
    return buffer;
  };
  return () => ({ ...count });
}
