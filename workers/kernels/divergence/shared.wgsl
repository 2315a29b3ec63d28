// shared.wgsl: declarations every divergence kernel uses, prepended to each kernel by
// divergence.ts together with the field indices and flag bits generated from layout.ts
// (F_STUDENT_LOGPROB … F_TEACHER_LOG2_SUM, FIELDS, STUDENT_NAN … VALID, BAD_MASK).

// f32 bit patterns: |x| mask, +inf, -inf, and 2^64 (the supported logit range).
const ABS_BITS: u32 = 0x7fffffffu;
const POS_INF_BITS: u32 = 0x7f800000u;
const NEG_INF_BITS: u32 = 0xff800000u;
const RANGE_BITS: u32 = 0x5f800000u;
const LN2: f32 = 0.6931471805599453;
// Top-k: the largest k, and the id of an empty slot.
const KMAX: u32 = 20u;
const NO_TOKEN: u32 = 0xffffffffu;

// The top-k order, one rule for both top-k passes (teacher_topk, topk_finalize):
// (va, ia) comes before (vb, ib) when its logit is larger, ties going to the smaller token id.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

// One chunk of rows: written by plan.ts chunkParams(), one 256-byte-aligned slot per chunk.
struct ChunkParams {
  vocab: u32,
  rows: u32,
  firstRow: u32,
  splits: u32,
  sliceLength: u32,
  studentBase: u32,
  teacherBase: u32,
  gradientBase: u32,
  scale2: f32,
  invTemperature: f32,
  beta: f32,
  topK: u32,
  fieldStride: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

// ±Infinity, made at run time: WGSL rejects an infinite constant expression.
fn positiveInfinity() -> f32 {
  var bits = POS_INF_BITS;
  return bitcast<f32>(bits);
}

fn negativeInfinity() -> f32 {
  var bits = NEG_INF_BITS;
  return bitcast<f32>(bits);
}

// The vocabulary slice of workgroup (row, split) in the streaming kernels (row_stats, row_extras,
// teacher_topk, read_floor): tokens lo .. lo + length of the chunk's row `row`, whose logits (or
// gradient) start at rowStart past the buffer's base (studentBase, teacherBase, gradientBase).
struct VocabSlice {
  lo: u32,
  length: u32,
  rowStart: u32, // row·vocab + lo
}

fn vocabSlice(p: ChunkParams, row: u32, split: u32) -> VocabSlice {
  let lo = split * p.sliceLength;
  return VocabSlice(lo, min(p.vocab, lo + p.sliceLength) - lo, row * p.vocab + lo);
}
