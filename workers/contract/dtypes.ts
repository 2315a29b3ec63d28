/**
 * onnx-community's file variants of a transformers.js export, by the dtype names transformers.js
 * uses, in one table: fp32 onnx/model.onnx, fp16 model_fp16.onnx (float16 weights, key-values and
 * logits), q4 model_q4.onnx (MatMulNBits), q4f16 model_q4f16.onnx (both), quantized
 * model_quantized.onnx (int8). The folder reader picks the file from it, the engine checks the
 * load command's dtype against it, the CLI's --dtype help lists it, and the page's dtype picker
 * offers it. Plain data.
 */
export const ONNX_DTYPES = ['fp32', 'fp16', 'q4', 'q4f16', 'quantized'] as const;
export type OnnxDtype = (typeof ONNX_DTYPES)[number];

export const ONNX_DTYPE_FILES: Record<OnnxDtype, string> = {
  fp32: 'onnx/model.onnx',
  fp16: 'onnx/model_fp16.onnx',
  q4: 'onnx/model_q4.onnx',
  q4f16: 'onnx/model_q4f16.onnx',
  quantized: 'onnx/model_quantized.onnx',
};

/** The variants that compute in float16: they need an adapter with shader-f16. */
export const FLOAT16_DTYPES: readonly OnnxDtype[] = ['fp16', 'q4f16'];

/** What each dtype is, for people (the page's picker). */
export const ONNX_DTYPE_NOTES: Record<OnnxDtype, string> = {
  fp32: 'float32',
  fp16: 'float16, needs shader-f16',
  q4: '4-bit weights',
  q4f16: '4-bit weights, float16, needs shader-f16',
  quantized: '8-bit weights',
};

export function isOnnxDtype(value: unknown): value is OnnxDtype {
  return typeof value === 'string' && (ONNX_DTYPES as readonly string[]).includes(value);
}
