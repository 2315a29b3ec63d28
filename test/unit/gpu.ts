/** Shared by unit tests: one real WebGPU device per test file (Dawn in Node). */
import { acquireDevice } from '../../workers/gpu/device';
import { NODE_GPU_ADVICE, nodeGpu } from '../../workers/node/gpu';

let devicePromise: Promise<GPUDevice> | undefined;

export function testDevice(): Promise<GPUDevice> {
  devicePromise ??= acquireDevice(nodeGpu()).then((a) => {
    if (!a.ok) throw new Error(`${a.error.message}\n${NODE_GPU_ADVICE}`);
    return a.device;
  });
  return devicePromise;
}
