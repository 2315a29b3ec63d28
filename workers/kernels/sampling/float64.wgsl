// float64.wgsl: IEEE 754 binary64 arithmetic on u32 words, for kernels that must give the very
// bits JavaScript numbers give. WGSL has no f64, and the token choice compares draws with
// cumulative sums of probabilities computed in float64 by the JavaScript path; any other precision
// would pick another token whenever a draw falls between the two roundings.
//
// A float64 is a vec2<u32> (low word, high word): the memory layout of one Float64Array element,
// so Float64Array data uploaded as bytes is read as array<vec2<u32>> directly. Every operation
// rounds to nearest, ties to even, handles subnormals, ±0, ±∞ and NaN (any NaN; payloads are not
// kept), as IEEE 754 and JavaScript define them; the algorithms are the classic ones of software
// floating point (align, add or subtract the significands with a sticky bit, normalise, round).
// An unsigned 64-bit integer (significands) is a vec2<u32> (low, high) too.

alias U64 = vec2<u32>;
alias F64 = vec2<u32>;

const F64_ZERO: F64 = F64(0u, 0u);
const F64_ONE: F64 = F64(0u, 0x3ff00000u);
const F64_TWO: F64 = F64(0u, 0x40000000u);
const F64_INF: F64 = F64(0u, 0x7ff00000u);
const F64_NEG_INF: F64 = F64(0u, 0xfff00000u);
const F64_NAN: F64 = F64(0u, 0x7ff80000u);

// ---------------------------------------------------------------------------------------------
// Unsigned 64-bit integers

fn u64Add(a: U64, b: U64) -> U64 {
  let lo = a.x + b.x;
  return U64(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn u64Sub(a: U64, b: U64) -> U64 {
  return U64(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn u64Lt(a: U64, b: U64) -> bool {
  return a.y < b.y || (a.y == b.y && a.x < b.x);
}

fn u64IsZero(a: U64) -> bool {
  return (a.x | a.y) == 0u;
}

// Shifts by 0..63 (WGSL takes a u32 shift modulo 32, so each word is shifted explicitly).
fn u64Shl(a: U64, n: u32) -> U64 {
  if (n == 0u) { return a; }
  if (n >= 64u) { return U64(0u, 0u); }
  if (n >= 32u) { return U64(0u, a.x << (n - 32u)); }
  return U64(a.x << n, (a.y << n) | (a.x >> (32u - n)));
}

fn u64Shr(a: U64, n: u32) -> U64 {
  if (n == 0u) { return a; }
  if (n >= 64u) { return U64(0u, 0u); }
  if (n >= 32u) { return U64(a.y >> (n - 32u), 0u); }
  return U64((a.x >> n) | (a.y << (32u - n)), a.y >> n);
}

// Shift right, OR-ing every bit shifted out into bit 0 (the sticky bit), so that rounding still
// sees that the exact value was above the kept bits.
fn u64ShrJam(a: U64, n: u32) -> U64 {
  if (n == 0u) { return a; }
  if (n >= 64u) { return U64(select(0u, 1u, !u64IsZero(a)), 0u); }
  let r = u64Shr(a, n);
  let back = u64Shl(r, n);
  return U64(r.x | select(0u, 1u, back.x != a.x || back.y != a.y), r.y);
}

// Leading zeros (64 for zero).
fn u64Clz(a: U64) -> u32 {
  if (a.y != 0u) { return countLeadingZeros(a.y); }
  return 32u + countLeadingZeros(a.x);
}

// The 64-bit product of two u32, from four 16-bit products (WGSL has no widening multiply).
fn mul32Wide(a: u32, b: u32) -> U64 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = p01 + p10;
  let midCarry = select(0u, 0x10000u, mid < p01);
  let lo = p00 + (mid << 16u);
  let loCarry = select(0u, 1u, lo < p00);
  return U64(lo, p11 + (mid >> 16u) + midCarry + loCarry);
}

// The high 64 bits of the 128-bit product a·b, with bit 0 set when any low bit is (sticky).
fn u64MulHighJam(a: U64, b: U64) -> U64 {
  let ll = mul32Wide(a.x, b.x);
  let lh = mul32Wide(a.x, b.y);
  let hl = mul32Wide(a.y, b.x);
  let hh = mul32Wide(a.y, b.y);
  let mid = u64Add(lh, hl);
  let midCarry = select(0u, 1u, u64Lt(mid, lh)); // 2^64 at bit 32: 1 in the top word
  let word1 = ll.y + mid.x;
  let c1 = select(0u, 1u, word1 < ll.y);
  let high = u64Add(u64Add(hh, U64(mid.y, midCarry)), U64(c1, 0u));
  return U64(high.x | select(0u, 1u, (ll.x | word1) != 0u), high.y);
}

// ---------------------------------------------------------------------------------------------
// Packing and rounding. `exp` is one less than the biased exponent of a significand whose leading
// bit is bit 62 (adding the significand's leading bit, shifted to bit 52, to exp << 52 gives the
// right exponent field, and a carry out of rounding moves it up by itself).

fn f64Pack(sign: u32, exp: i32, sig: U64) -> F64 {
  // sig < 2^53 (leading bit at 52 or below); the sum carries into the exponent field.
  let packed = u64Add(U64(0u, (sign << 31u) + (u32(exp) << 20u)), sig);
  return packed;
}

fn f64RoundPack(sign: u32, expIn: i32, sigIn: U64) -> F64 {
  var exp = expIn;
  var sig = sigIn;
  var roundBits = sig.x & 0x3ffu;
  if (exp < 0) {
    sig = u64ShrJam(sig, u32(-exp));
    exp = 0;
    roundBits = sig.x & 0x3ffu;
  } else if (exp > 0x7fd || (exp == 0x7fd && !u64Lt(u64Add(sig, U64(0x200u, 0u)), U64(0u, 0x80000000u)))) {
    return F64(0u, (sign << 31u) | 0x7ff00000u);
  }
  sig = u64Shr(u64Add(sig, U64(0x200u, 0u)), 10u);
  if (roundBits == 0x200u) { sig.x &= 0xfffffffeu; } // a tie goes to the even neighbour
  if (u64IsZero(sig)) { exp = 0; }
  return f64Pack(sign, exp, sig);
}

// Normalises sig (any leading-bit position) before rounding and packing.
fn f64NormRoundPack(sign: u32, expIn: i32, sig: U64) -> F64 {
  let shift = i32(u64Clz(sig)) - 1;
  let exp = expIn - shift;
  if (shift >= 10 && exp >= 0 && exp < 0x7fd) {
    // exact: no bits below the kept ones
    return f64Pack(sign, select(0, exp, !u64IsZero(sig)), u64Shl(sig, u32(shift - 10)));
  }
  return f64RoundPack(sign, exp, u64Shl(sig, u32(max(shift, 0))));
}

// ---------------------------------------------------------------------------------------------
// Fields

fn f64Sign(a: F64) -> u32 { return a.y >> 31u; }
fn f64ExpField(a: F64) -> i32 { return i32((a.y >> 20u) & 0x7ffu); }
fn f64Frac(a: F64) -> U64 { return U64(a.x, a.y & 0xfffffu); }
fn f64Neg(a: F64) -> F64 { return F64(a.x, a.y ^ 0x80000000u); }
fn f64IsNaN(a: F64) -> bool { return (a.y & 0x7fffffffu) > 0x7ff00000u || ((a.y & 0x7fffffffu) == 0x7ff00000u && a.x != 0u); }
fn f64IsZero(a: F64) -> bool { return ((a.y & 0x7fffffffu) | a.x) == 0u; }

// A subnormal's exponent and significand with its leading bit moved to bit 52.
struct Unpacked {
  exp: i32,
  sig: U64,
}

fn normSubnormal(frac: U64) -> Unpacked {
  let shift = u64Clz(frac) - 11u;
  return Unpacked(1 - i32(shift), u64Shl(frac, shift));
}

// ---------------------------------------------------------------------------------------------
// Addition and subtraction

fn f64AddMags(a: F64, b: F64, signZ: u32) -> F64 {
  let expA = f64ExpField(a);
  var sigA = f64Frac(a);
  let expB = f64ExpField(b);
  var sigB = f64Frac(b);
  let expDiff = expA - expB;
  var expZ: i32;
  var sigZ: U64;
  if (expDiff == 0) {
    if (expA == 0) { return f64Pack(signZ, 0, u64Add(sigA, sigB)); }
    if (expA == 0x7ff) {
      if (!u64IsZero(sigA) || !u64IsZero(sigB)) { return F64_NAN; }
      return a;
    }
    expZ = expA;
    sigZ = u64Shl(u64Add(U64(0u, 0x00200000u), u64Add(sigA, sigB)), 9u);
  } else {
    sigA = u64Shl(sigA, 9u);
    sigB = u64Shl(sigB, 9u);
    if (expDiff < 0) {
      if (expB == 0x7ff) {
        if (!u64IsZero(sigB)) { return F64_NAN; }
        return F64(0u, (signZ << 31u) | 0x7ff00000u);
      }
      expZ = expB;
      if (expA != 0) { sigA = u64Add(sigA, U64(0u, 0x20000000u)); } else { sigA = u64Shl(sigA, 1u); }
      sigA = u64ShrJam(sigA, u32(-expDiff));
    } else {
      if (expA == 0x7ff) {
        if (!u64IsZero(sigA)) { return F64_NAN; }
        return a;
      }
      expZ = expA;
      if (expB != 0) { sigB = u64Add(sigB, U64(0u, 0x20000000u)); } else { sigB = u64Shl(sigB, 1u); }
      sigB = u64ShrJam(sigB, u32(expDiff));
    }
    sigZ = u64Add(U64(0u, 0x20000000u), u64Add(sigA, sigB));
    if (u64Lt(sigZ, U64(0u, 0x40000000u))) {
      expZ -= 1;
      sigZ = u64Shl(sigZ, 1u);
    }
  }
  return f64RoundPack(signZ, expZ, sigZ);
}

fn f64SubMags(a: F64, b: F64, signIn: u32) -> F64 {
  var signZ = signIn;
  var expA = f64ExpField(a);
  var sigA = f64Frac(a);
  let expB = f64ExpField(b);
  var sigB = f64Frac(b);
  let expDiff = expA - expB;
  if (expDiff == 0) {
    if (expA == 0x7ff) { return F64_NAN; } // ∞ − ∞, or a NaN
    if (u64IsZero(sigA) && u64IsZero(sigB)) { return F64_ZERO; }
    if (sigA.x == sigB.x && sigA.y == sigB.y) { return F64_ZERO; }
    if (expA != 0) { expA -= 1; }
    var sigDiff: U64;
    if (u64Lt(sigA, sigB)) {
      signZ ^= 1u;
      sigDiff = u64Sub(sigB, sigA);
    } else {
      sigDiff = u64Sub(sigA, sigB);
    }
    var shift = i32(u64Clz(sigDiff)) - 11;
    var expZ = expA - shift;
    if (expZ < 0) {
      shift = expA;
      expZ = 0;
    }
    return f64Pack(signZ, expZ, u64Shl(sigDiff, u32(shift)));
  }
  sigA = u64Shl(sigA, 10u);
  sigB = u64Shl(sigB, 10u);
  var expZ: i32;
  var sigZ: U64;
  if (expDiff < 0) {
    signZ ^= 1u;
    if (expB == 0x7ff) {
      if (!u64IsZero(sigB)) { return F64_NAN; }
      return F64(0u, (signZ << 31u) | 0x7ff00000u);
    }
    if (expA != 0) { sigA = u64Add(sigA, U64(0u, 0x40000000u)); } else { sigA = u64Add(sigA, sigA); }
    sigA = u64ShrJam(sigA, u32(-expDiff));
    sigB = U64(sigB.x, sigB.y | 0x40000000u);
    expZ = expB;
    sigZ = u64Sub(sigB, sigA);
  } else {
    if (expA == 0x7ff) {
      if (!u64IsZero(sigA)) { return F64_NAN; }
      return a;
    }
    if (expB != 0) { sigB = u64Add(sigB, U64(0u, 0x40000000u)); } else { sigB = u64Add(sigB, sigB); }
    sigB = u64ShrJam(sigB, u32(expDiff));
    sigA = U64(sigA.x, sigA.y | 0x40000000u);
    expZ = expA;
    sigZ = u64Sub(sigA, sigB);
  }
  return f64NormRoundPack(signZ, expZ - 1, sigZ);
}

fn f64Add(a: F64, b: F64) -> F64 {
  if (f64IsNaN(a) || f64IsNaN(b)) { return F64_NAN; }
  let signA = f64Sign(a);
  if (signA == f64Sign(b)) { return f64AddMags(a, b, signA); }
  return f64SubMags(a, b, signA);
}

fn f64Sub(a: F64, b: F64) -> F64 {
  return f64Add(a, f64Neg(b));
}

// ---------------------------------------------------------------------------------------------
// Multiplication and division

fn f64Mul(a: F64, b: F64) -> F64 {
  if (f64IsNaN(a) || f64IsNaN(b)) { return F64_NAN; }
  let signZ = f64Sign(a) ^ f64Sign(b);
  var expA = f64ExpField(a);
  var sigA = f64Frac(a);
  var expB = f64ExpField(b);
  var sigB = f64Frac(b);
  if (expA == 0x7ff || expB == 0x7ff) {
    if (f64IsZero(a) || f64IsZero(b)) { return F64_NAN; } // ∞ · 0
    return F64(0u, (signZ << 31u) | 0x7ff00000u);
  }
  if (expA == 0) {
    if (u64IsZero(sigA)) { return F64(0u, signZ << 31u); }
    let n = normSubnormal(sigA);
    expA = n.exp;
    sigA = n.sig;
  }
  if (expB == 0) {
    if (u64IsZero(sigB)) { return F64(0u, signZ << 31u); }
    let n = normSubnormal(sigB);
    expB = n.exp;
    sigB = n.sig;
  }
  var expZ = expA + expB - 0x3ff;
  sigA = u64Shl(U64(sigA.x, sigA.y | 0x00100000u), 10u);
  sigB = u64Shl(U64(sigB.x, sigB.y | 0x00100000u), 11u);
  var sigZ = u64MulHighJam(sigA, sigB);
  if (u64Lt(sigZ, U64(0u, 0x40000000u))) {
    expZ -= 1;
    sigZ = u64Shl(sigZ, 1u);
  }
  return f64RoundPack(signZ, expZ, sigZ);
}

// Long division, one quotient bit per step: 63 bits of a/b (leading bit at 62) and a sticky bit.
fn f64Div(a: F64, b: F64) -> F64 {
  if (f64IsNaN(a) || f64IsNaN(b)) { return F64_NAN; }
  let signZ = f64Sign(a) ^ f64Sign(b);
  var expA = f64ExpField(a);
  var sigA = f64Frac(a);
  var expB = f64ExpField(b);
  var sigB = f64Frac(b);
  if (expA == 0x7ff) {
    if (expB == 0x7ff) { return F64_NAN; }
    return F64(0u, (signZ << 31u) | 0x7ff00000u);
  }
  if (expB == 0x7ff) { return F64(0u, signZ << 31u); }
  if (expB == 0 && u64IsZero(sigB)) {
    if (expA == 0 && u64IsZero(sigA)) { return F64_NAN; }
    return F64(0u, (signZ << 31u) | 0x7ff00000u);
  }
  if (expA == 0) {
    if (u64IsZero(sigA)) { return F64(0u, signZ << 31u); }
    let n = normSubnormal(sigA);
    expA = n.exp;
    sigA = n.sig;
  }
  if (expB == 0) {
    let n = normSubnormal(sigB);
    expB = n.exp;
    sigB = n.sig;
  }
  var expZ = expA - expB + 0x3fe;
  sigA = U64(sigA.x, sigA.y | 0x00100000u);
  sigB = U64(sigB.x, sigB.y | 0x00100000u);
  if (u64Lt(sigA, sigB)) {
    expZ -= 1;
    sigA = u64Shl(sigA, 1u);
  }
  // Now b ≤ a < 2b: the quotient's leading bit (62) is 1.
  var rem = u64Sub(sigA, sigB);
  var q = U64(0u, 0x40000000u);
  for (var bit = 61; bit >= 0; bit -= 1) {
    rem = u64Shl(rem, 1u);
    if (!u64Lt(rem, sigB)) {
      rem = u64Sub(rem, sigB);
      if (bit >= 32) { q.y |= 1u << u32(bit - 32); } else { q.x |= 1u << u32(bit); }
    }
  }
  q.x |= select(0u, 1u, !u64IsZero(rem));
  return f64RoundPack(signZ, expZ, q);
}

// ---------------------------------------------------------------------------------------------
// Comparisons and conversions

// A key whose unsigned order is the numbers' order (−0 and +0 share one key); NaN not allowed.
fn f64Key(a: F64) -> U64 {
  if (f64IsZero(a)) { return U64(0u, 0x80000000u); }
  if (f64Sign(a) == 1u) { return U64(~a.x, ~a.y); }
  return U64(a.x, a.y | 0x80000000u);
}

// a < b as IEEE compares (false when either is NaN).
fn f64Lt(a: F64, b: F64) -> bool {
  if (f64IsNaN(a) || f64IsNaN(b)) { return false; }
  return u64Lt(f64Key(a), f64Key(b));
}

fn f64Eq(a: F64, b: F64) -> bool {
  if (f64IsNaN(a) || f64IsNaN(b)) { return false; }
  let ka = f64Key(a);
  let kb = f64Key(b);
  return ka.x == kb.x && ka.y == kb.y;
}

// The float32's exact value as a float64 (every float32 is one).
fn f64FromF32(x: f32) -> F64 {
  let bits = bitcast<u32>(x);
  let sign = bits & 0x80000000u;
  let e = (bits >> 23u) & 0xffu;
  var m = bits & 0x7fffffu;
  if (e == 0xffu) { return F64(m << 29u, sign | 0x7ff00000u | (m >> 3u)); }
  if (e == 0u) {
    if (m == 0u) { return F64(0u, sign); }
    let p = 31u - countLeadingZeros(m); // leading bit of the subnormal significand
    m = (m << (23u - p)) & 0x7fffffu;
    let field = p + 1023u - 149u;
    return F64(m << 29u, sign | (field << 20u) | (m >> 3u));
  }
  return F64(m << 29u, sign | ((e + 896u) << 20u) | (m >> 3u));
}

fn f64FromI32(k: i32) -> F64 {
  if (k == 0) { return F64_ZERO; }
  let sign = select(0u, 0x80000000u, k < 0);
  let mag = u32(abs(k)); // |−2^31| wraps to 2^31 as u32, which is right
  let p = 31u - countLeadingZeros(mag);
  let sig = u64Shl(U64(mag, 0u), 52u - p);
  return F64(sig.x, sign | ((1023u + p) << 20u) | (sig.y & 0xfffffu));
}

// Truncation toward zero, for |a| < 2^31 (C's (int) cast).
fn f64ToI32(a: F64) -> i32 {
  let e = f64ExpField(a) - 1023;
  if (e < 0) { return 0; }
  let sig = U64(a.x, (a.y & 0xfffffu) | 0x00100000u);
  let mag = i32(u64Shr(sig, u32(52 - e)).x);
  return select(mag, -mag, f64Sign(a) == 1u);
}

// A float64 with its high word replaced (fdlibm's SET_HIGH_WORD / INSERT_WORDS).
fn f64WithHigh(a: F64, high: u32) -> F64 {
  return F64(a.x, high);
}

fn f64Arith(op: u32, a: F64, b: F64) -> F64 {
  if (op == 2u) { return f64Mul(a, b); }
  if (op == 3u) { return f64Div(a, b); }
  return f64Add(a, select(b, f64Neg(b), op == 1u));
}
