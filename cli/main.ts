/**
 * The headless CLI on the lab's engine: `npx opd-lab <command> [options]`.
 * Bad arguments or unreadable folders give one line on stderr and a non-zero exit.
 */
import { UsageError, parseOptions, usage, type OptionSpec, type Parsed } from './args';
import { acquireDevice } from '../workers/gpu/device';
import { NODE_GPU_ADVICE, nodeGpu } from '../workers/node/gpu';
import { sampleCommand } from './sample';
import { scoreCommand } from './score';
import { evalCommand, trainCommand } from './train';
import { clusterCommand } from './cluster';
import { cacheCommand } from './cache';
import { runCommand } from './run';

export interface Command {
  summary: string;
  /** A usage line, for a command with words before its options (`opd-lab run show FILE`). */
  usage?: string;
  /** Turns those words into options (`show FILE` → `--file FILE`); a UsageError says what is wrong. */
  positional?(argv: string[]): string[];
  options: Record<string, OptionSpec>;
  run(options: Parsed): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  info: {
    summary: 'show the WebGPU adapter the lab would use in Node, with its limits and features',
    options: { json: { kind: 'flag', help: 'print JSON' } },
    async run(options) {
      const acquired = await acquireDevice(nodeGpu());
      if (!acquired.ok) throw new Error(`${acquired.error.message} ${NODE_GPU_ADVICE}`);
      acquired.device.destroy();
      const a = acquired.summary;
      if (options.json) console.log(JSON.stringify(a, null, 2));
      else {
        console.log(`adapter: ${a.vendor} / ${a.architecture}${a.isFallbackAdapter ? ' (fallback: runs on the CPU)' : ''}`);
        console.log(`features: ${a.features.join(', ') || 'none'}`);
        for (const [k, v] of Object.entries(a.limits)) console.log(`${k}: ${v}`);
      }
    },
  },
  sample: sampleCommand,
  score: scoreCommand,
  train: trainCommand,
  eval: evalCommand,
  cluster: clusterCommand,
  cache: cacheCommand,
  run: runCommand,
};

function help(): string {
  return ['usage: opd-lab <command> [options]', '', 'Commands:', ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`), '', "'opd-lab <command> --help' lists a command's options."].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')})`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage ? `usage: ${command.usage}\n\n${usage(name, command.summary, command.options)}` : usage(name, command.summary, command.options));
    return 0;
  }
  await command.run(parseOptions(command.positional ? command.positional(rest) : rest, command.options, name));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`opd-lab: ${message.split('\n')[0]}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
