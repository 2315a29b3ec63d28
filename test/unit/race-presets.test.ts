import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RACE_OBJECTIVES, RACE_PRESETS } from '../../app/lab/racePresets';
import { setupProblem } from '../../workers/contract/knobs';

const ROOT = join(import.meta.dirname, '..', '..');

describe("the Compare panel's race presets", () => {
  it("the benchmark's race is the distill benchmark's: its start, task, batch, held-out prompts, seed and each objective's chosen learning rate (docs/distill.json)", () => {
    const result = JSON.parse(readFileSync(join(ROOT, 'docs', 'distill.json'), 'utf8'));
    const preset = RACE_PRESETS.benchmark;
    const settings = result.protocol.settings;
    expect(preset.setup.task).toBe(result.task);
    expect([preset.setup.batchPrompts, preset.setup.groupSize, preset.setup.evalPrompts]).toEqual([settings.batchPrompts, settings.groupSize, settings.evalPrompts]);
    expect(preset.setup.seed).toBe(0);
    for (const o of RACE_OBJECTIVES) expect(preset.lr[o], o).toBe(result.perObjective[o].chosenLr);
    // Its student is the benchmark's phase-0 student, shipped: the same weights as the run's start.
    const folder = join(ROOT, 'models', preset.pair.student);
    expect(existsSync(join(folder, 'model.safetensors'))).toBe(true);
    const recipe = JSON.parse(readFileSync(join(folder, 'recipe.json'), 'utf8'));
    expect(recipe.heldOutAccuracy).toBe(result.phase0.accuracy);
    expect(recipe.steps).toBe(result.phase0.stoppedAtStep);
    expect(preset.pair.teacher).toBe('worked-teacher');
  });

  it('every preset is a setup the lab accepts, for each objective at its rate', () => {
    for (const [name, preset] of Object.entries(RACE_PRESETS)) {
      for (const o of RACE_OBJECTIVES) expect(setupProblem({ ...preset.setup, objective: o, lr: preset.lr[o], totalSteps: 20 }), `${name} ${o}`).toBeNull();
    }
  });
});
