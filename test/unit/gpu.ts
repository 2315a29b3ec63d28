/**
 * Shared by unit tests: one real WebGPU device per test file (Dawn in Node), acquired on first
 * use, so tests that never touch the GPU run without an adapter. A test that needs the GPU and
 * cannot have it fails with instructions; GPU tests are never skipped.
 */
import { acquireDevice } from '../../workers/gpu/device';
import { NODE_GPU_ADVICE, nodeGpu } from '../../workers/node/gpu';

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
