/**
 * A training micro-batch as the kernels see it: B sequences right-padded to a common width T,
 * flattened to N = B·T rows (row b·T + t is token t of sequence b, at position t). Row n's
 * logits predict the token at row n+1 of the same sequence; its loss terms (target, weight,
 * sampler log-prob, advantage) are given per row, weight 0 where nothing is scored (the prompt,
 * the last token, padding).
 *
 * This is also the layout the scorer's forward uses (right padding, position i = token i), so a
 * teacher's logits for the same sequences line up with the student's row for row.
 */

export interface TrainSequence {
  /** Prompt + completion token ids. */
  tokens: readonly number[];
  /**
   * Per position t (same length as tokens): the weight of the loss on predicting tokens[t+1]
   * from position t. The last entry must be 0 (nothing follows it).
   */
  weights: readonly number[];
  /** Per position t: log π_old(tokens[t+1]) as recorded by the sampler (policy-gradient objective). */
  oldLogprobs?: readonly number[];
  /** Per position t: the advantage A_t of tokens[t+1] (policy-gradient objective). */
  advantages?: readonly number[];
}

export interface PackedBatch {
  batch: number;
  width: number;
  rows: number;
  tokens: Uint32Array;
  positions: Uint32Array;
  /** 1 for a real token, 0 for padding: attention never looks at padding keys. */
  keyMask: Uint32Array;
  /** Next token per row (0 where the weight is 0). */
  targets: Uint32Array;
  weights: Float32Array;
  oldLogprobs: Float32Array;
  advantages: Float32Array;
  /** Rows with a non-zero weight. */
  scoredRows: number;
}

export class TrainBatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainBatchError';
  }
}

/** Packs sequences into rows; checks ids against the vocabulary and lengths against n_positions. */
export function packBatch(sequences: readonly TrainSequence[], vocabSize: number, nPositions: number, width?: number): PackedBatch {
  if (sequences.length === 0) throw new TrainBatchError('a training batch needs at least one sequence');
  const T = width ?? Math.max(...sequences.map((s) => s.tokens.length));
  if (T > nPositions) throw new TrainBatchError(`a sequence of ${T} tokens is longer than the model's ${nPositions} positions`);
  const B = sequences.length;
  const N = B * T;
  const packed: PackedBatch = {
    batch: B, width: T, rows: N,
    tokens: new Uint32Array(N), positions: new Uint32Array(N), keyMask: new Uint32Array(N), targets: new Uint32Array(N),
    weights: new Float32Array(N), oldLogprobs: new Float32Array(N), advantages: new Float32Array(N), scoredRows: 0,
  };
  sequences.forEach((s, b) => {
    const L = s.tokens.length;
    if (L === 0) throw new TrainBatchError(`sequence ${b} is empty`);
    if (L > T) throw new TrainBatchError(`sequence ${b} has ${L} tokens, more than the batch width ${T}`);
    if (s.weights.length !== L) throw new TrainBatchError(`sequence ${b}: ${s.weights.length} weights for ${L} tokens`);
    if (s.weights[L - 1] !== 0) throw new TrainBatchError(`sequence ${b}: the last position has nothing to predict; its weight must be 0`);
    for (const [name, arr] of [['oldLogprobs', s.oldLogprobs], ['advantages', s.advantages]] as const) {
      if (arr && arr.length !== L) throw new TrainBatchError(`sequence ${b}: ${arr.length} ${name} for ${L} tokens`);
    }
    for (let t = 0; t < L; t++) {
      const n = b * T + t;
      const id = s.tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TrainBatchError(`sequence ${b}, position ${t}: token id ${id} is outside the vocabulary 0..${vocabSize - 1}`);
      const w = s.weights[t];
      if (!Number.isFinite(w)) throw new TrainBatchError(`sequence ${b}, position ${t}: weight ${w} is not finite`);
      packed.tokens[n] = id;
      packed.positions[n] = t;
      packed.keyMask[n] = 1;
      packed.weights[n] = w;
      if (w !== 0) {
        packed.scoredRows++;
        packed.targets[n] = s.tokens[t + 1];
        const old = s.oldLogprobs?.[t] ?? 0;
        const adv = s.advantages?.[t] ?? 0;
        if (!Number.isFinite(old) || !Number.isFinite(adv)) throw new TrainBatchError(`sequence ${b}, position ${t}: sampler log-prob ${old} or advantage ${adv} is not finite`);
        packed.oldLogprobs[n] = old;
        packed.advantages[n] = adv;
      }
    }
  });
  return packed;
}
