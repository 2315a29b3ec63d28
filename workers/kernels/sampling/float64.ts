/**
 * The emulated float64 WGSL (float64.wgsl, fdlibm.wgsl) as one prelude, and a probe that runs one
 * of its operations over arrays, for the tests that compare it with JavaScript bit for bit.
 */
import float64Wgsl from './float64.wgsl?raw';
import fdlibmWgsl from './fdlibm.wgsl?raw';
import probeWgsl from './float64_probe.wgsl?raw';
import { createStorageBuffer, readBuffer } from '../../gpu/buffers';
import { launch } from '../../gpu/launch';

/** float64.wgsl + fdlibm.wgsl + `kernel`. */
export function withFloat64(kernel: string): string {
  return `${float64Wgsl}\n${fdlibmWgsl}\n${kernel}`;
}

export const PROBE_OPS = {
  add: 0, sub: 1, mul: 2, div: 3, exp: 4, log: 5, divShiftExp: 6, shiftExp: 7, logAdd: 8,
  fromF32: 16, compare: 17, toInt: 18, key: 19,
} as const;
export type ProbeOp = keyof typeof PROBE_OPS;

export interface ProbeResult {
  /** Each result as a float64 (for compare / toInt / key, read the words through a Uint32Array). */
  value: Float64Array;
  /** f64Eval's aux (x/t of divShiftExp, x − m of shiftExp). */
  aux: Float64Array;
}

/** Runs `op` on the GPU over a[i] (b[i], c[i]). */
export async function probeFloat64(device: GPUDevice, op: ProbeOp, a: Float64Array, b: Float64Array = new Float64Array(a.length), c: Float64Array = new Float64Array(a.length)): Promise<ProbeResult> {
  const n = a.length;
  if (b.length !== n || c.length !== n) throw new Error(`probeFloat64: a has ${n} values, b ${b.length}, c ${c.length}`);
  const buffers = [createStorageBuffer(device, a, 'probe a'), createStorageBuffer(device, b, 'probe b'), createStorageBuffer(device, c, 'probe c'), createStorageBuffer(device, n * 16, 'probe out')];
  try {
    const encoder = device.createCommandEncoder();
    launch(device, encoder, { code: withFloat64(probeWgsl), label: 'float64_probe', buffers, uniforms: [n, PROBE_OPS[op]], workgroups: [Math.ceil(n / 64)] });
    device.queue.submit([encoder.finish()]);
    const words = new Float64Array(await readBuffer(device, buffers[3], n * 16));
    return { value: words.filter((_, i) => i % 2 === 0), aux: words.filter((_, i) => i % 2 === 1) };
  } finally {
    for (const buffer of buffers) buffer.destroy();
  }
}
