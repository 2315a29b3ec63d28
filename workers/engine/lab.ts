/**
 * The lab engine: owns the one GPUDevice, the onnxruntime-web setup on it, and answers the
 * protocol's commands with events. It has no DOM: the browser worker, the CLI and the tests all
 * drive this same class, each passing its own `gpu` (navigator.gpu or Dawn's) and `emit`.
 */
import type { LabCommand, LabError, LabEvent, RuntimeSummary, AdapterSummary } from '../protocol';
import { acquireDevice, watchDeviceLoss } from '../gpu/device';
import { configureOrt, ort, ORT_VERSION } from '../ort/runtime';
import { runInteropCheck } from '../selfcheck/interop';
import { runDivergenceSelfCheck } from '../kernels/divergence/selfcheck';

export interface LabEngineOptions {
  gpu: GPU | undefined;
  emit: (event: LabEvent) => void;
  crossOriginIsolated: boolean;
  /** False on plain-http pages other than localhost, where browsers hide WebGPU. */
  secureContext?: boolean;
}

function describeException(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

export class LabEngine {
  private device: GPUDevice | undefined;
  private adapter: AdapterSummary | undefined;
  private runtime: RuntimeSummary | undefined;
  private lost: LabError | undefined;

  constructor(private readonly options: LabEngineOptions) {}

  get gpuDevice(): GPUDevice | undefined {
    return this.device;
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
      const report = await runInteropCheck(ort, device, elements);
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
      const report = await runDivergenceSelfCheck(device, seed);
      this.options.emit({ type: 'selfcheck.divergence.result', requestId, report });
    } catch (e) {
      this.fail(requestId, {
        code: 'selfcheck-failed',
        message: 'The divergence kernels could not run on this device.',
        detail: describeException(e),
      });
    }
  }
}
