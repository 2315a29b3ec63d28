/**
 * The training kernels' shared WGSL: grid.wgsl (where an invocation sits in its dispatch) and
 * prelude.wgsl (workgroup tree reductions and group sums), and for the per-row loss kernels
 * loss_rows.wgsl (their exit on a row of weight 0). WGSL has no include, so a kernel that uses
 * them is compiled as prelude + kernel.
 */
import gridWgsl from './grid.wgsl?raw';
import preludeWgsl from './prelude.wgsl?raw';
import lossRowsWgsl from './loss_rows.wgsl?raw';

/** grid.wgsl + the reductions of prelude.wgsl + `kernel` (which declares REDUCE_SLOTS). */
export function withTrainPrelude(kernel: string): string {
  return `${gridWgsl}\n${preludeWgsl}\n${kernel}`;
}

/** grid.wgsl + `kernel`, for kernels without workgroup reductions. */
export function withGridPrelude(kernel: string): string {
  return `${gridWgsl}\n${kernel}`;
}

/** The training prelude + loss_rows.wgsl + `kernel`: the per-row loss kernels (loss_grad, distill_loss). */
export function withLossPrelude(kernel: string): string {
  return withTrainPrelude(`${lossRowsWgsl}\n${kernel}`);
}
