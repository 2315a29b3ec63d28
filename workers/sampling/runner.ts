/**
 * A DecoderRunner over an ORT session of a family's decoder: weights from the file, or the
 * trainer's live GPU buffers fed in place. Every output stays on the GPU: the KV cache
 * (present.*) is fed back as the next step's past, and the logits are read in place by the
 * token-choice kernel (or downloaded, where the sampler chooses in JavaScript).
 */
import type { ort } from '../ort/runtime';
import { decoderOutputs } from '../ort/decoder-io';
import type { FamilyConfig } from '../models/family';
import { createDecoderSession, decoderShapeOf, type DecoderSession } from '../models/decoder-session';
import type { DecoderRunner } from './sampler';

/** Session options for sampling: every output (logits and present.*) stays on the GPU. */
export function samplingOutputs(config: FamilyConfig): string[] {
  return decoderOutputs(decoderShapeOf(config));
}

export function decoderRunner(config: FamilyConfig, decoder: DecoderSession, weightFeeds: Record<string, ort.Tensor> = {}): DecoderRunner {
  if (decoder.weightsAreInputs && Object.keys(weightFeeds).length === 0) {
    throw new Error('this decoder takes its weights as inputs: pass the weight feeds (the trainer\'s weightFeeds())');
  }
  return {
    config,
    device: decoder.device,
    run: (feeds) => decoder.session.run({ ...weightFeeds, ...feeds }),
  };
}

/** Opens a model.onnx for sampling on the lab's device. */
export async function openSamplingSession(device: GPUDevice, config: FamilyConfig, model: Uint8Array, file?: string): Promise<DecoderSession> {
  return createDecoderSession(device, config, model, { file, gpuOutputs: samplingOutputs(config), logSeverityLevel: 3 });
}
