/**
 * The student sampler: B prompts × n completions in one batch on a decoder session of any
 * registered model family, or of a graph of no known family whose KV layout it declares (the
 * transformers.js layout, workers/ort/decoder-io.ts).
 * Prompts of unequal length are left-padded (masked); the KV cache stays on the GPU between steps
 * (present → past without a copy), so one more token costs one step, not a re-run of the prefix.
 * Each completion draws from its own seeded stream, stops at EOS or maxTokens, and records the
 * sampler's log-prob of every token it chose (π_old of the importance ratio). Tokens are streamed
 * to `onToken` as they come.
 *
 * Where the token is chosen: on the GPU (kernels/sampling/choose_token.wgsl) when the decoder's
 * logits are on a GPU and the KV cache is used: the logits never leave the GPU, the chosen ids
 * feed the next step from a GPU buffer, and only ids and log-probs come back, a few steps at a
 * time. Otherwise in JavaScript (choose.ts): the logits come back every step. Both give the same
 * tokens and log-probs, bit for bit, for the same seed.
 */
import { ort } from '../ort/runtime';
import type { FamilyConfig } from '../models/family';
import { emptyPastFeeds, int64Tensor, positionIdsFromMask, presentAsPast, presentKeyName, presentValueName, type DecoderShape } from '../ort/decoder-io';
import { chooseToken, validateSampling, type SamplingOptions } from './choose';
import { Rng } from '../random/rng';
import { isCpuDevice } from '../gpu/tuning';
import { CHOICE_STATUS, chooserFits, GpuTokenChooser, type ChoiceRecord } from '../kernels/sampling/choose-token';

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
  /**
   * Where tokens are chosen. 'auto' (default): on the GPU when the logits are on one and the KV
   * cache is used, except on a CPU adapter (SwiftShader…), where the GPU is the CPU emulating
   * float64 and JavaScript is far faster (see kernels/sampling/README.md); 'gpu' insists (an
   * error where it cannot), 'js' reads the logits back every step.
   */
  tokenChoice?: 'auto' | 'gpu' | 'js';
  /** GPU choice: decoding steps between two read-backs of the chosen ids (default 4). */
  stepsPerReadback?: number;
  /**
   * Filled in as the decoder runs: the token positions its forwards really processed (rows ×
   * width per call: the padded prompts at the first step, then one per row at each KV-cache
   * decode step, finished rows included, until every row is done), which is what sampling costs.
   */
  cost?: { forwardTokens: number };
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

/** What the sampler reads of a model's config: its vocabulary and context (a family's config has both; workers/models/graph-config.ts gives them for a graph of no known family). */
export type SampledModel = Pick<FamilyConfig, 'vocabSize' | 'nPositions'>;

/** What the sampler needs from a model: its vocabulary and context, its KV cache's layout and one forward run of the decoder. */
export interface DecoderRunner {
  config: SampledModel;
  /** The KV cache's layout (the family's, or read from the graph). */
  shape: DecoderShape;
  /** Runs the decoder on data feeds (weights are the runner's business); present on the GPU, logits on the GPU or the CPU. */
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  /** The device the decoder runs on, when it is one our kernels share (GPU token choice). */
  device?: GPUDevice;
}

export class SamplingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SamplingError';
  }
}

export function validateSampleRequest(config: SampledModel, r: SampleRequest): void {
  validateSampling(r.sampling);
  const every = r.stepsPerReadback ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new SamplingError(`steps per read-back must be a whole number ≥ 1, got ${r.stepsPerReadback}`);
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

/** The sentences choose.ts throws for a row the kernel refused (same words on both paths). */
function choiceError(record: ChoiceRecord): Error {
  if (record.status === CHOICE_STATUS.nanLogit) return new Error(`logit ${record.token} is NaN: the model produced an invalid output`);
  if (record.status === CHOICE_STATUS.allNegInf) return new Error('every logit is -inf: no token can be sampled');
  return new Error('a logit is +inf: the model produced an invalid output');
}

export async function sampleCompletions(runner: DecoderRunner, request: SampleRequest, onToken?: (e: TokenEvent) => void): Promise<Completion[]> {
  const { config, shape } = runner;
  validateSampleRequest(config, request);
  const { prompts, n, maxTokens, sampling, seed, eosTokenId } = request;
  const useCache = request.useKvCache ?? true;
  const choice = request.tokenChoice ?? 'auto';
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

  /** Row b chose `token` at `step` (both paths). */
  const record = (b: number, step: number, token: number, logprob: number) => {
    const c = completions[b];
    c.tokens.push(token);
    c.logprobs.push(logprob);
    if (eosTokenId !== null && token === eosTokenId) {
      done[b] = true;
      c.finish = 'eos';
    }
    onToken?.({ promptIndex: c.promptIndex, sample: c.sample, step, token, logprob, done: done[b] || step === maxTokens - 1 });
  };

  let previous: Record<string, ort.Tensor> | undefined;
  let chooser: GpuTokenChooser | undefined;
  const stepsPerReadback = Math.min(request.stepsPerReadback ?? 4, maxTokens);
  let unread = 0; // GPU choice: steps chosen but not yet read back
  /** Reads back the last `unread` steps' choices and records them; true when every row is done. */
  const readBack = async (lastStep: number): Promise<boolean> => {
    const slots = await chooser!.read(unread);
    const first = lastStep - unread + 1;
    unread = 0;
    for (let s = 0; s < slots.length; s++) {
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const r = slots[s][b];
        if (r.status === CHOICE_STATUS.skipped) throw new Error(`token choice on the GPU skipped row ${b} at step ${first + s}, which had not finished: the kernel and the sampler disagree`);
        if (r.status !== CHOICE_STATUS.chosen) throw choiceError(r);
        record(b, first + s, r.token, r.logprob);
      }
    }
    return done.every(Boolean);
  };

  try {
    for (let step = 0; step < maxTokens; step++) {
      const fresh = step === 0 || !useCache;
      const width = fresh ? sequences[0].length : 1;
      const feeds: Record<string, ort.Tensor> = {
        // On the GPU path the chosen ids are already where the decoder reads them.
        input_ids: chooser && !fresh
          ? ort.Tensor.fromGpuBuffer(chooser.nextIds, { dataType: 'int64', dims: [B, 1] })
          : int64Tensor(sequences.map((s) => s.slice(s.length - width))),
        attention_mask: int64Tensor(mask),
        position_ids: int64Tensor(positionIdsFromMask(mask, width)),
        ...(fresh ? emptyPastFeeds(shape, B) : presentAsPast(shape, previous!)),
      };
      const outputs = await runner.run(feeds);
      if (request.cost) request.cost.forwardTokens += B * width;
      disposePresent(shape, previous);
      previous = outputs;
      const logitsTensor = outputs.logits;
      if (step === 0 && choice !== 'js') {
        const onGpu = logitsTensor.location === 'gpu-buffer' && runner.device !== undefined;
        if (choice === 'gpu' && !onGpu) throw new SamplingError("token choice on the GPU needs the decoder's logits on the GPU: open the session with openSamplingSession on the WebGPU execution provider");
        if (choice === 'gpu' && !useCache) throw new SamplingError('token choice on the GPU feeds each chosen token to the next step through the KV cache: sample with useKvCache, or with tokenChoice js');
        // auto also keeps JavaScript where the kernel's scratch would not fit one binding ('gpu' says why).
        const fits = onGpu && chooserFits(runner.device!, B, V, { ...sampling, eosTokenId });
        if (onGpu && useCache && (choice === 'gpu' || (!isCpuDevice(runner.device!) && fits))) {
          chooser = new GpuTokenChooser(runner.device!, B, V, stepsPerReadback, { ...sampling, eosTokenId });
          chooser.reset();
        }
      }
      if (chooser) {
        // The same numbers in the same order as the JavaScript path: one per row and step.
        const draws = Float64Array.from(rngs, (r) => r.next());
        chooser.step(logitsTensor.gpuBuffer as GPUBuffer, width, unread, draws);
        logitsTensor.dispose();
        unread++;
        if ((unread === stepsPerReadback || step === maxTokens - 1) && (await readBack(step))) break;
      } else {
        // Downloaded from the GPU (and its buffer released) unless the session left them on the CPU.
        const logits = (logitsTensor.location === 'cpu' ? logitsTensor.data : await logitsTensor.getData(true)) as Float32Array;
        for (let b = 0; b < B; b++) {
          // Finished rows keep running (the batch keeps its shape) but their draws are not used.
          const u = rngs[b].next();
          if (done[b]) continue;
          const rowLogits = logits.subarray((b * width + width - 1) * V, (b * width + width) * V);
          const { token, logprob } = chooseToken(rowLogits, sampling, u);
          record(b, step, token, logprob);
        }
        if (done.every(Boolean)) break;
        // A finished row's last token is its EOS; what follows it is never read.
        for (let b = 0; b < B; b++) sequences[b].push(completions[b].tokens[completions[b].tokens.length - 1]);
      }
      if (step === maxTokens - 1) break;
      for (const m of mask) m.push(1);
    }
  } finally {
    disposePresent(shape, previous);
    chooser?.destroy();
  }
  return completions;
}
