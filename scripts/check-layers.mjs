#!/usr/bin/env node
/**
 * The layer rule (.dependency-cruiser.cjs), checked with dependency-cruiser: every import that
 * runs up the layers, as one line each. `node scripts/check-layers.mjs` checks the lab's own
 * tree and exits 1 on any violation; `checkLayers(dir)` checks another tree laid out the same way
 * (the unit test uses it to show that an upward import fails).
 */
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The violations in `dir` (folders app/, cli/, workers/), as { from, to, rule, comment }. */
export async function checkLayers(dir = root) {
  const options = await extractDepcruiseOptions(join(root, '.dependency-cruiser.cjs'));
  const tsConfigFile = join(dir, 'tsconfig.json');
  const tsConfig = existsSync(tsConfigFile) ? extractTSConfig(tsConfigFile) : undefined;
  const roots = ['workers', 'app', 'cli'].filter((d) => existsSync(join(dir, d)));
  const previous = process.cwd();
  process.chdir(dir);
  try {
    const result = await cruise(roots, { ...options, validate: true, tsConfig: tsConfig ? { fileName: tsConfigFile } : undefined, baseDir: dir }, {}, tsConfig ? { tsConfig } : {});
    const rulesByName = new Map(options.ruleSet.forbidden.map((r) => [r.name, r]));
    return result.output.summary.violations.map((v) => ({ from: v.from, to: v.to, rule: v.rule.name, comment: rulesByName.get(v.rule.name)?.comment ?? v.rule.name }));
  } finally {
    process.chdir(previous);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const violations = await checkLayers();
  for (const v of violations) console.log(`${v.from} imports ${v.to}: ${v.comment} [${v.rule}]`);
  console.log(violations.length === 0 ? 'layers: no import runs up the layers' : `layers: ${violations.length} import(s) run up the layers (see .dependency-cruiser.cjs)`);
  process.exit(violations.length === 0 ? 0 : 1);
}
