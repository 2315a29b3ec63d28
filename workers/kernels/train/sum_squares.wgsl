// sum_squares: one stage of the sum of squares of a tensor, Σ x², for gradient norms.
//   SQUARE = true  (stage 1): workgroup w adds x² over elements w·WG + lid, stepping by
//                  (workgroups · WG), and writes its sum to output[outOffset + w].
//   SQUARE = false (stage 2): the same over plain values, run as one workgroup over the stage-1
//                  partial sums, writing their total to output[outOffset] (a slot of `norms`).
// A tensor small enough for one workgroup skips stage 2: stage 1 writes straight into the slot.
// Only additions of non-negative squares: a NaN or ±Inf element makes the slot NaN or +Inf
// (nothing takes a max or min of the sums, which could drop a NaN); a sum beyond float32's range
// becomes +Inf, which the clip kernel treats as non-finite too.
// Bindings: 0 input f32 (read), 1 output f32 (read_write), 2 Params (uniform).
// Dispatch: (G) workgroups of WG invocations, G ≤ the number of stage-1 partial sums; stage 2: (1).

override WG: u32 = 64;
override SQUARE: bool = true;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: one tree over the workgroup

struct Params {
  count: u32,
  outOffset: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let stride = strideStep(grid, WG);
  var sum = 0.0;
  for (var i = strideFirst(grid, WG); i < params.count; i += stride) {
    let x = input[i];
    if (SQUARE) {
      sum += x * x;
    } else {
      sum += x;
    }
  }
  // Tree reduction; WG is a power of two.
  let total = workgroupSum(sum, grid.lid, WG);
  if (grid.lid == 0u) {
    output[params.outOffset + grid.wid.x] = total;
  }
}
