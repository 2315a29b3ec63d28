// distill_loss: the distillation losses that read the teacher's logits row beside the student's,
// and their gradients w.r.t. the student logits, one workgroup per logits row (the row layout of
// loss_grad.wgsl). With τ the temperature, p = softmax(z_s/τ) the student, q = softmax(z_t/τ)
// the teacher, y = the row's target (the sampled token), w = the row's weight:
//   mode 0, k3 (verl's low_var_kl as a loss at y): r = q(y)/p(y),
//     loss = w·(r − 1 − log r);  dz_v = w·(1 − r)·([v = y] − p_v)/τ;
//     log r is clamped to ±LOG_R_MAX first (r then stays finite; a teacher that forbids y gives a
//     large finite loss, not +inf) and the gradient uses that r; near r = 1 the loss and 1 − r
//     come from a series in log r (k3OfLogRatio), not from differences of numbers near 1.
//   mode 1, JSD(β) over the vocabulary, M = (1−β)p + βq:
//     β = 0  loss = w·KL(q‖p) = w·Σ q(log q − log p);               dz_v = w·(p_v − q_v)/τ
//     β = 1  loss = w·KL(p‖q) = w·Σ p(log p − log q) =: w·L;        dz_v = w·p_v(log p_v − log q_v − L)/τ
//     else   loss = w·(β·KL(q‖M) + (1−β)·KL(p‖M));  with g_v = (1−β)(log p_v − log M_v) = ∂L/∂p_v,
//            dz_v = w·p_v(g_v − Σ_u p_u g_u)/τ.
//   mode 2, top-k with a tail bucket: K = the teacher's k best tokens (larger logit first, ties to
//     the smaller id; k ≥ V takes them all), buckets i = 0..k−1 the tokens K_i and i = k the tail
//     (every other token): P_S,i = p(K_i), P_S,k = Σ_{v∉K} p_v, P_T likewise from q. Logs are of
//     ⌊P⌋ = max(P, MASS_FLOOR) and a term whose weight mass is 0 is 0, so an empty tail (or one
//     whose mass underflows) gives no NaN:
//       forward  L = Σ_i P_T,i(log⌊P_T,i⌋ − log⌊P_S,i⌋),  g_i = ∂L/∂P_S,i = −P_T,i/⌊P_S,i⌋;
//       reverse  L = Σ_i P_S,i(log⌊P_S,i⌋ − log⌊P_T,i⌋),  g_i = log⌊P_S,i⌋ − log⌊P_T,i⌋ + 1;
//     loss = w·L;  dz_v = w·p_v(g_{i(v)} − Σ_i P_S,i g_i)/τ (the softmax's chain rule, bucket by bucket).
// Absent tokens (−inf logits) have p or q = 0 and no term. A KL whose support is not covered
// (q = 0 where p > 0 for KL(p‖q)) is +inf, as it is: the lab's teachers have finite logits.
// Rows with w = 0 read nothing and write 0. A target ≥ V at a k3 row with w ≠ 0 writes NaN.
//
// Layouts: student logits, teacher logits and dlogits [rows, V] f32 (row n at n·V); targets u32,
//   weights f32 and stats [·, 4] f32 per row: (log p(y), entropy of p, 1, loss).
// Bindings: 0 student (read), 1 teacher (read), 2 targets (read), 3 weights (read),
//   4 dlogits (write), 5 stats (write), 6 Params (uniform).
// Dispatch: (min(rows, gridX), ⌈rows / gridX⌉) workgroups of WG invocations (WG a power of two ≤ 256).

override WG: u32 = 64;
override REDUCE_SLOTS: u32 = WG; // prelude.wgsl: one tree over the workgroup
// The largest k of mode 2 (distill-loss.ts MAX_DISTILL_TOP_K).
const KMAX: u32 = 64u;
const LOWEST: f32 = -0x1.fffffep+127f;
const MASS_FLOOR: f32 = 1e-30;
const LOG_R_MAX: f32 = 80.0;
const NO_TOKEN: u32 = 0xffffffffu;

struct Params {
  vocab: u32,
  rows: u32,
  mode: u32,
  invTemperature: f32,
  beta: f32,
  topK: u32,
  // Mode 2: 1 = forward KL(P_T‖P_S), 0 = reverse KL(P_S‖P_T).
  forward: u32,
  gridX: u32,
}

@group(0) @binding(0) var<storage, read> student: array<f32>;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// Mode 2: the argmax tree's (logit, id) pairs, the chosen ids and the buckets' g_i.
var<workgroup> bestValue: array<f32, WG>;
var<workgroup> bestId: array<u32, WG>;
var<workgroup> topIds: array<u32, KMAX>;
// g_i of the k + 1 buckets, then (at KMAX + 1, KMAX + 2) S = Σ_i P_S,i g_i and L.
var<workgroup> bucketG: array<f32, 67>;

// (va, ia) comes before (vb, ib) in the teacher's order: larger logit first, ties to the smaller id.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

// p·log-ratio with 0 where the weight is 0 (0·(−inf) would be NaN).
fn term(weight: f32, logA: f32, logB: f32) -> f32 {
  return select(0.0, weight * (logA - logB), weight > 0.0);
}

// k3 = r − 1 − log r = e^x − 1 − x for x = log r. Near x = 0 both r − 1 and the loss are small
// differences of O(1) numbers (f32 would keep only ~ε32/x² of the loss), so for |x| < 1/2 it is
// the Taylor series Σ_{n≥2} x^n/n! to n = 8 (remainder < x^9/9! ≈ 5e-9 of 1/8, below ε32 of the loss).
fn k3OfLogRatio(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    return x * x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x / 40320.0))))));
  }
  return exp(x) - 1.0 - x;
}

fn logFloor(m: f32) -> f32 {
  return log(max(m, MASS_FLOOR));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = wid.y * params.gridX + wid.x;
  if (n >= params.rows) {
    return;
  }
  let V = params.vocab;
  let base = n * V;
  let w = weights[n];
  if (w == 0.0) {
    zeroLossRow(base, V, n, lid);
    return;
  }
  let invT = params.invTemperature;

  var ms = LOWEST;
  var mt = LOWEST;
  for (var v = lid; v < V; v = v + WG) {
    ms = max(ms, student[base + v]);
    mt = max(mt, teacher[base + v]);
  }
  ms = workgroupMax(ms, lid, WG);
  mt = workgroupMax(mt, lid, WG);
  var zs = 0.0;
  var ws = 0.0;
  var zt = 0.0;
  for (var v = lid; v < V; v = v + WG) {
    let u = (student[base + v] - ms) * invT;
    let e = exp(u);
    zs = zs + e;
    ws = ws + select(0.0, e * u, e > 0.0);
    zt = zt + exp((teacher[base + v] - mt) * invT);
  }
  zs = workgroupSum(zs, lid, WG);
  ws = workgroupSum(ws, lid, WG);
  zt = workgroupSum(zt, lid, WG);
  let logZs = log(zs);
  let logZt = log(zt);
  let entropy = logZs - ws / zs;

  var nanBits = 0x7fc00000u;
  let nan = bitcast<f32>(nanBits);
  let y = targets[n];
  let validTarget = y < V;
  let yy = min(y, V - 1u);
  let logpY = (student[base + yy] - ms) * invT - logZs;
  let logqY = (teacher[base + yy] - mt) * invT - logZt;

  let beta = params.beta;
  var loss = 0.0;

  if (params.mode == 0u) {
    // k3 at the sampled token.
    let logR = clamp(logqY - logpY, -LOG_R_MAX, LOG_R_MAX);
    let k3 = k3OfLogRatio(logR);
    loss = select(nan, w * k3, validTarget);
    // 1 − r = −(k3 + log r), without the cancellation of 1 − e^x near x = 0.
    let coef = select(nan, -w * (k3 + logR) * invT, validTarget);
    for (var v = lid; v < V; v = v + WG) {
      let p = exp((student[base + v] - ms) * invT - logZs);
      dlogits[base + v] = coef * (select(0.0, 1.0, v == y) - p);
    }
  } else if (params.mode == 1u) {
    // JSD(β): the loss and S = Σ_u p_u g_u first, then dz_v = w·(p_v g_v − p_v S)/τ.
    let log1mb = log(1.0 - beta);
    let logb = log(beta);
    var localL = 0.0;
    var localS = 0.0;
    for (var v = lid; v < V; v = v + WG) {
      let lp = (student[base + v] - ms) * invT - logZs;
      let lq = (teacher[base + v] - mt) * invT - logZt;
      let p = exp(lp);
      let q = exp(lq);
      if (beta == 0.0) {
        localL += term(q, lq, lp);
        localS -= q;
      } else if (beta == 1.0) {
        localL += term(p, lp, lq);
      } else {
        let a = log1mb + lp;
        let b = logb + lq;
        let hi = max(a, b);
        // log M = logaddexp(a, b); NaN only when both are −inf, where p = q = 0 and term() drops it.
        let lm = hi + log(1.0 + exp(-abs(a - b)));
        localL += beta * term(q, lq, lm) + (1.0 - beta) * term(p, lp, lm);
        localS += (1.0 - beta) * term(p, lp, lm);
      }
    }
    let L = workgroupSum(localL, lid, WG);
    var S = workgroupSum(localS, lid, WG);
    if (beta == 1.0) {
      // p·g with g = log p − log q + 1: S = L + 1, and the +1 cancels in g − S.
      S = L;
    }
    loss = w * L;
    for (var v = lid; v < V; v = v + WG) {
      let lp = (student[base + v] - ms) * invT - logZs;
      let lq = (teacher[base + v] - mt) * invT - logZt;
      let p = exp(lp);
      var pg = 0.0;
      if (beta == 0.0) {
        pg = -exp(lq);
      } else if (beta == 1.0) {
        pg = term(p, lp, lq);
      } else {
        let a = log1mb + lp;
        let b = logb + lq;
        let hi = max(a, b);
        let lm = hi + log(1.0 + exp(-abs(a - b)));
        pg = (1.0 - beta) * term(p, lp, lm);
      }
      dlogits[base + v] = w * (pg - p * S) * invT;
    }
  } else {
    // Top-k: k argmax passes over the teacher's row, each taking the best token after the last.
    let k = min(params.topK, V);
    var prevValue = 0.0;
    var prevId = NO_TOKEN;
    for (var j = 0u; j < k; j = j + 1u) {
      var bv = LOWEST;
      var bi = NO_TOKEN;
      var first = true;
      for (var v = lid; v < V; v = v + WG) {
        let zv = teacher[base + v];
        let eligible = j == 0u || before(prevValue, prevId, zv, v);
        if (eligible && (first || before(zv, v, bv, bi))) {
          bv = zv;
          bi = v;
          first = false;
        }
      }
      bestValue[lid] = bv;
      bestId[lid] = bi;
      for (var half = WG / 2u; half > 0u; half /= 2u) {
        workgroupBarrier();
        if (lid < half) {
          let ov = bestValue[lid + half];
          let oi = bestId[lid + half];
          if (oi != NO_TOKEN && (bestId[lid] == NO_TOKEN || before(ov, oi, bestValue[lid], bestId[lid]))) {
            bestValue[lid] = ov;
            bestId[lid] = oi;
          }
        }
      }
      workgroupBarrier();
      prevValue = bestValue[0];
      prevId = bestId[0];
      if (lid == 0u) {
        topIds[j] = prevId;
      }
      workgroupBarrier();
    }
    // prev is now the k-th token: v ∈ K ⇔ v is it or comes before it.
    var tailS = 0.0;
    var tailT = 0.0;
    for (var v = lid; v < V; v = v + WG) {
      let zv = teacher[base + v];
      if (!(v == prevId || before(zv, v, prevValue, prevId))) {
        tailS += exp((student[base + v] - ms) * invT - logZs);
        tailT += exp((zv - mt) * invT - logZt);
      }
    }
    tailS = workgroupSum(tailS, lid, WG);
    tailT = workgroupSum(tailT, lid, WG);
    if (lid == 0u) {
      var L = 0.0;
      var S = 0.0;
      for (var i = 0u; i <= k; i = i + 1u) {
        var ps = tailS;
        var pt = tailT;
        if (i < k) {
          let id = topIds[i];
          ps = exp((student[base + id] - ms) * invT - logZs);
          pt = exp((teacher[base + id] - mt) * invT - logZt);
        }
        var g = 0.0;
        if (params.forward == 1u) {
          L += term(pt, logFloor(pt), logFloor(ps));
          g = -pt / max(ps, MASS_FLOOR);
        } else {
          L += term(ps, logFloor(ps), logFloor(pt));
          g = logFloor(ps) - logFloor(pt) + 1.0;
        }
        bucketG[i] = g;
        S += ps * g;
      }
      bucketG[KMAX + 1u] = S;
      bucketG[KMAX + 2u] = L;
    }
    workgroupBarrier();
    let S = bucketG[KMAX + 1u];
    loss = w * bucketG[KMAX + 2u];
    for (var v = lid; v < V; v = v + WG) {
      let zv = teacher[base + v];
      var i = k;
      if (v == prevId || before(zv, v, prevValue, prevId)) {
        for (var j = 0u; j < k; j = j + 1u) {
          if (topIds[j] == v) {
            i = j;
          }
        }
      }
      let p = exp((student[base + v] - ms) * invT - logZs);
      dlogits[base + v] = w * p * (bucketG[i] - S) * invT;
    }
  }

  if (lid == 0u) {
    stats[n * 4u] = select(nan, logpY, validTarget);
    stats[n * 4u + 1u] = entropy;
    stats[n * 4u + 2u] = 1.0;
    stats[n * 4u + 3u] = loss;
  }
}
