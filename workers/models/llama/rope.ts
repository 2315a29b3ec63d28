/**
 * Rotary position embeddings of the Llama family, in float64: the inverse frequencies of a head's
 * dimension pairs for each rope type, and the cos/sin tables by position that the lab's graphs
 * read (a table, not Sin/Cos in the graph: onnxruntime-web's Sin/Cos on WebGPU are accurate only
 * to about 1e-4, which moves log-probs by up to 3e-3).
 */
import type { LlamaConfig, RopeScaling } from './config';

/** inv_freq[i] for the head's dimension pairs i = 0 … headDim/2 − 1, as transformers computes them. */
export function ropeInverseFrequencies(rope: RopeScaling, headDim: number): Float64Array {
  const half = headDim / 2;
  const base = Float64Array.from({ length: half }, (_, i) => 1 / rope.theta ** ((2 * i) / headDim));
  if (rope.type === 'default') return base;
  if (rope.type === 'linear') return base.map((f) => f / rope.factor);
  // llama3: wavelengths shorter than original/highFreqFactor are kept, longer than
  // original/lowFreqFactor divided by the factor, and those in between interpolated.
  const lowWavelength = rope.originalMaxPositions / rope.lowFreqFactor;
  const highWavelength = rope.originalMaxPositions / rope.highFreqFactor;
  return base.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highWavelength) return f;
    if (wavelength > lowWavelength) return f / rope.factor;
    const smooth = (rope.originalMaxPositions / wavelength - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
    return (1 - smooth) * (f / rope.factor) + smooth * f;
  });
}

/**
 * cos and sin of position × inv_freq for positions 0 … positions − 1, [positions, headDim/2]
 * row-major, computed in float64 (and rounded once, to float32, by whoever stores them).
 */
export function ropeTables(config: Pick<LlamaConfig, 'rope' | 'headDim'>, positions: number): { cos: Float64Array; sin: Float64Array } {
  const inv = ropeInverseFrequencies(config.rope, config.headDim);
  const half = inv.length;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i];
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
