// matmul_common.wgsl: what the two matrix-product kernels (matmul_register.wgsl and
// matmul_tiled.wgsl) share, compiled before each of them by matmul.ts (WGSL has no include):
// their flags, Params, their bindings (the same for both, so the wrapper binds either alike) and
// the write of C. Each kernel declares WG_X, its workgroup's width: an invocation's columns are
// col0 + j·WG_X, j = 0..3.
//
// Bindings: 0 A f32 (read), 1 B f32 (read), 2 bias f32[n] (read; bound to any buffer when
//   !HAS_BIAS), 3 C f32 (read_write), 4 Params (uniform).

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;
override HAS_BIAS: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  strideA: u32,
  strideB: u32,
  strideC: u32,
  alpha: f32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// bias at the four columns first + j·WG_X (clamped into [0, n)), or 0 without a bias.
fn biasAt(first: u32) -> vec4<f32> {
  if (!HAS_BIAS) {
    return vec4<f32>(0.0);
  }
  let cols = min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u) * WG_X, vec4<u32>(params.n - 1u));
  return vec4<f32>(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);
}

// Writes (or, when ACCUMULATE, adds) v[j] to C[row, col0 + j·WG_X] for the j whose column is
// inside; cBase is the batch entry's first element of C.
fn storeRow(cBase: u32, row: u32, col0: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) {
    let col = col0 + j * WG_X;
    if (col < params.n) {
      let idx = cBase + row * params.n + col;
      if (ACCUMULATE) {
        C[idx] += v[j];
      } else {
        C[idx] = v[j];
      }
    }
  }
}
