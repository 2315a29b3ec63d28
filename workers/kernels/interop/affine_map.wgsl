// affine_map: y[i] = a * x[i] + b, reading x in place from any storage buffer of the device
// (in the interop self-check, onnxruntime-web's output buffer, without a copy).
// Bindings: 0 = x (read-only storage, f32[n]), 1 = y (storage, f32[n]), 2 = params (uniform: n, a, b).
// Dispatch: ceil(n / WG) workgroups in x.

override WG: u32 = 64;

struct Params {
  n: u32,
  a: f32,
  b: f32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= params.n) {
    return;
  }
  y[i] = params.a * x[i] + params.b;
}
