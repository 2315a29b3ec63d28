#!/usr/bin/env node
// `npx opd-lab …`: runs the CLI (cli/main.ts) on the same engine as the page, in Node, with
// TypeScript through tsx and WGSL `?raw` imports through the lab's module hooks.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const tsx = pathToFileURL(require.resolve('tsx')).href;
const hooks = pathToFileURL(join(root, 'workers/node/register.mjs')).href;
// --liftoff-only: see workers/node/node-flags.md (onnxruntime-web's wasm in Node).
const result = spawnSync(process.execPath, ['--liftoff-only', '--import', tsx, '--import', hooks, join(root, 'cli/main.ts'), ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
