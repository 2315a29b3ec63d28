// swiglu_backward: the gradients of y = silu(gate)·up (swiglu_forward) given dy, overwriting both:
//   dgate[i] = dy[i] · up[i] · silu'(gate[i]),   silu'(g) = σ(g) · (1 + g·(1 − σ(g))),
//   dup[i]   = dy[i] · silu(gate[i]).
// σ and 1 − σ come as a pair from swiglu_common.wgsl, so g·(1 − σ) has no cancellation and stays
// finite: for g ≫ 0 it is g·0 = 0 (silu' = 1), for g ≪ 0 σ = 0 and silu' = 0 (no ∞·0, since
// 1 + g·(1 − σ) is finite for finite g).
//
// Bindings: 0 gate f32[n] (read), 1 up f32[n] (read), 2 dy f32[n] (read), 3 dgate f32[n]
//   (read_write), 4 dup f32[n] (read_write), 5 Params (uniform). dgate and dup must be distinct
//   and alias none of the inputs.
// Dispatch: ceil(n / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   i = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 256;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(4) var<storage, read_write> dup: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i >= params.n) {
    return;
  }
  let g = gate[i];
  let d = dy[i];
  let s = sigmoidPair(g);
  dgate[i] = d * up[i] * (s.x * (1.0 + g * s.y));
  dup[i] = d * (g * s.x);
}
