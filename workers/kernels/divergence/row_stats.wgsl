// row_stats: pass 1 of the divergence kernels, the only pass that must read every logit. Each
// invocation folds its share of one vocabulary slice of one row, student and teacher together,
// into an online log-sum-exp state (running maxima, sums rescaled when a maximum grows: the
// single-pass softmax), and writes that state; row_finalize.wgsl merges a row's states.
//
// Units are base 2. With c = log2(e) / temperature and m_s, m_t the running maxima of the raw
// logits: a = (z_s − m_s)·c, b = (z_t − m_t)·c, w = 2^a, r = 2^b. The state over the elements seen:
//   student side  m_s, W = Σ w, Es = Σ w·a, U = Σ w·(a − b)
//   teacher side  m_t, Z = Σ r, Et = Σ r·b, F = Σ r·(b − a)
//   flags         NaN / +Inf / |z| ≥ 2^64 seen, and -inf on one side only (an infinite KL).
// -inf logits are absent tokens: they add nothing to any sum. Every other non-finite or huge
// value is found from its bits (bitcast, never x != x, which compilers may fold) and kept out of
// the arithmetic, so no NaN reaches a state; the row is flagged instead. The fast loop assumes
// finite, in-range values and only keeps the maximum of their |bits|; an invocation that met any
// other value folds its share again from the start with every element checked (so rows with
// -inf padding read their share twice).
// The maxima are raised on every trip of eight elements without a branch: SwiftShader (the CPU
// adapter) executes an `if` block's code even when no lane takes it, so a branch saves nothing
// there, and on a GPU a few scalar operations per eight elements hide behind the loads.
//
// Bindings: 0 student logits f32 (read), 1 teacher logits f32 (read), 2 mask u32[T] (read),
//   3 states array<vec4<f32>> (2 per state: m_s W Es U | m_t Z Et F), 4 state flags u32,
//   5 ChunkParams (uniform).
// Dispatch: (rows in the chunk, slices per row), workgroup size WG. Invocation `lid` of slice
//   `split` reads elements lo + lid + k·WG (coalesced on GPUs), eight per loop trip, and writes
//   state (row·splits + split)·WG + lid. Rows whose mask is 0 return at once and read nothing.

override WG: u32 = 64;

// |z| ≥ 2^64 (this includes ±Inf and NaN) has (bits & ABS_BITS) ≥ RANGE_BITS.
// Below every in-range logit: the start value of the running maxima.
const NEG_FLOOR: f32 = -1.8446744e19;

@group(0) @binding(0) var<storage, read> student: array<f32>;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> states: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> stateFlags: array<u32>;
@group(0) @binding(5) var<uniform> params: ChunkParams;

struct Fold {
  ms: f32,
  mt: f32,
  W: f32,
  Es: f32,
  U: f32,
  Z: f32,
  Et: f32,
  F: f32,
  flags: u32,
}

fn emptyFold() -> Fold {
  return Fold(NEG_FLOOR, NEG_FLOOR, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0u);
}

// Moves the running maxima up to include cs / ct and rescales every sum to them.
fn raiseMaxima(st: ptr<function, Fold>, cs: f32, ct: f32, c: f32) {
  let ns = max((*st).ms, cs);
  let nt = max((*st).mt, ct);
  // Both ≥ 0 and finite (|logits| < 2^64); clamped only inside exp2, where 2^-256 is already 0.
  let ds = (ns - (*st).ms) * c;
  let dt = (nt - (*st).mt) * c;
  let fs = exp2(-min(ds, 256.0));
  let ft = exp2(-min(dt, 256.0));
  (*st).U = fs * ((*st).U + (dt - ds) * (*st).W);
  (*st).Es = fs * ((*st).Es - ds * (*st).W);
  (*st).W = fs * (*st).W;
  (*st).F = ft * ((*st).F + (ds - dt) * (*st).Z);
  (*st).Et = ft * ((*st).Et - dt * (*st).Z);
  (*st).Z = ft * (*st).Z;
  (*st).ms = ns;
  (*st).mt = nt;
}

fn hmax(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

// Adds four elements' terms to the sums: student weights w = 2^a and teacher weights r = 2^b
// (a, b the base-2 logits shifted by the maxima), d = a − b.
fn addTerms(st: ptr<function, Fold>, w: vec4<f32>, a: vec4<f32>, r: vec4<f32>, b: vec4<f32>, d: vec4<f32>) {
  (*st).W += dot(w, vec4<f32>(1.0));
  (*st).Es += dot(w, a);
  (*st).U += dot(w, d);
  (*st).Z += dot(r, vec4<f32>(1.0));
  (*st).Et += dot(r, b);
  (*st).F -= dot(r, d);
}

// Adds four elements whose logits are all finite and in range (maxima already raised).
fn foldPresent(st: ptr<function, Fold>, zs: vec4<f32>, zt: vec4<f32>, c: f32) {
  let a = (zs - (*st).ms) * c;
  let b = (zt - (*st).mt) * c;
  let w = exp2(a);
  let r = exp2(b);
  let d = a - b;
  addTerms(st, w, a, r, b, d);
}

// Flags raised by the lanes of `zbits` inside `inRange`: NaN, +Inf, finite but |z| ≥ 2^64.
fn badBits(zbits: vec4<u32>, inRange: vec4<bool>, nanBit: u32, posInfBit: u32, rangeBit: u32) -> u32 {
  let absBits = zbits & vec4<u32>(ABS_BITS);
  let isNan = inRange & (absBits > vec4<u32>(POS_INF_BITS));
  let isPosInf = inRange & (zbits == vec4<u32>(POS_INF_BITS));
  let isHuge = inRange & (absBits >= vec4<u32>(RANGE_BITS)) & (absBits < vec4<u32>(POS_INF_BITS));
  return select(0u, nanBit, any(isNan)) | select(0u, posInfBit, any(isPosInf)) | select(0u, rangeBit, any(isHuge));
}

// The general fold of four elements: lanes outside `inRange` are ignored, -inf lanes are absent
// tokens, other non-finite or huge lanes are flagged and kept out of the sums.
fn foldChecked(st: ptr<function, Fold>, zs: vec4<f32>, zt: vec4<f32>, inRange: vec4<bool>, c: f32) {
  let sb = bitcast<vec4<u32>>(zs);
  let tb = bitcast<vec4<u32>>(zt);
  let ps = inRange & ((sb & vec4<u32>(ABS_BITS)) < vec4<u32>(RANGE_BITS));
  let pt = inRange & ((tb & vec4<u32>(ABS_BITS)) < vec4<u32>(RANGE_BITS));
  var flags = badBits(sb, inRange, STUDENT_NAN, STUDENT_POS_INF, STUDENT_OUT_OF_RANGE)
            | badBits(tb, inRange, TEACHER_NAN, TEACHER_POS_INF, TEACHER_OUT_OF_RANGE);
  // -inf on one side only: a token one model allows and the other forbids.
  let sAbsent = inRange & (sb == vec4<u32>(NEG_INF_BITS));
  let tAbsent = inRange & (tb == vec4<u32>(NEG_INF_BITS));
  flags |= select(0u, REVERSE_KL_INFINITE, any(ps & tAbsent));
  flags |= select(0u, FORWARD_KL_INFINITE, any(pt & sAbsent));
  (*st).flags |= flags;

  let zsSafe = select(vec4<f32>(NEG_FLOOR), zs, ps);
  let ztSafe = select(vec4<f32>(NEG_FLOOR), zt, pt);
  raiseMaxima(st, hmax(zsSafe), hmax(ztSafe), c);
  let a = select(vec4<f32>(0.0), (zsSafe - (*st).ms) * c, ps);
  let b = select(vec4<f32>(0.0), (ztSafe - (*st).mt) * c, pt);
  let w = select(vec4<f32>(0.0), exp2(a), ps);
  let r = select(vec4<f32>(0.0), exp2(b), pt);
  let d = select(vec4<f32>(0.0), a - b, ps & pt);
  addTerms(st, w, a, r, b, d);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let split = wid.y;
  if (row >= params.rows || mask[params.firstRow + row] == 0u) {
    return;
  }
  let c = params.scale2;
  let slice = vocabSlice(params, row, split);
  let n = slice.length;
  let sBase = params.studentBase + slice.rowStart;
  let tBase = params.teacherBase + slice.rowStart;
  let step = vec4<u32>(0u, WG, 2u * WG, 3u * WG);

  var st = emptyFold();
  // The largest |bits| seen by the fast loop: ≥ RANGE_BITS when some value needs the checked fold.
  var seen = vec4<u32>(0u);
  var k = lid;
  // Fast trips: eight elements, all inside the slice, no per-element test but the bit maximum.
  while (k + 7u * WG < n) {
    let zs0 = loadStudent4(sBase, k + step);
    let zs1 = loadStudent4(sBase, k + 4u * WG + step);
    let zt0 = loadTeacher4(tBase, k + step);
    let zt1 = loadTeacher4(tBase, k + 4u * WG + step);
    k += 8u * WG;
    // Sign bits off before the maximum, or a negative value would hide a NaN.
    let abs = vec4<u32>(ABS_BITS);
    seen = max(seen, max(max(bitcast<vec4<u32>>(zs0) & abs, bitcast<vec4<u32>>(zs1) & abs),
                         max(bitcast<vec4<u32>>(zt0) & abs, bitcast<vec4<u32>>(zt1) & abs)));
    raiseMaxima(&st, hmax(max(zs0, zs1)), hmax(max(zt0, zt1)), c);
    foldPresent(&st, zs0, zt0, c);
    foldPresent(&st, zs1, zt1, c);
  }
  if (any(seen >= vec4<u32>(RANGE_BITS))) {
    // Some value of this invocation's share is -inf, NaN, +Inf or huge: the fast sums may hold
    // anything, so the share is folded again from the start with every element checked (rows
    // with masked vocabulary entries read their share twice).
    st = emptyFold();
    k = lid;
  }
  // The checked trips: the remainder of the share (fewer than eight elements), or all of it.
  while (k < n) {
    let kk = k + step;
    let inRange = kk < vec4<u32>(n);
    let ks = select(vec4<u32>(k), kk, inRange);
    foldChecked(&st, loadStudent4(sBase, ks), loadTeacher4(tBase, ks), inRange, c);
    k += 4u * WG;
  }

  let slot = (row * params.splits + split) * WG + lid;
  states[2u * slot] = vec4<f32>(st.ms, st.W, st.Es, st.U);
  states[2u * slot + 1u] = vec4<f32>(st.mt, st.Z, st.Et, st.F);
  stateFlags[slot] = st.flags;
}
