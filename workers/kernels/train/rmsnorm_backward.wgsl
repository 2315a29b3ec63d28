// rmsnorm_backward: the input gradient of y = x̂·γ, x̂ = x·rstd, rstd = 1/√(mean(x²) + eps), per
// row n:
//   g[e] = γ[e]·dy[n, e],  x̂[e] = x[n, e]·rstd[n],
//   dx[n, e] (= or += when ACCUMULATE) rstd[n] · (g[e] − x̂[e] · mean_e(g·x̂)).
// (LayerNorm's formula without the mean terms: rstd depends on x only through mean(x²).) rstd is
// the one rmsnorm_forward wrote. ACCUMULATE adds into dx (the residual stream's gradient).
//
// Bindings: 0 dy f32[rows·width] (read), 1 x f32[rows·width] (read), 2 rstd f32[rows] (read),
//   3 γ f32[width] (read), 4 dx f32[rows·width] (read_write), 5 Params (uniform). dx must not
//   alias dy or x.
// Entry points (the same bindings), laid out as rmsnorm_forward's:
//   main:   LANES invocations per row, WG / LANES rows per workgroup, the row sum from one fixed
//           tree per row; ceil(rows / (WG / LANES)) workgroups.
//   perRow: one invocation per row, no barriers (CPU adapters); the row sum in four interleaved
//           partial sums; ceil(rows / WG) workgroups.

override WG: u32 = 256;
override LANES: u32 = 256;
override ACCUMULATE: bool = false;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: WG / LANES trees of LANES lanes (main)

struct Params {
  rows: u32,
  width: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

fn store(i: u32, grad: f32) {
  if (ACCUMULATE) {
    dx[i] += grad;
  } else {
    dx[i] = grad;
  }
}

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
  let rstd = select(0.0, rstdIn[min(row, params.rows - 1u)], inside);

  // Σ g·x̂ over this lane's elements.
  var s = 0.0;
  for (var e = lane; e < end; e += LANES) {
    s += gamma[e] * dy[base + e] * (x[base + e] * rstd);
  }
  let meanGx = columnReduce(s, REDUCE_ADD, slot, rowsPerGroup, lane, LANES) / f32(width);

  for (var e = lane; e < end; e += LANES) {
    let xhat = x[base + e] * rstd;
    store(base + e, rstd * (gamma[e] * dy[base + e] - xhat * meanGx));
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
  let rstd = rstdIn[row];

  // Σ g·x̂ in four interleaved partial sums.
  var s = vec4<f32>(0.0);
  var e = 0u;
  for (; e + 4u <= width; e += 4u) {
    let g = vec4<f32>(gamma[e], gamma[e + 1u], gamma[e + 2u], gamma[e + 3u]) *
      vec4<f32>(dy[base + e], dy[base + e + 1u], dy[base + e + 2u], dy[base + e + 3u]);
    s += g * (vec4<f32>(x[base + e], x[base + e + 1u], x[base + e + 2u], x[base + e + 3u]) * rstd);
  }
  for (; e < width; e++) {
    s.x += gamma[e] * dy[base + e] * (x[base + e] * rstd);
  }
  let meanGx = ((s.x + s.y) + (s.z + s.w)) / f32(width);

  for (var k = 0u; k < width; k++) {
    let xhat = x[base + k] * rstd;
    store(base + k, rstd * (gamma[k] * dy[base + k] - xhat * meanGx));
  }
}
