/**
 * Benchmark probe: runs read_floor.wgsl over the same chunks, slices and workgroups as the
 * divergence kernels' first pass would use for `request`, to measure what the loads alone cost on
 * an adapter (the floor of any WGSL kernel reading each logit once). Not used by the lab itself.
 */
import readFloorWgsl from './read_floor.wgsl?raw';
import { readsLogits, withSharedWgsl } from './shared';
import { createStorageBuffer } from '../../gpu/buffers';
import { launch, type KernelLaunch } from '../../gpu/launch';
import { divergenceTuning, type DivergenceTuning } from '../../gpu/tuning';
import { chunkParams, PARAMS_BYTES, planDivergences, planLimits, toBlocks } from './plan';
import type { DivergenceRequest } from './divergence';

const UNIFORM_STRIDE = 256;

export interface ReadFloorProbe {
  /** Records the probe's dispatches into `encoder`. */
  encode(encoder: GPUCommandEncoder): void;
  destroy(): void;
}

export function readFloorProbe(device: GPUDevice, request: DivergenceRequest, tuning?: DivergenceTuning): ReadFloorProbe {
  const { positions, studentVocab: vocab } = request;
  const plan = planDivergences(planLimits(device), tuning ?? divergenceTuning(device), { positions, vocab, topK: 0 }, {
    student: toBlocks(request.student, positions, 'student logits'),
    teacher: toBlocks(request.teacher, positions, 'teacher logits'),
  });
  const WG = plan.streamWorkgroupSize;
  const states = createStorageBuffer(device, plan.maxRowSlices * WG * 32, 'probe states');
  const stateFlags = createStorageBuffer(device, plan.maxRowSlices * WG * 4, 'probe state flags');
  const mask = request.mask ?? createStorageBuffer(device, new Uint32Array(positions).fill(1), 'probe mask');
  const uniforms = device.createBuffer({ label: 'probe params', size: plan.chunks.length * UNIFORM_STRIDE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const data = new Uint8Array(plan.chunks.length * UNIFORM_STRIDE);
  plan.chunks.forEach((c, i) => data.set(new Uint8Array(chunkParams(c, { vocab, temperature: 1, topK: 0 }, 64)), i * UNIFORM_STRIDE));
  device.queue.writeBuffer(uniforms, 0, data);
  const code = withSharedWgsl(readsLogits(readFloorWgsl));
  const launches: KernelLaunch[] = plan.chunks.map((c, i) => ({
    code,
    label: 'read_floor',
    constants: { WG },
    buffers: [c.student.binding, c.teacher.binding, mask, states, stateFlags, { buffer: uniforms, offset: i * UNIFORM_STRIDE, size: PARAMS_BYTES }],
    workgroups: [c.rows, c.splits],
  }));
  return {
    encode(encoder) {
      const pass = encoder.beginComputePass({ label: 'read floor probe' });
      for (const k of launches) launch(device, pass, k);
      pass.end();
    },
    destroy() {
      for (const b of [states, stateFlags, uniforms, ...(request.mask ? [] : [mask])]) b.destroy();
    },
  };
}
