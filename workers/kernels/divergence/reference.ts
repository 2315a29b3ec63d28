/**
 * The divergence kernels' CPU reference: every output, in plain TypeScript with float64 sums,
 * written to be obviously right rather than fast (log-normalisers first, then each log-prob
 * s(v), q(v) and probability p(v), r(v) explicitly). It takes the same f32 logits the GPU reads
 * and applies the same rules about bad input, so the two can be compared element by element.
 *
 * Rules (as in the WGSL): -inf logits are absent tokens (probability 0, no term); NaN, +Inf and
 * finite |z| ≥ 2^64 make the position bad (outputs 0, flagged); -inf on one side only makes the
 * KL in that direction +Infinity (flagged); masked positions give 0 and no flags.
 */
import { BAD_FLAGS, FLAG, MAX_TOP_K, type OutputField } from './layout';

export interface DivergenceProblem {
  /** Student logits [positions, vocab], row-major. */
  student: Float32Array;
  /** Teacher logits [positions, vocab], row-major. */
  teacher: Float32Array;
  /** Sampled token id per position. */
  tokens: Uint32Array;
  /** Position mask: 0 = not counted. Absent: every position counts. */
  mask?: Uint32Array;
  positions: number;
  vocab: number;
  temperature?: number;
  /** JSD mixture weight; absent: no JSD (the jsd output stays 0). */
  beta?: number;
  topK?: number;
  /** Also the student's own top-k (same k): the student's logits ranked by the same rule. */
  studentTopK?: boolean;
  /** Also compute ∂KL/∂z_student [positions, vocab]. */
  gradient?: boolean;
}

export interface TopKOutputs<F, I> {
  k: number;
  /** [positions, k] token ids, -1 where the teacher allows fewer than k tokens or the position does not count. */
  tokens: I;
  teacherLogprob: F;
  studentLogprob: F;
  /** With studentTopK: the student's own top-k, the same three arrays (tokens the student allows). */
  student?: { tokens: I; teacherLogprob: F; studentLogprob: F };
}

export interface DivergenceOutputs<F, U, I> {
  positions: number;
  fields: Record<OutputField, F>;
  flags: U;
  topK?: TopKOutputs<F, I>;
}

export type ReferenceOutputs = DivergenceOutputs<Float64Array, Uint32Array, Int32Array> & {
  gradient?: Float64Array;
  /**
   * With the gradient: p(v)·(|s(v)| + |q(v)| + |KL|)/τ, the size of the terms whose difference the
   * gradient is. An f32 kernel's error is proportional to it (tests scale tolerances by it).
   */
  gradientMagnitude?: Float64Array;
};

const RANGE = 2 ** 64;

type Kind = 'present' | 'absent' | 'nan' | 'posinf' | 'huge';

function kindOf(z: number): Kind {
  if (Number.isNaN(z)) return 'nan';
  if (z === Infinity) return 'posinf';
  if (z === -Infinity) return 'absent';
  if (Math.abs(z) >= RANGE) return 'huge';
  return 'present';
}

const STUDENT_BITS: Record<Exclude<Kind, 'present' | 'absent'>, number> = {
  nan: FLAG.STUDENT_NAN,
  posinf: FLAG.STUDENT_POS_INF,
  huge: FLAG.STUDENT_OUT_OF_RANGE,
};
const TEACHER_BITS: Record<Exclude<Kind, 'present' | 'absent'>, number> = {
  nan: FLAG.TEACHER_NAN,
  posinf: FLAG.TEACHER_POS_INF,
  huge: FLAG.TEACHER_OUT_OF_RANGE,
};

/** log(e^x + e^y) without overflow; -Infinity when both are. */
function logAddExp(x: number, y: number): number {
  const hi = Math.max(x, y);
  if (hi === -Infinity) return -Infinity;
  return hi + Math.log(Math.exp(x - hi) + Math.exp(y - hi));
}

export function referenceDivergences(problem: DivergenceProblem): ReferenceOutputs {
  const { student, teacher, tokens, mask, positions: T, vocab: V } = problem;
  const tau = problem.temperature ?? 1;
  const beta = problem.beta;
  const k = problem.topK ?? 0;
  if (student.length < T * V || teacher.length < T * V) throw new Error('reference: logits shorter than positions × vocab');
  if (k < 0 || k > MAX_TOP_K) throw new Error(`reference: topK ${k} outside 0..${MAX_TOP_K}`);
  const fields = {} as Record<OutputField, Float64Array>;
  for (const name of ['studentLogprob', 'teacherLogprob', 'sampledKL', 'reverseKL', 'forwardKL', 'jsd', 'studentEntropy', 'teacherEntropy'] as const) {
    fields[name] = new Float64Array(T);
  }
  const flagsOut = new Uint32Array(T);
  const topK: TopKOutputs<Float64Array, Int32Array> | undefined =
    k > 0 ? { k, tokens: new Int32Array(T * k).fill(-1), teacherLogprob: new Float64Array(T * k), studentLogprob: new Float64Array(T * k) } : undefined;
  if (topK && problem.studentTopK) topK.student = { tokens: new Int32Array(T * k).fill(-1), teacherLogprob: new Float64Array(T * k), studentLogprob: new Float64Array(T * k) };
  const gradient = problem.gradient ? new Float64Array(T * V) : undefined;
  const gradientMagnitude = problem.gradient ? new Float64Array(T * V) : undefined;
  const s = new Float64Array(V);
  const q = new Float64Array(V);
  const expS = new Float64Array(V);
  const expT = new Float64Array(V);
  const sPresent = new Uint8Array(V);
  const tPresent = new Uint8Array(V);

  for (let t = 0; t < T; t++) {
    if (mask && mask[t] === 0) continue;
    const base = t * V;
    let flags = 0;
    let ms = -Infinity;
    let mt = -Infinity;
    for (let v = 0; v < V; v++) {
      const ks = kindOf(student[base + v]);
      const kt = kindOf(teacher[base + v]);
      sPresent[v] = ks === 'present' ? 1 : 0;
      tPresent[v] = kt === 'present' ? 1 : 0;
      if (ks !== 'present' && ks !== 'absent') flags |= STUDENT_BITS[ks];
      if (kt !== 'present' && kt !== 'absent') flags |= TEACHER_BITS[kt];
      if (ks === 'present' && kt === 'absent') flags |= FLAG.REVERSE_KL_INFINITE;
      if (kt === 'present' && ks === 'absent') flags |= FLAG.FORWARD_KL_INFINITE;
      if (ks === 'present') ms = Math.max(ms, student[base + v]);
      if (kt === 'present') mt = Math.max(mt, teacher[base + v]);
    }
    if (ms === -Infinity) flags |= FLAG.STUDENT_EMPTY;
    if (mt === -Infinity) flags |= FLAG.TEACHER_EMPTY;
    const y = tokens[t];
    if (y >= V) flags |= FLAG.TOKEN_OUT_OF_RANGE;
    else {
      if (student[base + y] === -Infinity) flags |= FLAG.TOKEN_FORBIDDEN_BY_STUDENT;
      if (teacher[base + y] === -Infinity) flags |= FLAG.TOKEN_FORBIDDEN_BY_TEACHER;
    }
    if (flags & BAD_FLAGS) {
      flagsOut[t] = flags;
      continue;
    }
    flagsOut[t] = (flags | FLAG.VALID) >>> 0;

    // Log-normalisers of the scaled logits, shifted by the maxima.
    let sumS = 0;
    let sumT = 0;
    for (let v = 0; v < V; v++) {
      expS[v] = sPresent[v] ? Math.exp((student[base + v] - ms) / tau) : 0;
      expT[v] = tPresent[v] ? Math.exp((teacher[base + v] - mt) / tau) : 0;
      sumS += expS[v];
      sumT += expT[v];
    }
    const lseS = Math.log(sumS);
    const lseT = Math.log(sumT);
    for (let v = 0; v < V; v++) {
      s[v] = sPresent[v] ? (student[base + v] - ms) / tau - lseS : -Infinity;
      q[v] = tPresent[v] ? (teacher[base + v] - mt) / tau - lseT : -Infinity;
    }

    let reverse = 0;
    let forward = 0;
    let hS = 0;
    let hT = 0;
    let jsd = 0;
    const mixed = beta !== undefined && beta > 0 && beta < 1;
    for (let v = 0; v < V; v++) {
      if (sPresent[v]) {
        const p = expS[v] / sumS;
        hS -= p * s[v];
        if (tPresent[v]) reverse += p * (s[v] - q[v]);
      }
      if (tPresent[v]) {
        const r = expT[v] / sumT;
        hT -= r * q[v];
        if (sPresent[v]) forward += r * (q[v] - s[v]);
      }
      if (mixed && (sPresent[v] || tPresent[v])) {
        const m = logAddExp(Math.log(1 - beta) + s[v], Math.log(beta) + q[v]);
        if (tPresent[v]) jsd += beta * (expT[v] / sumT) * (q[v] - m);
        if (sPresent[v]) jsd += (1 - beta) * (expS[v] / sumS) * (s[v] - m);
      }
    }
    if (flags & FLAG.REVERSE_KL_INFINITE) reverse = Infinity;
    if (flags & FLAG.FORWARD_KL_INFINITE) forward = Infinity;
    fields.studentLogprob[t] = s[y];
    fields.teacherLogprob[t] = q[y];
    fields.sampledKL[t] = s[y] - q[y];
    fields.reverseKL[t] = reverse;
    fields.forwardKL[t] = forward;
    fields.jsd[t] = beta === undefined ? 0 : beta === 0 ? forward : beta === 1 ? reverse : jsd;
    fields.studentEntropy[t] = hS;
    fields.teacherEntropy[t] = hT;

    // The top-k order: larger logit first, ties to the smaller token id; allowed tokens only.
    const ranked = (logits: Float32Array, present: Uint8Array, out: { tokens: Int32Array; teacherLogprob: Float64Array; studentLogprob: Float64Array }) => {
      const order: number[] = [];
      for (let v = 0; v < V; v++) if (present[v]) order.push(v);
      order.sort((a, b) => logits[base + b] - logits[base + a] || a - b);
      for (let i = 0; i < k; i++) {
        const v = order[i];
        if (v === undefined) {
          out.teacherLogprob[t * k + i] = -Infinity;
          out.studentLogprob[t * k + i] = -Infinity;
          continue;
        }
        out.tokens[t * k + i] = v;
        out.teacherLogprob[t * k + i] = q[v];
        out.studentLogprob[t * k + i] = s[v];
      }
    };
    if (topK) ranked(teacher, tPresent, topK);
    if (topK?.student) ranked(student, sPresent, topK.student);
    if (gradient && gradientMagnitude && !(flags & FLAG.REVERSE_KL_INFINITE)) {
      for (let v = 0; v < V; v++) {
        if (!sPresent[v]) continue;
        const p = expS[v] / sumS;
        gradient[base + v] = (p * (s[v] - q[v] - reverse)) / tau;
        gradientMagnitude[base + v] = (p * (Math.abs(s[v]) + Math.abs(q[v]) + Math.abs(reverse))) / tau;
      }
    }
  }
  return { positions: T, fields, flags: flagsOut, topK, gradient, gradientMagnitude };
}

/**
 * The reverse KL of one row as a function of the student logits alone (float64 throughout): the
 * quantity whose gradient the kernel writes, for finite-difference checks.
 */
export function referenceRowReverseKL(studentRow: ArrayLike<number>, teacherRow: ArrayLike<number>, temperature = 1): number {
  const V = studentRow.length;
  let ms = -Infinity;
  let mt = -Infinity;
  for (let v = 0; v < V; v++) {
    if (studentRow[v] > -Infinity) ms = Math.max(ms, studentRow[v]);
    if (teacherRow[v] > -Infinity) mt = Math.max(mt, teacherRow[v]);
  }
  let sumS = 0;
  let sumT = 0;
  for (let v = 0; v < V; v++) {
    if (studentRow[v] > -Infinity) sumS += Math.exp((studentRow[v] - ms) / temperature);
    if (teacherRow[v] > -Infinity) sumT += Math.exp((teacherRow[v] - mt) / temperature);
  }
  const lseS = Math.log(sumS);
  const lseT = Math.log(sumT);
  let kl = 0;
  for (let v = 0; v < V; v++) {
    if (!(studentRow[v] > -Infinity)) continue;
    const sv = (studentRow[v] - ms) / temperature - lseS;
    const qv = (teacherRow[v] - mt) / temperature - lseT;
    kl += Math.exp(sv) * (sv - qv);
  }
  return kl;
}
