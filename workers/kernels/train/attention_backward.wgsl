// attention_backward: the gradient of attention_forward.wgsl, in two entry points run in order.
// With dO = dctx, P = probs (saved by the forward), scale = 1/√D, per sequence b and head h:
//   dP_ij = dO_i · v_j          δ_i = Σ_j P_ij dP_ij          dS_ij = P_ij (dP_ij − δ_i)
//   dq_i  = scale · Σ_j dS_ij k_j
//   dk_j  = scale · Σ_i dS_ij q_i          dv_j = Σ_i P_ij dO_i
// `queries` (one query row i per workgroup): dP, δ, dS (written to the scratch dscores, same
//   layout as probs, zeros included), and dq_i.
// `keys` (one key row j per workgroup, after `queries`): dk_j and dv_j, from the columns j of P
//   and dS over the queries i ≥ j.
// No mask is read: masked and future keys, and every key of a masked query, have P_ij = 0, and
// every term with P_ij = 0 (or dS_ij = 0) is left out of the sums, so those rows and columns get
// exactly 0 gradient and no value stored there (even a non-finite one) can leak in.
//
// Layouts (row-major, N = B·T rows, E = H·D): qkv and dqkv [N, 3E] (q | k | v per row, head h at
// columns h·D..(h+1)·D of each); dctx [N, E]; probs and dscores [B, H, T, T], element
// ((b·H + h)·T + i)·T + j. dqkv is overwritten entirely: q columns by `queries`, k and v by `keys`.
//
// Bindings: 0 dctx f32 (read), 1 probs f32 (read), 2 qkv f32 (read), 3 dqkv f32 (write),
//   4 dscores f32 (scratch: written by `queries`, read by `keys`), 5 Params (uniform).
// Dispatch, both entry points: (T, H, B) workgroups of WG invocations (WG a power of two ≤ 256;
//   T ≤ MAX_T, D ≤ MAX_D).

// attention_common.wgsl: WG, MAX_T, MAX_D, Params, s, HeadRow, sumRowsWeightedByS.

@group(0) @binding(0) var<storage, read> dctx: array<f32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(4) var<storage, read_write> dscores: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> o: array<f32, MAX_D>;

@compute @workgroup_size(WG)
fn queries(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let at = headRow(wid);
  let i = at.x;
  let probBase = (headBase(at) + i) * at.T;

  for (var d = lid; d < at.D; d = d + WG) {
    o[d] = dctx[at.row * at.E + at.h * at.D + d];
  }
  workgroupBarrier();

  // dP_ij for the keys this query attends to; invocation lid owns keys lid, lid + WG, ….
  var localDelta = 0.0;
  for (var j = lid; j <= i; j = j + WG) {
    let p = probs[probBase + j];
    var dp = 0.0;
    if (p != 0.0) {
      let vBase = (at.b * at.T + j) * 3u * at.E + 2u * at.E + at.h * at.D;
      for (var d = 0u; d < at.D; d = d + 1u) {
        dp = dp + o[d] * qkv[vBase + d];
      }
      localDelta = localDelta + p * dp;
    }
    s[j] = dp;
  }
  let delta = workgroupSum(localDelta, lid, WG);

  for (var j = lid; j < at.T; j = j + WG) {
    var ds = 0.0;
    if (j <= i) {
      let p = probs[probBase + j];
      ds = select(0.0, p * (s[j] - delta), p != 0.0);
      s[j] = ds;
    }
    dscores[probBase + j] = ds;
  }
  workgroupBarrier();

  // dq_i[d] = scale · Σ_j dS_ij k_j[d], summed by groups of invocations as in the forward.
  let G = sumRowsWeightedByS(at, i, 1u, lid);
  for (var d = lid; d < at.D; d = d + WG) {
    dqkv[at.row * 3u * at.E + at.h * at.D + d] = groupSum2(d, at.D, G).x * params.scale;
  }
}

@compute @workgroup_size(WG)
fn keys(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let at = headRow(wid);
  let j = at.x;
  let h = at.h;
  let b = at.b;
  let T = at.T;
  let D = at.D;
  let E = at.E;
  let row = at.row;
  let base = headBase(at);

  // dk_j[d] and dv_j[d] over the queries i ≥ j: group g of G = WG / D takes i ≡ j + g (mod G).
  let G = max(1u, WG / D);
  for (var c = lid; c < G * D; c = c + WG) {
    let g = c / D;
    let d = c % D;
    var accK = 0.0;
    var accV = 0.0;
    for (var i = j + g; i < T; i = i + G) {
      let k = (base + i) * T + j;
      let p = probs[k];
      let ds = dscores[k];
      let qi = qkv[(b * T + i) * 3u * E + h * D + d];
      let doi = dctx[(b * T + i) * E + h * D + d];
      accK = accK + select(0.0, ds * qi, ds != 0.0);
      accV = accV + select(0.0, p * doi, p != 0.0);
    }
    reduceScratch2[c] = vec2<f32>(accK, accV);
  }
  workgroupBarrier();
  for (var d = lid; d < D; d = d + WG) {
    let total = groupSum2(d, D, G);
    dqkv[row * 3u * E + E + h * D + d] = total.x * params.scale;
    dqkv[row * 3u * E + 2u * E + h * D + d] = total.y;
  }
}
