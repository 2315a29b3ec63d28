// layernorm_backward: the input gradient of y = x̂·γ + β, x̂ = (x − μ)·rstd, per row n:
//   g[e] = γ[e]·dy[n, e],  x̂[e] = (x[n, e] − μ[n])·rstd[n],
//   dx[n, e] (= or += when ACCUMULATE) rstd[n] · (g[e] − mean_e(g) − x̂[e] · mean_e(g·x̂)).
// μ and rstd are the ones layernorm_forward wrote. ACCUMULATE adds into dx (the residual stream's
// gradient). One workgroup per row: both row sums come from one fixed reduction tree.
//
// Bindings: 0 dy f32[rows·width] (read), 1 x f32[rows·width] (read), 2 mean f32[rows] (read),
//   3 rstd f32[rows] (read), 4 γ f32[width] (read), 5 dx f32[rows·width] (read_write),
//   6 Params (uniform). dx must not alias dy or x.
// Entry points (the same bindings):
//   main:   one workgroup per row (rows workgroups laid out as (x, y) with x ≤ 65535,
//           row = wid.y · nwg.x + wid.x; workgroup size WG, a power of two).
//   perRow: one invocation per row, no workgroup memory or barriers (CPU adapters);
//           ceil(rows / WG) workgroups laid out likewise, row = (wid.y · nwg.x + wid.x)·WG + lid.
//           The row sums run in four interleaved partial sums, added at the end.

override WG: u32 = 256;
override ACCUMULATE: bool = false;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: one tree over the workgroup (main)

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

@compute @workgroup_size(WG)
fn main(workgroup: GridWorkgroup, @builtin(local_invocation_index) lid: u32) {
  let row = flatWorkgroup(workgroup);
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
  let means = workgroupSum2(s, lid, WG) / f32(width);

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

@compute @workgroup_size(WG)
fn perRow(grid: Grid) {
  let row = flatInvocation(grid, WG);
  if (row >= params.rows) {
    return;
  }
  let width = params.width;
  let base = row * width;
  let mu = meanIn[row];
  let rstd = rstdIn[row];

  // (Σ g, Σ g·x̂) in four interleaved partial sums each.
  var sg = vec4<f32>(0.0);
  var sgx = vec4<f32>(0.0);
  var e = 0u;
  for (; e + 4u <= width; e += 4u) {
    let g = vec4<f32>(gamma[e], gamma[e + 1u], gamma[e + 2u], gamma[e + 3u]) *
      vec4<f32>(dy[base + e], dy[base + e + 1u], dy[base + e + 2u], dy[base + e + 3u]);
    let xhat = (vec4<f32>(x[base + e], x[base + e + 1u], x[base + e + 2u], x[base + e + 3u]) - mu) * rstd;
    sg += g;
    sgx += g * xhat;
  }
  for (; e < width; e++) {
    let g = gamma[e] * dy[base + e];
    sg.x += g;
    sgx.x += g * ((x[base + e] - mu) * rstd);
  }
  let meanG = ((sg.x + sg.y) + (sg.z + sg.w)) / f32(width);
  let meanGx = ((sgx.x + sgx.y) + (sgx.z + sgx.w)) / f32(width);

  for (var k = 0u; k < width; k++) {
    let g = gamma[k] * dy[base + k];
    let xhat = (x[base + k] - mu) * rstd;
    let grad = rstd * (g - meanG - xhat * meanGx);
    if (ACCUMULATE) {
      dx[base + k] += grad;
    } else {
      dx[base + k] = grad;
    }
  }
}
