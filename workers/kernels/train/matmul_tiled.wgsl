// matmul_tiled: C (= or +=) alpha·op(A)·op(B) (+ bias broadcast over rows), the classic
// shared-memory kernel. A workgroup of WG_X × WG_Y invocations owns a (4·WG_Y) × (4·WG_X) tile
// of C; for every slice of BK along k it copies the matching tiles of op(A) and op(B) into
// workgroup memory (each element read from global memory once per workgroup, coalesced for
// every layout), waits at a barrier, and each invocation then accumulates its 4×4 block from
// workgroup memory.
//
// Layouts (row-major, one matrix per batch entry, element offsets b·stride):
//   A is [m, k], or [k, m] when TRANS_A; B is [k, n], or [n, k] when TRANS_B; C is [m, n].
// Workgroup memory is k-major (As[kk][row], Bs[kk][col]) with one padding word per line, so the
// transposing copies of A (when !TRANS_A) and B (when TRANS_B) do not hit one bank. An
// invocation's rows and columns are strided (row = ly + i·WG_Y, col = lx + j·WG_X): reads of Bs
// are consecutive across a warp and reads of As are broadcasts. Elements past the matrix edges
// are loaded as 0 and never written.
//
// Bindings: 0 A f32 (read), 1 B f32 (read), 2 bias f32[n] (read; bound to any buffer when
//   !HAS_BIAS), 3 C f32 (read_write), 4 Params (uniform).
// Dispatch: (ceil(n / (4·WG_X)), ceil(m / (4·WG_Y)), batch), workgroup size (WG_X, WG_Y).

override WG_X: u32 = 16;
override WG_Y: u32 = 16;
override BK: u32 = 16;
// matmul_common.wgsl: TRANS_A, TRANS_B, ACCUMULATE, HAS_BIAS, Params, the bindings, biasAt, storeRow.

override TILE_M: u32 = 4u * WG_Y;
override TILE_N: u32 = 4u * WG_X;
override A_LINE: u32 = TILE_M + 1u;
override B_LINE: u32 = TILE_N + 1u;
override A_WORDS: u32 = BK * A_LINE;
override B_WORDS: u32 = BK * B_LINE;

var<workgroup> As: array<f32, A_WORDS>;
var<workgroup> Bs: array<f32, B_WORDS>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = params.m;
  let n = params.n;
  let k = params.k;
  let tileRow = wid.y * TILE_M;
  let tileCol = wid.x * TILE_N;
  let aBase = wid.z * params.strideA;
  let bBase = wid.z * params.strideB;
  let threads = WG_X * WG_Y;
  let t = lid.y * WG_X + lid.x;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

  for (var k0 = 0u; k0 < k; k0 += BK) {
    // op(A)[tileRow .. +TILE_M, k0 .. +BK] → As[kk·A_LINE + row]; consecutive invocations read
    // consecutive addresses of A in either layout.
    for (var e = t; e < TILE_M * BK; e += threads) {
      var row: u32;
      var kk: u32;
      if (TRANS_A) {
        row = e % TILE_M;
        kk = e / TILE_M;
      } else {
        kk = e % BK;
        row = e / BK;
      }
      let gr = tileRow + row;
      let gk = k0 + kk;
      var v = 0.0;
      if (gr < m && gk < k) {
        if (TRANS_A) {
          v = A[aBase + gk * m + gr];
        } else {
          v = A[aBase + gr * k + gk];
        }
      }
      As[kk * A_LINE + row] = v;
    }
    // op(B)[k0 .. +BK, tileCol .. +TILE_N] → Bs[kk·B_LINE + col].
    for (var e = t; e < TILE_N * BK; e += threads) {
      var col: u32;
      var kk: u32;
      if (TRANS_B) {
        kk = e % BK;
        col = e / BK;
      } else {
        col = e % TILE_N;
        kk = e / TILE_N;
      }
      let gc = tileCol + col;
      let gk = k0 + kk;
      var v = 0.0;
      if (gc < n && gk < k) {
        if (TRANS_B) {
          v = B[bBase + gc * k + gk];
        } else {
          v = B[bBase + gk * n + gc];
        }
      }
      Bs[kk * B_LINE + col] = v;
    }
    workgroupBarrier();

    for (var kk = 0u; kk < BK; kk++) {
      let aLine = kk * A_LINE + lid.y;
      let bLine = kk * B_LINE + lid.x;
      let b = vec4<f32>(Bs[bLine], Bs[bLine + WG_X], Bs[bLine + 2u * WG_X], Bs[bLine + 3u * WG_X]);
      acc0 += As[aLine] * b;
      acc1 += As[aLine + WG_Y] * b;
      acc2 += As[aLine + 2u * WG_Y] * b;
      acc3 += As[aLine + 3u * WG_Y] * b;
    }
    workgroupBarrier();
  }

  let row0 = tileRow + lid.y;
  let col0 = tileCol + lid.x;
  let alpha = params.alpha;
  let cBase = wid.z * params.strideC;
  let biasRow = biasAt(col0);
  let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i * WG_Y;
    if (row >= m) {
      break;
    }
    storeRow(cBase, row, col0, alpha * accs[i] + biasRow);
  }
}
