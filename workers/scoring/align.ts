/**
 * The teacher's logits moved into the student's packed layout.
 *
 * When each model reads a chat prompt rendered with its own template, the two prompts tokenize
 * to different lengths: sequence b is P_s + L tokens for the student and P_t + L for the teacher
 * (the same L completion tokens after each prompt), and the two forwards are padded to different
 * widths (W_s, W_t). The divergence kernels and the trainer's 'kl' objective read the teacher's
 * logits at the student's packed row b·W_s + t, so the rows that predict completion tokens are
 * copied across: the student's rows P_s−1 … P_s−1+L−1 of sequence b take the teacher's rows
 * P_t−1 … P_t−1+L−1, one copyBufferToBuffer per sequence (the rows are contiguous in both).
 * Every other row of the result is zero: the prompt and padding rows, which carry weight 0, so
 * the kernels never read them (their mask is 0).
 */
import { createStorageBuffer, withGpuErrorScope } from '../gpu/buffers';

export class AlignError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlignError';
  }
}

/** Where one sequence's completion rows are in the teacher's layout and go in the student's. */
export interface AlignedSequence {
  /** The teacher's row (within its sequence) predicting the first completion token: P_t − 1. */
  teacherStart: number;
  /** The student's row (within its sequence) predicting the first completion token: P_s − 1. */
  studentStart: number;
  /** Rows copied: the completion's tokens, L. */
  rows: number;
}

/**
 * Several teachers' logits into one student layout (a run whose prompt sets each have their own
 * teacher, DistillRun's routes): each part is one teacher's forward over some of the student's
 * sequences, `students[j]` naming the student sequence its j-th sequence fills. Every student
 * sequence is filled by at most one part; rows no part fills stay zero (weight 0, never read).
 */
export interface AlignPartsRequest {
  studentWidth: number;
  /** The student's sequences in the batch (the result's first dimension). */
  studentSequences: number;
  vocab: number;
  parts: readonly { teacher: GPUBuffer; teacherWidth: number; sequences: readonly AlignedSequence[]; students: readonly number[] }[];
}

export interface AlignRequest {
  /** The teacher's logits, f32 [sequences, teacherWidth, vocab] (forwardLogits' output). */
  teacher: GPUBuffer;
  teacherWidth: number;
  /** The student's packed width W_s (its longest sequence). */
  studentWidth: number;
  /** The teacher's vocabulary (each row's length). */
  vocab: number;
  /** One entry per sequence, in order. */
  sequences: readonly AlignedSequence[];
}

/** Checks one request's rows against both widths; throws a sentence naming the sequence. */
function checkRequest(r: Omit<AlignRequest, 'teacher'>): void {
  for (const [name, v] of [['teacher width', r.teacherWidth], ['student width', r.studentWidth], ['vocabulary', r.vocab]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new AlignError(`the ${name} ${v} is not a positive whole number`);
  }
  r.sequences.forEach((s, b) => {
    if (![s.teacherStart, s.studentStart, s.rows].every((v) => Number.isInteger(v) && v >= 0)) {
      throw new AlignError(`sequence ${b}: its rows (teacher from ${s.teacherStart}, student from ${s.studentStart}, ${s.rows} of them) are not whole numbers ≥ 0`);
    }
    if (s.teacherStart + s.rows > r.teacherWidth || s.studentStart + s.rows > r.studentWidth) {
      throw new AlignError(
        `sequence ${b}: ${s.rows} rows from the teacher's row ${s.teacherStart} (width ${r.teacherWidth}) to the student's row ${s.studentStart} (width ${r.studentWidth}) run past a sequence's end`,
      );
    }
  });
}

/**
 * A new buffer f32 [sequences, studentWidth, vocab] holding the teacher's completion rows at the
 * student's positions, zero elsewhere (the caller destroys it). One command buffer, submitted.
 */
export async function alignTeacherLogits(device: GPUDevice, request: AlignRequest): Promise<GPUBuffer> {
  checkRequest(request);
  const { teacher, teacherWidth, studentWidth, vocab, sequences } = request;
  const rowBytes = vocab * 4;
  const need = sequences.length * teacherWidth * rowBytes;
  if (teacher.size < need) throw new AlignError(`the teacher's logits hold ${teacher.size} bytes, fewer than the ${need} of [${sequences.length}, ${teacherWidth}, ${vocab}] f32`);
  const bytes = sequences.length * studentWidth * rowBytes;
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new AlignError(
      `the teacher's logits in the student's layout ([${sequences.length}, ${studentWidth}, ${vocab}] f32, ${bytes} bytes) exceed the adapter's ${limit}-byte storage binding: use fewer prompts or completions a step, or fewer new tokens`,
    );
  }
  const out = createStorageBuffer(device, bytes, "teacher logits in the student's layout");
  return withGpuErrorScope(device, "aligning the teacher's logits", () => {
    const encoder = device.createCommandEncoder({ label: "align the teacher's logits" });
    sequences.forEach((s, b) => {
      if (s.rows === 0) return;
      encoder.copyBufferToBuffer(teacher, (b * teacherWidth + s.teacherStart) * rowBytes, out, (b * studentWidth + s.studentStart) * rowBytes, s.rows * rowBytes);
    });
    device.queue.submit([encoder.finish()]);
    return out;
  }).catch((e: unknown) => {
    out.destroy();
    throw e;
  });
}

/**
 * A new buffer f32 [studentSequences, studentWidth, vocab] with each part's completion rows at
 * its student sequences' positions, zero elsewhere (the caller destroys it); one command buffer.
 */
export async function alignTeacherParts(device: GPUDevice, request: AlignPartsRequest): Promise<GPUBuffer> {
  const { studentWidth, studentSequences, vocab, parts } = request;
  const filled = new Set<number>();
  for (const p of parts) {
    checkRequest({ teacherWidth: p.teacherWidth, studentWidth, vocab, sequences: p.sequences });
    if (p.students.length !== p.sequences.length) throw new AlignError(`a part names ${p.students.length} student sequences for its ${p.sequences.length} sequences`);
    const need = p.sequences.length * p.teacherWidth * vocab * 4;
    if (p.teacher.size < need) throw new AlignError(`a teacher's logits hold ${p.teacher.size} bytes, fewer than the ${need} of [${p.sequences.length}, ${p.teacherWidth}, ${vocab}] f32`);
    for (const b of p.students) {
      if (!Number.isInteger(b) || b < 0 || b >= studentSequences || filled.has(b)) throw new AlignError(`student sequence ${b} is outside the ${studentSequences} sequences or filled by two teachers`);
      filled.add(b);
    }
  }
  const rowBytes = vocab * 4;
  const bytes = studentSequences * studentWidth * rowBytes;
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new AlignError(
      `the teachers' logits in the student's layout ([${studentSequences}, ${studentWidth}, ${vocab}] f32, ${bytes} bytes) exceed the adapter's ${limit}-byte storage binding: use fewer prompts or completions a step, or fewer new tokens`,
    );
  }
  const out = createStorageBuffer(device, bytes, "teachers' logits in the student's layout");
  return withGpuErrorScope(device, "aligning the teachers' logits", () => {
    const encoder = device.createCommandEncoder({ label: "align the teachers' logits" });
    for (const p of parts) {
      p.sequences.forEach((s, j) => {
        if (s.rows === 0) return;
        encoder.copyBufferToBuffer(p.teacher, (j * p.teacherWidth + s.teacherStart) * rowBytes, out, (p.students[j] * studentWidth + s.studentStart) * rowBytes, s.rows * rowBytes);
      });
    }
    device.queue.submit([encoder.finish()]);
    return out;
  }).catch((e: unknown) => {
    out.destroy();
    throw e;
  });
}

/** The same in plain TypeScript, on the CPU: the reference the GPU copy is tested against. */
export function alignTeacherLogitsReference(teacher: Float32Array, request: Omit<AlignRequest, 'teacher'>): Float32Array {
  checkRequest(request);
  const { teacherWidth, studentWidth, vocab, sequences } = request;
  const out = new Float32Array(sequences.length * studentWidth * vocab);
  sequences.forEach((s, b) => {
    for (let i = 0; i < s.rows; i++) {
      const from = (b * teacherWidth + s.teacherStart + i) * vocab;
      out.set(teacher.subarray(from, from + vocab), (b * studentWidth + s.studentStart + i) * vocab);
    }
  });
  return out;
}
