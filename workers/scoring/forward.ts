/**
 * One forward pass of any decoder-only ONNX model over whole sequences, logits left on the GPU.
 * Sequences of unequal length are right-padded (masked): position i of every row is token i, so
 * logits at [row, i] predict token i+1. Feeds are built from what the model declares: input_ids,
 * and when present attention_mask, position_ids and an empty KV cache (past_key_values.*).
 */
import { createSession, ort } from '../ort/runtime';
import { int64Tensor } from '../ort/decoder-io';

export class ForwardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForwardError';
  }
}

export interface ForwardResult {
  /** f32 [rows, width, vocab] on the GPU; dispose() when done. */
  logits: ort.Tensor;
  rows: number;
  width: number;
  vocab: number;
}

function emptyPast(session: ort.InferenceSession, name: string, rows: number): ort.Tensor {
  const meta = session.inputMetadata.find((m) => m.name === name);
  const shape = meta && meta.isTensor ? meta.shape : [];
  if (shape.length !== 4 || typeof shape[1] !== 'number' || typeof shape[3] !== 'number') {
    throw new ForwardError(`the model's input ${name} has shape [${shape.join(', ')}]; the lab needs [batch, heads, past, head_dim] with fixed heads and head_dim`);
  }
  return new ort.Tensor('float32', new Float32Array(0), [rows, shape[1], 0, shape[3]]);
}

export async function forwardLogits(session: ort.InferenceSession, sequences: readonly (readonly number[])[], padId = 0): Promise<ForwardResult> {
  if (!session.inputNames.includes('input_ids')) throw new ForwardError(`the model has no input_ids input (its inputs: ${session.inputNames.join(', ')})`);
  if (!session.outputNames.includes('logits')) throw new ForwardError(`the model has no logits output (its outputs: ${session.outputNames.join(', ')})`);
  const rows = sequences.length;
  const width = Math.max(...sequences.map((s) => s.length));
  const ids = sequences.map((s) => [...s, ...new Array<number>(width - s.length).fill(padId)]);
  const mask = sequences.map((s) => [...new Array<number>(s.length).fill(1), ...new Array<number>(width - s.length).fill(0)]);
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) {
    if (name === 'input_ids') feeds[name] = int64Tensor(ids);
    else if (name === 'attention_mask') feeds[name] = int64Tensor(mask);
    else if (name === 'position_ids') feeds[name] = int64Tensor(sequences.map(() => Array.from({ length: width }, (_, i) => i)));
    else if (name.startsWith('past_key_values.')) feeds[name] = emptyPast(session, name, rows);
    else throw new ForwardError(`the model needs an input the lab cannot provide for scoring: ${name}`);
  }
  const outputs = await session.run(feeds);
  for (const [name, tensor] of Object.entries(outputs)) if (name !== 'logits') tensor.dispose();
  const logits = outputs.logits;
  if (logits.location !== 'gpu-buffer') throw new ForwardError(`the logits came back on '${logits.location}', not on the GPU: create the session with every output on the GPU`);
  const dims = logits.dims;
  if (dims.length !== 3 || dims[0] !== rows || dims[1] !== width) {
    logits.dispose();
    throw new ForwardError(`the model's logits have shape [${dims.join(', ')}], expected [${rows}, ${width}, vocab]`);
  }
  return { logits, rows, width, vocab: dims[2] };
}

/** Opens a model folder's ONNX for scoring on the lab's device: every output stays on the GPU. */
export async function openScoringSession(device: GPUDevice, onnx: Uint8Array, file: string): Promise<ort.InferenceSession> {
  if (onnx.byteLength === 0) throw new ForwardError(`${file} is empty`);
  try {
    return await createSession(device, onnx, { outputsOnGpu: true, logSeverityLevel: 3 });
  } catch (e) {
    throw new ForwardError(`${file} is not a loadable ONNX model (onnxruntime: ${e instanceof Error ? e.message : String(e)})`);
  }
}
