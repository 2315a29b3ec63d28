/**
 * Counts the GPU buffers alive on one device: every `createBuffer` on it (the lab's kernels and
 * onnxruntime-web's, which allocates on the device the lab gives it), less those destroyed or
 * garbage-collected. The soak benchmark reads it (`memory.report`) at the start and the end of a
 * long run: a count that keeps growing is a leak.
 */
import type { BufferCount } from '../contract/reports';

export type { BufferCount };

export function countBuffers(device: GPUDevice): () => BufferCount {
  const count = { buffers: 0, bytes: 0, created: 0 };
  /** Buffers alive by label (onnxruntime-web's have none): what grows, when something does. */
  const byLabel = new Map<string, { buffers: number; bytes: number }>();
  const released = new WeakSet<GPUBuffer>();
  const tally = (label: string, size: number, sign: 1 | -1) => {
    count.buffers += sign;
    count.bytes += sign * size;
    const t = byLabel.get(label) ?? { buffers: 0, bytes: 0 };
    t.buffers += sign;
    t.bytes += sign * size;
    byLabel.set(label, t);
  };
  // A buffer dropped without destroy() is freed by the garbage collector: it stops counting then.
  const collected = new FinalizationRegistry<[string, number]>(([label, size]) => tally(label, size, -1));
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buffer = create(descriptor);
    const size = descriptor.size;
    const label = descriptor.label || '(no label)';
    tally(label, size, 1);
    count.created++;
    collected.register(buffer, [label, size], buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      if (!released.has(buffer)) {
        released.add(buffer);
        collected.unregister(buffer);
        tally(label, size, -1);
      }
      destroy();
    };
    return buffer;
  };
  return () => ({
    ...count,
    byLabel: [...byLabel].filter(([, t]) => t.buffers !== 0).map(([label, t]) => ({ label, ...t })).sort((a, b) => b.buffers - a.buffers || b.bytes - a.bytes).slice(0, 40),
  });
}
