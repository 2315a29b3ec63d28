// topk_finalize: merges a row's per-slice candidate lists (teacher_topk) into the row's top k
// tokens of the ranked model (the teacher's; the student's with RANKS_STUDENT = 1) and writes, for
// each, the token id, the teacher's log-prob q(v) and the student's log-prob s(v) (-inf where that
// model's logit is -inf), from the normalisers of row_finalize:
//   log p(v) = ((z(v) − m)·c − log2 sum)·ln 2, c = log2(e)/temperature.
// Slots beyond the number of tokens the ranked model allows: token -1, both log-probs -inf.
// Masked or bad positions: tokens -1, log-probs 0.
// Bindings: 0 student logits, 1 teacher logits (read), 2 candidates u32 (read), 3 fields f32
//   (read), 4 flags u32 (read), 5 topTokens i32[T·k], 6 topTeacherLogprob f32[T·k],
//   7 topStudentLogprob f32[T·k] (write), 8 ChunkParams (uniform).
// Dispatch: ceil(rows / WG) workgroups, one invocation per row of the chunk.

override WG: u32 = 64;
// 1: the candidates are the student's (teacher_topk run with RANKS_STUDENT = 1): rank by its logits.
override RANKS_STUDENT: u32 = 0u;

@group(0) @binding(0) var<storage, read> student: array<f32>;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read> candidates: array<u32>;
@group(0) @binding(3) var<storage, read> fields: array<f32>;
@group(0) @binding(4) var<storage, read> flags: array<u32>;
@group(0) @binding(5) var<storage, read_write> topTokens: array<i32>;
@group(0) @binding(6) var<storage, read_write> topTeacherLogprob: array<f32>;
@group(0) @binding(7) var<storage, read_write> topStudentLogprob: array<f32>;
@group(0) @binding(8) var<uniform> params: ChunkParams;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= params.rows) {
    return;
  }
  let t = params.firstRow + row;
  let k = params.topK;
  let out = t * k;
  if ((flags[t] & VALID) == 0u) {
    for (var i = 0u; i < k; i++) {
      topTokens[out + i] = -1;
      topTeacherLogprob[out + i] = 0.0;
      topStudentLogprob[out + i] = 0.0;
    }
    return;
  }
  let stride = params.fieldStride;
  let c = params.scale2;
  let ms = fields[F_STUDENT_MAX * stride + t];
  let log2W = fields[F_STUDENT_LOG2_SUM * stride + t];
  let mt = fields[F_TEACHER_MAX * stride + t];
  let log2Z = fields[F_TEACHER_LOG2_SUM * stride + t];
  let rowBase = row * params.vocab;
  let ranksStudent = RANKS_STUDENT == 1u;
  let first = row * params.splits * KMAX;
  let count = params.splits * KMAX;

  // k rounds, each picking the best candidate that comes after the previous pick (candidates are
  // distinct token ids, so the order is total). A row of one slice needs no rounds: teacher_topk's
  // merged list is already the row's top k in this order, empty slots last.
  let oneSlice = params.splits == 1u;
  var prevValue = 0.0;
  var prevToken = NO_TOKEN;
  for (var i = 0u; i < k; i++) {
    var bestValue = 0.0;
    var bestToken = NO_TOKEN;
    if (oneSlice) {
      bestToken = candidates[first + i];
    }
    for (var j = 0u; j < select(count, 0u, oneSlice); j++) {
      let token = candidates[first + j];
      if (token == NO_TOKEN) {
        continue;
      }
      let v = select(teacher[params.teacherBase + rowBase + token], student[params.studentBase + rowBase + token], ranksStudent);
      let afterPrev = prevToken == NO_TOKEN || before(prevValue, prevToken, v, token);
      if (afterPrev && (bestToken == NO_TOKEN || before(v, token, bestValue, bestToken))) {
        bestValue = v;
        bestToken = token;
      }
    }
    if (bestToken == NO_TOKEN) {
      topTokens[out + i] = -1;
      topTeacherLogprob[out + i] = negativeInfinity();
      topStudentLogprob[out + i] = negativeInfinity();
      continue;
    }
    prevValue = bestValue;
    prevToken = bestToken;
    let zs = student[params.studentBase + rowBase + bestToken];
    let zt = teacher[params.teacherBase + rowBase + bestToken];
    topTokens[out + i] = i32(bestToken);
    // Both logits here are in range or -inf (anything else would have made the row bad); the
    // ranked model's is in range (only such logits are candidates).
    topTeacherLogprob[out + i] = select(negativeInfinity(), ((zt - mt) * c - log2Z) * LN2, (bitcast<u32>(zt) & ABS_BITS) < RANGE_BITS);
    topStudentLogprob[out + i] = select(negativeInfinity(), ((zs - ms) * c - log2W) * LN2, (bitcast<u32>(zs) & ABS_BITS) < RANGE_BITS);
  }
}
