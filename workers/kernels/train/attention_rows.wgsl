// attention_rows: the row-wise steps of the matmul path of attention (attention.ts), between its
// batched matrix products, over the [B, H, T, T] score matrices (element ((b·H + h)·T + i)·T + j,
// row r = (b·H + h)·T + i). One invocation per row, no workgroup memory and no barriers: on CPU
// adapters (SwiftShader) barriers cost a switch per invocation, and a row of T ≤ 1024 scores is
// a short loop.
//
// `softmax` (in place: the scores S = q·kᵀ/√D in, the probabilities P out), as
// attention_forward.wgsl: P_ij = softmax_j(S_ij) over the keys j ≤ i with keyMask[b·T + j] = 1
// (maximum subtracted), 0 for every other key; a query whose own keyMask is 0 gets a zero row.
// Masked and future keys are left out of the sums (never given −inf scores), and the query's
// own key is always among the visible ones, so the sum is ≥ 1 and no mask pattern makes a NaN.
//
// `backward` (in place: dP = dO·vᵀ in, dS out), as attention_backward.wgsl:
//   δ_i = Σ_j P_ij dP_ij,  dS_ij = P_ij (dP_ij − δ_i),
// every term with P_ij = 0 left out (dS_ij exactly 0 there), so masked and future keys, and every
// key of a masked query, contribute nothing whatever dP holds.
//
// Entry points (each binds only its own variables, in order from 0):
//   softmax:  0 scores f32[B·H·T·T] (read_write), 1 keyMask u32[B·T] (read), 2 Params (uniform).
//   backward: 0 probs f32[B·H·T·T] (read), 1 dscores f32[B·H·T·T] (read_write), 2 Params (uniform).
// Dispatch: ceil(B·H·T / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   r = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 64;
const LOWEST: f32 = -0x1.fffffep+127f; // -f32 max

struct Params {
  batch: u32,
  seq: u32,
  heads: u32,
}

// softmax
@group(0) @binding(0) var<storage, read_write> scores: array<f32>;
@group(0) @binding(1) var<storage, read> keyMask: array<u32>;
@group(0) @binding(2) var<uniform> softmaxParams: Params;

// backward
@group(0) @binding(0) var<storage, read> probs: array<f32>;
@group(0) @binding(1) var<storage, read_write> dscores: array<f32>;
@group(0) @binding(2) var<uniform> backwardParams: Params;

@compute @workgroup_size(WG)
fn softmax(grid: Grid) {
  let r = flatInvocation(grid, WG);
  let p = softmaxParams;
  let T = p.seq;
  if (r >= p.batch * p.heads * T) {
    return;
  }
  let i = r % T;
  let b = r / (T * p.heads);
  let keys = b * T;
  let base = r * T;
  if (keyMask[keys + i] == 0u) {
    for (var j = 0u; j < T; j++) {
      scores[base + j] = 0.0;
    }
    return;
  }
  var m = LOWEST;
  for (var j = 0u; j <= i; j++) {
    if (keyMask[keys + j] != 0u) {
      m = max(m, scores[base + j]);
    }
  }
  var sum = 0.0;
  for (var j = 0u; j <= i; j++) {
    let e = select(0.0, exp(scores[base + j] - m), keyMask[keys + j] != 0u);
    scores[base + j] = e;
    sum += e;
  }
  // ≥ 1: the maximum's own term is exp(0).
  let inv = 1.0 / sum;
  for (var j = 0u; j <= i; j++) {
    scores[base + j] *= inv;
  }
  for (var j = i + 1u; j < T; j++) {
    scores[base + j] = 0.0;
  }
}

@compute @workgroup_size(WG)
fn backward(grid: Grid) {
  let r = flatInvocation(grid, WG);
  let p = backwardParams;
  let T = p.seq;
  if (r >= p.batch * p.heads * T) {
    return;
  }
  let i = r % T;
  let base = r * T;
  var delta = 0.0;
  for (var j = 0u; j <= i; j++) {
    let pr = probs[base + j];
    delta += select(0.0, pr * dscores[base + j], pr != 0.0);
  }
  for (var j = 0u; j <= i; j++) {
    let pr = probs[base + j];
    dscores[base + j] = select(0.0, pr * (dscores[base + j] - delta), pr != 0.0);
  }
  for (var j = i + 1u; j < T; j++) {
    dscores[base + j] = 0.0;
  }
}
