/**
 * Hugging Face model ids in the page: the Hub endpoint (kept in localStorage, so a mirror or a
 * local server stays chosen across reloads), the access token for gated models (kept in memory
 * only: never in the URL, never stored), each role's download progress as the worker streams
 * it, and the model cache's contents as the model manager shows them.
 */
import { create } from 'zustand';
import type { CachedModelSummary, LabError, LabEventOf, ModelRole } from '../../workers/protocol';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
const ENDPOINT_KEY = 'opd-lab.hub-endpoint';

/** ORG/NAME or ORG/NAME@REVISION: what the loader sends as a Hub id rather than a folder URL (the worker checks it fully). */
export const HUB_ID = /^[\w.-]+\/[\w.-]+(@[^\s@]+)?$/;
export const isHubId = (text: string): boolean => HUB_ID.test(text.trim()) && !text.includes('://');

/** One file of a download, as its last report said. */
export interface FileProgress {
  file: string;
  loaded: number;
  total: number | null;
  done: boolean;
  fromCache: boolean;
}

export interface HubLoadProgress {
  model: string;
  /** The files in the order they started. */
  files: FileProgress[];
  /** Bytes done and known so far over the model's files. */
  folderLoaded: number;
  folderTotal: number;
}

export interface CacheListing {
  models: CachedModelSummary[];
  bytes: number;
  /** Where the cache lives, for the manager's sentence. */
  where: string;
}

export interface HubState {
  endpoint: string;
  token: string;
  progress: Record<ModelRole, HubLoadProgress | null>;
  cache: { listing: CacheListing | null; busy: boolean; error: LabError | null };
  setEndpoint(endpoint: string): void;
  setToken(token: string): void;
}

function storedEndpoint(): string {
  try {
    return globalThis.localStorage?.getItem(ENDPOINT_KEY) || DEFAULT_HUB_ENDPOINT;
  } catch {
    return DEFAULT_HUB_ENDPOINT;
  }
}

export const useHub = create<HubState>()((set) => ({
  endpoint: storedEndpoint(),
  token: '',
  progress: { student: null, teacher: null },
  cache: { listing: null, busy: false, error: null },
  setEndpoint(endpoint) {
    try {
      if (endpoint.trim() && endpoint.trim() !== DEFAULT_HUB_ENDPOINT) localStorage.setItem(ENDPOINT_KEY, endpoint.trim());
      else localStorage.removeItem(ENDPOINT_KEY);
    } catch {
      // Storage switched off: the setting lasts until the page is reloaded.
    }
    set({ endpoint });
  },
  setToken(token) {
    set({ token });
  },
}));

/** Folds one `model.progress` event into its role's progress. */
export function addProgress(event: LabEventOf<'model.progress'>): void {
  useHub.setState((s) => {
    const old = s.progress[event.role];
    const files = old && old.model === event.model ? [...old.files] : [];
    const entry: FileProgress = { file: event.file, loaded: event.loaded, total: event.total, done: event.done, fromCache: event.fromCache };
    const at = files.findIndex((f) => f.file === event.file);
    if (at >= 0) files[at] = entry;
    else files.push(entry);
    return { progress: { ...s.progress, [event.role]: { model: event.model, files, folderLoaded: event.folderLoaded, folderTotal: event.folderTotal } } };
  });
}

/** Bytes for people: 12.3 MB, 4.0 kB, 512 B (decimal units, as the Hub shows sizes). */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
