// rmsnorm_forward: per row n of a row-major [rows, width] x (HF's LlamaRMSNorm, Qwen2RMSNorm,
// Qwen3RMSNorm in float32),
//   rstd = 1 / sqrt(mean(x[n, :]²) + eps),   y[n, e] = (x[n, e] · rstd) · γ[e],
// and keeps rstd per row for the backward passes. No mean is subtracted and there is no bias.
// Used for the layer norms (width = hidden) and for Qwen3's q/k norm (rows = tokens × heads,
// width = head_dim, 32..256): short rows, so a row need not fill a workgroup.
//
// Bindings: 0 x f32[rows·width] (read), 1 γ f32[width] (read), 2 y f32[rows·width]
//   (read_write), 3 rstd f32[rows] (read_write), 4 Params (uniform). y must not alias x.
// Entry points (the same bindings):
//   main:   LANES invocations per row (a power of two ≤ WG), WG / LANES rows per workgroup:
//           lane l reads elements l, l + LANES, … of its row (consecutive invocations read
//           consecutive elements: coalesced), and the lanes of a row are added in a fixed tree
//           (prelude.wgsl, one tree per row side by side), so results do not depend on timing.
//           LANES = WG is one workgroup per row (long rows); LANES = 16 fits 16 rows of a
//           64-wide head in a 256 workgroup. Rows past the end compute nothing and write
//           nothing, but still take part in the barriers (no early return before them).
//           ceil(rows / (WG / LANES)) workgroups laid out as (x, y) with x ≤ 65535,
//           row = (wid.y · nwg.x + wid.x)·(WG / LANES) + lid / LANES.
//   perRow: one invocation per row, no workgroup memory or barriers (CPU adapters: SwiftShader
//           pays a thread switch per invocation at each barrier); ceil(rows / WG) workgroups
//           laid out likewise, row = (wid.y · nwg.x + wid.x)·WG + lid. The sum of squares runs
//           in four interleaved partial sums (elements e ≡ 0..3 mod 4), added at the end.

override WG: u32 = 256;
override LANES: u32 = 256;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: WG / LANES trees of LANES lanes (main)

struct Params {
  rows: u32,
  width: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(workgroup: GridWorkgroup, @builtin(local_invocation_index) lid: u32) {
  let rowsPerGroup = WG / LANES;
  let slot = lid / LANES;
  let lane = lid % LANES;
  let row = flatWorkgroup(workgroup) * rowsPerGroup + slot;
  let inside = row < params.rows;
  let width = params.width;
  let base = row * width;
  let end = select(0u, width, inside); // rows past the end sum nothing

  var q = 0.0;
  for (var e = lane; e < end; e += LANES) {
    let v = x[base + e];
    q += v * v;
  }
  let total = columnReduce(q, REDUCE_ADD, slot, rowsPerGroup, lane, LANES);
  let rstd = inverseSqrt(total / f32(width) + params.eps);

  for (var e = lane; e < end; e += LANES) {
    y[base + e] = (x[base + e] * rstd) * gamma[e];
  }
  if (inside && lane == 0u) {
    rstdOut[row] = rstd;
  }
}

// Σ_e x[base + e]² over e < width, in four interleaved partial sums.
fn rowSquares(base: u32, width: u32) -> f32 {
  var s = vec4<f32>(0.0);
  var e = 0u;
  for (; e + 4u <= width; e += 4u) {
    let v = vec4<f32>(x[base + e], x[base + e + 1u], x[base + e + 2u], x[base + e + 3u]);
    s += v * v;
  }
  for (; e < width; e++) {
    let v = x[base + e];
    s.x += v * v;
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
  let rstd = inverseSqrt(rowSquares(base, width) / f32(width) + params.eps);
  for (var e = 0u; e < width; e++) {
    y[base + e] = (x[base + e] * rstd) * gamma[e];
  }
  rstdOut[row] = rstd;
}
