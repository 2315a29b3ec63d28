/**
 * Wires the lab worker to the store: starts the engine, maps its events to UI state, and offers
 * the actions panels call.
 */
import { LabClient, LabRequestError, type CommandWithoutId } from './client';
import { saveBlob } from './save';
import { pickedFolderEntries } from '../../workers/contract/files';
import type { OnnxDtype } from '../../workers/contract/dtypes';
import type { LabEvent, LabEventOf, PromptTextSource, TrainExportKind, TrainSetup } from '../../workers/protocol';
import { usePromptSource } from '../state/promptSource';
import { addProgress, useHub } from '../state/hub';
import { useLab, type InspectState, type ModelRole, type ModelSlot } from '../state/labStore';
import { addEval, addStep, beginRun, useDistillRun } from '../state/distillRun';
import { zipSync } from 'fflate';
import { useClusterExport } from '../state/clusterExport';
import { reportError } from '../components/ErrorBanner';
import { noteModelLoaded, noteRunStarting, openRuns, persistTrainingEvent, recoverFromCrash, recoverFromDeviceLoss } from './runs';
import type { ModelOrigin } from '../../workers/contract/runFile';

let client: LabClient | undefined;

/** The lab worker's client, for actions kept in files of their own (inspectFlow.ts); undefined before start-up. */
export const labClient = (): LabClient | undefined => client;

export function ortWasmPaths(): string {
  return new URL(`${import.meta.env.BASE_URL}ort/`, location.href).href;
}

export async function startLab(): Promise<void> {
  if (client) return;
  void openRuns();
  // A crash of a ready worker is recovered from (runs.ts): restarted, the run offered for resuming.
  client = new LabClient({ onCrash: (error) => recoverFromCrash(error) });
  client.subscribe((event) => {
    switch (event.type) {
      case 'progress':
        if (useLab.getState().phase === 'starting') useLab.setState({ progress: event.stage });
        break;
      case 'device.lost':
        // With a run going, a new worker (a new device) resumes it by itself (runs.ts).
        if (!recoverFromDeviceLoss(event.error)) useLab.setState({ phase: 'lost', fatal: event.error });
        break;
      case 'error':
        // Shown by no panel: an error of the worker itself, or one answering no waiting request.
        if (event.requestId === undefined || !client?.isAwaiting(event.requestId)) reportError(event.error);
        // Errors without a request id come from the worker itself (a crash): nothing can go on.
        if (event.requestId === undefined) useLab.setState({ phase: 'unavailable', fatal: event.error });
        break;
      case 'train.state':
      case 'train.metrics':
      case 'train.eval':
      case 'train.checkpoint':
        routeTrainingEvent(event);
        persistTrainingEvent(event);
        break;
    }
  });
  try {
    const ready = await client.request({ type: 'init', ortWasmPaths: ortWasmPaths() }, ['ready']);
    useLab.setState({ phase: 'ready', adapter: ready.adapter, runtime: ready.runtime, progress: null });
  } catch (e) {
    if (e instanceof LabRequestError) useLab.setState({ phase: 'unavailable', fatal: e.error, progress: null });
    else throw e;
  }
}

export async function runInteropCheck(elements?: number): Promise<void> {
  if (!client) return;
  useLab.setState({ interop: { running: true, report: null, error: null } });
  try {
    const result = await client.request({ type: 'selfcheck.interop', elements }, ['selfcheck.interop.result']);
    useLab.setState({ interop: { running: false, report: result.report, error: null } });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useLab.setState({ interop: { running: false, report: null, error: e.error } });
  }
}

export async function runDivergenceCheck(seed = 1): Promise<void> {
  if (!client) return;
  useLab.setState({ divergence: { running: true, report: null, error: null } });
  try {
    const result = await client.request({ type: 'selfcheck.divergence', seed }, ['selfcheck.divergence.result']);
    useLab.setState({ divergence: { running: false, report: result.report, error: null } });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useLab.setState({ divergence: { running: false, report: null, error: e.error } });
  }
}

function setInspect(change: Partial<InspectState>): void {
  useLab.setState((s) => ({ inspect: { ...s.inspect, ...change } }));
}

function setModel(role: ModelRole, slot: ModelSlot): void {
  useLab.setState((s) => ({ models: { ...s.models, [role]: slot } }));
}

/**
 * Loads a model folder from a URL, from the files of a folder the person picked, or by Hugging
 * Face id (ORG/NAME[@REVISION], from the Hub endpoint set in the page, through the model cache,
 * with its download progress in the hub store), as the dtype given when one is; or, for the
 * sanity check, the model the other role holds (`sameAs`). A failure leaves the model loaded
 * before in place (the worker keeps it until another one has loaded).
 */
export async function loadModel(
  role: ModelRole,
  from: { url: string } | { files: FileList } | { entries: { path: string; file: Blob }[]; label: string } | { hub: string } | { sameAs: ModelRole },
  /** The ONNX variant to run (the loader's dtype picker); none: the engine's default for this adapter. */
  dtype?: OnnxDtype,
): Promise<void> {
  if (!client) return;
  let command: CommandWithoutId;
  if ('sameAs' in from) {
    command = { type: 'model.load', role, sameAs: from.sameAs };
  } else if ('hub' in from) {
    const { endpoint, token } = useHub.getState();
    command = { type: 'model.load', role, hub: from.hub.trim(), endpoint: endpoint.trim() || undefined, ...(token.trim() ? { token: token.trim() } : {}) };
  } else if ('entries' in from) {
    command = { type: 'model.load', role, files: from.entries, label: from.label };
  } else if ('files' in from) {
    const entries = pickedFolderEntries(from.files);
    const first = (from.files[0] as (File & { webkitRelativePath?: string }) | undefined)?.webkitRelativePath?.split('/')[0] ?? 'folder';
    command = { type: 'model.load', role, files: entries, label: `picked folder '${first}'` };
  } else {
    command = { type: 'model.load', role, url: new URL(from.url, location.href).href };
  }
  if (dtype && !('sameAs' in command)) command = { ...command, dtype };
  const previous = useLab.getState().models[role];
  // An earlier download's bar is not this load's (a folder URL or a picked folder shows none).
  useHub.setState((s) => ({ progress: { ...s.progress, [role]: null } }));
  setModel(role, { loading: true, model: null, warnings: [], error: null });
  try {
    const loaded = await client.request(command, ['model.loaded'], (e) => e.type === 'model.progress' && addProgress(e));
    setModel(role, { loading: false, model: loaded.model, warnings: loaded.warnings, error: null });
    noteModelLoaded(role, loaded.model.label, originOf(from));
    if ('hub' in from) void listCachedModels();
    // The warnings compare the two tokenizers: the other slot's were about the model this one replaced.
    const other: ModelRole = role === 'student' ? 'teacher' : 'student';
    const otherSlot = useLab.getState().models[other];
    if (otherSlot.warnings.length) setModel(other, { ...otherSlot, warnings: [] });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    setModel(role, { loading: false, model: previous.model, warnings: previous.warnings, error: e.error });
  }
}

/** How a model was loaded, so a run of it can load it again (a picked folder cannot be reopened by the page). */
function originOf(from: Parameters<typeof loadModel>[1]): ModelOrigin {
  if ('sameAs' in from) return { sameAs: from.sameAs };
  if ('hub' in from) return { hub: from.hub.trim(), ...(useHub.getState().endpoint.trim() ? { endpoint: useHub.getState().endpoint.trim() } : {}) };
  if ('url' in from) return { url: new URL(from.url, location.href).href };
  return { picked: 'label' in from ? from.label : 'a picked folder' };
}

/**
 * Ends the lab worker (crashed, or its device lost) and starts a new one, which gets a new GPU
 * device; it holds no models until they are loaded again.
 */
export async function restartLab(): Promise<void> {
  client?.terminate();
  client = undefined;
  const empty = { loading: false, model: null, warnings: [], error: null };
  useLab.setState({ phase: 'starting', fatal: null, progress: null, models: { student: empty, teacher: { ...empty } } });
  await startLab();
}

/** Reads the model cache's contents into the hub store (the model manager). */
export async function listCachedModels(): Promise<void> {
  await cacheRequest({ type: 'cache.list' });
}

/** Forgets a cached model (one revision); a model loaded from it stays loaded until replaced. */
export async function deleteCachedModel(repo: string, revision: string): Promise<void> {
  await cacheRequest({ type: 'cache.delete', repo, revision });
}

async function cacheRequest(command: Extract<CommandWithoutId, { type: 'cache.list' | 'cache.delete' }>): Promise<void> {
  if (!client) return;
  useHub.setState((s) => ({ cache: { ...s.cache, busy: true, error: null } }));
  try {
    const { models, bytes, where } = await client.request(command, ['cache.listed']);
    useHub.setState({ cache: { listing: { models, bytes, where }, busy: false, error: null } });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useHub.setState((s) => ({ cache: { ...s.cache, busy: false, error: e.error } }));
    // The model manager shows it in the Models panel; elsewhere (a listing after a Hub load) the banner does.
    if (useLab.getState().panel !== 'models') reportError(e.error);
  }
}

/** With `chat`, the prompt is a user message rendered with each model's chat template (the result shows both and the mismatch's cost). */
export async function scoreCompletion(prompt: string, completion: string, topK = 5, chat = false): Promise<void> {
  if (!client) return;
  setInspect({ scoring: true, error: null, result: null, selected: null });
  try {
    const { type: _type, requestId: _id, ...result } = await client.request({ type: 'score', prompt, completion, topK, ...(chat ? { chat } : {}) }, ['score.result']);
    setInspect({ scoring: false, result });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    setInspect({ scoring: false, error: e.error });
  }
}

export interface SampleSettings {
  n: number;
  maxTokens: number;
  temperature: number;
  seed: number;
}

/** Samples from the student; each completion's text grows as its tokens stream in. With `chat`, the prompt is a user message in the student's chat template. */
export async function sampleFromStudent(prompt: string, settings: SampleSettings, chat = false): Promise<void> {
  if (!client) return;
  const samples = Array.from({ length: settings.n }, () => ({ text: '', tokens: 0, done: false }));
  setInspect({ sampling: true, sampleError: null, samples, renderedPrompt: null });
  try {
    const result = await client.request(
      { type: 'sample', prompt, ...(chat ? { chat } : {}), n: settings.n, maxTokens: settings.maxTokens, temperature: settings.temperature, topK: 0, topP: 1, seed: settings.seed },
      ['sample.result'],
      (e) => {
        if (e.type !== 'tokens') return;
        useLab.setState((s) => {
          const next = [...s.inspect.samples];
          const old = next[e.completion];
          if (!old) return s;
          next[e.completion] = { ...old, text: old.text + e.text, tokens: old.tokens + 1, done: e.done };
          return { inspect: { ...s.inspect, samples: next } };
        });
      },
    );
    setInspect({
      sampling: false,
      samples: result.completions.map((c, i) => ({ text: c.text, tokens: c.tokens.length, done: true, finish: c.finish, verdict: result.verdicts?.[i] })),
      renderedPrompt: result.renderedPrompt ?? null,
    });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    setInspect({ sampling: false, sampleError: e.error });
  }
}

// ---------------------------------------------------------------- distillation runs

/**
 * A run's events, into the run store and its history. The train.state answering a train.start
 * (requestId = runId) begins a new run; other events count only for the run shown.
 */
function routeTrainingEvent(event: Extract<LabEvent, { type: 'train.metrics' | 'train.eval' | 'train.checkpoint' | 'train.state' }>): void {
  if (event.type === 'train.state' && event.requestId === event.runId && event.state === 'running') {
    beginRun(event.runId, event.totalSteps, event.message, startingLoraRank);
    return;
  }
  if (event.runId !== useDistillRun.getState().runId) return;
  switch (event.type) {
    case 'train.metrics':
      return addStep(event.metrics);
    case 'train.eval':
      return addEval(event.evaluation);
    case 'train.checkpoint':
      return useDistillRun.setState({ checkpoint: { step: event.step, bytes: event.bytes } });
    case 'train.state':
      return useDistillRun.setState({
        phase: event.state,
        message: event.message,
        step: event.step,
        totalSteps: event.totalSteps,
        failure: event.error ?? null,
        // The state the pending control waited for has come (or the run ended first).
        ...(event.requestId !== undefined || event.state !== 'running' ? { pending: null } : {}),
      });
  }
}

/** The LoRA rank of the run being started: the run it begins has a PEFT adapter to export when > 0. */
let startingLoraRank = 0;

/**
 * Starts a run of the loaded student against the loaded teacher; the previous run's history stays
 * until it runs. With `pauseAfter` (the Step button: 1) the run pauses by itself after that many steps.
 */
export async function startTraining(setup: TrainSetup, prompts?: PromptTextSource, pauseAfter?: number, resume?: { checkpoint: Uint8Array }): Promise<void> {
  if (!client) return;
  startingLoraRank = setup.loraRank;
  noteRunStarting(setup, prompts ?? null);
  useDistillRun.setState({ starting: true, startStage: null, startError: null, controlError: null });
  try {
    await client.request({ type: 'train.start', setup, ...(prompts ? { prompts } : {}), ...(pauseAfter !== undefined ? { pauseAfter } : {}), ...(resume ? { resume } : {}) }, ['train.state'], (e) => {
      if (e.type === 'progress') useDistillRun.setState({ startStage: e.stage });
    });
    // A stepped start waits for its pause as a Step on a paused run does (the pause clears it).
    const stepping = pauseAfter !== undefined && useDistillRun.getState().phase === 'running';
    useDistillRun.setState({ starting: false, startStage: null, ...(stepping ? { pending: 'step' as const } : {}) });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useDistillRun.setState({ starting: false, startStage: null, startError: e.error });
  }
}

/**
 * Asks the worker to read and split the page's prompt set (for the loaded student) and keeps its
 * answer, the split or the sentence, in the prompt source's store. A later check supersedes an
 * earlier one still in flight.
 */
let promptCheck = 0;
export async function checkPrompts(source: PromptTextSource, knobs: { heldOutFraction: number; splitSeed: number }): Promise<void> {
  if (!client) return;
  const mine = ++promptCheck;
  usePromptSource.setState({ checking: true });
  try {
    const { summary } = await client.request({ type: 'prompts.check', source, heldOutFraction: knobs.heldOutFraction, splitSeed: knobs.splitSeed }, ['prompts.checked']);
    if (mine === promptCheck) usePromptSource.setState({ checking: false, summary, error: null });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    if (mine === promptCheck) usePromptSource.setState({ checking: false, summary: null, error: e.error });
  }
}

/** Pause, resume, step (one more step of a paused run, then paused again) or stop the run; each takes effect between steps. */
export async function controlTraining(control: 'pause' | 'resume' | 'step' | 'stop'): Promise<void> {
  if (!client) return;
  useDistillRun.setState({ pending: control, controlError: null });
  try {
    await client.request({ type: `train.${control}` }, ['train.state']);
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useDistillRun.setState({ pending: null, controlError: e.error });
  }
}

/** Saves bytes as a file through the browser's download. */
function download(bytes: Uint8Array, fileName: string, type: string): void {
  saveBlob(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }), fileName);
}

/**
 * The Distill panel's setup written for a cluster trainer (a TRL script, a tinker-cookbook
 * launcher, the training prompts, a README: workers/distill/cluster/), downloaded as one zip.
 */
export async function exportForCluster(setup: TrainSetup, prompts?: PromptTextSource): Promise<void> {
  if (!client) return;
  useClusterExport.setState({ busy: true, error: null });
  try {
    const result = await client.request({ type: 'cluster.export', setup, ...(prompts ? { prompts } : {}) }, ['cluster.exported']);
    const name = 'opd-lab-cluster';
    const text = new TextEncoder();
    const bytes = zipSync(Object.fromEntries(result.files.map((f) => [`${name}/${f.path}`, text.encode(f.text)])), { level: 6 });
    download(bytes, `${name}.zip`, 'application/zip');
    useClusterExport.setState({ busy: false, done: { fileName: `${name}.zip`, bytes: bytes.byteLength, targets: result.targets } });
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useClusterExport.setState({ busy: false, error: e.error, done: null });
  }
}

/** The folder name of an exported student: the loaded student's folder name, then the step. */
function exportName(step: number): string {
  const label = useLab.getState().models.student.model?.label ?? 'student';
  const base = label.replace(/\/+$/, '').split('/').pop()?.replace(/[^\w.-]+/g, '-') || 'student';
  return `${base}-distilled-step-${step}`;
}

/**
 * Asks the worker for the run's student folder or checkpoint (train.export), showing that an
 * export is under way; null (with the reason in the run store) when it cannot be had.
 */
async function requestExport(what: TrainExportKind): Promise<LabEventOf<'train.exported'> | null> {
  if (!client) return null;
  useDistillRun.setState({ exporting: what, exportError: null });
  try {
    const result = await client.request({ type: 'train.export', what }, ['train.exported']);
    useDistillRun.setState({ exporting: null });
    return result;
  } catch (e) {
    if (!(e instanceof LabRequestError)) throw e;
    useDistillRun.setState({ exporting: null, exportError: e.error });
    return null;
  }
}

/**
 * Downloads the trained student (a zip of its Hugging Face folder), the checkpoint file or a LoRA
 * run's PEFT adapter (a zip of its folder), of the run in progress or of the latest run's last
 * checkpoint.
 */
export async function exportTraining(what: TrainExportKind): Promise<void> {
  const result = await requestExport(what);
  if (!result) return;
  const name = what === 'adapter' ? `${exportName(result.step)}-lora-adapter` : exportName(result.step);
  let fileName: string;
  let bytes: Uint8Array;
  if (what === 'checkpoint') {
    fileName = `${name}.safetensors`;
    bytes = result.files[0].bytes;
    download(bytes, fileName, 'application/octet-stream');
  } else {
    fileName = `${name}.zip`;
    bytes = zipSync(Object.fromEntries(result.files.map((f) => [`${name}/${f.path}`, f.bytes])), { level: 6 });
    download(bytes, fileName, 'application/zip');
  }
  useDistillRun.setState({ exported: { what, step: result.step, fileName, bytes: bytes.byteLength } });
}

/**
 * Loads the trained student (the run's last checkpoint, as a model folder) as the lab's student
 * and opens Inspect on it: its samples and the teacher's per-token penalties after training.
 */
export async function inspectTrainedStudent(): Promise<void> {
  const result = await requestExport('student');
  if (!result) return;
  const name = exportName(result.step);
  await loadModel('student', { entries: result.files.map((f) => ({ path: f.path, file: new Blob([f.bytes as Uint8Array<ArrayBuffer>]) })), label: name });
  useLab.getState().setPanel('inspect');
}

/** The GPU buffers alive on the worker's device (the soak benchmark reads it through `window.opdLabDebug`). */
export async function memoryReport(): Promise<LabEventOf<'memory.reported'>['gpu'] | null> {
  if (!client) return null;
  return (await client.request({ type: 'memory.report' }, ['memory.reported'])).gpu;
}
