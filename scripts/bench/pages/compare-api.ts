/**
 * What each comparison page offers the Node side (the sampling benchmark and the e2e tests):
 * the same model folder loaded and run by OPD Lab's sampler (ours.html) or by transformers.js
 * (tjs.html), in the same Chromium, on the same WebGPU adapter.
 */
export interface GenerateResult {
  /** Wall time of the generation alone (model already loaded). */
  ms: number;
  /** New tokens generated, all sequences together. */
  tokens: number;
  /** The new tokens of each sequence. */
  sequences: number[][];
}

export interface CompareApi {
  /** Loads the model folder served at `folderUrl` (ending in '/'). */
  load(folderUrl: string): Promise<{ ms: number; adapter: string }>;
  /** Greedy decoding of exactly `maxTokens` new tokens for `n` copies of the prompt, one batch. */
  generate(promptIds: number[], n: number, maxTokens: number): Promise<GenerateResult>;
  /** Logits of one forward pass over `ids`, row-major [ids.length, vocab]. */
  forward(ids: number[]): Promise<{ vocab: number; logits: number[] }>;
}

declare global {
  interface Window {
    opdCompare?: CompareApi;
  }
}

/** Names the adapter as the status bar does, for the benchmark's record. */
export async function adapterName(): Promise<string> {
  const adapter = await navigator.gpu?.requestAdapter();
  const info = adapter?.info;
  return info ? `${info.vendor} / ${info.architecture} ${info.description}`.trim() : 'no adapter';
}
