/**
 * A DecoderRunner over an ORT session of a family's decoder: weights from the file, or the
 * trainer's live GPU buffers fed in place. Every output stays on the GPU: the KV cache
 * (present.*) is fed back as the next step's past, and the logits are read in place by the
 * token-choice kernel (or downloaded, where the sampler chooses in JavaScript).
 */
import type { ort } from '../ort/runtime';
import { decoderOutputs, fitDecoderFeeds, logitsAsFloat32 } from '../ort/decoder-io';
import type { FamilyConfig } from '../models/family';
import { createDecoderSession, createGraphDecoderSession, decoderShapeOf, type DecoderSession } from '../models/decoder-session';
import type { DecoderRunner, SampledModel } from './sampler';

/** Session options for sampling: every output (logits and present.*) stays on the GPU. */
export function samplingOutputs(config: FamilyConfig): string[] {
  return decoderOutputs(decoderShapeOf(config));
}

/** `config`: the family's config, or graphSamplingConfig's for a graph of no known family; the KV layout is the session's. */
export function decoderRunner(config: SampledModel, decoder: DecoderSession, weightFeeds: Record<string, ort.Tensor> = {}): DecoderRunner {
  if (decoder.weightsAreInputs && Object.keys(weightFeeds).length === 0) {
    throw new Error('this decoder takes its weights as inputs: pass the weight feeds (the trainer\'s weightFeeds())');
  }
  const session = decoder.session;
  const { shape } = decoder;
  const plain = ['input_ids', 'attention_mask', 'position_ids'].every((name) => session.inputNames.includes(name));
  if (decoder.kvType !== 'float16' && !session.inputNames.includes('use_cache_branch') && plain) {
    return { config, shape, device: decoder.device, run: (feeds) => session.run({ ...weightFeeds, ...feeds }) };
  }
  // onnx-community layouts: the sampler's float32 feeds fitted to the graph (empty past in its
  // type, use_cache_branch, no position_ids where it computes them), and float16 logits read back
  // as float32 (the sampler then chooses in JavaScript; the KV cache stays on the GPU in the graph's type).
  return {
    config,
    shape,
    device: decoder.device,
    run: async (feeds) => {
      const outputs = await session.run({ ...weightFeeds, ...fitDecoderFeeds(session, feeds) });
      return { ...outputs, logits: await logitsAsFloat32(outputs.logits) };
    },
  };
}

/** Opens a model.onnx for sampling on the lab's device. */
export async function openSamplingSession(device: GPUDevice, config: FamilyConfig, model: Uint8Array, file?: string): Promise<DecoderSession> {
  return createDecoderSession(device, config, model, { file, gpuOutputs: samplingOutputs(config), logSeverityLevel: 3 });
}

/** Opens the graph of a model of no family the lab knows for sampling: its KV layout read from the graph. */
export async function openGraphSamplingSession(device: GPUDevice, model: Uint8Array, file?: string): Promise<DecoderSession> {
  return createGraphDecoderSession(device, model, { file, logSeverityLevel: 3 });
}
