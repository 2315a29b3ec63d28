// teacher_topk: the teacher's k largest logits (k = params.topK ≤ 20) in each vocabulary slice of
// each row, for the heatmap's "what the teacher wanted instead"; with RANKS_STUDENT = 1 the same
// for the student's logits (bound in the teacher's place, read from params.studentBase), for the
// overlap of the two top-k lists. The order is by raw logit, largest first, ties broken by the
// smaller token id; dividing by the temperature does not change it.
// Only finite, in-range logits are candidates (-inf entries are absent tokens; a row with
// NaN / +Inf is flagged bad by row_stats and its list is ignored).
// Each invocation keeps a sorted private list of its own elements (read four at a time; an
// insertion happens only when a value beats the list's last entry, which soon becomes rare), then
// the workgroup merges the lists pairwise in workgroup memory, log2(WG) rounds with a barrier each.
// Bindings: 0 the ranked model's logits f32 (read: the teacher's, or the student's), 1 mask u32[T] (read), 2 candidates u32 (write: token
//   ids, KMAX per (row, split), 0xffffffff where fewer than k tokens exist), 3 ChunkParams.
// Dispatch: (rows in the chunk, slices per row) like row_stats; WG a power of two with
//   WG·KMAX·8 bytes of workgroup memory within the adapter's limit.

override WG: u32 = 64;
// 1: rank the student's logits (binding 0 holds them; their rows start at params.studentBase).
override RANKS_STUDENT: u32 = 0u;

// Below every candidate (in-range logits are > -2^64).
const EMPTY_VALUE: f32 = -3.6893488e19;

@group(0) @binding(0) var<storage, read> teacher: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> candidates: array<u32>;
@group(0) @binding(3) var<uniform> params: ChunkParams;

var<workgroup> listValues: array<f32, WG * KMAX>;
var<workgroup> listTokens: array<u32, WG * KMAX>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let split = wid.y;
  let k = params.topK;
  var live = row < params.rows;
  if (live) {
    live = mask[params.firstRow + row] != 0u;
  }
  let slice = vocabSlice(params, row, split);
  let n = select(0u, slice.length, live);
  let tBase = select(params.teacherBase, params.studentBase, RANKS_STUDENT == 1u) + slice.rowStart;

  var values: array<f32, KMAX>;
  var tokens: array<u32, KMAX>;
  for (var i = 0u; i < KMAX; i++) {
    values[i] = EMPTY_VALUE;
    tokens[i] = NO_TOKEN;
  }
  var last = EMPTY_VALUE;
  let step = vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  // Trips of four elements (the last one masked). The insertion runs only in trips holding a value
  // that beats the list's last entry, which soon become rare; elements come in increasing token
  // order, so a tie with an entry already listed loses (strict comparisons).
  for (var e = lid; e < n; e += 4u * WG) {
    let ee = e + step;
    let inRange = ee < vec4<u32>(n);
    let es = select(vec4<u32>(e), ee, inRange);
    let v = vec4<f32>(teacher[tBase + es.x], teacher[tBase + es.y], teacher[tBase + es.z], teacher[tBase + es.w]);
    let candidate = inRange & ((bitcast<vec4<u32>>(v) & vec4<u32>(ABS_BITS)) < vec4<u32>(RANGE_BITS));
    let vc = select(vec4<f32>(EMPTY_VALUE), v, candidate);
    if (any(vc > vec4<f32>(last))) {
      for (var j = 0u; j < 4u; j++) {
        let x = vc[j];
        if (x > last) {
          var pos = k - 1u;
          while (pos > 0u && values[pos - 1u] < x) {
            values[pos] = values[pos - 1u];
            tokens[pos] = tokens[pos - 1u];
            pos--;
          }
          values[pos] = x;
          tokens[pos] = slice.lo + ee[j];
          last = values[k - 1u];
        }
      }
    }
  }
  for (var i = 0u; i < KMAX; i++) {
    listValues[lid * KMAX + i] = values[i];
    listTokens[lid * KMAX + i] = tokens[i];
  }
  workgroupBarrier();

  // Pairwise merges: after the round with distance d, list lid (lid a multiple of 2d) holds the
  // best k of lists lid .. lid + 2d − 1.
  for (var d = 1u; d < WG; d *= 2u) {
    if (lid % (2u * d) == 0u) {
      let a = lid * KMAX;
      let b = (lid + d) * KMAX;
      var ia = 0u;
      var ib = 0u;
      for (var i = 0u; i < k; i++) {
        let va = listValues[a + ia];
        let ta = listTokens[a + ia];
        let vb = listValues[b + ib];
        let tb = listTokens[b + ib];
        if (before(va, ta, vb, tb)) {
          values[i] = va;
          tokens[i] = ta;
          ia++;
        } else {
          values[i] = vb;
          tokens[i] = tb;
          ib++;
        }
      }
    }
    workgroupBarrier();
    if (lid % (2u * d) == 0u) {
      for (var i = 0u; i < k; i++) {
        listValues[lid * KMAX + i] = values[i];
        listTokens[lid * KMAX + i] = tokens[i];
      }
    }
    workgroupBarrier();
  }

  if (lid == 0u && row < params.rows) {
    let out = (row * params.splits + split) * KMAX;
    for (var i = 0u; i < KMAX; i++) {
      candidates[out + i] = select(NO_TOKEN, listTokens[i], live && i < k);
    }
  }
}
