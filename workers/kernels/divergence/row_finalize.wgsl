// row_finalize: merges the row_stats states of each row (splits × STATS_WG of them) into the row's
// log-normalisers and writes every per-position output that needs no second pass:
//   studentLogprob s(y), teacherLogprob q(y), sampledKL k = s(y) − q(y),
//   reverseKL Σ p(s − q), forwardKL Σ r(q − s), studentEntropy, teacherEntropy,
//   jsd when β is 0 (forward KL) or 1 (reverse KL) — other β: row_extras + jsd_finalize,
//   and the normalisers (raw maxima m and log2 of the rescaled sums) that later passes use:
//   log p(v) = ((z_s(v) − m_s)·c − log2 W)·ln 2, with c = log2(e)/temperature.
// In the units of row_stats.wgsl (base 2, shifted by the maxima):
//   reverse KL = ln2·(U/W − log2 W + log2 Z), forward KL = ln2·(F/Z − log2 Z + log2 W),
//   student entropy = ln2·(log2 W − Es/W), teacher entropy = ln2·(log2 Z − Et/Z).
// Positions whose mask is 0: every field 0, flags 0. Positions with a bad flag (NaN, +Inf,
// |z| ≥ 2^64, nothing finite, token id out of range, sampled token -inf for the student): every
// field 0, the flags say why. An infinite KL (-inf on one side only) is written as +Inf and
// flagged; a sampled token the teacher forbids gives teacherLogprob -Inf, sampledKL +Inf, flagged.
// Bindings: 0 student logits, 1 teacher logits (read, as in row_stats), 2 mask u32[T],
//   3 tokens u32[T], 4 states (read), 5 state flags (read), 6 fields f32[FIELDS × fieldStride]
//   (field f of position t at f·fieldStride + t), 7 flags u32[T], 8 ChunkParams (uniform).
// Dispatch: ceil(rows / WG) workgroups, one invocation per row of the chunk.

override WG: u32 = 64;
// Invocations per slice in row_stats (its WG): states per row = splits × STATS_WG.
override STATS_WG: u32 = 64;

@group(0) @binding(0) var<storage, read> student: array<f32>;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read> tokens: array<u32>;
@group(0) @binding(4) var<storage, read> states: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> stateFlags: array<u32>;
@group(0) @binding(6) var<storage, read_write> fields: array<f32>;
@group(0) @binding(7) var<storage, read_write> flagsOut: array<u32>;
@group(0) @binding(8) var<uniform> params: ChunkParams;

fn writeFields(t: u32, v: array<f32, 12>) {
  for (var f = 0u; f < FIELDS; f++) {
    fields[f * params.fieldStride + t] = v[f];
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= params.rows) {
    return;
  }
  let t = params.firstRow + row;
  var out: array<f32, 12>;
  if (mask[t] == 0u) {
    writeFields(t, out);
    flagsOut[t] = 0u;
    return;
  }
  let c = params.scale2;
  let count = params.splits * STATS_WG;
  let first = row * count;

  // Two passes over the row's states: the maxima, then the sums rescaled to them.
  // Below every state's maximum (states start theirs at -2^64).
  var ms = -3.6893488e19;
  var mt = -3.6893488e19;
  var flags = 0u;
  for (var i = 0u; i < count; i++) {
    ms = max(ms, states[2u * (first + i)].x);
    mt = max(mt, states[2u * (first + i) + 1u].x);
    flags |= stateFlags[first + i];
  }
  var W = 0.0;
  var Es = 0.0;
  var U = 0.0;
  var Z = 0.0;
  var Et = 0.0;
  var F = 0.0;
  for (var i = 0u; i < count; i++) {
    let s = states[2u * (first + i)];
    let q = states[2u * (first + i) + 1u];
    // A state with W = 0 saw no student mass; its other sums are 0 too (likewise Z).
    let ds = (ms - s.x) * c;
    let dt = (mt - q.x) * c;
    let fs = select(exp2(-min(ds, 256.0)), 0.0, s.y == 0.0);
    let ft = select(exp2(-min(dt, 256.0)), 0.0, q.y == 0.0);
    W += fs * s.y;
    Es += fs * (s.z - ds * s.y);
    U += fs * (s.w + (dt - ds) * s.y);
    Z += ft * q.y;
    Et += ft * (q.z - dt * q.y);
    F += ft * (q.w + (ds - dt) * q.y);
  }
  if (W == 0.0) {
    flags |= STUDENT_EMPTY;
  }
  if (Z == 0.0) {
    flags |= TEACHER_EMPTY;
  }

  let y = tokens[t];
  var zsy = 0.0;
  var zty = 0.0;
  if (y >= params.vocab) {
    flags |= TOKEN_OUT_OF_RANGE;
  } else {
    zsy = student[params.studentBase + row * params.vocab + y];
    zty = teacher[params.teacherBase + row * params.vocab + y];
    if (bitcast<u32>(zsy) == NEG_INF_BITS) {
      flags |= TOKEN_FORBIDDEN_BY_STUDENT;
    }
    if (bitcast<u32>(zty) == NEG_INF_BITS) {
      flags |= TOKEN_FORBIDDEN_BY_TEACHER;
    }
  }

  if ((flags & BAD_MASK) != 0u) {
    writeFields(t, out);
    flagsOut[t] = flags;
    return;
  }

  let log2W = log2(W);
  let log2Z = log2(Z);
  let sLogprob = ((zsy - ms) * c - log2W) * LN2;
  var tLogprob = -positiveInfinity();
  var sampled = positiveInfinity();
  if ((flags & TOKEN_FORBIDDEN_BY_TEACHER) == 0u) {
    tLogprob = ((zty - mt) * c - log2Z) * LN2;
    sampled = sLogprob - tLogprob;
  }
  var reverse = positiveInfinity();
  if ((flags & REVERSE_KL_INFINITE) == 0u) {
    reverse = LN2 * (U / W - log2W + log2Z);
  }
  var forward = positiveInfinity();
  if ((flags & FORWARD_KL_INFINITE) == 0u) {
    forward = LN2 * (F / Z - log2Z + log2W);
  }
  out[F_STUDENT_LOGPROB] = sLogprob;
  out[F_TEACHER_LOGPROB] = tLogprob;
  out[F_SAMPLED_KL] = sampled;
  out[F_REVERSE_KL] = reverse;
  out[F_FORWARD_KL] = forward;
  out[F_JSD] = select(select(0.0, reverse, params.beta == 1.0), forward, params.beta == 0.0);
  out[F_STUDENT_ENTROPY] = LN2 * (log2W - Es / W);
  out[F_TEACHER_ENTROPY] = LN2 * (log2Z - Et / Z);
  out[F_STUDENT_MAX] = ms;
  out[F_STUDENT_LOG2_SUM] = log2W;
  out[F_TEACHER_MAX] = mt;
  out[F_TEACHER_LOG2_SUM] = log2Z;
  writeFields(t, out);
  flagsOut[t] = flags | VALID;
}
