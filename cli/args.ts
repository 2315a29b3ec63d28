/**
 * Command-line arguments: `--name value`, `--flag`, checked against each command's declared
 * options, with a one-line error for anything unknown, missing or malformed.
 */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type OptionKind = 'string' | 'int' | 'number' | 'flag';

export interface OptionSpec {
  kind: OptionKind;
  required?: boolean;
  default?: string | number | boolean;
  /** Inclusive bounds for numbers. */
  min?: number;
  max?: number;
  /** Why a value cannot be, as one sentence (null when it can); replaces the bounds and the whole-number rule. */
  check?: (value: string | number) => string | null;
  help: string;
  /** A string option that may be given more than once: its values are joined with commas. */
  repeatable?: boolean;
}

export type Parsed = Record<string, string | number | boolean | undefined>;

const GIVEN = new WeakMap<Parsed, Set<string>>();

/** Whether the option was on the command line (not filled in from its default). */
export const wasGiven = (parsed: Parsed, name: string): boolean => GIVEN.get(parsed)?.has(name) ?? false;

export function parseOptions(argv: string[], specs: Record<string, OptionSpec>, command: string): Parsed {
  const out: Parsed = {};
  GIVEN.set(out, new Set(argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2))));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${arg}' (options look like --name value)`);
    const name = arg.slice(2);
    const spec = specs[name];
    if (!spec) throw new UsageError(`${command}: unknown option --${name} (see 'opd-lab ${command} --help')`);
    if (spec.kind === 'flag') {
      out[name] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new UsageError(`${command}: --${name} needs a value`);
    if (spec.kind === 'string') out[name] = spec.repeatable && out[name] !== undefined ? `${String(out[name])},${value}` : value;
    else if (spec.check) {
      const n = Number(value);
      if (value.trim() === '' || Number.isNaN(n)) throw new UsageError(`${command}: --${name} must be a number, got '${value}'`);
      out[name] = n;
    } else {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n))) {
        throw new UsageError(`${command}: --${name} must be ${spec.kind === 'int' ? 'a whole number' : 'a number'}, got '${value}'`);
      }
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UsageError(`${command}: --${name} must be between ${spec.min ?? '-∞'} and ${spec.max ?? '∞'}, got ${n}`);
      }
      out[name] = n;
    }
    const problem = spec.check?.(out[name] as string | number);
    if (problem) throw new UsageError(`${command}: ${problem}`);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (out[name] === undefined) {
      if (spec.required) throw new UsageError(`${command}: --${name} is required (${spec.help})`);
      out[name] = spec.default;
    }
  }
  return out;
}

export function usage(command: string, summary: string, specs: Record<string, OptionSpec>): string {
  const lines = [`opd-lab ${command}: ${summary}`, '', 'Options:'];
  for (const [name, spec] of Object.entries(specs)) {
    const value = spec.kind === 'flag' ? '' : ` <${spec.kind === 'string' ? 'text' : spec.kind}>`;
    const extra = spec.required ? ' (required)' : spec.default !== undefined ? ` (default ${spec.default})` : '';
    lines.push(`  --${name}${value}`.padEnd(28) + spec.help + extra);
  }
  return lines.join('\n');
}
