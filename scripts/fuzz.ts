/**
 * `npm run fuzz -- --cases 10000 --seed 1`: mutated config.json, tokenizer.json, safetensors
 * headers and ONNX protobufs through the lab's loaders (test/fuzz/README.md), each case in a
 * worker thread under a time limit. Prints the counts per input kind (accepted, refused with a
 * typed error, untyped errors, hangs, crashes) and every failure; exits 1 when there is one.
 *
 * Options: --cases N (10000), --seed S (1), --timeout-ms T (per case, 10000), --workers W (1),
 * --heap-mb M (a worker's heap limit, 1024), --json FILE (the full report as JSON).
 */
import { writeFileSync } from 'node:fs';
import { formatReport, runFuzz } from '../test/fuzz/run';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a whole number ≥ 0, got '${process.argv[i + 1]}'.`);
    process.exit(2);
  }
  return value;
}

const cases = option('cases', 10_000);
const seed = option('seed', 1);
const jsonAt = process.argv.indexOf('--json');
console.log(`Fuzzing the loaders: ${cases} cases, seed ${seed}…`);
const report = await runFuzz({
  cases,
  seed,
  timeoutMs: option('timeout-ms', 10_000),
  workers: option('workers', 1),
  heapMb: option('heap-mb', 1024),
  onProgress: (done) => {
    if (done % 1000 === 0) console.log(`  ${done} / ${cases}`);
  },
});
console.log(formatReport(report));
if (jsonAt >= 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify(report, null, 2) + '\n');
process.exit(report.failures.length ? 1 : 0);
