#!/usr/bin/env node
// `npm test`: the whole suite. System packages first (Chromium, the Vulkan loader), then the
// layer rule (no import runs up the layers), the type check, the unit tests (Node, real WebGPU
// through Dawn) and the end-to-end tests (Debian's Chromium driven by playwright-core). Ends
// with one line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

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

for (const [name, config] of [
  ['unit', 'vitest.unit.config.ts'],
  ['e2e', 'vitest.e2e.config.ts'],
]) {
  console.log(`\n== ${name} tests ==`);
  const report = join(out, `${name}.json`);
  rmSync(report, { force: true });
  const status = run('npx', ['vitest', 'run', '--config', config, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`]);
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    // A file that fails to load has no tests in it: count it as one failure, never as nothing.
    const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
    const failed = r.numFailedTests + brokenFiles + (status !== 0 && r.numFailedTests + brokenFiles === 0 ? 1 : 0);
    steps.push({ name, passed: r.numPassedTests, failed, total: r.numTotalTests });
    if (r.numTotalTests === 0) steps.push({ name: `${name} (no tests ran)`, passed: 0, failed: 1 });
  } else {
    steps.push({ name, passed: 0, failed: 1 });
  }
}

console.log('\n== summary ==');
for (const s of steps) console.log(`${s.name}: ${s.passed} passed, ${s.failed} failed`);
const passed = steps.reduce((a, s) => a + s.passed, 0);
const failed = steps.reduce((a, s) => a + s.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
