// logits.wgsl: four logits at once, for the divergence kernels that declare the `student` and
// `teacher` logit bindings (row_stats, row_extras, read_floor); compiled between shared.wgsl and
// such a kernel (shared.ts readsLogits).

// The logits at base + k.x, …, base + k.w.
fn loadStudent4(base: u32, k: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(student[base + k.x], student[base + k.y], student[base + k.z], student[base + k.w]);
}

fn loadTeacher4(base: u32, k: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(teacher[base + k.x], teacher[base + k.y], teacher[base + k.z], teacher[base + k.w]);
}
