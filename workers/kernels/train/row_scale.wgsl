// row_scale: x[n, v] *= w[n] for a row-major [rows, cols] matrix — per-token loss weights (mask
// and normalisation) applied to a gradient computed unweighted, e.g. the full-vocabulary reverse
// KL's ∂KL_t/∂z_t from the divergence kernels.
// Bindings: 0 x f32[rows·cols] (read_write), 1 w f32[rows] (read), 2 Params (uniform).
// Dispatch: a 2-D grid of WG-wide workgroups covering rows·cols elements (x + y·65535·WG).

override WG: u32 = 64;

struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.rows * params.cols) {
    return;
  }
  x[i] = x[i] * w[i / params.cols];
}
