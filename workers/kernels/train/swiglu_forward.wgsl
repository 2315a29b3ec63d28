// swiglu_forward: the elementwise part of the Llama family's MLP, down(silu(gate(x)) · up(x)):
//   y[i] = silu(gate[i]) · up[i],  silu(g) = g · σ(g)  (torch's F.silu, hidden_act "silu"),
// with σ from swiglu_common.wgsl (finite for every finite g: silu(g) is exactly g for g ≫ 0 and
// −0 for g ≪ 0).
//
// Bindings: 0 gate f32[n] (read), 1 up f32[n] (read), 2 y f32[n] (read_write), 3 Params
//   (uniform). y must not alias gate or up.
// Dispatch: ceil(n / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   i = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 256;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i >= params.n) {
    return;
  }
  let g = gate[i];
  y[i] = (g * sigmoidPair(g).x) * up[i];
}
