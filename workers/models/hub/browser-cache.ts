/**
 * The model cache in the browser's Cache API (the page and its web worker share it; it survives
 * reloads): one entry per file, keyed by a URL of the lab's own (not the endpoint's, so that a
 * mirror and the Hub share what is cached), the bytes as the body and the record in headers.
 */
import { groupCachedFiles, heldRecord, type CacheEntry, type CacheKey, type ModelCache } from './cache';

export const BROWSER_CACHE_NAME = 'opd-lab-models';
/** The keys' prefix: never fetched, only a name in the cache. */
const ORIGIN = 'https://opd-lab.cache/hub/';

const SIZE = 'x-opd-size';
const ETAG = 'x-opd-etag';
const MISSING = 'x-opd-missing';
const EXISTS = 'x-opd-exists';
const STORED = 'x-opd-stored-at';

function keyUrl(k: CacheKey): string {
  return `${ORIGIN}${encodeURIComponent(k.repo)}/${encodeURIComponent(k.revision)}/${encodeURIComponent(k.file)}`;
}

function parseKeyUrl(url: string): CacheKey | null {
  if (!url.startsWith(ORIGIN)) return null;
  const parts = url.slice(ORIGIN.length).split('/');
  if (parts.length !== 3) return null;
  const [repo, revision, file] = parts.map(decodeURIComponent);
  return { repo, revision, file };
}

function entryOf(response: Response): CacheEntry | null {
  if (response.headers.get(MISSING) === '1') return { missing: true };
  if (response.headers.get(EXISTS) === '1') return { missing: false, unread: true };
  const size = Number(response.headers.get(SIZE));
  if (!Number.isInteger(size) || size < 0) return null;
  return { missing: false, size, etag: response.headers.get(ETAG) || null, storedAt: response.headers.get(STORED) ?? '' };
}

/** The model cache in the Cache API; `storage` is `caches` in a page or worker (tests pass their own). */
export function browserCache(name = BROWSER_CACHE_NAME, storage: CacheStorage = globalThis.caches): ModelCache {
  if (!storage) throw new Error("This browser has no Cache API (it needs a secure context: https:// or localhost), so the lab cannot keep downloaded models.");
  let opened: Promise<Cache> | undefined;
  const open = () => (opened ??= storage.open(name));
  return {
    label: `the browser's Cache API '${name}'`,
    async stat(key) {
      const response = await (await open()).match(keyUrl(key));
      if (!response) return null;
      await response.body?.cancel().catch(() => undefined);
      return entryOf(response);
    },
    async read(key) {
      const response = await (await open()).match(keyUrl(key));
      if (!response || response.headers.get(MISSING) === '1' || response.headers.get(EXISTS) === '1') return null;
      return new Uint8Array(await response.arrayBuffer());
    },
    async put(key, bytes, etag) {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream', [SIZE]: String(bytes.length), [STORED]: new Date().toISOString() };
      if (etag) headers[ETAG] = etag;
      await (await open()).put(keyUrl(key), new Response(bytes as Uint8Array<ArrayBuffer>, { headers }));
    },
    async putMissing(key) {
      await (await open()).put(keyUrl(key), new Response(null, { headers: { [MISSING]: '1', [STORED]: new Date().toISOString() } }));
    },
    async putExists(key) {
      await (await open()).put(keyUrl(key), new Response(null, { headers: { [EXISTS]: '1', [STORED]: new Date().toISOString() } }));
    },
    async delete(key) {
      await (await open()).delete(keyUrl(key));
    },
    async list() {
      const cache = await open();
      const files = [];
      for (const request of await cache.keys()) {
        const key = parseKeyUrl(request.url);
        if (!key) continue;
        const response = await cache.match(request);
        const record = heldRecord(response ? entryOf(response) : null);
        await response?.body?.cancel().catch(() => undefined);
        if (record) files.push({ ...key, size: record.size, etag: record.etag });
      }
      return groupCachedFiles(files);
    },
    async deleteModel(repo, revision) {
      const cache = await open();
      for (const request of await cache.keys()) {
        const key = parseKeyUrl(request.url);
        if (key && key.repo === repo && (revision === undefined || key.revision === revision)) await cache.delete(request);
      }
    },
  };
}
