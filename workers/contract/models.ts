/** What the page shows about loaded models, sampled completions and scored tokens. */
import type { OnnxDtype } from './dtypes';

export type ModelRole = 'student' | 'teacher';

/** The shape of a model of a family the lab knows, for people. */
export interface ModelArchitecture {
  /** The family's name: "GPT-2", "Llama", "Qwen2", "Qwen3". */
  family: string;
  layers: number;
  hidden: number;
  /** Query heads, and the key/value heads they share (equal without grouped-query attention). */
  heads: number;
  kvHeads: number;
  headDim: number;
  /** The MLP's inner width. */
  intermediate: number;
  /** How positions enter, in words: "learned (1024 positions)", "rotary (θ 10,000)", … */
  positions: string;
  /** The output head is the embedding matrix. */
  tiedHead: boolean;
  /** What else sets it apart, in words ("q/k/v biases", "q/k RMSNorm"); often empty. */
  extras: string[];
  parameters: number;
}

/** What the UI shows about a loaded model folder. */
export interface ModelSummary {
  role: ModelRole;
  label: string;
  modelType: string;
  /** Parameters of a model of a family the lab knows (null for other decoders). */
  parameters: number | null;
  /** Its architecture, for a family the lab knows (null for other decoders). */
  architecture: ModelArchitecture | null;
  vocabSize: number;
  /** True when the folder has trainable weights of a family the lab knows (model.safetensors). */
  trainable: boolean;
  /**
   * The graph that runs it: the folder's ONNX file (its path in the folder) and dtype, or null when
   * the lab builds the family's decoder from model.safetensors.
   */
  onnx: { file: string; dtype: OnnxDtype } | null;
}

export interface SampledCompletion {
  tokens: number[];
  text: string;
  logprobs: number[];
  finish: 'eos' | 'length';
}

export interface ScoredTokenSummary {
  id: number;
  text: string;
  studentLogprob: number;
  teacherLogprob: number;
  sampledKL: number;
  reverseKL: number;
  forwardKL: number;
  /** The teacher's k most likely next tokens: its log-prob of each, and the student's of the same token. */
  teacherTop: { id: number; text: string; logprob: number; studentLogprob: number }[];
  problems: string[];
}

/**
 * What a template mismatch costs, measured on one completion y (tokens y_1..y_n) of a chat prompt
 * rendered with the student's template (x_S) and with the teacher's (x_T); p_S is the student,
 * p_T the teacher, each a next-token distribution over the vocabulary; every number is a mean
 * over the n completion tokens, in nats per token (workers/chat/README.md says why these).
 */
export interface TemplateMismatchCost {
  tokens: number;
  /** mean_t KL(p_T(·|x_S, y<t) ‖ p_T(·|x_T, y<t)): how far the teacher moves when fed the student's rendering instead of its own. */
  teacherShiftKL: number;
  /** mean_t KL(p_S(·|x_S, y<t) ‖ p_T(·|x_S, y<t)): the reverse KL a recipe gets that feeds the teacher the student's rendering. */
  reverseKLStudentRendering: number;
  /** mean_t KL(p_S(·|x_S, y<t) ‖ p_T(·|x_T, y<t)): the reverse KL with each model reading its own template. */
  reverseKLTeacherRendering: number;
  /** mean_t |log p_T(y_t|x_S, y<t) − log p_T(y_t|x_T, y<t)|: how much opd-sampled's per-token signal moves. */
  meanAbsTeacherLogprobShift: number;
}

/** A chat prompt as each model reads it, and (when the two differ) what the difference costs. */
export interface ChatRenderingSummary {
  /** The conversation rendered with the student's template (what the student samples and is scored on). */
  studentPrompt: string;
  /** The same conversation rendered with the teacher's template. */
  teacherPrompt: string;
  studentPromptTokens: number;
  teacherPromptTokens: number;
  same: boolean;
  /** The first character where they differ; null when the same. */
  firstDifference: number | null;
  /** Measured on the scored completion when the renderings differ; null when they are the same. */
  cost: TemplateMismatchCost | null;
}

/** Bytes of a model's files as they come from a Hub (or its cache): one report per chunk, one per file read from the cache. */
export interface HubProgress {
  /** The model as the person named it (ORG/NAME or ORG/NAME@REVISION). */
  model: string;
  file: string;
  /** Bytes of this file done; equal to `total` when `done`. */
  loaded: number;
  /** The file's size: Content-Length while downloading, the recorded size from the cache; null when the server did not say. */
  total: number | null;
  /** True when the file came from the cache (one report, done at once). */
  fromCache: boolean;
  /** True on the file's last report. */
  done: boolean;
  /** Bytes done over every file of this model read so far (from the cache or the network). */
  folderLoaded: number;
  /** Bytes known over those files: the sizes of the finished ones and the totals of the one under way. */
  folderTotal: number;
}
