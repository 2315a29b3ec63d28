/** What the page shows about loaded models, sampled completions and scored tokens. */

export type ModelRole = 'student' | 'teacher';

/** What the UI shows about a loaded model folder. */
export interface ModelSummary {
  role: ModelRole;
  label: string;
  modelType: string;
  /** Parameters of a GPT-2 family model (null for other decoders). */
  parameters: number | null;
  vocabSize: number;
  /** True when the folder has trainable GPT-2 family weights (model.safetensors). */
  trainable: boolean;
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
  teacherTop: { id: number; text: string; logprob: number }[];
  problems: string[];
}
