/** The CLI's GPU: one device from Dawn's WebGPU in Node, with onnxruntime-web on it. */
import { acquireDevice } from '../workers/gpu/device';
import { NODE_GPU_ADVICE, nodeGpu } from '../workers/node/gpu';
import { configureOrt } from '../workers/ort/runtime';

let device: Promise<GPUDevice> | undefined;

export function cliDevice(): Promise<GPUDevice> {
  device ??= acquireDevice(nodeGpu()).then((a) => {
    if (!a.ok) throw new Error(`${a.error.message} ${NODE_GPU_ADVICE}`);
    configureOrt({ numThreads: 1 });
    return a.device;
  });
  return device;
}
