/**
 * A DecoderRunner over an ORT session of the GPT-2 decoder: weights from the file, or the
 * trainer's live GPU buffers fed in place. Logits come back to the CPU for token choice; the KV
 * cache (present.*) stays on the GPU and is fed back as the next step's past.
 */
import type { ort } from '../ort/runtime';
import type { Gpt2Config } from '../models/gpt2/config';
import { createGpt2DecoderSession, type Gpt2DecoderSession } from '../models/gpt2/decoder-session';
import { gpt2DecoderOutputs } from '../onnx/gpt2-decoder';
import type { DecoderRunner } from './sampler';

/** Session options for sampling: every present.* output stays on the GPU. */
export function samplingOutputs(config: Gpt2Config): string[] {
  return gpt2DecoderOutputs(config).filter((n) => n !== 'logits');
}

export function decoderRunner(config: Gpt2Config, decoder: Gpt2DecoderSession, weightFeeds: Record<string, ort.Tensor> = {}): DecoderRunner {
  if (decoder.weightsAreInputs && Object.keys(weightFeeds).length === 0) {
    throw new Error('this decoder takes its weights as inputs: pass the weight feeds (gpt2WeightFeedsFromGpu)');
  }
  return {
    config,
    run: (feeds) => decoder.session.run({ ...weightFeeds, ...feeds }),
  };
}

/** Opens a model.onnx for sampling on the lab's device. */
export async function openSamplingSession(device: GPUDevice, config: Gpt2Config, model: Uint8Array, file?: string): Promise<Gpt2DecoderSession> {
  return createGpt2DecoderSession(device, config, model, { file, gpuOutputs: samplingOutputs(config), logSeverityLevel: 3 });
}
