// lora_grad: the gradients of a LoRA pair from the gradient of its effective weight
// (W_eff = W + s·A·B, HF Conv1D layout [in, out]; dW = ∂L/∂W_eff from the ordinary backward):
//   grad_a:  dA[i, k] (= or +=) s · Σ_o dW[i, o] · B[k, o]      dA [in, r]   (s · dW · Bᵀ)
//   grad_b:  dB[k, o] (= or +=) s · Σ_i A[i, k] · dW[i, o]      dB [r, out]  (s · Aᵀ · dW)
// One invocation per element of dA or dB, in row-major order (grad_b: consecutive invocations
// read consecutive dW and write consecutive dB; grad_a: neighbours share a row of dW). Each sum
// runs in blocks of BLOCK terms added to the total, so its float32 error grows like
// (BLOCK + n/BLOCK)·u rather than n·u. No workgroup memory (see lora_merge.wgsl).
// Bindings (both entry points): 0 dW f32 (read), 1 factor f32 (read: B for grad_a, A for grad_b),
//   2 result f32 (read_write: dA or dB), 3 Params (uniform).
// Dispatch: (G) workgroups of WG, any G ≥ 1: invocations step through the in·r (grad_a) or r·out
//   (grad_b) results by G·WG.

override WG: u32 = 64;
const BLOCK: u32 = 32u;

struct Params {
  inDim: u32,
  outDim: u32,
  rank: u32,
  scale: f32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> dW: array<f32>;
@group(0) @binding(1) var<storage, read> factor: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

fn store(at: u32, value: f32) {
  if (params.accumulate != 0u) {
    result[at] += value;
  } else {
    result[at] = value;
  }
}

@compute @workgroup_size(WG)
fn grad_a(grid: Grid) {
  let r = params.rank;
  let outDim = params.outDim;
  let total = params.inDim * r;
  let stride = strideStep(grid, WG);
  for (var at = strideFirst(grid, WG); at < total; at += stride) {
    let i = at / r;
    let k = at - i * r;
    let dwRow = i * outDim;
    let bRow = k * outDim;
    var acc = 0.0;
    for (var o0 = 0u; o0 < outDim; o0 += BLOCK) {
      let end = min(o0 + BLOCK, outDim);
      var sum = 0.0;
      for (var o = o0; o < end; o++) {
        sum += dW[dwRow + o] * factor[bRow + o];
      }
      acc += sum;
    }
    store(at, params.scale * acc);
  }
}

@compute @workgroup_size(WG)
fn grad_b(grid: Grid) {
  let r = params.rank;
  let outDim = params.outDim;
  let inDim = params.inDim;
  let total = r * outDim;
  let stride = strideStep(grid, WG);
  for (var at = strideFirst(grid, WG); at < total; at += stride) {
    let k = at / outDim;
    let o = at - k * outDim;
    var acc = 0.0;
    for (var i0 = 0u; i0 < inDim; i0 += BLOCK) {
      let end = min(i0 + BLOCK, inDim);
      var sum = 0.0;
      for (var i = i0; i < end; i++) {
        sum += factor[i * r + k] * dW[i * outDim + o];
      }
      acc += sum;
    }
    store(at, params.scale * acc);
  }
}
