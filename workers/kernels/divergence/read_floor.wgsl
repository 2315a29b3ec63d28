// read_floor: a benchmark probe, not part of the divergence computation. It reads the student and
// teacher logits exactly as row_stats does (same bindings, dispatch, slices and eight-element trips)
// and only adds them up, so its time is the adapter's cost of those loads alone: the floor any
// kernel reading each logit once from WGSL can reach, to set against a plain buffer copy.
// Bindings: as row_stats (0 student, 1 teacher, 2 mask, 3 states, 4 state flags, 5 ChunkParams);
//   writes one sum per invocation into states so the loads cannot be optimised away.
// Dispatch: as row_stats.

override WG: u32 = 64;

@group(0) @binding(0) var<storage, read> student: array<f32>;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> states: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> stateFlags: array<u32>;
@group(0) @binding(5) var<uniform> params: ChunkParams;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let split = wid.y;
  if (row >= params.rows || mask[params.firstRow + row] == 0u) {
    return;
  }
  let slice = vocabSlice(params, row, split);
  let n = slice.length;
  let sBase = params.studentBase + slice.rowStart;
  let tBase = params.teacherBase + slice.rowStart;
  let step = vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  var sum = vec4<f32>(0.0);
  var k = lid;
  while (k + 7u * WG < n) {
    sum += loadStudent4(sBase, k + step) + loadStudent4(sBase, k + 4u * WG + step) + loadTeacher4(tBase, k + step) + loadTeacher4(tBase, k + 4u * WG + step);
    k += 8u * WG;
  }
  while (k < n) {
    sum.x += student[sBase + k] + teacher[tBase + k];
    k += WG;
  }
  let slot = (row * params.splits + split) * WG + lid;
  states[2u * slot] = sum;
  stateFlags[slot] = 0u;
}
