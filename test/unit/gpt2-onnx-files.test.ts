/**
 * The GPT-2 decoder model.onnx as ORT sees it: where its nodes run (read from ORT's verbose
 * session log), and what a corrupt or mismatched model.onnx produces (a prompt error naming the
 * file, never a hang).
 */
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import { GraphBuilder } from '../../workers/onnx/graph';
import { interopModel } from '../../workers/selfcheck/interop';
import type { Gpt2Config } from '../../workers/models/gpt2/config';
import { randomGpt2Params, seededRandom } from '../../workers/models/gpt2/params';
import { createDecoderSession, ModelFileError } from '../../workers/models/decoder-session';

const CONFIG: Gpt2Config = {
  modelType: 'gpt2', nLayer: 2, nHead: 2, nEmbd: 16, nInner: 64, nPositions: 16, vocabSize: 61,
  layerNormEpsilon: 1e-5, activationFunction: 'gelu_new',
};

/**
 * onnxruntime-web's wasm glue writes its log in Node with fs.writeSync(1 | 2, line), looking the
 * function up on the `fs` module at each call; while `captureOrtLog` runs, ORT's lines are
 * collected here instead of printed.
 */
async function captureOrtLog<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const original = fs.writeSync;
  const patched = (fd: number, data: unknown, ...rest: unknown[]) => {
    if ((fd === 1 || fd === 2) && typeof data === 'string' && data.includes('onnxruntime')) {
      lines.push(...data.split('\n').filter(Boolean));
      return data.length;
    }
    return (original as (...args: unknown[]) => number)(fd, data, ...rest);
  };
  fs.writeSync = patched as typeof fs.writeSync;
  try {
    return { result: await fn(), lines };
  } finally {
    fs.writeSync = original;
  }
}

/** "Node(s) placed on [EP]. Number of nodes: n" followed by "  OpType (name)" lines → op types per EP. */
function parsePlacement(lines: string[]): Map<string, string[]> {
  const placement = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines) {
    const header = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    if (header) {
      placement.set(header[1], (current = []));
      continue;
    }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s{3}(\w+) \(/.exec(line);
    if (node && current) current.push(node[1]);
    else if (!/VerifyEachNodeIsAssignedToAnEp/.test(line)) current = undefined;
  }
  return placement;
}

/**
 * The only nodes allowed off the GPU: the small int64 subgraph that turns the input shapes into
 * the causal mask and the logits' shape. ORT places shape-related ops on the CPU on purpose
 * ("ORT explicitly assigns shape related ops to CPU to improve perf"); they touch a few dozen
 * integers, never activations.
 */
const CPU_SHAPE_OPS = new Set(['Shape', 'Gather', 'Sub', 'Range', 'Unsqueeze', 'LessOrEqual', 'Cast', 'Concat']);
const MAX_CPU_NODES = 11;

const countBy = (list: string[]) => Object.fromEntries([...new Set(list)].sort().map((op) => [op, list.filter((o) => o === op).length]));

describe('GPT-2 decoder model.onnx in onnxruntime-web', () => {
  let device: GPUDevice;
  beforeAll(async () => {
    device = await testDevice();
    configureOrt({ numThreads: 1 });
  });

  for (const kind of ['initializers', 'inputs'] as const) {
    it(`places every compute node on the WebGPU EP (weights as ${kind})`, async () => {
      for (const nLayer of [1, 3]) {
        const config = { ...CONFIG, nLayer };
        const params = randomGpt2Params(config, { seed: 1, scheme: 'test' });
        const model = buildGpt2Decoder(config, kind === 'initializers' ? { kind, params } : { kind });
        const { result: { session }, lines } = await captureOrtLog(() => createDecoderSession(device, config, model, { logSeverityLevel: 0 }));
        await session.release();
        const placement = parsePlacement(lines);
        const gpu = placement.get('WebGpuExecutionProvider') ?? [];
        const cpu = placement.get('CPUExecutionProvider') ?? [];
        console.info(`[gpt2-onnx] weights as ${kind}, n_layer ${nLayer}: WebGPU ${gpu.length} nodes ${JSON.stringify(countBy(gpu))}; CPU ${cpu.length} nodes ${JSON.stringify(countBy(cpu))}`);
        expect(gpu.length).toBeGreaterThan(10 * nLayer);
        const onGpu = countBy(gpu);
        // Per layer: 6 MatMuls (c_attn, QKᵀ, PV, attn c_proj, c_fc, mlp c_proj), a masked softmax and
        // the two present Concats; once: both embedding Gathers and the LM head's Gemm.
        expect(onGpu).toMatchObject({ MatMul: 6 * nLayer, Softmax: nLayer, Where: nLayer, Gather: 2, Gemm: 1 });
        expect(onGpu.Concat).toBeGreaterThanOrEqual(2 * nLayer);
        expect([...placement.keys()].sort()).toEqual(['CPUExecutionProvider', 'WebGpuExecutionProvider']);
        expect(cpu.filter((op) => !CPU_SHAPE_OPS.has(op))).toEqual([]);
        expect(cpu.length).toBeLessThanOrEqual(MAX_CPU_NODES); // independent of n_layer: nothing per layer runs on the CPU
      }
    });
  }

  describe('a corrupt or mismatched model.onnx is a prompt, clear error naming the file', () => {
    const file = 'models/student/onnx/model.onnx';
    const good = buildGpt2Decoder(CONFIG, { kind: 'inputs' });
    const rng = seededRandom(4);
    const cases: [what: string, bytes: () => Uint8Array, message: RegExp][] = [
      ['empty file', () => new Uint8Array(0), /is empty/],
      ['random bytes', () => Uint8Array.from({ length: 4096 }, () => Math.floor(rng.uniform() * 256)), /is not a loadable ONNX model \(onnxruntime: .+\)/],
      ['truncated model', () => good.subarray(0, Math.floor(good.length * 0.6)), /is not a loadable ONNX model/],
      ['a JSON file saved as model.onnx', () => new TextEncoder().encode('{"model_type": "gpt2"}'), /is not a loadable ONNX model/],
      ['another ONNX model', () => interopModel(8), /is not a GPT-2 decoder for this config\.json \(n_layer 2\): it lacks input\(s\) input_ids, attention_mask, position_ids, past_key_values\.0\.key…; lacks output\(s\) logits/],
      ['an unknown operator', () => {
        const g = new GraphBuilder('broken');
        g.op('NoSuchOp', [g.input('x', 'float32', [2])], {}, 'y');
        g.output('y', 'float32', [2]);
        return g.toBytes();
      }, /is not a loadable ONNX model \(onnxruntime: .*NoSuchOp/],
      ['a GPT-2 decoder for another vocabulary', () => buildGpt2Decoder({ ...CONFIG, vocabSize: 50 }, { kind: 'initializers', params: randomGpt2Params({ ...CONFIG, vocabSize: 50 }, { seed: 2, scheme: 'hf' }) }), /declares logits as float32 \[batch_size, sequence_length, 50\], the config implies float32 \[\?, \?, 61\]/],
      ['a GPT-2 decoder for another n_head', () => buildGpt2Decoder({ ...CONFIG, nHead: 4 }, { kind: 'inputs' }), /declares past_key_values\.0\.key as float32 \[batch_size, 4, past_sequence_length, 4\], the config implies float32 \[\?, 2, \?, 8\]/],
      ['a GPT-2 decoder for another n_layer', () => buildGpt2Decoder({ ...CONFIG, nLayer: 1 }, { kind: 'inputs' }), /lacks input\(s\) past_key_values\.1\.key, past_key_values\.1\.value; lacks output\(s\) present\.1\.key, present\.1\.value/],
    ];
    for (const [what, bytes, message] of cases) {
      it(what, async () => {
        const started = performance.now();
        const error = await createDecoderSession(device, CONFIG, bytes(), { file, logSeverityLevel: 4 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ModelFileError);
        expect((error as Error).message.startsWith(`${file}: `)).toBe(true);
        expect((error as Error).message).toMatch(message);
        console.info(`[gpt2-onnx] ${what}: ${(error as Error).message.slice(0, 240)}`);
        expect(performance.now() - started).toBeLessThan(20_000); // an answer, not a hang
      });
    }
  });
});
