/**
 * The divergence kernels share one ChunkParams struct and one layout of fields and flags. WGSL
 * has no include, so each kernel's source is compiled after the layout constants (generated from
 * layout.ts) and shared.wgsl.
 */
import sharedWgsl from './shared.wgsl?raw';
import { layoutWgsl } from './layout';

const prelude = `${layoutWgsl()}\n${sharedWgsl}\n`;

export function withSharedWgsl(kernel: string): string {
  return prelude + kernel;
}
