/**
 * Before any unit test: make sure a real WebGPU adapter exists in Node. If none can be had the
 * whole run fails here with instructions; GPU tests are never skipped silently.
 */
import { acquireDevice } from '../../workers/gpu/device';
import { NODE_GPU_ADVICE, nodeGpu } from '../../workers/node/gpu';

export default async function setup(): Promise<void> {
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
  acquired.device.destroy();
}
