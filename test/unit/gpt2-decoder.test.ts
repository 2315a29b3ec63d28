/**
 * The ONNX GPT-2 decoder on onnxruntime-web's WebGPU EP (Dawn in Node) against the float64
 * TypeScript reference, for random small configs: (a) a full prefix without cache, (b) a prompt
 * then one token at a time with present fed back as past, (c) a batch of unequal lengths with
 * left and right padding. Weights as initializers and as graph inputs read in place from GPU
 * buffers (Tensor.fromGpuBuffer) are both covered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { configureOrt, ort } from '../../workers/ort/runtime';
import { createStorageBuffer } from '../../workers/gpu/buffers';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import { presentKeyName, presentValueName } from '../../workers/ort/decoder-io';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { randomGpt2Params, seededRandom } from '../../workers/models/gpt2/params';
import { cacheAsHeads, Gpt2Reference, type Gpt2ReferenceCache } from '../reference/gpt2';
import {
  createDecoderSession, emptyPastFeeds, weightFeedsFromGpu, int64Tensor, positionIdsFromMask, presentAsPast,
} from '../../workers/models/decoder-session';

/**
 * Tolerance on logits and cached keys/values, absolute, for values of magnitude ≤ ~20 (checked
 * below). ORT computes in float32 (unit roundoff u = 6e-8): every matmul here sums ≤ 4·n_embd ≤
 * 256 products, LayerNorm divides by σ ≈ O(0.3–1) and re-amplifies earlier rounding, and two
 * layers compound it; a bound of a few hundred u relative to values of ~10 is ~1e-4, while the
 * errors measured are ~3e-6 (see the log line). A wiring mistake — a key masked or unmasked
 * wrongly, a position off by one, a transposed weight — moves logits by 0.1–10 (the
 * sensitivity checks below measure this for masking), 3+ orders of magnitude above the bound.
 */
const TOLERANCE = 1e-4;
/** Logit magnitude the tolerance was reasoned for (see above). */
const MAX_LOGIT_SCALE = 20;

const measured: Record<string, number> = {};
const record = (what: string, value: number) => {
  measured[what] = Math.max(measured[what] ?? 0, value);
};

function randomConfig(seed: number): Gpt2Config {
  const rng = seededRandom(seed);
  const pick = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
  const nHead = pick(2, 4);
  const nEmbd = nHead * pick(Math.ceil(16 / nHead), Math.floor(64 / nHead));
  return {
    modelType: 'gpt2', nLayer: 2, nHead, nEmbd, nInner: 4 * nEmbd, nPositions: 32, vocabSize: pick(50, 300),
    layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
  };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>, offset = 0): number => {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[offset + i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d; // NaN fails
  }
  return m;
};

async function floats(tensor: ort.Tensor): Promise<Float32Array> {
  return (tensor.location === 'gpu-buffer' ? await tensor.getData() : tensor.data) as Float32Array;
}

function disposeGpuOutputs(outputs: Record<string, ort.Tensor> | undefined): void {
  for (const t of Object.values(outputs ?? {})) if (t.location === 'gpu-buffer') t.dispose();
}

/** Logits of row b, column s of an ORT logits tensor [B, S, V] vs a reference row. */
function logitsDiff(logits: Float32Array, dims: readonly number[], b: number, s: number, expected: Float64Array): number {
  const [, S, V] = dims;
  return maxAbsDiff(logits, expected, (b * S + s) * V);
}

/** Every present.{l}.key|value row b vs the reference cache (positions `from`.. of the cache at columns `at`..). */
async function presentDiff(config: Gpt2Config, outputs: Record<string, ort.Tensor>, b: number, cache: Gpt2ReferenceCache, columns: number[]): Promise<number> {
  let worst = 0;
  const D = config.nEmbd / config.nHead;
  for (let l = 0; l < config.nLayer; l++) {
    for (const [name, rows] of [[presentKeyName(l), cache.keys[l]], [presentValueName(l), cache.values[l]]] as const) {
      const t = outputs[name];
      const [, H, T] = t.dims;
      const data = await floats(t);
      const expected = cacheAsHeads(config, rows); // [H, cache.length, D]
      for (let h = 0; h < H; h++) {
        columns.forEach((col, pos) => {
          const got = data.subarray(((b * H + h) * T + col) * D, ((b * H + h) * T + col + 1) * D);
          worst = Math.max(worst, maxAbsDiff(got, expected.subarray((h * cache.length + pos) * D, (h * cache.length + pos + 1) * D)));
        });
      }
    }
  }
  return worst;
}

describe.each([
  // Seeds picked for awkward shapes: head_dim 11 and 13, n_embd 33 (rows not a multiple of
  // 16 bytes, so the GPU buffers fed to ORT carry padding), vocab sizes not multiples of 4.
  { seed: 108, config: randomConfig(108) },
  { seed: 113, config: randomConfig(113) },
])('GPT-2 decoder on ORT WebGPU vs float64 reference (config seed $seed)', ({ seed, config }) => {
  const name = `L${config.nLayer} H${config.nHead} E${config.nEmbd} V${config.vocabSize}`;
  const params = randomGpt2Params(config, { seed, scheme: 'test' });
  const reference = new Gpt2Reference(config, params);
  const rng = seededRandom(seed + 1);
  const randomTokens = (n: number) => Array.from({ length: n }, () => Math.floor(rng.uniform() * config.vocabSize));
  let device: GPUDevice;
  let withInitializers: ort.InferenceSession;
  let withInputs: ort.InferenceSession;
  let weightBuffers: Map<string, GPUBuffer>;
  let weightFeeds: Record<string, ort.Tensor>;
  const presentNames = Array.from({ length: config.nLayer }, (_, l) => [presentKeyName(l), presentValueName(l)]).flat();

  beforeAll(async () => {
    device = await testDevice();
    configureOrt({ numThreads: 1 });
    // logSeverityLevel 3: the expected "shape ops assigned to CPU" warning is checked in gpt2-onnx-files.test.ts.
    const a = await createDecoderSession(device, config, buildGpt2Decoder(config, { kind: 'initializers', params }), { logSeverityLevel: 3 });
    const b = await createDecoderSession(device, config, buildGpt2Decoder(config, { kind: 'inputs' }), { gpuOutputs: presentNames, logSeverityLevel: 3 });
    expect([a.weightsAreInputs, b.weightsAreInputs]).toEqual([false, true]);
    withInitializers = a.session;
    withInputs = b.session;
    // The trainer's weights live in GPU storage buffers (padded to 16 bytes); ORT reads them in place.
    weightBuffers = new Map([...params].map(([n, data]) => [n, createStorageBuffer(device, data, n)]));
    weightFeeds = weightFeedsFromGpu(config, weightBuffers);
  });

  afterAll(async () => {
    await withInitializers?.release();
    await withInputs?.release();
    for (const buffer of weightBuffers?.values() ?? []) buffer.destroy();
  });

  const feedsFor = (session: ort.InferenceSession) => (session === withInputs ? weightFeeds : {});

  it(`(a) full prefix without cache, weights as initializers and as GPU-buffer inputs [${name}]`, async () => {
    const tokens = randomTokens(9);
    const { logits: expected, cache } = reference.prefill(tokens);
    const scale = Math.max(...expected.map((row) => Math.max(...row.map(Math.abs))));
    expect(scale).toBeGreaterThan(1);
    expect(scale).toBeLessThan(MAX_LOGIT_SCALE);
    const both: Float32Array[] = [];
    for (const [mode, session] of [['initializers', withInitializers], ['gpu inputs', withInputs]] as const) {
      const outputs = await session.run({
        ...feedsFor(session),
        ...emptyPastFeeds(config, 1),
        input_ids: int64Tensor([tokens]),
        attention_mask: int64Tensor([tokens.map(() => 1)]),
        position_ids: int64Tensor([tokens.map((_, i) => i)]),
      });
      try {
        expect(outputs.logits.dims).toEqual([1, tokens.length, config.vocabSize]);
        expect(outputs[presentKeyName(1)].dims).toEqual([1, config.nHead, tokens.length, config.nEmbd / config.nHead]);
        const logits = await floats(outputs.logits);
        both.push(logits);
        const diff = Math.max(...expected.map((row, s) => logitsDiff(logits, outputs.logits.dims, 0, s, row)));
        const kvDiff = await presentDiff(config, outputs, 0, cache, tokens.map((_, i) => i));
        record(`(a) logits, ${mode}`, diff);
        record(`(a) present, ${mode}`, kvDiff);
        expect(diff).toBeLessThanOrEqual(TOLERANCE);
        expect(kvDiff).toBeLessThanOrEqual(TOLERANCE);
      } finally {
        disposeGpuOutputs(outputs);
      }
    }
    // After ORT's fusions both graphs run the same kernels (LayerNormalization, FastGelu, …), so
    // this has been exactly 0; it is recorded, not asserted, as ORT owes us no bit-identity.
    record('(a) logits, initializers vs gpu inputs', maxAbsDiff(both[0], both[1]));
  });

  it(`(b) KV cache: prompt, then one token at a time with present fed back as past [${name}]`, async () => {
    const tokens = randomTokens(10);
    const expected = reference.prefill(tokens).logits;
    const prompt = 3;
    for (const [mode, session] of [['initializers', withInitializers], ['gpu inputs', withInputs]] as const) {
      let outputs: Record<string, ort.Tensor> | undefined;
      try {
        for (let t = prompt; t <= tokens.length; t++) {
          const fresh = t === prompt ? tokens.slice(0, prompt) : [tokens[t - 1]];
          const start = t - fresh.length;
          const previous: Record<string, ort.Tensor> | undefined = outputs;
          outputs = await session.run({
            ...feedsFor(session),
            ...(previous ? presentAsPast(config, previous) : emptyPastFeeds(config, 1)),
            input_ids: int64Tensor([fresh]),
            attention_mask: int64Tensor([Array(t).fill(1)]),
            position_ids: int64Tensor([fresh.map((_, i) => start + i)]),
          });
          disposeGpuOutputs(previous); // its present buffers were this run's past
          if (mode === 'gpu inputs') expect(outputs[presentKeyName(0)].location).toBe('gpu-buffer');
          expect(outputs[presentKeyName(0)].dims[2]).toBe(t);
          const logits = await floats(outputs.logits);
          const diff = Math.max(...fresh.map((_, i) => logitsDiff(logits, outputs!.logits.dims, 0, i, expected[start + i])));
          record(`(b) logits, ${mode}`, diff);
          expect(diff, `position ${t - 1}`).toBeLessThanOrEqual(TOLERANCE);
        }
        const { cache } = reference.prefill(tokens);
        const kvDiff = await presentDiff(config, outputs!, 0, cache, tokens.map((_, i) => i));
        record(`(b) present after last step, ${mode}`, kvDiff);
        expect(kvDiff).toBeLessThanOrEqual(TOLERANCE);
      } finally {
        disposeGpuOutputs(outputs);
      }
    }
  });

  it(`(c) a batch of unequal lengths, left-padded then decoded, and right-padded [${name}]`, async () => {
    const lengths = [7, 3, 5];
    const S = Math.max(...lengths);
    const PAD = config.vocabSize - 1; // an ordinary token id: only the mask makes it padding
    const prompts = lengths.map((n) => randomTokens(n));
    const continuations = lengths.map(() => randomTokens(2));
    const expected = prompts.map((p, b) => reference.prefill([...p, ...continuations[b]]).logits);

    // Left padding (how a sampler batches prompts), then two decode steps for every row.
    const mask = prompts.map((p) => [...Array(S - p.length).fill(0), ...p.map(() => 1)]);
    let outputs: Record<string, ort.Tensor> | undefined;
    try {
      outputs = await withInputs.run({
        ...weightFeeds,
        ...emptyPastFeeds(config, lengths.length),
        input_ids: int64Tensor(prompts.map((p) => [...Array(S - p.length).fill(PAD), ...p])),
        attention_mask: int64Tensor(mask),
        position_ids: int64Tensor(positionIdsFromMask(mask, S)),
      });
      let logits = await floats(outputs.logits);
      expect(logits.every(Number.isFinite)).toBe(true); // padding rows (all keys masked) stay finite
      let diff = 0;
      prompts.forEach((p, b) => p.forEach((_, i) => (diff = Math.max(diff, logitsDiff(logits, outputs!.logits.dims, b, S - p.length + i, expected[b][i])))));
      for (let step = 0; step < 2; step++) {
        mask.forEach((row) => row.push(1));
        const previous: Record<string, ort.Tensor> = outputs;
        outputs = await withInputs.run({
          ...weightFeeds,
          ...presentAsPast(config, previous),
          input_ids: int64Tensor(continuations.map((c) => [c[step]])),
          attention_mask: int64Tensor(mask),
          position_ids: int64Tensor(positionIdsFromMask(mask, 1)),
        });
        disposeGpuOutputs(previous);
        logits = await floats(outputs.logits);
        prompts.forEach((p, b) => (diff = Math.max(diff, logitsDiff(logits, outputs!.logits.dims, b, 0, expected[b][p.length + step]))));
      }
      record('(c) logits, left padding + 2 decode steps, gpu inputs', diff);
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      disposeGpuOutputs(outputs);
    }

    // Right padding (how a scorer batches whole sequences), no cache.
    const full = prompts.map((p, b) => [...p, ...continuations[b]]);
    const T = Math.max(...full.map((f) => f.length));
    const rightMask = full.map((f) => [...f.map(() => 1), ...Array(T - f.length).fill(0)]);
    const right = await withInitializers.run({
      ...emptyPastFeeds(config, full.length),
      input_ids: int64Tensor(full.map((f) => [...f, ...Array(T - f.length).fill(PAD)])),
      attention_mask: int64Tensor(rightMask),
      position_ids: int64Tensor(positionIdsFromMask(rightMask, T)),
    });
    const rightLogits = await floats(right.logits);
    expect(rightLogits.every(Number.isFinite)).toBe(true);
    let rightDiff = 0;
    full.forEach((f, b) => f.forEach((_, i) => (rightDiff = Math.max(rightDiff, logitsDiff(rightLogits, right.logits.dims, b, i, expected[b][i])))));
    record('(c) logits, right padding, initializers', rightDiff);
    expect(rightDiff).toBeLessThanOrEqual(TOLERANCE);

    // Sensitivity: had the mask been ignored (pads attended to as tokens at positions 0..), the
    // shortest row's logits would be off by far more than the tolerance, so the check has teeth.
    const shortest = 1;
    const unmasked = reference.prefill([...Array(S - lengths[shortest]).fill(PAD), ...prompts[shortest]]).logits;
    const maskingMatters = maxAbsDiff(unmasked[S - 1], expected[shortest][lengths[shortest] - 1]);
    record('(c) sensitivity: |Δlogit| if padding were not masked', maskingMatters);
    expect(maskingMatters).toBeGreaterThan(1000 * TOLERANCE);
    // …and had positions counted the padding (position_ids = column index), likewise.
    const shifted = reference.forward(prompts[shortest], reference.emptyCache(), prompts[shortest].map((_, i) => S - lengths[shortest] + i));
    const positionsMatter = maxAbsDiff(shifted[lengths[shortest] - 1], expected[shortest][lengths[shortest] - 1]);
    record('(c) sensitivity: |Δlogit| if positions counted the padding', positionsMatter);
    expect(positionsMatter).toBeGreaterThan(1000 * TOLERANCE);
  });
});

afterAll(() => {
  const lines = Object.entries(measured).map(([what, v]) => `  ${what}: ${v.toExponential(2)}`);
  console.info(`[gpt2-decoder] max |ORT − reference| (tolerance ${TOLERANCE}):\n${lines.join('\n')}`);
});
