/**
 * The divergence kernels share one ChunkParams struct and one layout of fields and flags. WGSL
 * has no include, so each kernel's source is compiled after the layout constants (generated from
 * layout.ts) and shared.wgsl; a kernel that declares the logit bindings also after logits.wgsl
 * (readsLogits).
 */
import sharedWgsl from './shared.wgsl?raw';
import logitsWgsl from './logits.wgsl?raw';
import { layoutWgsl } from './layout';

const prelude = `${layoutWgsl()}\n${sharedWgsl}\n`;

export function withSharedWgsl(kernel: string): string {
  return prelude + kernel;
}

/** logits.wgsl + `kernel`, for a kernel that declares the `student` and `teacher` bindings. */
export function readsLogits(kernel: string): string {
  return `${logitsWgsl}\n${kernel}`;
}
