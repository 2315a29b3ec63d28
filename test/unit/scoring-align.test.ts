/**
 * The teacher's logits moved into the student's packed layout (workers/scoring/align.ts): the
 * GPU copy against the plain TypeScript reference, bit for bit, on the real adapter, over seeded
 * random shapes with awkward vocabularies (1, odd, 50257) and the teacher's prompts longer,
 * shorter and as long as the student's; rows that are not copied are zero. Bad requests are one
 * sentence, before any GPU work.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { createStorageBuffer, readFloat32 } from '../../workers/gpu/buffers';
import { Rng } from '../../workers/random/rng';
import { AlignError, alignTeacherLogits, alignTeacherLogitsReference, type AlignedSequence } from '../../workers/scoring/align';

interface Case {
  vocab: number;
  /** Per sequence: student and teacher prompt lengths, completion length. */
  shapes: { ps: number; pt: number; l: number }[];
}

function randomCase(r: () => number, vocab: number, batch: number): Case {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  return { vocab, shapes: Array.from({ length: batch }, () => ({ ps: int(1, 9), pt: int(1, 9), l: int(0, 6) })) };
}

async function check(device: GPUDevice, c: Case, r: () => number): Promise<void> {
  const studentWidth = Math.max(...c.shapes.map((s) => s.ps + s.l));
  const teacherWidth = Math.max(...c.shapes.map((s) => s.pt + s.l));
  const sequences: AlignedSequence[] = c.shapes.map((s) => ({ teacherStart: s.pt - 1, studentStart: s.ps - 1, rows: s.l }));
  const teacher = Float32Array.from({ length: c.shapes.length * teacherWidth * c.vocab }, () => (r() - 0.5) * 40);
  // Values a copy must keep bit for bit: −inf (a masked token), a huge logit, −0.
  teacher[0] = -Infinity;
  if (teacher.length > 2) [teacher[1], teacher[2]] = [3e38, -0];
  const request = { teacherWidth, studentWidth, vocab: c.vocab, sequences };
  const expected = alignTeacherLogitsReference(teacher, request);
  const source = createStorageBuffer(device, teacher, 'test teacher logits');
  const out = await alignTeacherLogits(device, { ...request, teacher: source });
  try {
    const got = await readFloat32(device, out, expected.length);
    const what = `vocab ${c.vocab}, shapes ${JSON.stringify(c.shapes)}`;
    const gotBits = new Uint32Array(got.buffer);
    const wantBits = new Uint32Array(expected.buffer);
    const firstWrong = wantBits.findIndex((v, i) => gotBits[i] !== v);
    expect(firstWrong, `${what}: first entry where the GPU's copy differs`).toBe(-1);
    // The reference itself: copied rows hold the teacher's row, every other row is zero (bit patterns, so −0 counts).
    const bits = new Uint32Array(expected.buffer);
    const teacherBits = new Uint32Array(teacher.buffer);
    c.shapes.forEach((s, b) => {
      for (let t = 0; t < studentWidth; t++) {
        const i = t - (s.ps - 1);
        const copied = i >= 0 && i < s.l;
        const from = (b * teacherWidth + s.pt - 1 + i) * c.vocab;
        const to = (b * studentWidth + t) * c.vocab;
        let wrong = -1;
        for (let v = 0; v < c.vocab && wrong < 0; v++) if (bits[to + v] !== (copied ? teacherBits[from + v] : 0)) wrong = v;
        expect(wrong, `${what}: sequence ${b} row ${t} (${copied ? `the teacher's row ${s.pt - 1 + i}` : 'zero'}), first wrong entry`).toBe(-1);
      }
    });
  } finally {
    out.destroy();
    source.destroy();
  }
}

describe("the teacher's logits in the student's layout", () => {
  it('equal the plain TypeScript copy on the adapter, bit for bit, over random shapes', async () => {
    const device = await testDevice();
    const seeded = new Rng(13);
    const r = () => seeded.next();
    // Teacher prompts longer, shorter and as long as the student's; an empty completion; vocabularies 1, odd, 512, 50257.
    const fixed: Case[] = [
      { vocab: 7, shapes: [{ ps: 5, pt: 9, l: 3 }, { ps: 9, pt: 2, l: 4 }, { ps: 3, pt: 3, l: 0 }] },
      { vocab: 1, shapes: [{ ps: 1, pt: 4, l: 5 }] },
      { vocab: 50257, shapes: [{ ps: 2, pt: 4, l: 2 }, { ps: 4, pt: 1, l: 1 }] },
    ];
    const random = [3, 13, 255, 512, 1001].map((v, i) => randomCase(r, v, 1 + (i % 4)));
    for (const c of [...fixed, ...random]) await check(device, c, r);
  });

  it('refuses rows that run past a sequence, or a buffer too small, with a sentence', async () => {
    const device = await testDevice();
    const source = createStorageBuffer(device, 2 * 4 * 5 * 4, 'test teacher logits');
    try {
      const base = { teacher: source, teacherWidth: 4, studentWidth: 6, vocab: 5 };
      await expect(alignTeacherLogits(device, { ...base, sequences: [{ teacherStart: 1, studentStart: 2, rows: 3 }, { teacherStart: 2, studentStart: 0, rows: 3 }] })).rejects.toThrow(
        new AlignError("sequence 1: 3 rows from the teacher's row 2 (width 4) to the student's row 0 (width 6) run past a sequence's end"),
      );
      await expect(alignTeacherLogits(device, { ...base, sequences: [0, 1, 2].map(() => ({ teacherStart: 0, studentStart: 0, rows: 1 })) })).rejects.toThrow(
        /^the teacher's logits hold 160 bytes, fewer than the 240 of \[3, 4, 5\] f32$/,
      );
    } finally {
      source.destroy();
    }
  });
});
