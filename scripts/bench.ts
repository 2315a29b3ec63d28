/**
 * The project's benchmark command: `npm run bench -- <name> [--out FILE] [options]`.
 * Each benchmark lives in scripts/bench/<name>.ts and exports `run(args): Promise<object>`;
 * the JSON it returns is printed and, with --out, written to FILE.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The benchmarks, each in scripts/bench/<name>.ts. */
const BENCHES = ['kl', 'sampling', 'training', 'distill', 'llama', 'first-error', 'soak'];

interface Bench {
  run(args: Record<string, string>): Promise<object>;
}

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}': options are --name value`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true';
    else {
      out[a.slice(2)] = next;
      i++;
    }
  }
  return out;
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || !BENCHES.includes(name)) {
    console.error(`usage: npm run bench -- <${BENCHES.join('|')}> [--out FILE]`);
    process.exit(2);
  }
  const args = parseArgs(rest);
  const bench = (await import(`./bench/${name}.ts`)) as Bench;
  const result = await bench.run(args);
  const json = JSON.stringify(result, null, 2);
  console.log(json);
  if (args.out) {
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, json + '\n');
    console.error(`wrote ${args.out}`);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
