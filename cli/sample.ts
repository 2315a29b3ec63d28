/** `opd-lab sample`: completions from a model folder of a family the lab knows, with the sampler's log-probs. */
import type { Command } from './main';
import { cliDevice } from './device';
import { DTYPE_HELP, folderOptions, openModel } from './models';
import { loadModel, releaseModel, sampleText } from '../workers/engine/inference';

export const sampleCommand: Command = {
  summary: 'sample completions of a prompt from a model folder (GPT-2, Llama, Qwen2 or Qwen3; KV cache on the GPU)',
  options: {
    model: { kind: 'string', required: true, help: 'model folder (config.json, tokenizer.json, model.safetensors), or a Hugging Face id ORG/NAME[@REVISION]' },
    prompt: { kind: 'string', required: true, help: 'the prompt text' },
    n: { kind: 'int', default: 4, min: 1, max: 256, help: 'completions' },
    'max-tokens': { kind: 'int', default: 32, min: 1, max: 4096, help: 'new tokens per completion at most' },
    temperature: { kind: 'number', default: 1, min: 0, max: 100, help: 'softmax temperature (0: greedy)' },
    'top-k': { kind: 'int', default: 0, min: 0, help: 'keep the k most likely tokens (0: all)' },
    'top-p': { kind: 'number', default: 1, min: 0, max: 1, help: 'nucleus sampling mass (1: all)' },
    seed: { kind: 'int', default: 0, help: 'random seed (the same seed gives the same tokens)' },
    dtype: { kind: 'string', help: DTYPE_HELP },
    json: { kind: 'flag', help: 'print JSON' },
  },
  async run(o) {
    const device = await cliDevice();
    const model = await loadModel(await openModel(String(o.model)), 'student', folderOptions(o.dtype, device));
    try {
      const result = await sampleText(device, model, {
        prompt: String(o.prompt),
        n: Number(o.n),
        maxTokens: Number(o['max-tokens']),
        sampling: { temperature: Number(o.temperature), topK: Number(o['top-k']), topP: Number(o['top-p']) },
        seed: Number(o.seed),
      });
      if (o.json) console.log(JSON.stringify(result, null, 2));
      else {
        result.completions.forEach((c, i) =>
          console.log(`[${i}] ${JSON.stringify(c.text)}  (${c.tokens.length} tokens, ${c.finish}, mean log-prob ${(c.logprobs.reduce((a, b) => a + b, 0) / c.logprobs.length).toFixed(3)})`),
        );
      }
    } finally {
      await releaseModel(model);
    }
  },
};
