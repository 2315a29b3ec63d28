// layernorm_backward: the input gradient of y = x̂·γ + β, x̂ = (x − μ)·rstd, per row n:
//   g[e] = γ[e]·dy[n, e],  x̂[e] = (x[n, e] − μ[n])·rstd[n],
//   dx[n, e] (= or += when ACCUMULATE) rstd[n] · (g[e] − mean_e(g) − x̂[e] · mean_e(g·x̂)).
// μ and rstd are the ones layernorm_forward wrote. ACCUMULATE adds into dx (the residual stream's
// gradient). One workgroup per row: both row sums come from one fixed reduction tree.
//
// Bindings: 0 dy f32[rows·width] (read), 1 x f32[rows·width] (read), 2 mean f32[rows] (read),
//   3 rstd f32[rows] (read), 4 γ f32[width] (read), 5 dx f32[rows·width] (read_write),
//   6 Params (uniform). dx must not alias dy or x.
// Dispatch: rows workgroups laid out as (x, y) with x ≤ 65535, row = wid.y · nwg.x + wid.x;
//   workgroup size WG, a power of two.

override WG: u32 = 256;
override ACCUMULATE: bool = false;

struct Params {
  rows: u32,
  width: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> meanIn: array<f32>;
@group(0) @binding(3) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> scratch: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return; // the whole workgroup leaves together (row is uniform)
  }
  let width = params.width;
  let base = row * width;
  let mu = meanIn[row];
  let rstd = rstdIn[row];

  // (Σ g, Σ g·x̂) over this invocation's elements.
  var s = vec2<f32>(0.0);
  for (var e = lid; e < width; e += WG) {
    let g = gamma[e] * dy[base + e];
    let xhat = (x[base + e] - mu) * rstd;
    s += vec2<f32>(g, g * xhat);
  }
  scratch[lid] = s;
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lid < half) {
      scratch[lid] += scratch[lid + half];
    }
  }
  workgroupBarrier();
  let means = scratch[0] / f32(width);

  for (var e = lid; e < width; e += WG) {
    let g = gamma[e] * dy[base + e];
    let xhat = (x[base + e] - mu) * rstd;
    let grad = rstd * (g - means.x - xhat * means.y);
    if (ACCUMULATE) {
      dx[base + e] += grad;
    } else {
      dx[base + e] = grad;
    }
  }
}
