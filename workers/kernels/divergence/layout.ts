/**
 * What the divergence kernels write, where: the per-position fields (one f32 array per field, all
 * in one GPU buffer), the per-position flag word and what its bits mean. The WGSL files repeat
 * these numbers as constants; this file is the one they must agree with.
 */

/** Per-position outputs a caller reads, in their order in the fields buffer. */
export const OUTPUT_FIELDS = [
  'studentLogprob',
  'teacherLogprob',
  'sampledKL',
  'reverseKL',
  'forwardKL',
  'jsd',
  'studentEntropy',
  'teacherEntropy',
] as const;

export type OutputField = (typeof OUTPUT_FIELDS)[number];

/**
 * Every field of the buffer: the outputs, then the row normalisers later passes use (raw logit
 * maximum m and log2 of Σ 2^((z − m)·c), c = log2(e)/temperature).
 */
export const FIELDS = [...OUTPUT_FIELDS, 'studentMax', 'studentLog2Sum', 'teacherMax', 'teacherLog2Sum'] as const;

export type Field = (typeof FIELDS)[number];

export function fieldIndex(name: Field): number {
  return FIELDS.indexOf(name);
}

/** Field f of position t sits at f·stride + t; the stride keeps every field 256-byte aligned. */
export function fieldStride(positions: number): number {
  return Math.ceil(Math.max(1, positions) / 64) * 64;
}

/** Largest k of the teacher's top-k (the kernels' KMAX). */
export const MAX_TOP_K = 20;

/** Bits of the per-position flag word. */
export const FLAG = {
  STUDENT_NAN: 1 << 0,
  STUDENT_POS_INF: 1 << 1,
  STUDENT_OUT_OF_RANGE: 1 << 2,
  TEACHER_NAN: 1 << 3,
  TEACHER_POS_INF: 1 << 4,
  TEACHER_OUT_OF_RANGE: 1 << 5,
  STUDENT_EMPTY: 1 << 6,
  TEACHER_EMPTY: 1 << 7,
  TOKEN_OUT_OF_RANGE: 1 << 8,
  TOKEN_FORBIDDEN_BY_STUDENT: 1 << 9,
  REVERSE_KL_INFINITE: 1 << 10,
  FORWARD_KL_INFINITE: 1 << 11,
  TOKEN_FORBIDDEN_BY_TEACHER: 1 << 12,
  /** Set on counted positions (mask ≠ 0) with no bad flag: their outputs are meaningful. */
  VALID: 2 ** 31,
} as const;

/** Flags that make a position's outputs meaningless: all its fields are written as 0. */
export const BAD_FLAGS = 0x3ff;

/** Flags that mark an exact infinity in the outputs (not an error in the input). */
export const INFINITY_FLAGS = FLAG.REVERSE_KL_INFINITE | FLAG.FORWARD_KL_INFINITE | FLAG.TOKEN_FORBIDDEN_BY_TEACHER;

const FLAG_SENTENCES: [number, string][] = [
  [FLAG.STUDENT_NAN, 'a student logit is NaN'],
  [FLAG.STUDENT_POS_INF, 'a student logit is +Infinity'],
  [FLAG.STUDENT_OUT_OF_RANGE, 'a student logit is finite but |z| ≥ 2^64, outside the supported range'],
  [FLAG.TEACHER_NAN, 'a teacher logit is NaN'],
  [FLAG.TEACHER_POS_INF, 'a teacher logit is +Infinity'],
  [FLAG.TEACHER_OUT_OF_RANGE, 'a teacher logit is finite but |z| ≥ 2^64, outside the supported range'],
  [FLAG.STUDENT_EMPTY, 'every student logit is -Infinity: no distribution'],
  [FLAG.TEACHER_EMPTY, 'every teacher logit is -Infinity: no distribution'],
  [FLAG.TOKEN_OUT_OF_RANGE, 'the sampled token id is outside the vocabulary'],
  [FLAG.TOKEN_FORBIDDEN_BY_STUDENT, "the sampled token has a -Infinity student logit (the student cannot have sampled it)"],
  [FLAG.REVERSE_KL_INFINITE, 'the teacher forbids (-Infinity) a token the student allows: reverse KL is +Infinity'],
  [FLAG.FORWARD_KL_INFINITE, 'the student forbids (-Infinity) a token the teacher allows: forward KL is +Infinity'],
  [FLAG.TOKEN_FORBIDDEN_BY_TEACHER, 'the teacher forbids the sampled token: teacher log-prob -Infinity, sampled-token KL +Infinity'],
];

/** The sentences for the problem bits of a flag word (VALID is not a problem). */
export function describeFlags(flags: number): string[] {
  return FLAG_SENTENCES.filter(([bit]) => (flags & bit) !== 0).map(([, sentence]) => sentence);
}

export function isBad(flags: number): boolean {
  return (flags & BAD_FLAGS) !== 0;
}

/**
 * The field indices and flag bits above as WGSL constants (F_STUDENT_LOGPROB, FIELDS,
 * STUDENT_NAN, BAD_MASK, VALID, …), prepended to every kernel with shared.wgsl, so that the
 * shaders and the TypeScript read one layout.
 */
export function layoutWgsl(): string {
  const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  const u32 = (v: number) => `0x${(v >>> 0).toString(16)}u`;
  const lines = FIELDS.map((name, i) => `const F_${snake(name)}: u32 = ${i}u;`);
  lines.push(`const FIELDS: u32 = ${FIELDS.length}u;`);
  for (const [name, bit] of Object.entries(FLAG)) lines.push(`const ${name}: u32 = ${u32(bit)};`);
  lines.push(`const BAD_MASK: u32 = ${u32(BAD_FLAGS)};`);
  return lines.join('\n');
}
