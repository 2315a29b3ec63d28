// add: elementwise sum of two f32 vectors of n elements (the residual connection, and adding
// one gradient into another).
//
// Entry points (each binds only its own variables, in order from 0):
//   main:    out[i] = a[i] + b[i].  0 a (read), 1 b (read), 2 out (read_write), 3 Params
//            (uniform). out may not alias a or b (WebGPU forbids a writable binding aliasing
//            another); use `inplace` for a += b.
//   inplace: a[i] += b[i].  0 a (read_write), 1 b (read), 2 Params (uniform).
// Dispatch: ceil(n / WG) workgroups laid out as (x, y) with x ≤ 65535,
//   i = (wid.y · nwg.x + wid.x)·WG + lid; workgroup size WG.

override WG: u32 = 256;

struct Params {
  n: u32,
}

// main
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// inplace
@group(0) @binding(0) var<storage, read_write> acc: array<f32>;
@group(0) @binding(1) var<storage, read> addend: array<f32>;
@group(0) @binding(2) var<uniform> iparams: Params;

@compute @workgroup_size(WG)
fn main(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i < params.n) {
    out[i] = a[i] + b[i];
  }
}

@compute @workgroup_size(WG)
fn inplace(grid: Grid) {
  let i = flatInvocation(grid, WG);
  if (i < iparams.n) {
    acc[i] += addend[i];
  }
}
