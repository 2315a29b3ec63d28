// loss_grad: the per-token training loss of one logits row and its gradient w.r.t. the logits,
// one workgroup per row. With τ the temperature, u_v = (z_v − max z)/τ, Z = Σ_v e^{u_v},
// logp_v = u_v − log Z (log_softmax(z/τ)), p_v = e^{logp_v}, y = the row's target:
//   mode 0, CE (SFT):  loss = −w·logp_y;                    dz_v = w·(p_v − [v = y])/τ
//   mode 1, PG (importance-sampled policy gradient, DESIGN.md): ρ = exp(logp_y − old),
//     surrogate = min(ρA, clamp(ρ, 1−ε, 1+ε)·A) (ε = 0: ρA), loss = −w·surrogate, A constant;
//     dz_v = w·A·ρ·(p_v − [v = y])/τ when the unclipped term ρA is the smaller (ties included),
//     else 0 (the clipped term is flat in z).
// Rows with w = 0 read nothing: their gradient and stats are written as 0.
// Numerics: three passes over the row (max, then Z and Σ e^u·u, then the gradient), the maximum
// subtracted before the division by τ, so logits of any finite magnitude give finite outputs;
// e^u·u is taken as 0 where e^u underflows (u may be −inf for a −inf logit). ρ may overflow to
// +inf (logp − old > 88.7): ρ and the loss then say so, and the gradient's coefficient w·A·ρ/τ
// is clamped from ±inf to ±f32 max so that coefficient × (p − onehot) stays finite, never NaN. Non-finite
// logits are not hidden: NaN or +inf reach the sums and give NaN outputs. A target ≥ V at a row
// with w ≠ 0 writes NaN to that row's gradient and stats (a trainer bug made loud).
//
// Layouts: logits and dlogits [rows, V] f32 (row n at n·V; dlogits overwritten); targets u32,
//   weights, oldLogprobs, advantages f32 and stats [·, 4] f32 are indexed at firstRow + n (so a
//   trainer that streams logits in chunks of rows keeps whole-batch per-row buffers);
//   stats row = (logp_y, entropy of p, ρ (1 for CE), loss).
// Bindings: 0 logits (read), 1 targets (read), 2 weights (read), 3 oldLogprobs (read),
//   4 advantages (read), 5 dlogits (write), 6 stats (write), 7 Params (uniform).
// Dispatch: (min(rows, gridX), ⌈rows / gridX⌉) workgroups of WG invocations (WG a power of two ≤ 256);
//   row n = wid.y·gridX + wid.x; invocation lid reads elements lid, lid + WG, … (coalesced).

override WG: u32 = 64;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: one tree over the workgroup

const LOWEST: f32 = -0x1.fffffep+127f; // -f32 max
const HIGHEST: f32 = 0x1.fffffep+127f; // f32 max

struct Params {
  vocab: u32,
  rows: u32,
  mode: u32,
  invTemperature: f32,
  clip: f32,
  firstRow: u32,
  gridX: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> oldLogprobs: array<f32>;
@group(0) @binding(4) var<storage, read> advantages: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = wid.y * params.gridX + wid.x;
  if (n >= params.rows) {
    return;
  }
  let r = params.firstRow + n;
  let V = params.vocab;
  let base = n * V;
  let w = weights[r];

  if (w == 0.0) {
    zeroLossRow(base, V, r, lid);
    return;
  }

  var localMax = LOWEST;
  for (var v = lid; v < V; v = v + WG) {
    localMax = max(localMax, logits[base + v]);
  }
  let m = workgroupMax(localMax, lid, WG);

  let invT = params.invTemperature;
  var localZ = 0.0;
  var localW = 0.0;
  for (var v = lid; v < V; v = v + WG) {
    let u = (logits[base + v] - m) * invT;
    let e = exp(u);
    localZ = localZ + e;
    localW = localW + select(0.0, e * u, e > 0.0);
  }
  let Z = workgroupSum(localZ, lid, WG);
  let W = workgroupSum(localW, lid, WG);
  let logZ = log(Z);
  let entropy = logZ - W / Z;

  var nanBits = 0x7fc00000u;
  let nan = bitcast<f32>(nanBits);
  let y = targets[r];
  let validTarget = y < V;
  let logp = select(nan, (logits[base + min(y, V - 1u)] - m) * invT - logZ, validTarget);

  var rho = 1.0;
  var loss = 0.0;
  var coef = 0.0;
  if (params.mode == 0u) {
    loss = -w * logp;
    coef = w * invT;
  } else {
    let a = advantages[r];
    rho = exp(logp - oldLogprobs[r]);
    // ρ may be +inf; ρ·0 is taken as 0.
    let unclipped = select(rho * a, 0.0, a == 0.0);
    var surrogate = unclipped;
    var unclippedActive = a != 0.0;
    if (params.clip > 0.0) {
      let clipped = clamp(rho, 1.0 - params.clip, 1.0 + params.clip) * a;
      if (clipped < unclipped) {
        surrogate = clipped;
        unclippedActive = false;
      }
    }
    loss = -w * surrogate;
    if (unclippedActive) {
      // ±inf → ±f32 max; a NaN (from a NaN input) stays NaN.
      let raw = w * a * rho * invT;
      coef = select(raw, sign(raw) * HIGHEST, abs(raw) > HIGHEST);
    }
  }
  coef = select(nan, coef, validTarget);

  for (var v = lid; v < V; v = v + WG) {
    let p = exp((logits[base + v] - m) * invT - logZ);
    dlogits[base + v] = coef * (p - select(0.0, 1.0, v == y));
  }
  if (lid == 0u) {
    stats[r * 4u] = logp;
    stats[r * 4u + 1u] = entropy;
    stats[r * 4u + 2u] = rho;
    stats[r * 4u + 3u] = loss;
  }
}
