/**
 * Scratch buffers the training kernels' wrappers keep per device (attention's dscores and
 * per-head work, LayerNorm's parameter-gradient partial sums, the sum-of-squares partials).
 */
import { createStorageBuffer } from '../../gpu/buffers';

const scratchCache = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();

/**
 * A per-device buffer of at least `bytes` under `name`, replaced by a larger one when too small.
 * The old one is not destroyed: commands already recorded may still use it (it is freed when
 * nothing references it).
 */
export function deviceScratch(device: GPUDevice, name: string, bytes: number): GPUBuffer {
  let cache = scratchCache.get(device);
  if (!cache) scratchCache.set(device, (cache = new Map()));
  let scratch = cache.get(name);
  if (!scratch || scratch.size < bytes) {
    scratch = createStorageBuffer(device, bytes, name);
    cache.set(name, scratch);
  }
  return scratch;
}
