/**
 * Shared by unit tests: one real WebGPU device per test file (Dawn in Node), acquired on first
 * use, so tests that never touch the GPU run without an adapter. A test that needs the GPU and
 * cannot have it fails with instructions; GPU tests are never skipped.
 */
import { acquireDevice } from '../../workers/gpu/device';
import { NODE_GPU_ADVICE, nodeGpu } from '../../workers/node/gpu';
import { LAVAPIPE_ADVICE } from '../../scripts/vulkan-drivers.mjs';

let devicePromise: Promise<GPUDevice> | undefined;

async function acquire(): Promise<GPUDevice> {
  let gpu: GPU;
  try {
    gpu = nodeGpu();
  } catch (e) {
    throw new Error(`Could not load Dawn's Node binding (npm 'webgpu'): ${String(e)}\n${NODE_GPU_ADVICE}`);
  }
  const acquired = await acquireDevice(gpu);
  if (!acquired.ok) throw new Error(`No usable WebGPU adapter in Node: ${acquired.error.message}\n${NODE_GPU_ADVICE}`);
  const { vendor, architecture } = acquired.summary;
  console.log(`[unit] WebGPU adapter: ${vendor} / ${architecture}${acquired.summary.isFallbackAdapter ? ' (fallback, CPU)' : ''}`);
  return acquired.device;
}

export function testDevice(): Promise<GPUDevice> {
  devicePromise ??= acquire();
  return devicePromise;
}

/**
 * The device of the f16 tests (test/unit/*.f16.test.ts, run by vitest.f16.config.ts on Mesa's
 * lavapipe): the same device, which must have `shader-f16`. Without it they fail, saying what to
 * install; they are never skipped.
 */
export async function testF16Device(): Promise<GPUDevice> {
  const driver = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES ?? 'the default Vulkan driver';
  let device: GPUDevice;
  try {
    device = await testDevice();
  } catch (e) {
    throw new Error(`The f16 tests found no WebGPU adapter on ${driver}: ${LAVAPIPE_ADVICE}.\n${String(e)}`);
  }
  if (!device.features.has('shader-f16')) {
    const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const adapter = info ? `${info.vendor} / ${info.architecture}` : 'this adapter';
    throw new Error(`The f16 tests need a WebGPU adapter with shader-f16, and ${adapter} (Vulkan driver ${driver}) has none: ${LAVAPIPE_ADVICE}.`);
  }
  return device;
}
