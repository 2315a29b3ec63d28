/** What the page shows about loaded models, sampled completions and scored tokens. */

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
