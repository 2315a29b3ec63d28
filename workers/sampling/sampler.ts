/**
 * The student sampler: B prompts × n completions in one batch on a decoder session of any
 * registered model family (the transformers.js layout, workers/ort/decoder-io.ts).
 * Prompts of unequal length are left-padded (masked); the KV cache stays on the GPU between steps
 * (present → past without a copy), so one more token costs one step, not a re-run of the prefix.
 * Each completion draws from its own seeded stream, stops at EOS or maxTokens, and records the
 * sampler's log-prob of every token it chose (π_old of the importance ratio). Tokens are streamed
 * to `onToken` as they come.
 */
import { ort } from '../ort/runtime';
import type { FamilyConfig } from '../models/family';
import { decoderShapeOf } from '../models/decoder-session';
import { emptyPastFeeds, int64Tensor, positionIdsFromMask, presentAsPast, presentKeyName, presentValueName, type DecoderShape } from '../ort/decoder-io';
import { chooseToken, validateSampling, type SamplingOptions } from './choose';
import { Rng } from '../random/rng';

export interface SampleRequest {
  /** Token ids of each prompt (special tokens included, exactly as fed to the model). */
  prompts: readonly (readonly number[])[];
  /** Completions per prompt (the group size G). */
  n: number;
  maxTokens: number;
  sampling: SamplingOptions;
  seed: number;
  /** Ends a completion (included in its tokens, with its log-prob); null: only maxTokens ends it. */
  eosTokenId: number | null;
  /** false: re-run the whole prefix at every step (for comparison; same tokens, more work). */
  useKvCache?: boolean;
}

export interface Completion {
  promptIndex: number;
  /** Which of the n completions of its prompt. */
  sample: number;
  tokens: number[];
  /** The sampler's log π_old(token | prefix) for each token, at the request's temperature. */
  logprobs: number[];
  finish: 'eos' | 'length';
}

export interface TokenEvent {
  promptIndex: number;
  sample: number;
  step: number;
  token: number;
  logprob: number;
  done: boolean;
}

/** What the sampler needs from a model: its config and one forward run of the decoder. */
export interface DecoderRunner {
  config: FamilyConfig;
  /** Runs the decoder on data feeds (weights are the runner's business); logits on the CPU, present on the GPU. */
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
}

export class SamplingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SamplingError';
  }
}

export function validateSampleRequest(config: FamilyConfig, r: SampleRequest): void {
  validateSampling(r.sampling);
  if (!Number.isInteger(r.n) || r.n < 1) throw new SamplingError(`the number of completions per prompt must be a whole number ≥ 1, got ${r.n}`);
  if (!Number.isInteger(r.maxTokens) || r.maxTokens < 1) throw new SamplingError(`max tokens must be a whole number ≥ 1, got ${r.maxTokens}`);
  if (r.prompts.length === 0) throw new SamplingError('no prompt to sample from');
  r.prompts.forEach((p, i) => {
    if (p.length === 0) throw new SamplingError(`prompt ${i} is empty: the model needs at least one token to start from`);
    const bad = p.find((t) => !Number.isInteger(t) || t < 0 || t >= config.vocabSize);
    if (bad !== undefined) throw new SamplingError(`prompt ${i} has token id ${bad}, outside the vocabulary (0..${config.vocabSize - 1})`);
    if (p.length + r.maxTokens > config.nPositions) {
      throw new SamplingError(
        `prompt ${i} (${p.length} tokens) plus ${r.maxTokens} new tokens exceeds the model's ${config.nPositions} positions: shorten the prompt or lower max tokens`,
      );
    }
  });
}

function disposePresent(shape: DecoderShape, outputs: Record<string, ort.Tensor> | undefined): void {
  if (!outputs) return;
  for (let l = 0; l < shape.layers; l++) {
    outputs[presentKeyName(l)]?.dispose();
    outputs[presentValueName(l)]?.dispose();
  }
}

export async function sampleCompletions(runner: DecoderRunner, request: SampleRequest, onToken?: (e: TokenEvent) => void): Promise<Completion[]> {
  const { config } = runner;
  validateSampleRequest(config, request);
  const shape = decoderShapeOf(config);
  const { prompts, n, maxTokens, sampling, seed, eosTokenId } = request;
  const useCache = request.useKvCache ?? true;
  const V = config.vocabSize;
  const pad = eosTokenId ?? 0;

  const rows = prompts.flatMap((prompt, promptIndex) => Array.from({ length: n }, (_, sample) => ({ prompt, promptIndex, sample })));
  const B = rows.length;
  const P = Math.max(...prompts.map((p) => p.length));
  // Left padding: every row's last prompt token sits in the last prompt column.
  const sequences = rows.map((r) => [...new Array<number>(P - r.prompt.length).fill(pad), ...r.prompt]);
  const mask = rows.map((r) => [...new Array<number>(P - r.prompt.length).fill(0), ...new Array<number>(r.prompt.length).fill(1)]);
  const rngs = rows.map((r) => Rng.forStream(seed, r.promptIndex * n + r.sample));
  const completions: Completion[] = rows.map((r) => ({ promptIndex: r.promptIndex, sample: r.sample, tokens: [], logprobs: [], finish: 'length' }));
  const done = new Array<boolean>(B).fill(false);

  let previous: Record<string, ort.Tensor> | undefined;
  try {
    for (let step = 0; step < maxTokens; step++) {
      const fresh = step === 0 || !useCache;
      const width = fresh ? sequences[0].length : 1;
      const inputIds = sequences.map((s) => s.slice(s.length - width));
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64Tensor(inputIds),
        attention_mask: int64Tensor(mask),
        position_ids: int64Tensor(positionIdsFromMask(mask, width)),
        ...(fresh ? emptyPastFeeds(shape, B) : presentAsPast(shape, previous!)),
      };
      const outputs = await runner.run(feeds);
      disposePresent(shape, previous);
      previous = outputs;
      const logitsTensor = outputs.logits;
      const logits = (logitsTensor.location === 'cpu' ? logitsTensor.data : await logitsTensor.getData()) as Float32Array;
      for (let b = 0; b < B; b++) {
        // Finished rows keep running (the batch keeps its shape) but their draws are not used.
        const u = rngs[b].next();
        if (done[b]) continue;
        const rowLogits = logits.subarray((b * width + width - 1) * V, (b * width + width) * V);
        const { token, logprob } = chooseToken(rowLogits, sampling, u);
        const c = completions[b];
        c.tokens.push(token);
        c.logprobs.push(logprob);
        if (eosTokenId !== null && token === eosTokenId) {
          done[b] = true;
          c.finish = 'eos';
        }
        onToken?.({ promptIndex: c.promptIndex, sample: c.sample, step, token, logprob, done: done[b] || step === maxTokens - 1 });
      }
      if (done.every(Boolean) || step === maxTokens - 1) break;
      // A finished row's last token is its EOS; what follows it is never read.
      for (let b = 0; b < B; b++) {
        const c = completions[b];
        sequences[b].push(c.tokens[c.tokens.length - 1]);
        mask[b].push(1);
      }
    }
  } finally {
    disposePresent(shape, previous);
  }
  return completions;
}
