// attention_common.wgsl: what the fused attention kernels (attention_forward.wgsl and
// attention_backward.wgsl) share, compiled between the training prelude and each of them by
// attention.ts (WGSL has no include). Each of them declares `qkv` (f32 [N, 3E]: q | k | v per
// row, head h at columns h·D..(h+1)·D of each) and `params: Params` among its bindings.
//
// Both run one row of one head per workgroup: a (T, H, B) dispatch of WG invocations (WG a power
// of two ≤ 256; T ≤ MAX_T, D ≤ MAX_D).

override WG: u32 = 64;

// Capacities of the workgroup arrays, set by the wrapper from T and D in a few buckets (one
// pipeline serves every batch shape of a bucket; bigger arrays cost SwiftShader compile time).
override MAX_T: u32 = 256u;
override MAX_D: u32 = 64u;
// prelude.wgsl: trees over the workgroup (WG slots), group sums over G·D ≤ max(WG, MAX_D) slots.
override REDUCE_SLOTS: u32 = max(WG, MAX_D);

struct Params {
  batch: u32,
  seq: u32,
  heads: u32,
  headDim: u32,
  scale: f32,
}

// One value per position of the row's sequence (scores, probabilities, their gradients).
var<workgroup> s: array<f32, MAX_T>;

// Where workgroup (x, h, b) works: position x of sequence b, head h.
struct HeadRow {
  x: u32,
  h: u32,
  b: u32,
  T: u32,
  H: u32,
  D: u32,
  E: u32, // H·D
  row: u32, // b·T + x, the row of qkv
}

fn headRow(wid: vec3<u32>) -> HeadRow {
  let T = params.seq;
  let H = params.heads;
  let D = params.headDim;
  return HeadRow(wid.x, wid.y, wid.z, T, H, D, H * D, wid.z * T + wid.x);
}

// The first element of the (T, T) block of sequence b and head h in probs and dscores:
// element (i, j) sits at (headBase + i)·T + j.
fn headBase(at: HeadRow) -> u32 {
  return (at.b * at.H + at.h) * at.T;
}

// Σ_{j ≤ i} s[j] · section[j] for the D columns of head h, where section 1 is k and 2 is v in
// qkv's rows of sequence b, terms with s[j] = 0 left out. G = WG / D groups of D invocations (one
// group of WG when D > WG) take the keys j ≡ g (mod G), group g's partial sums going to
// reduceScratch2[g·D + d].x; the caller adds the groups with groupSum2(d, D, G). Returns G.
fn sumRowsWeightedByS(at: HeadRow, i: u32, section: u32, lid: u32) -> u32 {
  let D = at.D;
  let E = at.E;
  let G = max(1u, WG / D);
  for (var c = lid; c < G * D; c = c + WG) {
    let g = c / D;
    let d = c % D;
    var acc = 0.0;
    for (var j = g; j <= i; j = j + G) {
      let w = s[j];
      let value = qkv[(at.b * at.T + j) * 3u * E + section * E + at.h * D + d];
      acc = acc + select(0.0, w * value, w != 0.0);
    }
    reduceScratch2[c] = vec2<f32>(acc, 0.0);
  }
  workgroupBarrier();
  return G;
}
