/**
 * Any decoder-only ONNX that maps input_ids to logits can serve as the teacher: here a bigram
 * model (logits = E[token] · W, no attention_mask, no position_ids, no cache) scores against a
 * GPT-2 student, checked against float64 references of both.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { GraphBuilder } from '../../workers/onnx/graph';
import { buildGpt2Decoder } from '../../workers/models/gpt2/decoder';
import { randomGpt2Params, seededRandom } from '../../workers/models/gpt2/params';
import { Gpt2Reference } from '../reference/gpt2';
import { openScoringSession } from '../../workers/scoring/forward';
import { scoreCompletions } from '../../workers/scoring/scorer';
import { logSoftmax } from '../../workers/sampling/choose';
import { smallGpt2Config } from './fixtures';

const config = smallGpt2Config();
const V = config.vocabSize;
const H = 8;

function bigramModel(embedding: Float32Array, weight: Float32Array): Uint8Array {
  const g = new GraphBuilder('bigram_teacher', 15);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const e = g.initializer('embedding', embedding, [V, H]);
  const w = g.initializer('weight', weight, [H, V]);
  g.op('MatMul', [g.op('Gather', [e, ids], { axis: 0 }), w], {}, 'logits');
  g.output('logits', 'float32', ['batch', 'sequence', V]);
  return g.toBytes();
}

describe('a non-GPT-2 decoder as the teacher', () => {
  const sessions: { release(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.release();
  });

  it('is scored through its input_ids → logits signature alone, matching the references', async () => {
    configureOrt({ numThreads: 1 });
    const device = await testDevice();
    const rng = seededRandom(5);
    const embedding = Float32Array.from({ length: V * H }, () => rng.normal());
    const weight = Float32Array.from({ length: H * V }, () => rng.normal() * 0.5);
    const params = randomGpt2Params(config, { seed: 6, scheme: 'test' });
    const student = await openScoringSession(device, buildGpt2Decoder(config, { kind: 'initializers', params }), 'student.onnx');
    const teacher = await openScoringSession(device, bigramModel(embedding, weight), 'teacher.onnx');
    sessions.push(student, teacher);
    const items = [
      { promptIds: [3, 7, 1], completionIds: [4, 4, 9, 0] },
      { promptIds: [12], completionIds: [2, 5] },
    ];
    const scored = await scoreCompletions(device, student, teacher, items, { topK: 2 });
    const reference = new Gpt2Reference(config, params);
    items.forEach((it, b) => {
      const seq = [...it.promptIds, ...it.completionIds];
      const sLogits = reference.forward(seq);
      it.completionIds.forEach((token, i) => {
        const at = it.promptIds.length - 1 + i;
        const prev = seq[at];
        const tRow = Array.from({ length: V }, (_, v) => {
          let z = 0;
          for (let h = 0; h < H; h++) z += embedding[prev * H + h] * weight[h * V + v];
          return z;
        });
        const s = logSoftmax(sLogits[at]);
        const q = logSoftmax(tRow);
        let rev = 0;
        for (let v = 0; v < V; v++) rev += Math.exp(s[v]) * (s[v] - q[v]);
        const got = scored[b][i];
        // Tolerances as in cli.test.ts: log-probs 2e-4, KLs 5e-4 (logits within 1e-4 of float64).
        expect(got.id).toBe(token);
        expect(Math.abs(got.teacherLogprob - q[token])).toBeLessThanOrEqual(2e-4);
        expect(Math.abs(got.studentLogprob - s[token])).toBeLessThanOrEqual(2e-4);
        expect(Math.abs(got.reverseKL - rev)).toBeLessThanOrEqual(5e-4);
        expect(got.problems).toEqual([]);
      });
    });
  });
});
