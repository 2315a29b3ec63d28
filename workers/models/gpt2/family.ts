/** The GPT-2 family behind the model-family seam (workers/models/family.ts). */
import { ort } from '../../ort/runtime';
import type { ModelFamily } from '../family';
import { gpt2ConfigFromJson, gpt2ConfigToJson, headDim, type Gpt2Config } from './config';
import { buildGpt2Decoder, gpt2DecoderShape } from './decoder';
import { Gpt2Graph, prepareGpt2Training } from './graph';
import { countGpt2Parameters, gpt2ParamSpecs } from './params';
import { readGpt2Safetensors, writeGpt2Safetensors } from './weights';

/** The weights as feeds of the decoder built with weights as inputs, read in place from GPU buffers. */
export function gpt2WeightFeedsFromGpu(config: Gpt2Config, buffers: ReadonlyMap<string, GPUBuffer>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of gpt2ParamSpecs(config)) {
    const buffer = buffers.get(spec.name);
    if (!buffer) throw new Error(`GPT-2 weight feeds: no GPU buffer for ${spec.name}`);
    feeds[spec.name] = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: spec.shape });
  }
  return feeds;
}

export const gpt2Family: ModelFamily<Gpt2Config> = {
  modelType: 'gpt2',
  name: 'GPT-2',
  configFromJson: gpt2ConfigFromJson,
  describeSize: (config) => `n_layer ${config.nLayer}`,
  configToJson: gpt2ConfigToJson,
  architecture: (c) => ({
    family: 'GPT-2', layers: c.nLayer, hidden: c.nEmbd, heads: c.nHead, kvHeads: c.nHead, headDim: headDim(c), intermediate: c.nInner,
    positions: `learned (${c.nPositions.toLocaleString('en-US')} positions)`, tiedHead: true, extras: [], parameters: countGpt2Parameters(c),
  }),
  paramSpecs: gpt2ParamSpecs,
  countParameters: countGpt2Parameters,
  readSafetensors: readGpt2Safetensors,
  writeSafetensors: writeGpt2Safetensors,
  decoderShape: gpt2DecoderShape,
  activationTensors: (config, batch, sequence) => [
    { name: 'MLP activations (one layer)', bytes: batch * sequence * config.nInner * 4 },
    { name: 'attention scores (one layer)', bytes: batch * config.nHead * sequence * sequence * 4 },
  ],
  // What graph.ts allocates for a micro-batch (N = batch·sequence rows), grouped by what it is.
  trainingActivations: ({ nLayer: L, nEmbd: E, nInner: I, nHead: H }, batch, sequence) => {
    const N = batch * sequence;
    return [
      { name: 'residual stream and LayerNorm outputs', bytes: (4 * L + 2) * N * E * 4 },
      { name: 'attention q, k, v and context', bytes: 4 * L * N * E * 4 },
      { name: 'attention probabilities', bytes: (L + 1) * batch * H * sequence * sequence * 4 },
      { name: 'MLP activations (fc and GELU)', bytes: 2 * L * N * I * 4 },
      { name: "the backward's gradient buffers", bytes: (6 * N * E + 2 * N * I) * 4 },
      { name: 'LayerNorm statistics', bytes: (4 * L + 2) * N * 4 },
    ];
  },
  buildDecoder: (config, weights) => buildGpt2Decoder(config, weights),
  weightFeeds: gpt2WeightFeedsFromGpu,
  prepareTraining: prepareGpt2Training,
  createTrainingGraph: (device, config, weights) => new Gpt2Graph(device, config, weights),
};
