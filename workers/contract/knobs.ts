/**
 * The knobs of a distillation run, in one table: for each its name (the field of TrainSetup),
 * label, help, default, range, whether it is a whole number, which objectives use it, its CLI
 * flag and its URL key. Everything else is derived from this table: the TrainSetup type and
 * DEFAULT_SETUP, the one-sentence check of a value (`knobProblem`, `setupProblem`), the Distill
 * panel's fields, the options and `--help` of `opd-lab train`, and the URL hash (read and write).
 * Plain data, no GPU, nothing imported from outside workers/contract/.
 */
import { OBJECTIVES, TASK_NAMES, type ObjectiveName } from './run';

interface KnobCommon<N extends string> {
  /** The field of TrainSetup. */
  name: N;
  /** How the Distill panel labels it. */
  label: string;
  /** How a sentence names it: "<noun> must …". */
  noun: string;
  /** One or two sentences for people (the panel's tooltip, the CLI's --help). */
  help: string;
  /** `opd-lab train --<flag>`. */
  flag: string;
  /** The key in the page's URL hash. */
  urlKey: string;
  /** The objectives that use it; absent: all of them. */
  usedBy?: readonly ObjectiveName[];
  /** The CLI asks for it explicitly (no default there). */
  requiredOnCli?: boolean;
  /** Hidden in the page's classroom mode, which shows only what a first demo needs. */
  advanced?: boolean;
}

export interface NumberKnob<N extends string = string> extends KnobCommon<N> {
  kind: 'number';
  default: number;
  /** Whole numbers only. */
  integer: boolean;
  /** Bounds; Infinity for none above. An open bound excludes its value. */
  min: number;
  max: number;
  minOpen?: boolean;
  maxOpen?: boolean;
}

export interface ChoiceKnob<N extends string = string, V extends string = string> extends KnobCommon<N> {
  kind: 'choice';
  default: V;
  /** The values it takes; '' stands for "none" and reads as `noneWord`. */
  choices: readonly V[];
  noneWord?: string;
}

export type Knob = NumberKnob | ChoiceKnob;

const number = <N extends string>(k: Omit<NumberKnob<N>, 'kind' | 'urlKey'>): NumberKnob<N> => ({ kind: 'number', urlKey: k.name, ...k });
const choice = <N extends string, V extends string>(k: Omit<ChoiceKnob<N, V>, 'kind' | 'urlKey'>): ChoiceKnob<N, V> => ({ kind: 'choice', urlKey: k.name, ...k });

const MILLION = 1_000_000;

/** The knobs, in the order the panel shows them and `--help` lists them. */
export const KNOBS = [
  choice<'objective', ObjectiveName>({
    name: 'objective', label: 'objective', noun: 'the objective', flag: 'objective', default: 'opd-sampled', choices: OBJECTIVES,
    help:
      'What the student is trained on: opd-sampled (the teacher’s log-prob of each sampled token), opd-full (the exact reverse KL), sft (the teacher’s own answers), rl (the verifier’s 1/0 reward), ' +
      'topk (KL over the teacher’s top-k tokens and a tail bucket), opd-k3 (the k3 estimator r − 1 − log r at each sampled token), jsd (the generalised Jensen–Shannon divergence JSD(β)), gkd (JSD(β) on the student’s or, with probability 1 − λ, the teacher’s answers).',
  }),
  choice<'task', string>({
    name: 'task', label: 'task', noun: 'the task', flag: 'task', default: 'addition', choices: TASK_NAMES,
    help: 'The built-in task whose prompts the student trains on and whose held-out prompts it is evaluated on.',
  }),
  choice<'keepTask', string>({
    name: 'keepTask', advanced: true, label: 'keep (evaluate only)', noun: 'the task to keep', flag: 'keep-task', default: '', choices: ['', ...TASK_NAMES], noneWord: 'none',
    help: 'A second task evaluated beside the first at every evaluation and never trained on: a skill the student must not lose.',
  }),
  choice<'routeTask', string>({
    name: 'routeTask', advanced: true, label: 'route a second task', noun: 'the routed task', flag: 'route-task', default: '', choices: ['', ...TASK_NAMES], noneWord: 'none',
    help: 'A second task trained on beside the first, its prompts scored by their own teacher (the routed task’s teacher): each step takes its prompts from the two tasks in turn, and every evaluation reports the routed task too.',
  }),
  choice<'routeTeacher', 'student' | 'teacher'>({
    name: 'routeTeacher', advanced: true, label: 'routed task’s teacher', noun: 'the routed task’s teacher', flag: 'route-teacher', default: 'student', choices: ['student', 'teacher'],
    help: 'Who scores the routed task: student, a frozen copy of the student as it was before the run (so it keeps what it knew there while it learns the task from the teacher), or teacher, the run’s teacher over both tasks. opd-lab train --route TASK=DIR routes a task to any other teacher folder.',
  }),
  number({
    name: 'heldOutFraction', advanced: true, label: 'held-out fraction', noun: 'the held-out fraction', flag: 'held-out', default: 0.2, integer: false, min: 0, max: 1, minOpen: true, maxOpen: true,
    help: 'Prompt sets: the share of the prompts held out to measure on (never trained on); at least one prompt each side.',
  }),
  number({
    name: 'splitSeed', advanced: true, label: 'split seed', noun: 'the split seed', flag: 'split-seed', default: 0, integer: true, min: 0, max: 2 ** 31 - 1,
    help: 'Prompt sets: the seed of the split into training and held-out prompts (the run’s seed orders the training prompts).',
  }),
  number({
    name: 'totalSteps', label: 'steps', noun: 'the number of steps', flag: 'steps', default: 100, integer: true, min: 1, max: MILLION, requiredOnCli: true,
    help: 'Optimizer steps of the run.',
  }),
  number({ name: 'batchPrompts', label: 'prompts per step', noun: 'the prompts per step', flag: 'batch', default: 8, integer: true, min: 1, max: 1024, help: 'B: training prompts per step.' }),
  number({
    name: 'groupSize', label: 'completions per prompt', noun: 'the completions per prompt', flag: 'group', default: 4, integer: true, min: 1, max: 256,
    help: 'G: answers sampled for each prompt (rl needs at least 2).',
  }),
  number({ name: 'lr', label: 'learning rate', noun: 'the learning rate', flag: 'lr', default: 1e-3, integer: false, min: 0, max: 1, minOpen: true, maxOpen: true, help: 'Peak AdamW learning rate.' }),
  number({
    name: 'warmupSteps', advanced: true, label: 'warm-up steps', noun: 'the warm-up steps', flag: 'warmup', default: 0, integer: true, min: 0, max: MILLION,
    help: 'Steps over which the learning rate rises linearly to its peak.',
  }),
  choice<'schedule', 'constant' | 'linear' | 'cosine'>({
    name: 'schedule', advanced: true, label: 'schedule', noun: 'the schedule', flag: 'schedule', default: 'constant', choices: ['constant', 'linear', 'cosine'],
    help: 'The learning rate after the warm-up: constant, or decaying to 0 at the last step (linear or cosine).',
  }),
  number({
    name: 'loraRank', advanced: true, label: 'LoRA rank', noun: 'the LoRA rank', flag: 'lora', default: 0, integer: true, min: 0, max: Infinity,
    help: '0 trains every weight; r > 0 trains rank-r adapters.',
  }),
  number({
    name: 'klCoef', advanced: true, label: 'KL coefficient λ', noun: 'the KL coefficient λ', flag: 'kl-coef', default: 1, integer: false, min: 0, max: Infinity, usedBy: ['opd-sampled'],
    help: 'The advantage is −λ × the sampled reverse KL.',
  }),
  number({
    name: 'discount', advanced: true, label: 'discount γ', noun: 'the discount γ', flag: 'discount', default: 0, integer: false, min: 0, max: 1, usedBy: ['opd-sampled'],
    help: '0: each token answers for itself; γ > 0 sums the later tokens’ KL, discounted.',
  }),
  number({
    name: 'clipEpsilon', advanced: true, label: 'clip ε', noun: 'the clip ε', flag: 'clip', default: 0.2, integer: false, min: 0, max: Infinity, usedBy: ['opd-sampled', 'rl'],
    help: 'PPO-style clip of the importance ratio ρ (0: none).',
  }),
  number({
    name: 'topK', advanced: true, label: 'top-k', noun: 'top-k', flag: 'top-k', default: 16, integer: true, min: 1, max: 64, usedBy: ['topk'],
    help: 'topk: how many of the teacher’s best tokens keep their own probability at each position; every other token falls into one tail bucket.',
  }),
  choice<'topkDirection', 'forward' | 'reverse'>({
    name: 'topkDirection', advanced: true, label: 'top-k direction', noun: 'the top-k direction', flag: 'topk-direction', default: 'reverse', choices: ['forward', 'reverse'], usedBy: ['topk'],
    help: 'topk: reverse KL(student‖teacher) over the k + 1 buckets (mode-seeking, as opd-full), or forward KL(teacher‖student) (mass-covering).',
  }),
  number({
    name: 'jsdBeta', advanced: true, label: 'JSD β', noun: 'the JSD β', flag: 'jsd-beta', default: 0.5, integer: false, min: 0, max: 1, usedBy: ['jsd', 'gkd'],
    help: 'jsd, gkd: the mixture weight of JSD(β) = β·KL(T‖M) + (1−β)·KL(S‖M), M = (1−β)·student + β·teacher; 0 is the forward KL, 1 the reverse KL.',
  }),
  number({
    name: 'gkdLambda', advanced: true, label: 'GKD λ (on-policy share)', noun: 'the GKD λ', flag: 'gkd-lambda', default: 0.5, integer: false, min: 0, max: 1, usedBy: ['gkd'],
    help: 'gkd: the probability that a step trains on the student’s own samples; otherwise it trains on the teacher’s (drawn from the seed and the step, so a run repeats).',
  }),
  number({
    name: 'temperature', advanced: true, label: 'temperature', noun: 'the temperature', flag: 'temperature', default: 1, integer: false, min: 0, max: Infinity, minOpen: true,
    help: 'Sampling temperature, also that of every log-prob and KL.',
  }),
  number({
    name: 'maxTokens', advanced: true, label: 'max tokens', noun: 'max tokens', flag: 'max-tokens', default: 0, integer: true, min: 0, max: 4096,
    help: 'New tokens per answer; 0: what the task’s answers need (on a prompt set: what the student’s context leaves after the longest prompt, at most 64).',
  }),
  number({
    name: 'evalEvery', label: 'eval every', noun: 'eval every', flag: 'eval-every', default: 10, integer: true, min: 0, max: MILLION,
    help: 'Held-out evaluation every N steps (also at step 0 and after the last; 0: only then).',
  }),
  number({
    name: 'evalPrompts', advanced: true, label: 'eval prompts', noun: 'the held-out prompts', flag: 'eval-prompts', default: 64, integer: true, min: 1, max: 100_000,
    help: 'Held-out prompts per evaluation (greedy answers).',
  }),
  number({
    name: 'probes', advanced: true, label: 'probe prompts', noun: 'the probe prompts', flag: 'probes', default: 2, integer: true, min: 0, max: 8,
    help: 'Held-out prompts re-scored token by token at every evaluation (the first N): the student’s answer of the first evaluation, kept fixed, and its greedy answer of the moment; the Distill panel shows them as heatmaps over the steps.',
  }),
  number({
    name: 'checkpointEvery', advanced: true, label: 'checkpoint every', noun: 'checkpoint every', flag: 'checkpoint-every', default: 10, integer: true, min: 0, max: MILLION,
    help: 'Keep a checkpoint every N steps (also when the run ends, is stopped or fails; 0: only then).',
  }),
  number({
    name: 'seed', advanced: true, label: 'seed', noun: 'the seed', flag: 'seed', default: 0, integer: true, min: 0, max: 2 ** 31 - 1,
    help: 'Seed of the training prompts and the sampling.',
  }),
] as const;

type KnobValue<K> = K extends NumberKnob ? number : K extends ChoiceKnob<string, infer V> ? V : never;

/** A distillation run as a person sets it up (the Distill panel, `train.start`, `opd-lab train`). */
export type TrainSetup = { -readonly [K in (typeof KNOBS)[number] as K['name']]: KnobValue<K> };
export type KnobName = keyof TrainSetup;

export const KNOB_BY_NAME = Object.fromEntries(KNOBS.map((k) => [k.name, k])) as { [K in KnobName]: Extract<(typeof KNOBS)[number], { name: K }> };

export const DEFAULT_SETUP: TrainSetup = Object.fromEntries(KNOBS.map((k) => [k.name, k.default])) as TrainSetup;

/** "the learning rate must …; got 0" → "The learning rate must …; got 0." */
export function asSentence(text: string): string {
  const t = text.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

const whole = (x: number) => x.toLocaleString('en-US');

/** How a choice's value reads to people: '' as the knob's word for none. */
export const choiceWord = (k: ChoiceKnob, v: string): string => (v === '' ? (k.noneWord ?? '') : v);

/** What a value of the knob must be, after "must": "lie in (0, 1)", "be a whole number from 1 to 1,024". */
export function rangeText(k: Knob): string {
  if (k.kind === 'choice') {
    const named = k.choices.filter((c) => c !== '');
    return `be one of ${named.join(', ')}${k.choices.includes('') ? `, or ${k.noneWord}` : ''}`;
  }
  if (k.integer) return Number.isFinite(k.max) ? `be a whole number from ${whole(k.min)} to ${whole(k.max)}` : `be a whole number ≥ ${whole(k.min)}`;
  if (!Number.isFinite(k.max)) return `be a number ${k.minOpen ? '>' : '≥'} ${k.min}`;
  return `lie in ${k.minOpen ? '(' : '['}${k.min}, ${k.max}${k.maxOpen ? ')' : ']'}`;
}

/** Whether the value lies in the knob's range. */
export function inRange(k: Knob, v: unknown): boolean {
  if (k.kind === 'choice') return typeof v === 'string' && (k.choices as readonly string[]).includes(v);
  if (typeof v !== 'number' || !Number.isFinite(v) || (k.integer && !Number.isInteger(v))) return false;
  return (k.minOpen ? v > k.min : v >= k.min) && (k.maxOpen ? v < k.max : v <= k.max);
}

/** Why this value of the knob cannot be, as one sentence naming the knob and its range; null when it can. */
export function knobProblem(k: Knob, v: unknown): string | null {
  return inRange(k, v) ? null : asSentence(`${k.noun} must ${rangeText(k)}; got ${String(v)}`);
}

/** Who scores a routed task, as a sentence names it: "a frozen copy of the student as loaded" or "the teacher". */
export function routeTeacherWords(routeTeacher: TrainSetup['routeTeacher']): string {
  return routeTeacher === 'student' ? 'a frozen copy of the student as loaded' : 'the teacher';
}

/**
 * A setup recorded before some knobs existed (a run kept in the browser or exported by an older
 * lab): every knob it lacks at its default, which is what that run ran with.
 */
export function withDefaults(recorded: Partial<TrainSetup>): TrainSetup {
  return { ...DEFAULT_SETUP, ...recorded };
}

/** Why this setup cannot run, as one sentence; null when it can. Every knob first, in the table's order, then how they fit together. */
export function setupProblem(s: TrainSetup): string | null {
  for (const k of KNOBS) {
    const problem = knobProblem(k, s[k.name]);
    if (problem) return problem;
  }
  if (s.keepTask === s.task) return asSentence(`the task to keep must differ from the task trained on (both are ${s.task})`);
  if (s.routeTask === s.task) return asSentence(`the routed task must differ from the task trained on (both are ${s.task}): route another task, or none`);
  if (s.routeTask !== '' && s.routeTask === s.keepTask) return asSentence(`${s.routeTask} is both routed (trained on) and kept (never trained on): choose one`);
  return groupProblem(s);
}

/** The one rule between two knobs of a run: rl compares the completions of a prompt with each other. */
export function groupProblem(s: Pick<TrainSetup, 'objective' | 'groupSize'>): string | null {
  return s.objective === 'rl' && s.groupSize < 2 ? 'rl needs a group of at least 2 completions per prompt for its group-mean baseline.' : null;
}

/**
 * The setup in URL parameters (…&objective=opd-full&lr=0.001…); a knob left out keeps its default.
 * A value that is not a number, or not one of a choice's values, is kept as it is, so the panel
 * says what is wrong with it.
 */
export function setupFromParams(params: URLSearchParams): TrainSetup {
  const setup: Record<string, unknown> = { ...DEFAULT_SETUP };
  for (const k of KNOBS) {
    const v = params.get(k.urlKey);
    if (v === null) continue;
    setup[k.name] = k.kind === 'number' ? (v.trim() === '' ? NaN : Number(v)) : v;
  }
  return setup as TrainSetup;
}

/** Writes every knob of the setup into URL parameters (beside whatever else they hold). */
export function setupToParams(setup: TrainSetup, params: URLSearchParams): void {
  for (const k of KNOBS) params.set(k.urlKey, String(setup[k.name]));
}
