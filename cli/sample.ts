/** `opd-lab sample`: completions from a GPT-2 family model folder, with the sampler's log-probs. */
import type { Command } from './main';
import { cliDevice } from './device';
import { readModelFolder } from '../workers/models/folder';
import { dirSource } from '../workers/node/fs-source';
import { decoderRunner, openSamplingSession } from '../workers/sampling/runner';
import { sampleCompletions } from '../workers/sampling/sampler';
import { checkGpt2Fits } from '../workers/models/memory';

export const sampleCommand: Command = {
  summary: 'sample completions of a prompt from a model folder (GPT-2 family ONNX with KV cache)',
  options: {
    model: { kind: 'string', required: true, help: 'model folder (config.json, tokenizer.json, onnx/model.onnx)' },
    prompt: { kind: 'string', required: true, help: 'the prompt text' },
    n: { kind: 'int', default: 4, min: 1, max: 256, help: 'completions' },
    'max-tokens': { kind: 'int', default: 32, min: 1, max: 4096, help: 'new tokens per completion at most' },
    temperature: { kind: 'number', default: 1, min: 0, max: 100, help: 'softmax temperature (0: greedy)' },
    'top-k': { kind: 'int', default: 0, min: 0, help: 'keep the k most likely tokens (0: all)' },
    'top-p': { kind: 'number', default: 1, min: 0, max: 1, help: 'nucleus sampling mass (1: all)' },
    seed: { kind: 'int', default: 0, help: 'random seed (the same seed gives the same tokens)' },
    json: { kind: 'flag', help: 'print JSON' },
  },
  async run(o) {
    const folder = await readModelFolder(await dirSource(String(o.model)));
    if (!folder.gpt2) throw new Error(`${folder.label} is not a GPT-2 family model (config.json model_type '${String(folder.rawConfig.model_type)}'): sampling needs the GPT-2 decoder layout`);
    const config = folder.gpt2;
    const promptIds = folder.tokenizer.encode(String(o.prompt));
    const device = await cliDevice();
    checkGpt2Fits(config, Number(o.n), Math.min(config.nPositions, promptIds.length + Number(o['max-tokens'])), device.limits, folder.label);
    const decoder = await openSamplingSession(device, config, folder.onnx, `${folder.label}/onnx/model.onnx`);
    try {
      const completions = await sampleCompletions(decoderRunner(config, decoder), {
        prompts: [promptIds],
        n: Number(o.n),
        maxTokens: Number(o['max-tokens']),
        sampling: { temperature: Number(o.temperature), topK: Number(o['top-k']), topP: Number(o['top-p']) },
        seed: Number(o.seed),
        eosTokenId: folder.tokenizer.eosTokenId ?? config.eosTokenId ?? null,
      });
      const out = completions.map((c) => ({
        tokens: c.tokens,
        text: folder.tokenizer.decode(c.tokens, { skipSpecialTokens: true }),
        logprobs: c.logprobs,
        finish: c.finish,
      }));
      if (o.json) console.log(JSON.stringify({ promptIds, completions: out }, null, 2));
      else out.forEach((c, i) => console.log(`[${i}] ${JSON.stringify(c.text)}  (${c.tokens.length} tokens, ${c.finish}, mean log-prob ${(c.logprobs.reduce((a, b) => a + b, 0) / c.logprobs.length).toFixed(3)})`));
    } finally {
      await decoder.session.release();
    }
  },
};
