/**
 * One forward pass of any decoder-only ONNX model over whole sequences, logits left on the GPU.
 * Sequences of unequal length are right-padded (masked): position i of every row is token i, so
 * logits at [row, i] predict token i+1. Feeds are built from what the model declares: input_ids,
 * and when present attention_mask, position_ids and an empty KV cache (past_key_values.*).
 */
import { createSession, float16Refusal, ort } from '../ort/runtime';
import { emptyPast as emptyPastOf, int64Tensor, logitsAsFloat32, pastTypeOf, USE_CACHE_BRANCH, useCacheBranchTensor } from '../ort/decoder-io';
import { createStorageBuffer } from '../gpu/buffers';

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
  return emptyPastOf(pastTypeOf(session), [rows, shape[1], 0, shape[3]]);
}

/**
 * `device`: where float16 logits (onnx-community's fp16/q4f16 graphs) are put back as float32 for
 * the divergence kernels; without it such logits are refused.
 */
export async function forwardLogits(session: ort.InferenceSession, sequences: readonly (readonly number[])[], padId = 0, device?: GPUDevice): Promise<ForwardResult> {
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
    else if (name === USE_CACHE_BRANCH) feeds[name] = useCacheBranchTensor(false); // a merged decoder, no past
    else throw new ForwardError(`the model needs an input the lab cannot provide for scoring: ${name}`);
  }
  const outputs = await session.run(feeds);
  for (const [name, tensor] of Object.entries(outputs)) if (name !== 'logits') tensor.dispose();
  let logits = outputs.logits;
  if (logits.type === 'float16') {
    if (!device) {
      logits.dispose();
      throw new ForwardError('the model gives float16 logits (an fp16 or q4f16 graph), which this scoring path does not convert yet: load it with dtype fp32, q4 or quantized');
    }
    // A copy as float32 on the GPU (through the CPU: the lab's device may lack shader-f16).
    const values = (await logitsAsFloat32(logits)).data as Float32Array;
    const buffer = createStorageBuffer(device, values, 'float32 logits of a float16 graph');
    logits = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: outputs.logits.dims, download: async () => values, dispose: () => buffer.destroy() });
  }
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
  let session: ort.InferenceSession;
  try {
    session = await createSession(device, onnx, { outputsOnGpu: true, logSeverityLevel: 3 });
  } catch (e) {
    throw new ForwardError(`${file} is not a loadable ONNX model (onnxruntime: ${e instanceof Error ? e.message : String(e)})`);
  }
  const logits = session.outputMetadata.find((m) => m.name === 'logits');
  const f16 = pastTypeOf(session) === 'float16' || (logits?.isTensor && logits.type === 'float16') ? float16Refusal(device) : null;
  if (f16) {
    await session.release();
    throw new ForwardError(`${file} ${f16}`);
  }
  return session;
}
