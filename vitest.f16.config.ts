import { configDefaults, defineConfig } from 'vitest/config';
import unit from './vitest.unit.config';
import { lavapipeIcd } from './scripts/vulkan-drivers.mjs';

/**
 * The f16 tests (test/unit/*.f16.test.ts): the unit tests' settings, on an adapter with
 * `shader-f16`. SwiftShader has none, so Dawn is pointed at Mesa's lavapipe
 * (scripts/ensure-system-deps.sh installs it), unless VK_ICD_FILENAMES already names a driver.
 * Without lavapipe the tests run on SwiftShader and fail, saying what to install: never skipped.
 */
const icd = process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES ? undefined : lavapipeIcd();

export default defineConfig({
  test: {
    ...unit.test,
    include: ['test/unit/**/*.f16.test.ts'],
    exclude: configDefaults.exclude,
    env: icd ? { VK_ICD_FILENAMES: icd } : {},
  },
});
