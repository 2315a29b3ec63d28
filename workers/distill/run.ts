/**
 * The distillation loop: the method of DESIGN.md as one object the lab worker, the CLI and the
 * benchmark all drive. One step, for objective
 *
 *   opd-sampled  sample B prompts × G completions with the current student (sampler log-probs
 *                recorded) → the teacher scores them (one forward, logits on the GPU) → the
 *                divergence kernels give per-token k_t = log π_old(y_t) − log π_T(y_t) and the
 *                exact KL → A_t = −λ·Σ_{u≥t} γ^{u−t} k_u → importance-sampled policy gradient;
 *   opd-full     the same samples, trained on the exact full-vocabulary reverse KL;
 *   sft          the teacher samples the completions (off-policy distillation), cross-entropy;
 *   rl           the student samples, the verifier gives 1/0 per completion, advantage =
 *                reward − the group's mean reward, importance-sampled policy gradient;
 *   topk, opd-k3, jsd  the student samples, trained on a loss that reads the teacher's logits
 *                (top-k KL with a tail bucket, k3 at the sampled token, JSD(β));
 *   gkd          the student or (with probability 1 − λ, per step) the teacher samples; JSD(β).
 * objectives.ts has each objective's exact formula.
 *
 * Metrics per step: sampled and exact reverse KL per token, student entropy, ρ's mean and spread,
 * loss and the range of its per-token values, gradient norm, how far the student agrees with the
 * teacher about the best tokens (mass on the teacher's top-k, overlap of the two top-k lists),
 * tokens sampled, FLOPs so far by where they went, wall time; at eval steps
 * the held-out accuracy (greedy) and the mean reverse KL on the eval prompts' completions.
 *
 * FLOPs are counted as DESIGN.md says: a forward costs 2·P per token, forward+backward 6·P, with
 * P the parameters of the model doing the work; sampling with the KV cache counts the positions
 * its forwards really ran: every row's left-padded prompt once, then one position per row at each
 * decode step until the last row has finished (finished rows keep their place in the batch).
 *
 * On chat prompts whose task gives the teacher its own rendering (`LabTask.teacherPrompt`, from a
 * prompt set: workers/prompts/), each model reads the conversation in its own chat template: the
 * student samples (and trains) on its rendering, the teacher scores the same completion tokens
 * after its own prompt, and its logits are put back at the student's packed rows
 * (workers/scoring/align.ts) before the divergence kernels; sft's teacher samples on its own
 * rendering and the student trains on its prompt + that completion. The teacher's FLOPs count its
 * own tokens. Without `teacherPrompt` the teacher reads the student's sequences, as before.
 */
import type { Gpt2Config } from '../models/gpt2/config';
import type { ModelParams } from '../models/family';
import type { ModelFolder } from '../models/folder';
import { trainedFolderFiles } from '../models/folder';
import { checkModelFits, checkTrainingFits } from '../models/memory';
import { familyNames } from '../models/registry';
import type { LabTokenizer } from '../models/tokenizer';
import { assertSameTokenizer, TokenizerMismatchError, unwritableCharacters } from '../models/tokenizer';
import type { ort } from '../ort/runtime';
import type { DecoderSession } from '../models/decoder-session';
import { decoderRunner, openGraphSamplingSession, openSamplingSession } from '../sampling/runner';
import { graphContextOf, graphSamplingConfig } from '../models/graph-config';
import { sampleCompletions, type Completion, type DecoderRunner } from '../sampling/sampler';
import { forwardLogits, openScoringSession } from '../scoring/forward';
import { alignTeacherLogits, alignTeacherParts } from '../scoring/align';
import { Trainer, type StepReport, type TrainerOptions } from '../train/trainer';
import type { TrainSequence } from '../train/batch';
import { restoreCheckpoint, saveCheckpoint } from '../train/checkpoint';
import { peftAdapterFiles, trainerLoraAdapter } from '../train/peft-adapter';
import type { LabTask } from '../tasks/task';
import type { TaskInfo } from '../tasks/registry';
import { evaluateGreedy, evaluateRunner, greedyAnswers, type FolderEvaluation, type GreedySample } from './evaluate';
import { probeHeatmap, rowsByIndex, type ProbeAnswer, type ProbeReader } from './probes';
import { OBJECTIVE_DEFINITIONS } from './objectives';
import { MAX_TOP_K } from '../kernels/divergence/layout';
import { DEFAULT_DISTILL, DistillError, validateOptions, type DistillOptions } from './options';
import type { EvalMetrics, FlopCount, ProbeHeatmap, RoutedEval, StepMetrics } from '../contract/run';

export type { EvalMetrics, FlopCount, StepMetrics };
export { discounted } from './objectives';

export { OBJECTIVES, DEFAULT_DISTILL, DistillError, validateOptions, type ObjectiveName, type DistillOptions } from './options';

/** The run's state besides the trainer's tensors: enough to resume identically. */
export interface RunState {
  step: number;
  promptCursor: number;
  flops: FlopCount;
  options: DistillOptions;
  /** The probe prompts' fixed completions, set at the run's first evaluation (probes.ts). */
  probeAnswers?: ProbeAnswer[];
  /** The routed tasks' names, in order (absent without routes): a resumed run must route the same, or its prompt stream would differ. */
  routes?: string[];
}

/**
 * A completion with its prompt (text and the student's ids): a step's samples and an evaluation's
 * answers alike; `teacherPromptIds` when the teacher reads its own rendering of the prompt.
 */
type Sampled = GreedySample & { teacherPromptIds?: number[]; set?: number };

/**
 * A prompt set routed to its own teacher (DistillRun.create's `routes`): the run's training
 * prompts come from the main task and each route's task in turn, and each prompt is scored (and
 * for sft, and gkd's teacher steps, sampled) by its own set's teacher. `label` names the route in
 * reports (e.g. its task).
 */
export interface PromptRoute {
  task: LabTask;
  teacher: ModelFolder;
  label: string;
}

/** A step's prompt and the set it came from (0: the main task, i: route i−1). */
interface RoutedPrompt {
  text: string;
  set: number;
}

/** One prompt set of the run with its teacher: set 0 is the main task and teacher, then each route. */
interface PromptSet {
  task: LabTask;
  teacher: ModelFolder;
  label: string;
  scoring: ort.InferenceSession;
  /** The teacher's parameters (its FLOPs per token). */
  params: number;
  /** Its sampler, opened at its first teacher-sampled step (sft, gkd). */
  runner?: DecoderRunner;
  decoder?: DecoderSession;
}

/** The teacher's logits for a batch, at the student's packed rows, with what its forward read. */
interface TeacherLogits {
  /** f32 [sequences, W_student, vocab] on the GPU: row b·W + t predicts token t+1 of the student's sequence b (completion rows only, when aligned). */
  logits: GPUBuffer;
  vocab: number;
  /** Tokens the teacher's forward read: its own prompts + the completions. */
  tokens: number;
  /** The forwards' FLOPs: 2 · (each teacher's parameters) · (the tokens it read). */
  flops: number;
  dispose(): void;
}

export class DistillRun {
  private readonly studentRunner: DecoderRunner;
  private teacherRunner?: DecoderRunner;
  /** sft's teacher decoder, opened at its first step (released with the run). */
  private teacherDecoder?: DecoderSession;
  private readonly tokenizer: LabTokenizer;
  private readonly eos: number | null;
  private readonly pStudent: number;
  private readonly pTeacher: number;
  private state: RunState;

  private constructor(
    readonly device: GPUDevice,
    readonly trainer: Trainer,
    private readonly studentDecoder: DecoderSession,
    private readonly teacherScoring: ort.InferenceSession,
    readonly student: ModelFolder,
    readonly teacher: ModelFolder,
    readonly task: LabTask,
    state: RunState,
    readonly keptTask: TaskInfo | null,
    routes: Omit<PromptSet, 'params'>[] = [],
  ) {
    this.state = state;
    this.tokenizer = student.tokenizer;
    this.eos = student.tokenizer.eosTokenId ?? student.config!.eosTokenId ?? null;
    this.studentRunner = decoderRunner(student.config!, studentDecoder, trainer.weightFeeds());
    this.pStudent = student.family!.countParameters(student.config!);
    this.pTeacher = parameterCount(teacher);
    this.sets = [
      { task, teacher, label: task.name, scoring: teacherScoring, params: this.pTeacher },
      ...routes.map((r) => ({ ...r, params: parameterCount(r.teacher) })),
    ];
  }

  /** The run's prompt sets with their teachers: the main task first, then each route. */
  private readonly sets: PromptSet[];

  /** The routes the run was created with (empty for a run of one task and one teacher). */
  get routes(): PromptRoute[] {
    return this.sets.slice(1).map(({ task, teacher, label }) => ({ task, teacher, label }));
  }

  get options(): DistillOptions {
    return this.state.options;
  }

  get step(): number {
    return this.state.step;
  }

  get flops(): FlopCount {
    return { ...this.state.flops };
  }

  static async create(
    device: GPUDevice,
    parts: {
      student: ModelFolder;
      teacher: ModelFolder;
      task: LabTask;
      options: Partial<DistillOptions>;
      checkpoint?: Uint8Array;
      /** A second task evaluated at every evaluation (never trained on): a skill to keep. */
      keptTask?: TaskInfo | null;
      /** The memory the device has for the run, when the caller knows it (the memory check). */
      memoryBudgetBytes?: number;
      /**
       * More prompt sets, each with its own teacher: a step's prompts come from the main task and
       * each route's task in turn, and each is scored by its own set's teacher (PromptRoute).
       */
      routes?: readonly PromptRoute[];
    },
  ): Promise<DistillRun> {
    const { student, teacher, task } = parts;
    const routes = parts.routes ?? [];
    const options = { ...DEFAULT_DISTILL, ...parts.options };
    validateOptions(options);
    if (!student.family || !student.config || !student.weights) throw new DistillError(`${student.label} is not a trainable folder of a model family the lab knows (${familyNames()}: config.json with its model_type, and model.safetensors, are needed)`);
    assertSameTokenizer(student.tokenizer, teacher.tokenizer);
    assertRoutes(student, task, routes);
    for (const set of [{ task }, ...routes]) {
      if (OBJECTIVE_DEFINITIONS[options.objective].needsVerifier && !set.task.verify) {
        throw new DistillError(
          `the ${options.objective} objective trains on a verifier's reward, and ${set.task.name} has no verifier (its prompts have no answers to check): choose opd-sampled, opd-full or sft, or a built-in task`,
        );
      }
      assertTaskFits(student.tokenizer, set.task, student.label);
    }
    if (parts.keptTask) assertTaskFits(student.tokenizer, parts.keptTask.task, student.label);
    for (const set of [{ task, teacher }, ...routes]) {
      assertRunFits(device, student, set.teacher, set.task, options, parts.memoryBudgetBytes);
      // A teacher that samples (sft) and is known only from its graph: what its folder lacks is said before the run starts.
      if (OBJECTIVE_DEFINITIONS[options.objective].teacherMaySample && !set.teacher.config) graphContextOf(set.teacher);
    }
    let trainer: Trainer;
    const routed = routes.map((r) => r.task.name);
    let state: RunState = { step: 0, promptCursor: 0, flops: { studentSampling: 0, teacherScoring: 0, training: 0 }, options, ...(routed.length > 0 ? { routes: routed } : {}) };
    if (parts.checkpoint) {
      const restored = await restoreCheckpoint(device, parts.checkpoint);
      trainer = restored.trainer;
      const run = restored.run as RunState | undefined;
      if (!run || typeof run.step !== 'number') {
        trainer.destroy();
        throw new DistillError('the checkpoint has no distillation run state');
      }
      const saved = run.routes ?? [];
      if (saved.join(',') !== routed.join(',')) {
        trainer.destroy();
        const said = (names: string[]) => (names.length > 0 ? `routes ${names.join(', ')}` : 'routes no task');
        throw new DistillError(`the checkpoint's run ${said(saved)} and this one ${said(routed)}: resume it with the same routes, in the same order (its prompt stream depends on them)`);
      }
      state = { ...run, options: { ...run.options, ...parts.options } };
    } else {
      trainer = await Trainer.create(device, student.config, student.weights, trainerOptions(options));
    }
    const decoder = await openSamplingSession(device, student.config, student.family.buildDecoder(student.config, { kind: 'inputs' }), `${student.label} (live weights)`);
    const scoring = await openScoringSession(device, teacher.onnx, teacher.onnxLabel);
    const routeSets: Omit<PromptSet, 'params'>[] = [];
    try {
      for (const r of routes) routeSets.push({ ...r, scoring: await openScoringSession(device, r.teacher.onnx, r.teacher.onnxLabel) });
    } catch (e) {
      for (const r of routeSets) await r.scoring.release();
      throw e;
    }
    return new DistillRun(device, trainer, decoder, scoring, student, teacher, task, state, parts.keptTask ?? null, routeSets);
  }

  /**
   * The next B training prompts of the seeded stream. With routes, the stream's n-th prompt is
   * set n mod S's prompt ⌊n / S⌋ (S sets, the main task first): every step draws from each set in
   * turn, and a checkpoint's cursor resumes it exactly. One set: the task's stream as it was.
   */
  private nextPrompts(): RoutedPrompt[] {
    const { batchPrompts, seed } = this.state.options;
    const S = this.sets.length;
    const prompts = Array.from({ length: batchPrompts }, (_, i) => {
      const n = this.state.promptCursor + i;
      const set = n % S;
      return { text: this.sets[set].task.trainPrompt(seed, Math.floor(n / S)), set };
    });
    this.state.promptCursor += batchPrompts;
    return prompts;
  }

  private encode(text: string, set = 0): number[] {
    return this.tokenizer.encode(text, { addSpecialTokens: !this.sets[set].task.rendered });
  }

  /** The teacher's prompt ids of each prompt (its own rendering), or null when it reads the student's. */
  private teacherPromptIds(prompts: string[], set = 0): number[][] | null {
    const task = this.sets[set].task;
    const teacherPrompt = task.teacherPrompt?.bind(task);
    return teacherPrompt ? prompts.map((p) => this.encode(teacherPrompt(p), set)) : null;
  }

  /**
   * `reader`: whose rendering the sampling model reads (sft's teacher samples on its own);
   * `cost`: the sampler's forwards add the token positions they really ran (sampler.ts).
   */
  private async sample(runner: DecoderRunner, routed: RoutedPrompt[], n: number, seed: number, temperature: number, reader: 'student' | 'teacher' = 'student', cost?: { forwardTokens: number }): Promise<Sampled[]> {
    const prompts = routed.map((p) => p.text);
    const promptIds = routed.map((p) => this.encode(p.text, p.set));
    const own = routed.map((p) => this.teacherPromptIds([p.text], p.set)?.[0]);
    const teacherIds = own.some((ids) => ids) ? own.map((ids, i) => ids ?? promptIds[i]) : null;
    const completions = await sampleCompletions(runner, {
      prompts: reader === 'teacher' && teacherIds ? teacherIds : promptIds, n, maxTokens: this.state.options.maxTokens, seed, eosTokenId: this.eos,
      sampling: { temperature, topK: 0, topP: 1 },
      ...(cost ? { cost } : {}),
    });
    const routes = this.sets.length > 1;
    return completions.map((c) => ({
      prompt: prompts[c.promptIndex], promptIds: promptIds[c.promptIndex], completion: c,
      ...(teacherIds ? { teacherPromptIds: teacherIds[c.promptIndex] } : {}),
      ...(routes ? { set: routed[c.promptIndex].set } : {}),
    }));
  }

  /**
   * The step's completions sampled by the teachers (sft, gkd's teacher steps): each set's prompts
   * by its own teacher, on its rendering; the seed moves by the set so no two sets share a stream
   * (one set: the same call as before). Returns the samples in the step's prompt order (each
   * completion's promptIndex is its prompt's place in the step) and the sampling FLOPs.
   */
  private async teacherSamples(prompts: RoutedPrompt[], n: number, seed: number, temperature: number): Promise<{ samples: Sampled[]; flops: number }> {
    if (this.sets.length === 1) {
      const cost = { forwardTokens: 0 };
      const samples = await this.sample(await this.teacherSampler(), prompts, n, seed, temperature, 'teacher', cost);
      return { samples, flops: 2 * this.pTeacher * cost.forwardTokens };
    }
    const samples: Sampled[] = [];
    let flops = 0;
    for (let set = 0; set < this.sets.length; set++) {
      const at = prompts.flatMap((p, i) => (p.set === set ? [i] : []));
      if (at.length === 0) continue;
      const cost = { forwardTokens: 0 };
      const own = await this.sample(await this.teacherSampler(set), at.map((i) => prompts[i]), n, seed + 7919 * set, temperature, 'teacher', cost);
      flops += 2 * this.sets[set].params * cost.forwardTokens;
      samples.push(...own.map((s) => ({ ...s, completion: { ...s.completion, promptIndex: at[s.completion.promptIndex] } })));
    }
    samples.sort((a, b) => a.completion.promptIndex - b.completion.promptIndex || a.completion.sample - b.completion.sample);
    return { samples, flops };
  }

  /**
   * The teacher's forward over the samples, logits at the student's packed rows of `sequences`.
   * Each sample on its own prompt when the teacher reads its own rendering: then the completion
   * rows are copied into the student's layout (every other row zero and weighted 0, so never
   * read); else the student's sequences themselves, whose logits already line up.
   */
  private async teacherLogits(samples: Sampled[], sequences: TrainSequence[]): Promise<TeacherLogits> {
    if (this.sets.length > 1) return this.routedTeacherLogits(samples, sequences);
    const own = samples.some((s) => s.teacherPromptIds && !sameIds(s.teacherPromptIds, s.promptIds));
    if (!own) {
      const f = await forwardLogits(this.teacherScoring, sequences.map((s) => s.tokens), 0, this.device);
      const tokens = sequences.reduce((a, s) => a + s.tokens.length, 0);
      return { logits: f.logits.gpuBuffer as GPUBuffer, vocab: f.vocab, tokens, flops: 2 * this.pTeacher * tokens, dispose: () => f.logits.dispose() };
    }
    const teacherPrompts = samples.map((s) => s.teacherPromptIds ?? s.promptIds);
    const f = await forwardLogits(this.teacherScoring, samples.map((s, b) => [...teacherPrompts[b], ...s.completion.tokens]), 0, this.device);
    let logits: GPUBuffer;
    try {
      logits = await alignTeacherLogits(this.device, {
        teacher: f.logits.gpuBuffer as GPUBuffer,
        teacherWidth: f.width,
        studentWidth: Math.max(...sequences.map((s) => s.tokens.length)),
        vocab: f.vocab,
        // Position P−1+i predicts completion token i, in both layouts (see sequences()).
        sequences: samples.map((s, b) => ({ teacherStart: teacherPrompts[b].length - 1, studentStart: s.promptIds.length - 1, rows: s.completion.tokens.length })),
      });
    } finally {
      // The copy is queued before anything that could reuse ORT's buffer.
      f.logits.dispose();
    }
    const tokens = samples.reduce((a, s, b) => a + teacherPrompts[b].length + s.completion.tokens.length, 0);
    return { logits, vocab: f.vocab, tokens, flops: 2 * this.pTeacher * tokens, dispose: () => logits.destroy() };
  }

  /**
   * A run with routes: each teacher's forward reads the samples of its own set (on its rendering
   * when it has one, else the student's sequence), and its completion rows land at those samples'
   * packed rows of the student's layout (alignTeacherParts); every other row is zero and weighted
   * 0, as on the chat path. Every teacher shares the student's tokenizer (checked at create), so
   * their logits have one vocabulary; each forward's FLOPs count its own teacher's parameters.
   */
  private async routedTeacherLogits(samples: Sampled[], sequences: TrainSequence[]): Promise<TeacherLogits> {
    const forwards: { f: Awaited<ReturnType<typeof forwardLogits>>; at: number[]; prompts: number[][] }[] = [];
    let tokens = 0;
    let flops = 0;
    try {
      for (let set = 0; set < this.sets.length; set++) {
        const at = samples.flatMap((s, b) => ((s.set ?? 0) === set ? [b] : []));
        if (at.length === 0) continue;
        const prompts = at.map((b) => samples[b].teacherPromptIds ?? samples[b].promptIds);
        const ids = at.map((b, j) => [...prompts[j], ...samples[b].completion.tokens]);
        forwards.push({ f: await forwardLogits(this.sets[set].scoring, ids, 0, this.device), at, prompts });
        const read = ids.reduce((a, s) => a + s.length, 0);
        tokens += read;
        flops += 2 * this.sets[set].params * read;
      }
      const vocab = forwards[0].f.vocab;
      const other = forwards.find((x) => x.f.vocab !== vocab);
      if (other) throw new DistillError(`the teachers' logits have different vocabularies (${vocab} and ${other.f.vocab} entries): route only to teachers whose output has the student's vocabulary`);
      const logits = await alignTeacherParts(this.device, {
        studentWidth: Math.max(...sequences.map((s) => s.tokens.length)),
        studentSequences: samples.length,
        vocab,
        // Position P−1+i predicts completion token i, in both layouts (see sequences()).
        parts: forwards.map(({ f, at, prompts }) => ({
          teacher: f.logits.gpuBuffer as GPUBuffer,
          teacherWidth: f.width,
          students: at,
          sequences: at.map((b, j) => ({ teacherStart: prompts[j].length - 1, studentStart: samples[b].promptIds.length - 1, rows: samples[b].completion.tokens.length })),
        })),
      });
      return { logits, vocab, tokens, flops, dispose: () => logits.destroy() };
    } finally {
      // The copies are queued before anything that could reuse ORT's buffers.
      for (const { f } of forwards) f.logits.dispose();
    }
  }

  /** sft's teacher sampler: the family's decoder layout, or for a model of no known family the KV layout its graph declares. */
  /** `set`: whose teacher (a route's own, opened at its first teacher-sampled step). */
  private async teacherSampler(set = 0): Promise<DecoderRunner> {
    if (set > 0) {
      const s = this.sets[set];
      if (!s.runner) {
        const opened = await openTeacherSampler(this.device, s.teacher);
        s.decoder = opened.decoder;
        s.runner = opened.runner;
      }
      return s.runner;
    }
    if (this.teacherRunner) return this.teacherRunner;
    const opened = await openTeacherSampler(this.device, this.teacher);
    this.teacherDecoder = opened.decoder;
    return (this.teacherRunner = opened.runner);
  }

  private text(c: Completion): string {
    return this.tokenizer.decode(c.tokens, { skipSpecialTokens: true });
  }

  /** Sequences of prompt + completion with per-token weights 1/(completion tokens of the step) on the completion. */
  private sequences(samples: Sampled[]): { sequences: TrainSequence[]; completionTokens: number } {
    const completionTokens = samples.reduce((a, s) => a + s.completion.tokens.length, 0);
    const sequences = samples.map((s) => {
      const tokens = [...s.promptIds, ...s.completion.tokens];
      const P = s.promptIds.length;
      // Position t predicts token t+1: completion token i sits at P+i, predicted from P−1+i.
      const weights = tokens.map((_, t) => (t >= P - 1 && t < tokens.length - 1 ? 1 / completionTokens : 0));
      const oldLogprobs = tokens.map((_, t) => (t >= P - 1 && t < tokens.length - 1 ? s.completion.logprobs[t - P + 1] : 0));
      return { tokens, weights, oldLogprobs };
    });
    return { sequences, completionTokens };
  }

  /** One step of the run's objective. */
  async trainStep(): Promise<StepMetrics> {
    const t0 = performance.now();
    const o = this.state.options;
    const prompts = this.nextPrompts();
    const seed = o.seed * 1_000_003 + this.state.step;
    const flops = this.state.flops;
    const definition = OBJECTIVE_DEFINITIONS[o.objective];
    let samples: Sampled[];
    // Sampling costs the positions the decoder really ran with its KV cache: the padded prompts
    // once, then one per row at each decode step until every row has finished.
    const cost = { forwardTokens: 0 };
    const sampler = definition.sampler(this.state.step, o);
    if (sampler === 'teacher') {
      // Each prompt set's teacher samples its own prompts (one set: the main teacher, as always).
      const sampled = await this.teacherSamples(prompts, o.groupSize, seed, o.temperature);
      samples = sampled.samples;
      flops.teacherScoring += sampled.flops;
    } else {
      samples = await this.sample(this.studentRunner, prompts, o.groupSize, seed, o.temperature, 'student', cost);
      flops.studentSampling += 2 * this.pStudent * cost.forwardTokens;
    }
    // Without a verifier (a prompt set) there is no reward; objectives that need one were refused at create.
    // Each sample is verified by its own set's task: rewards only when every set has a verifier.
    const verifiers = this.sets.map((s) => s.task.verify?.bind(s.task));
    const verify = verifiers.every((v) => v !== undefined);
    const rewards: number[] = verify ? samples.map((s) => (verifiers[s.set ?? 0]!(s.prompt, this.text(s.completion)).correct ? 1 : 0)) : [];
    const { sequences, completionTokens } = this.sequences(samples);
    const realTokens = sequences.reduce((a, s) => a + s.tokens.length, 0);
    // The teacher's forward over every sample (all objectives: its KL is every run's yardstick),
    // each on its own rendering when it has one.
    const teacher = await this.teacherLogits(samples, sequences);
    // Counted only where the method needs it (OPD), on the tokens the teacher read; for sft and rl it only feeds the metrics.
    if (definition.teacherForwardCounts) flops.teacherScoring += teacher.flops;
    let report: StepReport;
    let sampledKL = 0;
    let reverseKL = 0;
    let entropy = 0;
    const topK = diagnosticTopK(o);
    const agreement = { teacherMass: 0, studentMass: 0, overlap: 0 };
    try {
      const teacherBuffer = teacher.logits;
      // The student's one forward of the step: the divergences against the teacher come from it,
      // and the loss gradient and backward run on its activations.
      const div = await this.trainer.divergencesAgainst(sequences, teacherBuffer, { temperature: o.temperature, teacherVocab: teacher.vocab, topK });
      const rows = div.rows;
      let n = 0;
      for (const r of rows) {
        reverseKL += r.reverseKL;
        entropy += r.studentEntropy;
        agreement.teacherMass += r.topK!.teacherMass;
        agreement.studentMass += r.topK!.studentMass;
        agreement.overlap += r.topK!.overlap;
        n++;
      }
      for (const key of ['teacherMass', 'studentMass', 'overlap'] as const) agreement[key] /= Math.max(1, n);
      // k_t from the sampler's log-probs (π_old) and the teacher's log-prob of the same token.
      const k = sequences.map((s, b) => s.tokens.map((_, t) => (s.weights[t] !== 0 ? s.oldLogprobs![t] - div.teacherLogprob(b, t) : 0)));
      for (let b = 0; b < sequences.length; b++) for (let t = 0; t < k[b].length; t++) if (sequences[b].weights[t] !== 0) sampledKL += k[b][t];
      reverseKL /= Math.max(1, n);
      entropy /= Math.max(1, n);
      sampledKL /= Math.max(1, completionTokens);
      const train = definition.train({
        options: o, sequences, sampledKL: k, rewards,
        promptIndex: samples.map((s) => s.completion.promptIndex),
        teacher: { logits: teacherBuffer, vocab: teacher.vocab },
      });
      report = await this.trainer.trainStep([train.sequences], train.objective, { forward: div.forward });
    } finally {
      teacher.dispose();
    }
    flops.training += 6 * this.pStudent * realTokens;
    this.state.step++;
    return {
      step: this.state.step,
      objective: o.objective,
      sampler,
      applied: report.applied,
      ...(report.problem ? { problem: report.problem } : {}),
      sampledKL, reverseKL, studentEntropy: entropy,
      meanRatio: report.meanRatio, ratioStd: report.ratioStd,
      loss: report.loss, ...lossRange(report), gradNorm: report.gradNorm, lr: report.lr,
      topkK: topK, teacherTopkMass: agreement.teacherMass, studentTopkMass: agreement.studentMass, topkOverlap: agreement.overlap,
      ...(verify ? { reward: rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length) } : {}),
      tokensSampled: completionTokens,
      flops: { ...flops, total: flops.studentSampling + flops.teacherScoring + flops.training },
      wallMs: performance.now() - t0,
    };
  }

  /**
   * Greedy answers to the held-out prompts (all in one batch) and their mean exact reverse KL and
   * sampled KL (log π_student − log π_teacher of each token written) against the teacher; with a
   * verifier (a built-in task) their accuracy (evaluateGreedy, the path every evaluation takes),
   * without one (a prompt set) none; the kept task's accuracy.
   */
  async evaluate(count = this.state.options.evalPrompts): Promise<EvalMetrics> {
    const maxTokens = this.state.options.maxTokens;
    let verified: FolderEvaluation | null = null;
    let samples: GreedySample[];
    if (this.task.verify) {
      const greedy = await evaluateGreedy(this.studentRunner, this.tokenizer, this.eos, this.task, count, maxTokens, count);
      verified = greedy.evaluation;
      samples = greedy.samples;
    } else {
      const prompts = this.task.evalPrompts(count);
      samples = await greedyAnswers(this.studentRunner, this.tokenizer, this.eos, prompts, maxTokens, Math.max(1, prompts.length), this.task.rendered);
    }
    const teacherIds = this.teacherPromptIds(samples.map((s) => s.prompt));
    if (teacherIds) samples = samples.map((s, i) => ({ ...s, teacherPromptIds: teacherIds[i] }));
    const { sequences } = this.sequences(samples);
    const teacher = await this.teacherLogits(samples, sequences);
    const probeCount = Math.min(this.state.options.probes ?? 0, samples.length);
    const probes: ProbeHeatmap[] = [];
    let kl = 0;
    let sampled = 0;
    let n = 0;
    try {
      const div = await this.trainer.divergencesAgainst(sequences, teacher.logits, { temperature: 1, teacherVocab: teacher.vocab });
      for (const r of div.rows) {
        kl += r.reverseKL;
        sampled += r.studentLogprob - r.teacherLogprob;
        n++;
      }
      const rows = rowsByIndex(div.rows);
      for (let i = 0; i < probeCount; i++) probes.push(probeHeatmap(i, 'greedy', samples[i], i, div.forward.packed.width, rows, this.probeReader()));
    } finally {
      teacher.dispose();
    }
    if (probeCount > 0) {
      // The first evaluation's answers become the probes' fixed completions for the whole run.
      this.state.probeAnswers ??= samples.slice(0, probeCount).map((s) => ({ prompt: s.prompt, tokens: [...s.completion.tokens] }));
      probes.unshift(...(await this.scoreFixedProbes(samples.slice(0, probeCount))));
    }
    const f = this.state.flops;
    let kept: EvalMetrics['kept'];
    if (this.keptTask) {
      const k = await evaluateRunner(this.studentRunner, this.tokenizer, this.eos, this.keptTask.task, count, this.keptTask.maxTokens);
      kept = { task: k.task, accuracy: k.accuracy, correct: k.correct, prompts: k.prompts, examples: k.examples.slice(0, 8) };
    }
    const examples = verified ? verified.examples.slice(0, 8) : samples.slice(0, 8).map((s) => ({ prompt: s.prompt, completion: this.text(s.completion) }));
    const routed: RoutedEval[] = [];
    for (let set = 1; set < this.sets.length; set++) routed.push(await this.evaluateRoute(set, count));
    return {
      step: this.state.step,
      ...(verified ? { accuracy: verified.accuracy, correct: verified.correct } : {}),
      prompts: samples.length,
      reverseKL: kl / Math.max(1, n),
      sampledKL: sampled / Math.max(1, n),
      flopsTotal: f.studentSampling + f.teacherScoring + f.training,
      examples,
      ...(kept ? { kept } : {}),
      ...(routed.length > 0 ? { routed } : {}),
      ...(probes.length > 0 ? { probes } : {}),
    };
  }

  /**
   * A route's held-out evaluation: the student's greedy answers to its task's first `count` eval
   * prompts, their accuracy where the task has a verifier, and their mean exact reverse KL and
   * sampled KL against the route's own teacher.
   */
  private async evaluateRoute(set: number, count: number): Promise<RoutedEval> {
    const { task, teacher, label } = this.sets[set];
    const maxTokens = this.state.options.maxTokens;
    let verified: FolderEvaluation | null = null;
    let greedy: GreedySample[];
    if (task.verify) {
      const g = await evaluateGreedy(this.studentRunner, this.tokenizer, this.eos, task, count, maxTokens, count);
      verified = g.evaluation;
      greedy = g.samples;
    } else {
      const prompts = task.evalPrompts(count);
      greedy = await greedyAnswers(this.studentRunner, this.tokenizer, this.eos, prompts, maxTokens, Math.max(1, prompts.length), task.rendered);
    }
    const teacherIds = this.teacherPromptIds(greedy.map((s) => s.prompt), set);
    const samples: Sampled[] = greedy.map((s, i) => ({ ...s, set, ...(teacherIds ? { teacherPromptIds: teacherIds[i] } : {}) }));
    let kl = 0;
    let sampled = 0;
    let n = 0;
    if (samples.length > 0) {
      const { sequences } = this.sequences(samples);
      const scored = await this.teacherLogits(samples, sequences);
      try {
        const div = await this.trainer.divergencesAgainst(sequences, scored.logits, { temperature: 1, teacherVocab: scored.vocab });
        for (const r of div.rows) {
          kl += r.reverseKL;
          sampled += r.studentLogprob - r.teacherLogprob;
          n++;
        }
      } finally {
        scored.dispose();
      }
    }
    return {
      label, task: task.name, teacher: teacher.label, prompts: samples.length,
      ...(verified ? { accuracy: verified.accuracy, correct: verified.correct } : {}),
      reverseKL: kl / Math.max(1, n), sampledKL: sampled / Math.max(1, n),
      examples: verified ? verified.examples.slice(0, 8) : samples.slice(0, 8).map((s) => ({ prompt: s.prompt, completion: this.text(s.completion) })),
    };
  }

  private probeReader(): ProbeReader {
    const verify = this.task.verify;
    return {
      tokenText: (id) => this.tokenizer.decode([id], { skipSpecialTokens: false }),
      text: (ids) => this.tokenizer.decode(ids, { skipSpecialTokens: true }),
      ...(verify ? { verify: (p: string, c: string) => verify(p, c) } : {}),
    };
  }

  /** The probes' fixed completions scored against the teacher by the student as it is now. */
  private async scoreFixedProbes(greedy: Sampled[]): Promise<ProbeHeatmap[]> {
    const fixed: Sampled[] = [];
    (this.state.probeAnswers ?? []).forEach((a, i) => {
      const g = greedy[i];
      // A probe whose prompt is not the i-th held-out prompt any more (never, for a fixed task) is skipped, not misread.
      if (!g || g.prompt !== a.prompt || a.tokens.length === 0) return;
      fixed.push({ ...g, completion: { promptIndex: i, sample: 0, tokens: a.tokens, logprobs: a.tokens.map(() => 0), finish: 'length' } });
    });
    if (fixed.length === 0) return [];
    const { sequences } = this.sequences(fixed);
    const teacher = await this.teacherLogits(fixed, sequences);
    try {
      const div = await this.trainer.divergencesAgainst(sequences, teacher.logits, { temperature: 1, teacherVocab: teacher.vocab });
      const rows = rowsByIndex(div.rows);
      return fixed.map((s, b) => probeHeatmap(s.completion.promptIndex, 'fixed', s, b, div.forward.packed.width, rows, this.probeReader()));
    } finally {
      teacher.dispose();
    }
  }

  /** The trainer's tensors and the run's state, as one safetensors file. */
  checkpoint(): Promise<Uint8Array> {
    return saveCheckpoint(this.trainer, this.state);
  }

  /** The current student as a Hugging Face folder (files by relative path). */
  async exportStudent(extraConfig: Record<string, unknown> = {}): Promise<Map<string, Uint8Array>> {
    return trainedStudentFolder(this.student, await this.trainer.readWeights(), extraConfig);
  }

  /**
   * A LoRA run's adapter as PEFT saves it (adapter_config.json, adapter_model.safetensors; files
   * by relative path), or null when the run trains every weight. `baseModel` is what the adapter
   * names as its base (base_model_name_or_path): by default the student folder's name.
   */
  exportAdapter(baseModel?: string): Promise<Map<string, Uint8Array> | null> {
    return trainedAdapterFolder(this.student, this.trainer, baseModel);
  }

  async release(): Promise<void> {
    await this.studentDecoder.session.release();
    await this.teacherScoring.release();
    await this.teacherDecoder?.session.release();
    for (const r of this.sets.slice(1)) {
      await r.scoring.release();
      await r.decoder?.session.release();
    }
    this.trainer.destroy();
  }
}

/**
 * A trained student as a Hugging Face folder (files by relative path): the trained weights (a
 * LoRA run's merged, W + s·A·B), with the student folder's tokenizer, generation config and its
 * own config.json fields (task hints…) under the family's (workers/models/folder.ts).
 */
export function trainedStudentFolder(student: ModelFolder, weights: ModelParams, extraConfig: Record<string, unknown> = {}): Map<string, Uint8Array> {
  return trainedFolderFiles(student, weights, extraConfig);
}

/**
 * The LoRA adapter a trainer of `student` holds, as PEFT's two files (workers/train/peft-adapter.ts),
 * or null without LoRA. PEFT records the base as it was loaded; the lab names the student folder.
 */
export async function trainedAdapterFolder(student: ModelFolder, trainer: Trainer, baseModel = folderName(student.label)): Promise<Map<string, Uint8Array> | null> {
  const adapter = await trainerLoraAdapter(trainer);
  return adapter && peftAdapterFiles(trainer.family.paramSpecs(trainer.config), adapter, baseModel);
}

/** A folder's name from its label: "runs/x/student/" and "https://host/models/llama/" → "student", "llama". */
export function folderName(label: string): string {
  const parts = label.split(/[\\/]/).filter((p) => p.length > 0);
  return parts[parts.length - 1] ?? label;
}

/**
 * The memory check of a run, before anything is allocated: the student's trainer, sampler and
 * KV cache for the larger of a step's B × G sequences and an evaluation's prompts, each of the
 * longest prompt seen plus max tokens, and the teacher's scoring of as many, each of the longer
 * of the two prompts (the student's or the teacher's own rendering) plus max tokens. Throws
 * ModelTooLargeError naming what does not fit and what to change, or a DistillError when the
 * teacher's rendering and max tokens run past the teacher's positions.
 */
function assertRunFits(device: GPUDevice, student: ModelFolder, teacher: ModelFolder, task: LabTask, o: DistillOptions, budgetBytes?: number): void {
  const config = student.config!;
  // A task's prompts are alike in length: the first step's and (up to 64 of) the evaluation's.
  const prompts = [...task.evalPrompts(Math.min(o.evalPrompts, 64)), ...Array.from({ length: Math.min(o.batchPrompts, 64) }, (_, i) => task.trainPrompt(o.seed, i))];
  const encoded = (p: string) => student.tokenizer.encode(p, { addSpecialTokens: !task.rendered }).length;
  const longest = Math.max(...prompts.map(encoded));
  const sequence = Math.min(config.nPositions, longest + o.maxTokens);
  const teacherPrompt = task.teacherPrompt?.bind(task);
  const longestTeacher = teacherPrompt ? Math.max(...prompts.map((p) => encoded(teacherPrompt(p)))) : longest;
  if (teacherPrompt && teacher.config && longestTeacher + o.maxTokens > teacher.config.nPositions) {
    throw new DistillError(
      `the teacher ${teacher.label} reads its own rendering of the prompts, up to ${longestTeacher} tokens, and with ${o.maxTokens} new tokens that is more than its ${teacher.config.nPositions} positions: lower max tokens to ${Math.max(0, teacher.config.nPositions - longestTeacher)} or less, or shorten the prompts`,
    );
  }
  const teacherSequence = teacherPrompt ? Math.max(longest, longestTeacher) + o.maxTokens : sequence;
  const stepBatch = o.batchPrompts * o.groupSize;
  const batch = Math.max(stepBatch, o.evalPrompts);
  const batchWhat = stepBatch >= o.evalPrompts ? `${stepBatch} sequences a step (${o.batchPrompts} prompts × ${o.groupSize} completions)` : `${o.evalPrompts} sequences an evaluation (its held-out prompts)`;
  const shaderF16 = device.features.has('shader-f16');
  checkTrainingFits(config, { batch, sequence, loraRank: o.loraRank, f16Base: o.loraRank > 0 && shaderF16 }, device.limits, { budgetBytes, shaderF16, what: student.label, batchWhat });
  if (teacher.config) checkModelFits(teacher.config, batch, teacherSequence, device.limits, teacher.label);
}

/** A model's parameters (its FLOPs per token): its family's count, else what its config.json says. */
function parameterCount(m: ModelFolder): number {
  return m.family && m.config ? m.family.countParameters(m.config) : Number(m.rawConfig.num_parameters ?? 0);
}

/** A teacher's sampler: the family's decoder layout, or for a model of no known family the KV layout its graph declares. */
async function openTeacherSampler(device: GPUDevice, t: ModelFolder): Promise<{ decoder: DecoderSession; runner: DecoderRunner }> {
  if (t.config) {
    const decoder = await openSamplingSession(device, t.config, t.onnx, t.onnxLabel);
    return { decoder, runner: decoderRunner(t.config, decoder) };
  }
  graphContextOf(t);
  const decoder = await openGraphSamplingSession(device, t.onnx, t.onnxLabel);
  return { decoder, runner: decoderRunner(graphSamplingConfig(t, decoder.graphVocabSize), decoder) };
}

/**
 * Routes a run can take: each to a task other than the main one and the other routes', and each
 * teacher sharing the student's tokenizer (its log-probs are read token for token at the
 * student's rows). Throws a DistillError naming the route.
 */
function assertRoutes(student: ModelFolder, task: LabTask, routes: readonly PromptRoute[]): void {
  const seen = new Set([task.name]);
  for (const r of routes) {
    if (r.task.name === task.name) throw new DistillError(`the ${r.label} route's task ${r.task.name} is the run's main task, which the main teacher scores: route only other tasks`);
    if (seen.has(r.task.name)) throw new DistillError(`the task ${r.task.name} is routed twice: route each task to one teacher`);
    seen.add(r.task.name);
    try {
      assertSameTokenizer(student.tokenizer, r.teacher.tokenizer);
    } catch (e) {
      if (!(e instanceof TokenizerMismatchError)) throw e;
      throw new DistillError(`the ${r.label} route's teacher ${r.teacher.label} does not share the student's tokenizer (${e.message}): route to a teacher of the student's tokenizer`);
    }
  }
}

/** A task whose prompts the student's tokenizer cannot write (they encode to <unk>) cannot run. */
function assertTaskFits(tokenizer: LabTokenizer, task: LabTask, label: string): void {
  const teacherPrompt = task.teacherPrompt?.bind(task);
  const prompts = [...task.evalPrompts(4), task.trainPrompt(0, 0)];
  for (const prompt of teacherPrompt ? [...prompts, ...prompts.map(teacherPrompt)] : prompts) {
    if (unwritableCharacters(tokenizer, prompt).length > 0) {
      throw new DistillError(
        `the ${task.name} task cannot run on ${label}: its tokenizer has no token for some characters of "${prompt}" (they become ${tokenizer.specialTokens.unk ?? 'no token at all'}); choose a task the model was built for, or a model whose vocabulary has them`,
      );
    }
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The k of a step's top-k diagnostics: the run's top-k knob (the topk objective's k; 16 unless
 * set), at most the divergence kernels' 20 (MAX_TOP_K), for every objective.
 */
function diagnosticTopK(o: DistillOptions): number {
  // Options restored from a checkpoint written before the knob existed may lack it: its default then.
  return Math.min(Number.isInteger(o.topK) ? o.topK : 16, MAX_TOP_K);
}

/** The smallest and largest per-token loss of the step's completion tokens (the trainer's `tokenLosses`). */
function lossRange(report: StepReport): { lossMin: number; lossMax: number } {
  let lossMin = Infinity;
  let lossMax = -Infinity;
  for (const m of report.microBatches) {
    for (const l of m.tokenLosses) {
      lossMin = Math.min(lossMin, l);
      lossMax = Math.max(lossMax, l);
    }
  }
  // No scored token (cannot happen in a run: every completion has one): say nothing rather than ±Infinity.
  return lossMin <= lossMax ? { lossMin, lossMax } : { lossMin: NaN, lossMax: NaN };
}

function trainerOptions(o: DistillOptions): TrainerOptions {
  return {
    adamw: { maxGradNorm: o.maxGradNorm, weightDecay: o.weightDecay },
    schedule: { lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.totalSteps, schedule: o.schedule },
    ...(o.loraRank > 0 ? { lora: { rank: o.loraRank } } : {}),
    seed: o.seed,
  };
}

export type { Gpt2Config };
