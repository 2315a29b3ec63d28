// attention_heads: the layout changes around the matmul path of attention (attention.ts), between
// GPT-2's row layout and contiguous per-head matrices that batched matrix products can take.
//   rows  [N, S·E]: N = B·T rows, S sections (1 or 3) of E = H·D columns each, head h at columns
//                   s·E + h·D .. s·E + (h+1)·D of section s (qkv: S = 3, q | k | v; ctx: S = 1);
//   heads [B·H, T, D] per section, each in its own buffer: element ((b·H + h)·T + t)·D + d, so
//                   that each head of each sequence is one row-major [T, D] matrix.
// (Separate buffers rather than one with offsets: the matrix products bind whole buffers.)
// `split` (rows → heads) and `merge` (heads → rows) are inverse permutations. `split` with
// HAS_MASK writes 0 for every row n with keyMask[n] = 0, so that whatever those rows hold (even a
// non-finite value) cannot reach a product.
//
// One invocation per element of one section, i = n·E + h·D + d, moving that element of every
// section: reads (split) or writes (merge) of the row layout are contiguous per section, the
// other side moves in runs of D.
//
// Entry points (each binds only its own variables, in order from 0):
//   split3: 0 src f32[N·3E] (read), 1 keyMask u32[N] (read; any buffer when !HAS_MASK),
//           2, 3, 4 dst0, dst1, dst2 f32[N·E] (read_write), 5 Params (uniform).
//   split1: 0 src f32[N·E] (read), 1 keyMask (as split3), 2 dst0 f32[N·E] (read_write), 3 Params.
//   merge3: 0, 1, 2 src0, src1, src2 f32[N·E] (read), 3 dst f32[N·3E] (read_write), 4 Params.
//   merge1: 0 src0 f32[N·E] (read), 1 dst f32[N·E] (read_write), 2 Params.
// Dispatch: ceil(N·E / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   i = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 64;
override HAS_MASK: bool = false;

struct Params {
  seq: u32,
  heads: u32,
  headDim: u32,
  // N·E: elements of one section.
  count: u32,
}

// split3
@group(0) @binding(0) var<storage, read> s3Src: array<f32>;
@group(0) @binding(1) var<storage, read> s3Mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> s3Dst0: array<f32>;
@group(0) @binding(3) var<storage, read_write> s3Dst1: array<f32>;
@group(0) @binding(4) var<storage, read_write> s3Dst2: array<f32>;
@group(0) @binding(5) var<uniform> s3Params: Params;

// split1
@group(0) @binding(0) var<storage, read> s1Src: array<f32>;
@group(0) @binding(1) var<storage, read> s1Mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> s1Dst0: array<f32>;
@group(0) @binding(3) var<uniform> s1Params: Params;

// merge3
@group(0) @binding(0) var<storage, read> m3Src0: array<f32>;
@group(0) @binding(1) var<storage, read> m3Src1: array<f32>;
@group(0) @binding(2) var<storage, read> m3Src2: array<f32>;
@group(0) @binding(3) var<storage, read_write> m3Dst: array<f32>;
@group(0) @binding(4) var<uniform> m3Params: Params;

// merge1
@group(0) @binding(0) var<storage, read> m1Src0: array<f32>;
@group(0) @binding(1) var<storage, read_write> m1Dst: array<f32>;
@group(0) @binding(2) var<uniform> m1Params: Params;

// For element i = n·E + h·D + d of a section: (row n, its index in the head layout).
fn headIndex(i: u32, p: Params) -> vec2<u32> {
  let D = p.headDim;
  let d = i % D;
  let r = i / D;
  let h = r % p.heads;
  let n = r / p.heads;
  let b = n / p.seq;
  let t = n % p.seq;
  return vec2<u32>(n, ((b * p.heads + h) * p.seq + t) * D + d);
}

@compute @workgroup_size(WG)
fn split3(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i >= s3Params.count) {
    return;
  }
  // i = n·E + h·D + d: the same element of q, k and v.
  let at = headIndex(i, s3Params);
  let E = s3Params.heads * s3Params.headDim;
  let src = at.x * 3u * E + i % E;
  var q = s3Src[src];
  var k = s3Src[src + E];
  var v = s3Src[src + 2u * E];
  if (HAS_MASK && s3Mask[at.x] == 0u) {
    q = 0.0;
    k = 0.0;
    v = 0.0;
  }
  s3Dst0[at.y] = q;
  s3Dst1[at.y] = k;
  s3Dst2[at.y] = v;
}

@compute @workgroup_size(WG)
fn split1(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i >= s1Params.count) {
    return;
  }
  let at = headIndex(i, s1Params);
  var v = s1Src[i];
  if (HAS_MASK && s1Mask[at.x] == 0u) {
    v = 0.0;
  }
  s1Dst0[at.y] = v;
}

@compute @workgroup_size(WG)
fn merge3(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i >= m3Params.count) {
    return;
  }
  // i = n·E + h·D + d: the same element of the three sections.
  let at = headIndex(i, m3Params);
  let E = m3Params.heads * m3Params.headDim;
  let dst = at.x * 3u * E + i % E;
  m3Dst[dst] = m3Src0[at.y];
  m3Dst[dst + E] = m3Src1[at.y];
  m3Dst[dst + 2u * E] = m3Src2[at.y];
}

@compute @workgroup_size(WG)
fn merge1(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i >= m1Params.count) {
    return;
  }
  m1Dst[i] = m1Src0[headIndex(i, m1Params).y];
}
