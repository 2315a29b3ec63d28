// row_extras: the optional second pass, for what needs the row's log-normalisers first (written
// by row_finalize): the generalised JSD(β) for 0 < β < 1 and the gradient of the exact reverse KL
// with respect to the student logits. Override WITH_JSD / WITH_GRADIENT pick what is computed.
//   log2 p(v) = (z_s(v) − m_s)·c − log2 W,  log2 r(v) = (z_t(v) − m_t)·c − log2 Z,  c = log2(e)/τ
//   JSD: m = log((1−β)p + βr), term β·r·(log r − m) + (1−β)·p·(log p − m), summed per invocation
//        (row·splits + split)·WG + lid into jsdPartials; jsd_finalize adds them up. With
//        δ = log2 p − log2 r and g = δ + log2(1−β) − log2 β: log2 m − log2 r = log2 β + L when
//        g < 0, log2(1−β) + δ + L otherwise, L = log2(1 + 2^-|g|).
//   gradient: ∂KL/∂z(v) = (1/τ)·p(v)·(log p(v) − log r(v) − KL), written in place of the row in the
//        gradient buffer [T, V]; the 1/τ is the chain rule through the logits' scaling z/τ.
// -inf logits are absent tokens (p or r = 0, no term, zero gradient). Rows that are masked, bad
// (any bad flag) or have an infinite reverse KL get a zero gradient row and a zero JSD.
// Bindings: 0 student logits, 1 teacher logits (read), 2 fields f32 (read), 3 flags u32 (read),
//   4 gradient f32 (write; a 16-byte dummy when WITH_GRADIENT is false), 5 jsdPartials f32 (write),
//   6 ChunkParams (uniform).
// Dispatch: (rows in the chunk, slices per row) like row_stats, workgroup size WG.

override WG: u32 = 64;
override WITH_JSD: bool = false;
override WITH_GRADIENT: bool = false;

// log2 of an absent token's probability: far below anything exp2 can represent, yet finite.
const ABSENT_LOG2: f32 = -1.0e30;

@group(0) @binding(0) var<storage, read> student: array<f32>;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read> fields: array<f32>;
@group(0) @binding(3) var<storage, read> flags: array<u32>;
@group(0) @binding(4) var<storage, read_write> gradient: array<f32>;
@group(0) @binding(5) var<storage, read_write> jsdPartials: array<f32>;
@group(0) @binding(6) var<uniform> params: ChunkParams;

struct RowNormalisers {
  ms: f32,
  log2W: f32,
  mt: f32,
  log2Z: f32,
  kl: f32,
}

// JSD terms (natural log units / ln2) and gradient of four elements of a valid row.
fn extras4(zs: vec4<f32>, zt: vec4<f32>, inRange: vec4<bool>, n: RowNormalisers, gradientValid: bool, jsd: ptr<function, f32>) -> vec4<f32> {
  let c = params.scale2;
  let ps = inRange & ((bitcast<vec4<u32>>(zs) & vec4<u32>(ABS_BITS)) < vec4<u32>(RANGE_BITS));
  let pt = inRange & ((bitcast<vec4<u32>>(zt) & vec4<u32>(ABS_BITS)) < vec4<u32>(RANGE_BITS));
  let s2 = select(vec4<f32>(ABSENT_LOG2), (zs - n.ms) * c - n.log2W, ps);
  let q2 = select(vec4<f32>(ABSENT_LOG2), (zt - n.mt) * c - n.log2Z, pt);
  let p = select(vec4<f32>(0.0), exp2(s2), ps);
  if (WITH_JSD) {
    let beta = params.beta;
    let log2OneMinusBeta = log2(1.0 - beta);
    let log2Beta = log2(beta);
    let r = select(vec4<f32>(0.0), exp2(q2), pt);
    // log2 m = log2((1−β)p + βr), taken relative to the larger of its two terms and written
    // with δ = log2 p − log2 r only, so that identical rows give exactly δ = 0 and a JSD of a
    // few ulp, and an absent side (δ = ±1e30) drops out without an infinity.
    let delta = s2 - q2;
    let g = delta + log2OneMinusBeta - log2Beta;
    let l = log2(1.0 + exp2(-abs(g)));
    let studentSide = g >= vec4<f32>(0.0);
    let sMinusM = select(delta - log2Beta - l, -log2OneMinusBeta - l, studentSide);
    let qMinusM = select(-log2Beta - l, -delta - log2OneMinusBeta - l, studentSide);
    *jsd += dot(beta * r, qMinusM) + dot((1.0 - beta) * p, sMinusM);
  }
  return select(vec4<f32>(0.0), p * ((s2 - q2) * LN2 - n.kl) * params.invTemperature, ps & vec4<bool>(gradientValid));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let split = wid.y;
  if (row >= params.rows) {
    return;
  }
  let t = params.firstRow + row;
  let rowFlags = flags[t];
  let valid = (rowFlags & VALID) != 0u;
  let gradientValid = valid && (rowFlags & REVERSE_KL_INFINITE) == 0u;
  let slice = vocabSlice(params, row, split);
  let n = slice.length;
  let gBase = params.gradientBase + slice.rowStart;
  let slot = (row * params.splits + split) * WG + lid;
  if (!valid) {
    // Masked or bad position: a zero gradient row, no JSD.
    if (WITH_GRADIENT) {
      for (var k = lid; k < n; k += WG) {
        gradient[gBase + k] = 0.0;
      }
    }
    if (WITH_JSD) {
      jsdPartials[slot] = 0.0;
    }
    return;
  }
  let stride = params.fieldStride;
  var norm: RowNormalisers;
  norm.ms = fields[F_STUDENT_MAX * stride + t];
  norm.log2W = fields[F_STUDENT_LOG2_SUM * stride + t];
  norm.mt = fields[F_TEACHER_MAX * stride + t];
  norm.log2Z = fields[F_TEACHER_LOG2_SUM * stride + t];
  norm.kl = fields[F_REVERSE_KL * stride + t];
  let sBase = params.studentBase + slice.rowStart;
  let tBase = params.teacherBase + slice.rowStart;
  let step = vec4<u32>(0u, WG, 2u * WG, 3u * WG);

  var jsd = 0.0;
  var k = lid;
  // Trips of four elements, all inside the slice.
  while (k + 3u * WG < n) {
    let kk = k + step;
    let g = extras4(loadStudent4(sBase, kk), loadTeacher4(tBase, kk), vec4<bool>(true), norm, gradientValid, &jsd);
    if (WITH_GRADIENT) {
      gradient[gBase + kk.x] = g.x;
      gradient[gBase + kk.y] = g.y;
      gradient[gBase + kk.z] = g.z;
      gradient[gBase + kk.w] = g.w;
    }
    k += 4u * WG;
  }
  // The last one to three elements.
  if (k < n) {
    let kk = k + step;
    let inRange = kk < vec4<u32>(n);
    let ks = select(vec4<u32>(k), kk, inRange);
    let g = extras4(loadStudent4(sBase, ks), loadTeacher4(tBase, ks), inRange, norm, gradientValid, &jsd);
    if (WITH_GRADIENT) {
      for (var i = 0u; i < 4u; i++) {
        if (inRange[i]) {
          gradient[gBase + kk[i]] = g[i];
        }
      }
    }
  }
  if (WITH_JSD) {
    jsdPartials[slot] = jsd * LN2;
  }
}
