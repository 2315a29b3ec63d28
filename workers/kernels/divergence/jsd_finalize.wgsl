// jsd_finalize: adds up a row's JSD partial sums (splits × EXTRAS_WG of them, written by
// row_extras) into the row's jsd field; positions that are masked or bad get 0.
// Bindings: 0 jsdPartials f32 (read), 1 flags u32 (read), 2 fields f32 (read_write),
//   3 ChunkParams (uniform).
// Dispatch: ceil(rows / WG) workgroups, one invocation per row of the chunk.

override WG: u32 = 64;
// Invocations per slice in row_extras (its WG): partial sums per row = splits × EXTRAS_WG.
override EXTRAS_WG: u32 = 64;

@group(0) @binding(0) var<storage, read> jsdPartials: array<f32>;
@group(0) @binding(1) var<storage, read> flags: array<u32>;
@group(0) @binding(2) var<storage, read_write> fields: array<f32>;
@group(0) @binding(3) var<uniform> params: ChunkParams;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= params.rows) {
    return;
  }
  let t = params.firstRow + row;
  var sum = 0.0;
  if ((flags[t] & VALID) != 0u) {
    let count = params.splits * EXTRAS_WG;
    for (var i = 0u; i < count; i++) {
      sum += jsdPartials[row * count + i];
    }
  }
  fields[F_JSD * params.fieldStride + t] = sum;
}
