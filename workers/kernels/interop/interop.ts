/**
 * The two tiny kernels of the GPU interop self-check, and their CPU references.
 */
import fillPatternWgsl from './fill_pattern.wgsl?raw';
import affineMapWgsl from './affine_map.wgsl?raw';
import { bindBuffers, computePipeline, createUniformBuffer, dispatch } from '../../gpu/buffers';

const WG = 64;

export interface FillPattern {
  period: number;
  scale: number;
  offset: number;
}

export function fillPatternReference(n: number, p: FillPattern): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(p.scale) * ((i % p.period) - Math.fround(p.offset));
  return out;
}

/** Writes the pattern into `out` (f32[n]) on the GPU. */
export function fillPattern(device: GPUDevice, out: GPUBuffer, n: number, p: FillPattern, encoder?: GPUCommandEncoder): void {
  const params = new ArrayBuffer(16);
  new Uint32Array(params, 0, 2).set([n, p.period]);
  new Float32Array(params, 8, 2).set([p.scale, p.offset]);
  const pipeline = computePipeline(device, fillPatternWgsl, 'fill_pattern', { WG });
  const uniform = createUniformBuffer(device, new Uint8Array(params), 'fill_pattern params');
  dispatch(device, pipeline, bindBuffers(device, pipeline, [out, uniform]), [Math.ceil(n / WG)], encoder);
}

/** y = a·x + b on the GPU, x read in place from whatever storage buffer holds it. */
export function affineMap(device: GPUDevice, x: GPUBuffer, y: GPUBuffer, n: number, a: number, b: number, encoder?: GPUCommandEncoder): void {
  const params = new ArrayBuffer(16);
  new Uint32Array(params, 0, 1)[0] = n;
  new Float32Array(params, 4, 2).set([a, b]);
  const pipeline = computePipeline(device, affineMapWgsl, 'affine_map', { WG });
  const uniform = createUniformBuffer(device, new Uint8Array(params), 'affine_map params');
  dispatch(device, pipeline, bindBuffers(device, pipeline, [x, y, uniform]), [Math.ceil(n / WG)], encoder);
}
