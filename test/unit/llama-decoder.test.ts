/**
 * The Llama-family ONNX decoder (workers/models/llama/decoder.ts) on onnxruntime-web's WebGPU EP
 * (Dawn in Node) against PyTorch's numbers for every fixture folder (test/fixtures/hf: llama-tied,
 * qwen2, qwen3, llama-teacher; reference.json), each folder read by the lab's folder loader, which
 * builds the decoder from model.safetensors:
 *   - last-position logits and next-token log-probs of the three prompts;
 *   - 10 greedy tokens through the lab's sampler with the KV cache, equal to PyTorch's;
 *   - a left- or right-padded batch gives the unpadded rows' logits;
 *   - weights as graph inputs fed from GPU buffers give the initializers' logits;
 * and for every pair of reference.json (each student, GPT-2 included, against llama-teacher) the
 * per-token log-probs and sampled / reverse / forward KL through the lab's scorer and divergence
 * kernels; and one check that the tolerance sees a real mistake (llama3 rope scaling ignored).
 * Every measured error is printed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { configureOrt, type ort } from '../../workers/ort/runtime';
import { createStorageBuffer } from '../../workers/gpu/buffers';
import { readModelFolder, type ModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { familyFor } from '../../workers/models/registry';
import { createDecoderSession, emptyPastFeeds, int64Tensor, positionIdsFromMask, type DecoderSession } from '../../workers/models/decoder-session';
import { decoderRunner, openSamplingSession, samplingOutputs } from '../../workers/sampling/runner';
import { sampleCompletions } from '../../workers/sampling/sampler';
import { logSoftmax } from '../../workers/sampling/choose';
import { openScoringSession } from '../../workers/scoring/forward';
import { scoreCompletions } from '../../workers/scoring/scorer';
import type { FamilyConfig } from '../../workers/models/family';
import type { LlamaConfig } from '../../workers/models/llama/config';
import { buildLlamaDecoder } from '../../workers/models/llama/decoder';

const FIXTURES = join(__dirname, '../fixtures/hf');
const FOLDERS = ['llama-tied', 'qwen2', 'qwen3', 'llama-teacher'] as const;
const PROMPTS = ['347+589=', 'The cat sat on', 'chat'] as const;

interface PromptReference {
  ids: number[];
  last_logits_f64: number[];
  next_token_logprobs_f64: number[];
  greedy_ids: number[];
}
interface PairToken {
  position: number;
  token: number;
  student_logprob_f64: number;
  teacher_logprob_f64: number;
  sampled_kl_f64: number;
  reverse_kl_f64: number;
  forward_kl_f64: number;
  teacher_top5_ids: number[];
}
const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as {
  models: Record<string, { prompts: Record<string, PromptReference> }>;
  pairs: { student: string; teacher: string; prompt_ids: number[]; completion_ids: number[]; per_token: PairToken[] }[];
};

/**
 * The acceptance bound on logits and log-probs against PyTorch float64: 2e-4 (issue 12). What to
 * expect below it: ORT computes in float32 (u = 6e-8) over sums of ≤ 256 products in 2–3 layers,
 * and PyTorch's own float32 run is within 2e-5 of its float64 one (reference.json); the rotary
 * tables are float64 rounded once, where PyTorch's angles are float32 products (a difference of
 * ≤ position · 6e-8 rad). A wrong rotation pair, a missing bias or norm, the wrong GQA head or a
 * position off by one moves logits by 0.1–10.
 */
const TOLERANCE = 2e-4;
/**
 * The KLs sum p·(log p − log q) over 512 tokens: each log-prob within 2e-4 bounds the KL's error
 * by about 4e-4 (both distributions' errors, weighted by probabilities summing to 1), as
 * generic-teacher.test.ts and cli.test.ts bound it (5e-4).
 */
const KL_TOLERANCE = 5e-4;
/** Same weights, same graph, inputs instead of initializers: only ORT's kernel choices may differ. */
const WEIGHTS_AS_INPUTS_TOLERANCE = 1e-5;
/** Rows of one batch against the same rows alone: the same arithmetic over more (masked) keys. */
const PADDING_TOLERANCE = 1e-5;

const measured: Record<string, number> = {};
const record = (what: string, value: number) => {
  measured[what] = Math.max(measured[what] ?? 0, value);
};
afterAll(() => {
  console.log('[llama-decoder] largest errors measured:\n' + Object.entries(measured).map(([k, v]) => `  ${k}: ${v.toExponential(2)}`).join('\n'));
});

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
};

async function floats(tensor: ort.Tensor): Promise<Float32Array> {
  return (tensor.location === 'gpu-buffer' ? await tensor.getData() : tensor.data) as Float32Array;
}
function dispose(outputs: Record<string, ort.Tensor>): void {
  for (const t of Object.values(outputs)) if (t.location === 'gpu-buffer') t.dispose();
}

const folders = new Map<string, Promise<ModelFolder>>();
const folderOf = (name: string) => {
  if (!folders.has(name)) folders.set(name, dirSource(join(FIXTURES, name)).then((s) => readModelFolder(s, { requireWeights: true })));
  return folders.get(name)!;
};

/** Prefill of padded rows (padding id 0, left or right); returns logits [B, width, V] on the CPU. */
async function prefill(
  decoder: DecoderSession,
  config: FamilyConfig,
  rows: number[][],
  { weightFeeds = {}, side = 'left' }: { weightFeeds?: Record<string, ort.Tensor>; side?: 'left' | 'right' } = {},
): Promise<{ logits: Float32Array; width: number }> {
  const width = Math.max(...rows.map((r) => r.length));
  const pad = <T,>(r: T[], fill: T) => (side === 'left' ? [...new Array<T>(width - r.length).fill(fill), ...r] : [...r, ...new Array<T>(width - r.length).fill(fill)]);
  const ids = rows.map((r) => pad(r, 0));
  const mask = rows.map((r) => pad(r.map(() => 1), 0));
  const outputs = await decoder.session.run({
    ...weightFeeds,
    ...emptyPastFeeds(config, rows.length),
    input_ids: int64Tensor(ids),
    attention_mask: int64Tensor(mask),
    position_ids: int64Tensor(positionIdsFromMask(mask, width)),
  });
  try {
    expect(outputs.logits.dims).toEqual([rows.length, width, config.vocabSize]);
    // The cache holds the KV heads, not the query heads.
    const { kvHeads, headDim } = familyFor(config).decoderShape(config);
    expect(outputs['present.0.key'].dims).toEqual([rows.length, kvHeads, width, headDim]);
    return { logits: (await floats(outputs.logits)).slice(), width };
  } finally {
    dispose(outputs);
  }
}

describe.each(FOLDERS)('the %s decoder on ORT WebGPU against PyTorch', (name) => {
  const prompts = reference.models[name].prompts;
  let folder: ModelFolder;
  let config: FamilyConfig;
  let decoder: DecoderSession;
  /** Each prompt's logits alone (batch 1), for the padded batch to be compared with. */
  const alone = new Map<string, Float32Array>();

  beforeAll(async () => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    folder = await folderOf(name);
    config = folder.config!;
    expect(folder.onnxLabel).toContain('decoder built from model.safetensors');
    decoder = await openSamplingSession(device, config, folder.onnx, folder.onnxLabel);
  });
  afterAll(async () => {
    await decoder?.session.release();
  });

  it('gives PyTorch’s last-position logits and next-token log-probs for every prompt', async () => {
    const V = config.vocabSize;
    for (const prompt of PROMPTS) {
      const ref = prompts[prompt];
      const { logits } = await prefill(decoder, config, [ref.ids]);
      alone.set(prompt, logits);
      const last = logits.subarray((ref.ids.length - 1) * V, ref.ids.length * V);
      const logitError = maxAbsDiff(last, ref.last_logits_f64);
      const logprobs = ref.ids.slice(1).map((next, t) => logSoftmax(logits.subarray(t * V, (t + 1) * V))[next]);
      const logprobError = maxAbsDiff(logprobs, ref.next_token_logprobs_f64);
      record(`${name}: last logits vs PyTorch f64`, logitError);
      record(`${name}: next-token log-probs vs PyTorch f64`, logprobError);
      expect(logitError, prompt).toBeLessThanOrEqual(TOLERANCE);
      expect(logprobError, prompt).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it.each(['left', 'right'] as const)('gives the unpadded rows’ logits in a %s-padded batch', async (side) => {
    const V = config.vocabSize;
    const rows = PROMPTS.map((p) => prompts[p].ids);
    const { logits, width } = await prefill(decoder, config, rows, { side });
    rows.forEach((ids, b) => {
      const single = alone.get(PROMPTS[b])!;
      const offset = side === 'left' ? width - ids.length : 0;
      const got = logits.subarray((b * width + offset) * V, (b * width + offset + ids.length) * V);
      const error = maxAbsDiff(got, single);
      record(`${name}: ${side}-padded batch vs rows alone`, error);
      expect(error, PROMPTS[b]).toBeLessThanOrEqual(PADDING_TOLERANCE);
    });
  });

  it('samples PyTorch’s 10 greedy tokens with the KV cache (the three prompts in one left-padded batch)', async () => {
    const completions = await sampleCompletions(decoderRunner(config, decoder), {
      prompts: PROMPTS.map((p) => prompts[p].ids),
      n: 1,
      maxTokens: 10,
      sampling: { temperature: 0, topK: 0, topP: 1 },
      seed: 0,
      eosTokenId: null,
    });
    for (const c of completions) expect(c.tokens, PROMPTS[c.promptIndex]).toEqual(prompts[PROMPTS[c.promptIndex]].greedy_ids);
  });

  it('gives the same logits with its weights as graph inputs fed from GPU buffers', async () => {
    const device = await testDevice();
    const family = familyFor(config);
    const inputs = await createDecoderSession(device, config, family.buildDecoder(config, { kind: 'inputs' }), { gpuOutputs: samplingOutputs(config), logSeverityLevel: 3 });
    const buffers = new Map([...folder.weights!].map(([n, data]) => [n, createStorageBuffer(device, data, n)]));
    try {
      expect(inputs.weightsAreInputs).toBe(true);
      const ids = prompts.chat.ids;
      const { logits } = await prefill(inputs, config, [ids], { weightFeeds: family.weightFeeds(config, buffers) });
      const error = maxAbsDiff(logits, alone.get('chat')!);
      record(`${name}: weights as GPU inputs vs initializers`, error);
      expect(error).toBeLessThanOrEqual(WEIGHTS_AS_INPUTS_TOLERANCE);
    } finally {
      await inputs.session.release();
      for (const b of buffers.values()) b.destroy();
    }
  });
});

describe('what the tolerance can see', () => {
  it('llama-teacher with its llama3 rope scaling ignored misses PyTorch by far more than the tolerance', async () => {
    const device = await testDevice();
    const folder = await folderOf('llama-teacher');
    const config = folder.config as LlamaConfig;
    expect(config.rope.type).toBe('llama3');
    const unscaled: LlamaConfig = { ...config, rope: { type: 'default', theta: config.rope.theta } };
    const decoder = await openSamplingSession(device, unscaled, buildLlamaDecoder(unscaled, { kind: 'initializers', params: folder.weights! }));
    try {
      const ref = reference.models['llama-teacher'].prompts.chat;
      const { logits } = await prefill(decoder, unscaled, [ref.ids]);
      const V = config.vocabSize;
      const error = maxAbsDiff(logits.subarray((ref.ids.length - 1) * V, ref.ids.length * V), ref.last_logits_f64);
      record('llama-teacher with rope_type default instead of llama3 (must be large)', error);
      expect(error).toBeGreaterThan(100 * TOLERANCE);
    } finally {
      await decoder.session.release();
    }
  });
});

describe('student/teacher pairs through the lab’s scorer against PyTorch', () => {
  const sessions = new Map<string, Promise<ort.InferenceSession>>();
  const scoringSession = async (name: string) => {
    if (!sessions.has(name)) {
      sessions.set(name, (async () => {
        const folder = await folderOf(name);
        return openScoringSession(await testDevice(), folder.onnx, folder.onnxLabel);
      })());
    }
    return sessions.get(name)!;
  };
  afterAll(async () => {
    for (const s of sessions.values()) await (await s).release();
  });

  it.each(reference.pairs.map((p) => [`${p.student} × ${p.teacher}`, p] as const))('%s: per-token log-probs and KLs', async (label, pair) => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    const student = await scoringSession(pair.student);
    const teacher = await scoringSession(pair.teacher);
    const [scored] = await scoreCompletions(device, student, teacher, [{ promptIds: pair.prompt_ids, completionIds: pair.completion_ids }], { topK: 5 });
    expect(scored.map((x) => x.id)).toEqual(pair.completion_ids);
    pair.per_token.forEach((ref, k) => {
      const got = scored[k];
      expect(ref.position).toBe(pair.prompt_ids.length + k);
      const errors = {
        'student log-prob': Math.abs(got.studentLogprob - ref.student_logprob_f64),
        'teacher log-prob': Math.abs(got.teacherLogprob - ref.teacher_logprob_f64),
        'sampled KL': Math.abs(got.sampledKL - ref.sampled_kl_f64),
        'reverse KL': Math.abs(got.reverseKL - ref.reverse_kl_f64),
        'forward KL': Math.abs(got.forwardKL - ref.forward_kl_f64),
      };
      for (const [what, error] of Object.entries(errors)) {
        record(`pairs: ${what}`, error);
        expect(error, `${label} token ${k}: ${what}`).toBeLessThanOrEqual(what.endsWith('log-prob') ? TOLERANCE : KL_TOLERANCE);
      }
      expect(got.teacherTop.map((t) => t.id)).toEqual(ref.teacher_top5_ids);
      expect(got.problems).toEqual([]);
    });
  });
});
