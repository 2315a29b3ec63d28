/**
 * The training kernels' shared WGSL: grid.wgsl (where an invocation sits in its dispatch) and
 * prelude.wgsl (workgroup tree reductions and group sums). WGSL has no include, so a kernel that
 * uses them is compiled as prelude + kernel.
 */
import gridWgsl from './grid.wgsl?raw';
import preludeWgsl from './prelude.wgsl?raw';

/** grid.wgsl + the reductions of prelude.wgsl + `kernel` (which declares REDUCE_SLOTS). */
export function withTrainPrelude(kernel: string): string {
  return `${gridWgsl}\n${preludeWgsl}\n${kernel}`;
}

/** grid.wgsl + `kernel`, for kernels without workgroup reductions. */
export function withGridPrelude(kernel: string): string {
  return `${gridWgsl}\n${kernel}`;
}
