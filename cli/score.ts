/** `opd-lab score`: per-token log-probs and divergences of a completion, student vs teacher. */
import type { Command } from './main';
import { cliDevice } from './device';
import { readModelFolder } from '../workers/models/folder';
import { assertSameTokenizer } from '../workers/models/tokenizer';
import { dirSource } from '../workers/node/fs-source';
import { openScoringSession } from '../workers/scoring/forward';
import { scoreCompletions } from '../workers/scoring/scorer';
import { checkGpt2Fits } from '../workers/models/memory';

export const scoreCommand: Command = {
  summary: 'score a completion token by token: student and teacher log-probs, KLs, the teacher’s top tokens',
  options: {
    student: { kind: 'string', required: true, help: 'student model folder' },
    teacher: { kind: 'string', required: true, help: 'teacher model folder (same tokenizer)' },
    prompt: { kind: 'string', required: true, help: 'the prompt text' },
    completion: { kind: 'string', required: true, help: 'the completion text to score' },
    'top-k': { kind: 'int', default: 5, min: 0, max: 20, help: 'teacher tokens to list per position' },
    temperature: { kind: 'number', default: 1, min: 0.001, max: 1000, help: 'softmax temperature of both models' },
    json: { kind: 'flag', help: 'print JSON' },
  },
  async run(o) {
    const student = await readModelFolder(await dirSource(String(o.student)));
    const teacher = await readModelFolder(await dirSource(String(o.teacher)));
    for (const warning of assertSameTokenizer(student.tokenizer, teacher.tokenizer)) console.error(`opd-lab: warning: ${warning}`);
    const tok = student.tokenizer;
    const promptIds = tok.encode(String(o.prompt));
    const completionIds = tok.encode(String(o.completion), { addSpecialTokens: false });
    const device = await cliDevice();
    const length = promptIds.length + completionIds.length;
    for (const m of [student, teacher]) if (m.gpt2) checkGpt2Fits(m.gpt2, 1, length, device.limits, m.label);
    const s = await openScoringSession(device, student.onnx, `${student.label}/onnx/model.onnx`);
    const t = await openScoringSession(device, teacher.onnx, `${teacher.label}/onnx/model.onnx`);
    try {
      const [scored] = await scoreCompletions(device, s, t, [{ promptIds, completionIds }], { topK: Number(o['top-k']), temperature: Number(o.temperature) }, tok.eosTokenId ?? 0);
      const tokens = scored.map((x) => ({
        id: x.id,
        text: tok.tokenText(x.id),
        studentLogprob: x.studentLogprob,
        teacherLogprob: x.teacherLogprob,
        sampledKL: x.sampledKL,
        reverseKL: x.reverseKL,
        forwardKL: x.forwardKL,
        teacherTop: x.teacherTop.map((c) => ({ id: c.id, text: tok.tokenText(c.id), logprob: c.logprob })),
        ...(x.problems.length ? { problems: x.problems } : {}),
      }));
      const mean = (k: 'reverseKL' | 'sampledKL') => tokens.reduce((a, x) => a + x[k], 0) / tokens.length;
      const result = { promptIds, tokens, meanReverseKL: mean('reverseKL'), meanSampledKL: mean('sampledKL') };
      if (o.json) console.log(JSON.stringify(result, null, 2));
      else {
        for (const x of tokens) {
          const top = x.teacherTop.map((c) => `${JSON.stringify(c.text)} ${c.logprob.toFixed(2)}`).join(', ');
          console.log(`${JSON.stringify(x.text).padEnd(10)} KL ${x.reverseKL.toFixed(4).padStart(8)}  k ${x.sampledKL.toFixed(3).padStart(7)}  teacher wanted: ${top}`);
        }
        console.log(`mean reverse KL ${result.meanReverseKL.toFixed(4)}, mean sampled KL ${result.meanSampledKL.toFixed(4)}`);
      }
    } finally {
      await s.release();
      await t.release();
    }
  },
};
