// lora_merge: the effective weight of a LoRA-adapted linear layer (HF Conv1D layout, [in, out]):
//   W_eff[i, o] = W[i, o] + s · Σ_k A[i, k] · B[k, o],   s = α / r,  A [in, r], B [r, out].
// One invocation per element of W_eff, in row-major order: the reads of W, B and the writes of
// W_eff are consecutive across invocations, and a row of A is shared by neighbours (cache hits).
// No workgroup memory: r ≤ 64 products per element are cheap beside the traffic of W and W_eff,
// and CPU adapters (SwiftShader) compile workgroup arrays slowly and run barriers slowly.
// The frozen base W is f32, or f16 in LoRA runs on adapters with shader-f16 (half the bytes):
// the wrapper (optimizer.ts) compiles this file after `alias Base = f32;` or, with
// `enable f16;`, `alias Base = f16;`. Each W element is widened to f32 exactly, so W_eff is what
// the f32 path gives for the f16-rounded W.
// Bindings: 0 W Base (read), 1 A f32 (read), 2 B f32 (read), 3 W_eff f32 (read_write; not W),
//   4 Params (uniform).
// Dispatch: (G) workgroups of WG, any G ≥ 1: invocations step through in·out elements by G·WG.

override WG: u32 = 64;

struct Params {
  inDim: u32,
  outDim: u32,
  rank: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> weight: array<Base>;
@group(0) @binding(1) var<storage, read> loraA: array<f32>;
@group(0) @binding(2) var<storage, read> loraB: array<f32>;
@group(0) @binding(3) var<storage, read_write> merged: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let r = params.rank;
  let outDim = params.outDim;
  let total = params.inDim * outDim;
  let stride = strideStep(grid, WG);
  for (var at = strideFirst(grid, WG); at < total; at += stride) {
    let i = at / outDim;
    let o = at - i * outDim;
    var acc = 0.0;
    for (var k = 0u; k < r; k++) {
      acc += loraA[i * r + k] * loraB[k * outDim + o];
    }
    merged[at] = f32(weight[at]) + params.scale * acc;
  }
}
