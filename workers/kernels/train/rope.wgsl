// rope: rotary position embeddings, HF's rotate_half convention, in place on a row-major
// [rows, heads·D] activation (q or k after their projections; head h at columns h·D..(h+1)·D).
// For each row r, head h and pair i < D/2, with p = positions[r], c = cos[p, i], s = sin[p, i]:
//   forward  (DIRECTION =  1): x[i] ← x[i]·c − x[i + D/2]·s,   x[i + D/2] ← x[i + D/2]·c + x[i]·s
//   backward (DIRECTION = −1): the transpose, i.e. the same rotation by −θ (s → −s), which turns
//                              dy into dx.
// Each invocation owns one pair (i, i + D/2) of one head of one row: it reads both before it
// writes either, and no other invocation touches them, so the in-place update needs no barrier.
// The tables hold float64 cos/sin rounded once to f32 (workers/models/llama/rope.ts ropeTables)
// rather than computing cos(p·inv_freq) here: f32 angles p·inv_freq lose ~p·ε32 radians.
// A position ≥ maxPositions reads the table's last row (clamped, never out of bounds); callers
// validate positions on the CPU.
//
// Bindings: 0 x f32[rows·heads·D] (read_write), 1 positions u32[rows] (read),
//   2 cos f32[maxPositions·D/2] (read), 3 sin f32[maxPositions·D/2] (read), 4 Params (uniform).
// Dispatch: ceil(rows·heads·D/2 / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   pair index k = (wid.y · nwg.x + wid.x)·WG + lid = (r·heads + h)·D/2 + i; workgroup size WG.

override WG: u32 = 64;
override DIRECTION: f32 = 1.0;

struct Params {
  // rows·heads·D/2
  pairs: u32,
  heads: u32,
  // D/2
  half: u32,
  maxPositions: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> cosTable: array<f32>;
@group(0) @binding(3) var<storage, read> sinTable: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let k = flatInvocation(grid, WG);
  if (k >= params.pairs) {
    return;
  }
  let half = params.half;
  let i = k % half;
  let rowHead = k / half; // r·heads + h
  let r = rowHead / params.heads;
  let p = min(positions[r], params.maxPositions - 1u);
  let c = cosTable[p * half + i];
  let s = DIRECTION * sinTable[p * half + i];
  let lo = rowHead * 2u * half + i;
  let hi = lo + half;
  let a = x[lo];
  let b = x[hi];
  x[lo] = a * c - b * s;
  x[hi] = b * c + a * s;
}
