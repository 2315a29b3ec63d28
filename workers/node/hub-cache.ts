/**
 * The model cache in a folder on disk, for the CLI and the tests: OPD_LAB_CACHE, by default
 * ~/.cache/opd-lab. Laid out as
 *
 *   hub/ORG/NAME/REVISION/files/PATH           the file's bytes
 *   hub/ORG/NAME/REVISION/records/PATH.json    {"size", "etag", "storedAt"}, {"missing": true}
 *                                              or {"exists": true} (asked about, never read)
 *
 * (the revision percent-encoded, so refs/pr/1 is one folder). The bytes are written first and the
 * record last, each through a temporary file renamed into place, so a record always describes
 * bytes that were written whole; a process killed mid-download leaves no record and the next load
 * downloads again.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { groupCachedFiles, heldRecord, type CacheEntry, type CacheKey, type ModelCache } from '../models/hub/cache';

/** OPD_LAB_CACHE, else ~/.cache/opd-lab. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.OPD_LAB_CACHE || join(homedir(), '.cache', 'opd-lab'));
}

function checkedFile(file: string): string {
  const parts = file.split('/');
  if (file.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`The model file name '${file}' is not a plain relative path, so the cache will not store it.`);
  }
  return join(...parts);
}

async function writeAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(temp, data);
  await rename(temp, target);
}

async function walk(dir: string): Promise<string[]> {
  let names: import('node:fs').Dirent[];
  try {
    names = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const d of names) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await walk(p)));
    else if (d.isFile() && d.name.endsWith('.json')) out.push(p);
  }
  return out;
}

/** The model cache in `root` (created on the first write). */
export function diskCache(root: string = defaultCacheDir()): ModelCache {
  const hub = join(resolve(root), 'hub');
  const modelDir = (repo: string, revision: string) => join(hub, ...repo.split('/'), encodeURIComponent(revision));
  const bytesPath = (k: CacheKey) => join(modelDir(k.repo, k.revision), 'files', checkedFile(k.file));
  const recordPath = (k: CacheKey) => join(modelDir(k.repo, k.revision), 'records', `${checkedFile(k.file)}.json`);
  const cache: ModelCache = {
    label: resolve(root),
    async stat(key) {
      let text: string;
      try {
        text = await readFile(recordPath(key), 'utf8');
      } catch {
        return null;
      }
      try {
        const r = JSON.parse(text) as { missing?: boolean; exists?: boolean; size?: unknown; etag?: unknown; storedAt?: unknown };
        if (r.missing === true) return { missing: true };
        if (r.exists === true && r.size === undefined) return { missing: false, unread: true };
        if (typeof r.size !== 'number' || !Number.isInteger(r.size) || r.size < 0) return null;
        return { missing: false, size: r.size, etag: typeof r.etag === 'string' ? r.etag : null, storedAt: typeof r.storedAt === 'string' ? r.storedAt : '' } satisfies CacheEntry;
      } catch {
        return null;
      }
    },
    async read(key) {
      try {
        return new Uint8Array(await readFile(bytesPath(key)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new Error(`Could not read the cached ${key.file} of ${key.repo} from ${bytesPath(key)}: ${(e as Error).message}.`);
      }
    },
    async put(key, bytes, etag) {
      await writeAtomic(bytesPath(key), bytes);
      await writeAtomic(recordPath(key), JSON.stringify({ size: bytes.length, etag, storedAt: new Date().toISOString() }) + '\n');
    },
    async putMissing(key) {
      await writeAtomic(recordPath(key), JSON.stringify({ missing: true }) + '\n');
    },
    async putExists(key) {
      await writeAtomic(recordPath(key), JSON.stringify({ exists: true }) + '\n');
    },
    async delete(key) {
      await rm(recordPath(key), { force: true });
      await rm(bytesPath(key), { force: true });
    },
    async list() {
      const files = [];
      for (const recordFile of await walk(hub)) {
        const parts = relative(hub, recordFile).split(sep);
        // ORG / NAME / REVISION / records / PATH....json
        const at = parts.indexOf('records');
        if (at !== 3) continue;
        const key = { repo: `${parts[0]}/${parts[1]}`, revision: decodeURIComponent(parts[2]), file: parts.slice(4).join('/').replace(/\.json$/, '') };
        const record = heldRecord(await cache.stat(key));
        if (record) files.push({ ...key, size: record.size, etag: record.etag });
      }
      return groupCachedFiles(files);
    },
    async deleteModel(repo, revision) {
      await rm(revision === undefined ? join(hub, ...repo.split('/')) : modelDir(repo, revision), { recursive: true, force: true });
    },
  };
  return cache;
}
