/**
 * The lab worker's protocol: every command the UI (or the CLI, or a test) can send, and every
 * event the engine answers with. With the plain types and values of workers/contract/ (which it
 * re-exports), this is the whole contract between app/ and workers/: the app imports nothing else.
 *
 * Commands that expect an answer carry a `requestId`; the events answering them echo it.
 * Errors are values: an `error` event with a stable `code` and a sentence a person understands.
 */
import type { AdapterSummary, RuntimeSummary } from './contract/adapter';
import type { LabError } from './contract/errors';
import type { ChatRenderingSummary, HubProgress, ModelRole, ModelSummary, SampledCompletion, ScoredTokenSummary } from './contract/models';
import type { DivergenceSelfCheckReport, InteropReport } from './contract/reports';
import type { PromptSetSummary, PromptTextSource } from './contract/prompts';
import type { EvalMetrics, StepMetrics, TrainExportKind, TrainSetup, TrainStateName } from './contract/run';
import type { ClusterTargets } from './contract/cluster';
import type { BufferCount } from './contract/reports';

export type * from './contract/adapter';
export type * from './contract/errors';
export type * from './contract/models';
export type * from './contract/reports';
export type * from './contract/run';
export type * from './contract/prompts';

/** A model held in the model cache (the Models panel's manager lists them). */
export interface CachedModelSummary {
  /** ORG/NAME. */
  repo: string;
  revision: string;
  files: { file: string; size: number }[];
  /** The files' sizes summed. */
  bytes: number;
}

/**
 * A completion judged by the loaded student's task (its config.json `task`), when the prompt is
 * one of that task's: right or wrong, and what the answer should be, as written and as read.
 */
export interface TaskVerdict {
  /** The task's name ('addition', …). */
  task: string;
  correct: boolean;
  /** The verifier's sentence, when wrong. */
  reason?: string;
  /** The completion the task expects, as the model should write it (without the end of text). */
  expected: string;
  /** The expected completion as a person reads it (addition's units-first "639" is "936"); `expected` when it reads as written. */
  expectedReadable: string;
  /** The judged completion (decoded text), and as a person reads it. */
  got: string;
  gotReadable: string;
}

/** A prompt drawn from the loaded student's task (`task.draw`), with how the task writes things. */
export interface DrawnTaskPrompt {
  task: string;
  prompt: string;
  /** Which prompt of the task's fixed held-out set (never trained on), of `heldOut`. */
  index: number;
  heldOut: number;
  /** How the task's prompts and answers are written, for people; null when the task does not say. */
  format: string | null;
  /** The completion the task expects for this prompt (without the end of text), and as a person reads it. */
  expected: string;
  expectedReadable: string;
  /** New tokens an answer of this task needs at most (a sampling budget). */
  maxTokens: number;
}

// ---------------------------------------------------------------- commands (UI → worker)

/**
 * Which ONNX variant of an onnx-community / transformers.js folder runs: fp32 (onnx/model.onnx),
 * fp16, q4, q4f16 or quantized (model_<dtype>.onnx). Default: fp32 when the folder has it, else the
 * smallest the adapter runs (float16 ones only with shader-f16). A folder of a family the lab knows
 * with model.safetensors runs the lab's own decoder unless a dtype other than fp32 is named.
 */
export interface ModelDtype {
  dtype?: string;
}

export type LabCommand =
  | {
      type: 'init';
      requestId: number;
      /** Where onnxruntime-web's .wasm/.mjs files are served (absolute URL or path ending in '/'). */
      ortWasmPaths?: string;
    }
  | { type: 'selfcheck.interop'; requestId: number; elements?: number }
  /** The divergence kernels against their float64 reference, over the fixed and `seed`'s random cases. */
  | { type: 'selfcheck.divergence'; requestId: number; seed?: number }
  /**
   * Loads a model folder (config.json, tokenizer.json, onnx/model.onnx, …) as student or teacher:
   * from a URL, or from files the person picked (paths relative to the folder).
   */
  | ({ type: 'model.load'; requestId: number; role: ModelRole; url: string } & ModelDtype)
  | ({ type: 'model.load'; requestId: number; role: ModelRole; files: { path: string; file: Blob }[]; label: string } & ModelDtype)
  /**
   * A Hugging Face model id, ORG/NAME[@REVISION], read from `endpoint` (https://huggingface.co
   * when not given: a mirror or a local server may serve) through the model cache (the browser's
   * Cache API): a cached file loads with no request at all. `token` opens gated or private models.
   * Bytes stream as `model.progress` events.
   */
  | ({ type: 'model.load'; requestId: number; role: ModelRole; hub: string; endpoint?: string; token?: string } & ModelDtype)
  /**
   * The sanity check: the model loaded as `sameAs` also loaded as `role` (the teacher as the
   * student): the same folder, its own sessions. Every KL between the two is then 0.
   */
  | { type: 'model.load'; requestId: number; role: ModelRole; sameAs: ModelRole; dtype?: undefined }
  /** The models in the model cache, with their sizes; answered by `cache.listed`. */
  | { type: 'cache.list'; requestId: number }
  /** Forgets a cached model (one revision, or all of them when none is named); answered by `cache.listed` with what is left. */
  | { type: 'cache.delete'; requestId: number; repo: string; revision?: string }
  /**
   * Samples completions of a prompt from the loaded student; tokens stream as `tokens` events.
   * With `chat`, the prompt is a user message, rendered with the student's chat template.
   * With `forced` (token ids), every completion starts with those tokens and the student samples
   * the rest (up to `maxTokens` more): a branch from a token the student did not write.
   */
  | {
      type: 'sample';
      requestId: number;
      prompt: string;
      chat?: boolean;
      n: number;
      maxTokens: number;
      temperature: number;
      topK: number;
      topP: number;
      seed: number;
      forced?: number[];
    }
  /**
   * Draws a prompt from the loaded student's task (its config.json `task`): the `index`-th of the
   * task's fixed held-out set (wrapped around; a random one when absent). Answered by `task.drawn`,
   * or an error 'no-task' when the student names no built-in task.
   */
  | { type: 'task.draw'; requestId: number; index?: number }
  /**
   * Scores a completion token by token, student against teacher. With `chat`, the prompt is a
   * user message rendered with each model's own chat template; the answer's `chat` shows both
   * renderings and, when they differ, what the mismatch costs on this completion.
   */
  | { type: 'score'; requestId: number; prompt: string; completion: string; topK: number; chat?: boolean }
  /**
   * Starts a distillation run of the loaded student (role student) against the loaded teacher
   * (role teacher). Answered by `train.state` 'running' once the run is set up; from then on the
   * run streams `train.metrics`, `train.eval`, `train.checkpoint` and `train.state` events, all
   * carrying `runId` (this command's requestId), while other commands keep being answered.
   */
  | {
      type: 'train.start';
      requestId: number;
      setup: TrainSetup;
      /**
       * The run's prompts when they are not the setup's built-in task: pasted, or a .txt or
       * .jsonl file, read and split by the setup's heldOutFraction and splitSeed, with no
       * verifier (evaluations report the held-out reverse KL and sampled KL instead of accuracy).
       */
      prompts?: PromptTextSource;
      /**
       * Pauses by itself once this many steps are done (a whole number, 1 or more): the Step
       * button starts a run with 1. The step-0 evaluation comes first as in any start; the pause
       * comes as `train.state` 'paused' (no requestId), as if train.pause had been sent.
       */
      pauseAfter?: number;
      /**
       * Resumes a run from a checkpoint the page kept (a `train.checkpoint` event's `file`, or the
       * one in an imported run file): the trainer's tensors and the run's state (step, prompt
       * cursor, FLOPs) come from it, the setup's knobs from `setup`. The `train.state` 'running'
       * answering it carries the restored step; no step-0 evaluation is made.
       */
      resume?: { checkpoint: Uint8Array };
    }
  /**
   * Reads and splits a prompt set as a run would (for the loaded student, when there is one: its
   * chat template and context length), without starting anything. Answered by `prompts.checked`,
   * or an `error` with code 'bad-prompts' and the sentence saying what is wrong.
   */
  | { type: 'prompts.check'; requestId: number; source: PromptTextSource; heldOutFraction: number; splitSeed: number }
  /** Pauses between steps; answered by `train.state` 'paused' (or the run's end, if it comes first). */
  | { type: 'train.pause'; requestId: number }
  /** Answered by `train.state` 'running'. */
  | { type: 'train.resume'; requestId: number }
  /**
   * Runs exactly one more step of a paused run and pauses again; answered by `train.state`
   * 'paused' after that step (or the run's end, if it was the last). Refused with 'run-active'
   * while the run runs (pause it first) and with 'no-run' when there is none (start one with
   * `pauseAfter: 1`).
   */
  | { type: 'train.step'; requestId: number }
  /** Stops between steps, keeping a checkpoint of where it stopped; answered by `train.state` 'stopped' (or the run's end). */
  | { type: 'train.stop'; requestId: number }
  /**
   * The trained student as a Hugging Face folder ('student': config, tokenizer, model.safetensors,
   * ONNX; a LoRA run's merged weights), the latest checkpoint ('checkpoint': one safetensors file
   * to resume from) or a LoRA run's adapter ('adapter': adapter_config.json and
   * adapter_model.safetensors as PEFT saves them), of the run in progress (its current step) or,
   * once it has ended, of its last checkpoint. Answered by `train.exported`.
   */
  | { type: 'train.export'; requestId: number; what: TrainExportKind }
  /**
   * The run this setup would be, written for a cluster trainer (a TRL DistillationTrainer script, a
   * tinker-cookbook launcher, the training prompts, a README) from the loaded student and teacher
   * and the prompts (the setup's built-in task when absent). Answered by `cluster.exported`, or an
   * error whose sentence says why neither trainer can carry the setup.
   */
  | { type: 'cluster.export'; requestId: number; setup: TrainSetup; prompts?: PromptTextSource }
  /** The GPU buffers alive on the lab's device (the soak benchmark's leak check); answered by `memory.reported`. */
  | { type: 'memory.report'; requestId: number };

// ---------------------------------------------------------------- events (worker → UI)

export type LabEvent =
  | { type: 'progress'; requestId?: number; stage: string; fraction?: number }
  | { type: 'ready'; requestId: number; adapter: AdapterSummary; runtime: RuntimeSummary }
  | { type: 'selfcheck.interop.result'; requestId: number; report: InteropReport }
  | { type: 'selfcheck.divergence.result'; requestId: number; report: DivergenceSelfCheckReport }
  | { type: 'model.loaded'; requestId: number; model: ModelSummary; warnings: string[] }
  /**
   * A Hub model's download: `file`'s bytes done out of its total (null when the server did not
   * say), and the bytes done and known so far over the model's files. A file read from the cache
   * comes as one report with `fromCache`.
   */
  | ({ type: 'model.progress'; requestId: number; role: ModelRole } & HubProgress)
  /** The model cache: each model (repo and revision) with its files and their sizes, and the bytes over all. */
  | { type: 'cache.listed'; requestId: number; models: CachedModelSummary[]; bytes: number; where: string }
  /** One sampled token of completion `completion` (prompt-major order), as it comes. */
  | { type: 'tokens'; requestId: number; completion: number; step: number; token: number; text: string; logprob: number; done: boolean }
  /**
   * `renderedPrompt`: the prompt as the student read it (a chat prompt rendered with its template).
   * `verdicts` (one per completion) when the prompt is one of the loaded student's task. With
   * `forced`, each completion's tokens and text begin with the forced tokens, whose log-probs are
   * NaN (they were not sampled).
   */
  | { type: 'sample.result'; requestId: number; promptIds: number[]; completions: SampledCompletion[]; renderedPrompt?: string; verdicts?: TaskVerdict[] }
  | { type: 'task.drawn'; requestId: number; drawn: DrawnTaskPrompt }
  | {
      type: 'score.result';
      requestId: number;
      promptIds: number[];
      tokens: ScoredTokenSummary[];
      meanReverseKL: number;
      meanSampledKL: number;
      /** A chat prompt's renderings (the student's and the teacher's) and the cost of their mismatch. */
      chat?: ChatRenderingSummary;
      /** The completion's verdict, when the prompt is one of the loaded student's task. */
      verdict?: TaskVerdict;
    }
  /** The answer to prompts.check: the set's size and split, and a few prompts of each side. */
  | { type: 'prompts.checked'; requestId: number; summary: PromptSetSummary }
  /** One training step's metrics (the run's step counter is `metrics.step`). */
  | { type: 'train.metrics'; runId: number; metrics: StepMetrics }
  /** A held-out evaluation: at step 0, every `evalEvery` steps and after the last step. */
  | { type: 'train.eval'; runId: number; evaluation: EvalMetrics }
  /**
   * The run changed state. `requestId` is set when the change answers a command (train.start,
   * train.pause, train.resume, train.step, train.stop); `message` is a sentence for the status line, and
   * `error` says what went wrong when the state is 'failed'.
   */
  | {
      type: 'train.state';
      requestId?: number;
      runId: number;
      state: TrainStateName;
      step: number;
      totalSteps: number;
      message: string;
      error?: LabError;
    }
  /**
   * The engine now holds a checkpoint of the run at `step` (trainer tensors and run state), `bytes`
   * long; `file` is that checkpoint (one safetensors file, a copy), for the page to keep so a run
   * survives a reload, a lost device or a crashed worker.
   */
  | { type: 'train.checkpoint'; runId: number; step: number; bytes: number; file: Uint8Array }
  /** The answer to train.export: files by their path inside the folder (one file for a checkpoint). */
  | { type: 'train.exported'; requestId: number; what: TrainExportKind; step: number; files: { path: string; bytes: Uint8Array }[] }
  /** The answer to cluster.export: the files (text), and per target the file or why it was not written. */
  | { type: 'cluster.exported'; requestId: number; files: { path: string; text: string }[]; targets: ClusterTargets }
  | { type: 'memory.reported'; requestId: number; gpu: BufferCount }
  | { type: 'device.lost'; error: LabError }
  | { type: 'error'; requestId?: number; error: LabError };

export type LabEventOf<T extends LabEvent['type']> = Extract<LabEvent, { type: T }>;
