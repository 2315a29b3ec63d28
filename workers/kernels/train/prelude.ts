/**
 * The training kernels' shared WGSL (prelude.wgsl: workgroup tree reductions and group sums).
 * WGSL has no include, so a kernel that uses them is compiled as prelude + kernel.
 */
import preludeWgsl from './prelude.wgsl?raw';

export function withTrainPrelude(kernel: string): string {
  return `${preludeWgsl}\n${kernel}`;
}
