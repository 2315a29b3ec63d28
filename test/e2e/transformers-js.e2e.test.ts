import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openComparePages, type ComparePages } from '../../scripts/bench/compare-browser';
import { readModelFolder, writeModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { writeFolder } from '../../workers/node/fs-folder';
import { Gpt2Reference } from '../reference/gpt2';

/**
 * float32 forward of a 2-layer, 16-wide model against the float64 reference: errors of a few
 * 1e-6 are float32 rounding through LayerNorm and softmax; 1e-4 leaves room for other kernels.
 */
const LOGIT_TOLERANCE = 1e-4;

describe('a folder exported by the lab loads in transformers.js', () => {
  let pages: ComparePages;
  let exportedUrl: string;
  let reference: Gpt2Reference;
  beforeAll(async () => {
    // Import the served student folder, export it again with the lab's writer, serve the export.
    const imported = await readModelFolder(await dirSource(inject('studentDir')));
    if (!imported.gpt2 || !imported.weights) throw new Error('the test student should be a trainable GPT-2 folder');
    const dir = mkdtempSync(join(tmpdir(), 'opd-export-'));
    await writeFolder(dir, writeModelFolder(imported.gpt2, imported.weights, imported.tokenizerFiles));
    reference = new Gpt2Reference(imported.gpt2, imported.weights);
    pages = await openComparePages();
    exportedUrl = pages.serveFolder('exported', dir);
  });
  afterAll(async () => {
    await pages?.close();
  });

  it("gives the reference model's logits, and greedy generate agrees token for token with the lab's sampler", async () => {
    const tjs = await pages.open('tjs', exportedUrl);
    expect(tjs.adapter).toMatch(/swiftshader/i);
    const ids = [13, 16, 11, 2, 3, 12, 4, 14];
    const { vocab, logits } = await tjs.forward(ids);
    const expected = reference.forward(ids);
    expect(vocab).toBe(expected[0].length);
    expect(logits.length).toBe(ids.length * vocab);
    let worst = 0;
    for (let t = 0; t < ids.length; t++) for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(logits[t * vocab + v] - expected[t][v]));
    expect(worst).toBeLessThan(LOGIT_TOLERANCE);

    const theirs = await tjs.generate(ids, 2, 12);
    const oursPage = await pages.open('ours', exportedUrl);
    const ours = await oursPage.generate(ids, 2, 12);
    expect(theirs.tokens).toBe(24);
    expect(theirs.sequences).toEqual(ours.sequences);
    // Greedy decoding by the float64 reference gives the same tokens.
    const greedy: number[] = [];
    const { cache, logits: prefill } = reference.prefill(ids);
    let next = argmax(prefill[prefill.length - 1]);
    for (let i = 0; i < 12; i++) {
      greedy.push(next);
      if (i < 11) next = argmax(reference.step(cache, next));
    }
    expect(theirs.sequences[0]).toEqual(greedy);
    expect(tjs.errors).toEqual([]);
    expect(oursPage.errors).toEqual([]);
  });
});

function argmax(xs: Float64Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}
