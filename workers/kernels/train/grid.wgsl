// grid.wgsl: where an invocation of a training kernel sits in its dispatch, prepended to a
// kernel's source by prelude.ts (WGSL has no include).
//
// Kernels over many elements or rows take `Grid` as their entry point's input. A dispatch wider
// than the adapter's 65535 workgroups per dimension is laid out as a 2-D grid, row by row:
// workgroup (x, y) is number y · nwg.x + x.

struct Grid {
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
}

// The workgroup's own builtins alone: what a kernel that returns early on its workgroup's number
// takes (WGSL's uniformity analysis sees the number as uniform only when no per-invocation value
// such as lid travels with it, and a barrier may follow only a uniform return).
struct GridWorkgroup {
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
}

// The workgroup's number in the 2-D grid: wid.y · nwg.x + wid.x.
fn flatWorkgroup(workgroup: GridWorkgroup) -> u32 {
  return workgroup.wid.y * workgroup.nwg.x + workgroup.wid.x;
}

// The invocation's number in the 2-D grid of `size`-wide workgroups: flatWorkgroup · size + lid.
fn flatInvocation(grid: Grid, size: u32) -> u32 {
  return flatWorkgroup(GridWorkgroup(grid.wid, grid.nwg)) * size + grid.lid;
}

// A grid-stride loop over a 1-D grid of `size`-wide workgroups: invocation lid of workgroup w
// takes elements w · size + lid, stepping by nwg.x · size.
fn strideFirst(grid: Grid, size: u32) -> u32 {
  return grid.wid.x * size + grid.lid;
}

fn strideStep(grid: Grid, size: u32) -> u32 {
  return grid.nwg.x * size;
}
