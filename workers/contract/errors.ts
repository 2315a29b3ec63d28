/** Errors are values: a stable code and a sentence a person understands. */

export type ErrorCode =
  /** navigator.gpu is absent: the browser has no WebGPU (or it is switched off). */
  | 'no-webgpu'
  /** navigator.gpu exists but requestAdapter() gave nothing. */
  | 'no-adapter'
  /** The adapter exists but is below what the lab needs. */
  | 'adapter-below-minimum'
  | 'device-request-failed'
  | 'device-lost'
  | 'ort-init-failed'
  | 'not-ready'
  | 'interop-failed'
  | 'selfcheck-failed'
  | 'model-folder'
  | 'no-model'
  /** `task.draw` with a student that names no built-in task (config.json `task`). */
  | 'no-task'
  | 'bad-request'
  | 'bad-command'
  /** The student folder has no trainable weights (model.safetensors) or is of no model family the lab knows. */
  | 'not-trainable'
  /** Student and teacher tokenize differently: the teacher cannot score the student's tokens. */
  | 'tokenizer-mismatch'
  /** A prompt set cannot be read, split or fed to the student; the message names the line or prompt. */
  | 'bad-prompts'
  /** A training knob is out of range; the message is the sentence that says which. */
  | 'bad-options'
  /** Training steps kept coming out non-finite, so the numerics guard refused to apply them. */
  | 'numerics'
  /** `train.pause|resume|stop` with no run in progress. */
  | 'no-run'
  /** `train.start` while a run is in progress (running or paused). */
  | 'run-active'
  | 'internal';

export interface LabError {
  code: ErrorCode;
  /** One or two sentences: what is wrong, and what to do about it. */
  message: string;
  /** Technical detail (an exception's text), shown folded away. */
  detail?: string;
}
