import { describe, expect, it } from 'vitest';
import { acquireDevice, limitsBelowMinimum, MINIMUM_LIMITS } from '../../workers/gpu/device';
import { testDevice } from './gpu';
import { nodeGpu } from '../../workers/node/gpu';

/** A stand-in for navigator.gpu whose adapter has the given limits (no device is ever made). */
function gpuWithAdapter(limits: Partial<Record<string, number>> | null): GPU {
  return {
    requestAdapter: async () =>
      limits === null
        ? null
        : ({
            limits: { ...MINIMUM_LIMITS, ...limits },
            features: new Set<string>(),
            info: { vendor: 'test', architecture: 'test', device: '', description: '' },
            requestDevice: async () => {
              throw new Error('a test adapter makes no device');
            },
          } as unknown as GPUAdapter),
  } as unknown as GPU;
}

describe('acquiring the lab device', () => {
  it('says navigator.gpu is missing, with a different reason on insecure pages', async () => {
    const plain = await acquireDevice(undefined);
    expect(plain.ok).toBe(false);
    if (plain.ok) return;
    expect(plain.error.code).toBe('no-webgpu');
    expect(plain.error.message).toContain('navigator.gpu is missing');
    const insecure = await acquireDevice(undefined, { secure: false });
    expect(!insecure.ok && insecure.error.message).toContain('not a secure context');
  });

  it('reports no adapter when requestAdapter gives none', async () => {
    const r = await acquireDevice(gpuWithAdapter(null));
    expect(!r.ok && r.error.code).toBe('no-adapter');
  });

  it('names every limit that is below the minimum (compatibility-mode adapter)', async () => {
    const r = await acquireDevice(gpuWithAdapter({ maxStorageBuffersPerShaderStage: 4, maxComputeInvocationsPerWorkgroup: 128 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('adapter-below-minimum');
    expect(r.error.message).toContain('maxStorageBuffersPerShaderStage: has 4, needs 8');
    expect(r.error.message).toContain('maxComputeInvocationsPerWorkgroup: has 128, needs 256');
    expect(limitsBelowMinimum({ ...MINIMUM_LIMITS })).toEqual([]);
  });

  it('turns a device request failure into an error value', async () => {
    const r = await acquireDevice(gpuWithAdapter({}));
    expect(!r.ok && r.error.code).toBe('device-request-failed');
    expect(!r.ok && r.error.detail).toContain('a test adapter makes no device');
  });

  it('gets the real adapter its full limits, not the WebGPU defaults', async () => {
    const device = await testDevice();
    const adapter = (await nodeGpu().requestAdapter())!;
    // SwiftShader offers 1 GiB bindings; a device made without requiredLimits gets 128 MiB.
    for (const name of Object.keys(MINIMUM_LIMITS) as (keyof typeof MINIMUM_LIMITS)[]) {
      expect(device.limits[name], name).toBe(adapter.limits[name]);
    }
  });
});
