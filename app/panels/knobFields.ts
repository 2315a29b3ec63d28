/**
 * The Distill panel's fields, derived from the knob schema (workers/contract/knobs.ts): one per
 * knob, in its order, with its label, its tooltip (help, range, the objectives that use it) and,
 * for numbers, the input's bounds and step; for choices, the values and how they read.
 */
import { choiceWord, KNOBS, rangeText, type Knob, type KnobName } from '../../workers/contract/knobs';
import type { ObjectiveName } from '../../workers/contract/run';

export interface PanelField {
  name: KnobName;
  kind: 'number' | 'choice';
  label: string;
  title: string;
  /** Numbers: the input's bounds (none where the knob has none) and step. */
  min?: number;
  max?: number;
  step?: number | 'any';
  /** Choices: each value and how it reads. */
  options?: { value: string; text: string }[];
  /** The objectives that use it; absent: all. */
  usedBy?: readonly ObjectiveName[];
  /** The test id of a choice's select (its CLI flag, e.g. keep-task). */
  testId?: string;
  /** Hidden in classroom mode. */
  advanced?: boolean;
}

export function panelField(k: Knob): PanelField {
  const common = { name: k.name as KnobName, label: k.label, title: `${k.help} Must ${rangeText(k)}.`, ...(k.usedBy ? { usedBy: k.usedBy } : {}), ...(k.advanced ? { advanced: true } : {}) };
  if (k.kind === 'choice') return { ...common, kind: 'choice', options: k.choices.map((value) => ({ value, text: choiceWord(k, value) })), testId: k.flag };
  return {
    ...common,
    kind: 'number',
    min: k.min,
    ...(Number.isFinite(k.max) ? { max: k.max } : {}),
    step: k.integer ? 1 : 'any',
  };
}

export const PANEL_FIELDS: PanelField[] = KNOBS.map(panelField);
