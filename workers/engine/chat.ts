/**
 * Chat prompts in Inspect (and for the tests): a conversation rendered with each model's own
 * chat template, the student scored on its rendering against the teacher on its own, and, when
 * the two renderings differ, what the difference costs on the same completion (the numbers are
 * defined in workers/contract/models.ts TemplateMismatchCost and workers/chat/README.md).
 *
 * One batched forward of the teacher reads both renderings (two rows), one of the student reads
 * its own; the divergence kernels read the logits in place at the completion's positions, each
 * row at its own prompt length, so the two prompts need not tokenize to the same length.
 */
import type { ChatRenderingSummary, ScoredTokenSummary, TemplateMismatchCost } from '../protocol';
import type { ChatMessage } from '../chat/render';
import { renderForStudentAndTeacher } from '../chat/compare';
import { assertSameTokenizer, assertWritable } from '../models/tokenizer';
import { checkModelFits } from '../models/memory';
import { createStorageBuffer } from '../gpu/buffers';
import { computeDivergences, type DivergenceReadback, type RowBlock } from '../kernels/divergence/divergence';
import { forwardLogits, openScoringSession, type ForwardResult } from '../scoring/forward';
import { summarizeScored, type LoadedModel } from './inference';
import { readScoredTokens } from '../scoring/scorer';

/** A person's prompt as a one-turn conversation. */
export const userMessage = (prompt: string): ChatMessage[] => [{ role: 'user', content: prompt }];

/** `messages` rendered with each model's template, and the ids each model reads (the shared tokenizer, no special tokens added: the template writes them). */
function renderForBoth(student: LoadedModel, teacher: LoadedModel, messages: readonly ChatMessage[]) {
  const r = renderForStudentAndTeacher(student.folder, teacher.folder, messages);
  const tok = student.folder.tokenizer;
  return {
    ...r,
    studentPrompt: r.student,
    teacherPrompt: r.teacher,
    studentIds: tok.encode(r.student, { addSpecialTokens: false }),
    teacherIds: tok.encode(r.teacher, { addSpecialTokens: false }),
  };
}

export interface ChatScoreResult {
  /** The student's prompt ids (its rendering). */
  promptIds: number[];
  /** Student on its rendering against the teacher on its own. */
  tokens: ScoredTokenSummary[];
  meanReverseKL: number;
  meanSampledKL: number;
  chat: ChatRenderingSummary;
  warnings: string[];
}

const mean = (xs: ArrayLike<number>, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  return s / n;
};

/**
 * Scores `completion` after `messages`: the student reads the conversation rendered with its
 * template, the teacher with its own; when the renderings differ, also the teacher on the
 * student's rendering, for the cost of the mismatch.
 */
export async function scoreChat(
  device: GPUDevice,
  student: LoadedModel,
  teacher: LoadedModel,
  messages: readonly ChatMessage[],
  completion: string,
  options: { topK: number },
): Promise<ChatScoreResult> {
  const warnings = assertSameTokenizer(student.folder.tokenizer, teacher.folder.tokenizer);
  for (const m of messages) if (typeof m.content === 'string') assertWritable(student.folder.tokenizer, m.content, 'the prompt');
  assertWritable(student.folder.tokenizer, completion, 'the completion');
  const r = renderForBoth(student, teacher, messages);
  const tok = student.folder.tokenizer;
  const completionIds = tok.encode(completion, { addSpecialTokens: false });
  if (completionIds.length === 0) throw new Error('the completion is empty: there is nothing to score');
  const same = r.same;
  const longest = Math.max(r.studentIds.length, r.teacherIds.length) + completionIds.length;
  if (student.folder.config) checkModelFits(student.folder.config, 1, r.studentIds.length + completionIds.length, device.limits, student.folder.label);
  if (teacher.folder.config) checkModelFits(teacher.folder.config, same ? 1 : 2, longest, device.limits, teacher.folder.label);
  student.scoring ??= await openScoringSession(device, student.folder.onnx, student.folder.onnxLabel);
  teacher.scoring ??= await openScoringSession(device, teacher.folder.onnx, teacher.folder.onnxLabel);

  const n = completionIds.length;
  const xs = [...r.studentIds, ...completionIds];
  const xt = [...r.teacherIds, ...completionIds];
  const pad = tok.eosTokenId ?? 0;
  let s: ForwardResult | undefined;
  let t: ForwardResult | undefined;
  let tokens: GPUBuffer | undefined;
  try {
    s = await forwardLogits(student.scoring, [xs], pad, device);
    // Row 0: the teacher on its own rendering; row 1 (only when they differ): on the student's.
    t = await forwardLogits(teacher.scoring, same ? [xt] : [xt, xs], pad, device);
    tokens = createStorageBuffer(device, Uint32Array.from(completionIds), 'chat completion tokens');
    const block = (f: ForwardResult, row: number, promptLength: number): RowBlock[] => [
      { buffer: f.logits.gpuBuffer as GPUBuffer, rows: n, byteOffset: (row * f.width + promptLength - 1) * f.vocab * 4 },
    ];
    const pair = (a: RowBlock[], av: number, b: RowBlock[], bv: number, topK = 0): Promise<DivergenceReadback> =>
      computeDivergences(device, { student: a, teacher: b, studentVocab: av, teacherVocab: bv, positions: n, tokens: tokens!, temperature: 1, topK });

    const own = await pair(block(s, 0, r.studentIds.length), s.vocab, block(t, 0, r.teacherIds.length), t.vocab, options.topK);
    const scored = summarizeScored(tok, readScoredTokens(own, completionIds));

    let cost: TemplateMismatchCost | null = null;
    if (!same) {
      // The student against the teacher fed the student's rendering (a recipe that reuses the student's tokens).
      const reused = await pair(block(s, 0, r.studentIds.length), s.vocab, block(t, 1, r.studentIds.length), t.vocab);
      // The teacher on the student's rendering against the teacher on its own: how far its signal moves.
      const shift = await pair(block(t, 1, r.studentIds.length), t.vocab, block(t, 0, r.teacherIds.length), t.vocab);
      let logprobShift = 0;
      for (let p = 0; p < n; p++) logprobShift += Math.abs(reused.fields.teacherLogprob[p] - own.fields.teacherLogprob[p]);
      cost = {
        tokens: n,
        teacherShiftKL: mean(shift.fields.reverseKL, n),
        reverseKLStudentRendering: mean(reused.fields.reverseKL, n),
        reverseKLTeacherRendering: mean(own.fields.reverseKL, n),
        meanAbsTeacherLogprobShift: logprobShift / n,
      };
    }
    return {
      promptIds: r.studentIds,
      tokens: scored,
      meanReverseKL: mean(own.fields.reverseKL, n),
      meanSampledKL: mean(own.fields.sampledKL, n),
      chat: {
        studentPrompt: r.studentPrompt,
        teacherPrompt: r.teacherPrompt,
        studentPromptTokens: r.studentIds.length,
        teacherPromptTokens: r.teacherIds.length,
        same: r.same,
        firstDifference: r.firstDifference,
        cost,
      },
      warnings,
    };
  } finally {
    tokens?.destroy();
    s?.logits.dispose();
    t?.logits.dispose();
  }
}
