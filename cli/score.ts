/** `opd-lab score`: per-token log-probs and divergences of a completion, student vs teacher. */
import type { Command } from './main';
import { cliDevice } from './device';
import { DTYPE_HELP, folderOptions, openModel } from './models';
import { loadModel, releaseModel, scoreText } from '../workers/engine/inference';
import { scoreChat, userMessage } from '../workers/engine/chat';
import type { ChatRenderingSummary } from '../workers/protocol';
import { UsageError } from './args';

export const scoreCommand: Command = {
  summary: 'score a completion token by token: student and teacher log-probs, KLs, the teacher’s top tokens',
  options: {
    student: { kind: 'string', required: true, help: 'student model folder, or a Hugging Face id ORG/NAME[@REVISION]' },
    teacher: { kind: 'string', required: true, help: 'teacher model folder or Hugging Face id (same tokenizer)' },
    prompt: { kind: 'string', required: true, help: 'the prompt text (with --chat, the user message)' },
    chat: { kind: 'flag', help: "the prompt is a user message: each model reads it rendered with its own chat template (the teacher with its own), and when the two renderings differ the cost of feeding the teacher the student's is measured" },
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
      const chat = Boolean(o.chat);
      if (chat && Number(o.temperature) !== 1) throw new UsageError('--chat scores at temperature 1 (the mismatch cost is defined there): drop --temperature or --chat');
      const { warnings, ...r } = chat
        ? await scoreChat(device, student, teacher, userMessage(String(o.prompt)), String(o.completion), { topK: Number(o['top-k']) })
        : await scoreText(device, student, teacher, String(o.prompt), String(o.completion), { topK: Number(o['top-k']), temperature: Number(o.temperature) });
      for (const w of warnings) console.error(`opd-lab: warning: ${w}`);
      const tokens = r.tokens.map(({ problems, ...x }) => ({ ...x, ...(problems.length ? { problems } : {}) }));
      if (o.json) console.log(JSON.stringify({ ...r, tokens }, null, 2));
      else {
        for (const x of tokens) {
          const top = x.teacherTop.map((c) => `${JSON.stringify(c.text)} ${c.logprob.toFixed(2)}`).join(', ');
          console.log(`${JSON.stringify(x.text).padEnd(10)} KL ${x.reverseKL.toFixed(4).padStart(8)}  k ${x.sampledKL.toFixed(3).padStart(7)}  teacher wanted: ${top}`);
        }
        console.log(`mean reverse KL ${r.meanReverseKL.toFixed(4)}, mean sampled KL ${r.meanSampledKL.toFixed(4)}`);
        if ('chat' in r) for (const line of chatLines(r.chat as ChatRenderingSummary)) console.log(line);
      }
    } finally {
      await releaseModel(student);
      await releaseModel(teacher);
    }
  },
};

/** What `--chat` adds to the text output: each rendering, and the mismatch with its measured cost. */
function chatLines(c: ChatRenderingSummary): string[] {
  const lines = [`student's rendering (${c.studentPromptTokens} tokens): ${JSON.stringify(c.studentPrompt)}`, `teacher's rendering (${c.teacherPromptTokens} tokens): ${JSON.stringify(c.teacherPrompt)}`];
  if (c.same || !c.cost) return [...lines, 'the two chat templates render this conversation identically'];
  const k = c.cost;
  return [
    ...lines,
    `the chat templates differ (from character ${c.firstDifference}): fed the student's rendering, the teacher moves by KL ${k.teacherShiftKL.toFixed(4)} nats per token; the reverse KL is ${k.reverseKLStudentRendering.toFixed(4)} that way against ${k.reverseKLTeacherRendering.toFixed(4)} with each model reading its own template`,
  ];
}
