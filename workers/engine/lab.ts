/**
 * The lab engine: owns the one GPUDevice, the onnxruntime-web setup on it, and answers the
 * protocol's commands with events. It has no DOM: the browser worker and the engine tests drive
 * this same class, each passing its own `gpu` (navigator.gpu or Dawn's) and `emit`. The CLI does
 * not go through it: `opd-lab train` drives the same run loop (distill/loop.ts) that this
 * engine's training runs on, and `sample` / `score` call the same functions as its inference
 * commands (engine/inference.ts).
 */
import type { LabCommand, LabError, LabEvent, RuntimeSummary, AdapterSummary, ModelRole } from '../protocol';
import { filesSource, ModelFolderError, urlSource, type ModelSource } from '../models/source';
import { compareTokenizers, TokenizerMismatchError, UnwritableTextError } from '../models/tokenizer';
import { ModelTooLargeError } from '../models/memory';
import { isOnnxDtype, ONNX_DTYPES, type OnnxDtype } from '../models/folder';
import { SamplingError } from '../sampling/sampler';
import { ModelFileError } from '../models/decoder-session';
import { drawTaskPrompt, folderTask, loadModel, releaseModel, sampleText, scoreText, taskVerdict, type LoadedModel } from './inference';
import { scoreChat, userMessage } from './chat';
import { ChatTemplateError } from '../chat/render';
import { renderFolderChat } from '../chat/template';
import { acquireDevice, watchDeviceLoss } from '../gpu/device';
import { countBuffers, type BufferCount } from '../gpu/buffer-count';
import { configureOrt, ort, ORT_VERSION } from '../ort/runtime';
import { runInteropCheck } from '../selfcheck/interop';
import { runDivergenceSelfCheck } from '../kernels/divergence/selfcheck';
import { checkPromptSet, Training } from './training';
import { hubSource, type HubProgress } from '../models/hub/source';
import { hubIdProblem } from '../models/hub/id';
import { browserCache } from '../models/hub/browser-cache';
import type { ModelCache } from '../models/hub/cache';
import { exportForCluster } from './cluster';

export interface LabEngineOptions {
  gpu: GPU | undefined;
  emit: (event: LabEvent) => void;
  crossOriginIsolated: boolean;
  /** False on plain-http pages other than localhost, where browsers hide WebGPU. */
  secureContext?: boolean;
  /** Where `model.load` reads a folder from (default: over HTTP; tests pass folders on disk). */
  openSource?: (url: string) => ModelSource | Promise<ModelSource>;
  /** The model cache Hub ids are read through (default: the browser's Cache API; tests pass their own). */
  modelCache?: () => ModelCache;
  /** The fetch Hub downloads use (default: the global fetch; tests pass their own). */
  fetch?: typeof fetch;
}

/** Progress reports of one file more often than this are dropped (its last one never is). */
const PROGRESS_EVERY_MS = 100;

function describeException(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

export class LabEngine {
  private device: GPUDevice | undefined;
  private adapter: AdapterSummary | undefined;
  private runtime: RuntimeSummary | undefined;
  private lost: LabError | undefined;
  private readonly models: Partial<Record<ModelRole, LoadedModel>> = {};
  private cache: ModelCache | undefined;
  /** GPU work runs one piece at a time; each piece chains onto the one before. */
  private gpuQueue: Promise<unknown> = Promise.resolve();
  /** The GPU buffers alive on the device (memory.report). */
  private bufferCount?: () => BufferCount;
  /** Distillation runs: their loop, their controls and the latest checkpoint. */
  readonly training: Training;

  constructor(private readonly options: LabEngineOptions) {
    this.training = new Training({
      emit: (e) => this.options.emit(e),
      exclusive: (work) => this.exclusive(work),
      describe: (e) => this.requestError(e),
    });
  }

  get gpuDevice(): GPUDevice | undefined {
    return this.device;
  }

  /**
   * Runs `work` once the GPU work queued before it has settled. A training step, a sample
   * request and a score request may be asked for at the same time (the training loop runs while
   * commands keep coming); on the one device they take turns.
   */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.gpuQueue.then(work);
    this.gpuQueue = next.catch(() => undefined);
    return next;
  }

  async handle(command: LabCommand): Promise<void> {
    const requestId = (command as { requestId?: number }).requestId;
    try {
      switch (command.type) {
        case 'init':
          return await this.init(command.requestId, command.ortWasmPaths);
        case 'selfcheck.interop':
          return await this.interop(command.requestId, command.elements);
        case 'selfcheck.divergence':
          return await this.divergenceCheck(command.requestId, command.seed);
        case 'model.load':
          return await this.loadModel(command);
        case 'cache.list':
        case 'cache.delete':
          return await this.cacheCommand(command);
        case 'sample':
          return await this.sample(command);
        case 'score':
          return await this.score(command);
        case 'memory.report': {
          // Where the engine may collect garbage (Chromium with --js-flags=--expose-gc, as the soak
          // benchmark starts it), buffers nothing references are freed first, so what remains is held.
          const gc = (globalThis as { gc?: () => void }).gc;
          if (gc) {
            gc();
            await new Promise((r) => setTimeout(r, 100));
          }
          this.options.emit({ type: 'memory.reported', requestId: command.requestId, gpu: this.bufferCount?.() ?? { buffers: 0, bytes: 0, created: 0 } });
          return;
        }
        case 'task.draw':
          return this.drawTask(command.requestId, command.index);
        case 'train.start': {
          const device = this.requireDevice(command.requestId);
          if (!device) return;
          const error = await this.training.start(command.requestId, device, this.models, command.setup, command.prompts, command.pauseAfter, command.resume);
          return error ? this.fail(command.requestId, error) : undefined;
        }
        case 'prompts.check': {
          const result = checkPromptSet(command.source, command, this.models.student?.folder ?? null, this.models.teacher?.folder ?? null);
          if ('code' in result) return this.fail(command.requestId, result);
          this.options.emit({ type: 'prompts.checked', requestId: command.requestId, summary: result });
          return;
        }
        case 'train.export': {
          const device = this.requireDevice(command.requestId);
          if (!device) return;
          const result = await this.training.export(device, command.what);
          if ('code' in result) return this.fail(command.requestId, result);
          this.options.emit({ type: 'train.exported', requestId: command.requestId, what: command.what, step: result.step, files: result.files });
          return;
        }
        case 'cluster.export': {
          const result = exportForCluster(this.models, command.setup, command.prompts, `the lab, ${new Date().toISOString().slice(0, 10)}`);
          if ('code' in result) return this.fail(command.requestId, result);
          this.options.emit({ type: 'cluster.exported', requestId: command.requestId, files: result.files, targets: result.targets });
          return;
        }
        case 'train.pause':
        case 'train.resume':
        case 'train.step':
        case 'train.stop': {
          const control = command.type === 'train.pause' ? 'pause' : command.type === 'train.resume' ? 'resume' : command.type === 'train.step' ? 'step' : 'stop';
          const error = this.training[control](command.requestId);
          return error ? this.fail(command.requestId, error) : undefined;
        }
        default:
          this.fail(requestId, {
            code: 'bad-command',
            message: `The lab worker does not know the command '${(command as { type?: string }).type}'. The page and the worker are out of step: reload the page.`,
          });
      }
    } catch (e) {
      this.fail(requestId, {
        code: 'internal',
        message: 'Something went wrong inside the lab worker. The details below say where; reloading the page starts afresh.',
        detail: describeException(e),
      });
    }
  }

  private fail(requestId: number | undefined, error: LabError): void {
    this.options.emit({ type: 'error', requestId, error });
  }

  private async init(requestId: number, ortWasmPaths?: string): Promise<void> {
    const { emit } = this.options;
    if (this.device && this.adapter && this.runtime && !this.lost) {
      emit({ type: 'ready', requestId, adapter: this.adapter, runtime: this.runtime });
      return;
    }
    emit({ type: 'progress', requestId, stage: 'Requesting a WebGPU adapter and device', fraction: 0.1 });
    const acquired = await acquireDevice(this.options.gpu, { secure: this.options.secureContext });
    if (!acquired.ok) return this.fail(requestId, acquired.error);
    this.device = acquired.device;
    this.bufferCount = countBuffers(acquired.device);
    this.adapter = acquired.summary;
    this.lost = undefined;
    watchDeviceLoss(acquired.device, (error) => {
      this.lost = error;
      emit({ type: 'device.lost', error });
    });

    emit({ type: 'progress', requestId, stage: 'Starting onnxruntime-web on the shared device', fraction: 0.5 });
    // One wasm thread: the models run on the GPU, and ORT's threaded workers cannot be spawned
    // from inside a bundled module worker.
    configureOrt({ wasmPaths: ortWasmPaths, numThreads: 1 });
    let sharedDevice = false;
    try {
      // A small round trip proves ORT runs on *our* device: it reads a buffer we created.
      const report = await runInteropCheck(ort, acquired.device, 257);
      sharedDevice = report.passed;
    } catch (e) {
      return this.fail(requestId, {
        code: 'ort-init-failed',
        message:
          "onnxruntime-web could not start on the lab's WebGPU device, so no model can run. " +
          'Reload the page; if it persists, check that the page is served by the lab itself (npm start), which provides the runtime files.',
        detail: describeException(e),
      });
    }
    this.runtime = {
      executionProvider: 'webgpu',
      ortVersion: ORT_VERSION,
      sharedDevice,
      crossOriginIsolated: this.options.crossOriginIsolated,
    };
    emit({ type: 'ready', requestId, adapter: this.adapter, runtime: this.runtime });
  }

  private requireDevice(requestId: number): GPUDevice | undefined {
    if (this.lost) {
      this.fail(requestId, this.lost);
      return undefined;
    }
    if (!this.device) {
      this.fail(requestId, { code: 'not-ready', message: 'The lab has no GPU device yet: wait for start-up to finish (or read the message it gave).' });
      return undefined;
    }
    return this.device;
  }

  private async interop(requestId: number, elements = 4099): Promise<void> {
    const device = this.requireDevice(requestId);
    if (!device) return;
    this.options.emit({ type: 'progress', requestId, stage: `Round trip of ${elements} values through WGSL → ORT → WGSL` });
    try {
      const report = await this.exclusive(() => runInteropCheck(ort, device, elements));
      this.options.emit({ type: 'selfcheck.interop.result', requestId, report });
    } catch (e) {
      this.fail(requestId, {
        code: 'interop-failed',
        message: 'The GPU interop check could not complete: our kernels and onnxruntime-web could not exchange buffers on this device.',
        detail: describeException(e),
      });
    }
  }

  private async divergenceCheck(requestId: number, seed = 1): Promise<void> {
    const device = this.requireDevice(requestId);
    if (!device) return;
    this.options.emit({ type: 'progress', requestId, stage: 'Divergence kernels against the float64 reference' });
    try {
      const report = await this.exclusive(() => runDivergenceSelfCheck(device, seed));
      this.options.emit({ type: 'selfcheck.divergence.result', requestId, report });
    } catch (e) {
      this.fail(requestId, {
        code: 'selfcheck-failed',
        message: 'The divergence kernels could not run on this device.',
        detail: describeException(e),
      });
    }
  }

  /** Errors of model work that a person can act on, as values; anything else is rethrown. */
  private requestError(e: unknown): LabError {
    // ModelFileError: a folder's graph the sampler cannot run (e.g. a graph of no known family without its own KV cache).
    if (e instanceof ModelFolderError || e instanceof ModelFileError) return { code: 'model-folder', message: e.message };
    if (e instanceof TokenizerMismatchError || e instanceof UnwritableTextError || e instanceof SamplingError || e instanceof ModelTooLargeError || e instanceof ChatTemplateError) {
      return { code: 'bad-request', message: e.message };
    }
    return { code: 'internal', message: 'The model could not run; the details say why.', detail: describeException(e) };
  }

  private async loadModel(c: Extract<LabCommand, { type: 'model.load' }>): Promise<void> {
    const { requestId, role } = c;
    if ('sameAs' in c) return this.loadSameAs(requestId, role, c.sameAs);
    const from = 'files' in c ? c.label : 'hub' in c ? c.hub : c.url;
    if (c.dtype !== undefined && !isOnnxDtype(c.dtype)) {
      return this.fail(requestId, { code: 'bad-request', message: `'${c.dtype}' is not an ONNX dtype: use one of ${ONNX_DTYPES.join(', ')}.` });
    }
    this.options.emit({ type: 'progress', requestId, stage: `Reading the ${role} model from ${from}` });
    try {
      let source: ModelSource;
      if ('files' in c) source = filesSource(c.files, c.label);
      else if ('url' in c) source = await (this.options.openSource ?? urlSource)(c.url);
      else {
        const problem = hubIdProblem(c.hub);
        if (problem) return this.fail(requestId, { code: 'bad-request', message: problem });
        const cache = this.modelCache();
        if ('code' in cache) return this.fail(requestId, cache);
        source = hubSource(c.hub, {
          endpoint: c.endpoint || undefined,
          token: c.token || undefined,
          cache,
          fetch: this.options.fetch,
          tokenHint: 'in the Models panel',
          endpointHint: 'set in the Models panel',
          onProgress: this.progressOf(requestId, role),
        });
      }
      const model = await loadModel(source, role, { dtype: c.dtype as OnnxDtype | undefined, shaderF16: this.device?.features.has('shader-f16') });
      await releaseModel(this.models[role]);
      this.models[role] = model;
      const other = this.models[role === 'student' ? 'teacher' : 'student'];
      const warnings: string[] = [];
      if (other) {
        // Loading is allowed either way; scoring refuses a mismatch with the same sentence.
        const [student, teacher] = role === 'student' ? [model, other] : [other, model];
        const c = compareTokenizers(student.folder.tokenizer, teacher.folder.tokenizer);
        warnings.push(...c.errors, ...c.warnings);
      }
      this.options.emit({ type: 'model.loaded', requestId, model: model.summary, warnings });
    } catch (e) {
      this.fail(requestId, this.requestError(e));
    }
  }

  /** The sanity check: the folder loaded as `sameAs` loaded as `role` too, with sessions of its own. */
  private async loadSameAs(requestId: number, role: ModelRole, sameAs: ModelRole): Promise<void> {
    const source = this.models[sameAs];
    if (role === sameAs) return this.fail(requestId, { code: 'bad-request', message: `A model cannot be loaded as the ${role} from itself: name the other role.` });
    if (!source) return this.fail(requestId, { code: 'no-model', message: `Load a ${sameAs} first: the sanity check loads the ${sameAs}'s folder as the ${role} too.` });
    const model: LoadedModel = { folder: source.folder, summary: { ...source.summary, role } };
    await releaseModel(this.models[role]);
    this.models[role] = model;
    this.options.emit({ type: 'model.loaded', requestId, model: model.summary, warnings: [] });
  }

  /** The model cache, opened once; a sentence when this browser has none. */
  private modelCache(): ModelCache | LabError {
    try {
      return (this.cache ??= (this.options.modelCache ?? (() => browserCache()))());
    } catch (e) {
      return { code: 'bad-request', message: (e as Error).message };
    }
  }

  /**
   * Streams a Hub download's progress as `model.progress` events: each file's at most every
   * PROGRESS_EVERY_MS, the latest of those held back sent when its time comes (so a stalled
   * download shows the bytes it had), and its last report always at once.
   */
  private progressOf(requestId: number, role: ModelRole): (p: HubProgress) => void {
    const files = new Map<string, { at: number; held: HubProgress | null; timer: ReturnType<typeof setTimeout> | null }>();
    const send = (p: HubProgress) => this.options.emit({ type: 'model.progress', requestId, role, ...p });
    return (p) => {
      const now = Date.now();
      let f = files.get(p.file);
      if (!f) files.set(p.file, (f = { at: -Infinity, held: null, timer: null }));
      const state = f;
      if (p.done || now - state.at >= PROGRESS_EVERY_MS) {
        if (state.timer) clearTimeout(state.timer);
        state.timer = null;
        state.held = null;
        state.at = now;
        send(p);
        return;
      }
      state.held = p;
      state.timer ??= setTimeout(() => {
        state.timer = null;
        if (!state.held) return;
        state.at = Date.now();
        send(state.held);
        state.held = null;
      }, PROGRESS_EVERY_MS - (now - state.at));
    };
  }

  /** Lists the model cache, after forgetting a model when asked to. */
  private async cacheCommand(c: Extract<LabCommand, { type: 'cache.list' | 'cache.delete' }>): Promise<void> {
    const cache = this.modelCache();
    if ('code' in cache) return this.fail(c.requestId, cache);
    if (c.type === 'cache.delete') await cache.deleteModel(c.repo, c.revision);
    const models = (await cache.list()).map((m) => ({ repo: m.repo, revision: m.revision, bytes: m.bytes, files: m.files.map((f) => ({ file: f.file, size: f.size })) }));
    this.options.emit({ type: 'cache.listed', requestId: c.requestId, models, bytes: models.reduce((a, m) => a + m.bytes, 0), where: cache.label });
  }

  private requireModel(requestId: number, role: ModelRole): LoadedModel | undefined {
    const model = this.models[role];
    if (!model) this.fail(requestId, { code: 'no-model', message: `No ${role} model is loaded: load a model folder as the ${role} first.` });
    return model;
  }

  private async sample(c: Extract<LabCommand, { type: 'sample' }>): Promise<void> {
    const device = this.requireDevice(c.requestId);
    const model = device && this.requireModel(c.requestId, 'student');
    if (!device || !model) return;
    try {
      // A chat prompt is the person's text as a user message, in the student's own template.
      const prompt = c.chat ? renderFolderChat(model.folder, userMessage(c.prompt)) : c.prompt;
      const result = await this.exclusive(() => sampleText(
        device,
        model,
        { prompt, addSpecialTokens: !c.chat, n: c.n, maxTokens: c.maxTokens, sampling: { temperature: c.temperature, topK: c.topK, topP: c.topP }, seed: c.seed, forced: c.forced },
        (e, text) =>
          this.options.emit({ type: 'tokens', requestId: c.requestId, completion: e.promptIndex * c.n + e.sample, step: e.step, token: e.token, text, logprob: e.logprob, done: e.done }),
      ));
      // A prompt of the student's own task: each completion judged (right or wrong, and what it should be).
      const task = c.chat ? null : folderTask(model);
      const verdicts = result.completions.map((x) => taskVerdict(task, c.prompt, x.text));
      this.options.emit({
        type: 'sample.result', requestId: c.requestId, ...result, ...(c.chat ? { renderedPrompt: prompt } : {}),
        ...(verdicts.every((v) => v !== null) && verdicts.length ? { verdicts } : {}),
      });
    } catch (e) {
      this.fail(c.requestId, this.requestError(e));
    }
  }

  /** A prompt of the loaded student's task (config.json `task`), with how the task writes things. */
  private drawTask(requestId: number, index?: number): void {
    const student = this.requireModel(requestId, 'student');
    if (!student) return;
    const task = folderTask(student);
    if (!task) {
      return this.fail(requestId, {
        code: 'no-task',
        message: `The student ${student.summary.label} names no built-in task in its config.json ("task"), so there is no task prompt to draw: type a prompt, or load the built-in student.`,
      });
    }
    const drawn = drawTaskPrompt(task, index ?? Math.floor(Math.random() * 2 ** 31));
    this.options.emit({ type: 'task.drawn', requestId, drawn });
  }

  private async score(c: Extract<LabCommand, { type: 'score' }>): Promise<void> {
    const device = this.requireDevice(c.requestId);
    const student = device && this.requireModel(c.requestId, 'student');
    const teacher = student && this.requireModel(c.requestId, 'teacher');
    if (!device || !student || !teacher) return;
    try {
      // Tokenizer warnings were already given when the second model was loaded.
      if (c.chat) {
        const { promptIds, tokens, meanReverseKL, meanSampledKL, chat } = await this.exclusive(() => scoreChat(device, student, teacher, userMessage(c.prompt), c.completion, { topK: c.topK }));
        this.options.emit({ type: 'score.result', requestId: c.requestId, promptIds, tokens, meanReverseKL, meanSampledKL, chat });
        return;
      }
      const { promptIds, tokens, meanReverseKL, meanSampledKL } = await this.exclusive(() => scoreText(device, student, teacher, c.prompt, c.completion, { topK: c.topK }));
      const verdict = taskVerdict(folderTask(student), c.prompt, c.completion);
      this.options.emit({ type: 'score.result', requestId: c.requestId, promptIds, tokens, meanReverseKL, meanSampledKL, ...(verdict ? { verdict } : {}) });
    } catch (e) {
      this.fail(c.requestId, this.requestError(e));
    }
  }
}
