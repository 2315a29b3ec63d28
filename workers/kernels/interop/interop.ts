/**
 * The two tiny kernels of the GPU interop self-check, and their CPU references.
 */
import fillPatternWgsl from './fill_pattern.wgsl?raw';
import affineMapWgsl from './affine_map.wgsl?raw';
import { launch, type KernelLaunch } from '../../gpu/launch';

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

/** Records `k` into `encoder`, or submits it at once when there is none. */
function run(device: GPUDevice, k: KernelLaunch, encoder?: GPUCommandEncoder): void {
  const enc = encoder ?? device.createCommandEncoder();
  launch(device, enc, k);
  if (!encoder) device.queue.submit([enc.finish()]);
}

/** Writes the pattern into `out` (f32[n]) on the GPU. */
export function fillPattern(device: GPUDevice, out: GPUBuffer, n: number, p: FillPattern, encoder?: GPUCommandEncoder): void {
  const uniforms = [n, p.period, { f32: p.scale }, { f32: p.offset }];
  run(device, { code: fillPatternWgsl, label: 'fill_pattern', constants: { WG }, buffers: [out], uniforms, workgroups: [Math.ceil(n / WG)] }, encoder);
}

/** y = a·x + b on the GPU, x read in place from whatever storage buffer holds it. */
export function affineMap(device: GPUDevice, x: GPUBuffer, y: GPUBuffer, n: number, a: number, b: number, encoder?: GPUCommandEncoder): void {
  const uniforms = [n, { f32: a }, { f32: b }];
  run(device, { code: affineMapWgsl, label: 'affine_map', constants: { WG }, buffers: [x, y], uniforms, workgroups: [Math.ceil(n / WG)] }, encoder);
}
