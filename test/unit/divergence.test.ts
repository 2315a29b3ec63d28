import { describe, expect, it } from 'vitest';
import { testDevice } from './gpu';
import { createStorageBuffer, readBuffer } from '../../workers/gpu/buffers';
import { computeDivergences, DivergenceInputError, encodeDivergences, readDivergences, type DivergenceRequest } from '../../workers/kernels/divergence/divergence';
import { BAD_FLAGS, FIELDS, FLAG, layoutWgsl, MAX_TOP_K, OUTPUT_FIELDS } from '../../workers/kernels/divergence/layout';
import { CPU_DIVERGENCE_TUNING, GPU_DIVERGENCE_TUNING } from '../../workers/gpu/tuning';
import { planDivergences, toBlocks, type PlanLimits } from '../../workers/kernels/divergence/plan';
import { referenceDivergences } from '../../workers/kernels/divergence/reference';
import { IDENTICAL_TOLERANCE, runDivergenceSelfCheck, TOLERANCES } from '../../workers/kernels/divergence/selfcheck';
import rowStatsWgsl from '../../workers/kernels/divergence/row_stats.wgsl?raw';
import rowFinalizeWgsl from '../../workers/kernels/divergence/row_finalize.wgsl?raw';
import rowExtrasWgsl from '../../workers/kernels/divergence/row_extras.wgsl?raw';
import topKFinalizeWgsl from '../../workers/kernels/divergence/topk_finalize.wgsl?raw';
import jsdFinalizeWgsl from '../../workers/kernels/divergence/jsd_finalize.wgsl?raw';
import sharedWgsl from '../../workers/kernels/divergence/shared.wgsl?raw';

/** A small problem on the GPU: [T, V] logits with teacher = student + noise. */
function smallRequest(device: GPUDevice, T: number, V: number, edit?: (s: Float32Array, q: Float32Array, tokens: Uint32Array) => void) {
  const student = new Float32Array(T * V);
  const teacher = new Float32Array(T * V);
  for (let i = 0; i < T * V; i++) {
    student[i] = Math.sin(i * 0.7) * 3;
    teacher[i] = student[i] + Math.cos(i * 1.3);
  }
  const tokens = new Uint32Array(T).map((_, t) => (t * 37) % V);
  edit?.(student, teacher, tokens);
  const request: DivergenceRequest = {
    student: createStorageBuffer(device, student, 'student'),
    teacher: createStorageBuffer(device, teacher, 'teacher'),
    studentVocab: V,
    teacherVocab: V,
    positions: T,
    tokens: createStorageBuffer(device, tokens, 'tokens'),
  };
  return { request, student, teacher, tokens };
}

/** Runs `fn`, counting the GPU calls it makes (buffers, encoders, pipelines, queue writes). */
function gpuCallsDuring(device: GPUDevice, fn: () => void): number {
  let calls = 0;
  const targets: [object, string][] = [
    [device, 'createBuffer'],
    [device, 'createCommandEncoder'],
    [device, 'createComputePipeline'],
    [device, 'createBindGroup'],
    [device.queue, 'writeBuffer'],
    [device.queue, 'submit'],
  ];
  const record = targets as unknown as [Record<string, (...args: unknown[]) => unknown>, string][];
  for (const [target, name] of record) {
    const original = target[name];
    target[name] = function (this: unknown, ...args: unknown[]) {
      calls++;
      return original.apply(this, args);
    };
  }
  try {
    fn();
  } finally {
    for (const [target, name] of record) delete target[name];
  }
  return calls;
}

describe('divergence kernels against the float64 reference (real WebGPU adapter)', () => {
  // The device's own tuning, then the GPU one (256-wide workgroups, 64-wide top-k merges, many
  // slices per row) run on this adapter, so both code paths are checked wherever the tests run.
  for (const [seed, tuning] of [
    [1, undefined],
    [2, undefined],
    [3, GPU_DIVERGENCE_TUNING],
  ] as const) {
    it(`property check, seed ${seed}${tuning ? ' with the GPU tuning' : ''}: every output within its stated tolerance`, async () => {
      const device = await testDevice();
      const report = await runDivergenceSelfCheck(device, seed, { randomCases: 8, tuning });
      const failures = report.cases.flatMap((c) => [
        ...c.checks.filter((k) => !k.passed).map((k) => `${c.name}: ${k.output} max error ${k.maxAbsError} (atol ${k.atol}, rtol ${k.rtol}, crtol ${k.crtol}; worst error/tolerance ${k.worstErrorOverTolerance})`),
        ...c.expectations.filter((e) => !e.passed).map((e) => `${c.name}: expected ${e.what}`),
        ...(c.flagMismatches ? [`${c.name}: ${c.flagMismatches} positions flagged differently from the reference`] : []),
      ]);
      expect(failures).toEqual([]);
      expect(report.passed).toBe(true);
      // The awkward shapes are all there, and each compared real numbers.
      const names = report.cases.map((c) => c.name).join('\n');
      for (const must of ['V = 1 ', 'V = 50,257', 'V = 151,936', '±1e4', 'one-hot teacher', 'identical', 'masked vocabulary', 'T = 1,', 'forced chunking', 'tied teacher logits']) expect(names).toContain(must);
      for (const c of report.cases) for (const k of c.checks) if (k.output === 'reverseKL' && c.vocab > 1 && !c.name.includes('one-hot')) expect(k.compared).toBeGreaterThan(0);
      expect(report.cases.find((c) => c.name.includes('forced chunking'))!.chunks).toBeGreaterThan(2);
    });
  }

  it('identical student and teacher: every KL, the sampled KL and the JSD are 0 within 1e-6', async () => {
    const device = await testDevice();
    const T = 4;
    const V = 9001;
    const { request } = smallRequest(device, T, V, (s, q) => q.set(s));
    const got = await computeDivergences(device, { ...request, beta: 0.4, temperature: 0.8 });
    for (const f of ['sampledKL', 'reverseKL', 'forwardKL', 'jsd'] as const) {
      for (let t = 0; t < T; t++) expect(Math.abs(got.fields[f][t])).toBeLessThanOrEqual(IDENTICAL_TOLERANCE);
    }
    expect(got.valid).toBe(T);
  });

  it('NaN and ±Inf logits: the affected positions are listed with the reason, their outputs are 0, never NaN', async () => {
    const device = await testDevice();
    const T = 6;
    const V = 1000;
    const { request } = smallRequest(device, T, V, (s, q, tokens) => {
      s[1 * V + 10] = NaN;
      q[2 * V + 999] = Infinity;
      q[4 * V + 3] = -Infinity; // one-sided -inf: an exact +Infinity reverse KL, not an error
      tokens[4] = 5;
    });
    const got = await computeDivergences(device, request);
    expect(got.problems.map((p) => p.position)).toEqual([1, 2, 4]);
    expect(got.problems[0].reasons.join()).toMatch(/student logit is NaN/);
    expect(got.problems[1].reasons.join()).toMatch(/teacher logit is \+Infinity/);
    expect(got.problems[2].bad).toBe(false);
    expect(got.fields.reverseKL[4]).toBe(Infinity);
    for (const f of OUTPUT_FIELDS) {
      expect(got.fields[f][1]).toBe(0);
      expect(got.fields[f][2]).toBe(0);
      for (let t = 0; t < T; t++) expect(Number.isNaN(got.fields[f][t])).toBe(false);
    }
    expect(got.valid).toBe(4);
  });

  it('-inf entries are absent tokens: the same numbers as deleting them from the vocabulary', async () => {
    const device = await testDevice();
    const T = 3;
    const V = 500;
    const keep = (v: number) => v % 7 !== 3;
    const full = smallRequest(device, T, V, (s, q) => {
      for (let i = 0; i < T * V; i++) if (!keep(i % V)) s[i] = q[i] = -Infinity;
    });
    const kept = [...Array(V).keys()].filter(keep);
    const shrink = (x: Float32Array) => Float32Array.from({ length: T * kept.length }, (_, i) => x[Math.floor(i / kept.length) * V + kept[i % kept.length]]);
    const tokensFull = new Uint32Array(T).map((_, t) => kept[(t * 11) % kept.length]);
    const tokensKept = tokensFull.map((v) => kept.indexOf(v));
    const withInf = await computeDivergences(device, { ...full.request, tokens: createStorageBuffer(device, tokensFull, 'tokens'), beta: 0.5 });
    const without = await computeDivergences(device, {
      student: createStorageBuffer(device, shrink(full.student), 's'),
      teacher: createStorageBuffer(device, shrink(full.teacher), 't'),
      studentVocab: kept.length,
      teacherVocab: kept.length,
      positions: T,
      tokens: createStorageBuffer(device, tokensKept, 'tokens'),
      beta: 0.5,
    });
    // Same math on the same present values; the f32 sums run in a different order (tolerance of a KL).
    for (const f of OUTPUT_FIELDS) for (let t = 0; t < T; t++) expect(Math.abs(withInf.fields[f][t] - without.fields[f][t])).toBeLessThanOrEqual(TOLERANCES.reverseKL.atol + 1e-5 * Math.abs(without.fields[f][t]));
    expect(withInf.problems).toEqual([]);
  });

  it('the trainer path: results stay on the GPU, the per-position reverse KL is a bindable field', async () => {
    const device = await testDevice();
    const T = 5;
    const V = 2048;
    const { request, student, teacher, tokens } = smallRequest(device, T, V);
    const gradient = createStorageBuffer(device, T * V * 4, 'gradient');
    const encoder = device.createCommandEncoder();
    const buffers = encodeDivergences(device, { ...request, gradient }, { encoder });
    device.queue.submit([encoder.finish()]);
    const binding = buffers.field('reverseKL');
    expect(binding.offset! % 256).toBe(0);
    const kl = new Float32Array(await readBuffer(device, binding.buffer, T * 4, binding.offset));
    const ref = referenceDivergences({ student, teacher, tokens, positions: T, vocab: V });
    for (let t = 0; t < T; t++) expect(Math.abs(kl[t] - ref.fields.reverseKL[t])).toBeLessThanOrEqual(TOLERANCES.reverseKL.atol + TOLERANCES.reverseKL.rtol * ref.fields.reverseKL[t]);
    // Reusing the buffers for the next step gives the same answer.
    const again = encodeDivergences(device, request, { reuse: buffers });
    expect(again.fields).toBe(buffers.fields);
    const read = await readDivergences(device, again);
    expect(Array.from(read.fields.reverseKL)).toEqual(Array.from(kl));
    again.destroy();
  });

  it('temperature scales the logits before the softmax, and the gradient by 1/τ', async () => {
    const device = await testDevice();
    const T = 2;
    const V = 333;
    const { request, student, teacher, tokens } = smallRequest(device, T, V);
    const gradient = createStorageBuffer(device, T * V * 4, 'gradient');
    const got = await computeDivergences(device, { ...request, temperature: 2.5, gradient });
    const g = new Float32Array(await readBuffer(device, gradient, T * V * 4));
    const scaled = (x: Float32Array) => x.map((z) => z / 2.5);
    const ref = referenceDivergences({ student: scaled(student), teacher: scaled(teacher), tokens, positions: T, vocab: V, gradient: true });
    for (let t = 0; t < T; t++) expect(Math.abs(got.fields.reverseKL[t] - ref.fields.reverseKL[t])).toBeLessThanOrEqual(1e-5);
    // ∂KL/∂z = (1/τ)·∂KL/∂(z/τ).
    for (let i = 0; i < T * V; i += 17) expect(Math.abs(g[i] - ref.gradient![i] / 2.5)).toBeLessThanOrEqual(2e-6);
  });
});

describe('bad requests fail before any GPU work, with a sentence that says what is wrong', () => {
  const cases: [string, (r: DivergenceRequest, device: GPUDevice) => DivergenceRequest, DivergenceInputError['code'], RegExp][] = [
    ['different vocabularies', (r) => ({ ...r, teacherVocab: 32000 }), 'vocab-mismatch', /student's vocabulary has 100 tokens and the teacher's 32000/],
    ['logits buffer too small', (r) => ({ ...r, studentVocab: 101, teacherVocab: 101 }), 'buffer-too-small', /needs 1212 bytes/],
    ['tokens buffer too small', (r, d) => ({ ...r, tokens: d.createBuffer({ size: 8, usage: GPUBufferUsage.STORAGE }) }), 'buffer-too-small', /tokens \(u32 per position\) needs 12 bytes but its buffer holds 8/],
    ['temperature 0', (r) => ({ ...r, temperature: 0 }), 'bad-parameter', /temperature 0/],
    ['β above 1', (r) => ({ ...r, beta: 1.5 }), 'bad-parameter', /β must be in \[0, 1\]/],
    [`topK above ${MAX_TOP_K}`, (r) => ({ ...r, topK: MAX_TOP_K + 1 }), 'bad-parameter', /topK/],
    ['row blocks that do not add up', (r) => ({ ...r, student: [{ buffer: r.student as GPUBuffer, rows: 2 }] }), 'bad-shape', /hold 2 rows in all, but there are 3 positions/],
    ['gradient written over the student logits', (r) => ({ ...r, gradient: r.student }), 'aliased-output', /cannot be written into the buffer holding the student logits/],
  ];
  it('(control: a good request does make GPU calls, so the counter below can see them)', async () => {
    const device = await testDevice();
    const { request } = smallRequest(device, 3, 100);
    let buffers: ReturnType<typeof encodeDivergences> | undefined;
    expect(gpuCallsDuring(device, () => (buffers = encodeDivergences(device, request)))).toBeGreaterThan(5);
    buffers!.destroy();
  });
  for (const [name, edit, code, message] of cases) {
    it(name, async () => {
      const device = await testDevice();
      const { request } = smallRequest(device, 3, 100);
      const bad = edit(request, device);
      let thrown: unknown;
      const calls = gpuCallsDuring(device, () => {
        try {
          encodeDivergences(device, bad);
        } catch (e) {
          thrown = e;
        }
      });
      expect(thrown).toBeInstanceOf(DivergenceInputError);
      expect((thrown as DivergenceInputError).code).toBe(code);
      expect((thrown as Error).message).toMatch(message);
      expect(calls).toBe(0);
    });
  }
});

describe('planning against the adapter limits', () => {
  const limits: PlanLimits = {
    maxStorageBufferBindingSize: 1 << 20,
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 128,
    maxComputeWorkgroupSizeX: 128,
    maxComputeWorkgroupsPerDimension: 65535,
    minStorageBufferOffsetAlignment: 256,
  };
  const fakeBuffer = (size: number) => ({ size }) as GPUBuffer;

  it('keeps every binding within maxStorageBufferBindingSize, aligned, and workgroups within the limits', () => {
    const T = 100;
    const V = 50257;
    const big = fakeBuffer(T * V * 4);
    const plan = planDivergences(limits, GPU_DIVERGENCE_TUNING, { positions: T, vocab: V, topK: 20 }, { student: toBlocks(big, T, 's'), teacher: toBlocks(big, T, 't') });
    expect(plan.streamWorkgroupSize).toBe(128);
    // 64 invocations × 20 entries × 8 bytes = 10 KiB ≤ 16 KiB; 128 would need 20 KiB.
    expect(plan.topKWorkgroupSize).toBe(64);
    let rows = 0;
    for (const c of plan.chunks) {
      expect(c.firstRow).toBe(rows);
      rows += c.rows;
      for (const b of [c.student, c.teacher]) {
        expect(b.binding.offset % 256).toBe(0);
        expect(b.binding.size).toBeLessThanOrEqual(limits.maxStorageBufferBindingSize);
        expect(b.binding.offset + b.binding.size).toBeLessThanOrEqual(big.size);
        expect(b.binding.offset + b.base * 4).toBe(c.firstRow * V * 4);
      }
      expect(c.splits * c.sliceLength).toBeGreaterThanOrEqual(V);
      expect((c.splits - 1) * c.sliceLength).toBeLessThan(V);
    }
    expect(rows).toBe(T);
    // Each chunk is as long as one binding allows (given where it starts), except the last.
    for (const c of plan.chunks.slice(0, -1)) expect((c.rows + 1) * V * 4 + ((c.firstRow * V * 4) % 256)).toBeGreaterThan(limits.maxStorageBufferBindingSize);
  });

  it('cuts a lone row into slices so that one position still fills the device, and none straddles a row block', () => {
    const V = 262144;
    const one = planDivergences(limits, GPU_DIVERGENCE_TUNING, { positions: 1, vocab: V, topK: 0 }, { student: toBlocks(fakeBuffer(V * 4), 1, 's'), teacher: toBlocks(fakeBuffer(V * 4), 1, 't') });
    expect(one.chunks[0].splits).toBe(Math.ceil(V / one.chunks[0].sliceLength));
    expect(one.chunks[0].splits).toBeGreaterThanOrEqual(32);
    const blocks = [
      { buffer: fakeBuffer(3 * 1000 * 4), rows: 3 },
      { buffer: fakeBuffer(5 * 1000 * 4 + 64), rows: 5, byteOffset: 64 },
    ];
    const plan = planDivergences(limits, CPU_DIVERGENCE_TUNING, { positions: 8, vocab: 1000, topK: 0 }, { student: toBlocks(blocks, 8, 's'), teacher: toBlocks(fakeBuffer(8 * 4000), 8, 't') });
    expect(plan.chunks.map((c) => [c.firstRow, c.rows])).toEqual([
      [0, 3],
      [3, 5],
    ]);
    expect(plan.chunks[1].student.binding.buffer).toBe(blocks[1].buffer);
    expect(plan.chunks[1].student.base).toBe(16);
  });

  it('refuses a row that cannot fit one binding', () => {
    expect(() =>
      planDivergences({ ...limits, maxStorageBufferBindingSize: 4096 }, GPU_DIVERGENCE_TUNING, { positions: 1, vocab: 5000, topK: 0 }, {
        student: toBlocks(fakeBuffer(20000), 1, 's'),
        teacher: toBlocks(fakeBuffer(20000), 1, 't'),
      }),
    ).toThrow(/does not fit the adapter's storage binding limit/);
  });
});

describe('the kernels read one layout (layout.ts → WGSL constants, shared.wgsl)', () => {
  const constant = (source: string, name: string) => {
    const m = new RegExp(`const ${name}: u32 = (0x[0-9a-f]+|\\d+)u;`).exec(source);
    return m ? Number(m[1]) : undefined;
  };
  const prelude = layoutWgsl();
  it('generates every field index and flag bit from layout.ts', () => {
    // Written out here, not derived: a renamed or reordered field must fail this test.
    const expected: Record<string, number> = {
      F_STUDENT_LOGPROB: 0, F_TEACHER_LOGPROB: 1, F_SAMPLED_KL: 2, F_REVERSE_KL: 3, F_FORWARD_KL: 4, F_JSD: 5,
      F_STUDENT_ENTROPY: 6, F_TEACHER_ENTROPY: 7, F_STUDENT_MAX: 8, F_STUDENT_LOG2_SUM: 9, F_TEACHER_MAX: 10,
      F_TEACHER_LOG2_SUM: 11, FIELDS: 12,
    };
    for (const [name, value] of Object.entries(expected)) expect(constant(prelude, name), name).toBe(value);
    expect(FIELDS).toHaveLength(12);
    for (const [name, bit] of Object.entries(FLAG)) expect(constant(prelude, name), name).toBe(bit);
    expect(constant(prelude, 'BAD_MASK')).toBe(BAD_FLAGS);
  });
  it('no kernel redeclares a shared constant or ChunkParams', () => {
    const shared = [...prelude.matchAll(/^const (\w+)/gm), ...sharedWgsl.matchAll(/^const (\w+)/gm)].map((m) => m[1]);
    for (const source of [rowStatsWgsl, rowFinalizeWgsl, rowExtrasWgsl, topKFinalizeWgsl, jsdFinalizeWgsl]) {
      for (const name of shared) expect(source).not.toMatch(new RegExp(`^const ${name}\\b`, 'm'));
      expect(source).not.toContain('struct ChunkParams');
    }
    expect(sharedWgsl).toContain('struct ChunkParams');
  });
});
