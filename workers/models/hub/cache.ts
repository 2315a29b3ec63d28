/**
 * The model cache: the files of Hub models by id, revision and path, each stored with its size
 * and ETag, and the files a model does not have (so that a cached model loads with no request
 * at all, even where the lab asks whether an optional file exists). Two stores implement it: a
 * folder on disk for Node (workers/node/hub-cache.ts) and the browser's Cache API
 * (browser-cache.ts); `memoryCache` here is for tests and for a session that keeps nothing.
 */

export interface CacheKey {
  /** ORG/NAME. */
  repo: string;
  revision: string;
  /** The file's path in the model's folder, '/'-separated. */
  file: string;
}

export interface CacheRecord {
  /** The file's length in bytes when it was stored. */
  size: number;
  /** Its ETag (the Hub's X-Linked-Etag, else ETag), or null when the server sent none. */
  etag: string | null;
  /** When it was stored, as an ISO date. */
  storedAt: string;
}

/**
 * What the cache knows of a file: that the model has none; that it has one, not downloaded (the
 * lab asked whether it exists and never read it); or its record (the bytes are read apart).
 */
export type CacheEntry = { missing: true } | { missing: false; unread: true } | ({ missing: false; unread?: false } & CacheRecord);

/** The record of a file whose bytes the cache holds, or null. */
export const heldRecord = (entry: CacheEntry | null): CacheRecord | null => (entry && !entry.missing && !entry.unread ? entry : null);

export interface CachedModel {
  repo: string;
  revision: string;
  /** The files held (not those recorded as missing or as existing unread), by path. */
  files: { file: string; size: number; etag: string | null }[];
  /** Their sizes summed. */
  bytes: number;
}

export interface ModelCache {
  /** Where the cache is, for messages: a folder, "the browser's Cache API 'opd-lab-models'". */
  readonly label: string;
  /** What the cache knows of a file, without reading its bytes; null when nothing. */
  stat(key: CacheKey): Promise<CacheEntry | null>;
  /** The bytes of a file stat() found; null when they are gone. */
  read(key: CacheKey): Promise<Uint8Array | null>;
  /** Stores a file's bytes with its ETag (its size is the bytes' length). */
  put(key: CacheKey, bytes: Uint8Array, etag: string | null): Promise<void>;
  /** Records that the model has no such file. */
  putMissing(key: CacheKey): Promise<void>;
  /** Records that the model has the file, not downloaded (a later put() replaces this). */
  putExists(key: CacheKey): Promise<void>;
  /** Forgets one file (held or missing). */
  delete(key: CacheKey): Promise<void>;
  /** The models held, with their files and sizes, sorted by repo then revision. */
  list(): Promise<CachedModel[]>;
  /** Forgets a model: one revision, or every revision when none is named. */
  deleteModel(repo: string, revision?: string): Promise<void>;
}

/** Sorts and sums the files of each (repo, revision) into the list the model manager shows. */
export function groupCachedFiles(files: Iterable<{ repo: string; revision: string; file: string; size: number; etag: string | null }>): CachedModel[] {
  const models = new Map<string, CachedModel>();
  for (const f of files) {
    const k = `${f.repo}\n${f.revision}`;
    let m = models.get(k);
    if (!m) models.set(k, (m = { repo: f.repo, revision: f.revision, files: [], bytes: 0 }));
    m.files.push({ file: f.file, size: f.size, etag: f.etag });
    m.bytes += f.size;
  }
  const list = [...models.values()];
  for (const m of list) m.files.sort((a, b) => a.file.localeCompare(b.file));
  return list.sort((a, b) => a.repo.localeCompare(b.repo) || a.revision.localeCompare(b.revision));
}

/** A cache in memory: for tests, and for a session that keeps nothing between loads. */
export function memoryCache(): ModelCache {
  const entries = new Map<string, { key: CacheKey; entry: CacheEntry; bytes?: Uint8Array }>();
  const id = (k: CacheKey) => `${k.repo}\n${k.revision}\n${k.file}`;
  return {
    label: 'memory',
    async stat(key) {
      return entries.get(id(key))?.entry ?? null;
    },
    async read(key) {
      return entries.get(id(key))?.bytes ?? null;
    },
    async put(key, bytes, etag) {
      entries.set(id(key), { key, entry: { missing: false, size: bytes.length, etag, storedAt: new Date().toISOString() }, bytes: bytes.slice() });
    },
    async putMissing(key) {
      entries.set(id(key), { key, entry: { missing: true } });
    },
    async putExists(key) {
      entries.set(id(key), { key, entry: { missing: false, unread: true } });
    },
    async delete(key) {
      entries.delete(id(key));
    },
    async list() {
      return groupCachedFiles([...entries.values()].flatMap(({ key, entry }) => {
        const r = heldRecord(entry);
        return r ? [{ ...key, size: r.size, etag: r.etag }] : [];
      }));
    },
    async deleteModel(repo, revision) {
      for (const [k, { key }] of entries) if (key.repo === repo && (revision === undefined || key.revision === revision)) entries.delete(k);
    },
  };
}
