import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { join } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';

/**
 * Llama-family folders written by transformers (test/fixtures/hf: model.safetensors, no ONNX), as
 * a person brings them: picked on their computer in the Inspect panel, shown with their
 * architecture in the Models panel, sampled from and scored in Inspect.
 */
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hf');

describe('Llama-family folders in the lab', () => {
  let browser: Browser;
  let lab: PageRecord;
  beforeAll(async () => {
    browser = await launch('swiftshader');
    lab = await openLab(browser, `${inject('baseUrl')}#panel=inspect`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('picked as student (llama-tied) and teacher (llama-teacher): the Models panel shows their architecture', async () => {
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await page.getByLabel('Student model folder on this computer').setInputFiles(join(FIXTURES, 'llama-tied'));
    await expect.poll(() => page.getByTestId('student-summary').textContent().catch(() => null), { timeout: 60_000 }).toMatch(/^llama, 106,816 parameters, vocabulary 512, trainable$/);
    await page.getByLabel('Teacher model folder on this computer').setInputFiles(join(FIXTURES, 'llama-teacher'));
    await expect.poll(() => page.getByTestId('teacher-summary').textContent().catch(() => null), { timeout: 60_000 }).toMatch(/^llama, 393,888 parameters/);

    await page.getByRole('button', { name: 'Models', exact: true }).click();
    const cell = (role: string, row: string) => page.getByTestId(`loaded-${role}-${row}`).textContent();
    expect(await cell('student', 'architecture')).toBe('Llama (model_type llama)');
    expect(await cell('student', 'layers')).toBe('2');
    expect(await cell('student', 'hidden-size')).toBe('64');
    expect(await cell('student', 'heads')).toBe('4 query heads sharing 2 key/value heads');
    expect(await cell('student', 'head-dimension')).toBe('16');
    expect(await cell('student', 'positions')).toBe('rotary (θ 10,000)');
    expect(await cell('student', 'output-head')).toBe('tied to the embedding');
    expect(await cell('student', 'parameters')).toBe('106,816');
    expect(await cell('teacher', 'heads')).toBe('6 query heads sharing 2 key/value heads');
    expect(await cell('teacher', 'positions')).toBe('rotary (llama3, θ 500,000, factor 4, from 64 positions)');
    expect(await cell('teacher', 'output-head')).toBe('its own (untied)');
    expect(await cell('teacher', 'parameters')).toBe('393,888');
    await screenshot(page, 'llama-models-panel');
    expect(lab.errors).toEqual([]);
  });

  it('samples from the Llama student and scores a completion against the Llama teacher in Inspect', async () => {
    const { page } = lab;
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    await page.getByLabel('Prompt', { exact: true }).fill('347+589=');
    await page.getByRole('button', { name: 'Sample from the student' }).click();
    await expect.poll(() => page.getByTestId('sample').count(), { timeout: 120_000 }).toBe(4);
    await page.getByRole('button', { name: 'Score this' }).first().waitFor({ timeout: 120_000 });
    for (const item of await page.getByTestId('sample').allTextContents()) expect(item).toMatch(/\d+ tokens, (ended|hit max tokens)/);

    await page.getByLabel('Completion to score').fill(' The cat sat on');
    await page.getByRole('button', { name: 'Score', exact: true }).click();
    await page.getByTestId('heatmap').waitFor({ timeout: 120_000 });
    expect((await page.getByTestId('heatmap-token').allTextContents()).join('').replace(/␣/g, ' ')).toBe(' The cat sat on');
    const summary = (await page.getByTestId('score-summary').textContent()) ?? '';
    expect(Number(/Mean reverse KL ([\d.]+)/.exec(summary)?.[1])).toBeGreaterThan(0);
    await screenshot(page, 'llama-inspect');
    expect(lab.errors).toEqual([]);
  });

  it('the dtype picker: an onnx-community folder picked as q4 runs model_q4.onnx; fp16 on SwiftShader is refused in place, both models kept', async () => {
    const { page } = lab;
    const dtypes = join(import.meta.dirname, '..', 'fixtures', 'onnx-layouts', 'dtypes');
    expect(await page.getByTestId('teacher-runs').textContent()).toBe('runs the decoder the lab builds from model.safetensors');
    const teacherSummary = await page.getByTestId('teacher-summary').textContent();
    expect(await page.getByLabel('Student ONNX dtype').inputValue()).toBe('');
    await page.getByLabel('Student ONNX dtype').selectOption('q4');
    await page.getByLabel('Student model folder on this computer').setInputFiles(dtypes);
    await expect.poll(() => page.getByTestId('student-runs').textContent().catch(() => null), { timeout: 60_000 }).toBe('runs onnx/model_q4.onnx (dtype q4)');
    // The llama config's parameters, no model.safetensors: not trainable.
    expect(await page.getByTestId('student-summary').textContent()).toBe('llama, 106,816 parameters, vocabulary 512');
    expect(await page.getByTestId('student-source').textContent()).toBe("from picked folder 'dtypes'");

    // SwiftShader has no shader-f16: the folder's fp16 graph is refused with the engine's sentence, under the teacher's loader.
    await page.getByLabel('Teacher ONNX dtype').selectOption('fp16');
    await page.getByLabel('Teacher model folder on this computer').setInputFiles(dtypes);
    await expect.poll(() => page.getByTestId('teacher-error').textContent().catch(() => null), { timeout: 60_000 }).toBe(
      "picked folder 'dtypes'/onnx/model_fp16.onnx computes in float16, and this adapter has no shader-f16: load it with dtype fp32 or q4 or quantized.",
    );
    // Both models as they were: the teacher it had, the q4 student.
    expect(await page.getByTestId('teacher-summary').textContent()).toBe(teacherSummary);
    expect(await page.getByTestId('teacher-runs').textContent()).toBe('runs the decoder the lab builds from model.safetensors');
    expect(await page.getByTestId('student-runs').textContent()).toBe('runs onnx/model_q4.onnx (dtype q4)');
    expect(await page.getByTestId('student-error').count()).toBe(0);
    await screenshot(page, 'dtype-picker');
    expect(lab.errors).toEqual([]);
  });
});
