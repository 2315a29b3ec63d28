/** `opd-lab score`: per-token log-probs and divergences of a completion, student vs teacher. */
import type { Command } from './main';
import { cliDevice } from './device';
import { DTYPE_HELP, folderOptions, openModel } from './models';
import { loadModel, releaseModel, scoreText } from '../workers/engine/inference';

export const scoreCommand: Command = {
  summary: 'score a completion token by token: student and teacher log-probs, KLs, the teacher’s top tokens',
  options: {
    student: { kind: 'string', required: true, help: 'student model folder, or a Hugging Face id ORG/NAME[@REVISION]' },
    teacher: { kind: 'string', required: true, help: 'teacher model folder or Hugging Face id (same tokenizer)' },
    prompt: { kind: 'string', required: true, help: 'the prompt text' },
    completion: { kind: 'string', required: true, help: 'the completion text to score' },
    'top-k': { kind: 'int', default: 5, min: 0, max: 20, help: 'teacher tokens to list per position' },
    temperature: { kind: 'number', default: 1, min: 0.001, max: 1000, help: 'softmax temperature of both models' },
    dtype: { kind: 'string', help: `the student's ${DTYPE_HELP}` },
    'teacher-dtype': { kind: 'string', help: `the teacher's ${DTYPE_HELP}` },
    json: { kind: 'flag', help: 'print JSON' },
  },
  async run(o) {
    const device = await cliDevice();
    const student = await loadModel(await openModel(String(o.student)), 'student', folderOptions(o.dtype, device));
    const teacher = await loadModel(await openModel(String(o.teacher)), 'teacher', folderOptions(o['teacher-dtype'], device, '--teacher-dtype'));
    try {
      const { warnings, ...r } = await scoreText(device, student, teacher, String(o.prompt), String(o.completion), {
        topK: Number(o['top-k']),
        temperature: Number(o.temperature),
      });
      for (const w of warnings) console.error(`opd-lab: warning: ${w}`);
      const tokens = r.tokens.map(({ problems, ...x }) => ({ ...x, ...(problems.length ? { problems } : {}) }));
      if (o.json) console.log(JSON.stringify({ ...r, tokens }, null, 2));
      else {
        for (const x of tokens) {
          const top = x.teacherTop.map((c) => `${JSON.stringify(c.text)} ${c.logprob.toFixed(2)}`).join(', ');
          console.log(`${JSON.stringify(x.text).padEnd(10)} KL ${x.reverseKL.toFixed(4).padStart(8)}  k ${x.sampledKL.toFixed(3).padStart(7)}  teacher wanted: ${top}`);
        }
        console.log(`mean reverse KL ${r.meanReverseKL.toFixed(4)}, mean sampled KL ${r.meanSampledKL.toFixed(4)}`);
      }
    } finally {
      await releaseModel(student);
      await releaseModel(teacher);
    }
  },
};
