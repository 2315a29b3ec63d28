/**
 * Probe prompts: the first few held-out prompts, re-scored token by token at every evaluation so
 * people can watch the teacher's penalties fade as the student learns. Two completions per probe:
 * the student's greedy answer of the run's first evaluation, kept fixed for the whole run (the
 * same tokens every time, so a fainter heatmap means the student now agrees with the teacher on
 * them), and the student's greedy answer of the moment (what it writes now).
 *
 * The numbers come from the evaluation's own student forward and divergence kernels
 * (`Trainer.divergencesAgainst`), read per packed row: nothing here touches the GPU.
 */
import type { ProbeHeatmap } from '../contract/run';
import type { RowDivergence } from '../train/trainer';
import type { GreedySample } from './evaluate';

/** A probe's fixed completion, kept in the run's state (and so in its checkpoints). */
export interface ProbeAnswer {
  prompt: string;
  tokens: number[];
}

/** What a probe's heatmap needs to know about the tokenizer and the task. */
export interface ProbeReader {
  /** One token's text as people read it. */
  tokenText(id: number): string;
  /** The whole completion's text (special tokens dropped). */
  text(ids: number[]): string;
  verify?(prompt: string, completion: string): { correct: boolean };
}

/**
 * The heatmap of sequence `b` of a packed batch of `width` columns: completion token i sits at
 * position P+i and is predicted from row b·width + P−1+i, where P is the prompt's length.
 */
export function probeHeatmap(
  probe: number,
  kind: ProbeHeatmap['kind'],
  sample: Pick<GreedySample, 'prompt' | 'promptIds'> & { completion: { tokens: number[] } },
  b: number,
  width: number,
  rowsByIndex: Map<number, RowDivergence>,
  reader: ProbeReader,
): ProbeHeatmap {
  const P = sample.promptIds.length;
  const ids = sample.completion.tokens;
  const tokens = ids.map((id, i) => {
    const r = rowsByIndex.get(b * width + P - 1 + i);
    if (!r) throw new Error(`probe ${probe}: no scored row for completion token ${i} (packed row ${b * width + P - 1 + i})`);
    return { text: reader.tokenText(id), reverseKL: r.reverseKL, sampledKL: r.studentLogprob - r.teacherLogprob };
  });
  const completion = reader.text(ids);
  const verdict = reader.verify?.(sample.prompt, completion);
  return {
    probe, kind, prompt: sample.prompt, completion, tokens,
    meanReverseKL: tokens.reduce((a, t) => a + t.reverseKL, 0) / Math.max(1, tokens.length),
    ...(verdict ? { correct: verdict.correct } : {}),
  };
}

/** Rows by their packed index, for `probeHeatmap`. */
export function rowsByIndex(rows: readonly RowDivergence[]): Map<number, RowDivergence> {
  return new Map(rows.map((r) => [r.row, r]));
}
