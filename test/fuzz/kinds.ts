/** The input kinds the fuzzer mutates (case i is of kind KINDS[i % 4]); no loader imported here. */
export const KINDS = ['config', 'tokenizer', 'safetensors', 'onnx'] as const;
export type Kind = (typeof KINDS)[number];
