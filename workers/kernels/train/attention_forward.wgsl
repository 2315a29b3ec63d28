// attention_forward: causal multi-head self-attention with a key mask, one query row of one head
// per workgroup.
//   score_ij = (q_i · k_j) / √D  for keys j ≤ i with keyMask[b, j] = 1
//   P_ij     = softmax_j(score_ij) (maximum subtracted; 0 for every other key)
//   ctx_i    = Σ_j P_ij · v_j
// A query whose own keyMask is 0 (padding) sees nothing: its ctx row and its probs row are 0.
// An unmasked query always sees itself, so its softmax has at least one term and never
// divides by zero; masked and future keys are left out of the sums (never given −inf scores), so
// no mask pattern can make a NaN from finite inputs.
//
// Layouts (row-major, N = B·T rows, E = H·D): qkv [N, 3E] = q | k | v per row, head h at columns
// h·D..(h+1)·D of each (the order of HF's c_attn output); ctx [N, E]; probs [B, H, T, T], element
// ((b·H + h)·T + i)·T + j.
//
// Bindings: 0 qkv f32 (read), 1 keyMask u32[N] (read), 2 ctx f32 (write), 3 probs f32 (write),
//   4 Params (uniform).
// Dispatch: (T, H, B) workgroups of WG invocations (WG a power of two ≤ 256; T ≤ MAX_T, D ≤ MAX_D).

// attention_common.wgsl: WG, MAX_T, MAX_D, Params, s, HeadRow, sumRowsWeightedByS.
const LOWEST: f32 = -0x1.fffffep+127f; // -f32 max

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> keyMask: array<u32>;
@group(0) @binding(2) var<storage, read_write> ctx: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> q: array<f32, MAX_D>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let at = headRow(wid);
  let i = at.x;
  let probBase = (headBase(at) + i) * at.T;
  let ctxBase = at.row * at.E + at.h * at.D;

  if (keyMask[at.row] == 0u) {
    for (var j = lid; j < at.T; j = j + WG) {
      probs[probBase + j] = 0.0;
    }
    for (var d = lid; d < at.D; d = d + WG) {
      ctx[ctxBase + d] = 0.0;
    }
    return;
  }

  let qBase = at.row * 3u * at.E + at.h * at.D;
  for (var d = lid; d < at.D; d = d + WG) {
    q[d] = qkv[qBase + d];
  }
  workgroupBarrier();

  // Scores of the visible keys; invocation lid owns keys lid, lid + WG, … throughout.
  var localMax = LOWEST;
  for (var j = lid; j <= i; j = j + WG) {
    let key = at.b * at.T + j;
    var score = 0.0;
    if (keyMask[key] != 0u) {
      let kBase = key * 3u * at.E + at.E + at.h * at.D;
      var dot = 0.0;
      for (var d = 0u; d < at.D; d = d + 1u) {
        dot = dot + q[d] * qkv[kBase + d];
      }
      score = dot * params.scale;
      localMax = max(localMax, score);
    }
    s[j] = score;
  }
  let m = workgroupMax(localMax, lid, WG);

  var localSum = 0.0;
  for (var j = lid; j <= i; j = j + WG) {
    let e = select(0.0, exp(s[j] - m), keyMask[at.b * at.T + j] != 0u);
    s[j] = e;
    localSum = localSum + e;
  }
  // ≥ 1: the maximum's own term is exp(0).
  let inv = 1.0 / workgroupSum(localSum, lid, WG);

  for (var j = lid; j < at.T; j = j + WG) {
    var p = 0.0;
    if (j <= i) {
      p = s[j] * inv;
      s[j] = p;
    }
    probs[probBase + j] = p;
  }
  workgroupBarrier();

  // ctx_i[d] = Σ_j P_ij v_j[d], over groups of invocations; then the groups are added.
  let G = sumRowsWeightedByS(at, i, 2u, lid);
  for (var d = lid; d < at.D; d = d + WG) {
    ctx[ctxBase + d] = groupSum2(d, at.D, G).x;
  }
}
