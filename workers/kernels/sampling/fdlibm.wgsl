// fdlibm.wgsl: e^x and ln x on float64.wgsl, operation for operation as fdlibm.ts computes them
// (fdlibm's e_exp.c and e_log.c, which V8's Math.exp and Math.log ran in Node 20), so each result
// has the same bits as in JavaScript. Compiled after float64.wgsl.
//
// Why a tiny interpreter: WGSL compilers inline every call, and one float64 operation is a few
// hundred instructions. exp written out (about 30 operations) took SwiftShader 72 s to compile.
// Here every float64 operation of exp and log is one instruction of a program (VM_PROGRAM),
// executed by one loop with one call of f64Arith, and the integer steps between them (argument
// reduction, the exponent k, which branch) run in the loop's stage machine. `f64Eval` also runs
// the few compound operations the token choice needs (x/t − m then e^·, ln s + m), so a kernel
// that calls it once holds one copy of the arithmetic.
//
// An instruction is vec4(op, dst, a, b): r[dst] = r[a] op r[b], op 0 +, 1 −, 2 ·, 3 /; an operand
// below 16 is a register, 16 and up is VM_CONST[operand − 16].

struct F64Pair {
  value: F64,
  // What the entry leaves beside its value: x/t for EVAL_DIV_SHIFT_EXP, x − m for EVAL_SHIFT_EXP.
  aux: F64,
}

// Entries of f64Eval(entry, a, b, c).
const EVAL_ADD: u32 = 0u;            // a + b
const EVAL_SUB: u32 = 1u;            // a − b
const EVAL_MUL: u32 = 2u;            // a · b
const EVAL_DIV: u32 = 3u;            // a / b
const EVAL_EXP: u32 = 4u;            // e^a
const EVAL_LOG: u32 = 5u;            // ln a
const EVAL_DIV_SHIFT_EXP: u32 = 6u;  // v = a / b (a itself when b is 1), e^(v − c); aux v
const EVAL_SHIFT_EXP: u32 = 7u;      // d = a − b, e^d; aux d
const EVAL_LOG_ADD: u32 = 8u;        // b + ln a

// Registers. exp: X the argument, HI/LO its reduction, T = x², P the polynomial, C, A = x·c, D the
// divisor, Y, K the float of k, S a signed constant the stage picked. log: F, Z = s², W = z², T1,
// T2, R, H = f²/2, A and B temporaries, S = f/(2 + f), K the float of k. Q the result, AUX.
const RX: u32 = 0u;
const RHI: u32 = 1u;
const RLO: u32 = 2u;
const RT: u32 = 3u;
const RP: u32 = 4u;
const RC: u32 = 5u;
const RA: u32 = 6u;
const RD: u32 = 7u;
const RQ: u32 = 8u;
const RY: u32 = 9u;
const RK: u32 = 10u;
const RS: u32 = 11u;
const RB: u32 = 12u; // the entry's b
const RM: u32 = 13u; // the entry's c
const RAUX: u32 = 14u;
const RF: u32 = 1u;  // log's registers reuse exp's
const RZ: u32 = 2u;
const RW: u32 = 3u;
const RT1: u32 = 4u;
const RT2: u32 = 5u;
const RR: u32 = 7u;
const RH: u32 = 9u;
const RB2: u32 = 15u;

// Constants: operand 16 + index.
const CLN2_HI: u32 = 16u;
const CLN2_LO: u32 = 17u;
const CINV_LN2: u32 = 18u;
const CONE: u32 = 19u;
const CTWO: u32 = 20u;
const CHALF: u32 = 21u;
const CP1: u32 = 22u;
const CP2: u32 = 23u;
const CP3: u32 = 24u;
const CP4: u32 = 25u;
const CP5: u32 = 26u;
const CTWO1023: u32 = 27u;
const CTWOM1000: u32 = 28u;
const CTWO54: u32 = 29u;
const CTHIRD: u32 = 30u;
const CLG1: u32 = 31u;
const CLG2: u32 = 32u;
const CLG3: u32 = 33u;
const CLG4: u32 = 34u;
const CLG5: u32 = 35u;
const CLG6: u32 = 36u;
const CLG7: u32 = 37u;

const VM_CONST = array<F64, 22>(
  F64(0xfee00000u, 0x3fe62e42u), // ln2 high part (trailing zeros: k·ln2_hi is exact)
  F64(0x35793c76u, 0x3dea39efu), // ln2 low part
  F64(0x652b82feu, 0x3ff71547u), // 1/ln2
  F64(0x00000000u, 0x3ff00000u), // 1
  F64(0x00000000u, 0x40000000u), // 2
  F64(0x00000000u, 0x3fe00000u), // 0.5
  F64(0x5555553eu, 0x3fc55555u), // exp's P1..P5
  F64(0x16bebd93u, 0xbf66c16cu),
  F64(0xaf25de2cu, 0x3f11566au),
  F64(0xc5d26bf1u, 0xbebbbd41u),
  F64(0x72bea4d0u, 0x3e663769u),
  F64(0x00000000u, 0x7fe00000u), // 2^1023
  F64(0x00000000u, 0x01700000u), // 2^-1000
  F64(0x00000000u, 0x43500000u), // 2^54
  F64(0x55555555u, 0x3fd55555u), // 0.33333333333333333
  F64(0x55555593u, 0x3fe55555u), // log's Lg1..Lg7
  F64(0x9997fa04u, 0x3fd99999u),
  F64(0x94229359u, 0x3fd24924u),
  F64(0x1d8e78afu, 0x3fcc71c5u),
  F64(0x96cb03deu, 0x3fc74664u),
  F64(0xd078c69fu, 0x3fc39a09u),
  F64(0xdf3e5244u, 0x3fc2f112u),
);

const OP_ADD: u32 = 0u;
const OP_SUB: u32 = 1u;
const OP_MUL: u32 = 2u;
const OP_DIV: u32 = 3u;


// Values the stage machine itself uses.
const LN2_HI: F64 = F64(0xfee00000u, 0x3fe62e42u);
const LN2_LO: F64 = F64(0x35793c76u, 0x3dea39efu);
const F64_HALF: F64 = F64(0x00000000u, 0x3fe00000u);
const EXP_O_THRESHOLD: F64 = F64(0xfefa39efu, 0x40862e42u);
const EXP_U_THRESHOLD: F64 = F64(0xd52d3051u, 0xc0874910u);
const EXP_E: F64 = F64(0x8b145769u, 0x4005bf0au);

// The programs, segment after segment; SEG_* (below) give each one's [start, end).
const VM_PROGRAM = array<vec4<u32>, 96>(
  // 0..3: the plain operations (SEG_ADD + op)
  vec4(OP_ADD, RQ, RX, RB),
  vec4(OP_SUB, RQ, RX, RB),
  vec4(OP_MUL, RQ, RX, RB),
  vec4(OP_DIV, RQ, RX, RB),
  // 4 SEG_V: v = a / b
  vec4(OP_DIV, RAUX, RX, RB),
  // 5 SEG_D: x = v − c
  vec4(OP_SUB, RX, RAUX, RM),
  // 6 SEG_SHIFT: d = a − b
  vec4(OP_SUB, RAUX, RX, RB),
  // 7 SEG_EXP_MID: 0.5·ln2 < |x| < 1.5·ln2: hi = x − (±ln2_hi), x = hi − lo
  vec4(OP_SUB, RHI, RX, RS),
  vec4(OP_SUB, RX, RHI, RLO),
  // 9 SEG_EXP_K: q = x·(1/ln2) ± 0.5, truncated to k by the stage machine
  vec4(OP_MUL, RQ, CINV_LN2, RX),
  vec4(OP_ADD, RQ, RQ, RS),
  // 11 SEG_EXP_BIG: hi = x − k·ln2_hi (exact), lo = k·ln2_lo, x = hi − lo
  vec4(OP_MUL, RA, RK, CLN2_HI),
  vec4(OP_SUB, RHI, RX, RA),
  vec4(OP_MUL, RLO, RK, CLN2_LO),
  vec4(OP_SUB, RX, RHI, RLO),
  // 15 SEG_EXP_TINY: |x| < 2^-28: 1 + x
  vec4(OP_ADD, RQ, CONE, RX),
  // 16 SEG_EXP_POLY: t = x², c = x − t·(P1 + t·(P2 + t·(P3 + t·(P4 + t·P5)))), a = x·c
  vec4(OP_MUL, RT, RX, RX),
  vec4(OP_MUL, RP, RT, CP5),
  vec4(OP_ADD, RP, CP4, RP),
  vec4(OP_MUL, RP, RT, RP),
  vec4(OP_ADD, RP, CP3, RP),
  vec4(OP_MUL, RP, RT, RP),
  vec4(OP_ADD, RP, CP2, RP),
  vec4(OP_MUL, RP, RT, RP),
  vec4(OP_ADD, RP, CP1, RP),
  vec4(OP_MUL, RP, RT, RP),
  vec4(OP_SUB, RC, RX, RP),
  vec4(OP_MUL, RA, RX, RC),
  // 28 SEG_EXP_K0: k = 0: 1 − ((x·c)/(c − 2) − x)
  vec4(OP_SUB, RD, RC, CTWO),
  vec4(OP_DIV, RQ, RA, RD),
  vec4(OP_SUB, RQ, RQ, RX),
  vec4(OP_SUB, RQ, CONE, RQ),
  // 32 SEG_EXP_KN: y = 1 − ((lo − (x·c)/(2 − c)) − hi)
  vec4(OP_SUB, RD, CTWO, RC),
  vec4(OP_DIV, RQ, RA, RD),
  vec4(OP_SUB, RQ, RLO, RQ),
  vec4(OP_SUB, RQ, RQ, RHI),
  vec4(OP_SUB, RY, CONE, RQ),
  // 37 SEG_EXP_SCALE: y·2^k
  vec4(OP_MUL, RQ, RY, RS),
  // 38 SEG_EXP_SCALE_MAX: k = 1024: y·2·2^1023
  vec4(OP_MUL, RQ, RY, CTWO),
  vec4(OP_MUL, RQ, RQ, CTWO1023),
  // 40 SEG_EXP_SCALE_SUB: k < −1021: y·2^(k+1000)·2^-1000
  vec4(OP_MUL, RQ, RY, RS),
  vec4(OP_MUL, RQ, RQ, CTWOM1000),
  // 42 SEG_LOG_SUBNORMAL: x·2^54
  vec4(OP_MUL, RX, RX, CTWO54),
  // 43 SEG_LOG_NONFINITE: x + x
  vec4(OP_ADD, RQ, RX, RX),
  // 44 SEG_LOG_F: f = x − 1, x normalised to [√2/2, √2) by the stage machine
  vec4(OP_SUB, RF, RX, CONE),
  // 45 SEG_LOG_F0: f = 0, k ≠ 0: k·ln2_hi + k·ln2_lo
  vec4(OP_MUL, RA, RK, CLN2_HI),
  vec4(OP_MUL, RB2, RK, CLN2_LO),
  vec4(OP_ADD, RQ, RA, RB2),
  // 48 SEG_LOG_TINY: |f| < 2^-20: r = f·f·(0.5 − 0.33333333333333333·f)
  vec4(OP_MUL, RA, RF, RF),
  vec4(OP_MUL, RB2, CTHIRD, RF),
  vec4(OP_SUB, RB2, CHALF, RB2),
  vec4(OP_MUL, RR, RA, RB2),
  // 52 SEG_LOG_TINY_K0: f − r
  vec4(OP_SUB, RQ, RF, RR),
  // 53 SEG_LOG_TINY_K: k·ln2_hi − ((r − k·ln2_lo) − f)
  vec4(OP_MUL, RA, RK, CLN2_LO),
  vec4(OP_SUB, RB2, RR, RA),
  vec4(OP_SUB, RB2, RB2, RF),
  vec4(OP_MUL, RA, RK, CLN2_HI),
  vec4(OP_SUB, RQ, RA, RB2),
  // 58 SEG_LOG_MAIN: s = f/(2 + f), z = s², w = z², t1 = w·(Lg2 + w·(Lg4 + w·Lg6)),
  // t2 = z·(Lg1 + w·(Lg3 + w·(Lg5 + w·Lg7))), r = t2 + t1
  vec4(OP_ADD, RA, CTWO, RF),
  vec4(OP_DIV, RS, RF, RA),
  vec4(OP_MUL, RZ, RS, RS),
  vec4(OP_MUL, RW, RZ, RZ),
  vec4(OP_MUL, RT1, RW, CLG6),
  vec4(OP_ADD, RT1, CLG4, RT1),
  vec4(OP_MUL, RT1, RW, RT1),
  vec4(OP_ADD, RT1, CLG2, RT1),
  vec4(OP_MUL, RT1, RW, RT1),
  vec4(OP_MUL, RT2, RW, CLG7),
  vec4(OP_ADD, RT2, CLG5, RT2),
  vec4(OP_MUL, RT2, RW, RT2),
  vec4(OP_ADD, RT2, CLG3, RT2),
  vec4(OP_MUL, RT2, RW, RT2),
  vec4(OP_ADD, RT2, CLG1, RT2),
  vec4(OP_MUL, RT2, RZ, RT2),
  vec4(OP_ADD, RR, RT2, RT1),
  // 75 SEG_LOG_HFSQ: hfsq = 0.5·f·f, a = s·(hfsq + r)
  vec4(OP_MUL, RH, CHALF, RF),
  vec4(OP_MUL, RH, RH, RF),
  vec4(OP_ADD, RA, RH, RR),
  vec4(OP_MUL, RA, RS, RA),
  // 79 SEG_LOG_HFSQ_K0: f − (hfsq − a)
  vec4(OP_SUB, RA, RH, RA),
  vec4(OP_SUB, RQ, RF, RA),
  // 81 SEG_LOG_HFSQ_K: k·ln2_hi − ((hfsq − (a + k·ln2_lo)) − f)
  vec4(OP_MUL, RB2, RK, CLN2_LO),
  vec4(OP_ADD, RA, RA, RB2),
  vec4(OP_SUB, RA, RH, RA),
  vec4(OP_SUB, RA, RA, RF),
  vec4(OP_MUL, RB2, RK, CLN2_HI),
  vec4(OP_SUB, RQ, RB2, RA),
  // 87 SEG_LOG_PLAIN: a = s·(f − r)
  vec4(OP_SUB, RA, RF, RR),
  vec4(OP_MUL, RA, RS, RA),
  // 89 SEG_LOG_PLAIN_K0: f − a
  vec4(OP_SUB, RQ, RF, RA),
  // 90 SEG_LOG_PLAIN_K: k·ln2_hi − ((a − k·ln2_lo) − f)
  vec4(OP_MUL, RB2, RK, CLN2_LO),
  vec4(OP_SUB, RA, RA, RB2),
  vec4(OP_SUB, RA, RA, RF),
  vec4(OP_MUL, RB2, RK, CLN2_HI),
  vec4(OP_SUB, RQ, RB2, RA),
  // 95 SEG_LOG_ADD_B: b + ln a
  vec4(OP_ADD, RQ, RB, RQ),
);

// Segments: [start, end) in VM_PROGRAM.
const SEG_V = vec2(4u, 5u);
const SEG_D = vec2(5u, 6u);
const SEG_SHIFT = vec2(6u, 7u);
const SEG_EXP_MID = vec2(7u, 9u);
const SEG_EXP_K = vec2(9u, 11u);
const SEG_EXP_BIG = vec2(11u, 15u);
const SEG_EXP_TINY = vec2(15u, 16u);
const SEG_EXP_POLY = vec2(16u, 28u);
const SEG_EXP_K0 = vec2(28u, 32u);
const SEG_EXP_KN = vec2(32u, 37u);
const SEG_EXP_SCALE = vec2(37u, 38u);
const SEG_EXP_SCALE_MAX = vec2(38u, 40u);
const SEG_EXP_SCALE_SUB = vec2(40u, 42u);
const SEG_LOG_SUBNORMAL = vec2(42u, 43u);
const SEG_LOG_NONFINITE = vec2(43u, 44u);
const SEG_LOG_F = vec2(44u, 45u);
const SEG_LOG_F0 = vec2(45u, 48u);
const SEG_LOG_TINY = vec2(48u, 52u);
const SEG_LOG_TINY_K0 = vec2(52u, 53u);
const SEG_LOG_TINY_K = vec2(53u, 58u);
const SEG_LOG_MAIN = vec2(58u, 75u);
const SEG_LOG_HFSQ = vec2(75u, 79u);
const SEG_LOG_HFSQ_K0 = vec2(79u, 81u);
const SEG_LOG_HFSQ_K = vec2(81u, 87u);
const SEG_LOG_PLAIN = vec2(87u, 89u);
const SEG_LOG_PLAIN_K0 = vec2(89u, 90u);
const SEG_LOG_PLAIN_K = vec2(90u, 95u);
const SEG_LOG_ADD_B = vec2(95u, 96u);

// Stages of f64Eval's machine: after a segment has run, the stage decides what runs next.
const ST_ENTRY: u32 = 0u;
const ST_D: u32 = 1u;
const ST_SHIFT_COPY: u32 = 2u;
const ST_EXP: u32 = 3u;
const ST_EXP_K: u32 = 4u;
const ST_EXP_POLY: u32 = 5u;
const ST_EXP_TAIL: u32 = 6u;
const ST_EXP_SCALE: u32 = 7u;
const ST_LOG: u32 = 8u;
const ST_LOG_NORM: u32 = 9u;
const ST_LOG_BRANCH: u32 = 10u;
const ST_LOG_TINY_TAIL: u32 = 11u;
const ST_LOG_MAIN_TAIL: u32 = 12u;
const ST_LOG_HFSQ_TAIL: u32 = 13u;
const ST_LOG_PLAIN_TAIL: u32 = 14u;
const ST_LOG_END: u32 = 15u;
const ST_RETURN: u32 = 16u;

// Runs `entry` (EVAL_*) on a, b, c. Any call site inlines the whole machine: call it once per kernel.
fn f64Eval(entry: u32, a: F64, b: F64, c: F64) -> F64Pair {
  var r: array<F64, 16>;
  r[RX] = a;
  r[RB] = b;
  r[RM] = c;
  var stage = ST_ENTRY;
  var seg = vec2(0u, 0u); // the segment running: [pc, end)
  var k = 0;              // exp's and log's power of two
  var hx = 0;             // log's high word after normalisation
  loop {
    if (seg.x < seg.y) {
      let ins = VM_PROGRAM[seg.x];
      var va: F64;
      var vb: F64;
      if (ins.z < 16u) { va = r[ins.z]; } else { va = VM_CONST[ins.z - 16u]; }
      if (ins.w < 16u) { vb = r[ins.w]; } else { vb = VM_CONST[ins.w - 16u]; }
      r[ins.y] = f64Arith(ins.x, va, vb);
      seg.x += 1u;
      continue;
    }
    switch (stage) {
      case ST_ENTRY: {
        if (entry <= EVAL_DIV) {
          seg = vec2(entry, entry + 1u);
          stage = ST_RETURN;
        } else if (entry == EVAL_EXP) {
          stage = ST_EXP;
        } else if (entry == EVAL_LOG || entry == EVAL_LOG_ADD) {
          stage = ST_LOG;
        } else if (entry == EVAL_DIV_SHIFT_EXP) {
          if (f64Eq(b, F64_ONE)) {
            r[RAUX] = a; // a / 1 is a, exactly
            stage = ST_D;
          } else {
            seg = SEG_V;
            stage = ST_D;
          }
        } else {
          seg = SEG_SHIFT;
          stage = ST_SHIFT_COPY;
        }
      }
      case ST_D: {
        seg = SEG_D;
        stage = ST_EXP;
      }
      case ST_SHIFT_COPY: {
        r[RX] = r[RAUX];
        stage = ST_EXP;
      }
      case ST_EXP: {
        let x = r[RX];
        let xsb = x.y >> 31u;
        let ax = x.y & 0x7fffffffu;
        stage = ST_RETURN;
        if (ax >= 0x40862e42u && ax >= 0x7ff00000u) {
          r[RQ] = select(select(x, F64_ZERO, xsb == 1u), F64_NAN, ((ax & 0xfffffu) | x.x) != 0u);
        } else if (ax >= 0x40862e42u && f64Lt(EXP_O_THRESHOLD, x)) {
          r[RQ] = F64_INF;
        } else if (ax >= 0x40862e42u && f64Lt(x, EXP_U_THRESHOLD)) {
          r[RQ] = F64_ZERO;
        } else if (ax > 0x3fd62e42u && ax < 0x3ff0a2b2u) {
          if (f64Eq(x, F64_ONE)) {
            r[RQ] = EXP_E;
          } else {
            r[RS] = select(LN2_HI, f64Neg(LN2_HI), xsb == 1u);
            r[RLO] = select(LN2_LO, f64Neg(LN2_LO), xsb == 1u);
            k = 1 - 2 * i32(xsb);
            seg = SEG_EXP_MID;
            stage = ST_EXP_POLY;
          }
        } else if (ax > 0x3fd62e42u) {
          r[RS] = select(F64_HALF, f64Neg(F64_HALF), xsb == 1u);
          seg = SEG_EXP_K;
          stage = ST_EXP_K;
        } else if (ax < 0x3e300000u) {
          seg = SEG_EXP_TINY;
        } else {
          k = 0;
          stage = ST_EXP_POLY;
        }
      }
      case ST_EXP_K: {
        k = f64ToI32(r[RQ]);
        r[RK] = f64FromI32(k);
        seg = SEG_EXP_BIG;
        stage = ST_EXP_POLY;
      }
      case ST_EXP_POLY: {
        seg = SEG_EXP_POLY;
        stage = ST_EXP_TAIL;
      }
      case ST_EXP_TAIL: {
        if (k == 0) {
          seg = SEG_EXP_K0;
          stage = ST_RETURN;
        } else {
          seg = SEG_EXP_KN;
          stage = ST_EXP_SCALE;
        }
      }
      case ST_EXP_SCALE: {
        if (k >= -1021) {
          if (k == 1024) {
            seg = SEG_EXP_SCALE_MAX;
          } else {
            r[RS] = F64(0u, 0x3ff00000u + (bitcast<u32>(k) << 20u));
            seg = SEG_EXP_SCALE;
          }
        } else {
          r[RS] = F64(0u, 0x3ff00000u + (bitcast<u32>(k + 1000) << 20u));
          seg = SEG_EXP_SCALE_SUB;
        }
        stage = ST_RETURN;
      }
      case ST_LOG: {
        let x = r[RX];
        let high = bitcast<i32>(x.y);
        k = 0;
        stage = ST_LOG_NORM;
        if (high < 0x00100000) {
          if (((x.y & 0x7fffffffu) | x.x) == 0u) {
            r[RQ] = F64_NEG_INF;
            stage = ST_LOG_END;
          } else if (high < 0) {
            r[RQ] = F64_NAN;
            stage = ST_LOG_END;
          } else {
            k = -54;
            seg = SEG_LOG_SUBNORMAL;
          }
        }
      }
      case ST_LOG_NORM: {
        hx = bitcast<i32>(r[RX].y);
        if (hx >= 0x7ff00000) {
          seg = SEG_LOG_NONFINITE;
          stage = ST_LOG_END;
        } else {
          k += (hx >> 20u) - 1023;
          hx &= 0x000fffff;
          let i = (hx + 0x95f64) & 0x100000;
          r[RX] = F64(r[RX].x, bitcast<u32>(hx | (i ^ 0x3ff00000))); // x or x/2 into [√2/2, √2)
          k += i >> 20u;
          r[RK] = f64FromI32(k);
          seg = SEG_LOG_F;
          stage = ST_LOG_BRANCH;
        }
      }
      case ST_LOG_BRANCH: {
        if ((0x000fffff & (2 + hx)) < 3) {
          if (f64IsZero(r[RF])) {
            if (k == 0) { r[RQ] = F64_ZERO; } else { seg = SEG_LOG_F0; }
            stage = ST_LOG_END;
          } else {
            seg = SEG_LOG_TINY;
            stage = ST_LOG_TINY_TAIL;
          }
        } else {
          seg = SEG_LOG_MAIN;
          stage = ST_LOG_MAIN_TAIL;
        }
      }
      case ST_LOG_TINY_TAIL: {
        seg = select(SEG_LOG_TINY_K, SEG_LOG_TINY_K0, k == 0);
        stage = ST_LOG_END;
      }
      case ST_LOG_MAIN_TAIL: {
        if (((hx - 0x6147a) | (0x6b851 - hx)) > 0) {
          seg = SEG_LOG_HFSQ;
          stage = ST_LOG_HFSQ_TAIL;
        } else {
          seg = SEG_LOG_PLAIN;
          stage = ST_LOG_PLAIN_TAIL;
        }
      }
      case ST_LOG_HFSQ_TAIL: {
        seg = select(SEG_LOG_HFSQ_K, SEG_LOG_HFSQ_K0, k == 0);
        stage = ST_LOG_END;
      }
      case ST_LOG_PLAIN_TAIL: {
        seg = select(SEG_LOG_PLAIN_K, SEG_LOG_PLAIN_K0, k == 0);
        stage = ST_LOG_END;
      }
      case ST_LOG_END: {
        if (entry == EVAL_LOG_ADD) { seg = SEG_LOG_ADD_B; }
        stage = ST_RETURN;
      }
      default: {
        return F64Pair(r[RQ], r[RAUX]);
      }
    }
  }
}
