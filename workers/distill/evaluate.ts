/**
 * Held-out accuracy of a model folder on a task: greedy answers to the task's eval prompts,
 * checked by its verifier. The folder's own ONNX runs (weights as initializers), so any folder of
 * a registered model family can be evaluated, trained by the lab or not.
 */
import type { ModelFolder } from '../models/folder';
import { familyNames } from '../models/registry';
import { decoderRunner, openSamplingSession } from '../sampling/runner';
import { sampleCompletions, type Completion, type DecoderRunner } from '../sampling/sampler';
import type { LabTokenizer } from '../models/tokenizer';
import type { LabTask } from '../tasks/task';

export interface FolderEvaluation {
  task: string;
  prompts: number;
  correct: number;
  accuracy: number;
  examples: { prompt: string; completion: string; correct: boolean; reason?: string }[];
}

/** One greedy answer: its prompt (text and ids) and the sampler's completion. */
export interface GreedySample {
  prompt: string;
  promptIds: number[];
  completion: Completion;
}

/**
 * Greedy answers of `runner`'s model to the task's first `count` eval prompts, `batch` prompts at
 * a time, verified; with the answers themselves (what the run scores against its teacher).
 */
export async function evaluateGreedy(
  runner: DecoderRunner,
  tokenizer: LabTokenizer,
  eosTokenId: number | null,
  task: LabTask,
  count: number,
  maxTokens: number,
  batch = 64,
): Promise<{ evaluation: FolderEvaluation; samples: GreedySample[] }> {
  const verify = task.verify;
  if (!verify) throw new Error(`${task.name} has no verifier: its held-out answers have no accuracy (use greedyAnswers)`);
  const prompts = task.evalPrompts(count);
  const examples: FolderEvaluation['examples'] = [];
  const samples: GreedySample[] = [];
  let correct = 0;
  for (let start = 0; start < prompts.length; start += batch) {
    const chunk = prompts.slice(start, start + batch);
    for (const s of await greedyAnswers(runner, tokenizer, eosTokenId, chunk, maxTokens, batch)) {
      const completion = tokenizer.decode(s.completion.tokens, { skipSpecialTokens: true });
      const verdict = verify(s.prompt, completion);
      if (verdict.correct) correct++;
      examples.push({ prompt: s.prompt, completion, correct: verdict.correct, ...(verdict.reason ? { reason: verdict.reason } : {}) });
      samples.push(s);
    }
  }
  return { evaluation: { task: task.name, prompts: prompts.length, correct, accuracy: correct / Math.max(1, prompts.length), examples }, samples };
}

/** Greedy answers of `runner`'s model to `prompts`, `batch` at a time, in order (prompts without a verifier too). */
export async function greedyAnswers(
  runner: DecoderRunner,
  tokenizer: LabTokenizer,
  eosTokenId: number | null,
  prompts: string[],
  maxTokens: number,
  batch = 64,
  /** The prompts already hold their special tokens (rendered chat prompts): add none when encoding. */
  rendered = false,
): Promise<GreedySample[]> {
  const samples: GreedySample[] = [];
  for (let start = 0; start < prompts.length; start += batch) {
    const chunk = prompts.slice(start, start + batch);
    const ids = chunk.map((p) => tokenizer.encode(p, { addSpecialTokens: !rendered }));
    const completions = await sampleCompletions(runner, {
      prompts: ids, n: 1, maxTokens, seed: 0, eosTokenId, sampling: { temperature: 0, topK: 0, topP: 1 },
    });
    for (const c of completions) samples.push({ prompt: chunk[c.promptIndex], promptIds: ids[c.promptIndex], completion: c });
  }
  return samples;
}

/** Greedy answers of `runner`'s model to the task's first `count` eval prompts, verified. */
export async function evaluateRunner(
  runner: DecoderRunner,
  tokenizer: LabTokenizer,
  eosTokenId: number | null,
  task: LabTask,
  count: number,
  maxTokens: number,
  batch = 64,
): Promise<FolderEvaluation> {
  return (await evaluateGreedy(runner, tokenizer, eosTokenId, task, count, maxTokens, batch)).evaluation;
}

/** Held-out accuracy of a model folder, run from its own ONNX. */
export async function evaluateFolder(device: GPUDevice, folder: ModelFolder, task: LabTask, count: number, maxTokens: number, batch = 64): Promise<FolderEvaluation> {
  const config = folder.config;
  if (!config) throw new Error(`${folder.label} is not a ${familyNames()} family model: the lab's sampler runs the decoders of the model families it knows`);
  const decoder = await openSamplingSession(device, config, folder.onnx, folder.onnxLabel);
  try {
    const eos = folder.tokenizer.eosTokenId ?? config.eosTokenId ?? null;
    return await evaluateRunner(decoderRunner(config, decoder), folder.tokenizer, eos, task, count, maxTokens, batch);
  } finally {
    await decoder.session.release();
  }
}
