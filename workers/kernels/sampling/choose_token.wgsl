// choose_token.wgsl: one decoding step's token choice, per row of the step's logits, exactly as
// sampling/choose.ts chooses it: log-softmax(logits / T) in float64, then greedy (T = 0), the
// inverse CDF over the whole vocabulary in id order, or, with top-k / top-p, over the candidates
// sorted by log-prob (ties by id), cut to k, cut at the smallest prefix whose probability reaches
// p, and drawn from in proportion. Every float64 value is computed by the same operations in the
// same order as choose.ts (f64Eval, fdlibm.wgsl), so token and log-prob are the same bits.
// Compiled after float64.wgsl and fdlibm.wgsl.
//
// One workgroup per row; six stages, each either parallel or serial in invocation 0 (the sums of
// choose.ts run in id or candidate order, one term after the other, and float64 addition is not
// associative), with one f64Eval call between them all (see fdlibm.wgsl for why one):
//   0 serial    max = (max logit) / T                      (division is monotonic: max of x/T)
//   1 parallel  v_i = x_i / T, e_i = exp(v_i − max)        → work[i] = (e_i, v_i)
//   2 serial    sum = Σ e_i in id order, lse = max + ln sum
//   3 parallel  lp_i = v_i − lse, and p_i = exp(lp_i) for the whole-vocabulary draw → work[i] = (p_i, lp_i)
//     then greedy: argmax of lp (first id); top-k / top-p: sort (lp desc, id asc) by bitonic sort
//   4 parallel  top-k / top-p: p = exp(lp) of the kept candidates only (k of them with top-k)
//   5 serial    the draw: acc += p in order until u < acc (u·total with top-k / top-p)
//
// Bindings: logits f32 [rows, width, vocab] (ORT's output buffer, read in place: the last position
// of each row); work vec4<u32> [rows, vocab]; sorted vec4<u32> [rows, sortSize] (scratch of the
// sort); draws F64 [rows] (this step's uniform numbers); done u32 [rows] (finished rows are
// skipped); out vec4<u32> [slots, rows] (token, log-prob words, status); nextIds vec2<u32> [rows]
// (the next step's int64 input_ids: low word, high word); params.
// Dispatch: rows workgroups of WG invocations.

override WG: u32 = 64u;

struct ChooseParams {
  vocab: u32,
  width: u32,
  slot: u32,
  mode: u32,      // MODE_*
  keep: u32,      // candidates kept after sorting (top-k, or vocab when top-k is off)
  limitP: u32,    // 1 when top-p < 1
  eos: u32,
  hasEos: u32,
  sortSize: u32,  // a power of two ≥ vocab
  tLo: u32,       // temperature (1 when greedy), float64 words
  tHi: u32,
  pLo: u32,       // top-p, float64 words
  pHi: u32,
}

const MODE_GREEDY: u32 = 0u;
const MODE_FULL: u32 = 1u;
const MODE_SORTED: u32 = 2u;

const STATUS_CHOSEN: u32 = 0u;
const STATUS_NAN: u32 = 1u;      // token word: the first NaN logit's id
const STATUS_ALL_NEG_INF: u32 = 2u;
const STATUS_POS_INF: u32 = 3u;
const STATUS_SKIPPED: u32 = 4u;  // the row had finished

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> work: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sorted: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> draws: array<F64>;
@group(0) @binding(4) var<storage, read_write> done: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> nextIds: array<vec2<u32>>;
@group(0) @binding(7) var<uniform> params: ChooseParams;

var<workgroup> wgMaxKey: atomic<u32>;
var<workgroup> wgNanAt: atomic<u32>;
var<workgroup> wgFinite: atomic<u32>;
var<workgroup> wgFlag: u32;               // a uniform word invocation 0 hands to all
var<workgroup> wgValue: F64;              // max, then lse
var<workgroup> wgBest: array<vec4<u32>, WG>;

// A key whose unsigned order is the float32 order (NaN excluded beforehand).
fn f32Key(bits: u32) -> u32 {
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

fn f32FromKey(key: u32) -> f32 {
  return bitcast<f32>(select(~key, key & 0x7fffffffu, (key & 0x80000000u) != 0u));
}

// Sort entries (descending key of lp, id): ascending order of this is lp descending, id ascending.
fn sortsBefore(a: vec4<u32>, b: vec4<u32>) -> bool {
  if (a.y != b.y) { return a.y < b.y; }
  if (a.x != b.x) { return a.x < b.x; }
  return a.z < b.z;
}

const SORT_PAD: vec4<u32> = vec4(0xffffffffu, 0xffffffffu, 0xffffffffu, 0u);

fn finish(outAt: u32, row: u32, token: u32, lp: F64, status: u32) {
  out[outAt] = vec4(token, lp.x, lp.y, status);
  if (status == STATUS_CHOSEN) {
    nextIds[row] = vec2(token, 0u);
    done[row] = select(0u, 1u, params.hasEos != 0u && token == params.eos);
  } else {
    done[row] = 1u; // an invalid row stops; the host reports it
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let V = params.vocab;
  let logitBase = (row * params.width + params.width - 1u) * V;
  let workBase = row * V;
  let sortBase = row * params.sortSize;
  let outAt = params.slot * nwg.x + row;
  let t = F64(params.tLo, params.tHi);

  if (lid == 0u) {
    wgFlag = done[row];
    atomicStore(&wgMaxKey, 0u);
    atomicStore(&wgNanAt, 0xffffffffu);
    atomicStore(&wgFinite, 0u);
  }
  if (workgroupUniformLoad(&wgFlag) != 0u) {
    if (lid == 0u) { out[outAt] = vec4(0u, 0u, 0u, STATUS_SKIPPED); }
    return;
  }

  // The largest logit, and the first NaN (choose.ts throws at the first NaN in id order).
  for (var i = lid; i < V; i += WG) {
    let bits = bitcast<u32>(logits[logitBase + i]);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
      atomicMin(&wgNanAt, i);
    } else {
      atomicMax(&wgMaxKey, f32Key(bits));
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    let nanAt = atomicLoad(&wgNanAt);
    wgFlag = 0u;
    if (nanAt != 0xffffffffu) {
      finish(outAt, row, nanAt, F64_ZERO, STATUS_NAN);
      wgFlag = 1u;
    }
  }
  if (workgroupUniformLoad(&wgFlag) != 0u) { return; }
  let maxLogit = f64FromF32(f32FromKey(atomicLoad(&wgMaxKey)));

  // Invocation 0's state across the serial passes.
  var acc = F64_ZERO;     // the running sum
  var total = F64_ZERO;   // the candidates' total probability (top-k / top-p)
  var drawAt = F64_ZERO;  // u · total
  var phase = 0u;         // the draw's phase: 0 top-p cut, 1 total, 2 u·total, 3 scan
  var keep = 0u;          // candidates kept (top-k / top-p)
  var j = 0u;             // the serial stage's position
  var token = 0xffffffffu;
  let u = draws[row];
  let topP = F64(params.pLo, params.pHi);

  for (var stage = 0u; stage < 6u; stage++) {
    let serial = stage == 0u || stage == 2u || stage == 5u;
    let m = workgroupUniformLoad(&wgValue); // max in stages 1 and 2, lse in stage 3
    acc = F64_ZERO;
    j = 0u;
    // The id-order sums (stage 2, and the whole-vocabulary draw) load term j + 1 while adding term
    // j, so a GPU's global-load latency overlaps the addition instead of adding to it.
    var next = F64_ZERO;
    if (lid == 0u && (stage == 2u || (stage == 5u && params.mode == MODE_FULL))) { next = work[workBase].xy; }
    if (stage == 4u) {
      // Between the last parallel stage and the draw: greedy's argmax, or the sorted candidates.
      if (params.mode == MODE_GREEDY) {
        var best = vec4(0u, 0u, 0xffffffffu, 0u); // (lp key low, high, id)
        for (var i = lid; i < V; i += WG) {
          let key = f64Key(work[workBase + i].zw);
          if (u64Lt(best.xy, key)) { best = vec4(key, i, 0u); }
        }
        wgBest[lid] = best;
        for (var half = WG / 2u; half > 0u; half /= 2u) {
          workgroupBarrier();
          if (lid < half) {
            let a = wgBest[lid];
            let b = wgBest[lid + half];
            if (u64Lt(a.xy, b.xy) || (a.x == b.x && a.y == b.y && b.z < a.z)) { wgBest[lid] = b; }
          }
        }
        workgroupBarrier();
        token = wgBest[0].z;
      } else if (params.mode == MODE_SORTED) {
        for (var i = lid; i < params.sortSize; i += WG) {
          var entry = SORT_PAD;
          if (i < V) {
            let lp = work[workBase + i].zw;
            if (!f64Eq(lp, F64_NEG_INF)) { // choose.ts drops −∞ log-probs from the candidates
              let key = f64Key(lp);
              entry = vec4(~key.x, ~key.y, i, 0u);
              atomicAdd(&wgFinite, 1u);
            }
          }
          sorted[sortBase + i] = entry;
        }
        storageBarrier();
        for (var k = 2u; k <= params.sortSize; k <<= 1u) {
          for (var jj = k >> 1u; jj > 0u; jj >>= 1u) {
            for (var i = lid; i < params.sortSize; i += WG) {
              let l = i ^ jj;
              if (l > i) {
                let a = sorted[sortBase + i];
                let b = sorted[sortBase + l];
                let up = (i & k) == 0u;
                if (select(sortsBefore(a, b), sortsBefore(b, a), up)) {
                  sorted[sortBase + i] = b;
                  sorted[sortBase + l] = a;
                }
              }
            }
            storageBarrier();
          }
        }
        phase = select(1u, 0u, params.limitP != 0u);
        workgroupBarrier(); // the count of finite candidates is complete
      }
      keep = min(atomicLoad(&wgFinite), params.keep); // every invocation: stage 4's extent
    }
    // Each iteration: one float64 evaluation, then what it means in this stage.
    var i = select(lid, 0u, serial);
    loop {
      var entry = EVAL_ADD;
      var a = F64_ZERO;
      var b = F64_ZERO;
      var c = F64_ZERO;
      var at = 0u; // the id (parallel passes) or sorted position (draw) this evaluation is for
      if (serial) {
        if (lid != 0u || token != 0xffffffffu) { break; }
        if (stage == 0u) {
          if (j > 0u) { break; }
          entry = EVAL_DIV;
          a = maxLogit;
          b = t;
        } else if (stage == 2u) {
          if (j < V) {
            a = acc;
            b = next;
            next = work[workBase + min(j + 1u, V - 1u)].xy;
          } else if (j == V) {
            entry = EVAL_LOG_ADD;
            a = acc;
            b = m;
          } else {
            break;
          }
        } else if (params.mode == MODE_FULL) {
          if (j >= V) {
            // u is above the last partial sum (rounding): the last token with any mass.
            token = V - 1u;
            while (token > 0u && f64Eq(work[workBase + token].zw, F64_NEG_INF)) { token -= 1u; }
            break;
          }
          at = j;
          a = acc;
          b = next;
          next = work[workBase + min(j + 1u, V - 1u)].xy;
        } else if (params.mode == MODE_SORTED) {
          if (phase == 0u && (j >= keep || !f64Lt(acc, topP))) {
            keep = max(1u, j);
            phase = 1u;
            j = 0u;
            acc = F64_ZERO;
          }
          if (phase == 1u && j >= keep) {
            phase = 2u;
          }
          if (phase == 2u) {
            entry = EVAL_MUL;
            a = u;
            b = total;
          } else if (phase == 3u && j >= keep) {
            token = sorted[sortBase + keep - 1u].z; // u·total above the last partial sum
            break;
          } else {
            at = sorted[sortBase + j].z;
            a = select(acc, total, phase == 1u);
            b = work[workBase + at].xy;
          }
        } else {
          break;
        }
      } else if (stage == 4u) {
        if (params.mode != MODE_SORTED || i >= keep) { break; }
        at = sorted[sortBase + i].z;
        entry = EVAL_EXP;
        a = work[workBase + at].zw;
      } else {
        if (i >= V) { break; }
        if (stage == 1u) {
          entry = EVAL_DIV_SHIFT_EXP;
          a = f64FromF32(logits[logitBase + i]);
          b = t;
          c = m;
        } else {
          // Only the whole-vocabulary draw needs every p; greedy and the sorted draw need lp.
          entry = select(EVAL_SUB, EVAL_SHIFT_EXP, params.mode == MODE_FULL);
          a = work[workBase + i].zw;
          b = m;
        }
      }

      // The serial sums are the long dependent chains (up to two per logit): their additions skip
      // the interpreter (one more inlined copy of the addition; greedy over 2 × 2048 logits on
      // SwiftShader: 1.1 s a step against 1.3–2.0 s through f64Eval).
      var r: F64Pair;
      if (serial && entry == EVAL_ADD) {
        r = F64Pair(f64Add(a, b), F64_ZERO);
      } else {
        r = f64Eval(entry, a, b, c);
      }

      if (serial) {
        if (stage == 0u) {
          wgValue = r.value;
        } else if (stage == 2u) {
          if (j < V) { acc = r.value; } else { wgValue = r.value; }
        } else if (params.mode == MODE_FULL) {
          acc = r.value;
          if (f64Lt(u, acc)) { token = at; }
        } else if (phase == 0u) {
          acc = r.value;
        } else if (phase == 1u) {
          total = r.value;
        } else if (phase == 2u) {
          drawAt = r.value;
          phase = 3u;
          j = 0u;
          continue; // the scan starts at the first candidate
        } else {
          acc = r.value;
          if (f64Lt(drawAt, acc)) { token = at; }
        }
        j += 1u;
      } else if (stage == 4u) {
        work[workBase + at] = vec4(r.value, work[workBase + at].zw);
        i += WG;
      } else {
        if (stage == 3u && params.mode != MODE_FULL) {
          work[workBase + i] = vec4(F64_ZERO, r.value); // lp only
        } else {
          work[workBase + i] = vec4(r.value, r.aux);
        }
        i += WG;
      }
    }
    if (stage == 0u && lid == 0u) {
      // choose.ts refuses a row whose largest x/T is −∞ (every logit −∞) or +∞.
      let largest = wgValue;
      wgFlag = 0u;
      if (f64Eq(largest, F64_NEG_INF)) {
        finish(outAt, row, 0u, F64_ZERO, STATUS_ALL_NEG_INF);
        wgFlag = 1u;
      } else if (f64Eq(largest, F64_INF)) {
        finish(outAt, row, 0u, F64_ZERO, STATUS_POS_INF);
        wgFlag = 1u;
      }
    }
    if (stage == 0u && workgroupUniformLoad(&wgFlag) != 0u) { return; }
    storageBarrier();
  }
  if (lid == 0u) {
    finish(outAt, row, token, work[workBase + token].zw, STATUS_CHOSEN);
  }
}
