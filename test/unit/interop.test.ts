import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { configureOrt, ort } from '../../workers/ort/runtime';
import { runInteropCheck } from '../../workers/selfcheck/interop';

describe('GPU interop between our WGSL and onnxruntime-web (Node, Dawn)', () => {
  it('passes buffers both ways on one device and matches the float64 reference', async () => {
    const device = await testDevice();
    configureOrt({ numThreads: 1 });
    const report = await runInteropCheck(ort, device, 1031);
    expect(report.elements).toBe(1031);
    expect(report.maxAbsError).toBeLessThanOrEqual(report.tolerance);
    expect(report.passed).toBe(true);
    for (const s of report.sample) expect(Math.abs(s.kernelOutput - (2 * s.ortOutput + 1))).toBeLessThan(1e-5);
  });
});
