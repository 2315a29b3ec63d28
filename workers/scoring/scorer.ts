/**
 * The teacher scorer: student and teacher each run one forward pass over prompt + completion
 * (logits left on the GPU), and the divergence kernels read both in place, only at the
 * completion's positions: the logits at position P−1+i (prompt length P) are scored against
 * completion token i, given the prompt and the completion tokens before it. Padding never enters.
 */
import type { ort } from '../ort/runtime';
import { createStorageBuffer } from '../gpu/buffers';
import { computeDivergences, type DivergenceReadback, type RowBlock } from '../kernels/divergence/divergence';
import { forwardLogits } from './forward';

export interface ScoreItem {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

export interface TeacherTop {
  id: number;
  logprob: number;
  /** The student's log-prob of the same token. */
  studentLogprob: number;
}

export interface ScoredToken {
  id: number;
  studentLogprob: number;
  teacherLogprob: number;
  /** k_t = log π_student(y_t) − log π_teacher(y_t), the single-sample reverse KL estimate. */
  sampledKL: number;
  reverseKL: number;
  forwardKL: number;
  jsd: number;
  studentEntropy: number;
  teacherEntropy: number;
  teacherTop: TeacherTop[];
  /** Sentences for anything wrong at this position (NaN logits, an infinite KL…); empty when fine. */
  problems: string[];
}

export interface ScoreOptions {
  topK?: number;
  temperature?: number;
  /** JSD(β) mixture weight (default 0.5). */
  beta?: number;
}

export async function scoreCompletions(
  device: GPUDevice,
  student: ort.InferenceSession,
  teacher: ort.InferenceSession,
  items: readonly ScoreItem[],
  options: ScoreOptions = {},
  padId = 0,
): Promise<ScoredToken[][]> {
  items.forEach((it, i) => {
    if (it.promptIds.length === 0) throw new Error(`item ${i}: the prompt is empty; scoring needs at least one prompt token`);
    if (it.completionIds.length === 0) throw new Error(`item ${i}: the completion is empty; there is nothing to score`);
  });
  const sequences = items.map((it) => [...it.promptIds, ...it.completionIds]);
  const s = await forwardLogits(student, sequences, padId, device);
  let t: Awaited<ReturnType<typeof forwardLogits>> | undefined;
  let tokens: GPUBuffer | undefined;
  try {
    t = await forwardLogits(teacher, sequences, padId, device);
    const blocks = (vocab: number, buffer: GPUBuffer): RowBlock[] =>
      items.map((it, b) => ({ buffer, rows: it.completionIds.length, byteOffset: (b * s.width + it.promptIds.length - 1) * vocab * 4 }));
    const positions = items.reduce((a, it) => a + it.completionIds.length, 0);
    tokens = createStorageBuffer(device, Uint32Array.from(items.flatMap((it) => it.completionIds)), 'scored tokens');
    const topK = options.topK ?? 5;
    const r = await computeDivergences(device, {
      student: blocks(s.vocab, s.logits.gpuBuffer as GPUBuffer),
      teacher: blocks(t.vocab, t.logits.gpuBuffer as GPUBuffer),
      studentVocab: s.vocab,
      teacherVocab: t.vocab,
      positions,
      tokens,
      temperature: options.temperature ?? 1,
      beta: options.beta ?? 0.5,
      topK,
    });
    const out: ScoredToken[][] = [];
    let first = 0;
    for (const it of items) {
      out.push(readScoredTokens(r, it.completionIds, first));
      first += it.completionIds.length;
    }
    return out;
  } finally {
    tokens?.destroy();
    s.logits.dispose();
    t?.logits.dispose();
  }
}

/**
 * The scored tokens `ids` of a divergence readback, whose positions first … first+ids.length−1
 * hold them in order: every field, the teacher's top-k with the student's log-prob of each, and
 * the sentences of whatever went wrong at a position.
 */
export function readScoredTokens(r: DivergenceReadback, ids: readonly number[], first = 0): ScoredToken[] {
  const problems = new Map(r.problems.map((p) => [p.position, p.reasons]));
  const f = r.fields;
  const k = r.topK?.k ?? 0;
  return ids.map((id, i) => {
    const p = first + i;
    const top: TeacherTop[] = [];
    for (let j = 0; j < k; j++) {
      const tok = r.topK!.tokens[p * k + j];
      if (tok >= 0) top.push({ id: tok, logprob: r.topK!.teacherLogprob[p * k + j], studentLogprob: r.topK!.studentLogprob[p * k + j] });
    }
    return {
      id,
      studentLogprob: f.studentLogprob[p],
      teacherLogprob: f.teacherLogprob[p],
      sampledKL: f.sampledKL[p],
      reverseKL: f.reverseKL[p],
      forwardKL: f.forwardKL[p],
      jsd: f.jsd[p],
      studentEntropy: f.studentEntropy[p],
      teacherEntropy: f.teacherEntropy[p],
      teacherTop: top,
      problems: problems.get(p) ?? [],
    };
  });
}
