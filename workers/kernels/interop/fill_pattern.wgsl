// fill_pattern: writes a deterministic test pattern x[i] = scale * (f32(i % period) - offset).
// Used by the GPU interop self-check to produce an ONNX input entirely on the GPU.
// Bindings: 0 = out (storage, f32[n]), 1 = params (uniform: n, period, scale, offset).
// Dispatch: ceil(n / WG) workgroups in x.

override WG: u32 = 64;

struct Params {
  n: u32,
  period: u32,
  scale: f32,
  offset: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= params.n) {
    return;
  }
  out[i] = params.scale * (f32(i % params.period) - params.offset);
}
