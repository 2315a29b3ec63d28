/**
 * The divergence kernels' wrapper: student and teacher logits already on the GPU (e.g. the
 * teacher's, left there by onnxruntime-web) go in; per-position log-probs, KLs, JSD, entropies,
 * flags, optionally the teacher's top-k (and the student's own) and the reverse KL's gradient come out.
 *
 *   encodeDivergences  records the passes and leaves every result on the GPU (the trainer's path:
 *                      bind `buffers.field('reverseKL')`, the gradient buffer, …);
 *   readDivergences    copies results to the CPU, with the bad positions listed (the UI's path);
 *   computeDivergences both, then frees the GPU results.
 *
 * Passes, per chunk of rows (see plan.ts): row_stats → row_finalize, then when asked
 * row_extras → jsd_finalize (JSD for 0 < β < 1, gradient) and teacher_topk → topk_finalize, run
 * once ranking the teacher's logits and, for `studentTopK`, once more ranking the student's.
 */
import rowStatsWgsl from './row_stats.wgsl?raw';
import rowFinalizeWgsl from './row_finalize.wgsl?raw';
import rowExtrasWgsl from './row_extras.wgsl?raw';
import jsdFinalizeWgsl from './jsd_finalize.wgsl?raw';
import teacherTopKWgsl from './teacher_topk.wgsl?raw';
import topKFinalizeWgsl from './topk_finalize.wgsl?raw';
import { readsLogits, withSharedWgsl } from './shared';
import { createStorageBuffer, readBuffers, withGpuErrorScope } from '../../gpu/buffers';
import { launch } from '../../gpu/launch';
import { divergenceTuning, type DivergenceTuning } from '../../gpu/tuning';
import { describeFlags, FIELDS, fieldIndex, fieldStride, FLAG, MAX_TOP_K, OUTPUT_FIELDS, type Field, type OutputField } from './layout';
import {
  chunkParams,
  DivergenceInputError,
  PARAMS_BYTES,
  planDivergences,
  planLimits,
  toBlocks,
  type DivergencePlan,
  type PlanLimits,
  type RowMajorLogits,
} from './plan';
import type { DivergenceOutputs } from './reference';

export { DivergenceInputError, type RowMajorLogits, type RowBlock } from './plan';
export type { DivergenceTuning } from '../../gpu/tuning';

/** Supported temperatures: the kernels' overflow analysis assumes log2(e)/τ ≤ 1443. */
export const TEMPERATURE_RANGE = [1e-3, 1e3] as const;

export interface DivergenceRequest {
  /** Student logits [positions, studentVocab], f32, row-major. */
  student: RowMajorLogits;
  /** Teacher logits [positions, teacherVocab], f32, row-major. */
  teacher: RowMajorLogits;
  studentVocab: number;
  teacherVocab: number;
  positions: number;
  /** Sampled token id per position: u32[positions] (an i32 buffer of non-negative ids reads the same). */
  tokens: GPUBuffer;
  /** u32[positions]; 0 = position not counted (all outputs 0). Absent: every position counts. */
  mask?: GPUBuffer;
  /** Softmax temperature of both models (default 1). */
  temperature?: number;
  /** JSD mixture weight β in [0, 1]; absent: the jsd output is 0 and no second pass runs for it. */
  beta?: number;
  /** How many of the teacher's best tokens to report per position, 0..20 (default 0). */
  topK?: number;
  /**
   * Also the student's own k best tokens (same k, same order and tie rule), by the same two top-k
   * passes ranking the student's logits: what the overlap of the two lists needs. Needs topK > 0.
   */
  studentTopK?: boolean;
  /** Where to write ∂KL/∂z_student, [positions, vocab] f32 (full-vocabulary training). */
  gradient?: RowMajorLogits;
}

export interface EncodeOptions {
  /** Record into this encoder (the caller submits); otherwise the passes are submitted at once. */
  encoder?: GPUCommandEncoder;
  tuning?: DivergenceTuning;
  /**
   * Results of an earlier call: their buffers are reused when they fit (same positions and topK,
   * scratch large enough), else destroyed and replaced. The earlier results are overwritten, so
   * reuse them only once the work that reads them has been submitted.
   */
  reuse?: DivergenceBuffers;
  /** Plan as if the device had these smaller limits (tests use it to force chunking); never raises one. */
  limits?: Partial<PlanLimits>;
}

/** Results left on the GPU. Owned by the caller: `destroy()` when done. */
export interface DivergenceBuffers {
  positions: number;
  topK: number;
  /** Whether the student's own top-k is computed too (`studentTopK`). */
  studentTopK: boolean;
  /** Field f of position t is at element f·fieldStride + t of `fields` (see layout.ts). */
  fieldStride: number;
  /** f32 [FIELDS.length × fieldStride]. */
  fields: GPUBuffer;
  /** u32[positions], bits in layout.ts FLAG. */
  flags: GPUBuffer;
  /** When topK > 0: i32 [positions, topK] and f32 [positions, topK] ×2. */
  topTokens?: GPUBuffer;
  topTeacherLogprob?: GPUBuffer;
  topStudentLogprob?: GPUBuffer;
  /** With studentTopK: the same three for the student's own top-k. */
  studentTopTokens?: GPUBuffer;
  studentTopTeacherLogprob?: GPUBuffer;
  studentTopStudentLogprob?: GPUBuffer;
  /** How the last encode cut the work (see plan.ts). */
  plan: PlanSummary;
  /** A binding of one field's f32[positions], e.g. the per-position reverse KL for the trainer. */
  field(name: Field): GPUBufferBinding;
  destroy(): void;
}

export interface PlanSummary {
  chunks: number;
  streamWorkgroupSize: number;
  topKWorkgroupSize: number;
  /** Largest number of vocabulary slices per row, and the longest slice. */
  maxSplits: number;
  maxSliceLength: number;
}

export interface PositionProblem {
  position: number;
  flags: number;
  /** One sentence per problem bit. */
  reasons: string[];
  /** True when the outputs are 0 because of it (false: an exact infinity was written). */
  bad: boolean;
}

export type DivergenceReadback = DivergenceOutputs<Float32Array, Uint32Array, Int32Array> & {
  /** Positions counted (mask ≠ 0) whose outputs are meaningful. */
  valid: number;
  /** Counted positions with any flag: NaN / Inf input, an infinite KL, a bad token. */
  problems: PositionProblem[];
};

const UNIFORM_STRIDE = 256;
const FINALIZE_WG = 64;

interface Scratch {
  states: GPUBuffer;
  stateFlags: GPUBuffer;
  jsdPartials: GPUBuffer;
  candidates: GPUBuffer;
  studentCandidates?: GPUBuffer;
  uniforms: GPUBuffer;
  allOnes?: GPUBuffer;
  dummy: GPUBuffer;
}

interface BuffersImpl extends DivergenceBuffers {
  scratch: Scratch;
}

function checkBufferSize(buffer: GPUBuffer, bytes: number, what: string): void {
  if (buffer.size < bytes) throw new DivergenceInputError('buffer-too-small', `${what} needs ${bytes} bytes but its buffer holds ${buffer.size}`);
}

/** Every check that can be made before touching the GPU. */
function validate(request: DivergenceRequest): void {
  const { positions, studentVocab, teacherVocab } = request;
  if (studentVocab !== teacherVocab) {
    throw new DivergenceInputError(
      'vocab-mismatch',
      `the student's vocabulary has ${studentVocab} tokens and the teacher's ${teacherVocab}: divergences need one token space, ` +
        'so both models must share a tokenizer (pad the smaller vocabulary with -Infinity logits to the larger one if the extra ids are unused)',
    );
  }
  if (!Number.isInteger(positions) || positions < 1) throw new DivergenceInputError('bad-shape', `positions must be a positive whole number, not ${positions}`);
  if (!Number.isInteger(studentVocab) || studentVocab < 1) throw new DivergenceInputError('bad-shape', `the vocabulary size must be a positive whole number, not ${studentVocab}`);
  const temperature = request.temperature ?? 1;
  if (!(temperature >= TEMPERATURE_RANGE[0] && temperature <= TEMPERATURE_RANGE[1])) {
    throw new DivergenceInputError('bad-parameter', `temperature ${temperature} is outside the supported range ${TEMPERATURE_RANGE[0]}..${TEMPERATURE_RANGE[1]}`);
  }
  if (request.beta !== undefined && !(request.beta >= 0 && request.beta <= 1)) throw new DivergenceInputError('bad-parameter', `JSD β must be in [0, 1], not ${request.beta}`);
  const topK = request.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0 || topK > MAX_TOP_K) throw new DivergenceInputError('bad-parameter', `topK must be a whole number in 0..${MAX_TOP_K}, not ${topK}`);
  if (request.studentTopK && topK === 0) throw new DivergenceInputError('bad-parameter', "studentTopK asks for the student's top-k, whose k is topK: give topK > 0 too");
  checkBufferSize(request.tokens, positions * 4, 'tokens (u32 per position)');
  if (request.mask) checkBufferSize(request.mask, positions * 4, 'mask (u32 per position)');
  const rowBytes = studentVocab * 4;
  const sources: [string, RowMajorLogits | undefined][] = [
    ['student logits', request.student],
    ['teacher logits', request.teacher],
    ['gradient', request.gradient],
  ];
  for (const [what, source] of sources) {
    if (!source) continue;
    for (const b of toBlocks(source, positions, what)) checkBufferSize(b.buffer, b.byteOffset + b.rows * rowBytes, `${what} (${b.rows} rows × ${studentVocab} f32)`);
  }
  if (request.gradient) {
    const outputs = new Set(toBlocks(request.gradient, positions, 'gradient').map((b) => b.buffer));
    for (const [what, source] of sources.slice(0, 2)) {
      for (const b of toBlocks(source!, positions, what)) {
        if (outputs.has(b.buffer)) throw new DivergenceInputError('aliased-output', `the gradient cannot be written into the buffer holding the ${what} (it is read while the gradient is written)`);
      }
    }
  }
}

function summarize(plan: DivergencePlan): PlanSummary {
  return {
    chunks: plan.chunks.length,
    streamWorkgroupSize: plan.streamWorkgroupSize,
    topKWorkgroupSize: plan.topKWorkgroupSize,
    maxSplits: Math.max(...plan.chunks.map((c) => c.splits)),
    maxSliceLength: Math.max(...plan.chunks.map((c) => c.sliceLength)),
  };
}

function allocate(device: GPUDevice, positions: number, topK: number, studentTopK: boolean, plan: DivergencePlan, needsOnes: boolean): BuffersImpl {
  const stride = fieldStride(positions);
  const slices = plan.maxRowSlices;
  const scratch: Scratch = {
    states: createStorageBuffer(device, slices * plan.streamWorkgroupSize * 32, 'divergence states'),
    stateFlags: createStorageBuffer(device, slices * plan.streamWorkgroupSize * 4, 'divergence state flags'),
    jsdPartials: createStorageBuffer(device, slices * plan.streamWorkgroupSize * 4, 'divergence jsd partials'),
    candidates: createStorageBuffer(device, topK > 0 ? slices * MAX_TOP_K * 4 : 16, 'divergence top-k candidates'),
    studentCandidates: studentTopK ? createStorageBuffer(device, slices * MAX_TOP_K * 4, "divergence student's top-k candidates") : undefined,
    uniforms: device.createBuffer({ label: 'divergence params', size: plan.chunks.length * UNIFORM_STRIDE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
    allOnes: needsOnes ? createStorageBuffer(device, new Uint32Array(positions).fill(1), 'divergence mask (all ones)') : undefined,
    dummy: createStorageBuffer(device, 16, 'divergence no-gradient'),
  };
  const fields = createStorageBuffer(device, FIELDS.length * stride * 4, 'divergence fields');
  const flags = createStorageBuffer(device, positions * 4, 'divergence flags');
  const top = topK > 0;
  const own = top && studentTopK;
  const buffers: BuffersImpl = {
    positions,
    topK,
    studentTopK: own,
    fieldStride: stride,
    fields,
    flags,
    topTokens: top ? createStorageBuffer(device, positions * topK * 4, 'divergence top-k tokens') : undefined,
    topTeacherLogprob: top ? createStorageBuffer(device, positions * topK * 4, 'divergence top-k teacher log-probs') : undefined,
    topStudentLogprob: top ? createStorageBuffer(device, positions * topK * 4, 'divergence top-k student log-probs') : undefined,
    studentTopTokens: own ? createStorageBuffer(device, positions * topK * 4, "divergence student's top-k tokens") : undefined,
    studentTopTeacherLogprob: own ? createStorageBuffer(device, positions * topK * 4, "divergence student's top-k teacher log-probs") : undefined,
    studentTopStudentLogprob: own ? createStorageBuffer(device, positions * topK * 4, "divergence student's top-k student log-probs") : undefined,
    scratch,
    plan: summarize(plan),
    field: (name) => ({ buffer: fields, offset: fieldIndex(name) * stride * 4, size: positions * 4 }),
    destroy: () => {
      const top = [buffers.topTokens, buffers.topTeacherLogprob, buffers.topStudentLogprob, buffers.studentTopTokens, buffers.studentTopTeacherLogprob, buffers.studentTopStudentLogprob];
      for (const b of [fields, flags, ...top, ...Object.values(scratch)]) b?.destroy();
    },
  };
  return buffers;
}

function fits(reuse: DivergenceBuffers | undefined, positions: number, topK: number, studentTopK: boolean, plan: DivergencePlan, needsOnes: boolean): reuse is BuffersImpl {
  if (!reuse || reuse.positions !== positions || reuse.topK !== topK || reuse.studentTopK !== studentTopK || !('scratch' in reuse)) return false;
  const s = (reuse as BuffersImpl).scratch;
  return (
    s.states.size >= plan.maxRowSlices * plan.streamWorkgroupSize * 32 &&
    (topK === 0 || s.candidates.size >= plan.maxRowSlices * MAX_TOP_K * 4) &&
    (!studentTopK || (s.studentCandidates?.size ?? 0) >= plan.maxRowSlices * MAX_TOP_K * 4) &&
    s.uniforms.size >= plan.chunks.length * UNIFORM_STRIDE &&
    (!needsOnes || s.allOnes !== undefined)
  );
}

/** Records every pass of the request; results stay on the GPU. Throws DivergenceInputError on bad input, before any GPU work. */
export function encodeDivergences(device: GPUDevice, request: DivergenceRequest, options: EncodeOptions = {}): DivergenceBuffers {
  validate(request);
  const { positions, studentVocab: vocab } = request;
  const topK = request.topK ?? 0;
  const studentTopK = topK > 0 && request.studentTopK === true;
  const limits = planLimits(device);
  for (const [name, value] of Object.entries(options.limits ?? {}) as [keyof PlanLimits, number][]) {
    limits[name] = name === 'minStorageBufferOffsetAlignment' ? Math.max(limits[name], value) : Math.min(limits[name], value);
  }
  const plan = planDivergences(limits, options.tuning ?? divergenceTuning(device), { positions, vocab, topK }, {
    student: toBlocks(request.student, positions, 'student logits'),
    teacher: toBlocks(request.teacher, positions, 'teacher logits'),
    gradient: request.gradient ? toBlocks(request.gradient, positions, 'gradient') : undefined,
  });
  const needsOnes = !request.mask;
  const out = fits(options.reuse, positions, topK, studentTopK, plan, needsOnes) ? options.reuse : allocate(device, positions, topK, studentTopK, plan, needsOnes);
  if (options.reuse && out !== options.reuse) options.reuse.destroy();
  out.plan = summarize(plan);
  const { scratch } = out;
  const mask = request.mask ?? scratch.allOnes!;
  const stride = out.fieldStride;
  const wantJsd = request.beta !== undefined && request.beta > 0 && request.beta < 1;
  const wantGradient = request.gradient !== undefined;
  const WG = plan.streamWorkgroupSize;

  const uniformData = new Uint8Array(plan.chunks.length * UNIFORM_STRIDE);
  const settings = { vocab, temperature: request.temperature ?? 1, beta: request.beta, topK };
  plan.chunks.forEach((chunk, i) => uniformData.set(new Uint8Array(chunkParams(chunk, settings, stride)), i * UNIFORM_STRIDE));
  device.queue.writeBuffer(scratch.uniforms, 0, uniformData);

  const encoder = options.encoder ?? device.createCommandEncoder({ label: 'divergences' });
  const pass = encoder.beginComputePass({ label: 'divergences' });
  const kernel = (code: string, label: string, constants: Record<string, number>) => ({ code: withSharedWgsl(code), label, constants });
  const stats = kernel(readsLogits(rowStatsWgsl), 'row_stats', { WG });
  const finalize = kernel(rowFinalizeWgsl, 'row_finalize', { WG: FINALIZE_WG, STATS_WG: WG });
  const extras = wantJsd || wantGradient ? kernel(readsLogits(rowExtrasWgsl), 'row_extras', { WG, WITH_JSD: wantJsd ? 1 : 0, WITH_GRADIENT: wantGradient ? 1 : 0 }) : undefined;
  const jsd = wantJsd ? kernel(jsdFinalizeWgsl, 'jsd_finalize', { WG: FINALIZE_WG, EXTRAS_WG: WG }) : undefined;
  const top = topK > 0 ? kernel(teacherTopKWgsl, 'teacher_topk', { WG: plan.topKWorkgroupSize }) : undefined;
  const topFinalize = topK > 0 ? kernel(topKFinalizeWgsl, 'topk_finalize', { WG: FINALIZE_WG }) : undefined;
  // The student's own top-k: the same two kernels ranking the student's logits.
  const ownTop = studentTopK ? kernel(teacherTopKWgsl, 'teacher_topk (student)', { WG: plan.topKWorkgroupSize, RANKS_STUDENT: 1 }) : undefined;
  const ownFinalize = studentTopK ? kernel(topKFinalizeWgsl, 'topk_finalize (student)', { WG: FINALIZE_WG, RANKS_STUDENT: 1 }) : undefined;
  plan.chunks.forEach((chunk, i) => {
    // Each chunk reads its own ChunkParams slot of the shared uniform buffer.
    const params: GPUBufferBinding = { buffer: scratch.uniforms, offset: i * UNIFORM_STRIDE, size: PARAMS_BYTES };
    const student = chunk.student.binding;
    const teacher = chunk.teacher.binding;
    const streamGroups: [number, number] = [chunk.rows, chunk.splits];
    const finalizeGroups: [number] = [Math.ceil(chunk.rows / FINALIZE_WG)];
    launch(device, pass, { ...stats, buffers: [student, teacher, mask, scratch.states, scratch.stateFlags, params], workgroups: streamGroups });
    launch(device, pass, {
      ...finalize,
      buffers: [student, teacher, mask, request.tokens, scratch.states, scratch.stateFlags, out.fields, out.flags, params],
      workgroups: finalizeGroups,
    });
    if (extras) {
      const gradient = chunk.gradient?.binding ?? scratch.dummy;
      launch(device, pass, { ...extras, buffers: [student, teacher, out.fields, out.flags, gradient, scratch.jsdPartials, params], workgroups: streamGroups });
    }
    if (jsd) launch(device, pass, { ...jsd, buffers: [scratch.jsdPartials, out.flags, out.fields, params], workgroups: finalizeGroups });
    if (top && topFinalize) {
      launch(device, pass, { ...top, buffers: [teacher, mask, scratch.candidates, params], workgroups: streamGroups });
      launch(device, pass, {
        ...topFinalize,
        buffers: [student, teacher, scratch.candidates, out.fields, out.flags, out.topTokens!, out.topTeacherLogprob!, out.topStudentLogprob!, params],
        workgroups: finalizeGroups,
      });
    }
    if (ownTop && ownFinalize) {
      launch(device, pass, { ...ownTop, buffers: [student, mask, scratch.studentCandidates!, params], workgroups: streamGroups });
      launch(device, pass, {
        ...ownFinalize,
        buffers: [student, teacher, scratch.studentCandidates!, out.fields, out.flags, out.studentTopTokens!, out.studentTopTeacherLogprob!, out.studentTopStudentLogprob!, params],
        workgroups: finalizeGroups,
      });
    }
  });
  pass.end();
  if (!options.encoder) device.queue.submit([encoder.finish()]);
  return out;
}

/** The results, copied to the CPU, with each flagged position explained. */
export async function readDivergences(device: GPUDevice, buffers: DivergenceBuffers): Promise<DivergenceReadback> {
  const { positions: T, fieldStride: stride, topK: k } = buffers;
  const own = k > 0 && buffers.studentTopK;
  // One copy and one map for everything (a map per buffer costs a wait each).
  const lists = [
    ...(k > 0 ? [buffers.topTokens!, buffers.topTeacherLogprob!, buffers.topStudentLogprob!] : []),
    ...(own ? [buffers.studentTopTokens!, buffers.studentTopTeacherLogprob!, buffers.studentTopStudentLogprob!] : []),
  ];
  const [fieldData, flagData, topTokens, topTeacher, topStudent, ownTokens, ownTeacher, ownStudent] = await readBuffers(device, [
    { buffer: buffers.fields, byteLength: OUTPUT_FIELDS.length * stride * 4 },
    { buffer: buffers.flags, byteLength: T * 4 },
    ...lists.map((buffer) => ({ buffer, byteLength: T * k * 4 })),
  ]);
  const fields = {} as Record<OutputField, Float32Array>;
  OUTPUT_FIELDS.forEach((name, f) => (fields[name] = new Float32Array(fieldData, f * stride * 4, T)));
  const flags = new Uint32Array(flagData);
  const problems: PositionProblem[] = [];
  let valid = 0;
  for (let t = 0; t < T; t++) {
    if (flags[t] & FLAG.VALID) valid++;
    const reasons = describeFlags(flags[t]);
    if (reasons.length > 0) problems.push({ position: t, flags: flags[t], reasons, bad: (flags[t] & FLAG.VALID) === 0 });
  }
  return {
    positions: T,
    fields,
    flags,
    valid,
    problems,
    topK:
      k > 0
        ? {
            k,
            tokens: new Int32Array(topTokens!),
            teacherLogprob: new Float32Array(topTeacher!),
            studentLogprob: new Float32Array(topStudent!),
            ...(own ? { student: { tokens: new Int32Array(ownTokens!), teacherLogprob: new Float32Array(ownTeacher!), studentLogprob: new Float32Array(ownStudent!) } } : {}),
          }
        : undefined,
  };
}

/** Encodes, submits, reads back and frees: the per-token numbers for the UI. */
export async function computeDivergences(device: GPUDevice, request: DivergenceRequest, options: Omit<EncodeOptions, 'encoder'> = {}): Promise<DivergenceReadback> {
  // Input errors throw here, before any GPU work; GPU validation errors become exceptions too.
  return withGpuErrorScope(device, 'divergences', async () => {
    const buffers = encodeDivergences(device, request, options);
    try {
      return await readDivergences(device, buffers);
    } finally {
      buffers.destroy();
    }
  });
}
