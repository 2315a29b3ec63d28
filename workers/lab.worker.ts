/// <reference lib="webworker" />
/**
 * The lab worker's entry in the browser: one LabEngine, fed by postMessage. Everything that
 * touches the GPU lives here (WebGPU objects cannot move between workers).
 */
import type { LabCommand, LabEvent } from './protocol';
import { LabEngine } from './engine/lab';

const scope = self as unknown as DedicatedWorkerGlobalScope;

const engine = new LabEngine({
  gpu: (scope.navigator as WorkerNavigator & { gpu?: GPU }).gpu,
  emit: (event: LabEvent) => scope.postMessage(event),
  crossOriginIsolated: scope.crossOriginIsolated === true,
  secureContext: scope.isSecureContext,
});

scope.onmessage = (message: MessageEvent<LabCommand>) => {
  void engine.handle(message.data);
};
