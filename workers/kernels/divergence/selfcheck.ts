/**
 * The divergence kernels' property check: from a seed, generate cases (random shapes and
 * temperatures, and the awkward ones: V = 1, V = 50,257, V = 151,936, V not a multiple of the
 * workgroup, T = 1, logits spread to ±1e4, a one-hot teacher, identical models, masked -inf
 * vocabulary, NaN / Inf input, forced chunking over row blocks), run the WGSL on the given
 * device, and compare every output with the float64 reference (reference.ts) and the gradient
 * also with finite differences. Plain async code with no Node API: the unit tests call it in
 * Node, and the end-to-end test calls it inside the browser's lab worker.
 */
import { createStorageBuffer, readFloat32, withGpuErrorScope } from '../../gpu/buffers';
import { encodeDivergences, readDivergences, type DivergenceReadback, type DivergenceRequest, type DivergenceTuning, type EncodeOptions } from './divergence';
export type { CaseReport, DivergenceSelfCheckReport, Expectation, OutputCheck };
import { FLAG, OUTPUT_FIELDS, type OutputField } from './layout';
import type { CaseReport, DivergenceSelfCheckReport, Expectation, OutputCheck } from '../../contract/reports';
import { referenceDivergences, referenceRowReverseKL, type DivergenceProblem, type ReferenceOutputs } from './reference';

/**
 * Tolerance of each output: |gpu − reference| ≤ atol + rtol·|reference| + crtol·c, where c is the
 * size of the terms the output is a difference of (the condition scale; 0 unless stated). Why:
 *
 * The kernel works in f32 (unit roundoff ε = 2^-24 ≈ 6e-8). Three error sources bound it:
 *  1. the shifted, scaled logit a = (z − max)·log2(e)/τ is rounded: ≤ 3ε·|a| (subtraction,
 *     rounding of log2(e)/τ, product). With logits spread to ±1e4, |a| reaches 3·10^4, so a
 *     log-prob can be off by ~2e-3 — no more than the f32 spacing of the log-prob itself there;
 *  2. the normalising sums W = Σ 2^a are f32 sums of positive terms: ≤ n·ε relative with n the
 *     sequential additions (per invocation: two per trip of eight elements, so ≤ 2·ceil(V/(8·WG)),
 *     plus the merge of splits·WG states): n ≤ ~2,650 in the largest case here, i.e. ≤ 1.6e-4
 *     worst case, ~√n·ε ≈ 3e-6 in practice (the rounding errors have random signs);
 *  3. exp2 and log2: WGSL allows 3 + 2|x| ulp for exp2, ≤ (3 + 2·18)ε on a row of ≤ 2^18 tokens.
 * So a log-prob log p(y) = ln2·(a_y − log2 W) errs by ≲ 3ε|a_y| + (√n + 40)ε: atol 2e-5 (5× the
 * √n estimate for the largest rows) and rtol 1e-6 (≈ 16ε, for term 1).
 * sampled KL s(y) − q(y): both log-probs' errors, so rtol multiplies c = |s(y)| + |q(y)|.
 * KLs, JSD, entropies are means E_p[a − b], E_p[a] of such values, plus the normalisers: the same
 * atol, and rtol 1e-5 because their terms can be ~10^4 times the result (spread logits, a
 * disagreeing teacher); the JSD's mixture log adds two log2/exp2 roundings to the same budget.
 * Gradient p(v)·(s(v) − q(v) − KL)/τ: p's relative error is the log-prob's absolute error (rtol
 * 1e-4 on |gradient|), and s − q − KL cancels terms of size c = p·(|s| + |q| + |KL|)/τ, each
 * known to ~3ε relative (crtol 1e-6); atol 2e-6 for the p ≈ 1 entries' share of the normaliser error.
 * Finite differences (central, h = 1e-3, float64): truncation h²/6·|∂³KL| ≲ 1e-7/τ³ and roundoff
 * 1e-16·|KL|/h are far below the kernel's own error, so they get the gradient's budget, doubled.
 * Identical student and teacher are held to the stricter 1e-6 on every KL and the JSD
 * (the kernel gets exactly 0 for the KLs: a − b is 0 bit for bit, and W = Z bit for bit).
 */
export interface Tolerance {
  atol: number;
  rtol: number;
  /** Multiplies the condition scale c (see above); 0 when absent. */
  crtol?: number;
}

export const TOLERANCES: Record<OutputField | 'topKLogprob' | 'gradient' | 'gradientFiniteDifference', Tolerance> = {
  studentLogprob: { atol: 2e-5, rtol: 1e-6 },
  teacherLogprob: { atol: 2e-5, rtol: 1e-6 },
  sampledKL: { atol: 4e-5, rtol: 0, crtol: 1e-6 },
  reverseKL: { atol: 2e-5, rtol: 1e-5 },
  forwardKL: { atol: 2e-5, rtol: 1e-5 },
  jsd: { atol: 2e-5, rtol: 1e-5 },
  studentEntropy: { atol: 2e-5, rtol: 1e-5 },
  teacherEntropy: { atol: 2e-5, rtol: 1e-5 },
  topKLogprob: { atol: 2e-5, rtol: 1e-6 },
  gradient: { atol: 2e-6, rtol: 1e-4, crtol: 1e-6 },
  gradientFiniteDifference: { atol: 4e-6, rtol: 2e-4, crtol: 2e-6 },
};

/** The bound for identical student and teacher. */
export const IDENTICAL_TOLERANCE = 1e-6;

// ------------------------------------------------------------------ random inputs

type Rng = () => number;

/** mulberry32: small, fast, good enough for test data. */
function rngFrom(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

function int(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

interface CaseInput {
  student: Float32Array;
  teacher: Float32Array;
  tokens: Uint32Array;
  mask?: Uint32Array;
}

/** A case: the shape and settings its report names, and how to make its inputs. */
interface CaseSpec extends Pick<CaseReport, 'name' | 'positions' | 'vocab' | 'temperature' | 'beta' | 'topK' | 'gradient'> {
  make: (rng: Rng) => CaseInput;
  /** Extra encode options (forced chunking). */
  options?: EncodeOptions;
  /** Split the student's rows over this many buffers. */
  studentBlocks?: number[];
  expect?: (got: DivergenceReadback, ref: ReferenceOutputs, input: CaseInput) => Expectation[];
}

/** Teacher = student + noise: KLs of a useful size. */
function correlated(rng: Rng, T: number, V: number, scale: number, noise: number): { student: Float32Array; teacher: Float32Array } {
  const student = new Float32Array(T * V);
  const teacher = new Float32Array(T * V);
  for (let i = 0; i < T * V; i++) {
    student[i] = scale * normal(rng);
    teacher[i] = student[i] + noise * normal(rng);
  }
  return { student, teacher };
}

function randomTokens(rng: Rng, T: number, V: number, allowed?: (t: number, v: number) => boolean): Uint32Array {
  const tokens = new Uint32Array(T);
  for (let t = 0; t < T; t++) {
    let v = int(rng, 0, V - 1);
    for (let tries = 0; allowed && !allowed(t, v) && tries < 1000; tries++) v = int(rng, 0, V - 1);
    tokens[t] = v;
  }
  return tokens;
}

const ALL_KLS: OutputField[] = ['sampledKL', 'reverseKL', 'forwardKL', 'jsd'];

function randomCase(rng: Rng, index: number): CaseSpec {
  const T = int(rng, 1, 6);
  // Vocabulary sizes around and away from multiples of the workgroup sizes.
  const V = rng() < 0.3 ? 16 * int(rng, 1, 64) + int(rng, 1, 15) : int(rng, 1, 5000);
  const temperature = [0.25, 0.7, 1, 1, 1.6, 4][int(rng, 0, 5)];
  const beta = [undefined, 0, 1, 0.5, rng()][int(rng, 0, 4)];
  const scale = [0.5, 2, 6][int(rng, 0, 2)];
  return {
    name: `random #${index} (T=${T}, V=${V})`,
    positions: T,
    vocab: V,
    temperature,
    beta,
    topK: int(rng, 0, 20),
    gradient: rng() < 0.5,
    make: (r) => {
      const { student, teacher } = correlated(r, T, V, scale, scale * 0.5);
      const mask = new Uint32Array(T).map(() => (r() < 0.85 ? 1 : 0));
      return { student, teacher, tokens: randomTokens(r, T, V), mask };
    },
  };
}

function fixedCases(): CaseSpec[] {
  return [
    {
      name: 'V = 1 (one token: every log-prob and KL is 0)',
      positions: 3,
      vocab: 1,
      temperature: 1,
      beta: 0.5,
      topK: 3,
      gradient: true,
      make: (r) => ({ ...correlated(r, 3, 1, 3, 1), tokens: new Uint32Array(3) }),
      expect: (got) => [
        { what: 'all log-probs, KLs and entropies are 0', passed: OUTPUT_FIELDS.every((f) => got.fields[f].every((x) => Math.abs(x) <= 1e-6)) },
        { what: 'top-k lists token 0 then -1 (no such token)', passed: [0, 1, 2].every((t) => got.topK!.tokens[t * 3] === 0 && got.topK!.tokens[t * 3 + 1] === -1) },
      ],
    },
    {
      name: 'T = 1, V = 50,257 (GPT-2)',
      positions: 1,
      vocab: 50257,
      temperature: 1,
      beta: 0.5,
      topK: 20,
      gradient: true,
      make: (r) => ({ ...correlated(r, 1, 50257, 3, 1.5), tokens: randomTokens(r, 1, 50257) }),
    },
    {
      name: 'T = 2, V = 50,257, temperature 0.7',
      positions: 2,
      vocab: 50257,
      temperature: 0.7,
      beta: 0.2,
      topK: 5,
      gradient: false,
      make: (r) => ({ ...correlated(r, 2, 50257, 2, 1), tokens: randomTokens(r, 2, 50257) }),
    },
    {
      name: 'T = 1, V = 151,936 (Qwen)',
      positions: 1,
      vocab: 151936,
      temperature: 1,
      beta: 0.9,
      topK: 10,
      gradient: true,
      make: (r) => ({ ...correlated(r, 1, 151936, 2.5, 1), tokens: randomTokens(r, 1, 151936) }),
    },
    {
      name: 'T = 64, V = 32,000 (many rows)',
      positions: 64,
      vocab: 32000,
      temperature: 1,
      beta: 0.5,
      topK: 5,
      gradient: true,
      make: (r) => ({ ...correlated(r, 64, 32000, 2, 1), tokens: randomTokens(r, 64, 32000) }),
    },
    {
      name: 'logits spread to ±1e4',
      positions: 4,
      vocab: 4099,
      temperature: 1,
      beta: 0.5,
      topK: 8,
      gradient: true,
      make: (r) => {
        const T = 4;
        const V = 4099;
        const student = new Float32Array(T * V);
        const teacher = new Float32Array(T * V);
        for (let t = 0; t < T; t++) {
          for (let v = 0; v < V; v++) {
            const i = t * V + v;
            student[i] = (2 * r() - 1) * 1e4;
            // Rows 0–1: an unrelated teacher (KLs ~1e4); rows 2–3: the student plus small noise.
            teacher[i] = t < 2 ? (2 * r() - 1) * 1e4 : student[i] + normal(r);
          }
        }
        return { student, teacher, tokens: randomTokens(r, T, V) };
      },
    },
    {
      name: 'one-hot teacher (-inf everywhere but one token)',
      positions: 3,
      vocab: 1000,
      temperature: 1,
      beta: 0.5,
      topK: 4,
      gradient: true,
      make: (r) => {
        const T = 3;
        const V = 1000;
        const { student } = correlated(r, T, V, 2, 0);
        const teacher = new Float32Array(T * V).fill(-Infinity);
        const tokens = randomTokens(r, T, V);
        for (let t = 0; t < T; t++) teacher[t * V + tokens[t]] = 0.5;
        return { student, teacher, tokens };
      },
      expect: (got, _ref, input) => [
        { what: 'reverse KL is +Infinity and flagged', passed: [0, 1, 2].every((t) => got.fields.reverseKL[t] === Infinity && (got.flags[t] & FLAG.REVERSE_KL_INFINITE) !== 0) },
        { what: 'teacher log-prob of its token is 0, teacher entropy 0', passed: [0, 1, 2].every((t) => got.fields.teacherLogprob[t] === 0 && Math.abs(got.fields.teacherEntropy[t]) <= 1e-6) },
        { what: 'forward KL = −log p_student(token)', passed: [0, 1, 2].every((t) => Math.abs(got.fields.forwardKL[t] + got.fields.studentLogprob[t]) <= 2e-5 && input.tokens[t] === got.topK!.tokens[t * 4]) },
        { what: 'top-k: one token, then -1', passed: [0, 1, 2].every((t) => got.topK!.tokens[t * 4 + 1] === -1) },
      ],
    },
    {
      name: 'peaked teacher (one logit 40 above the rest)',
      positions: 3,
      vocab: 777,
      temperature: 1,
      beta: 0.5,
      topK: 3,
      gradient: true,
      make: (r) => {
        const T = 3;
        const V = 777;
        const { student, teacher } = correlated(r, T, V, 1, 1);
        for (let t = 0; t < T; t++) teacher[t * V + int(r, 0, V - 1)] += 40;
        return { student, teacher, tokens: randomTokens(r, T, V) };
      },
    },
    {
      name: 'tied teacher logits (top-k ties go to the smaller token id)',
      positions: 3,
      vocab: 5003,
      temperature: 1,
      beta: 0.5,
      topK: 20,
      gradient: false,
      make: (r) => {
        const { student, teacher } = correlated(r, 3, 5003, 2, 1);
        // Quantised to halves: the top 20 of each row hold many equal values.
        for (let i = 0; i < teacher.length; i++) teacher[i] = Math.round(teacher[i] * 2) / 2;
        return { student, teacher, tokens: randomTokens(r, 3, 5003) };
      },
      expect: (got) => {
        const tied = [0, 1, 2].some((t) => {
          const lp = got.topK!.teacherLogprob.subarray(t * 20, t * 20 + 20);
          return lp.some((x, i) => i > 0 && x === lp[i - 1]);
        });
        return [{ what: 'the top-20 lists contain ties', passed: tied }];
      },
    },
    {
      name: 'identical student and teacher, temperature 1.3',
      positions: 5,
      vocab: 20011,
      temperature: 1.3,
      beta: 0.3,
      topK: 5,
      gradient: true,
      make: (r) => {
        const { student } = correlated(r, 5, 20011, 4, 0);
        return { student, teacher: student.slice(), tokens: randomTokens(r, 5, 20011) };
      },
      expect: (got) => [
        {
          what: `every KL and the JSD are 0 within ${IDENTICAL_TOLERANCE}`,
          passed: ALL_KLS.every((f) => got.fields[f].every((x) => Math.abs(x) <= IDENTICAL_TOLERANCE)),
        },
        { what: 'student and teacher entropies are equal', passed: got.fields.studentEntropy.every((h, t) => h === got.fields.teacherEntropy[t]) },
      ],
    },
    {
      name: 'masked vocabulary (-inf entries on both sides) and masked positions',
      positions: 6,
      vocab: 3001,
      temperature: 1,
      beta: 0.5,
      topK: 20,
      gradient: true,
      make: (r) => {
        const T = 6;
        const V = 3001;
        const { student, teacher } = correlated(r, T, V, 2, 1);
        const absent = (t: number, v: number) => v >= V - 37 || ((t * 7919 + v * 104729) % 10 === 0);
        for (let t = 0; t < T; t++) {
          for (let v = 0; v < V; v++) {
            if (absent(t, v)) student[t * V + v] = teacher[t * V + v] = -Infinity;
          }
        }
        const mask = new Uint32Array([1, 0, 1, 1, 0, 1]);
        return { student, teacher, tokens: randomTokens(r, T, V, (t, v) => !absent(t, v)), mask };
      },
      expect: (got) => [
        { what: 'masked positions are 0 with no flags', passed: [1, 4].every((t) => got.flags[t] === 0 && OUTPUT_FIELDS.every((f) => got.fields[f][t] === 0)) },
        { what: 'counted positions are valid (-inf on both sides is no problem)', passed: got.valid === 4 && got.problems.length === 0 },
      ],
    },
    {
      name: 'bad input: NaN, +Inf, huge, one-sided -inf, bad tokens',
      positions: 8,
      vocab: 300,
      temperature: 1,
      beta: 0.5,
      topK: 3,
      gradient: true,
      make: (r) => {
        const T = 8;
        const V = 300;
        const { student, teacher } = correlated(r, T, V, 2, 1);
        const tokens = randomTokens(r, T, V, (_t, v) => v !== 17 && v !== 18);
        student[0 * V + 5] = NaN;
        teacher[1 * V + 299] = Infinity;
        student[2 * V + 9] = 1e20;
        teacher[3 * V + 17] = -Infinity; // reverse KL infinite
        student[4 * V + 18] = -Infinity; // forward KL infinite
        tokens[5] = V + 3; // out of range
        student[6 * V + tokens[6]] = -Infinity; // token the student cannot have sampled
        teacher[6 * V + tokens[6]] = -Infinity;
        teacher[7 * V + tokens[7]] = -Infinity; // the teacher forbids the sampled token
        return { student, teacher, tokens };
      },
      expect: (got) => {
        const bad = [0, 1, 2, 5, 6];
        return [
          { what: 'bad positions are reported and their outputs are 0', passed: bad.every((t) => got.problems.some((p) => p.position === t && p.bad) && OUTPUT_FIELDS.every((f) => got.fields[f][t] === 0)) },
          { what: 'infinite KLs are reported, written as +Infinity, never NaN', passed: got.fields.reverseKL[3] === Infinity && got.fields.forwardKL[4] === Infinity && got.fields.sampledKL[7] === Infinity },
          { what: 'no output is NaN', passed: OUTPUT_FIELDS.every((f) => got.fields[f].every((x) => !Number.isNaN(x))) },
          { what: 'every flagged position is listed', passed: got.problems.length === 8 },
        ];
      },
    },
    {
      name: 'forced chunking: 2 rows per binding, student in two row blocks',
      positions: 7,
      vocab: 3001,
      temperature: 0.9,
      beta: 0.5,
      topK: 6,
      gradient: true,
      // One row is 12,004 bytes: 2 rows (+ 256 for alignment) fit a 24,300-byte binding.
      options: { limits: { maxStorageBufferBindingSize: 24300 } },
      studentBlocks: [3, 4],
      make: (r) => ({ ...correlated(r, 7, 3001, 2, 1), tokens: randomTokens(r, 7, 3001) }),
      expect: (got, ref) => [{ what: 'same flags as the reference in every chunk', passed: got.flags.every((f, t) => f === ref.flags[t]) }],
    },
  ];
}

/** The case list for a seed: the fixed awkward cases, then `randomCount` random shapes. */
export function divergenceCases(seed: number, randomCount = 4): CaseSpec[] {
  const rng = rngFrom(seed ^ 0x9e3779b9);
  const random = Array.from({ length: randomCount }, (_, i) => randomCase(rng, i));
  return [...fixedCases(), ...random];
}

// ------------------------------------------------------------------ comparison

/** Compares element by element; `condition` is the scale c that tol.crtol multiplies. */
function compare(output: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance, condition?: ArrayLike<number>): OutputCheck {
  let compared = 0;
  let maxAbsError = 0;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    const g = got[i];
    if (!Number.isFinite(r)) {
      // Infinities must match exactly (and a NaN never passes).
      if (g !== r) worst = Infinity;
      continue;
    }
    compared++;
    const err = Math.abs(g - r);
    // A NaN error must fail: compare with !(err <= …).
    if (!(err <= maxAbsError)) maxAbsError = Number.isNaN(err) ? Infinity : err;
    const ratio = err / (tol.atol + tol.rtol * Math.abs(r) + (tol.crtol ?? 0) * (condition ? condition[i] : 0));
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Infinity : ratio;
  }
  return { output, compared, maxAbsError, worstErrorOverTolerance: worst, atol: tol.atol, rtol: tol.rtol, crtol: tol.crtol ?? 0, passed: worst <= 1 };
}

/** Splits a [rows, V] matrix into GPU buffers of the given row counts. */
function uploadBlocks(device: GPUDevice, data: Float32Array, vocab: number, rows: number[], label: string) {
  let first = 0;
  return rows.map((n) => {
    const block = { buffer: createStorageBuffer(device, data.subarray(first * vocab, (first + n) * vocab), `${label} rows ${first}..${first + n - 1}`), rows: n };
    first += n;
    return block;
  });
}

/** Finite-difference check of a few gradient entries of one row against the float64 reference KL. */
function finiteDifferenceChecks(input: CaseInput, gradient: Float32Array, ref: ReferenceOutputs, spec: CaseSpec): OutputCheck {
  const V = spec.vocab;
  const row = [...Array(spec.positions).keys()].find(
    (t) => (ref.flags[t] & FLAG.VALID) !== 0 && (ref.flags[t] & FLAG.REVERSE_KL_INFINITE) === 0 && Number.isFinite(ref.fields.reverseKL[t]),
  );
  const tol = TOLERANCES.gradientFiniteDifference;
  if (row === undefined) return { output: 'gradient vs finite differences', compared: 0, maxAbsError: 0, worstErrorOverTolerance: 0, atol: tol.atol, rtol: tol.rtol, crtol: tol.crtol ?? 0, passed: true };
  const s = Array.from(input.student.subarray(row * V, (row + 1) * V));
  const q = input.teacher.subarray(row * V, (row + 1) * V);
  const g = gradient.subarray(row * V, (row + 1) * V);
  // The three largest |gradient| entries and three more spread over the row.
  const order = [...g.keys()].filter((v) => Number.isFinite(s[v])).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
  const picks = [...new Set([...order.slice(0, 3), order[Math.floor(order.length / 3)], order[Math.floor((2 * order.length) / 3)], order[order.length - 1]])].filter((v) => v !== undefined);
  const fd: number[] = [];
  const got: number[] = [];
  const condition: number[] = [];
  const h = 1e-3;
  for (const v of picks) {
    const z0 = s[v];
    s[v] = z0 + h;
    const up = referenceRowReverseKL(s, q, spec.temperature);
    s[v] = z0 - h;
    const down = referenceRowReverseKL(s, q, spec.temperature);
    s[v] = z0;
    fd.push((up - down) / (2 * h));
    got.push(g[v]);
    condition.push(ref.gradientMagnitude![row * V + v]);
  }
  return compare('gradient vs finite differences', got, fd, tol, condition);
}

async function runCase(device: GPUDevice, spec: CaseSpec, seed: number, tuning?: DivergenceTuning): Promise<CaseReport> {
  const started = performance.now();
  const input = spec.make(rngFrom(seed));
  const { positions: T, vocab: V } = spec;
  const problem: DivergenceProblem = { ...input, positions: T, vocab: V, temperature: spec.temperature, beta: spec.beta, topK: spec.topK, gradient: spec.gradient };
  const ref = referenceDivergences(problem);

  const owned: GPUBuffer[] = [];
  const own = <B extends GPUBuffer>(b: B) => (owned.push(b), b);
  const studentBlocks = uploadBlocks(device, input.student, V, spec.studentBlocks ?? [T], 'student');
  studentBlocks.forEach((b) => own(b.buffer));
  const gradientBuffer = spec.gradient ? own(createStorageBuffer(device, T * V * 4, 'gradient')) : undefined;
  const request: DivergenceRequest = {
    student: studentBlocks.length === 1 ? studentBlocks[0].buffer : studentBlocks,
    teacher: own(createStorageBuffer(device, input.teacher, 'teacher')),
    studentVocab: V,
    teacherVocab: V,
    positions: T,
    tokens: own(createStorageBuffer(device, input.tokens, 'tokens')),
    mask: input.mask ? own(createStorageBuffer(device, input.mask, 'mask')) : undefined,
    temperature: spec.temperature,
    beta: spec.beta,
    topK: spec.topK,
    gradient: gradientBuffer,
  };
  try {
    const { got, gradient, chunks } = await withGpuErrorScope(device, `divergence case "${spec.name}"`, async () => {
      const buffers = encodeDivergences(device, request, { ...spec.options, tuning });
      try {
        const read = await readDivergences(device, buffers);
        const grad = gradientBuffer ? await readFloat32(device, gradientBuffer, T * V) : undefined;
        return { got: read, gradient: grad, chunks: buffers.plan.chunks };
      } finally {
        buffers.destroy();
      }
    });
    const logprobScale = ref.fields.studentLogprob.map((s, t) => Math.abs(s) + Math.abs(ref.fields.teacherLogprob[t]));
    const checks = OUTPUT_FIELDS.map((f) => compare(f, got.fields[f], ref.fields[f], TOLERANCES[f], f === 'sampledKL' ? logprobScale : undefined));
    if (spec.topK > 0) {
      const tokensMatch = got.topK!.tokens.every((v, i) => v === ref.topK!.tokens[i]);
      const mismatch = tokensMatch ? 0 : Infinity;
      checks.push({ output: 'topK tokens (exact)', compared: got.topK!.tokens.length, maxAbsError: mismatch, worstErrorOverTolerance: mismatch, atol: 0, rtol: 0, crtol: 0, passed: tokensMatch });
      checks.push(compare('topK teacher log-prob', got.topK!.teacherLogprob, ref.topK!.teacherLogprob, TOLERANCES.topKLogprob));
      checks.push(compare('topK student log-prob', got.topK!.studentLogprob, ref.topK!.studentLogprob, TOLERANCES.topKLogprob));
    }
    if (gradient) {
      checks.push(compare('gradient', gradient, ref.gradient!, TOLERANCES.gradient, ref.gradientMagnitude));
      checks.push(finiteDifferenceChecks(input, gradient, ref, spec));
    }
    const flagMismatches = got.flags.reduce((n, f, t) => n + (f === ref.flags[t] ? 0 : 1), 0);
    const expectations = spec.expect?.(got, ref, input) ?? [];
    return {
      name: spec.name,
      positions: T,
      vocab: V,
      temperature: spec.temperature,
      beta: spec.beta,
      topK: spec.topK,
      gradient: spec.gradient,
      chunks,
      checks,
      flagMismatches,
      expectations,
      passed: checks.every((c) => c.passed) && flagMismatches === 0 && expectations.every((e) => e.passed),
      ms: performance.now() - started,
    };
  } finally {
    for (const b of owned) b.destroy();
  }
}

export interface SelfCheckOptions {
  /** Random shapes after the fixed cases (default 4). */
  randomCases?: number;
  /** Only the cases whose name contains this. */
  only?: string;
  /** Workgroup sizes and slicing to use instead of the device's default (e.g. GPU_DIVERGENCE_TUNING on a CPU adapter). */
  tuning?: DivergenceTuning;
}

/**
 * Runs the cases of `seed` and reports, per case and output, the largest error against the
 * reference and the tolerance it was held to.
 */
export async function runDivergenceSelfCheck(device: GPUDevice, seed: number, options: SelfCheckOptions = {}): Promise<DivergenceSelfCheckReport> {
  const started = performance.now();
  const cases = divergenceCases(seed, options.randomCases).filter((c) => !options.only || c.name.includes(options.only));
  const reports: CaseReport[] = [];
  for (const [i, spec] of cases.entries()) reports.push(await runCase(device, spec, seed * 1000 + i, options.tuning));
  return { seed, passed: reports.every((r) => r.passed), cases: reports, ms: performance.now() - started };
}
