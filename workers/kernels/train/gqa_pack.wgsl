// gqa_pack: grouped-query attention fed to the multi-head attention kernels (attention.ts) by
// expanding the key/value heads: q [N, H·D], k and v [N, Hkv·D] → qkv [N, 3·H·D] = q | k' | v'
// per row, where head h of k' and v' is KV head floor(h / G), G = H / Hkv query heads per KV
// head (HF's repeat_kv). The attention kernels then run unchanged on H heads; gqa_unpack.wgsl
// folds their gradient back.
//
// One invocation per element of the q section, j = n·E + h·D + d (E = H·D), writing that element
// of all three sections: writes are contiguous per section; k and v are read G times each.
//
// Bindings: 0 q f32[N·E] (read), 1 k f32[N·Hkv·D] (read), 2 v f32[N·Hkv·D] (read),
//   3 qkv f32[N·3E] (read_write), 4 Params (uniform).
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

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let j = flatInvocation(grid, WG);
  if (j >= params.count) {
    return;
  }
  let D = params.headDim;
  let H = params.heads;
  let E = H * D;
  let d = j % D;
  let h = (j / D) % H;
  let n = j / E;
  let kvHead = h / (H / params.kvHeads);
  let src = n * params.kvHeads * D + kvHead * D + d;
  let dst = n * 3u * E + h * D + d;
  qkv[dst] = q[j];
  qkv[dst + E] = k[src];
  qkv[dst + 2u * E] = v[src];
}
