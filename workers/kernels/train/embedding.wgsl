// embedding: the input embedding (GPT-2's token + learned position tables, or the Llama family's
// token table alone) and its gradient.
//
// forward: x[n, e] = wte[tok[n], e] + wpe[pos[n], e] for a row-major [rows, width] x. A token id
//   ≥ vocab or a position ≥ positions makes its row NaN (loud, rather than reading another row).
//   Bindings: 0 tok u32[rows] (read), 1 pos u32[rows] (read), 2 wte f32[vocab·width] (read),
//   3 wpe f32[positions·width] (read), 4 x f32[rows·width] (read_write), 5 ForwardParams.
//   One invocation per element of x.
//
// forwardTokens: x[n, e] = wte[tok[n], e] (no learned positions: Llama's are rotary, applied in
//   attention). A token id ≥ vocab makes its row NaN. Bindings: 0 tok u32[rows] (read), 1 wte
//   f32[vocab·width] (read), 2 x f32[rows·width] (read_write), 3 ForwardParams (positions
//   unused). One invocation per element of x.
//
// backward: grad[id, e] += Σ_{n: ids[n] = id} dx[n, e], without atomics: the CPU, which knows
//   the ids, groups the rows by id into `grouping` (u32), one table's section starting at `base`:
//     [base, base + groups)                unique ids, ascending
//     [base + groups, base + 2·groups + 1) offsets into the row list (offsets[0] = 0)
//     [base + 2·groups + 1, … + rows)      row numbers, grouped by id, ascending within a group
//   and one invocation per (group, e) adds its group's rows in order and adds the sum into grad
//   (always accumulating: a tied LM head writes its gradient into dwte first). Each
//   (id, e) has one writer, so there is no race and the result does not depend on timing.
//   Bindings: 0 dx f32[rows·width] (read), 1 grouping u32 (read), 2 grad f32[table·width]
//   (read_write), 3 BackwardParams (uniform).
//   One invocation per (group, e): flat index group·width + e.
//
// Dispatch (all three): ceil(count / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   i = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 256;

struct ForwardParams {
  rows: u32,
  width: u32,
  vocab: u32,
  positions: u32,
}

struct BackwardParams {
  groups: u32,
  width: u32,
  base: u32,
}

// forward
@group(0) @binding(0) var<storage, read> tok: array<u32>;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read> wte: array<f32>;
@group(0) @binding(3) var<storage, read> wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<uniform> fparams: ForwardParams;

// forwardTokens
@group(0) @binding(0) var<storage, read> ttok: array<u32>;
@group(0) @binding(1) var<storage, read> twte: array<f32>;
@group(0) @binding(2) var<storage, read_write> tx: array<f32>;
@group(0) @binding(3) var<uniform> tparams: ForwardParams;

// backward
@group(0) @binding(0) var<storage, read> dx: array<f32>;
@group(0) @binding(1) var<storage, read> grouping: array<u32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<uniform> bparams: BackwardParams;

@compute @workgroup_size(WG)
fn forward(grid: Grid) {
  let i = flatInvocation(grid, WG);
  let width = fparams.width;
  if (i >= fparams.rows * width) {
    return;
  }
  let n = i / width;
  let e = i - n * width;
  let t = tok[n];
  let p = pos[n];
  if (t >= fparams.vocab || p >= fparams.positions) {
    // A quiet NaN, built from a runtime value: a constant NaN is a shader-creation error.
    x[i] = bitcast<f32>(0x7fc00000u | (t & 0u));
    return;
  }
  x[i] = wte[t * width + e] + wpe[p * width + e];
}

@compute @workgroup_size(WG)
fn forwardTokens(grid: Grid) {
  let i = flatInvocation(grid, WG);
  let width = tparams.width;
  if (i >= tparams.rows * width) {
    return;
  }
  let n = i / width;
  let e = i - n * width;
  let t = ttok[n];
  if (t >= tparams.vocab) {
    tx[i] = bitcast<f32>(0x7fc00000u | (t & 0u)); // a quiet NaN, as in `forward`
    return;
  }
  tx[i] = twte[t * width + e];
}

@compute @workgroup_size(WG)
fn backward(grid: Grid) {
  let i = flatInvocation(grid, WG);
  let width = bparams.width;
  let groups = bparams.groups;
  if (i >= groups * width) {
    return;
  }
  let g = i / width;
  let e = i - g * width;
  let base = bparams.base;
  let id = grouping[base + g];
  let rowsAt = base + 2u * groups + 1u;
  let first = grouping[base + groups + g];
  let last = grouping[base + groups + g + 1u];
  var s = 0.0;
  for (var k = first; k < last; k++) {
    s += dx[grouping[rowsAt + k] * width + e];
  }
  grad[id * width + e] += s;
}
