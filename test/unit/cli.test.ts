import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the opd-lab CLI', () => {
  it('info --json prints the WebGPU adapter it runs on', () => {
    const r = cli('info', '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.vendor).toBe('google');
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
  });

  it('answers bad arguments with one line on stderr and exit code 2', () => {
    for (const args of [['frob'], ['info', '--bogus'], ['info', 'stray']]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^opd-lab: /);
    }
    expect(cli().code).toBe(2);
    expect(cli('--help').stdout).toContain('usage: opd-lab <command>');
  });
});
