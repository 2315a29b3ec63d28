import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { createStorageBuffer } from '../../workers/gpu/buffers';
import { computeDivergences, DivergenceInputError, type DivergenceRequest } from '../../workers/kernels/divergence/divergence';
import { referenceDivergences } from '../../workers/kernels/divergence/reference';
import { topKAgreement } from '../../workers/kernels/divergence/agreement';
import { TOLERANCES } from '../../workers/kernels/divergence/selfcheck';
import { CPU_DIVERGENCE_TUNING, type DivergenceTuning } from '../../workers/gpu/tuning';
import { seededRandom } from '../../workers/random/seeded-normal';

/** The CPU tuning's workgroups, rows cut into many short slices (9,011 tokens: 15 slices of 640). */
const MANY_SLICES: DivergenceTuning = { ...CPU_DIVERGENCE_TUNING, minWorkgroups: 64, minSliceLength: 128 };

/** Deterministic uniform numbers in [0, 1) (the lab's mulberry32). */
const rng = (seed: number): (() => number) => seededRandom(seed).uniform;

/**
 * Random [T, V] logits, student and teacher correlated (so their top-k lists overlap in part),
 * with ties at the top of some rows, a row where the student allows fewer than k tokens, and
 * coarse values (multiples of 1/4) so that equal logits are common.
 */
function problem(seed: number, T: number, V: number, k: number) {
  const r = rng(seed);
  const student = new Float32Array(T * V);
  const teacher = new Float32Array(T * V);
  for (let i = 0; i < T * V; i++) {
    teacher[i] = Math.round((r() * 8 - 4) * 4) / 4;
    student[i] = r() < 0.6 ? teacher[i] : Math.round((r() * 8 - 4) * 4) / 4;
  }
  // Row 0: k + 3 student and teacher logits tied at the row's top, spread over the vocabulary.
  for (let j = 0; j < k + 3; j++) {
    const v = Math.floor((j * V) / (k + 3));
    student[v] = 9;
    teacher[V - 1 - v] = 9;
  }
  // Row 1: the student allows only 3 tokens (the rest of its list is empty).
  if (T > 1) for (let v = 0; v < V; v++) if (v % Math.ceil(V / 3) !== 1) student[V + v] = -Infinity;
  const tokens = new Uint32Array(T).map((_, t) => (t === 1 ? 1 : (t * 37) % V));
  return { student, teacher, tokens };
}

/** Whether token v is among a row's k best: fewer than k tokens come before it (larger logit, or equal and smaller id). */
function inTopK(row: Float32Array, v: number, k: number): boolean {
  if (row[v] === -Infinity) return false;
  let n = 0;
  for (let u = 0; u < row.length && n < k; u++) if (row[u] > -Infinity && (row[u] > row[v] || (row[u] === row[v] && u < v))) n++;
  return n < k;
}

/** The overlap by brute force, independent of any sort: tokens of rank < k in both models' rows. */
function bruteOverlap(student: Float32Array, teacher: Float32Array, k: number): number {
  let shared = 0;
  for (let v = 0; v < teacher.length; v++) if (inTopK(teacher, v, k) && inTopK(student, v, k)) shared++;
  return shared / k;
}

describe("the student's own top-k and the top-k agreement (real WebGPU adapter)", () => {
  // V not a multiple of any workgroup size (16 / 64 / 256) nor of the eight-element trips; one
  // case cuts each row into 15 slices, so the merge of the slices' candidate lists is exercised.
  // One case keeps both models' logits in one buffer, the student's rows after the teacher's at an
  // offset that is not 256-aligned, so the two kernels must read the student's rows at its own base.
  const cases: [string, number, number, number, number, DivergenceTuning | undefined, boolean][] = [
    ['V = 1,001, k = 16, both models in one buffer', 1, 6, 1001, 16, undefined, true],
    ['V = 9,011, k = 20, 15 slices per row', 2, 4, 9011, 20, MANY_SLICES, false],
    ['V = 13, k = 16 (fewer tokens than k)', 3, 3, 13, 16, undefined, false],
  ];
  for (const [name, seed, T, V, k, tuning, oneBuffer] of cases) {
    it(`${name}: both lists equal the float64 reference exactly, masses within 3e-5, overlap exact`, async () => {
      const device = await testDevice();
      const { student, teacher, tokens } = problem(seed, T, V, k);
      // The last position masked: its lists are empty and it reads 0, 0, 0.
      const mask = new Uint32Array(T).fill(1);
      mask[T - 1] = 0;
      const both = oneBuffer ? createStorageBuffer(device, Float32Array.from([...teacher, ...student]), 'teacher then student') : undefined;
      expect(oneBuffer ? (T * V * 4) % 256 : 1).not.toBe(0);
      const request: DivergenceRequest = {
        student: both ? [{ buffer: both, rows: T, byteOffset: T * V * 4 }] : createStorageBuffer(device, student, 'student'),
        teacher: both ? [{ buffer: both, rows: T }] : createStorageBuffer(device, teacher, 'teacher'),
        studentVocab: V,
        teacherVocab: V,
        positions: T,
        tokens: createStorageBuffer(device, tokens, 'tokens'),
        mask: createStorageBuffer(device, mask, 'mask'),
        temperature: 0.7,
        topK: k,
        studentTopK: true,
      };
      const got = await computeDivergences(device, request, { tuning });
      const ref = referenceDivergences({ student, teacher, tokens, mask, positions: T, vocab: V, temperature: 0.7, topK: k, studentTopK: true });
      const own = got.topK!.student!;
      const refOwn = ref.topK!.student!;
      expect(Array.from(got.topK!.tokens)).toEqual(Array.from(ref.topK!.tokens));
      expect(Array.from(own.tokens)).toEqual(Array.from(refOwn.tokens));
      const { atol, rtol } = TOLERANCES.topKLogprob;
      for (const [a, b] of [[own.studentLogprob, refOwn.studentLogprob], [own.teacherLogprob, refOwn.teacherLogprob]] as const) {
        for (let i = 0; i < a.length; i++) {
          if (b[i] === -Infinity) expect(a[i]).toBe(-Infinity);
          else expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(atol + rtol * Math.abs(b[i]));
        }
      }
      for (let t = 0; t < T; t++) {
        const g = topKAgreement(got.topK!, t);
        const e = topKAgreement(ref.topK!, t);
        expect(Math.abs(g.teacherMass - e.teacherMass)).toBeLessThanOrEqual(3e-5);
        expect(Math.abs(g.studentMass - e.studentMass)).toBeLessThanOrEqual(3e-5);
        expect(g.overlap).toBe(e.overlap);
        if (mask[t] === 0) {
          expect(g).toEqual({ teacherMass: 0, studentMass: 0, overlap: 0 });
          continue;
        }
        const row = (x: Float32Array) => x.subarray(t * V, (t + 1) * V);
        expect(g.overlap).toBe(bruteOverlap(row(student), row(teacher), k));
        // The masses from the full distributions, summed over the teacher's top-k by brute force.
        const exact = (x: Float32Array, v: number) => {
          const z = row(x);
          let m = -Infinity;
          for (const w of z) m = Math.max(m, w);
          let s = 0;
          for (const w of z) if (w > -Infinity) s += Math.exp((w - m) / 0.7);
          return z[v] > -Infinity ? Math.exp((z[v] - m) / 0.7) / s : 0;
        };
        const topTeacher = [...Array(V).keys()].filter((v) => inTopK(row(teacher), v, k));
        expect(Math.abs(g.teacherMass - topTeacher.reduce((a, v) => a + exact(teacher, v), 0))).toBeLessThanOrEqual(3e-5);
        expect(Math.abs(g.studentMass - topTeacher.reduce((a, v) => a + exact(student, v), 0))).toBeLessThanOrEqual(3e-5);
      }
      // The cases are the awkward ones they claim: ties inside row 0's top-k, a short student list in row 1.
      expect(new Set(Array.from(own.studentLogprob.subarray(0, k))).size).toBeLessThan(k);
      expect(Array.from(own.tokens.subarray(k, 2 * k)).filter((v) => v === -1).length).toBe(k - 3);
      expect(got.topK!.tokens.length).toBe(T * k);
    });
  }

  it('studentTopK without topK is refused before any GPU work, with a sentence', async () => {
    const device = await testDevice();
    const { student, teacher, tokens } = problem(4, 2, 50, 4);
    const request: DivergenceRequest = {
      student: createStorageBuffer(device, student, 'student'),
      teacher: createStorageBuffer(device, teacher, 'teacher'),
      studentVocab: 50,
      teacherVocab: 50,
      positions: 2,
      tokens: createStorageBuffer(device, tokens, 'tokens'),
      studentTopK: true,
    };
    await expect(computeDivergences(device, request)).rejects.toThrow(DivergenceInputError);
    await expect(computeDivergences(device, request)).rejects.toThrow(/give topK > 0/);
  });
});
