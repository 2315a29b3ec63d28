/**
 * The layer rule of .dependency-cruiser.cjs: the lab's tree has no import that runs up the
 * layers, and the rule does catch one (a small tree laid out like the lab's, with one upward
 * import planted in it).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module script without type declarations
import { checkLayers } from '../../scripts/check-layers.mjs';

interface Violation {
  from: string;
  to: string;
  rule: string;
}

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A tree of files (path → source) in a fresh temporary folder. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'opd-layers-'));
  made.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const downwardOnly = {
  'workers/contract/run.ts': 'export const OBJECTIVES = ["opd-sampled"];\n',
  'workers/gpu/device.ts': 'import { OBJECTIVES } from "../contract/run";\nexport const device = OBJECTIVES.length;\n',
  'workers/kernels/matmul.ts': 'import { device } from "../gpu/device";\nexport const matmul = device;\n',
  'workers/models/gpt2/graph.ts': 'import { matmul } from "../../kernels/matmul";\nexport const graph = matmul;\n',
  'workers/train/trainer.ts': 'import { graph } from "../models/gpt2/graph";\nexport const trainer = graph;\n',
  'workers/distill/loop.ts': 'import { trainer } from "../train/trainer";\nexport const loop = trainer;\n',
  'workers/engine/lab.ts': 'import { loop } from "../distill/loop";\nimport type { Command } from "../protocol";\nexport const lab = (c: Command) => loop + c.n;\n',
  'workers/protocol.ts': 'import { OBJECTIVES } from "./contract/run";\nexport interface Command { n: number; o: (typeof OBJECTIVES)[number] }\n',
  'app/panel.tsx': 'import type { Command } from "../workers/protocol";\nimport { OBJECTIVES } from "../workers/contract/run";\nexport const panel = (c: Command) => OBJECTIVES[c.n];\n',
};

describe('the layer rule', () => {
  it('finds no upward import in the lab itself', async () => {
    const violations: Violation[] = await checkLayers();
    expect(violations.map((v) => `${v.from} → ${v.to} (${v.rule})`)).toEqual([]);
  });

  it('accepts a tree whose imports all run down the layers', async () => {
    expect(await checkLayers(tree(downwardOnly))).toEqual([]);
  });

  it('fails on an import that runs up the layers, naming both ends and the rule', async () => {
    const dir = tree({
      ...downwardOnly,
      // The trainer reaching up into the run loop.
      'workers/train/trainer.ts': 'import { graph } from "../models/gpt2/graph";\nimport { loop } from "../distill/loop";\nexport const trainer = graph;\nexport const up = () => loop;\n',
    });
    const violations: Violation[] = await checkLayers(dir);
    expect(violations).toContainEqual(expect.objectContaining({ from: 'workers/train/trainer.ts', to: 'workers/distill/loop.ts', rule: 'no-upward-from-sampler-scorer-trainer-self-checks' }));
  });

  it('fails when a kernel imports a model family, or gpu/ imports the protocol', async () => {
    const dir = tree({
      ...downwardOnly,
      'workers/kernels/matmul.ts': 'import { device } from "../gpu/device";\nimport { graph } from "../models/gpt2/graph";\nexport const matmul = device;\nexport const g = () => graph;\n',
      'workers/gpu/device.ts': 'import { OBJECTIVES } from "../contract/run";\nimport type { Command } from "../protocol";\nexport const device = OBJECTIVES.length;\nexport type C = Command;\n',
    });
    const rules = (await checkLayers(dir)).map((v: Violation) => `${v.from} → ${v.to}: ${v.rule}`);
    expect(rules).toContain('workers/kernels/matmul.ts → workers/models/gpt2/graph.ts: no-upward-from-kernels');
    expect(rules).toContain('workers/gpu/device.ts → workers/protocol.ts: no-upward-from-gpu');
  });

  it('fails when two folders of one layer import each other', async () => {
    const dir = tree({
      ...downwardOnly,
      'workers/sampling/sampler.ts': 'import { score } from "../scoring/scorer";\nexport const sample = () => score();\n',
      'workers/scoring/scorer.ts': 'import { sample } from "../sampling/sampler";\nexport const score = (): number => (sample ? 1 : 0);\n',
    });
    const rules = (await checkLayers(dir)).map((v: Violation) => `${v.from} → ${v.to}: ${v.rule}`);
    expect(rules).toContain('workers/sampling/sampler.ts → workers/scoring/scorer.ts: no-circular-between-folders');
  });

  it('fails when the app imports the engine rather than the protocol or the contract', async () => {
    const dir = tree({ ...downwardOnly, 'app/panel.tsx': 'import { lab } from "../workers/engine/lab";\nexport const panel = lab;\n' });
    expect(await checkLayers(dir)).toContainEqual(expect.objectContaining({ from: 'app/panel.tsx', to: 'workers/engine/lab.ts', rule: 'app-imports-only-the-contract' }));
  });
});
