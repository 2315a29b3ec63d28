/**
 * A model folder on the Hugging Face Hub (or a mirror), read through the model cache: a file
 * the cache holds for that id and revision is read from it with no request at all (not even a
 * revalidation). For any other, has() asks with a HEAD and read() downloads it once (GET,
 * redirects followed, size and ETag checked) and stores it with its size and ETag. A file the
 * model does not have (HTTP 404) is recorded as missing, so the next load asks nothing either.
 */
import { ModelFetchError, ModelFolderError } from '../errors';
import type { ModelSource } from '../source';
import { memoryCache, type CacheKey, type ModelCache } from './cache';
import { etagProblem, fetchFile, probeFile, type HttpOptions } from './http';
import { hubFileUrl, hubIdLabel, normalizeEndpoint, parseHubId, type HubId } from './id';
import type { HubProgress } from '../../contract/models';

/** One progress report: a file's bytes done out of its total, and the folder's so far. */
export type { HubProgress };

export interface HubSourceOptions extends HttpOptions {
  /** The Hub or a mirror; https://huggingface.co when not given (the CLI passes HF_ENDPOINT). */
  endpoint?: string;
  /** Where files are kept between loads; a memory cache (nothing kept) when not given. */
  cache?: ModelCache;
  /** Called as bytes arrive (and once per file read from the cache). */
  onProgress?: (progress: HubProgress) => void;
  /** Told when a downloaded file could not be kept in the cache (full disk, storage quota): the load goes on. */
  onWarning?: (message: string) => void;
  /** Also check a cached file's bytes against its recorded ETag (hashing them) on every load, not only its size. */
  verifyCached?: boolean;
}

export interface HubModelSource extends ModelSource {
  readonly id: HubId;
  readonly endpoint: string;
  readonly cache: ModelCache;
}

/** The model folder `id` (ORG/NAME[@REVISION], or a parsed HubId) on the Hub, through the cache. */
export function hubSource(id: string | HubId, options: HubSourceOptions = {}): HubModelSource {
  let hubId: HubId;
  let endpoint: string;
  try {
    hubId = typeof id === 'string' ? parseHubId(id) : id;
    endpoint = normalizeEndpoint(options.endpoint);
  } catch (e) {
    // A bad id or endpoint is the person's to fix, like any model folder problem.
    throw new ModelFolderError((e as Error).message, typeof id === 'string' ? id : id.repo);
  }
  const cache = options.cache ?? memoryCache();
  const label = hubIdLabel(hubId);
  const key = (file: string): CacheKey => ({ repo: hubId.repo, revision: hubId.revision, file });
  const ctx = (file: string) => ({ folder: label, file, hub: { repo: hubId.repo, revision: hubId.revision, endpoint } });
  /** The file last downloaded, kept for the read() that follows has(). */
  let fresh: { file: string; bytes: Uint8Array } | null = null;
  const downloads = new Map<string, Promise<boolean>>();
  /** Files a HEAD found, not yet downloaded. */
  const present = new Set<string>();
  const noConfig = (status: number) =>
    new ModelFetchError('not-found', `${label} on ${endpoint} has no config.json (HTTP ${status}): check the id (ORG/NAME@REVISION); a model the lab loads has config.json beside its weights.`, label, 'config.json', status);
  const folderDone = new Map<string, number>();
  const folderSums = () => [...folderDone.values()].reduce((a, b) => a + b, 0);

  const report = (file: string, loaded: number, total: number | null, fromCache: boolean, done: boolean) => {
    if (!options.onProgress) return;
    const before = folderSums() - (folderDone.get(file) ?? 0);
    options.onProgress({ model: label, file, loaded, total, fromCache, done, folderLoaded: before + loaded, folderTotal: before + (total ?? loaded) });
  };

  /** Downloads `file` into the cache: true when the model has it, false when it has not (recorded). */
  function download(file: string): Promise<boolean> {
    let pending = downloads.get(file);
    if (!pending) {
      pending = (async () => {
        const result = await fetchFile(hubFileUrl(endpoint, hubId, file), ctx(file), options, (loaded, total) => report(file, loaded, total, false, false));
        if (!result.found) {
          if (file === 'config.json') throw noConfig(result.status);
          await cache.putMissing(key(file));
          return false;
        }
        const { bytes, etag } = result.file;
        try {
          await cache.put(key(file), bytes, etag);
        } catch (e) {
          // A full disk or a browser's storage quota: the model still loads, from memory this time.
          options.onWarning?.(`Could not keep ${file} of ${label} in ${cache.label} (${(e as Error).message}): it loads now but will be downloaded again next time; free some space, for example by deleting cached models.`);
        }
        present.delete(file);
        folderDone.set(file, bytes.length);
        report(file, bytes.length, bytes.length, false, true);
        fresh = { file, bytes };
        return true;
      })().finally(() => downloads.delete(file));
      downloads.set(file, pending);
    }
    return pending;
  }

  return {
    label,
    id: hubId,
    endpoint,
    cache,
    async has(file) {
      if (present.has(file) || fresh?.file === file) return true;
      const entry = await cache.stat(key(file));
      if (entry) return !entry.missing;
      // A HEAD, not the download: the lab asks about files it may never read (variants of a
      // model's ONNX export), and the read that follows a yes downloads the file once.
      if (await probeFile(hubFileUrl(endpoint, hubId, file), ctx(file), options)) {
        present.add(file);
        // Recorded, so that the next load asks nothing about it either.
        await cache.putExists(key(file)).catch(() => undefined);
        return true;
      }
      if (file === 'config.json') throw noConfig(404);
      await cache.putMissing(key(file));
      return false;
    },
    async read(file) {
      const takeFresh = () => {
        if (fresh?.file !== file) return null;
        const { bytes } = fresh;
        fresh = null;
        return bytes;
      };
      const held = takeFresh();
      if (held) return held;
      let entry = await cache.stat(key(file));
      if (!entry || (!entry.missing && entry.unread)) {
        await download(file);
        const downloaded = takeFresh();
        if (downloaded) return downloaded;
        entry = await cache.stat(key(file));
      }
      if (!entry || entry.missing) throw new ModelFetchError('not-found', `${file} is missing from ${label} on ${endpoint}.`, label, file, 404);
      if (entry.unread) throw new ModelFetchError('not-found', `${file} of ${label} could not be kept in ${cache.label}; load the model again.`, label, file);
      const bytes = await cache.read(key(file));
      if (!bytes || bytes.length !== entry.size) {
        await cache.delete(key(file));
        const got = bytes ? `${bytes.length} bytes` : 'gone';
        throw new ModelFetchError('mismatch', `The cached ${file} of ${label} in ${cache.label} is ${got} but was stored as ${entry.size} bytes: it was damaged, so it has been removed; load the model again to download it anew.`, label, file);
      }
      if (options.verifyCached) {
        const problem = await etagProblem(bytes, entry.etag);
        if (problem) {
          await cache.delete(key(file));
          throw new ModelFetchError('mismatch', `The cached ${file} of ${label} in ${cache.label} does not match its ETag ${entry.etag} (${problem}): it was damaged, so it has been removed; load the model again to download it anew.`, label, file);
        }
      }
      // A file read again (the tokenizer is) is reported once.
      if (!folderDone.has(file)) {
        folderDone.set(file, bytes.length);
        report(file, bytes.length, bytes.length, true, true);
      }
      return bytes;
    },
  };
}
