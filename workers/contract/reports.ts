/** Self-check reports the System panel shows: the GPU interop round trip and the divergence kernels against their float64 reference. */

export interface InteropReport {
  /** Number of elements pushed through the round trip. */
  elements: number;
  /** Largest |ours − reference| over the elements, after the round trip. */
  maxAbsError: number;
  tolerance: number;
  passed: boolean;
  /** A few values for the person reading the report: input, ORT output, our kernel's result. */
  sample: { index: number; input: number; ortOutput: number; kernelOutput: number; expected: number }[];
  /** Each stage of the round trip and whether its data stayed on the GPU. */
  stages: string[];
  ms: number;
}

export interface OutputCheck {
  output: string;
  /** Elements compared (finite reference values; infinite ones must match exactly). */
  compared: number;
  maxAbsError: number;
  /** max over elements of |error| / (atol + rtol·|reference|): passes when ≤ 1. */
  worstErrorOverTolerance: number;
  atol: number;
  rtol: number;
  crtol: number;
  passed: boolean;
}

export interface Expectation {
  what: string;
  passed: boolean;
}

export interface CaseReport {
  name: string;
  positions: number;
  vocab: number;
  temperature: number;
  beta?: number;
  topK: number;
  gradient: boolean;
  chunks: number;
  checks: OutputCheck[];
  /** Positions whose flag word differs from the reference's. */
  flagMismatches: number;
  expectations: Expectation[];
  passed: boolean;
  ms: number;
}

export interface DivergenceSelfCheckReport {
  seed: number;
  passed: boolean;
  cases: CaseReport[];
  ms: number;
}

/** The GPU buffers alive on the lab's device (workers/gpu/buffer-count.ts). */
export interface BufferCount {
  /** Buffers alive now, and their bytes. */
  buffers: number;
  bytes: number;
  /** Buffers ever created on the device. */
  created: number;
  /** Alive by label (the 40 most numerous), to see what grows. */
  byLabel?: { label: string; buffers: number; bytes: number }[];
}
