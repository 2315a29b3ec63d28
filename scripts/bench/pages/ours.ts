/** OPD Lab's sampler on a model folder, on the page's own WebGPU device (see compare-api.ts). */
import { adapterName, type CompareApi } from './compare-api';
import { acquireDevice } from '../../../workers/gpu/device';
import { configureOrt, ort } from '../../../workers/ort/runtime';
import { readModelFolder } from '../../../workers/models/folder';
import { urlSource } from '../../../workers/models/source';
import { decoderRunner, openSamplingSession } from '../../../workers/sampling/runner';
import { sampleCompletions, type DecoderRunner } from '../../../workers/sampling/sampler';
import { forwardLogits, openScoringSession } from '../../../workers/scoring/forward';

let runner: DecoderRunner | undefined;
let scoring: ort.InferenceSession | undefined;
/** Opens the scoring session on the first forward (generation alone does not need it). */
let openScoring: (() => Promise<ort.InferenceSession>) | undefined;

const api: CompareApi = {
  async load(folderUrl) {
    const t0 = performance.now();
    const acquired = await acquireDevice(navigator.gpu);
    if (!acquired.ok) throw new Error(acquired.error.message);
    configureOrt({ wasmPaths: new URL('./ort/', location.href).href, numThreads: 1 });
    const folder = await readModelFolder(urlSource(folderUrl));
    if (!folder.config) throw new Error(`${folderUrl} is not a folder of a model family the lab knows`);
    runner = decoderRunner(folder.config, await openSamplingSession(acquired.device, folder.config, folder.onnx, folder.onnxLabel));
    scoring = undefined;
    openScoring = () => openScoringSession(acquired.device, folder.onnx, folder.onnxLabel);
    return { ms: performance.now() - t0, adapter: await adapterName() };
  },
  async generate(promptIds, n, maxTokens) {
    if (!runner) throw new Error('load a model first');
    const t0 = performance.now();
    const out = await sampleCompletions(runner, {
      prompts: [promptIds], n, maxTokens, seed: 0, eosTokenId: null, useKvCache: true,
      sampling: { temperature: 0, topK: 0, topP: 1 },
    });
    const ms = performance.now() - t0;
    return { ms, tokens: out.reduce((a, c) => a + c.tokens.length, 0), sequences: out.map((c) => c.tokens) };
  },
  async forward(ids) {
    if (!openScoring) throw new Error('load a model first');
    scoring ??= await openScoring();
    const out = await forwardLogits(scoring, [ids]);
    const data = (await out.logits.getData(true)) as Float32Array;
    return { vocab: out.vocab, logits: Array.from(data) };
  },
};
window.opdCompare = api;
