// adamw: one AdamW step (decoupled weight decay) on one parameter tensor, after global clipping.
// When the clip buffer's finite flag is 0 (some gradient is NaN/Inf) the step is skipped:
// parameter and moments are left bit-identical. Otherwise, per element:
//   g = grad · clip.scale
//   m = β1·m + (1−β1)·g
//   v = β2·v + (1−β2)·g²
//   p = p − lr·( (m·invBc1) / (√v·invSqrtBc2 + ε) + wd·p )
// with invBc1 = 1/(1−β1^t) and invSqrtBc2 = 1/√(1−β2^t) computed on the CPU in float64, and the
// factors β and 1−β each rounded from float64 (not 1 − f32(β), which is off by 1e-5 for 0.999).
// ZERO_GRAD: the gradient is set to 0 as well, so the next step can accumulate into it. It is
// zeroed on a skipped step too: the gradient is consumed either way, and keeping a NaN in it
// would poison every following step's accumulation.
// Bindings: 0 param f32, 1 grad f32, 2 m f32, 3 v f32 (read_write), 4 clip Clip (read),
//   5 Params (uniform).
// Dispatch: (G) workgroups of WG, any G ≥ 1: invocations step through the tensor by G·WG.

override WG: u32 = 64;
override ZERO_GRAD: bool = false;

struct Params {
  count: u32,
  lr: f32,
  beta1: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  weightDecay: f32,
  invBc1: f32,
  invSqrtBc2: f32,
}

struct Clip {
  scale: f32,
  norm: f32,
  finite: u32,
  nonFinite: u32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> clip: Clip;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let stride = strideStep(grid, WG);
  let apply = clip.finite != 0u;
  let scale = clip.scale;
  for (var i = strideFirst(grid, WG); i < params.count; i += stride) {
    if (apply) {
      let g = grad[i] * scale;
      let mi = params.beta1 * m[i] + params.oneMinusBeta1 * g;
      let vi = params.beta2 * v[i] + params.oneMinusBeta2 * (g * g);
      let p = param[i];
      let update = (mi * params.invBc1) / (sqrt(vi) * params.invSqrtBc2 + params.eps);
      m[i] = mi;
      v[i] = vi;
      param[i] = p - params.lr * (update + params.weightDecay * p);
    }
    if (ZERO_GRAD) {
      grad[i] = 0.0;
    }
  }
}
