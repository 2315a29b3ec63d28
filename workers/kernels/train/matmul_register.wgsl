// matmul_register: C (= or +=) alpha·op(A)·op(B) (+ bias broadcast over rows), register-tiled.
// Each invocation computes an 8×8 block of C, reading A and B straight from global memory (no
// workgroup memory, no barriers): 16 loads feed 64 multiply-adds per step of k. On CPU adapters
// (SwiftShader) this beats a shared-memory kernel, whose barriers and copies cost more than the
// cache misses they save; there every load is a masked gather, so the block is as large as
// registers allow (8×8 measured ~2× faster than 4×4). The block is written out by hand: the same
// code with loops over arrays ran ~5× slower on SwiftShader (arrays indexed by a loop counter
// live in memory there).
//
// Layouts (row-major, one matrix per batch entry, element offsets b·stride):
//   A is [m, k], or [k, m] when TRANS_A; B is [k, n], or [n, k] when TRANS_B; C is [m, n].
// The block's rows and columns are strided (row = row0 + i·WG_Y, col = col0 + j·WG_X), so
// neighbouring invocations read neighbouring columns of B and write neighbouring elements of C
// (coalesced on GPUs). Rows and columns past the edge are clamped to the last valid one for the
// reads (the k-loop has no branch) and skipped at the write.
//
// Bindings: 0 A f32 (read), 1 B f32 (read), 2 bias f32[n] (read; bound to any buffer when
//   !HAS_BIAS), 3 C f32 (read_write), 4 Params (uniform).
// Dispatch: (ceil(n / (8·WG_X)), ceil(m / (8·WG_Y)), batch), workgroup size (WG_X, WG_Y).

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
// matmul_common.wgsl: TRANS_A, TRANS_B, ACCUMULATE, HAS_BIAS, Params, the bindings, biasAt, storeRow.

// Element offsets of op(A)[rows, 0] for four rows (clamped into [0, m)).
fn rowOffsets(first: u32, batchIndex: u32) -> vec4<u32> {
  let rows = min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u) * WG_Y, vec4<u32>(params.m - 1u));
  let offsets = select(rows * params.k, rows, TRANS_A);
  return offsets + vec4<u32>(batchIndex * params.strideA);
}

// Element offsets of op(B)[0, cols] for four columns (clamped into [0, n)).
fn colOffsets(first: u32, batchIndex: u32) -> vec4<u32> {
  let cols = min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u) * WG_X, vec4<u32>(params.n - 1u));
  let offsets = select(cols, cols * params.k, TRANS_B);
  return offsets + vec4<u32>(batchIndex * params.strideB);
}

fn loadB(offsets: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(B[offsets.x], B[offsets.y], B[offsets.z], B[offsets.w]);
}

// Writes alpha·acc + bias to C[row, col + j·WG_X] for the j whose column is inside.
fn store(cBase: u32, row: u32, col: u32, acc: vec4<f32>, biasCols: vec4<f32>) {
  if (row >= params.m) {
    return;
  }
  storeRow(cBase, row, col, params.alpha * acc + biasCols);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * WG_Y * 8u + lid.y;
  let col0 = wid.x * WG_X * 8u + lid.x;
  if (row0 >= params.m || col0 >= params.n) {
    return;
  }
  let z = wid.z;
  // Rows row0 + i·WG_Y: i = 0..3 in aLo, 4..7 in aHi; columns likewise in bLo, bHi.
  var aLo = rowOffsets(row0, z);
  var aHi = rowOffsets(row0 + 4u * WG_Y, z);
  var bLo = colOffsets(col0, z);
  var bHi = colOffsets(col0 + 4u * WG_X, z);
  let aStep = vec4<u32>(select(1u, params.m, TRANS_A));
  let bStep = vec4<u32>(select(params.n, 1u, TRANS_B));

  // acc<i><L|H>: row i, the low / high four columns.
  var acc0L = vec4<f32>(0.0); var acc0H = vec4<f32>(0.0);
  var acc1L = vec4<f32>(0.0); var acc1H = vec4<f32>(0.0);
  var acc2L = vec4<f32>(0.0); var acc2H = vec4<f32>(0.0);
  var acc3L = vec4<f32>(0.0); var acc3H = vec4<f32>(0.0);
  var acc4L = vec4<f32>(0.0); var acc4H = vec4<f32>(0.0);
  var acc5L = vec4<f32>(0.0); var acc5H = vec4<f32>(0.0);
  var acc6L = vec4<f32>(0.0); var acc6H = vec4<f32>(0.0);
  var acc7L = vec4<f32>(0.0); var acc7H = vec4<f32>(0.0);
  for (var kk = 0u; kk < params.k; kk++) {
    let bl = loadB(bLo);
    let bh = loadB(bHi);
    var a = A[aLo.x]; acc0L += a * bl; acc0H += a * bh;
    a = A[aLo.y];     acc1L += a * bl; acc1H += a * bh;
    a = A[aLo.z];     acc2L += a * bl; acc2H += a * bh;
    a = A[aLo.w];     acc3L += a * bl; acc3H += a * bh;
    a = A[aHi.x];     acc4L += a * bl; acc4H += a * bh;
    a = A[aHi.y];     acc5L += a * bl; acc5H += a * bh;
    a = A[aHi.z];     acc6L += a * bl; acc6H += a * bh;
    a = A[aHi.w];     acc7L += a * bl; acc7H += a * bh;
    aLo += aStep;
    aHi += aStep;
    bLo += bStep;
    bHi += bStep;
  }

  let cBase = z * params.strideC;
  let colH = col0 + 4u * WG_X;
  let biasL = biasAt(col0);
  let biasH = biasAt(colH);
  store(cBase, row0, col0, acc0L, biasL);           store(cBase, row0, colH, acc0H, biasH);
  store(cBase, row0 + WG_Y, col0, acc1L, biasL);    store(cBase, row0 + WG_Y, colH, acc1H, biasH);
  store(cBase, row0 + 2u * WG_Y, col0, acc2L, biasL); store(cBase, row0 + 2u * WG_Y, colH, acc2H, biasH);
  store(cBase, row0 + 3u * WG_Y, col0, acc3L, biasL); store(cBase, row0 + 3u * WG_Y, colH, acc3H, biasH);
  store(cBase, row0 + 4u * WG_Y, col0, acc4L, biasL); store(cBase, row0 + 4u * WG_Y, colH, acc4H, biasH);
  store(cBase, row0 + 5u * WG_Y, col0, acc5L, biasL); store(cBase, row0 + 5u * WG_Y, colH, acc5H, biasH);
  store(cBase, row0 + 6u * WG_Y, col0, acc6L, biasL); store(cBase, row0 + 6u * WG_Y, colH, acc6H, biasH);
  store(cBase, row0 + 7u * WG_Y, col0, acc7L, biasL); store(cBase, row0 + 7u * WG_Y, colH, acc7H, biasH);
}
