/**
 * Acquiring the lab's one GPUDevice: find an adapter, check it against the lab's minimum limits,
 * ask for the optional features it has and for its full limits (the defaults a device gets
 * otherwise are far below what large vocabularies need), and watch for the device being lost.
 *
 * Runs in a browser worker (navigator.gpu) and in Node (Dawn's binding): the caller passes `gpu`.
 */
import type { AdapterSummary, GpuLimitsSummary } from '../contract/adapter';
import type { LabError } from '../contract/errors';

/** Optional features the lab uses when the adapter offers them; none is required. */
export const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16'] as const;

/**
 * The lab's minimum: the WebGPU core defaults. Adapters below them are "compatibility mode" or
 * otherwise restricted devices on which our kernels' bind groups and workgroups do not fit.
 */
export const MINIMUM_LIMITS: GpuLimitsSummary = {
  maxBufferSize: 256 * 1024 * 1024,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  maxStorageBuffersPerShaderStage: 8,
};

const LIMIT_NAMES = Object.keys(MINIMUM_LIMITS) as (keyof GpuLimitsSummary)[];

export function readLimits(limits: GPUSupportedLimits): GpuLimitsSummary {
  const out = {} as GpuLimitsSummary;
  for (const name of LIMIT_NAMES) out[name] = Number(limits[name]);
  return out;
}

/** The limits below the lab's minimum, each as "name: has X, needs Y". Empty when the adapter is fine. */
export function limitsBelowMinimum(limits: GpuLimitsSummary): string[] {
  return LIMIT_NAMES.filter((n) => !(limits[n] >= MINIMUM_LIMITS[n])).map(
    (n) => `${n}: has ${limits[n]}, needs ${MINIMUM_LIMITS[n]}`,
  );
}

export function describeAdapter(adapter: GPUAdapter, features: string[]): AdapterSummary {
  // `info` is the current spec; `isFallbackAdapter` moved from the adapter into it.
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const fallback =
    (info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter ??
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    false;
  return {
    vendor: info?.vendor || 'unknown',
    architecture: info?.architecture || 'unknown',
    device: info?.device || '',
    description: info?.description || '',
    isFallbackAdapter: Boolean(fallback) || /swiftshader|llvmpipe|lavapipe/i.test(`${info?.architecture} ${info?.description}`),
    features,
    limits: readLimits(adapter.limits),
  };
}

export type AcquiredDevice =
  | { ok: true; adapter: GPUAdapter; device: GPUDevice; summary: AdapterSummary }
  | { ok: false; error: LabError };

/**
 * Finds an adapter and creates the lab's device. Never throws: every way this can fail is an
 * error value with its own code and advice.
 */
export async function acquireDevice(gpu: GPU | undefined, context: { secure?: boolean } = {}): Promise<AcquiredDevice> {
  if (!gpu) {
    const message =
      context.secure === false
        ? 'WebGPU is missing because this page is not a secure context (navigator.gpu is missing): browsers offer WebGPU only to ' +
          'https:// pages and to http://localhost / http://127.0.0.1. Open the lab on the machine that runs it at http://localhost:5173, ' +
          'or serve it over https.'
        : 'This browser does not offer WebGPU (navigator.gpu is missing), which the lab needs to run models: ' +
          'use Chrome or Edge 113+, or switch WebGPU on in your browser.';
    return { ok: false, error: { code: 'no-webgpu', message } };
  }
  let adapter: GPUAdapter | null = null;
  let adapterError: unknown;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    adapterError = e;
  }
  if (!adapter) {
    return {
      ok: false,
      error: {
        code: 'no-adapter',
        message:
          'No WebGPU adapter is available: the browser has WebGPU but offers no GPU to use (the GPU may be blocklisted ' +
          'or WebGPU switched off; Chromium on Linux needs to be started with --enable-unsafe-webgpu).',
        detail: adapterError ? String(adapterError) : undefined,
      },
    };
  }
  const limits = readLimits(adapter.limits);
  const below = limitsBelowMinimum(limits);
  if (below.length > 0) {
    return {
      ok: false,
      error: {
        code: 'adapter-below-minimum',
        message:
          `The WebGPU adapter is below the lab's minimum (${below.join('; ')}). ` +
          'This happens with WebGPU "compatibility mode" or very old GPUs. Try another browser or machine, ' +
          'or a browser flag that gives the full WebGPU core limits.',
      },
    };
  }
  const features = OPTIONAL_FEATURES.filter((f) => adapter!.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of Object.keys(limits) as (keyof GpuLimitsSummary)[]) requiredLimits[name] = limits[name];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: features as GPUFeatureName[], requiredLimits });
  } catch (e) {
    return {
      ok: false,
      error: {
        code: 'device-request-failed',
        message: 'The GPU adapter refused to create a device for the lab. Close other tabs using the GPU and reload; if it persists, restart the browser.',
        detail: String(e),
      },
    };
  }
  return { ok: true, adapter, device, summary: describeAdapter(adapter, [...features]) };
}

/** Calls `onLost` once if the device is lost for any reason other than our own destroy(). */
export function watchDeviceLoss(device: GPUDevice, onLost: (error: LabError) => void): void {
  void device.lost.then((info) => {
    if (info.reason === 'destroyed') return;
    onLost({
      code: 'device-lost',
      message:
        'The GPU device was lost (the driver or the browser reset the GPU). Reload the lab to get a new device; ' +
        'nothing already saved is lost.',
      detail: info.message,
    });
  });
}
