// clip_scale: the global gradient norm and the clipping factor, from per-tensor sums of squares.
//   total  = √(Σ_i norms[i]), i < count
//   scale  = maxNorm > 0 ? min(1, maxNorm / (total + 1e-6)) : 1      (as torch's clip_grad_norm_)
//   finite = 1 when total is finite, else 0 (a NaN/Inf gradient, or Σ beyond float32's range)
//   nonFinite = how many slots norms[i] are NaN or Inf
// Finiteness is read from the bits (exponent all ones), never from comparisons: WGSL lets a
// compiler assume floats are finite, so `x != x` may be folded away.
// Bindings: 0 norms f32 (read), 1 clip Clip (read_write), 2 Params (uniform).
// Dispatch: (1) workgroup of WG invocations.

override WG: u32 = 64;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: one tree over the workgroup

struct Params {
  count: u32,
  maxNorm: f32,
}

// 16 bytes; optimizer.ts decodes the same layout.
struct Clip {
  scale: f32,
  norm: f32,
  finite: u32,
  nonFinite: u32,
}

@group(0) @binding(0) var<storage, read> norms: array<f32>;
@group(0) @binding(1) var<storage, read_write> clip: Clip;
@group(0) @binding(2) var<uniform> params: Params;

fn isFinite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  var nonFinite = 0u;
  for (var i = lid; i < params.count; i += WG) {
    let x = norms[i];
    sum += x;
    nonFinite += select(1u, 0u, isFinite(x));
  }
  // (Σ norms, count of non-finite slots) in one tree; the counts are whole numbers below 2^24,
  // so their f32 sums are exact.
  let sums = workgroupSum2(vec2<f32>(sum, f32(nonFinite)), lid, WG);
  let bad = u32(sums.y);
  if (lid == 0u) {
    let total = sqrt(sums.x);
    let finite = isFinite(total) && bad == 0u;
    var scale = 1.0;
    if (finite && params.maxNorm > 0.0) {
      scale = min(1.0, params.maxNorm / (total + 1e-6));
    }
    clip.scale = scale;
    clip.norm = total;
    clip.finite = select(0u, 1u, finite);
    clip.nonFinite = bad;
  }
}
