/**
 * GPU memory a model of any registered family needs, estimated before any session or trainer
 * exists, and checked against what the device can hold:
 *
 *   - every tensor the runtime binds must fit one storage binding (maxStorageBufferBindingSize)
 *     and one buffer (maxBufferSize): `checkModelFits` (sampling, scoring) and
 *     `checkTrainingFits` (a training run) check each weight, activation, logits and KV tensor;
 *   - a training run's whole footprint must fit the memory the caller knows the device has (a
 *     budget: WebGPU does not say how much memory a GPU has; on a CPU adapter it is the machine's
 *     RAM): `checkTrainingFits` with `budgetBytes`.
 *
 * A run that cannot fit gets one sentence saying what does not fit — the weights, the optimizer
 * state, the activations by name, the KV cache — with their sizes, and what to change, with the
 * numbers each change gives: LoRA, an f16 frozen base, a smaller batch, shorter sequences. Not a
 * lost device.
 *
 * The family gives its parameters, its KV cache's shape, its largest activations per layer and,
 * when it has them, every activation its training graph keeps (`trainingActivations`); the
 * trainer's own buffers (workers/train/: gradients, AdamW moments, the numerics guard's copies,
 * LoRA's factors, its W_eff and dW_eff scratch, logits and their gradient) are counted here the
 * way the trainer allocates them.
 */
import { numel, type FamilyConfig, type ModelFamily } from './family';
import { familyFor } from './registry';
import type { GpuLimitsSummary } from '../contract/adapter';
import { formatBytes } from '../contract/format';

const F32 = 4;

export interface MemoryEstimate {
  weightsBytes: number;
  /** Keys and values of every layer for the whole batch at full length. */
  kvCacheBytes: number;
  /** Logits of every position of the batch (scoring keeps them all on the GPU). */
  logitsBytes: number;
  /** The largest intermediate of one layer (e.g. MLP activations or attention scores). */
  activationBytes: number;
  totalBytes: number;
  /** The largest single tensors, by name, for the limit check. */
  tensors: { name: string; bytes: number }[];
}

export function estimateMemory(config: FamilyConfig, batch: number, sequence: number): MemoryEstimate {
  const family = familyFor(config);
  const tensors = family.paramSpecs(config).map((s) => ({ name: s.name, bytes: numel(s.shape) * F32 }));
  const weightsBytes = tensors.reduce((a, t) => a + t.bytes, 0);
  const shape = family.decoderShape(config);
  const kvLayer = batch * shape.kvHeads * sequence * shape.headDim * F32;
  const logitsBytes = batch * sequence * config.vocabSize * F32;
  const activations = family.activationTensors(config, batch, sequence);
  tensors.push({ name: 'logits', bytes: logitsBytes }, { name: 'present key/value (one layer)', bytes: kvLayer }, ...activations);
  tensors.sort((a, b) => b.bytes - a.bytes);
  const activationBytes = Math.max(0, ...activations.map((t) => t.bytes));
  const kvCacheBytes = 2 * shape.layers * kvLayer;
  return { weightsBytes, kvCacheBytes, logitsBytes, activationBytes, totalBytes: weightsBytes + kvCacheBytes + logitsBytes + 3 * activationBytes, tensors };
}

export class ModelTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelTooLargeError';
  }
}

type BindingLimits = Pick<GpuLimitsSummary, 'maxBufferSize' | 'maxStorageBufferBindingSize'>;

const bindingCap = (limits: BindingLimits): number => Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);

/** The largest n in [1, from] with fits(n), or 0 when even 1 does not fit (fits is monotone). */
function largestFitting(from: number, fits: (n: number) => boolean): number {
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = from;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** "1 sequence", "5 sequences". */
const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** The shortest sequence worth advising: one token has nothing to predict. */
const MIN_SEQUENCE = 2;

/**
 * "use a batch of at most 5 (× 1024 tokens) or at most 640 tokens per sequence (batch 8)" for the
 * tensors that grow with the batch or the sequence, or undefined when neither change helps.
 */
function batchOrSequenceAdvice(batch: number, sequence: number, fits: (batch: number, sequence: number) => boolean): string | undefined {
  const parts: string[] = [];
  const b = batch > 1 ? largestFitting(batch - 1, (n) => fits(n, sequence)) : 0;
  if (b > 0) parts.push(`a batch of at most ${count(b, 'sequence')} (× ${sequence} tokens)`);
  const s = sequence > MIN_SEQUENCE ? largestFitting(sequence - 1, (n) => fits(batch, n)) : 0;
  if (s >= MIN_SEQUENCE) parts.push(`at most ${s} tokens per sequence (batch ${batch})`);
  return parts.length ? `use ${parts.join(' or ')}` : undefined;
}

/** Throws ModelTooLargeError when a tensor cannot be bound on this device; returns the estimate otherwise. */
export function checkModelFits(config: FamilyConfig, batch: number, sequence: number, limits: BindingLimits, what = 'the model'): MemoryEstimate {
  const estimate = estimateMemory(config, batch, sequence);
  const cap = bindingCap(limits);
  const over = estimate.tensors.filter((t) => t.bytes > cap);
  if (over.length) {
    const params = new Set(familyFor(config).paramSpecs(config).map((s) => s.name));
    const list = over.slice(0, 3).map((t) => `${t.name} needs ${formatBytes(t.bytes)}`).join(', ');
    const fits = (b: number, s: number) => estimateMemory(config, b, s).tensors.every((t) => params.has(t.name) || t.bytes <= cap);
    const advice = over.some((t) => params.has(t.name))
      ? 'the model itself is too large for this GPU'
      : `use a smaller batch or fewer tokens${(batchOrSequenceAdvice(batch, sequence, fits) ?? '').replace(/^use /, ': ')}`;
    throw new ModelTooLargeError(
      `${what} does not fit this GPU for a batch of ${batch} × ${sequence} tokens: ${list}, but the adapter binds at most ${formatBytes(cap)} per tensor; ${advice}.`,
    );
  }
  return estimate;
}

// ---------------------------------------------------------------------------------------------
// Training

/** A training run's shape, as the memory check sees it. */
export interface TrainingSetup {
  /** Sequences in one forward: the larger of a step's micro-batch and an evaluation's prompts. */
  batch: number;
  /** Tokens per sequence (prompt + completion). */
  sequence: number;
  /** LoRA rank; 0 trains every weight. */
  loraRank: number;
  /** LoRA's frozen bases stored in f16 (a device with shader-f16, not turned off). */
  f16Base: boolean;
}

export interface MemoryPart {
  name: string;
  bytes: number;
}

/** One kind of memory (weights, optimizer state, activations, KV cache), by part. */
export interface MemoryGroup {
  name: string;
  bytes: number;
  parts: MemoryPart[];
}

export interface TrainingMemoryEstimate {
  setup: TrainingSetup;
  /** Weights, optimizer state, activations, KV cache: every byte counted once. */
  groups: MemoryGroup[];
  totalBytes: number;
  /** Single buffers, largest first, for the binding check. */
  tensors: MemoryPart[];
  /** Names of the weights among `tensors` (a smaller batch does not shrink them). */
  weightNames: Set<string>;
}

function group(name: string, parts: MemoryPart[]): MemoryGroup {
  const kept = parts.filter((p) => p.bytes > 0);
  return { name, bytes: kept.reduce((a, p) => a + p.bytes, 0), parts: kept.sort((a, b) => b.bytes - a.bytes) };
}

/** Activations the training graph keeps, by name: the family's own list, or its per-layer largest × layers. */
function trainingActivations(family: ModelFamily, config: FamilyConfig, batch: number, sequence: number): MemoryPart[] {
  if (family.trainingActivations) return family.trainingActivations(config, batch, sequence);
  const layers = family.decoderShape(config).layers;
  return family.activationTensors(config, batch, sequence).map((t) => ({ name: t.name.replace(/ \(one layer\)$/, '') + ` (${layers} layers)`, bytes: t.bytes * layers }));
}

/**
 * Every buffer a training run holds for the student, by what it is. LoRA counts its factors and
 * their optimizer state, each adapted weight's frozen base (f16 or f32) and its f32 W_eff, and
 * the dW_eff scratch of the largest adapted weight. The sampler's KV cache is for `batch`
 * sequences of `sequence` tokens.
 */
export function estimateTrainingMemory(config: FamilyConfig, setup: TrainingSetup): TrainingMemoryEstimate {
  const family = familyFor(config);
  const specs = family.paramSpecs(config);
  const { batch, sequence, loraRank } = setup;
  const lora = loraRank > 0;
  const adapted = lora ? specs.filter((s) => s.loraTarget) : [];
  const adaptedValues = adapted.reduce((a, s) => a + numel(s.shape), 0);
  const allValues = specs.reduce((a, s) => a + numel(s.shape), 0);
  const factorValues = adapted.reduce((a, s) => a + loraRank * (s.shape[0] + s.shape[1]), 0);
  const trainableValues = lora ? factorValues : allValues;
  const baseBytesPerValue = lora && setup.f16Base ? 2 : F32;

  const weights = group('weights', lora
    ? [
        { name: 'weights LoRA leaves as they are (f32)', bytes: (allValues - adaptedValues) * F32 },
        { name: `frozen bases of the ${adapted.length} adapted weights (${setup.f16Base ? 'f16' : 'f32'})`, bytes: adaptedValues * baseBytesPerValue },
        { name: 'their merged W_eff (f32)', bytes: adaptedValues * F32 },
        { name: `LoRA factors A and B (rank ${loraRank})`, bytes: factorValues * F32 },
      ]
    : [{ name: 'weights (f32)', bytes: allValues * F32 }]);
  const largestAdapted = Math.max(0, ...adapted.map((s) => numel(s.shape)));
  const optimizerState = group('optimizer state', [
    { name: 'gradients', bytes: trainableValues * F32 },
    { name: 'AdamW moments m and v', bytes: 2 * trainableValues * F32 },
    { name: "the numerics guard's copies of weights and moments", bytes: 3 * trainableValues * F32 },
    { name: "LoRA's dW_eff scratch", bytes: largestAdapted * F32 },
  ]);
  const rows = batch * sequence;
  const activations = group('activations', [
    ...trainingActivations(family, config, batch, sequence),
    { name: 'logits and their gradient', bytes: 2 * rows * config.vocabSize * F32 },
  ]);
  const shape = family.decoderShape(config);
  const kvLayer = batch * shape.kvHeads * sequence * shape.headDim * F32;
  const kvCache = group('KV cache', [{ name: `KV cache (${shape.layers} layers)`, bytes: 2 * shape.layers * kvLayer }]);

  const weightNames = new Set(specs.map((s) => s.name));
  const tensors: MemoryPart[] = [
    ...specs.map((s) => ({ name: s.name, bytes: numel(s.shape) * F32 })),
    { name: 'logits', bytes: rows * config.vocabSize * F32 },
    { name: 'present key/value (one layer)', bytes: kvLayer },
    ...family.activationTensors(config, batch, sequence),
  ].sort((a, b) => b.bytes - a.bytes);
  const groups = [weights, optimizerState, activations, kvCache];
  return { setup, groups, totalBytes: groups.reduce((a, g) => a + g.bytes, 0), tensors, weightNames };
}

export interface TrainingFitOptions {
  /** The memory the device has for this run; undefined: only the per-tensor limits are checked. */
  budgetBytes?: number;
  /** Whether the device has shader-f16 (what the f16-base advice can offer). */
  shaderF16?: boolean;
  /** The model, for the sentence: "models/addition-student". */
  what?: string;
  /** How the sentence names the batch: "32 sequences (8 prompts × 4 completions)". */
  batchWhat?: string;
}

const sizeOf = (x: { bytes: number }) => formatBytes(x.bytes);

/** "optimizer state 2.9 GiB (gradients 0.5 GiB, AdamW moments m and v 1 GiB, …)" */
function describeGroup(g: MemoryGroup, parts = 3): string {
  const shown = g.parts.length > 1 ? ` (${g.parts.slice(0, parts).map((p) => `${p.name} ${sizeOf(p)}`).join(', ')}${g.parts.length > parts ? ', …' : ''})` : '';
  return `${g.name} ${sizeOf(g)}${shown}`;
}

/** The LoRA rank the advice offers a full fine-tuning run. */
export const ADVISED_LORA_RANK = 8;

/**
 * What to change so that the run's total fits `budget`, each with the total it gives: LoRA (or,
 * in a LoRA run, an f16 base), a smaller batch, shorter sequences, each alone where it is enough,
 * and LoRA with the leanest base together with the largest batch (or sequence) that then fits
 * where LoRA alone is not enough. The last resort says that nothing fits.
 */
function budgetAdvice(config: FamilyConfig, setup: TrainingSetup, budget: number, shaderF16: boolean | undefined): string {
  const total = (s: Partial<TrainingSetup>) => estimateTrainingMemory(config, { ...setup, ...s }).totalBytes;
  const inAll = (s: Partial<TrainingSetup>) => `${formatBytes(total(s))} in all`;
  const changes: string[] = [];
  // The leanest weights and optimizer state the adapter allows: LoRA (rank 8 for a full
  // fine-tuning run), its frozen base in f16 where the adapter may have shader-f16.
  const f16 = setup.f16Base || shaderF16 !== false;
  const leaner: Partial<TrainingSetup> = setup.loraRank > 0 ? { f16Base: f16 } : { loraRank: ADVISED_LORA_RANK, f16Base: Boolean(shaderF16) };
  const f16Note = shaderF16 ? 'the default on this adapter' : 'on an adapter with shader-f16';
  const leanerWords =
    setup.loraRank === 0
      ? `train LoRA adapters (rank ${ADVISED_LORA_RANK}${leaner.f16Base ? `, whose frozen base is then f16 on this adapter` : ''})`
      : leaner.f16Base && !setup.f16Base
        ? `keep LoRA's frozen base in f16 (${f16Note})`
        : undefined;
  if (leanerWords && total(leaner) <= budget) changes.push(`${leanerWords}: ${inAll(leaner)}`);
  const b = setup.batch > 1 ? largestFitting(setup.batch - 1, (n) => total({ batch: n }) <= budget) : 0;
  if (b > 0) changes.push(`use a batch of at most ${count(b, 'sequence')} (${inAll({ batch: b })})`);
  const s = setup.sequence > MIN_SEQUENCE ? largestFitting(setup.sequence - 1, (n) => total({ sequence: n }) <= budget) : 0;
  if (s >= MIN_SEQUENCE) changes.push(`use at most ${s} tokens per sequence (${inAll({ sequence: s })})`);
  if (leanerWords && total(leaner) > budget) {
    // LoRA alone is not enough: with it, the batch (or the sequences) can be larger than without.
    const bl = largestFitting(setup.batch, (n) => total({ ...leaner, batch: n }) <= budget);
    const sl = bl === 0 ? largestFitting(setup.sequence, (n) => total({ ...leaner, batch: 1, sequence: n }) <= budget) : 0;
    if (bl > b) changes.push(`${leanerWords} and use a batch of at most ${count(bl, 'sequence')} (${inAll({ ...leaner, batch: bl })})`);
    else if (sl >= MIN_SEQUENCE) changes.push(`${leanerWords} and train one sequence at a time, of at most ${sl} tokens (${inAll({ ...leaner, batch: 1, sequence: sl })})`);
  }
  if (changes.length) return `to fit, ${changes.join(', or ')}`;
  const least = { ...leaner, batch: 1, sequence: MIN_SEQUENCE };
  const how = `${setup.loraRank > 0 ? 'LoRA' : `LoRA of rank ${ADVISED_LORA_RANK}`}${least.f16Base ? ' with an f16 base' : ''}`;
  return `even ${how} on one sequence of ${MIN_SEQUENCE} tokens needs ${formatBytes(total(least))}: the model is too large for this GPU's memory`;
}

/**
 * Throws ModelTooLargeError when the training run cannot fit: a tensor over the device's
 * per-binding limit, or (with a budget) a total over the budget. The sentence names what does not
 * fit, with sizes, and what to change, with the numbers each change gives. Returns the estimate.
 */
export function checkTrainingFits(config: FamilyConfig, setup: TrainingSetup, limits: BindingLimits, options: TrainingFitOptions = {}): TrainingMemoryEstimate {
  const estimate = estimateTrainingMemory(config, setup);
  const what = options.what ?? 'the model';
  const batchWhat = options.batchWhat ?? `${setup.batch} sequences`;
  const runWhat = `${what} cannot be trained on this GPU with ${batchWhat} of ${setup.sequence} tokens`;
  const cap = bindingCap(limits);
  const over = estimate.tensors.filter((t) => t.bytes > cap);
  if (over.length) {
    const list = over.slice(0, 3).map((t) => `${t.name} needs ${formatBytes(t.bytes)}`).join(', ');
    const weights = over.filter((t) => estimate.weightNames.has(t.name));
    let advice: string;
    if (weights.length) {
      advice = `the model itself is too large for this GPU (LoRA and an f16 base do not help: the weight is bound whole, in f32)`;
    } else {
      const fits = (b: number, s: number) => estimateTrainingMemory(config, { ...setup, batch: b, sequence: s }).tensors.every((t) => estimate.weightNames.has(t.name) || t.bytes <= cap);
      advice = batchOrSequenceAdvice(setup.batch, setup.sequence, fits) ?? `even one sequence of ${MIN_SEQUENCE} tokens does not fit`;
    }
    throw new ModelTooLargeError(`${runWhat}: ${list}, but the adapter binds at most ${formatBytes(cap)} per tensor; ${advice}.`);
  }
  const budget = options.budgetBytes;
  if (budget !== undefined && estimate.totalBytes > budget) {
    const parts = estimate.groups.filter((g) => g.bytes > 0).map((g) => describeGroup(g));
    const advice = budgetAdvice(config, setup, budget, options.shaderF16);
    throw new ModelTooLargeError(`${runWhat}: it needs ${formatBytes(estimate.totalBytes)} — ${parts.join(', ')} — but the GPU has ${formatBytes(budget)}; ${advice}.`);
  }
  return estimate;
}
