/**
 * Model folders loaded on the lab's device, and the two inference passes on them: sampling from
 * the student and scoring a completion, student against teacher. The lab worker and the CLI both
 * use these, so the page and the terminal give the same numbers.
 */
import type { ModelRole, ModelSummary, SampledCompletion, ScoredTokenSummary } from '../protocol';
import type { ort } from '../ort/runtime';
import { ONNX_DTYPE_FILES, readModelFolder, type ModelFolder, type ReadFolderOptions } from '../models/folder';
import type { ModelSource } from '../models/source';
import { assertSameTokenizer, assertWritable, type LabTokenizer } from '../models/tokenizer';
import { checkModelFits } from '../models/memory';
import type { DecoderSession } from '../models/decoder-session';
import { decoderRunner, openGraphSamplingSession, openSamplingSession } from '../sampling/runner';
import { sampleCompletions, type SampledModel, type TokenEvent } from '../sampling/sampler';
import { graphContextOf, graphSamplingConfig } from '../models/graph-config';
import type { SamplingOptions } from '../sampling/choose';
import { openScoringSession } from '../scoring/forward';
import { scoreCompletions, type ScoredToken } from '../scoring/scorer';

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
  const completions = await sampleCompletions(
    decoderRunner(config, model.sampling),
    { prompts: [promptIds], n: params.n, maxTokens: params.maxTokens, sampling: params.sampling, seed: params.seed, eosTokenId: tok.eosTokenId ?? config.eosTokenId ?? null },
    onToken && ((e) => onToken(e, tok.tokenText(e.token))),
  );
  return {
    promptIds,
    completions: completions.map((c) => ({ tokens: c.tokens, text: tok.decode(c.tokens, { skipSpecialTokens: true }), logprobs: c.logprobs, finish: c.finish })),
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
