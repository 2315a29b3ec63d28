// layernorm_param_grad: the parameter gradients of y = x̂·γ + β over a row-major [rows, width],
//   dγ[e] = Σ_n dy[n, e]·x̂[n, e],  dβ[e] = Σ_n dy[n, e],  x̂[n, e] = (x[n, e] − μ[n])·rstd[n],
// column sums over the rows, cut into `splits` consecutive row ranges of `rowsPerSplit` rows so
// that a few columns and many rows still fill the GPU. Split s writes its sums to
// outGamma[s·width + e] and outBeta[s·width + e]:
//   - one split: the outputs are dγ and dβ themselves (= or += when ACCUMULATE);
//   - several: the outputs are scratch partials (ACCUMULATE off) that the `finalize` entry point
//     adds up, in split order, into dγ and dβ (= or += when ACCUMULATE).
// A workgroup owns WG_X consecutive columns of one split; its WG_Y lanes per column sum the rows
// lane, lane + WG_Y, … of the split (consecutive invocations read consecutive columns:
// coalesced), then the lanes are added in a fixed tree, so results do not depend on timing.
//
// Entry points (each binds only its own variables, in order from 0):
//   main:     0 dy f32[rows·width] (read), 1 x f32[rows·width] (read), 2 mean f32[rows] (read),
//             3 rstd f32[rows] (read), 4 outGamma f32[splits·width] (read_write), 5 outBeta
//             f32[splits·width] (read_write), 6 Params (uniform).
//             Dispatch: (ceil(width / WG_X), splits), workgroup size (WG_X, WG_Y); WG_Y a power
//             of two.
//   finalize: dγ[e] (= or +=) Σ_s partialGamma[s·width + e], the same for dβ; one invocation per
//             column. 0 partialGamma f32[splits·width] (read), 1 partialBeta (read), 2 dγ
//             f32[width] (read_write), 3 dβ f32[width] (read_write), 4 FinalizeParams (uniform).
//             Dispatch: ceil(width / WG) workgroups, workgroup size WG.

override WG_X: u32 = 32;
override WG_Y: u32 = 8;
override ACCUMULATE: bool = false;
override WG: u32 = 256;

override REDUCE_SLOTS: u32 = WG_X * WG_Y; // prelude.wgsl: a tree per column (main)

struct Params {
  rows: u32,
  width: u32,
  rowsPerSplit: u32,
}

// main
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> meanIn: array<f32>;
@group(0) @binding(3) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(4) var<storage, read_write> outGamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> outBeta: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

struct FinalizeParams {
  width: u32,
  splits: u32,
}

// finalize
@group(0) @binding(0) var<storage, read> partialGamma: array<f32>;
@group(0) @binding(1) var<storage, read> partialBeta: array<f32>;
@group(0) @binding(2) var<storage, read_write> dGamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> dBeta: array<f32>;
@group(0) @binding(4) var<uniform> fparams: FinalizeParams;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let width = params.width;
  let col = wid.x * WG_X + lid.x;
  let inside = col < width;
  let readCol = min(col, width - 1u); // lanes past the last column read a valid one, write nothing
  let split = wid.y;
  let rowEnd = min(params.rows, (split + 1u) * params.rowsPerSplit);

  // (Σ dy·x̂, Σ dy); two independent accumulators per lane for shorter dependency chains.
  var a = vec2<f32>(0.0);
  var b = vec2<f32>(0.0);
  var r = split * params.rowsPerSplit + lid.y;
  for (; r + WG_Y < rowEnd; r += 2u * WG_Y) {
    let g0 = dy[r * width + readCol];
    let h0 = (x[r * width + readCol] - meanIn[r]) * rstdIn[r];
    let r1 = r + WG_Y;
    let g1 = dy[r1 * width + readCol];
    let h1 = (x[r1 * width + readCol] - meanIn[r1]) * rstdIn[r1];
    a += vec2<f32>(g0 * h0, g0);
    b += vec2<f32>(g1 * h1, g1);
  }
  if (r < rowEnd) {
    let g0 = dy[r * width + readCol];
    let h0 = (x[r * width + readCol] - meanIn[r]) * rstdIn[r];
    a += vec2<f32>(g0 * h0, g0);
  }
  var total = a + b;

  if (WG_Y > 1u) {
    total = columnSum2(total, lid.x, WG_X, lid.y, WG_Y);
  }

  if (inside && lid.y == 0u) {
    let i = split * width + col;
    if (ACCUMULATE) {
      outGamma[i] += total.x;
      outBeta[i] += total.y;
    } else {
      outGamma[i] = total.x;
      outBeta[i] = total.y;
    }
  }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  let width = fparams.width;
  if (col >= width) {
    return;
  }
  var sg = 0.0;
  var sb = 0.0;
  for (var s = 0u; s < fparams.splits; s++) {
    sg += partialGamma[s * width + col];
    sb += partialBeta[s * width + col];
  }
  if (ACCUMULATE) {
    dGamma[col] += sg;
    dBeta[col] += sb;
  } else {
    dGamma[col] = sg;
    dBeta[col] = sb;
  }
}
