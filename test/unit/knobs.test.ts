/**
 * One knob schema (workers/contract/knobs.ts): the Distill panel's fields, the options of
 * `opd-lab train` and the URL hash are all derived from it, so they carry the same defaults and
 * ranges, and a value out of range is refused with the same sentence by the panel's check, the
 * engine's checks and the CLI. No GPU work here.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETUP, KNOBS, knobProblem, setupFromParams, setupToParams, setupProblem, type Knob, type TrainSetup } from '../../workers/contract/knobs';
import { PRESETS } from '../../workers/contract/presets';
import { PANEL_FIELDS } from '../../app/panels/knobFields';
import { setupFromHash } from '../../app/state/labStore';
import { parseOptions, usage, UsageError } from '../../cli/args';
import { trainCommand, setupFromOptions } from '../../cli/train';
import { DEFAULT_DISTILL, DistillError, RUN_KNOBS, validateOptions, type DistillOptions } from '../../workers/distill/options';
import { distillOptions } from '../../workers/distill/setup';
import { Training } from '../../workers/engine/training';
import type { LabError, LabEvent } from '../../workers/protocol';

/** The command line of a run that sets nothing but what `train` requires. */
const REQUIRED = ['--steps', String(DEFAULT_SETUP.totalSteps), '--out', '/tmp/unused'];
const parseTrain = (...argv: string[]) => parseOptions([...REQUIRED, ...argv], trainCommand.options, 'train');

/** Values each knob cannot take: just past each bound, a fraction for a whole number, a name not listed. */
function outOfRange(k: Knob): (string | number)[] {
  if (k.kind === 'choice') return ['bogus'];
  const values = [k.minOpen ? k.min : k.min - 1];
  if (Number.isFinite(k.max)) values.push(k.maxOpen ? k.max : k.max + 1);
  if (k.integer) values.push(k.min + 0.5);
  return values;
}

/** A value of each knob other than its default, inside its range. */
function another(k: Knob): string | number {
  // The task trained on, the task kept and the task routed must differ: subtraction, addition and worked-addition.
  if (k.name === 'keepTask') return 'addition';
  if (k.name === 'routeTask') return 'worked-addition';
  if (k.kind === 'choice') return k.choices.find((c) => c !== k.default)!;
  if (k.name === 'lr') return 3e-4;
  const v = k.integer ? k.default + 3 : k.default + 0.25;
  return Number.isFinite(k.max) && v > k.max ? (k.min + k.max) / 2 : v;
}

/** The engine's check of a setup, as `train.start` meets it: before any GPU work. */
async function engineRefusal(setup: TrainSetup): Promise<LabError | null> {
  const training = new Training({
    emit: (_: LabEvent) => {},
    exclusive: (work) => work(),
    describe: (e) => ({ code: 'internal', message: String(e) }),
  });
  return training.start(1, undefined as unknown as GPUDevice, {}, setup);
}

describe('one knob schema', () => {
  it('gives TrainSetup its fields and defaults, and each knob a label, help, flag and URL key', () => {
    expect(Object.keys(DEFAULT_SETUP)).toEqual(KNOBS.map((k) => k.name));
    for (const k of KNOBS) {
      expect(DEFAULT_SETUP[k.name]).toBe(k.default);
      expect(k.label.length, k.name).toBeGreaterThan(0);
      expect(k.help.length, k.name).toBeGreaterThan(0);
      expect(knobProblem(k, k.default), k.name).toBeNull();
    }
    for (const what of ['flag', 'urlKey', 'label'] as const) expect(new Set(KNOBS.map((k) => k[what])).size, what).toBe(KNOBS.length);
    expect(setupProblem(DEFAULT_SETUP)).toBeNull();
  });

  it('the panel fields are the schema: same knobs in the same order, labels, bounds, choices', () => {
    expect(PANEL_FIELDS.map((f) => f.name)).toEqual(KNOBS.map((k) => k.name));
    PANEL_FIELDS.forEach((f, i) => {
      const k = KNOBS[i] as Knob;
      expect(f.label).toBe(k.label);
      expect(f.usedBy).toEqual(k.usedBy);
      expect(f.title.startsWith(k.help)).toBe(true);
      if (k.kind === 'number') {
        expect(f).toMatchObject({ kind: 'number', min: k.min, step: k.integer ? 1 : 'any' });
        expect(f.max).toBe(Number.isFinite(k.max) ? k.max : undefined);
      } else {
        expect(f.kind).toBe('choice');
        expect(f.options!.map((o) => o.value)).toEqual(k.choices);
      }
    });
  });

  it("the CLI's train options are the schema: one per knob, same default, and --help says each", () => {
    const text = usage('train', trainCommand.summary, trainCommand.options);
    for (const k of KNOBS as readonly Knob[]) {
      const spec = trainCommand.options[k.flag];
      expect(spec, k.flag).toBeDefined();
      expect(spec.kind).toBe(k.kind === 'choice' ? 'string' : k.integer ? 'int' : 'number');
      if (k.requiredOnCli) expect(spec.required).toBe(true);
      else expect(spec.default).toBe(k.kind === 'choice' && k.default === '' ? k.noneWord : k.default);
      expect(spec.help.startsWith(k.help)).toBe(true);
      expect(text).toContain(`--${k.flag}`);
    }
    // A command line that sets no knob asks for the schema's defaults.
    expect(setupFromOptions(parseTrain(), undefined)).toEqual(DEFAULT_SETUP);
    // Every knob set on the command line lands in its field.
    const wanted = Object.fromEntries(KNOBS.map((k) => [k.name, another(k)])) as TrainSetup;
    const values: Record<string, unknown> = wanted;
    const argv = (KNOBS as readonly Knob[]).flatMap((k) => [`--${k.flag}`, String(values[k.name])]);
    expect(setupFromOptions(parseOptions([...argv, '--out', '/tmp/unused'], trainCommand.options, 'train'), undefined)).toEqual(wanted);
    // --keep-task none is the setup's ''.
    expect(setupFromOptions(parseTrain('--keep-task', 'none'), undefined).keepTask).toBe('');
  });

  it('a URL hash carries every knob both ways', () => {
    const setup = Object.fromEntries(KNOBS.map((k) => [k.name, another(k)])) as TrainSetup;
    for (const k of KNOBS) expect(setup[k.name], k.name).not.toBe(k.default);
    expect(setupProblem(setup)).toBeNull();
    const params = new URLSearchParams('panel=distill');
    setupToParams(setup, params);
    for (const k of KNOBS) expect(params.get(k.urlKey), k.urlKey).toBe(String(setup[k.name]));
    expect(setupFromHash(`#${params.toString()}`)).toEqual(setup);
    expect(setupFromParams(new URLSearchParams(''))).toEqual(DEFAULT_SETUP);
    // What the hash leaves out is the default; a number that does not parse stays NaN, for the panel to name.
    expect(setupFromHash('#panel=distill&lr=0.01')).toEqual({ ...DEFAULT_SETUP, lr: 0.01 });
    expect(Number.isNaN(setupFromHash('#lr=').lr)).toBe(true);
  });

  it('a value out of range is refused with the same sentence by the panel, the engine and the CLI', async () => {
    let checked = 0;
    for (const k of KNOBS as readonly Knob[]) {
      for (const v of outOfRange(k)) {
        const sentence = knobProblem(k, v)!;
        expect(sentence, `${k.name} ${v}`).toMatch(new RegExp(`^${k.noun.replace(/^./, (c) => c.toUpperCase()).replace(/[()]/g, '\\$&')} must .*; got ${v}\\.$`));
        const setup = { ...DEFAULT_SETUP, [k.name]: v } as TrainSetup;
        // The panel's check (the sentence it shows under the knobs).
        expect(setupProblem(setup)).toBe(sentence);
        // The engine: train.start refuses it, and so does the run itself for the knobs it reads.
        expect(await engineRefusal(setup)).toEqual({ code: 'bad-options', message: sentence });
        if ((RUN_KNOBS as readonly string[]).includes(k.name)) {
          expect(() => validateOptions({ ...DEFAULT_DISTILL, [k.name]: v } as DistillOptions)).toThrow(new DistillError(sentence));
        }
        // The CLI: one line, exit code 2 (a UsageError), the same sentence.
        const cliValue = String(v);
        expect(() => parseTrain(`--${k.flag}`, cliValue)).toThrow(new UsageError(`train: ${sentence}`));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(KNOBS.length);
    // The lab's own examples.
    expect(knobProblem(KNOBS.find((k) => k.name === 'lr')!, 0)).toBe('The learning rate must lie in (0, 1); got 0.');
    expect(knobProblem(KNOBS.find((k) => k.name === 'keepTask')!, 'chess')).toBe('The task to keep must be one of addition, subtraction, worked-addition, or none; got chess.');
  });

  it('presets are values of the schema', () => {
    for (const preset of Object.values(PRESETS)) {
      const setup = { ...DEFAULT_SETUP, ...preset.setup };
      expect(setupProblem(setup), preset.name).toBeNull();
      expect(Object.keys(preset.setup).every((name) => KNOBS.some((k) => k.name === name))).toBe(true);
      // A preset on the command line sets its knobs; the options given win.
      const fromCli = setupFromOptions(parseTrain('--preset', preset.name, '--batch', '3'), preset);
      expect(fromCli).toEqual({ ...setup, totalSteps: DEFAULT_SETUP.totalSteps, batchPrompts: 3 });
    }
  });

  it("a setup's run options: the knobs the run reads, max tokens 0 resolved to the task's", () => {
    const options = distillOptions({ ...DEFAULT_SETUP, schedule: 'cosine', warmupSteps: 5 }, 7);
    expect(options).toMatchObject({ schedule: 'cosine', warmupSteps: 5, maxTokens: 7, lr: DEFAULT_SETUP.lr, evalPrompts: DEFAULT_SETUP.evalPrompts });
    expect(distillOptions({ ...DEFAULT_SETUP, maxTokens: 3 }, 7).maxTokens).toBe(3);
    expect(() => validateOptions(options)).not.toThrow();
  });
});
