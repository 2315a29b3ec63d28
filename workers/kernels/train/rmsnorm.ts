/**
 * RMSNorm forward and backward for the Llama family's training graph (Llama, Qwen2, Qwen3): the
 * layer norms (rows = tokens, width = hidden) and Qwen3's q/k norm (rows = tokens × heads,
 * width = head_dim). Each `encode…` records its dispatches into the caller's command encoder and
 * submits nothing; shapes come from the caller, buffers are checked to be large enough and not
 * aliased where WebGPU forbids it.
 *
 * Layouts: activations row-major [rows, width] f32; rstd f32[rows] (the forward's, kept for the
 * backward); γ, dγ f32[width]. Float math reference: rmsNormForward / rmsNormBackward in
 * test/reference/layers.ts.
 */
import { layerTuning, type LayerTuning } from '../../gpu/tuning';
import { groups, launch } from '../../gpu/launch';
import { checkCount, checkNotAliased, checkSize, checkTuning, planLayerNormParamGrad, workgroupGrid } from './layers';
import { withTrainPrelude } from './prelude';
import { deviceScratch } from './scratch';
import rmsNormForwardKernel from './rmsnorm_forward.wgsl?raw';
import rmsNormBackwardKernel from './rmsnorm_backward.wgsl?raw';
import rmsNormParamGradKernel from './rmsnorm_param_grad.wgsl?raw';

const rmsNormForwardWgsl = withTrainPrelude(rmsNormForwardKernel);
const rmsNormBackwardWgsl = withTrainPrelude(rmsNormBackwardKernel);
const rmsNormParamGradWgsl = withTrainPrelude(rmsNormParamGradKernel);

export interface RmsNormShape {
  /** Rows: tokens (layer norms) or tokens × heads (q/k norm). */
  rows: number;
  /** Elements per row: hidden, or head_dim. */
  width: number;
}

export interface RmsNormForwardBuffers {
  x: GPUBuffer;
  gamma: GPUBuffer;
  /** Output [rows, width]; must not be x. */
  y: GPUBuffer;
  /** Output f32[rows]: 1/√(mean(x²) + eps) per row, kept for the backward. */
  rstd: GPUBuffer;
}

export interface RmsNormBackwardBuffers {
  /** Gradient of the RMSNorm output [rows, width]. */
  dy: GPUBuffer;
  /** The forward's input and rstd. */
  x: GPUBuffer;
  rstd: GPUBuffer;
  gamma: GPUBuffer;
  /** Output [rows, width] (= or += with `accumulate`); must not be dy or x. */
  dx: GPUBuffer;
}

export interface RmsNormParamGradBuffers {
  dy: GPUBuffer;
  x: GPUBuffer;
  rstd: GPUBuffer;
  /** Output f32[width] (= or += with `accumulate`). */
  dgamma: GPUBuffer;
}

/**
 * How the forward and dx kernels lay rows over invocations: one invocation per row
 * (`perRow`, CPU adapters) or `lanes` invocations per row and workgroupSize / lanes rows per
 * workgroup (`main`), lanes the smallest power of two ≥ width / rmsNormElementsPerLane, at most
 * the workgroup size.
 */
export function planRmsNormRows(rows: number, width: number, tuning: LayerTuning): { entryPoint: 'perRow' | 'main'; lanes: number; rowsPerWorkgroup: number; workgroups: number } {
  if (tuning.layerNormRowPerInvocation) {
    return { entryPoint: 'perRow', lanes: 1, rowsPerWorkgroup: tuning.workgroupSize, workgroups: groups(rows, tuning.workgroupSize) };
  }
  const wanted = Math.ceil(width / Math.max(1, tuning.rmsNormElementsPerLane));
  let lanes = 1;
  while (lanes < wanted && lanes < tuning.workgroupSize) lanes *= 2;
  const rowsPerWorkgroup = tuning.workgroupSize / lanes;
  return { entryPoint: 'main', lanes, rowsPerWorkgroup, workgroups: groups(rows, rowsPerWorkgroup) };
}

/** y = x·rstd·γ per row, rstd = 1/√(mean(x²) + eps) (HF's LlamaRMSNorm in float32). */
export function encodeRmsNormForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: RmsNormForwardBuffers,
  shape: RmsNormShape & { eps: number },
  tuning = layerTuning(device),
): void {
  const label = 'rmsnorm_forward';
  const { rows, width, eps } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  if (!(eps >= 0 && Number.isFinite(eps))) throw new Error(`${label}: eps = ${eps} is not a finite number ≥ 0`);
  checkTuning(tuning);
  checkSize(label, 'x', b.x, rows * width);
  checkSize(label, 'y', b.y, rows * width);
  checkSize(label, 'gamma', b.gamma, width);
  checkSize(label, 'rstd', b.rstd, rows);
  checkNotAliased(label, { y: b.y, rstd: b.rstd }, { x: b.x, gamma: b.gamma });
  const plan = planRmsNormRows(rows, width, tuning);
  launch(device, encoder, {
    code: rmsNormForwardWgsl,
    label,
    entryPoint: plan.entryPoint,
    constants: plan.entryPoint === 'main' ? { WG: tuning.workgroupSize, LANES: plan.lanes } : { WG: tuning.workgroupSize },
    buffers: [b.x, b.gamma, b.y, b.rstd],
    uniforms: [rows, width, { f32: eps }],
    workgroups: workgroupGrid(device, plan.workgroups),
  });
}

/** dx = or += rstd·(g − x̂·mean(g·x̂)), g = γ·dy, x̂ = x·rstd, per row. */
export function encodeRmsNormBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: RmsNormBackwardBuffers,
  shape: RmsNormShape & { accumulate: boolean },
  tuning = layerTuning(device),
): void {
  const label = 'rmsnorm_backward';
  const { rows, width } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  checkTuning(tuning);
  for (const name of ['dy', 'x', 'dx'] as const) checkSize(label, name, b[name], rows * width);
  checkSize(label, 'rstd', b.rstd, rows);
  checkSize(label, 'gamma', b.gamma, width);
  checkNotAliased(label, { dx: b.dx }, { dy: b.dy, x: b.x, rstd: b.rstd, gamma: b.gamma });
  const plan = planRmsNormRows(rows, width, tuning);
  const constants: Record<string, number> = { WG: tuning.workgroupSize, ACCUMULATE: shape.accumulate ? 1 : 0 };
  if (plan.entryPoint === 'main') constants.LANES = plan.lanes;
  launch(device, encoder, {
    code: rmsNormBackwardWgsl,
    label,
    entryPoint: plan.entryPoint,
    constants,
    buffers: [b.dy, b.x, b.rstd, b.gamma, b.dx],
    uniforms: [rows, width],
    workgroups: workgroupGrid(device, plan.workgroups),
  });
}

/**
 * dγ[e] = or += Σ_n dy[n, e]·x[n, e]·rstd[n]: column sums cut into row splits as LayerNorm's
 * (planLayerNormParamGrad), the splits' partials added up in order by a second pass.
 */
export function encodeRmsNormParamGrad(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: RmsNormParamGradBuffers,
  shape: RmsNormShape & { accumulate: boolean },
  tuning = layerTuning(device),
): void {
  const label = 'rmsnorm_param_grad';
  const { rows, width, accumulate } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  checkTuning(tuning);
  checkSize(label, 'dy', b.dy, rows * width);
  checkSize(label, 'x', b.x, rows * width);
  checkSize(label, 'rstd', b.rstd, rows);
  checkSize(label, 'dgamma', b.dgamma, width);
  checkNotAliased(label, { dgamma: b.dgamma }, { dy: b.dy, x: b.x, rstd: b.rstd });
  const { splits, rowsPerSplit } = planLayerNormParamGrad(rows, width, tuning, device.limits.maxComputeWorkgroupsPerDimension);
  if (splits === 0) {
    // No rows: the sum is 0.
    if (!accumulate) encoder.clearBuffer(b.dgamma, 0, width * 4);
    return;
  }
  const constants = { WG_X: tuning.paramGradColumns, WG_Y: tuning.paramGradLanes };
  const columnGroups = Math.ceil(width / tuning.paramGradColumns);
  if (splits === 1) {
    launch(device, encoder, {
      code: rmsNormParamGradWgsl,
      label,
      constants: { ...constants, ACCUMULATE: accumulate ? 1 : 0 },
      buffers: [b.dy, b.x, b.rstd, b.dgamma],
      uniforms: [rows, width, rowsPerSplit],
      workgroups: [columnGroups, 1],
    });
    return;
  }
  // One scratch per device: the partials are consumed by the finalize pass right after, in the
  // same encoder, before any later call writes them again.
  const partials = deviceScratch(device, 'rmsnorm dγ partials', splits * width * 4);
  launch(device, encoder, {
    code: rmsNormParamGradWgsl,
    label,
    constants: { ...constants, ACCUMULATE: 0 },
    buffers: [b.dy, b.x, b.rstd, partials],
    uniforms: [rows, width, rowsPerSplit],
    workgroups: [columnGroups, splits],
  });
  launch(device, encoder, {
    code: rmsNormParamGradWgsl,
    label: 'rmsnorm_param_finalize',
    entryPoint: 'finalize',
    constants: { WG: tuning.workgroupSize, ACCUMULATE: accumulate ? 1 : 0 },
    buffers: [partials, b.dgamma],
    uniforms: [width, splits],
    workgroups: [groups(width, tuning.workgroupSize)],
  });
}
