/**
 * How far the student agrees with the teacher about a position's best tokens, from the top-k lists
 * the kernels wrote (the teacher's, and with `studentTopK` the student's own):
 *
 *   teacherMass  Σ over the teacher's top-k tokens v of q(v): the teacher's mass on its own top-k;
 *   studentMass  Σ over the same tokens of s(v): the student's mass on the teacher's top-k;
 *   overlap      |top-k(teacher) ∩ top-k(student)| / k.
 *
 * Empty slots (token -1: the model allows fewer than k tokens, or the position is masked or bad)
 * count nothing, so a bad position reads 0, 0, 0. The same code reads the kernels' f32 lists and
 * the float64 reference's (tests compare the two).
 */
import type { TopKOutputs } from './reference';

export interface TopKAgreement {
  teacherMass: number;
  studentMass: number;
  overlap: number;
}

type Lists = TopKOutputs<ArrayLike<number>, ArrayLike<number>>;

/** The agreement at `position`; the overlap needs the student's own list (computed with `studentTopK`). */
export function topKAgreement(top: Lists, position: number): TopKAgreement {
  const { k } = top;
  if (!top.student) throw new Error("topKAgreement: the overlap needs the student's own top-k: compute the divergences with studentTopK");
  const base = position * k;
  const own = new Set<number>();
  for (let i = 0; i < k; i++) if (top.student.tokens[base + i] >= 0) own.add(top.student.tokens[base + i]);
  let teacherMass = 0;
  let studentMass = 0;
  let shared = 0;
  for (let i = 0; i < k; i++) {
    const v = top.tokens[base + i];
    if (v < 0) continue;
    teacherMass += Math.exp(top.teacherLogprob[base + i]);
    studentMass += Math.exp(top.studentLogprob[base + i]);
    if (own.has(v)) shared++;
  }
  return { teacherMass, studentMass, overlap: shared / k };
}
