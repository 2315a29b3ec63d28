/**
 * The GPU interop self-check: proves, with numbers, that our kernels and onnxruntime-web share
 * one device and hand each other GPU buffers.
 *
 *   1. our WGSL kernel writes an input pattern x into a GPU buffer;
 *   2. that buffer goes into an ONNX model (y = 3·tanh(x) + 0.5) as `Tensor.fromGpuBuffer`;
 *   3. ORT leaves y on the GPU (`preferredOutputLocation: 'gpu-buffer'`);
 *   4. our second kernel reads ORT's y buffer in place: z = 2·y + 1;
 *   5. only z comes back to the CPU, compared with a float64 reference.
 */
import type { InteropReport } from '../contract/reports';
import { GraphBuilder } from '../onnx/graph';
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../gpu/buffers';
import { affineMap, fillPattern, fillPatternReference, type FillPattern } from '../kernels/interop/interop';
import { createSession, gpuTensor, type Ort } from '../ort/runtime';

/** y = 3·tanh(x) + 0.5 over a vector of length n. */
export function interopModel(n: number): Uint8Array {
  const g = new GraphBuilder('interop_check');
  const x = g.input('x', 'float32', [n]);
  const three = g.initializer('three', new Float32Array([3]), [1]);
  const half = g.initializer('half', new Float32Array([0.5]), [1]);
  const t = g.op('Tanh', [x]);
  const m = g.op('Mul', [t, three]);
  g.op('Add', [m, half], {}, 'y');
  g.output('y', 'float32', [n]);
  return g.toBytes();
}

/**
 * Tolerance: |z| ≤ 2·3.5 + 1 = 8; f32 tanh differs from float64 by a few ulp (≤ ~1e-6 relative in
 * WGSL/ORT implementations), and the two affine steps add ≤ 2 roundings of ~5e-7 relative each;
 * 2e-5 absolute is ~3× the worst bound we can construct and far below any wiring mistake
 * (a wrong buffer, a missing stage or an offset index gives errors of order 1).
 */
export const INTEROP_TOLERANCE = 2e-5;

export async function runInteropCheck(ort: Ort, device: GPUDevice, n = 4099): Promise<InteropReport> {
  if (!Number.isInteger(n) || n < 1 || n > 1 << 22) throw new Error(`interop check: element count ${n} must be an integer in 1..${1 << 22}`);
  const started = performance.now();
  const pattern: FillPattern = { period: 61, scale: 0.1, offset: 30 };
  const session = await createSession(device, interopModel(n), { outputsOnGpu: true });
  const xBuf = createStorageBuffer(device, n * 4, 'interop x');
  const zBuf = createStorageBuffer(device, n * 4, 'interop z');
  let yTensor: import('onnxruntime-web').Tensor | undefined;
  try {
    await withGpuErrorScope(device, 'interop fill', () => fillPattern(device, xBuf, n, pattern));
    const result = await session.run({ x: gpuTensor(xBuf, [n]) });
    yTensor = result.y;
    if (yTensor.location !== 'gpu-buffer') throw new Error(`ORT returned its output on '${yTensor.location}', not on the GPU`);
    const yBuf = yTensor.gpuBuffer as GPUBuffer;
    await withGpuErrorScope(device, 'interop affine', () => affineMap(device, yBuf, zBuf, n, 2, 1));
    const z = await readFloat32(device, zBuf, n);
    const x = fillPatternReference(n, pattern);
    let maxAbsError = 0;
    const expected = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      expected[i] = 2 * (3 * Math.tanh(x[i]) + 0.5) + 1;
      const err = Math.abs(z[i] - expected[i]);
      // NaN must fail the check, so compare with !(err <= max).
      if (!(err <= maxAbsError)) maxAbsError = Number.isNaN(err) ? Infinity : err;
    }
    const y = await readFloat32(device, yBuf, n);
    const sample = [0, 1, 30, Math.floor(n / 2), n - 1]
      .filter((i, k, a) => i < n && a.indexOf(i) === k)
      .map((index) => ({ index, input: x[index], ortOutput: y[index], kernelOutput: z[index], expected: expected[index] }));
    return {
      elements: n,
      maxAbsError,
      tolerance: INTEROP_TOLERANCE,
      passed: maxAbsError <= INTEROP_TOLERANCE,
      sample,
      stages: [
        'WGSL fill_pattern → x (GPU buffer)',
        'Tensor.fromGpuBuffer(x) → ORT WebGPU session: y = 3·tanh(x) + 0.5',
        "ORT output y left on the GPU (preferredOutputLocation: 'gpu-buffer')",
        'WGSL affine_map reads y in place → z = 2·y + 1',
        'z read back and compared with a float64 reference',
      ],
      ms: performance.now() - started,
    };
  } finally {
    yTensor?.dispose();
    xBuf.destroy();
    zBuf.destroy();
    await session.release();
  }
}
