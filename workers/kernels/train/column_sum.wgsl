// column_sum: out[c] (= or += when ACCUMULATE) Σ_r x[r, c] over a row-major [rows, cols] x; the
// bias gradient of a linear layer (x = dy). A workgroup owns WG_X consecutive columns; its WG_Y
// lanes per column each sum the rows lane, lane + WG_Y, … (consecutive invocations read
// consecutive columns: coalesced), then the lanes are added in a fixed tree in workgroup memory,
// so the result does not depend on timing. WG_Y = 1 (CPU adapters) skips the tree.
//
// Bindings: 0 x f32[rows·cols] (read), 1 out f32[cols] (read_write), 2 Params (uniform).
// Dispatch: (ceil(cols / WG_X)), workgroup size (WG_X, WG_Y); WG_Y a power of two.

override WG_X: u32 = 32;
override WG_Y: u32 = 8;
override ACCUMULATE: bool = false;

override REDUCE_SLOTS: u32 = WG_X * WG_Y; // prelude.wgsl: a tree per column

struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let rows = params.rows;
  let cols = params.cols;
  let col = wid.x * WG_X + lid.x;
  let inside = col < cols;
  let readCol = min(col, cols - 1u);

  // Four independent partial sums per lane (shorter dependency chains), added pairwise.
  var s = vec4<f32>(0.0);
  var r = lid.y;
  let step = WG_Y * 4u;
  for (; r + 3u * WG_Y < rows; r += step) {
    s += vec4<f32>(
      x[r * cols + readCol],
      x[(r + WG_Y) * cols + readCol],
      x[(r + 2u * WG_Y) * cols + readCol],
      x[(r + 3u * WG_Y) * cols + readCol],
    );
  }
  for (; r < rows; r += WG_Y) {
    s.x += x[r * cols + readCol];
  }
  var total = (s.x + s.y) + (s.z + s.w);

  if (WG_Y > 1u) {
    total = columnReduce(total, REDUCE_ADD, lid.x, WG_X, lid.y, WG_Y);
  }

  if (inside && lid.y == 0u) {
    if (ACCUMULATE) {
      out[col] += total;
    } else {
      out[col] = total;
    }
  }
}
