import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { join, resolve } from 'node:path';
import { launch, openLab, screenshot, type PageRecord } from './browser';
import { modelsIndex } from '../../scripts/vite-built-in-models';
import type { BuiltInModel } from '../../app/lab/builtInModels';

/**
 * The built-in models, as `npm start` serves them: whatever folders models/ holds (or
 * OPD_LAB_MODELS_DIR, as vite.config.ts reads it), built into the app by the global setup.
 */
const MODELS_DIR = resolve(process.env.OPD_LAB_MODELS_DIR || join(import.meta.dirname, '..', '..', 'models'));
const onDisk = modelsIndex(MODELS_DIR).models;
// The main pair (the self-distillation pair has a preset and is tested in the Distill panel's tests).
const student = onDisk.find((m) => m.role === 'student' && !m.preset);
const teacher = onDisk.find((m) => m.role === 'teacher' && !m.preset);
const summary = (m: BuiltInModel) => new RegExp(`^gpt2, ${m.parameters!.toLocaleString('en-US')} parameters, vocabulary 20, trainable$`);

describe('the built-in models: served by the lab, listed in the Models panel, loaded with one click', () => {
  let browser: Browser;
  let lab: PageRecord;
  const baseUrl = inject('baseUrl');
  beforeAll(async () => {
    browser = await launch('swiftshader');
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('models/ holds a built-in student and teacher with their recipes (run `npm run build:models` if not)', () => {
    expect(student, `no folder with recipe.json role 'student' in ${MODELS_DIR}`).toBeDefined();
    expect(teacher, `no folder with recipe.json role 'teacher' in ${MODELS_DIR}`).toBeDefined();
    for (const m of [student!, teacher!]) {
      expect(m.parameters).toBeGreaterThan(0);
      expect(m.heldOutAccuracy).not.toBeNull();
      expect(m.files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx', 'model.safetensors', 'recipe.json', 'training-log.jsonl']));
    }
  });

  it('the build serves every folder and index.json from the lab’s own origin, with the isolation headers', async () => {
    const context = await browser.newContext();
    const request = context.request;
    const index = await request.get(`${baseUrl}models/index.json`);
    expect(index.status()).toBe(200);
    expect((await index.json()).models).toEqual(onDisk);
    for (const m of onDisk) {
      for (const file of m.files) {
        const r = await request.head(`${baseUrl}models/${m.name}/${file}`);
        expect(r.status(), `${m.name}/${file}`).toBe(200);
        expect(r.headers()['cross-origin-resource-policy']).toBe('same-origin');
        expect(r.headers()['cross-origin-embedder-policy']).toBe('require-corp');
      }
    }
    // A file that is not there is a 404 (not the app's index.html), so model.load sees it missing.
    expect((await request.head(`${baseUrl}models/${student!.name}/no-such-file.json`)).status()).toBe(404);
    const log = await request.get(`${baseUrl}models/${teacher!.name}/training-log.jsonl`);
    expect(log.headers()['content-type']).toMatch(/^text\/plain/);
    await context.close();
  });

  it('Inspect: the URL fields start at the built-in folders, and one click loads both', async () => {
    lab = await openLab(browser, `${baseUrl}#panel=inspect`);
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    expect(await page.getByLabel('Student model folder URL').inputValue()).toBe(`${baseUrl}models/${student!.name}/`);
    expect(await page.getByLabel('Teacher model folder URL').inputValue()).toBe(`${baseUrl}models/${teacher!.name}/`);
    await page.getByRole('button', { name: 'Load the built-in student and teacher' }).click();
    await expect.poll(() => page.getByTestId('teacher-summary').textContent().catch(() => null), { timeout: 60_000 }).toMatch(summary(teacher!));
    expect(await page.getByTestId('student-summary').textContent()).toMatch(summary(student!));
    expect(await page.getByTestId('student-source').textContent()).toBe(`from ${baseUrl}models/${student!.name}/`);
    expect(lab.errors).toEqual([]);
    await page.context().close();
  });

  it('Models: lists each built-in model with its parameters, accuracy and files; “Use as” loads it for Distill', async () => {
    lab = await openLab(browser, `${baseUrl}#panel=models`);
    const { page } = lab;
    await expect.poll(() => page.textContent('[data-testid=status-state]'), { timeout: 120_000 }).toBe('Ready');
    await expect.poll(() => page.getByTestId('builtin-model').count()).toBe(onDisk.length);
    for (const m of onDisk) {
      const card = page.locator(`[data-testid=builtin-model][data-name="${m.name}"]`);
      expect(await card.getByRole('heading').textContent()).toBe(`${m.name} ${m.role}`);
      expect(await card.getByTestId('builtin-parameters').textContent()).toBe(`${m.modelType}, ${m.parameters!.toLocaleString('en-US')} parameters`);
      expect(await card.getByTestId('builtin-accuracy').textContent()).toBe(
        `${(100 * m.heldOutAccuracy!).toFixed(1)}% of ${m.heldOutPrompts!.toLocaleString('en-US')} held-out prompts (greedy)`,
      );
      expect(await card.getByTestId('builtin-build-time').textContent()).toMatch(/^\d+ (s|min \d+ s|h \d+ min) \((the whole recipe took |the fine-tune that made the pair\)|its own step of the recipe\))/);
      if (m.keptTask) expect(await card.getByTestId('builtin-kept-accuracy').textContent()).toBe(`${(100 * m.keptAccuracy!).toFixed(1)}% held-out`);
      // The links open the folder's own recipe and log.
      for (const file of ['recipe.json', 'training-log.jsonl']) {
        const href = await card.getByRole('link', { name: file }).getAttribute('href');
        expect(href).toBe(`${baseUrl}models/${m.name}/${file}`);
        expect((await page.request.get(href!)).status()).toBe(200);
      }
    }
    expect(await page.getByText('npm run build:models').first().isVisible()).toBe(true);
    expect(await page.getByRole('heading', { name: 'Your own model folder' }).isVisible()).toBe(true);

    const studentCard = page.locator(`[data-testid=builtin-model][data-name="${student!.name}"]`);
    const teacherCard = page.locator(`[data-testid=builtin-model][data-name="${teacher!.name}"]`);
    await studentCard.getByRole('button', { name: 'Use as student' }).click();
    await expect.poll(() => studentCard.getByTestId('builtin-loaded-as').textContent().catch(() => null), { timeout: 60_000 }).toBe('✓ loaded as the student');
    await teacherCard.getByRole('button', { name: 'Use as teacher' }).click();
    await expect.poll(() => teacherCard.getByTestId('builtin-loaded-as').textContent().catch(() => null), { timeout: 60_000 }).toBe('✓ loaded as the teacher');
    await screenshot(page, 'models-panel');

    await page.getByRole('button', { name: 'Distill', exact: true }).click();
    expect(await page.getByTestId('student-summary').textContent()).toMatch(summary(student!));
    expect(await page.getByTestId('teacher-summary').textContent()).toMatch(summary(teacher!));
    expect(await page.getByLabel('Student model folder URL').inputValue()).toBe(`${baseUrl}models/${student!.name}/`);
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(false);
    // No network: every request the page and its worker made went to the lab's own origin.
    const origin = new URL(baseUrl).origin;
    expect(lab.requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u))).toEqual([]);
    expect(lab.errors).toEqual([]);
    await screenshot(page, 'models-in-distill');
  });
});
