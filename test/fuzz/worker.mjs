// A fuzz worker thread: TypeScript through tsx and the `?raw` hooks (the loaders import the
// families, which import WGSL), then cases [from, to) of a seed, one message before each case
// and one after, so the runner (run.ts) knows which case a hang or a crash belongs to.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('../../workers/node/raw-import-hooks.mjs', import.meta.url);
const { makeCase, runCase } = await import('./targets.ts');

const { seed, from, to } = workerData;
for (let index = from; index < to; index++) {
  let c;
  try {
    c = makeCase(seed, index);
  } catch (e) {
    // A bug of the fuzzer itself, not of a loader: reported as such, and the run goes on.
    parentPort.postMessage({ type: 'generate-failed', index, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    continue;
  }
  parentPort.postMessage({ type: 'start', index, kind: c.kind, seedFolder: c.seedFolder, file: c.file, bytes: c.bytes.length });
  const t0 = performance.now();
  const outcome = await runCase(c);
  parentPort.postMessage({ type: 'done', index, outcome, ms: performance.now() - t0 });
}
parentPort.postMessage({ type: 'finished' });
