/**
 * The engine's side of Hub model ids, driven through the protocol as the page's worker drives it
 * (no GPU needed to load a folder): model.load by id against the local Hub with model.progress
 * events, the second load from the cache with no request, cache.list and cache.delete, and the
 * failures as sentences that leave the loaded model in place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { LabEngine } from '../../workers/engine/lab';
import type { LabCommand, LabEvent, LabEventOf } from '../../workers/protocol';
import { memoryCache } from '../../workers/models/hub/cache';
import { FIXTURES_DIR, startHub, type HubServer } from '../hub/server';

const STUDENT = 'opd-lab-test/llama-tied';
const FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

let hub: HubServer;
const events: LabEvent[] = [];
const engine = new LabEngine({ gpu: undefined, emit: (e) => events.push(e), crossOriginIsolated: false, modelCache: memoryCache });
let nextId = 1;
async function send(command: Record<string, unknown> & { type: string }): Promise<LabEvent[]> {
  const requestId = nextId++;
  const from = events.length;
  await engine.handle({ ...command, requestId } as LabCommand);
  return events.slice(from).filter((e) => 'requestId' in e && e.requestId === requestId);
}
const last = (es: LabEvent[]) => es[es.length - 1];

beforeAll(async () => {
  hub = await startHub({ gated: { 'opd-lab-test/qwen2': 'hf_open_sesame' } });
});
afterAll(async () => hub?.close());

describe('Hub ids in the lab engine', () => {
  it('loads by id with progress, then from the cache with no request; lists and deletes the cached model', async () => {
    const first = await send({ type: 'model.load', role: 'student', hub: STUDENT, endpoint: hub.url });
    expect(last(first).type).toBe('model.loaded');
    expect((last(first) as LabEventOf<'model.loaded'>).model.label).toBe(STUDENT);
    const progress = first.filter((e): e is LabEventOf<'model.progress'> => e.type === 'model.progress');
    // Every file read (the folder's main files among them) has one last report, its size on disk as done and total.
    const read = [...new Set(progress.filter((p) => p.done).map((p) => p.file))];
    expect(read).toEqual(expect.arrayContaining(FILES));
    const sizes = Object.fromEntries(read.map((f) => [f, statSync(join(FIXTURES_DIR, 'llama-tied', f)).size]));
    for (const f of read) expect(progress.filter((p) => p.file === f && p.done).map((p) => [p.loaded, p.total, p.fromCache])).toEqual([[sizes[f], sizes[f], false]]);
    // The folder's sums reach the sizes' sum.
    const end = progress[progress.length - 1];
    const sum = read.reduce((a, f) => a + sizes[f], 0);
    expect([end.folderLoaded, end.folderTotal]).toEqual([sum, sum]);
    expect(progress.every((p) => p.role === 'student' && p.model === STUDENT)).toBe(true);

    const listed = last(await send({ type: 'cache.list' })) as LabEventOf<'cache.listed'>;
    expect(listed.models.map((m) => [m.repo, m.revision, m.bytes])).toEqual([[STUDENT, 'main', sum]]);
    expect(listed.bytes).toBe(sum);
    expect(listed.where).toBe('memory');

    hub.requests.length = 0;
    const again = await send({ type: 'model.load', role: 'student', hub: STUDENT, endpoint: hub.url });
    expect(last(again).type).toBe('model.loaded');
    expect(hub.requests).toEqual([]);
    expect(again.filter((e) => e.type === 'model.progress').every((e) => (e as LabEventOf<'model.progress'>).fromCache)).toBe(true);

    const deleted = last(await send({ type: 'cache.delete', repo: STUDENT })) as LabEventOf<'cache.listed'>;
    expect([deleted.models, deleted.bytes]).toEqual([[], 0]);
    hub.requests.length = 0;
    expect(last(await send({ type: 'model.load', role: 'student', hub: STUDENT, endpoint: hub.url })).type).toBe('model.loaded');
    expect(hub.requests.filter((r) => r.method === 'GET').length).toBeGreaterThanOrEqual(FILES.length);
  });

  it('shows the bytes a stalled download had: a held-back report is sent when its time comes', async () => {
    const file = 'model.safetensors';
    const size = statSync(join(FIXTURES_DIR, 'llama-teacher', file)).size;
    hub.fault({ fault: { kind: 'stall', delayMs: 600 }, repo: 'opd-lab-test/llama-teacher', file });
    const es = await send({ type: 'model.load', role: 'teacher', hub: 'opd-lab-test/llama-teacher', endpoint: hub.url });
    hub.clearFaults();
    expect(last(es).type).toBe('model.loaded');
    const during = es.filter((e): e is LabEventOf<'model.progress'> => e.type === 'model.progress' && e.file === file && !e.done);
    // The first half came at once, then nothing for 600 ms: its last bytes were reported during the pause.
    expect(during.map((e) => e.loaded)).toContain(Math.floor(size / 2));
    expect(during.every((e) => e.total === size)).toBe(true);
  });

  it('opens a gated model with the token the page gives, and says what to do without it', async () => {
    const refused = last(await send({ type: 'model.load', role: 'teacher', hub: 'opd-lab-test/qwen2', endpoint: hub.url }));
    expect(refused).toMatchObject({ type: 'error', error: { code: 'model-folder' } });
    expect((refused as LabEventOf<'error'>).error.message).toMatch(/^opd-lab-test\/qwen2 on http:\/\/127\.0\.0\.1:\d+ is gated or private \(HTTP 401\): request access at .* and give an access token \(in the Models panel\)/);
    hub.requests.length = 0;
    const opened = last(await send({ type: 'model.load', role: 'teacher', hub: 'opd-lab-test/qwen2', endpoint: hub.url, token: 'hf_open_sesame' }));
    expect(opened.type).toBe('model.loaded');
    // The token went as a bearer token to the endpoint (the local Hub's CDN paths are on the same origin).
    expect(hub.requests.length).toBeGreaterThan(0);
    expect(hub.requests.filter((r) => r.authorization !== 'Bearer hf_open_sesame')).toEqual([]);
  });

  it('answers an unknown id, a bad id and an unreachable endpoint with one sentence each', async () => {
    const unknown = last(await send({ type: 'model.load', role: 'teacher', hub: 'opd-lab-test/nope', endpoint: hub.url }));
    expect(unknown).toMatchObject({ type: 'error', error: { code: 'model-folder' } });
    expect((unknown as LabEventOf<'error'>).error.message).toMatch(/^There is no model opd-lab-test\/nope on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/);

    const bad = last(await send({ type: 'model.load', role: 'teacher', hub: 'not an id' }));
    expect(bad).toMatchObject({ type: 'error', error: { code: 'bad-request' } });

    // A model not in the cache (the student is: it would load with no network at all).
    const unreachable = last(await send({ type: 'model.load', role: 'teacher', hub: 'opd-lab-test/llama-teacher@other', endpoint: 'http://127.0.0.1:9' }));
    expect(unreachable).toMatchObject({ type: 'error', error: { code: 'model-folder' } });
    expect((unreachable as LabEventOf<'error'>).error.message).toMatch(/^Could not reach 127\.0\.0\.1:9 for config\.json of opd-lab-test\/llama-teacher@other .*the host is unreachable; check the address \(the Hub endpoint, set in the Models panel\)/);
  });
});
