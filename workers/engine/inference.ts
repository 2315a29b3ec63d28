/**
 * Model folders loaded on the lab's device, and the two inference passes on them: sampling from
 * the student and scoring a completion, student against teacher. The lab worker and the CLI both
 * use these, so the page and the terminal give the same numbers.
 */
import type { DrawnTaskPrompt, ModelRole, ModelSummary, SampledCompletion, ScoredTokenSummary, TaskVerdict } from '../protocol';
import type { ort } from '../ort/runtime';
import { ONNX_DTYPE_FILES, readModelFolder, type ModelFolder, type ReadFolderOptions } from '../models/folder';
import type { ModelSource } from '../models/source';
import { assertSameTokenizer, assertWritable, type LabTokenizer } from '../models/tokenizer';
import { checkModelFits } from '../models/memory';
import type { DecoderSession } from '../models/decoder-session';
import { decoderRunner, openGraphSamplingSession, openSamplingSession } from '../sampling/runner';
import { SamplingError, sampleCompletions, type SampledModel, type TokenEvent } from '../sampling/sampler';
import { graphContextOf, graphSamplingConfig } from '../models/graph-config';
import type { SamplingOptions } from '../sampling/choose';
import { openScoringSession } from '../scoring/forward';
import { scoreCompletions, type ScoredToken } from '../scoring/scorer';
import { builtInTask, TASK_NAMES, type TaskInfo } from '../tasks/registry';

export interface LoadedModel {
  folder: ModelFolder;
  summary: ModelSummary;
  sampling?: DecoderSession;
  scoring?: ort.InferenceSession;
}

/** `options`: which ONNX variant of an onnx-community folder runs (dtype), and whether the adapter has shader-f16. */
export async function loadModel(source: ModelSource, role: ModelRole, options: ReadFolderOptions = {}): Promise<LoadedModel> {
  const folder = await readModelFolder(source, options);
  const vocab = Number(folder.config?.vocabSize ?? folder.rawConfig.vocab_size ?? folder.tokenizer.vocab.length);
  return {
    folder,
    summary: {
      role,
      label: folder.label,
      modelType: String(folder.rawConfig.model_type ?? 'unknown'),
      parameters: folder.family && folder.config ? folder.family.countParameters(folder.config) : null,
      architecture: folder.family && folder.config ? folder.family.architecture(folder.config) : null,
      vocabSize: vocab,
      trainable: folder.weights !== null,
      onnx: folder.onnxDtype ? { file: ONNX_DTYPE_FILES[folder.onnxDtype], dtype: folder.onnxDtype } : null,
    },
  };
}

export async function releaseModel(model: LoadedModel | undefined): Promise<void> {
  await model?.sampling?.session.release();
  await model?.scoring?.release();
}

export interface SampleParams {
  prompt: string;
  /** Tokenize the prompt with the tokenizer's special tokens (default true); false for a prompt rendered by a chat template, which writes them itself. */
  addSpecialTokens?: boolean;
  n: number;
  maxTokens: number;
  sampling: SamplingOptions;
  seed: number;
  /**
   * Token ids every completion starts with (a branch: the student's tokens up to a position, then
   * one it did not write); the student samples up to `maxTokens` more after them. Their log-probs
   * are NaN in the result (they were not sampled). Ending with the end of text: nothing is sampled.
   */
  forced?: readonly number[];
}

export async function sampleText(
  device: GPUDevice,
  model: LoadedModel,
  params: SampleParams,
  onToken?: (e: TokenEvent, text: string) => void,
): Promise<{ promptIds: number[]; completions: SampledCompletion[] }> {
  const { folder } = model;
  const tok = folder.tokenizer;
  const promptIds = tok.encode(params.prompt, { addSpecialTokens: params.addSpecialTokens ?? true });
  const forced = [...(params.forced ?? [])];
  const vocab = Number(folder.config?.vocabSize ?? folder.tokenizer.vocab.length);
  const badForced = forced.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
  if (badForced !== undefined) throw new SamplingError(`the forced start of the completion has token id ${badForced}, outside the student's vocabulary (0..${vocab - 1})`);
  let config: SampledModel & { eosTokenId?: number };
  if (folder.config) {
    config = folder.config;
    checkModelFits(folder.config, params.n, Math.min(config.nPositions, promptIds.length + params.maxTokens), device.limits, folder.label);
    model.sampling ??= await openSamplingSession(device, folder.config, folder.onnx, folder.onnxLabel);
  } else {
    // A model of no family the lab knows: the KV layout from its graph, the context and EOS from
    // its folder (no memory estimate: the lab does not know its architecture).
    graphContextOf(folder);
    model.sampling ??= await openGraphSamplingSession(device, folder.onnx, folder.onnxLabel);
    config = graphSamplingConfig(folder, model.sampling.graphVocabSize);
  }
  const eosTokenId = tok.eosTokenId ?? config.eosTokenId ?? null;
  // A forced start that already ends the completion leaves nothing to sample.
  const ended = forced.length > 0 && eosTokenId !== null && forced[forced.length - 1] === eosTokenId;
  const completions = ended
    ? Array.from({ length: params.n }, () => ({ tokens: [] as number[], logprobs: [] as number[], finish: 'eos' as const }))
    : await sampleCompletions(
        decoderRunner(config, model.sampling),
        // The forced tokens are read as the prompt's continuation: the KV cache holds them like the prompt.
        { prompts: [[...promptIds, ...forced]], n: params.n, maxTokens: params.maxTokens, sampling: params.sampling, seed: params.seed, eosTokenId },
        onToken && ((e) => onToken(e, tok.tokenText(e.token))),
      );
  return {
    promptIds,
    completions: completions.map((c) => {
      const tokens = [...forced, ...c.tokens];
      return { tokens, text: tok.decode(tokens, { skipSpecialTokens: true }), logprobs: [...forced.map(() => NaN), ...c.logprobs], finish: c.finish };
    }),
  };
}

/** The built-in task a model folder names (config.json `task`, with its hints), or null. */
export function folderTask(model: LoadedModel | undefined): TaskInfo | null {
  const name = model?.folder.rawConfig.task;
  if (typeof name !== 'string' || !(TASK_NAMES as readonly string[]).includes(name)) return null;
  try {
    return builtInTask(name, model!.folder.rawConfig);
  } catch {
    return null;
  }
}

/** How many of a task's held-out prompts `task.draw` draws among. */
export const DRAWN_HELD_OUT = 256;

/** The `index`-th prompt of the task's held-out set (wrapped around), with how the task writes things. */
export function drawTaskPrompt(info: TaskInfo, index: number): DrawnTaskPrompt {
  const { task } = info;
  const prompts = task.evalPrompts(DRAWN_HELD_OUT);
  if (prompts.length === 0) throw new Error(`the task '${task.name}' has no held-out prompts to draw from`);
  const i = ((Math.trunc(index) % prompts.length) + prompts.length) % prompts.length;
  const prompt = prompts[i];
  const expected = task.expected?.(prompt) ?? '';
  return {
    task: task.name,
    prompt,
    index: i,
    heldOut: prompts.length,
    format: task.formatNote ?? null,
    expected,
    expectedReadable: task.readable ? task.readable(expected) : expected,
    maxTokens: info.maxTokens,
  };
}

/**
 * The verdict of `completion` (decoded text, special tokens dropped) on `prompt` by the task,
 * when the task can judge it: it has a verifier and an expected answer, and the prompt is one of
 * its own (a non-empty expected completion). Otherwise null.
 */
export function taskVerdict(info: TaskInfo | null, prompt: string, completion: string): TaskVerdict | null {
  const task = info?.task;
  if (!task?.verify || !task.expected) return null;
  const expected = task.expected(prompt);
  if (!expected) return null;
  const v = task.verify(prompt, completion);
  const readable = (text: string) => (task.readable ? task.readable(text) : text);
  return {
    task: task.name,
    correct: v.correct,
    ...(v.correct || v.reason === undefined ? {} : { reason: v.reason }),
    expected,
    expectedReadable: readable(expected),
    got: completion,
    gotReadable: readable(completion),
  };
}

export interface ScoreResult {
  promptIds: number[];
  tokens: ScoredTokenSummary[];
  meanReverseKL: number;
  meanSampledKL: number;
  /** Differences between the tokenizers that do not stop scoring (special tokens, chat templates). */
  warnings: string[];
}

export async function scoreText(
  device: GPUDevice,
  student: LoadedModel,
  teacher: LoadedModel,
  prompt: string,
  completion: string,
  options: { topK: number; temperature?: number },
): Promise<ScoreResult> {
  const warnings = assertSameTokenizer(student.folder.tokenizer, teacher.folder.tokenizer);
  const tok = student.folder.tokenizer;
  // Text the tokenizer can only write as <unk> is refused here, not scored as <unk>.
  assertWritable(tok, prompt, 'the prompt');
  assertWritable(tok, completion, 'the completion');
  const promptIds = tok.encode(prompt);
  const completionIds = tok.encode(completion, { addSpecialTokens: false });
  if (completionIds.length === 0) throw new Error('the completion is empty: there is nothing to score');
  for (const m of [student, teacher]) if (m.folder.config) checkModelFits(m.folder.config, 1, promptIds.length + completionIds.length, device.limits, m.folder.label);
  student.scoring ??= await openScoringSession(device, student.folder.onnx, student.folder.onnxLabel);
  teacher.scoring ??= await openScoringSession(device, teacher.folder.onnx, teacher.folder.onnxLabel);
  const [scored] = await scoreCompletions(device, student.scoring, teacher.scoring, [{ promptIds, completionIds }], { topK: options.topK, temperature: options.temperature ?? 1 }, tok.eosTokenId ?? 0);
  const tokens = summarizeScored(tok, scored);
  const mean = (k: 'reverseKL' | 'sampledKL') => tokens.reduce((a, x) => a + x[k], 0) / tokens.length;
  return { promptIds, tokens, meanReverseKL: mean('reverseKL'), meanSampledKL: mean('sampledKL'), warnings };
}

/** Scored tokens as the protocol carries them: each with its text, and its teacher's top-k with theirs. */
export function summarizeScored(tok: LabTokenizer, scored: readonly ScoredToken[]): ScoredTokenSummary[] {
  return scored.map((x) => ({
    id: x.id,
    text: tok.tokenText(x.id),
    studentLogprob: x.studentLogprob,
    teacherLogprob: x.teacherLogprob,
    sampledKL: x.sampledKL,
    reverseKL: x.reverseKL,
    forwardKL: x.forwardKL,
    teacherTop: x.teacherTop.map((c) => ({ id: c.id, text: tok.tokenText(c.id), logprob: c.logprob, studentLogprob: c.studentLogprob })),
    problems: x.problems,
  }));
}
