// gqa_unpack: the gradient of gqa_pack.wgsl. From dqkv [N, 3·H·D] (the attention backward's
// output for the expanded heads): dq [N, H·D] is the q section; dk and dv [N, Hkv·D] are, for
// each KV head, the sum over its G = H / Hkv query heads of the k and v sections (every query
// head of a group read the same KV head). All three are overwritten.
//
// One invocation per element of dq, j = n·E + h·D + d (E = H·D): it copies dq[j], and the first
// N·Hkv·D invocations, one per element jkv = n·Ekv + g·D + d of dk and dv (Ekv = Hkv·D), also add
// the G heads g·G … g·G + G − 1 of their group, in order of h (no atomics, one writer per
// element, a result independent of timing).
//
// Bindings: 0 dqkv f32[N·3E] (read), 1 dq f32[N·E] (read_write), 2 dk f32[N·Ekv] (read_write),
//   3 dv f32[N·Ekv] (read_write), 4 Params (uniform).
// Dispatch: ceil(N·E / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   j = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 64;

struct Params {
  // N·E
  count: u32,
  heads: u32,
  kvHeads: u32,
  headDim: u32,
}

@group(0) @binding(0) var<storage, read> dqkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> dq: array<f32>;
@group(0) @binding(2) var<storage, read_write> dk: array<f32>;
@group(0) @binding(3) var<storage, read_write> dv: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let j = flatInvocation(grid, WG);
  if (j >= params.count) {
    return;
  }
  let D = params.headDim;
  let H = params.heads;
  let Hkv = params.kvHeads;
  let E = H * D;
  dq[j] = dqkv[(j / E) * 3u * E + j % E];

  let Ekv = Hkv * D;
  let kvCount = (params.count / E) * Ekv;
  if (j >= kvCount) {
    return;
  }
  let d = j % D;
  let kvHead = (j / D) % Hkv;
  let n = j / Ekv;
  let G = H / Hkv;
  var sumK = 0.0;
  var sumV = 0.0;
  for (var h = kvHead * G; h < kvHead * G + G; h = h + 1u) {
    let at = n * 3u * E + h * D + d;
    sumK = sumK + dqkv[at + E];
    sumV = sumV + dqkv[at + 2u * E];
  }
  dk[j] = sumK;
  dv[j] = sumV;
}
