/**
 * For the tests of DistillRun on the shipped models (models/, built by `npm run build:models`):
 * the addition pair as a run's parts, and the check that a run resumed from a checkpoint
 * continues exactly as the run it was taken from.
 */
import { expect } from 'vitest';
import { join } from 'node:path';
import { testDevice } from './gpu';
import { configureOrt } from '../../workers/ort/runtime';
import { readModelFolder } from '../../workers/models/folder';
import { dirSource } from '../../workers/node/fs-source';
import { builtInTask } from '../../workers/tasks/registry';
import type { DistillRun } from '../../workers/distill/run';

export const SHIPPED = join(import.meta.dirname, '..', '..', 'models');

/** A shipped model folder by name (with its weights when it must train). */
export const shippedFolder = async (name: string, requireWeights = false) => readModelFolder(await dirSource(join(SHIPPED, name)), { requireWeights });

/** The device, the shipped addition student (trainable) and teacher, the addition task and its answer length. */
export async function shippedAdditionPair() {
  const device = await testDevice();
  configureOrt({ numThreads: 1 });
  const student = await shippedFolder('addition-student', true);
  const teacher = await shippedFolder('addition-teacher');
  const { task, maxTokens } = builtInTask('addition', student.rawConfig);
  return { device, student, teacher, task, maxTokens };
}

/** The next step of `resumed` equals that of `original`: its loss and FLOPs, then every weight bit for bit. */
export async function expectSameNextStep(original: DistillRun, resumed: DistillRun): Promise<void> {
  const ma = await original.trainStep();
  const mc = await resumed.trainStep();
  expect(mc.loss).toBe(ma.loss);
  expect(mc.flops).toEqual(ma.flops);
  const wa = await original.trainer.readWeights();
  const wc = await resumed.trainer.readWeights();
  for (const [name, w] of wa) expect(Buffer.from(wc.get(name)!.buffer).equals(Buffer.from(w.buffer)), name).toBe(true);
}
