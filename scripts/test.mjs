#!/usr/bin/env node
// `npm test`: the whole suite. System packages first (Chromium, the Vulkan loader, Mesa's
// lavapipe), then the layer rule (no import runs up the layers), the type check, the unit tests
// (Node, real WebGPU through Dawn on SwiftShader), the f16 tests (the same, on lavapipe, whose
// adapter has shader-f16) and the end-to-end tests (Debian's Chromium driven by playwright-core).
// Ends with one line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { LAVAPIPE_ADVICE, lavapipeIcd } from './vulkan-drivers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'test-output');
mkdirSync(out, { recursive: true });

function run(cmd, args, extraEnv = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  return r.status ?? 1;
}

const steps = [];

const deps = run('bash', ['scripts/ensure-system-deps.sh']);
if (deps !== 0) {
  console.log('\nThe system packages the tests need are missing (see above).');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

console.log('\n== layer rule (dependency-cruiser, .dependency-cruiser.cjs) ==');
const layers = run('node', ['scripts/check-layers.mjs']);
steps.push({ name: 'layer rule', passed: layers === 0 ? 1 : 0, failed: layers === 0 ? 0 : 1 });

console.log('\n== type check (tsc --noEmit) ==');
const tsc = run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
steps.push({ name: 'type check', passed: tsc === 0 ? 1 : 0, failed: tsc === 0 ? 0 : 1 });

/** One vitest run, counted into `steps`; the seconds it took. */
function vitest(name, config, extraEnv = {}) {
  const report = join(out, `${name.replace(/\W+/g, '-')}.json`);
  rmSync(report, { force: true });
  const started = Date.now();
  const status = run('npx', ['vitest', 'run', '--config', config, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], extraEnv);
  const seconds = (Date.now() - started) / 1000;
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    // A file that fails to load has no tests in it: count it as one failure, never as nothing.
    const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
    const failed = r.numFailedTests + brokenFiles + (status !== 0 && r.numFailedTests + brokenFiles === 0 ? 1 : 0);
    steps.push({ name, passed: r.numPassedTests, failed, total: r.numTotalTests, seconds });
    if (r.numTotalTests === 0) steps.push({ name: `${name} (no tests ran)`, passed: 0, failed: 1 });
  } else {
    steps.push({ name, passed: 0, failed: 1, seconds });
  }
  return steps.at(-1).failed === 0;
}

console.log('\n== unit tests ==');
vitest('unit', 'vitest.unit.config.ts');

// The f16 tests need an adapter with shader-f16, which SwiftShader lacks: Mesa's lavapipe
// (installed by ensure-system-deps.sh), unless VK_ICD_FILENAMES names another driver. Without
// one the pass fails with what to install; it never passes by running nothing.
console.log('\n== f16 tests (an adapter with shader-f16: Mesa\'s lavapipe) ==');
const chosen = process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES;
const icd = chosen ? undefined : lavapipeIcd();
if (!chosen && !icd) {
  const sentence = `The f16 tests need Mesa's lavapipe (no lvp_icd*.json in the Vulkan ICD folders): ${LAVAPIPE_ADVICE}.`;
  console.log(sentence);
  steps.push({ name: 'f16 (lavapipe missing)', passed: 0, failed: 1, note: sentence });
} else {
  console.log(`Vulkan driver: ${chosen ?? icd}`);
  if (!vitest('f16', 'vitest.f16.config.ts', icd ? { VK_ICD_FILENAMES: icd } : {})) {
    steps.at(-1).note = `if the f16 tests failed for want of shader-f16 or an adapter: ${LAVAPIPE_ADVICE}.`;
  }
}

console.log('\n== e2e tests ==');
vitest('e2e', 'vitest.e2e.config.ts');

console.log('\n== summary ==');
for (const s of steps) {
  const time = s.seconds !== undefined ? ` (${Math.round(s.seconds)} s)` : '';
  console.log(`${s.name}: ${s.passed} passed, ${s.failed} failed${time}${s.note ? ` — ${s.note}` : ''}`);
}
const passed = steps.reduce((a, s) => a + s.passed, 0);
const failed = steps.reduce((a, s) => a + s.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
