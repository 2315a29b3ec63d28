/**
 * The training engine's small layers, forward and backward: LayerNorm, GELU (HF's gelu_new),
 * elementwise add (residual) and the token (+ position) embedding; the Llama family's RMSNorm and
 * SwiGLU are in rmsnorm.ts and swiglu.ts. Each `encode…` records its dispatches into the caller's
 * command encoder (one submit per training step) and submits nothing. Shapes come from the caller
 * (buffers are padded, so their sizes say nothing exact); buffers are checked to be large enough
 * and not aliased where WebGPU forbids it.
 *
 * Layouts: activations row-major [rows, width] f32 (rows = batch·T); LayerNorm's per-row mean
 * and rstd f32[rows]; γ, β, dγ, dβ f32[width]; token and position ids u32[rows]; wte
 * f32[vocab, width], wpe f32[positions, width] (optional: the Llama family has none). Float math
 * references: test/reference/layers.ts.
 */
import { layerTuning, type LayerTuning } from '../../gpu/tuning';
import { createStorageBuffer } from '../../gpu/buffers';
import { groups, launch } from '../../gpu/launch';
import { withGridPrelude, withTrainPrelude } from './prelude';
import { deviceScratch } from './scratch';
import layerNormForwardKernel from './layernorm_forward.wgsl?raw';
import layerNormBackwardKernel from './layernorm_backward.wgsl?raw';
import layerNormParamGradKernel from './layernorm_param_grad.wgsl?raw';
import geluKernel from './gelu.wgsl?raw';
import addKernel from './add.wgsl?raw';
import embeddingKernel from './embedding.wgsl?raw';

const layerNormForwardWgsl = withTrainPrelude(layerNormForwardKernel);
const layerNormBackwardWgsl = withTrainPrelude(layerNormBackwardKernel);
const layerNormParamGradWgsl = withTrainPrelude(layerNormParamGradKernel);
const geluWgsl = withGridPrelude(geluKernel);
const addWgsl = withGridPrelude(addKernel);
const embeddingWgsl = withGridPrelude(embeddingKernel);

// ---------------------------------------------------------------------------------------------
// checks and dispatch shapes (shared with rmsnorm.ts and swiglu.ts)

export function checkCount(label: string, what: string, n: number, min = 0): void {
  if (!Number.isInteger(n) || n < min || n > 0xffffffff) throw new Error(`${label}: ${what} = ${n} is not an integer ≥ ${min}`);
}

/** Throws unless `buffer` holds at least `words` 4-byte words. */
export function checkSize(label: string, name: string, buffer: GPUBuffer, words: number): void {
  if (buffer.size < words * 4) throw new Error(`${label}: ${name} holds ${buffer.size} bytes, needs ${words * 4}`);
}

/** Throws if a written buffer is also bound elsewhere in the same dispatch (WebGPU forbids it). */
export function checkNotAliased(label: string, written: Record<string, GPUBuffer>, others: Record<string, GPUBuffer>): void {
  const all = Object.entries({ ...others, ...written });
  for (const [w, wb] of Object.entries(written)) {
    for (const [o, ob] of all) if (o !== w && ob === wb) throw new Error(`${label}: ${w} and ${o} are the same buffer`);
  }
}

export function checkTuning(t: LayerTuning): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(t.workgroupSize) || !pow2(t.paramGradLanes) || !(t.paramGradColumns >= 1)) {
    throw new Error(`layer kernels: workgroup sizes must be powers of two (got ${t.workgroupSize}, ${t.paramGradColumns}×${t.paramGradLanes})`);
  }
}

/**
 * `total` workgroups as (x, y) with x within the adapter's per-dimension limit; the kernels
 * number them wid.y·nwg.x + wid.x and skip those past the end.
 */
export function workgroupGrid(device: GPUDevice, total: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (total <= max) return [total, 1];
  const y = Math.ceil(total / max);
  return [Math.ceil(total / y), y];
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

export interface LayerNormShape {
  /** N: rows (batch·T). */
  rows: number;
  /** E: elements per row. */
  width: number;
}

export interface LayerNormForwardBuffers {
  x: GPUBuffer;
  gamma: GPUBuffer;
  beta: GPUBuffer;
  /** Output [rows, width]; must not be x. */
  y: GPUBuffer;
  /** Outputs f32[rows], kept for the backward. */
  mean: GPUBuffer;
  rstd: GPUBuffer;
}

/** y = (x − μ)·rstd·γ + β per row, rstd = 1/√(var + eps) (biased variance, as torch). */
export function encodeLayerNormForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: LayerNormForwardBuffers,
  shape: LayerNormShape & { eps: number },
  tuning = layerTuning(device),
): void {
  const label = 'layernorm_forward';
  const { rows, width, eps } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  if (!(eps >= 0 && Number.isFinite(eps))) throw new Error(`${label}: eps = ${eps} is not a finite number ≥ 0`);
  checkTuning(tuning);
  checkSize(label, 'x', b.x, rows * width);
  checkSize(label, 'y', b.y, rows * width);
  checkSize(label, 'gamma', b.gamma, width);
  checkSize(label, 'beta', b.beta, width);
  checkSize(label, 'mean', b.mean, rows);
  checkSize(label, 'rstd', b.rstd, rows);
  checkNotAliased(label, { y: b.y, mean: b.mean, rstd: b.rstd }, { x: b.x, gamma: b.gamma, beta: b.beta });
  const perRow = tuning.layerNormRowPerInvocation;
  launch(device, encoder, {
    code: layerNormForwardWgsl,
    label,
    entryPoint: perRow ? 'perRow' : 'main',
    constants: { WG: tuning.workgroupSize },
    buffers: [b.x, b.gamma, b.beta, b.y, b.mean, b.rstd],
    uniforms: [rows, width, { f32: eps }],
    workgroups: workgroupGrid(device, perRow ? groups(rows, tuning.workgroupSize) : rows),
  });
}

export interface LayerNormBackwardBuffers {
  /** Gradient of the LayerNorm output [rows, width]. */
  dy: GPUBuffer;
  /** The forward's input, mean and rstd. */
  x: GPUBuffer;
  mean: GPUBuffer;
  rstd: GPUBuffer;
  gamma: GPUBuffer;
  /** Output [rows, width] (= or += with `accumulate`); must not be dy or x. */
  dx: GPUBuffer;
}

/** dx = or += rstd·(g − mean(g) − x̂·mean(g·x̂)), g = γ·dy, per row. */
export function encodeLayerNormBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: LayerNormBackwardBuffers,
  shape: LayerNormShape & { accumulate: boolean },
  tuning = layerTuning(device),
): void {
  const label = 'layernorm_backward';
  const { rows, width } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  checkTuning(tuning);
  for (const name of ['dy', 'x', 'dx'] as const) checkSize(label, name, b[name], rows * width);
  checkSize(label, 'mean', b.mean, rows);
  checkSize(label, 'rstd', b.rstd, rows);
  checkSize(label, 'gamma', b.gamma, width);
  checkNotAliased(label, { dx: b.dx }, { dy: b.dy, x: b.x, mean: b.mean, rstd: b.rstd, gamma: b.gamma });
  const perRow = tuning.layerNormRowPerInvocation;
  launch(device, encoder, {
    code: layerNormBackwardWgsl,
    label,
    entryPoint: perRow ? 'perRow' : 'main',
    constants: { WG: tuning.workgroupSize, ACCUMULATE: shape.accumulate ? 1 : 0 },
    buffers: [b.dy, b.x, b.mean, b.rstd, b.gamma, b.dx],
    uniforms: [rows, width],
    workgroups: workgroupGrid(device, perRow ? groups(rows, tuning.workgroupSize) : rows),
  });
}

export interface LayerNormParamGradBuffers {
  dy: GPUBuffer;
  x: GPUBuffer;
  mean: GPUBuffer;
  rstd: GPUBuffer;
  /** Outputs f32[width] (= or += with `accumulate`). */
  dgamma: GPUBuffer;
  dbeta: GPUBuffer;
}

/** How layernorm_param_grad cuts the rows: `splits` ranges of `rowsPerSplit` rows (the last may be shorter). */
export function planLayerNormParamGrad(rows: number, width: number, tuning: LayerTuning, maxPerDimension = 65535): { splits: number; rowsPerSplit: number } {
  if (rows === 0) return { splits: 0, rowsPerSplit: 0 };
  const columnGroups = Math.ceil(width / tuning.paramGradColumns);
  const maxSplits = Math.max(1, Math.floor(rows / (tuning.paramGradLanes * tuning.minRowsPerLane)));
  const wanted = Math.ceil(tuning.minParamGradWorkgroups / columnGroups);
  const target = Math.max(1, Math.min(wanted, maxSplits, maxPerDimension));
  const rowsPerSplit = Math.ceil(rows / target);
  return { splits: Math.ceil(rows / rowsPerSplit), rowsPerSplit };
}

/** Partial sums of the split param-grad pass; one pair per device, grown as needed. */
function paramGradScratch(device: GPUDevice, words: number): { gamma: GPUBuffer; beta: GPUBuffer } {
  return { gamma: deviceScratch(device, 'layernorm dγ partials', words * 4), beta: deviceScratch(device, 'layernorm dβ partials', words * 4) };
}

/** dγ[e] = or += Σ_n dy[n, e]·x̂[n, e], dβ[e] = or += Σ_n dy[n, e]. */
export function encodeLayerNormParamGrad(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: LayerNormParamGradBuffers,
  shape: LayerNormShape & { accumulate: boolean },
  tuning = layerTuning(device),
): void {
  const label = 'layernorm_param_grad';
  const { rows, width, accumulate } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  checkTuning(tuning);
  checkSize(label, 'dy', b.dy, rows * width);
  checkSize(label, 'x', b.x, rows * width);
  checkSize(label, 'mean', b.mean, rows);
  checkSize(label, 'rstd', b.rstd, rows);
  checkSize(label, 'dgamma', b.dgamma, width);
  checkSize(label, 'dbeta', b.dbeta, width);
  checkNotAliased(label, { dgamma: b.dgamma, dbeta: b.dbeta }, { dy: b.dy, x: b.x, mean: b.mean, rstd: b.rstd });
  const { splits, rowsPerSplit } = planLayerNormParamGrad(rows, width, tuning, device.limits.maxComputeWorkgroupsPerDimension);
  if (splits === 0) {
    // No rows: the sums are 0.
    if (!accumulate) {
      encoder.clearBuffer(b.dgamma, 0, width * 4);
      encoder.clearBuffer(b.dbeta, 0, width * 4);
    }
    return;
  }
  const constants = { WG_X: tuning.paramGradColumns, WG_Y: tuning.paramGradLanes };
  const columnGroups = Math.ceil(width / tuning.paramGradColumns);
  if (splits === 1) {
    launch(device, encoder, {
      code: layerNormParamGradWgsl,
      label,
      constants: { ...constants, ACCUMULATE: accumulate ? 1 : 0 },
      buffers: [b.dy, b.x, b.mean, b.rstd, b.dgamma, b.dbeta],
      uniforms: [rows, width, rowsPerSplit],
      workgroups: [columnGroups, 1],
    });
    return;
  }
  const scratch = paramGradScratch(device, splits * width);
  launch(device, encoder, {
    code: layerNormParamGradWgsl,
    label,
    constants: { ...constants, ACCUMULATE: 0 },
    buffers: [b.dy, b.x, b.mean, b.rstd, scratch.gamma, scratch.beta],
    uniforms: [rows, width, rowsPerSplit],
    workgroups: [columnGroups, splits],
  });
  launch(device, encoder, {
    code: layerNormParamGradWgsl,
    label: 'layernorm_param_finalize',
    entryPoint: 'finalize',
    constants: { WG: tuning.workgroupSize, ACCUMULATE: accumulate ? 1 : 0 },
    buffers: [scratch.gamma, scratch.beta, b.dgamma, b.dbeta],
    uniforms: [width, splits],
    workgroups: [groups(width, tuning.workgroupSize)],
  });
}

// ---------------------------------------------------------------------------------------------
// GELU and add

/** y = gelu_new(x) over `count` elements; y must not be x. */
export function encodeGeluForward(device: GPUDevice, encoder: GPUCommandEncoder, b: { x: GPUBuffer; y: GPUBuffer }, count: number, tuning = layerTuning(device)): void {
  const label = 'gelu_forward';
  checkCount(label, 'count', count);
  checkTuning(tuning);
  checkSize(label, 'x', b.x, count);
  checkSize(label, 'y', b.y, count);
  checkNotAliased(label, { y: b.y }, { x: b.x });
  launch(device, encoder, {
    code: geluWgsl,
    label,
    entryPoint: 'forward',
    constants: { WG: tuning.workgroupSize },
    buffers: [b.x, b.y],
    uniforms: [count],
    workgroups: workgroupGrid(device, groups(count, tuning.workgroupSize)),
  });
}

/** dx = or += dy·gelu_new'(x) over `count` elements; dx must not be x or dy. */
export function encodeGeluBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: { x: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer },
  shape: { count: number; accumulate: boolean },
  tuning = layerTuning(device),
): void {
  const label = 'gelu_backward';
  const { count } = shape;
  checkCount(label, 'count', count);
  checkTuning(tuning);
  for (const name of ['x', 'dy', 'dx'] as const) checkSize(label, name, b[name], count);
  checkNotAliased(label, { dx: b.dx }, { x: b.x, dy: b.dy });
  launch(device, encoder, {
    code: geluWgsl,
    label,
    entryPoint: 'backward',
    constants: { WG: tuning.workgroupSize, ACCUMULATE: shape.accumulate ? 1 : 0 },
    buffers: [b.x, b.dy, b.dx],
    uniforms: [count],
    workgroups: workgroupGrid(device, groups(count, tuning.workgroupSize)),
  });
}

/**
 * out = a + b over `count` elements; without `out` (or with out === a), a += b in place.
 * out must not be b.
 */
export function encodeAdd(device: GPUDevice, encoder: GPUCommandEncoder, bufs: { a: GPUBuffer; b: GPUBuffer; out?: GPUBuffer }, count: number, tuning = layerTuning(device)): void {
  const inPlace = !bufs.out || bufs.out === bufs.a;
  const label = inPlace ? 'add_inplace' : 'add';
  checkCount(label, 'count', count);
  checkTuning(tuning);
  checkSize(label, 'a', bufs.a, count);
  checkSize(label, 'b', bufs.b, count);
  if (inPlace) checkNotAliased(label, { a: bufs.a }, { b: bufs.b });
  else {
    checkSize(label, 'out', bufs.out!, count);
    checkNotAliased(label, { out: bufs.out! }, { a: bufs.a, b: bufs.b });
  }
  launch(device, encoder, {
    code: addWgsl,
    label,
    entryPoint: inPlace ? 'inplace' : 'main',
    constants: { WG: tuning.workgroupSize },
    buffers: inPlace ? [bufs.a, bufs.b] : [bufs.a, bufs.b, bufs.out!],
    uniforms: [count],
    workgroups: workgroupGrid(device, groups(count, tuning.workgroupSize)),
  });
}

// ---------------------------------------------------------------------------------------------
// embedding

export interface EmbeddingShape {
  rows: number;
  width: number;
  /** Rows of wte, and of wpe (required with wpe; unused without it). */
  vocabSize: number;
  nPositions?: number;
}

export interface EmbeddingForwardBuffers {
  tokens: GPUBuffer;
  wte: GPUBuffer;
  /** Position ids u32[rows] and the learned position table: both (GPT-2) or neither (Llama). */
  positions?: GPUBuffer;
  wpe?: GPUBuffer;
  x: GPUBuffer;
}

/**
 * x[n, e] = wte[tok[n], e] + wpe[pos[n], e]; tokens and positions u32[rows]. Without `wpe` (and
 * `positions`), x[n, e] = wte[tok[n], e] (the Llama family: rotary positions, no table). An id
 * past its table makes its row of x NaN.
 */
export function encodeEmbeddingForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  b: EmbeddingForwardBuffers,
  shape: EmbeddingShape,
  tuning = layerTuning(device),
): void {
  const label = 'embedding_forward';
  const { rows, width, vocabSize } = shape;
  checkCount(label, 'rows', rows);
  checkCount(label, 'width', width, 1);
  checkCount(label, 'vocabSize', vocabSize, 1);
  checkTuning(tuning);
  if (!b.wpe !== !b.positions) {
    throw new Error(`${label}: got ${b.wpe ? 'wpe without positions' : 'positions without wpe'}; pass both (learned positions) or neither (token embedding only)`);
  }
  checkSize(label, 'tokens', b.tokens, rows);
  checkSize(label, 'wte', b.wte, vocabSize * width);
  checkSize(label, 'x', b.x, rows * width);
  const workgroups = workgroupGrid(device, groups(rows * width, tuning.workgroupSize));
  if (!b.wpe || !b.positions) {
    checkNotAliased(label, { x: b.x }, { tokens: b.tokens, wte: b.wte });
    launch(device, encoder, {
      code: embeddingWgsl,
      label: `${label} tokens`,
      entryPoint: 'forwardTokens',
      constants: { WG: tuning.workgroupSize },
      buffers: [b.tokens, b.wte, b.x],
      uniforms: [rows, width, vocabSize, 0],
      workgroups,
    });
    return;
  }
  const nPositions = shape.nPositions ?? NaN;
  checkCount(label, 'nPositions', nPositions, 1);
  checkSize(label, 'positions', b.positions, rows);
  checkSize(label, 'wpe', b.wpe, nPositions * width);
  checkNotAliased(label, { x: b.x }, { tokens: b.tokens, positions: b.positions, wte: b.wte, wpe: b.wpe });
  launch(device, encoder, {
    code: embeddingWgsl,
    label,
    entryPoint: 'forward',
    constants: { WG: tuning.workgroupSize },
    buffers: [b.tokens, b.positions, b.wte, b.wpe, b.x],
    uniforms: [rows, width, vocabSize, nPositions],
    workgroups,
  });
}

/** Rows grouped by id: unique ids ascending, offsets[u]..offsets[u+1] into `rows` (ascending within a group). */
export interface RowGrouping {
  ids: Uint32Array;
  offsets: Uint32Array;
  rows: Uint32Array;
}

export function groupRowsById(ids: Uint32Array): RowGrouping {
  const rows = Uint32Array.from(ids.keys()).sort((a, b) => ids[a] - ids[b] || a - b);
  const unique: number[] = [];
  const offsets: number[] = [];
  for (let k = 0; k < rows.length; k++) {
    if (k === 0 || ids[rows[k]] !== ids[rows[k - 1]]) {
      unique.push(ids[rows[k]]);
      offsets.push(k);
    }
  }
  offsets.push(rows.length);
  return { ids: Uint32Array.from(unique), offsets: Uint32Array.from(offsets), rows };
}

/** The embedding's backward for one batch of ids, whose grouping is uploaded once. */
export interface EmbeddingBackward {
  readonly rows: number;
  /** Unique token and position ids (one invocation per unique id and element); 0 positions when created without them. */
  readonly uniqueTokens: number;
  readonly uniquePositions: number;
  /**
   * dwte[v] += Σ_{n: tok[n]=v} dx[n], dwpe[p] += Σ_{n: pos[n]=p} dx[n] (always accumulating:
   * clear dwpe, and dwte unless the tied LM head wrote it, before the first micro-batch). Without
   * `dwpe`, only dwte is written (a model without learned positions, or a frozen wpe); a `dwpe`
   * needs the positions given to createEmbeddingBackward.
   */
  encode(encoder: GPUCommandEncoder, b: { dx: GPUBuffer; dwte: GPUBuffer; dwpe?: GPUBuffer }, width: number): void;
  destroy(): void;
}

/**
 * Groups the rows of one batch by token id and by position on the CPU (ids checked against the
 * tables' sizes) and uploads the groupings: the backward then needs no atomics. With `positions`
 * null or undefined (no learned position table), only the tokens are grouped and `encode` takes
 * no dwpe.
 */
export function createEmbeddingBackward(
  device: GPUDevice,
  tokens: Uint32Array,
  positions: Uint32Array | null | undefined,
  tables: { vocabSize: number; nPositions?: number },
  tuning = layerTuning(device),
): EmbeddingBackward {
  const label = 'embedding_backward';
  const rows = tokens.length;
  if (positions && positions.length !== rows) throw new Error(`${label}: ${rows} tokens but ${positions.length} positions`);
  checkTuning(tuning);
  const check = (ids: Uint32Array, limit: number, what: string) => {
    for (let n = 0; n < ids.length; n++) if (ids[n] >= limit) throw new Error(`${label}: ${what} ${ids[n]} at row ${n} is outside 0..${limit - 1}`);
  };
  check(tokens, tables.vocabSize, 'token id');
  const nPositions = tables.nPositions ?? 0;
  if (positions) {
    checkCount(label, 'nPositions', tables.nPositions ?? NaN, 1);
    check(positions, nPositions, 'position');
  }
  const byToken = groupRowsById(tokens);
  const byPosition = groupRowsById(positions ?? new Uint32Array(0));
  const sectionLength = (g: RowGrouping) => g.ids.length + g.offsets.length + g.rows.length;
  const packed = new Uint32Array(sectionLength(byToken) + sectionLength(byPosition));
  let at = 0;
  const bases: number[] = [];
  for (const g of [byToken, byPosition]) {
    bases.push(at);
    for (const part of [g.ids, g.offsets, g.rows]) {
      packed.set(part, at);
      at += part.length;
    }
  }
  const grouping = createStorageBuffer(device, packed, 'embedding row grouping');
  let destroyed = false;
  return {
    rows,
    uniqueTokens: byToken.ids.length,
    uniquePositions: byPosition.ids.length,
    encode(encoder, b, width) {
      if (destroyed) throw new Error(`${label}: used after destroy()`);
      if (b.dwpe && !positions) throw new Error(`${label}: a dwpe was given but the backward was created without positions; pass the positions to createEmbeddingBackward`);
      checkCount(label, 'width', width, 1);
      checkSize(label, 'dx', b.dx, rows * width);
      checkSize(label, 'dwte', b.dwte, tables.vocabSize * width);
      if (b.dwpe) {
        checkSize(label, 'dwpe', b.dwpe, nPositions * width);
        checkNotAliased(label, { dwte: b.dwte, dwpe: b.dwpe }, { dx: b.dx });
      } else checkNotAliased(label, { dwte: b.dwte }, { dx: b.dx });
      const passes = [{ g: byToken, base: bases[0], grad: b.dwte, what: 'wte' }];
      if (b.dwpe) passes.push({ g: byPosition, base: bases[1], grad: b.dwpe, what: 'wpe' });
      passes.forEach(({ g, base, grad, what }) =>
        launch(device, encoder, {
          code: embeddingWgsl,
          label: `${label} ${what}`,
          entryPoint: 'backward',
          constants: { WG: tuning.workgroupSize },
          buffers: [b.dx, grouping, grad],
          uniforms: [g.ids.length, width, base],
          workgroups: workgroupGrid(device, groups(g.ids.length * width, tuning.workgroupSize)),
        }),
      );
    },
    destroy() {
      destroyed = true;
      grouping.destroy();
    },
  };
}
