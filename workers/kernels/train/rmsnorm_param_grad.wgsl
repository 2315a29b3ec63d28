// rmsnorm_param_grad: the weight gradient of y = x̂·γ over a row-major [rows, width],
//   dγ[e] = Σ_n dy[n, e]·x̂[n, e],  x̂[n, e] = x[n, e]·rstd[n],
// column sums over the rows, cut into `splits` consecutive row ranges of `rowsPerSplit` rows so
// that a few columns and many rows (Qwen3's q/k norm: head_dim columns, tokens × heads rows)
// still fill the GPU. The same plan as layernorm_param_grad (planLayerNormParamGrad). Split s
// writes its sum to out[s·width + e]:
//   - one split: out is dγ itself (= or += when ACCUMULATE);
//   - several: out is scratch (ACCUMULATE off) that the `finalize` entry point adds up, in split
//     order, into dγ (= or += when ACCUMULATE).
// A workgroup owns WG_X consecutive columns of one split; its WG_Y lanes per column sum the rows
// lane, lane + WG_Y, … of the split (consecutive invocations read consecutive columns:
// coalesced), then the lanes are added in a fixed tree, so results do not depend on timing.
//
// Entry points (each binds only its own variables, in order from 0):
//   main:     0 dy f32[rows·width] (read), 1 x f32[rows·width] (read), 2 rstd f32[rows] (read),
//             3 out f32[splits·width] (read_write), 4 Params (uniform).
//             Dispatch: (ceil(width / WG_X), splits), workgroup size (WG_X, WG_Y); WG_Y a power
//             of two.
//   finalize: dγ[e] (= or +=) Σ_s partial[s·width + e]; one invocation per column.
//             0 partial f32[splits·width] (read), 1 dγ f32[width] (read_write),
//             2 FinalizeParams (uniform). Dispatch: ceil(width / WG) workgroups of WG.

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
@group(0) @binding(2) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

struct FinalizeParams {
  width: u32,
  splits: u32,
}

// finalize
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> dGamma: array<f32>;
@group(0) @binding(2) var<uniform> fparams: FinalizeParams;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let width = params.width;
  let col = wid.x * WG_X + lid.x;
  let inside = col < width;
  let readCol = min(col, width - 1u); // lanes past the last column read a valid one, write nothing
  let split = wid.y;
  let rowEnd = min(params.rows, (split + 1u) * params.rowsPerSplit);

  // Σ dy·x̂; two independent accumulators per lane for shorter dependency chains.
  var a = 0.0;
  var b = 0.0;
  var r = split * params.rowsPerSplit + lid.y;
  for (; r + WG_Y < rowEnd; r += 2u * WG_Y) {
    let r1 = r + WG_Y;
    a += dy[r * width + readCol] * (x[r * width + readCol] * rstdIn[r]);
    b += dy[r1 * width + readCol] * (x[r1 * width + readCol] * rstdIn[r1]);
  }
  if (r < rowEnd) {
    a += dy[r * width + readCol] * (x[r * width + readCol] * rstdIn[r]);
  }
  var total = a + b;

  if (WG_Y > 1u) {
    total = columnReduce(total, REDUCE_ADD, lid.x, WG_X, lid.y, WG_Y);
  }

  if (inside && lid.y == 0u) {
    let i = split * width + col;
    if (ACCUMULATE) {
      out[i] += total;
    } else {
      out[i] = total;
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
  var s = 0.0;
  for (var k = 0u; k < fparams.splits; k++) {
    s += partial[k * width + col];
  }
  if (ACCUMULATE) {
    dGamma[col] += s;
  } else {
    dGamma[col] = s;
  }
}
