// layernorm_forward: per row n of a row-major [rows, width] x,
//   μ = mean(x[n, :]),  rstd = 1 / sqrt(mean((x[n, :] − μ)²) + eps),
//   y[n, e] = (x[n, e] − μ) · rstd · γ[e] + β[e],
// and keeps μ and rstd per row for the backward passes. The variance is taken in two passes
// over the row (sum, then sum of squared deviations), not as E[x²] − μ², which cancels badly
// when |μ| ≫ σ. One workgroup per row: invocation `lid` reads elements lid, lid + WG, …
// (coalesced), and the workgroup adds its partial sums in a fixed tree, so results do not depend
// on timing.
//
// Bindings: 0 x f32[rows·width] (read), 1 γ f32[width] (read), 2 β f32[width] (read),
//   3 y f32[rows·width] (read_write), 4 mean f32[rows] (read_write), 5 rstd f32[rows]
//   (read_write), 6 Params (uniform). y must not alias x.
// Entry points (the same bindings):
//   main:   one workgroup per row (rows workgroups laid out as (x, y) with x ≤ 65535,
//           row = wid.y · nwg.x + wid.x; workgroup size WG, a power of two).
//   perRow: one invocation per row, no workgroup memory or barriers (CPU adapters: SwiftShader
//           pays a thread switch per invocation at each barrier, ~16 per row in `main`);
//           ceil(rows / WG) workgroups laid out likewise, row = (wid.y · nwg.x + wid.x)·WG + lid.
//           Each sum runs in four interleaved partial sums (elements e ≡ 0..3 mod 4), added at
//           the end: shorter chains of rounding, and independent adds.

override WG: u32 = 256;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: one tree over the workgroup (main)

struct Params {
  rows: u32,
  width: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(workgroup: GridWorkgroup, @builtin(local_invocation_index) lid: u32) {
  let row = flatWorkgroup(workgroup);
  if (row >= params.rows) {
    return; // the whole workgroup leaves together (row is uniform)
  }
  let width = params.width;
  let base = row * width;

  var s = 0.0;
  for (var e = lid; e < width; e += WG) {
    s += x[base + e];
  }
  let mu = workgroupSum(s, lid, WG) / f32(width);

  var q = 0.0;
  for (var e = lid; e < width; e += WG) {
    let d = x[base + e] - mu;
    q += d * d;
  }
  let rstd = 1.0 / sqrt(workgroupSum(q, lid, WG) / f32(width) + params.eps);

  for (var e = lid; e < width; e += WG) {
    y[base + e] = (x[base + e] - mu) * rstd * gamma[e] + beta[e];
  }
  if (lid == 0u) {
    meanOut[row] = mu;
    rstdOut[row] = rstd;
  }
}

// Σ_e x[base + e] over e < width, in four interleaved partial sums.
fn rowSum(base: u32, width: u32) -> f32 {
  var s = vec4<f32>(0.0);
  var e = 0u;
  for (; e + 4u <= width; e += 4u) {
    s += vec4<f32>(x[base + e], x[base + e + 1u], x[base + e + 2u], x[base + e + 3u]);
  }
  for (; e < width; e++) {
    s.x += x[base + e];
  }
  return (s.x + s.y) + (s.z + s.w);
}

// Σ_e (x[base + e] − mu)² over e < width, likewise.
fn rowSquares(base: u32, width: u32, mu: f32) -> f32 {
  var s = vec4<f32>(0.0);
  var e = 0u;
  for (; e + 4u <= width; e += 4u) {
    let d = vec4<f32>(x[base + e], x[base + e + 1u], x[base + e + 2u], x[base + e + 3u]) - mu;
    s += d * d;
  }
  for (; e < width; e++) {
    let d = x[base + e] - mu;
    s.x += d * d;
  }
  return (s.x + s.y) + (s.z + s.w);
}

@compute @workgroup_size(WG)
fn perRow(grid: Grid) {
  let row = flatInvocation(grid, WG);
  if (row >= params.rows) {
    return;
  }
  let width = params.width;
  let base = row * width;
  let mu = rowSum(base, width) / f32(width);
  let rstd = 1.0 / sqrt(rowSquares(base, width, mu) / f32(width) + params.eps);
  for (var e = 0u; e < width; e++) {
    y[base + e] = (x[base + e] - mu) * rstd * gamma[e] + beta[e];
  }
  meanOut[row] = mu;
  rstdOut[row] = rstd;
}
