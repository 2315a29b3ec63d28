// float64_probe.wgsl: one float64 operation over arrays, so a test can compare the emulated
// arithmetic with JavaScript's bit for bit. Compiled after float64.wgsl and fdlibm.wgsl.
//
// Bindings: a, b, c: array<F64> (inputs; for op 16 `a` holds float32 bits in its low word),
// out: array<vec4<u32>> (the value, then the aux of f64Eval), params. Dispatch: ceil(n / 64)
// workgroups of 64.
//
// op 0..8: f64Eval(op, a, b, c) (EVAL_*: +, −, ·, /, e^a, ln a, e^(a/b − c), e^(a − b), b + ln a);
// 16: float32 → float64; 17: (a < b, a == b) as 0|1 words; 18: (int) a; 19: the sort key of a.

struct ProbeParams {
  n: u32,
  op: u32,
}

@group(0) @binding(0) var<storage, read> a: array<F64>;
@group(0) @binding(1) var<storage, read> b: array<F64>;
@group(0) @binding(2) var<storage, read> c: array<F64>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<u32>>;
@group(0) @binding(4) var<uniform> params: ProbeParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= params.n) { return; }
  let x = a[i];
  let y = b[i];
  var r = F64Pair(F64_ZERO, F64_ZERO);
  switch (params.op) {
    case 16u: { r.value = f64FromF32(bitcast<f32>(x.x)); }
    case 17u: { r.value = F64(select(0u, 1u, f64Lt(x, y)), select(0u, 1u, f64Eq(x, y))); }
    case 18u: { r.value = F64(bitcast<u32>(f64ToI32(x)), 0u); }
    case 19u: { r.value = f64Key(x); }
    default: { r = f64Eval(params.op, x, y, c[i]); }
  }
  out[i] = vec4(r.value, r.aux);
}
