/**
 * GPT-2 weights in model.safetensors: reading a checkpoint (ours, or a real HF GPT-2-family
 * one, names normalised, mask buffers dropped) into the lab's parameter map, and writing the
 * parameter map back with HF names and the `{"format": "pt"}` metadata transformers expects.
 */
import type { Gpt2Config } from './config';
import { gpt2ParamSpecs, gpt2ParamsFromCheckpoint, classifyCheckpointName, type Gpt2Params } from './params';
import { readSafetensors, tensorToFloat32, writeSafetensors, type TensorToWrite } from '../safetensors';

/** Reads model.safetensors into float32 parameters checked against the config. */
export function readGpt2Safetensors(config: Gpt2Config, bytes: Uint8Array, file = 'model.safetensors'): Map<string, Float32Array> {
  const { tensors } = readSafetensors(bytes, file);
  const floats: [string, { shape: number[]; data: Float32Array }][] = [];
  for (const [name, tensor] of tensors) {
    if (classifyCheckpointName(name).kind === 'buffer') continue; // causal-mask buffers may be bool/uint8
    floats.push([name, { shape: tensor.shape, data: tensorToFloat32(tensor, name, file) }]);
  }
  return gpt2ParamsFromCheckpoint(config, floats, file);
}

/** Writes the parameters as model.safetensors (float32, spec order, HF names). */
export function writeGpt2Safetensors(config: Gpt2Config, params: Gpt2Params, metadata: Record<string, string> = {}): Uint8Array {
  const entries: [string, TensorToWrite][] = gpt2ParamSpecs(config).map((spec) => {
    const data = params.get(spec.name);
    if (!data) throw new Error(`writeGpt2Safetensors: parameter ${spec.name} is missing`);
    return [spec.name, { dtype: 'F32', shape: spec.shape, data }];
  });
  return writeSafetensors(entries, { format: 'pt', ...metadata });
}
