/** transformers.js on a model folder, on the page's WebGPU adapter (see compare-api.ts). */
import { AutoModelForCausalLM, env, Tensor, type PreTrainedModel } from '@huggingface/transformers';
import { adapterName, type CompareApi } from './compare-api';

// Everything from this server: no hub, no CDN, no browser cache between runs.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useWasmCache = false;
const onnxEnv = env.backends.onnx as { wasm?: { wasmPaths?: unknown; numThreads?: number } };
if (onnxEnv.wasm) {
  // The same runtime files transformers.js would fetch from a CDN, served by this page (tjs-ort/).
  onnxEnv.wasm.wasmPaths = new URL('./tjs-ort/', location.href).href;
  onnxEnv.wasm.numThreads = 1;
}

let model: PreTrainedModel | undefined;

const int64 = (rows: number[][]) => new Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);

const api: CompareApi = {
  async load(folderUrl) {
    const t0 = performance.now();
    const url = new URL(folderUrl);
    const name = url.pathname.replace(/\/$/, '').split('/').pop()!;
    env.localModelPath = new URL('./', new URL(folderUrl.replace(/\/$/, ''))).href;
    model = await AutoModelForCausalLM.from_pretrained(name, { device: 'webgpu', dtype: 'fp32', local_files_only: true });
    return { ms: performance.now() - t0, adapter: await adapterName() };
  },
  async generate(promptIds, n, maxTokens) {
    if (!model) throw new Error('load a model first');
    const rows = Array.from({ length: n }, () => promptIds);
    const t0 = performance.now();
    const out = (await model.generate({
      input_ids: int64(rows),
      attention_mask: int64(rows.map((r) => r.map(() => 1))),
      max_new_tokens: maxTokens,
      // Exactly maxTokens argmax tokens, as the lab's page decodes (eosTokenId null): no
      // end-of-sequence token stops it, and none is masked either (min_new_tokens would mask it,
      // changing the argmax of a model whose best token is its end of sequence).
      eos_token_id: [],
      do_sample: false,
    })) as Tensor;
    const ms = performance.now() - t0;
    const all = out.tolist() as bigint[][];
    const sequences = all.map((row) => row.slice(promptIds.length).map(Number));
    return { ms, tokens: sequences.reduce((a, s) => a + s.length, 0), sequences };
  },
  async forward(ids) {
    if (!model) throw new Error('load a model first');
    const out = (await model({ input_ids: int64([ids]), attention_mask: int64([ids.map(() => 1)]) })) as { logits: Tensor };
    const [, , vocab] = out.logits.dims;
    return { vocab, logits: Array.from(out.logits.data as Float32Array) };
  },
};
window.opdCompare = api;
