/**
 * The fuzz runner: cases [0, cases) of a seed, run in worker threads (worker.mjs) so that a case
 * that hangs is caught by a time limit and one that allocates without bound by the thread's heap
 * limit, neither taking the process down. A worker reports each case before and after running
 * it; when a case passes its time limit, or the worker dies, that case is recorded (hang,
 * crash) and a fresh worker goes on from the next case.
 */
import { Worker } from 'node:worker_threads';
import { KINDS, type Kind } from './kinds';
import type { Outcome } from './targets';

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Per-case time limit (ms). */
  timeoutMs?: number;
  /** Worker threads running side by side. */
  workers?: number;
  /** Heap limit of a worker (MB): a case that allocates past it is a crash ("out of memory"). */
  heapMb?: number;
  /** Called now and then with the number of finished cases. */
  onProgress?: (done: number) => void;
}

export interface KindCounts {
  cases: number;
  accepted: number;
  refused: number;
  untyped: number;
  hang: number;
  crash: number;
  /** onnx cases: onnx-proto's verdicts ("decoded", "threw RangeError", …) by count. */
  decode: Record<string, number>;
  /** Typed refusals by error class, e.g. { ModelFolderError: 812, SafetensorsError: 300 }. */
  refusedBy: Record<string, number>;
}

export interface Failure {
  index: number;
  kind: Kind;
  case: string;
  result: 'untyped' | 'hang' | 'crash';
  detail: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  byKind: Record<Kind, KindCounts>;
  failures: Failure[];
  /** The slowest case (ms) and which. */
  slowest: { index: number; ms: number; case: string };
  wallSeconds: number;
}

const WORKER = new URL('./worker.mjs', import.meta.url);

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const { cases, seed } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const heapMb = options.heapMb ?? 1024;
  const workerCount = Math.max(1, Math.min(options.workers ?? 1, cases));
  const t0 = performance.now();
  const byKind = Object.fromEntries(
    KINDS.map((k) => [k, { cases: 0, accepted: 0, refused: 0, untyped: 0, hang: 0, crash: 0, decode: {}, refusedBy: {} } satisfies KindCounts]),
  ) as Record<Kind, KindCounts>;
  const failures: Failure[] = [];
  const slowest = { index: -1, ms: 0, case: '' };
  let done = 0;
  const kindOf = (index: number) => KINDS[index % KINDS.length];

  const record = (index: number, label: string, outcome: Outcome | { result: 'hang' | 'crash'; detail: string }) => {
    const counts = byKind[kindOf(index)];
    counts.cases++;
    done++;
    if (done % 250 === 0) options.onProgress?.(done);
    switch (outcome.result) {
      case 'accepted':
        counts.accepted++;
        break;
      case 'refused': {
        counts.refused++;
        const cls = outcome.error.split(':')[0];
        counts.refusedBy[cls] = (counts.refusedBy[cls] ?? 0) + 1;
        break;
      }
      case 'untyped':
        counts.untyped++;
        failures.push({ index, kind: kindOf(index), case: label, result: 'untyped', detail: `${outcome.where}: ${outcome.error}` });
        break;
      default:
        counts[outcome.result]++;
        failures.push({ index, kind: kindOf(index), case: label, result: outcome.result, detail: outcome.detail });
    }
    if ('decode' in outcome && outcome.decode) counts.decode[outcome.decode] = (counts.decode[outcome.decode] ?? 0) + 1;
  };

  /** Runs cases [from, to) in one worker after another, replacing a worker that hangs or dies. */
  const runRange = (from: number, to: number): Promise<void> =>
    new Promise((resolveRange) => {
      let next = from;
      const spawn = () => {
        if (next >= to) return resolveRange();
        const worker = new Worker(WORKER, { workerData: { seed, from: next, to }, resourceLimits: { maxOldGenerationSizeMb: heapMb }, stdout: true, stderr: true });
        let current: { index: number; label: string } | null = null;
        let timer: NodeJS.Timeout | undefined;
        let over = false;
        let started = false;
        const finish = (outcome: { result: 'hang' | 'crash'; detail: string } | null) => {
          if (over) return;
          over = true;
          clearTimeout(timer);
          if (current && outcome) {
            record(current.index, current.label, outcome);
            next = current.index + 1;
          } else if (outcome) {
            // Died between cases, or before its first one (a broken import: stop this range).
            failures.push({ index: next, kind: kindOf(next), case: started ? `between cases, before #${next}` : 'worker start', result: 'crash', detail: outcome.detail });
            if (!started) next = to;
          }
          void worker.terminate().finally(spawn);
        };
        worker.on('message', (m: { type: string; index: number; kind: Kind; seedFolder: string; file: string; bytes: number; outcome: Outcome; ms: number }) => {
          if (m.type === 'start') {
            started = true;
            current = { index: m.index, label: `#${m.index} ${m.kind} (${m.seedFolder}/${m.file} mutated, ${m.bytes} bytes)` };
            clearTimeout(timer);
            timer = setTimeout(() => finish({ result: 'hang', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
          } else if (m.type === 'done') {
            clearTimeout(timer);
            // The next case is generated before its 'start': its mutation is under the limit too.
            timer = setTimeout(() => {
              current = { index: m.index + 1, label: `#${m.index + 1} ${kindOf(m.index + 1)} (while generating the case)` };
              finish({ result: 'hang', detail: `the case was not generated within ${timeoutMs} ms` });
            }, timeoutMs);
            record(m.index, current!.label, m.outcome);
            if (m.ms > slowest.ms) Object.assign(slowest, { index: m.index, ms: m.ms, case: current!.label });
            next = m.index + 1;
            current = null;
          } else if (m.type === 'generate-failed') {
            clearTimeout(timer);
            record(m.index, `#${m.index} ${kindOf(m.index)} (the fuzzer could not generate it)`, { result: 'crash', detail: `fuzzer bug: ${(m as unknown as { error: string }).error}` });
            next = m.index + 1;
          } else if (m.type === 'finished') {
            clearTimeout(timer);
            over = true;
            void worker.terminate().finally(resolveRange);
          }
        });
        worker.on('error', (e) => {
          const oom = (e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
          finish({ result: 'crash', detail: oom ? `out of memory (worker heap limit ${heapMb} MB)` : `uncaught ${e.name}: ${e.message}`.slice(0, 300) });
        });
        worker.on('exit', (code) => {
          if (!over) finish({ result: 'crash', detail: `worker exited with code ${code}` });
        });
      };
      spawn();
    });

  // Contiguous slices, one per worker (every slice holds all four kinds in turn).
  const slices: Promise<void>[] = [];
  const per = Math.ceil(cases / workerCount);
  for (let w = 0; w < workerCount; w++) slices.push(runRange(w * per, Math.min(cases, (w + 1) * per)));
  await Promise.all(slices);
  failures.sort((a, b) => a.index - b.index);
  return { seed, cases, byKind, failures, slowest, wallSeconds: (performance.now() - t0) / 1000 };
}

/** The report as text: counts per kind, then each failure. */
export function formatReport(r: FuzzReport): string {
  const lines = [`fuzz: ${r.cases} cases, seed ${r.seed}, ${r.wallSeconds.toFixed(1)} s; slowest case ${r.slowest.ms.toFixed(0)} ms (${r.slowest.case})`];
  lines.push('kind         cases  accepted  refused(typed)  untyped  hang  crash');
  for (const kind of KINDS) {
    const c = r.byKind[kind];
    lines.push(`${kind.padEnd(12)} ${String(c.cases).padStart(5)}  ${String(c.accepted).padStart(8)}  ${String(c.refused).padStart(14)}  ${String(c.untyped).padStart(7)}  ${String(c.hang).padStart(4)}  ${String(c.crash).padStart(5)}`);
  }
  for (const kind of KINDS) {
    const c = r.byKind[kind];
    const by = Object.entries(c.refusedBy).map(([k, v]) => `${k} ${v}`).join(', ');
    if (by) lines.push(`  ${kind} refused by: ${by}`);
    const dec = Object.entries(c.decode).map(([k, v]) => `${k} ${v}`).join(', ');
    if (dec) lines.push(`  ${kind}: onnx-proto ModelProto.decode: ${dec}`);
  }
  lines.push(r.failures.length ? `${r.failures.length} failures:` : 'no failures: every case was accepted or refused with a typed error, none hung or crashed');
  for (const f of r.failures.slice(0, 50)) lines.push(`  ${f.result} ${f.case}: ${f.detail}`);
  if (r.failures.length > 50) lines.push(`  … and ${r.failures.length - 50} more`);
  return lines.join('\n');
}
