/**
 * The two stores of the model cache behave the same: the disk folder (Node, OPD_LAB_CACHE) and
 * the browser's Cache API (here on a small in-memory CacheStorage with the Cache API's
 * semantics: bodies read once, keys as Requests). A damaged file on disk is found and dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelCache } from '../../workers/models/hub/cache';
import { memoryCache } from '../../workers/models/hub/cache';
import { browserCache } from '../../workers/models/hub/browser-cache';
import { defaultCacheDir, diskCache } from '../../workers/node/hub-cache';
import { hubSource } from '../../workers/models/hub/source';
import { ModelFetchError } from '../../workers/models/source';
import { startHub, type HubServer } from '../hub/server';

/** Just enough of CacheStorage for the lab's store, with the real one's copy-on-put semantics. */
function fakeCacheStorage(): CacheStorage {
  const caches = new Map<string, Map<string, { body: ArrayBuffer; headers: [string, string][] }>>();
  const urlOf = (r: RequestInfo | URL) => (typeof r === 'string' ? r : r instanceof URL ? r.href : r.url);
  const open = async (name: string) => {
    let entries = caches.get(name);
    if (!entries) caches.set(name, (entries = new Map()));
    const store = entries;
    return {
      async match(r: RequestInfo | URL) {
        const e = store.get(urlOf(r));
        return e ? new Response(e.body.byteLength ? e.body.slice(0) : null, { headers: e.headers }) : undefined;
      },
      async put(r: RequestInfo | URL, response: Response) {
        store.set(urlOf(r), { body: await response.arrayBuffer(), headers: [...response.headers] });
      },
      async delete(r: RequestInfo | URL) {
        return store.delete(urlOf(r));
      },
      async keys() {
        return [...store.keys()].map((u) => new Request(u));
      },
    } as unknown as Cache;
  };
  return { open } as unknown as CacheStorage;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opd-hub-cache-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stores: [string, () => ModelCache][] = [
  ['disk', () => diskCache(join(dir, `store-${Math.random().toString(36).slice(2)}`))],
  ['Cache API', () => browserCache('opd-lab-models', fakeCacheStorage())],
  ['memory', () => memoryCache()],
];

describe.each(stores)('the %s store', (_name, make) => {
  it('keeps bytes with size and ETag, missing files, and lists and deletes models', async () => {
    const cache = make();
    const a = { repo: 'org/a', revision: 'main', file: 'onnx/model.onnx' };
    const b = { repo: 'org/a', revision: 'refs/pr/1', file: 'config.json' };
    const c = { repo: 'org/b', revision: 'main', file: 'config.json' };
    expect(await cache.stat(a)).toBeNull();
    expect(await cache.read(a)).toBeNull();
    await cache.put(a, new Uint8Array([1, 2, 3]), 'abc');
    await cache.put(b, new Uint8Array([4]), null);
    await cache.put(c, new Uint8Array(0), 'e');
    await cache.putMissing({ ...a, file: 'model.safetensors' });
    expect(await cache.stat(a)).toMatchObject({ missing: false, size: 3, etag: 'abc' });
    expect([...(await cache.read(a))!]).toEqual([1, 2, 3]);
    expect(await cache.stat(b)).toMatchObject({ missing: false, size: 1, etag: null });
    expect(await cache.stat({ ...a, file: 'model.safetensors' })).toEqual({ missing: true });
    // A file known to exist, never read: no bytes, not listed; a later put() replaces the mark.
    const known = { ...a, file: 'onnx/model_fp16.onnx' };
    await cache.putExists(known);
    expect(await cache.stat(known)).toEqual({ missing: false, unread: true });
    expect(await cache.read(known)).toBeNull();
    expect(await cache.list()).toEqual([
      { repo: 'org/a', revision: 'main', files: [{ file: 'onnx/model.onnx', size: 3, etag: 'abc' }], bytes: 3 },
      { repo: 'org/a', revision: 'refs/pr/1', files: [{ file: 'config.json', size: 1, etag: null }], bytes: 1 },
      { repo: 'org/b', revision: 'main', files: [{ file: 'config.json', size: 0, etag: 'e' }], bytes: 0 },
    ]);
    await cache.put(known, new Uint8Array([7, 7]), null);
    expect(await cache.stat(known)).toMatchObject({ missing: false, size: 2 });
    await cache.delete(known);
    await cache.delete(a);
    expect(await cache.stat(a)).toBeNull();
    await cache.deleteModel('org/a', 'refs/pr/1');
    expect((await cache.list()).map((m) => `${m.repo}@${m.revision}`)).toEqual(['org/b@main']);
    await cache.put(a, new Uint8Array([9]), null);
    await cache.deleteModel('org/a');
    expect(await cache.stat(a)).toBeNull();
    expect(await cache.stat({ ...a, file: 'model.safetensors' })).toBeNull();
    expect((await cache.list()).map((m) => m.repo)).toEqual(['org/b']);
  });
});

describe('the disk store', () => {
  let hub: HubServer;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => hub.close());

  it('is OPD_LAB_CACHE, else ~/.cache/opd-lab', () => {
    expect(defaultCacheDir({ OPD_LAB_CACHE: '/tmp/x' })).toBe('/tmp/x');
    expect(defaultCacheDir({ HOME: '/home/someone' } as NodeJS.ProcessEnv)).toMatch(/\.cache\/opd-lab$/);
  });

  it('refuses a file name that would leave the cache', async () => {
    const cache = diskCache(join(dir, 'escape'));
    await expect(cache.put({ repo: 'org/a', revision: 'main', file: '../../x' }, new Uint8Array(1), null)).rejects.toThrow(/not a plain relative path/);
  });

  it('serves a later process with no request; a truncated file is an error, dropped, and fetched anew', async () => {
    const root = join(dir, 'shared');
    const id = 'opd-lab-test/gpt2-small';
    const first = await hubSource(id, { endpoint: hub.url, cache: diskCache(root) }).read('tokenizer.json');
    const stored = join(root, 'hub', 'opd-lab-test', 'gpt2-small', 'main', 'files', 'tokenizer.json');
    expect(readFileSync(stored).equals(first)).toBe(true);
    const record = JSON.parse(readFileSync(join(root, 'hub', 'opd-lab-test', 'gpt2-small', 'main', 'records', 'tokenizer.json.json'), 'utf8'));
    expect(record).toMatchObject({ size: first.length, etag: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const before = hub.requests.length;
    const again = await hubSource(id, { endpoint: 'http://127.0.0.1:9', cache: diskCache(root) }).read('tokenizer.json');
    expect(Buffer.from(again).equals(first)).toBe(true);
    expect(hub.requests.length).toBe(before);

    truncateSync(stored, 100);
    const e = await hubSource(id, { endpoint: 'http://127.0.0.1:9', cache: diskCache(root) }).read('tokenizer.json').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ModelFetchError);
    expect((e as ModelFetchError).kind).toBe('mismatch');
    expect((e as ModelFetchError).message).toBe(`The cached tokenizer.json of ${id} in ${root} is 100 bytes but was stored as ${first.length} bytes: it was damaged, so it has been removed; load the model again to download it anew.`);
    expect(await diskCache(root).stat({ repo: id, revision: 'main', file: 'tokenizer.json' })).toBeNull();
    const fetched = await hubSource(id, { endpoint: hub.url, cache: diskCache(root) }).read('tokenizer.json');
    expect(Buffer.from(fetched).equals(first)).toBe(true);
    expect(hub.requests.length).toBe(before + 1);
  });

  it('a record that is not JSON counts as nothing cached', async () => {
    const root = join(dir, 'garbled');
    const cache = diskCache(root);
    const key = { repo: 'org/a', revision: 'main', file: 'config.json' };
    await cache.put(key, new Uint8Array([1]), null);
    writeFileSync(join(root, 'hub', 'org', 'a', 'main', 'records', 'config.json.json'), '{not json');
    expect(await cache.stat(key)).toBeNull();
  });
});
