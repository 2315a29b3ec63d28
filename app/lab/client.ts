/**
 * The page's side of the lab worker: starts it, sends commands, and routes its events to the
 * store. Requests that expect one answer get a promise resolved by the matching event.
 */
import type { LabCommand, LabError, LabEvent } from '../../workers/protocol';

type Listener = (event: LabEvent) => void;

/** Distributes Omit over the command union, so each command keeps its own fields. */
type WithoutRequestId<T> = T extends unknown ? Omit<T, 'requestId'> : never;
export type CommandWithoutId = WithoutRequestId<LabCommand>;

export class LabRequestError extends Error {
  constructor(readonly error: LabError) {
    super(error.message);
  }
}

export class LabClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly listeners = new Set<Listener>();
  private readonly pending = new Map<
    number,
    { resolve: (e: LabEvent) => void; reject: (e: LabRequestError) => void; answers: LabEvent['type'][]; onEvent?: (e: LabEvent) => void }
  >();

  /**
   * `onCrash`: told of an uncaught error in the worker (a crash) at once; when it answers true it
   * has taken the crash in hand (restarting the worker), and the requests still waiting fail with
   * it instead of the crash going out as an event.
   */
  constructor(private readonly options: { onCrash?: (error: LabError) => boolean } = {}) {
    this.worker = new Worker(new URL('../../workers/lab.worker.ts', import.meta.url), { type: 'module', name: 'opd-lab' });
    this.worker.onmessage = (m: MessageEvent<LabEvent>) => this.receive(m.data);
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const error: LabError = {
        code: 'internal',
        message: 'The lab worker failed to start or crashed. Reload the page; if it persists, this browser may not support module workers.',
        detail: e.message,
      };
      if (this.options.onCrash?.(error)) this.failPending(error);
      else this.receive({ type: 'error', error });
    };
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Sends a command and resolves with the first event among `answers` that echoes its id;
   * `onEvent` sees the events before it (progress, streamed tokens).
   */
  request<T extends LabEvent['type']>(command: CommandWithoutId, answers: T[], onEvent?: (e: LabEvent) => void): Promise<Extract<LabEvent, { type: T }>> {
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve: resolve as (e: LabEvent) => void, reject, answers, onEvent });
      this.worker.postMessage({ ...command, requestId } as LabCommand);
    });
  }

  /** Whether a request with this id is still waiting for its answer (its error goes to whoever sent it). */
  isAwaiting(requestId: number): boolean {
    return this.pending.has(requestId);
  }

  private receive(event: LabEvent): void {
    for (const l of this.listeners) l(event);
    const id = 'requestId' in event ? event.requestId : undefined;
    if (id === undefined) {
      // A device loss or a worker crash fails everything still waiting.
      if (event.type === 'device.lost' || event.type === 'error') {
        const error = event.error;
        for (const p of this.pending.values()) p.reject(new LabRequestError(error));
        this.pending.clear();
      }
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    if (event.type === 'error') {
      this.pending.delete(id);
      p.reject(new LabRequestError(event.error));
    } else if (p.answers.includes(event.type)) {
      this.pending.delete(id);
      p.resolve(event);
    } else {
      p.onEvent?.(event);
    }
  }

  private failPending(error: LabError): void {
    for (const p of this.pending.values()) p.reject(new LabRequestError(error));
    this.pending.clear();
  }

  /** Ends the worker; the requests still waiting fail (a new client answers from now on). */
  terminate(): void {
    this.worker.terminate();
    this.failPending({ code: 'internal', message: 'The lab worker was restarted before it answered: try again.' });
  }
}
