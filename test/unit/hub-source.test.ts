/**
 * A Hub model read through the cache, against the local Hub (test/hub/server.ts): redirects and
 * ETags, the cache with no request at all, progress, and every failure as a typed sentence.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startHub, FIXTURES_DIR, type HubServer } from '../hub/server';
import { hubSource, type HubProgress } from '../../workers/models/hub/source';
import { memoryCache } from '../../workers/models/hub/cache';
import { ModelFetchError, ModelFolderError, urlSource } from '../../workers/models/source';
import { readModelFolder } from '../../workers/models/folder';

const ID = 'opd-lab-test/llama-tied';
const fixture = (file: string) => new Uint8Array(readFileSync(join(FIXTURES_DIR, 'llama-tied', file)));
/** Fast failures: no test waits long for a retry or a timeout. */
const FAST = { retryDelayMs: 5, timeoutMs: 2_000 };
/** Byte equality without vitest's element-by-element diff (slow on 400 kB). */
const same = (a: Uint8Array | null | undefined, b: Uint8Array) => expect(a && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)).toBe(true);

let hub: HubServer;
beforeAll(async () => {
  hub = await startHub({ gated: { 'opd-lab-test/qwen2': 'hf_open_sesame' } });
});
afterAll(async () => hub.close());
beforeEach(() => {
  hub.clearFaults();
  hub.requests.length = 0;
});

async function failure(p: Promise<unknown>): Promise<ModelFetchError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ModelFetchError);
  expect(e).toBeInstanceOf(ModelFolderError);
  return e as ModelFetchError;
}

describe('a Hub model through the cache', () => {
  it('follows the redirect to the CDN, stores size and X-Linked-Etag, and reads back the same bytes', async () => {
    const cache = memoryCache();
    const source = hubSource(ID, { endpoint: hub.url, cache, ...FAST });
    const weights = await source.read('model.safetensors');
    same(weights, fixture('model.safetensors'));
    expect(hub.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      `GET /${ID}/resolve/main/model.safetensors 302`,
      `GET /cdn/${ID}/main/model.safetensors 200`,
    ]);
    const entry = await cache.stat({ repo: ID, revision: 'main', file: 'model.safetensors' });
    expect(entry).toMatchObject({ missing: false, size: weights.length, etag: createHash('sha256').update(weights).digest('hex') });
    // A small file is served at once, its ETag git's blob SHA-1.
    const config = await source.read('config.json');
    const sha1 = createHash('sha1').update(`blob ${config.length}\0`).update(config).digest('hex');
    expect(await cache.stat({ repo: ID, revision: 'main', file: 'config.json' })).toMatchObject({ size: config.length, etag: sha1 });
  });

  it('loads a whole folder, then loads it again from the cache with no request at all, the server gone', async () => {
    const cache = memoryCache();
    const first = await readModelFolder(hubSource(ID, { endpoint: hub.url, cache, ...FAST }));
    expect(hub.requests.length).toBeGreaterThan(4);
    // generation_config.json exists, onnx/model.onnx is never asked for (the decoder is built from the weights).
    const dead = await startHub();
    const endpoint = dead.url;
    await dead.close();
    const before = hub.requests.length;
    const again = await readModelFolder(hubSource(ID, { endpoint, cache, ...FAST }));
    expect(hub.requests.length).toBe(before);
    same(again.onnx, first.onnx);
    expect(again.rawConfig).toEqual(first.rawConfig);
    expect(again.label).toBe(ID);
  });

  it('records a file the model lacks, so the next has() asks nothing', async () => {
    const cache = memoryCache();
    const source = hubSource(ID, { endpoint: hub.url, cache, ...FAST });
    expect(await source.has('onnx/model.onnx')).toBe(false);
    expect(hub.requests.map((r) => r.status)).toEqual([404]);
    expect(await hubSource(ID, { endpoint: 'http://127.0.0.1:9', cache }).has('onnx/model.onnx')).toBe(false);
    expect(hub.requests).toHaveLength(1);
  });

  it('has() asks with a HEAD and downloads nothing; read() then downloads once', async () => {
    const cache = memoryCache();
    const source = hubSource(ID, { endpoint: hub.url, cache, ...FAST });
    expect(await source.has('model.safetensors')).toBe(true);
    expect(hub.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['HEAD 302', 'HEAD 200']);
    expect(await cache.list()).toEqual([]);
    // Recorded as existing: a later load asks nothing about it, even with the Hub gone.
    expect(await hubSource(ID, { endpoint: 'http://127.0.0.1:9', cache }).has('model.safetensors')).toBe(true);
    expect(hub.requests).toHaveLength(2);
    same(await source.read('model.safetensors'), fixture('model.safetensors'));
    expect(await source.has('model.safetensors')).toBe(true);
    expect(hub.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['HEAD 302', 'HEAD 200', 'GET 302', 'GET 200']);
  });

  it('where fetch hides redirects (a browser), lets it follow them and still gets the file', async () => {
    const calls: string[] = [];
    const browserLike = (async (input: RequestInfo | URL, init?: RequestInit) => {
      calls.push(String(init?.redirect));
      const r = await fetch(input, init);
      // A browser answers a manual redirect with an opaque response: no status, no headers.
      return r.status >= 300 && r.status < 400 ? ({ type: 'opaqueredirect', status: 0, headers: new Headers(), body: null } as unknown as Response) : r;
    }) as typeof fetch;
    const cache = memoryCache();
    const source = hubSource(ID, { endpoint: hub.url, cache, ...FAST, fetch: browserLike });
    same(await source.read('model.safetensors'), fixture('model.safetensors'));
    same(await source.read('config.json'), fixture('config.json'));
    expect(calls).toEqual(['manual', 'follow', 'follow']);
    // The CDN's ETag is recorded (the redirect's X-Linked-Etag is hidden).
    expect(await cache.stat({ repo: ID, revision: 'main', file: 'model.safetensors' })).toMatchObject({ etag: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('a cache that cannot store (quota, full disk) warns and the model still loads', async () => {
    const cache = memoryCache();
    cache.put = async () => {
      throw new Error('QuotaExceededError');
    };
    const warnings: string[] = [];
    const source = hubSource(ID, { endpoint: hub.url, cache, ...FAST, onWarning: (w) => warnings.push(w) });
    expect(await source.has('config.json')).toBe(true);
    same(await source.read('config.json'), fixture('config.json'));
    expect(warnings).toEqual([`Could not keep config.json of ${ID} in memory (QuotaExceededError): it loads now but will be downloaded again next time; free some space, for example by deleting cached models.`]);
  });

  it('reports progress: bytes done out of Content-Length per file, and the folder so far', async () => {
    const events: HubProgress[] = [];
    const cache = memoryCache();
    const source = hubSource(ID, { endpoint: hub.url, cache, ...FAST, onProgress: (p) => events.push(p) });
    const config = await source.read('config.json');
    const weights = await source.read('model.safetensors');
    const w = events.filter((e) => e.file === 'model.safetensors');
    expect(w[0]).toMatchObject({ loaded: 0, total: weights.length, done: false, fromCache: false });
    expect(w.at(-1)).toMatchObject({ loaded: weights.length, total: weights.length, done: true, folderLoaded: config.length + weights.length, folderTotal: config.length + weights.length });
    for (let i = 1; i < w.length; i++) expect(w[i].loaded).toBeGreaterThanOrEqual(w[i - 1].loaded);
    // From the cache: one report per file, done at once.
    const cached: HubProgress[] = [];
    await hubSource(ID, { endpoint: hub.url, cache, onProgress: (p) => cached.push(p) }).read('model.safetensors');
    expect(cached).toEqual([{ model: ID, file: 'model.safetensors', loaded: weights.length, total: weights.length, fromCache: true, done: true, folderLoaded: weights.length, folderTotal: weights.length }]);
  });

  it('drops a cached file whose bytes disagree with its recorded size, then downloads it anew', async () => {
    const cache = memoryCache();
    const key = { repo: ID, revision: 'main', file: 'config.json' };
    await hubSource(ID, { endpoint: hub.url, cache }).read('config.json');
    const good = (await cache.read(key))!;
    // Damage the bytes under the record (as a truncated file on disk would be).
    const record = await cache.stat(key);
    await cache.put(key, good.subarray(0, 10), null);
    const damaged = cache.stat.bind(cache);
    cache.stat = async (k) => (k.file === 'config.json' ? record : damaged(k));
    const e = await failure(hubSource(ID, { endpoint: hub.url, cache }).read('config.json'));
    expect(e.kind).toBe('mismatch');
    expect(e.message).toMatch(/cached config\.json of opd-lab-test\/llama-tied .* is 10 bytes but was stored as \d+ bytes: .*removed; load the model again/);
    cache.stat = damaged;
    expect(await cache.stat(key)).toBeNull();
    same(await hubSource(ID, { endpoint: hub.url, cache }).read('config.json'), good);
  });

  it('with verifyCached, a cached file whose bytes disagree with its ETag is dropped', async () => {
    const cache = memoryCache();
    const key = { repo: ID, revision: 'main', file: 'config.json' };
    const good = await hubSource(ID, { endpoint: hub.url, cache }).read('config.json');
    const { etag } = (await cache.stat(key)) as { etag: string };
    const bad = good.slice();
    bad[0] ^= 1;
    await cache.put(key, bad, etag);
    const e = await failure(hubSource(ID, { endpoint: hub.url, cache, verifyCached: true }).read('config.json'));
    expect(e.kind).toBe('mismatch');
    expect(e.message).toContain(`does not match its ETag ${etag}`);
    expect(await cache.stat(key)).toBeNull();
  });
});

describe('a Hub model that cannot be had', () => {
  it('an unknown id: not-found, naming the id', async () => {
    const e = await failure(readModelFolder(hubSource('opd-lab-test/no-such-model', { endpoint: hub.url, ...FAST })));
    expect(e.kind).toBe('not-found');
    expect(e.status).toBe(404);
    expect(e.message).toBe(`There is no model opd-lab-test/no-such-model on ${hub.url} (HTTP 404): check the id (ORG/NAME), or give an access token if it is a private model.`);
  });

  it('a bad id or endpoint: a ModelFolderError with the sentence', () => {
    expect(() => hubSource('not-an-id')).toThrow(ModelFolderError);
    expect(() => hubSource('not-an-id')).toThrow(/'not-an-id' is not a Hugging Face model id: an id looks like ORG\/NAME/);
    expect(() => hubSource(ID, { endpoint: 'huggingface.co' })).toThrow(ModelFolderError);
    expect(() => hubSource(ID, { endpoint: 'huggingface.co' })).toThrow("The Hub endpoint 'huggingface.co' is not a URL");
  });

  it('an unknown revision: not-found, naming the revision', async () => {
    const e = await failure(hubSource(`${ID}@v9`, { endpoint: hub.url, ...FAST }).has('config.json'));
    expect(e.kind).toBe('not-found');
    expect(e.message).toMatch(/has no revision 'v9'/);
  });

  it('a gated model: 401 says a token is needed, 403 that access must be requested; the right token opens it', async () => {
    const gated = 'opd-lab-test/qwen2';
    const e401 = await failure(hubSource(gated, { endpoint: hub.url, ...FAST, tokenHint: 'HF_TOKEN' }).read('config.json'));
    expect(e401.kind).toBe('unauthorized');
    expect(e401.status).toBe(401);
    expect(e401.message).toBe(`${gated} on ${hub.url} is gated or private (HTTP 401): request access at ${hub.url}/${gated} and give an access token (HF_TOKEN) of an account that has it.`);
    const e403 = await failure(hubSource(gated, { endpoint: hub.url, ...FAST, token: 'hf_wrong' }).read('config.json'));
    expect(e403.kind).toBe('unauthorized');
    expect(e403.message).toMatch(/access token was refused .*request access at/);
    hub.requests.length = 0;
    const bytes = await hubSource(gated, { endpoint: hub.url, ...FAST, token: 'hf_open_sesame' }).read('model.safetensors');
    same(bytes, readFileSync(join(FIXTURES_DIR, 'qwen2', 'model.safetensors')));
    // The token goes to the Hub, and to the CDN here only because it is the same origin.
    expect(hub.requests[0].authorization).toBe('Bearer hf_open_sesame');
  });

  it('an unreachable host: said to be unreachable, not "has no config.json"', async () => {
    const dead = await startHub();
    const endpoint = dead.url;
    await dead.close();
    const e = await failure(readModelFolder(hubSource(ID, { endpoint, ...FAST, endpointHint: 'HF_ENDPOINT' })));
    expect(e.kind).toBe('unreachable');
    expect(e.message).toMatch(new RegExp(`^Could not reach 127\\.0\\.0\\.1:\\d+ for config\\.json of ${ID} \\(ECONNREFUSED\\): the host is unreachable; check the address \\(the Hub endpoint, HF_ENDPOINT\\)`));
  });

  it('a slow server: a timeout that says so', async () => {
    hub.fault({ file: 'config.json', fault: { kind: 'slow', delayMs: 600 } });
    const t0 = performance.now();
    const e = await failure(hubSource(ID, { endpoint: hub.url, timeoutMs: 150, retryDelayMs: 5, timeoutHint: 'HF_HUB_DOWNLOAD_TIMEOUT' }).read('config.json'));
    expect(performance.now() - t0).toBeLessThan(550);
    expect(e.kind).toBe('timeout');
    expect(e.message).toMatch(/^127\.0\.0\.1:\d+ sent nothing for 0\.15 s while downloading config\.json of opd-lab-test\/llama-tied: the server is slow or stalled; try again later, or allow more time \(HF_HUB_DOWNLOAD_TIMEOUT\)\.$/);
  });

  it('a server that stalls mid-body: the same timeout', async () => {
    hub.fault({ file: 'tokenizer.json', fault: { kind: 'stall', delayMs: 600 } });
    const e = await failure(hubSource(ID, { endpoint: hub.url, timeoutMs: 150, retryDelayMs: 5 }).read('tokenizer.json'));
    expect(e.kind).toBe('timeout');
  });

  it('a dropped connection: retried, and loaded when a retry succeeds', async () => {
    hub.fault({ file: 'model.safetensors', fault: { kind: 'drop' }, times: 1 });
    const bytes = await hubSource(ID, { endpoint: hub.url, ...FAST }).read('model.safetensors');
    same(bytes, fixture('model.safetensors'));
    expect(hub.requests.filter((r) => r.path.startsWith('/cdn/')).map((r) => r.fault ?? 'ok')).toEqual(['drop', 'ok']);
  });

  it('a connection that drops on every try: a sentence after the retries, and nothing cached', async () => {
    hub.fault({ file: 'model.safetensors', fault: { kind: 'drop' } });
    const cache = memoryCache();
    const e = await failure(hubSource(ID, { endpoint: hub.url, cache, ...FAST, retries: 2 }).read('model.safetensors'));
    expect(e.kind).toBe('dropped');
    expect(e.message).toMatch(/^The connection to 127\.0\.0\.1:\d+ dropped 3 times while downloading model\.safetensors of opd-lab-test\/llama-tied \(.* after \d+ of 429336 bytes\): the network or the server is unstable; try again\.$/);
    expect(hub.requests.filter((r) => r.path.startsWith('/cdn/'))).toHaveLength(3);
    expect(await cache.list()).toEqual([]);
  });

  it('a size or an ETag that disagrees with the bytes: mismatch, nothing cached', async () => {
    const cache = memoryCache();
    hub.fault({ file: 'model.safetensors', fault: { kind: 'wrong-size' }, times: 1 });
    const size = await failure(hubSource(ID, { endpoint: hub.url, cache, ...FAST }).read('model.safetensors'));
    expect(size.kind).toBe('mismatch');
    expect(size.message).toMatch(/^model\.safetensors of opd-lab-test\/llama-tied came as (\d+) bytes but the Hub announced \d+ \(X-Linked-Size\)/);
    hub.fault({ file: 'config.json', fault: { kind: 'wrong-etag' }, times: 1 });
    const etag = await failure(hubSource(ID, { endpoint: hub.url, cache, ...FAST }).read('config.json'));
    expect(etag.kind).toBe('mismatch');
    expect(etag.message).toMatch(/^config\.json of opd-lab-test\/llama-tied does not match its ETag [0-9a-f]{64} \(its SHA-256 is [0-9a-f]{64}\)/);
    expect(await cache.list()).toEqual([]);
  });

  it('a server error (5xx) is retried, then a sentence', async () => {
    hub.fault({ file: 'config.json', fault: { kind: 'status', status: 503 } });
    const e = await failure(hubSource(ID, { endpoint: hub.url, ...FAST, retries: 1 }).read('config.json'));
    expect(e.kind).toBe('server');
    expect(e.message).toMatch(/failed 2 times \(HTTP 503\): the server has a problem; try again later\.$/);
  });
});

describe('a model folder at a URL', () => {
  it('an unreachable host is unreachable in has() too, not a missing config.json', async () => {
    const dead = await startHub();
    const base = `${dead.url}/${ID}/resolve/main/`;
    await dead.close();
    const e = await failure(readModelFolder(urlSource(base, FAST)));
    expect(e.kind).toBe('unreachable');
    expect(e.message).toMatch(/^Could not reach 127\.0\.0\.1:\d+ for http:\/\/.*config\.json \(ECONNREFUSED\): the host is unreachable/);
  });

  it('reads a served folder, and a missing file is absent', async () => {
    const source = urlSource(`${hub.url}/${ID}/resolve/main/`, FAST);
    expect(await source.has('config.json')).toBe(true);
    expect(await source.has('onnx/model.onnx')).toBe(false);
    same(await source.read('model.safetensors'), fixture('model.safetensors'));
    const e = await failure(source.read('onnx/model.onnx'));
    expect(e.kind).toBe('not-found');
  });
});
