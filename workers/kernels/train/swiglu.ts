/**
 * SwiGLU's elementwise part for the Llama family's training graph: the MLP is
 * down(silu(gate(x)) · up(x)), and these kernels compute y = silu(gate)·up and its two
 * gradients; the three projections are matrix products (matmul.ts). Each `encode…` records its
 * dispatch into the caller's command encoder and submits nothing; buffers are checked to be large
 * enough and not aliased where WebGPU forbids it.
 *
 * Layouts: gate, up, y and their gradients f32[count] (row-major [tokens, intermediate] in the
 * model; the kernels are elementwise). Float math reference: swigluForward / swigluBackward in
 * test/reference/layers.ts.
 */
import { layerTuning } from '../../gpu/tuning';
import { groups, launch } from '../../gpu/launch';
import { checkCount, checkNotAliased, checkSize, checkTuning, workgroupGrid } from './layers';
import { withGridPrelude } from './prelude';
import swigluCommon from './swiglu_common.wgsl?raw';
import swigluForwardKernel from './swiglu_forward.wgsl?raw';
import swigluBackwardKernel from './swiglu_backward.wgsl?raw';

// Each kernel after the sigmoid they share (WGSL has no include).
const swigluForwardWgsl = withGridPrelude(`${swigluCommon}\n${swigluForwardKernel}`);
const swigluBackwardWgsl = withGridPrelude(`${swigluCommon}\n${swigluBackwardKernel}`);

/** y = silu(gate)·up over `count` elements, silu(g) = g·σ(g); y must not be gate or up. */
export function encodeSwigluForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: { gate: GPUBuffer; up: GPUBuffer; y: GPUBuffer },
  count: number,
  tuning = layerTuning(device),
): void {
  const label = 'swiglu_forward';
  checkCount(label, 'count', count);
  checkTuning(tuning);
  for (const name of ['gate', 'up', 'y'] as const) checkSize(label, name, b[name], count);
  checkNotAliased(label, { y: b.y }, { gate: b.gate, up: b.up });
  launch(device, encoder, {
    code: swigluForwardWgsl,
    label,
    constants: { WG: tuning.workgroupSize },
    buffers: [b.gate, b.up, b.y],
    uniforms: [count],
    workgroups: workgroupGrid(device, groups(count, tuning.workgroupSize)),
  });
}

/**
 * dgate = dy·up·silu'(gate), dup = dy·silu(gate) over `count` elements, both overwritten (each is
 * the only gradient its projection's output receives); dgate and dup must be distinct and alias
 * none of gate, up, dy.
 */
export function encodeSwigluBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: { gate: GPUBuffer; up: GPUBuffer; dy: GPUBuffer; dgate: GPUBuffer; dup: GPUBuffer },
  shape: { count: number },
  tuning = layerTuning(device),
): void {
  const label = 'swiglu_backward';
  const { count } = shape;
  checkCount(label, 'count', count);
  checkTuning(tuning);
  for (const name of ['gate', 'up', 'dy', 'dgate', 'dup'] as const) checkSize(label, name, b[name], count);
  checkNotAliased(label, { dgate: b.dgate, dup: b.dup }, { gate: b.gate, up: b.up, dy: b.dy });
  launch(device, encoder, {
    code: swigluBackwardWgsl,
    label,
    constants: { WG: tuning.workgroupSize },
    buffers: [b.gate, b.up, b.dy, b.dgate, b.dup],
    uniforms: [count],
    workgroups: workgroupGrid(device, groups(count, tuning.workgroupSize)),
  });
}
