// swiglu_common.wgsl: the logistic sigmoid both SwiGLU kernels use, compiled before each of them
// by swiglu.ts (WGSL has no include).
//
// (σ(g), 1 − σ(g)) without overflow or cancellation for any finite g: with t = e^(−|g|) ∈ (0, 1]
// (never overflows), σ(|g|) = 1/(1 + t) and σ(−|g|) = t/(1 + t), and 1 − σ(g) = σ(−g) is taken
// from the same pair rather than as a difference (no cancellation in the tail where σ → 1). For
// |g| past ~88, t underflows (to a denormal or, on GPUs that flush them, to 0) and the pair is
// (1, t) or (t, 1) to f32 precision; ±∞ in gives (1, 0) or (0, 1). NaN stays NaN.
fn sigmoidPair(g: f32) -> vec2<f32> {
  let t = exp(-abs(g));
  let inv = 1.0 / (1.0 + t);
  let big = inv; // σ(|g|)
  let small = t * inv; // σ(−|g|)
  return select(vec2<f32>(small, big), vec2<f32>(big, small), g >= 0.0);
}
