/**
 * The environment for a test's `opd-lab` child process: Mesa's lavapipe when it is installed
 * and the caller chose no Vulkan driver (then theirs), else the CLI's own default, SwiftShader.
 * Lavapipe gives the same numbers and runs these CLI processes about 6× faster on this
 * project's 2 cores (test/unit/README.md); `npm test` installs it for the f16 pass.
 */
import { lavapipeIcd } from '../../scripts/vulkan-drivers.mjs';

export function cliDriverEnv(): NodeJS.ProcessEnv {
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return process.env;
  const icd = lavapipeIcd();
  return icd ? { ...process.env, VK_ICD_FILENAMES: icd } : process.env;
}

/** stderr without the lines Dawn itself prints on lavapipe ("Warning: maxDynamic… artificially reduced …"), which are not the CLI's. */
export const withoutDawnWarnings = (stderr: string): string => stderr.replace(/^Warning: max\w+ artificially reduced [^\n]*\n/gm, '');
