// prelude.wgsl: the workgroup reductions the training kernels share, prepended to a kernel's
// source by prelude.ts (WGSL has no include).
//
// Every reduction is the same fixed tree: `lanes` values (a power of two) of one column; at each
// step, with half = lanes/2, lanes/4, …, 1, lane l < half combines lane l + half into its own
// slot, a barrier before each step. Results do not depend on timing, and every kernel combines
// its values in the same order. A workgroup may run `columns` such trees side by side (column
// sums over a (columns, lanes) workgroup); value (column c, lane l) sits in slot l·columns + c.
// Every call must be made in uniform control flow. It returns the result to every invocation and
// ends with a barrier, so the scratch is free for the next call.
//
// A kernel that includes this declares `override REDUCE_SLOTS: u32`: the slots its reductions
// use (columns × lanes, and groups × width for groupSum2). The scratch arrays take workgroup
// memory only in entry points that use them.

var<workgroup> reduceScratch: array<f32, REDUCE_SLOTS>;
var<workgroup> reduceScratch2: array<vec2<f32>, REDUCE_SLOTS>;

const REDUCE_ADD: u32 = 0u;
const REDUCE_MAX: u32 = 1u;

// The sum (REDUCE_ADD) or maximum (REDUCE_MAX) of `v` over the lanes of `column`.
fn columnReduce(v: f32, op: u32, column: u32, columns: u32, lane: u32, lanes: u32) -> f32 {
  let at = lane * columns + column;
  reduceScratch[at] = v;
  for (var half = lanes / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lane < half) {
      let a = reduceScratch[at];
      let b = reduceScratch[at + half * columns];
      reduceScratch[at] = select(a + b, max(a, b), op == REDUCE_MAX);
    }
  }
  workgroupBarrier();
  let total = reduceScratch[column];
  workgroupBarrier(); // every invocation has read the total before the scratch is written again
  return total;
}

// The sum of `v` over the lanes of `column`, both components at once.
fn columnSum2(v: vec2<f32>, column: u32, columns: u32, lane: u32, lanes: u32) -> vec2<f32> {
  let at = lane * columns + column;
  reduceScratch2[at] = v;
  for (var half = lanes / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lane < half) {
      reduceScratch2[at] += reduceScratch2[at + half * columns];
    }
  }
  workgroupBarrier();
  let total = reduceScratch2[column];
  workgroupBarrier();
  return total;
}

// One tree over the whole workgroup: `lanes` invocations, lane = local_invocation_index.
fn workgroupSum(v: f32, lane: u32, lanes: u32) -> f32 {
  return columnReduce(v, REDUCE_ADD, 0u, 1u, lane, lanes);
}

fn workgroupMax(v: f32, lane: u32, lanes: u32) -> f32 {
  return columnReduce(v, REDUCE_MAX, 0u, 1u, lane, lanes);
}

fn workgroupSum2(v: vec2<f32>, lane: u32, lanes: u32) -> vec2<f32> {
  return columnSum2(v, 0u, 1u, lane, lanes);
}

// Σ_g reduceScratch2[g·width + d] over g < groups, in order of g: the total of column d when
// `groups` groups of invocations have each written their partial sums of `width` columns there
// (followed by a barrier). The caller reads the scratch, so it must not be written again until
// every invocation is past this (a barrier).
fn groupSum2(d: u32, width: u32, groups: u32) -> vec2<f32> {
  var total = vec2<f32>(0.0);
  for (var g = 0u; g < groups; g = g + 1u) {
    total = total + reduceScratch2[g * width + d];
  }
  return total;
}
