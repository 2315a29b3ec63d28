/**
 * Downloading one file over HTTP(S) for a model folder, in the browser worker and in Node:
 * redirects followed as the Hub uses them (a resolve URL answers 302 to a CDN, carrying the
 * file's X-Linked-Etag and X-Linked-Size), an idle timeout, a retry after a dropped connection,
 * progress by bytes, the bytes checked against the announced size and ETag, and every failure a
 * typed ModelFetchError with one sentence naming the file and what to do.
 */
import { ModelFetchError, type FetchErrorKind } from '../errors';

export interface HttpOptions {
  /** The fetch to use (tests pass their own). */
  fetch?: typeof fetch;
  /** A Hugging Face access token, sent as `Authorization: Bearer` to the first host only. */
  token?: string;
  /** Give up when the server sends nothing (no answer, no bytes) for this long. Default 30 s. */
  timeoutMs?: number;
  /** Tries after the first when the connection drops or the server fails (5xx). Default 2. */
  retries?: number;
  /** Pause before a retry. Default 200 ms. */
  retryDelayMs?: number;
  /** Where the person can allow more time, for the timeout's sentence (the CLI: HF_HUB_DOWNLOAD_TIMEOUT). */
  timeoutHint?: string;
  /** Where the person sets the token, for the sentences about access (the CLI: HF_TOKEN). */
  tokenHint?: string;
  /** Where the person sets the endpoint, for the unreachable host's sentence (the CLI: HF_ENDPOINT). */
  endpointHint?: string;
  signal?: AbortSignal;
}

/** What a file is, for the sentences: the folder's label, the file, and the Hub id when it is one. */
export interface FileContext {
  folder: string;
  file: string;
  hub?: { repo: string; revision: string; endpoint: string };
}

export interface FetchedFile {
  bytes: Uint8Array;
  /** The file's ETag without quotes (X-Linked-Etag of the Hub's redirect, else ETag), or null. */
  etag: string | null;
  /** The URL that finally served the bytes (after redirects). */
  url: string;
}

export type FetchResult = { found: true; file: FetchedFile } | { found: false; status: number; errorCode: string | null };

export const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 2;
const MAX_REDIRECTS = 10;
/** Node's codes for a connection that opened and then broke: worth another try. */
const DROP_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);

/** The innermost cause of a fetch failure (Node wraps the socket's error in `cause`). */
function causeOf(e: unknown): { code?: string; text: string } {
  let current: unknown = e;
  let code: string | undefined;
  let text = e instanceof Error ? e.message : String(e);
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const c = (current as NodeJS.ErrnoException).code;
    if (typeof c === 'string') code = c;
    text = current.message || text;
    current = (current as Error & { cause?: unknown }).cause;
  }
  return { code, text };
}

/** An ETag as a bare value: no W/ prefix, no quotes; null for a weak one (it does not name the bytes). */
export function normalizeEtag(raw: string | null): string | null {
  if (!raw) return null;
  if (raw.startsWith('W/')) return null;
  return raw.replace(/^"|"$/g, '') || null;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Why the bytes do not match the ETag, or null when they do or the ETag cannot be checked.
 * The Hub's ETags are content hashes: the SHA-256 of the file for LFS files (64 hex digits),
 * git's blob SHA-1 ("blob <size>\0" + bytes) for the others (40 hex digits).
 */
export async function etagProblem(bytes: Uint8Array, etag: string | null): Promise<string | null> {
  const subtle = globalThis.crypto?.subtle;
  if (!etag || !subtle) return null;
  if (/^[0-9a-f]{64}$/i.test(etag)) {
    const sha = hex(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    return sha === etag.toLowerCase() ? null : `its SHA-256 is ${sha}`;
  }
  if (/^[0-9a-f]{40}$/i.test(etag)) {
    const header = new TextEncoder().encode(`blob ${bytes.length}\0`);
    const blob = new Uint8Array(header.length + bytes.length);
    blob.set(header);
    blob.set(bytes, header.length);
    const sha = hex(await subtle.digest('SHA-1', blob));
    return sha === etag.toLowerCase() ? null : `its git blob SHA-1 is ${sha}`;
  }
  return null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One try's failure that another try may cure. */
class Retryable extends Error {
  constructor(
    readonly kind: FetchErrorKind,
    readonly detail: string,
    readonly status?: number,
  ) {
    super(detail);
  }
}

function describe(url: string, ctx: FileContext): string {
  return ctx.hub ? `${ctx.file} of ${ctx.folder}` : url;
}

function fail(kind: FetchErrorKind, message: string, ctx: FileContext, status?: number): ModelFetchError {
  return new ModelFetchError(kind, message, ctx.folder, ctx.file, status);
}

/** The sentence for an HTTP status that is neither success nor a missing file. */
function statusError(url: string, response: Response, ctx: FileContext, options: HttpOptions): ModelFetchError {
  const status = response.status;
  const code = response.headers.get('x-error-code');
  const hub = ctx.hub;
  const tokenHint = options.tokenHint ? ` (${options.tokenHint})` : '';
  if (hub && code === 'RepoNotFound') {
    return fail('not-found', `There is no model ${hub.repo} on ${hub.endpoint} (HTTP ${status}): check the id (ORG/NAME), or give an access token${tokenHint} if it is a private model.`, ctx, status);
  }
  if (hub && code === 'RevisionNotFound') {
    return fail('not-found', `The model ${hub.repo} on ${hub.endpoint} has no revision '${hub.revision}' (HTTP ${status}): check what follows '@' (a branch, tag or commit).`, ctx, status);
  }
  if (status === 401 || status === 403) {
    if (!hub) return fail('unauthorized', `${url} refused access (HTTP ${status}): the server needs authorization this page cannot give.`, ctx, status);
    const page = `${hub.endpoint}/${hub.repo}`;
    if (!options.token) {
      return fail('unauthorized', `${hub.repo} on ${hub.endpoint} is gated or private (HTTP ${status}): request access at ${page} and give an access token${tokenHint} of an account that has it.`, ctx, status);
    }
    return fail('unauthorized', `The access token was refused for ${hub.repo} on ${hub.endpoint} (HTTP ${status}): request access at ${page}, or give a token${tokenHint} of an account that has it.`, ctx, status);
  }
  return fail('server', `Downloading ${describe(url, ctx)} failed with HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}: the server has a problem; try again later.`, ctx, status);
}

/** The fetches that hide a manual redirect (browsers: type 'opaqueredirect'); they follow redirects themselves. */
const hidesRedirects = new WeakSet<typeof fetch>();

/**
 * GET (or HEAD) `url`, following redirects; answers the first response (the Hub's redirect,
 * with its X-Linked-* headers) and the last. The token goes only to the first URL's origin.
 */
async function request(url: string, method: 'GET' | 'HEAD', options: HttpOptions, signal: AbortSignal): Promise<{ first: Response; last: Response; url: string }> {
  const fetchFn = options.fetch ?? fetch;
  const origin = new URL(url).origin;
  let current = url;
  let first: Response | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = {};
    if (options.token && new URL(current).origin === origin) headers.Authorization = `Bearer ${options.token}`;
    const response = await fetchFn(current, { method, headers, redirect: hidesRedirects.has(fetchFn) ? 'follow' : 'manual', signal });
    if (response.type === 'opaqueredirect') {
      hidesRedirects.add(fetchFn);
      hop--;
      continue;
    }
    first ??= response;
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => undefined);
      current = new URL(location, current).href;
      continue;
    }
    return { first, last: response, url: current };
  }
  throw new Retryable('server', `more than ${MAX_REDIRECTS} redirects`);
}

/** The body's length as the server announced it, when the bytes are not re-encoded on the way. */
function contentLength(response: Response): number | null {
  if (response.headers.get('content-encoding')) return null;
  const raw = response.headers.get('content-length');
  const n = raw === null ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/**
 * Downloads `url`: the bytes, or { found: false } for a missing file (HTTP 404, or the Hub's
 * EntryNotFound). `onBytes(loaded, total)` reports progress (total: Content-Length, or null);
 * after a dropped connection the next try starts again from 0.
 */
export async function fetchFile(url: string, ctx: FileContext, options: HttpOptions = {}, onBytes?: (loaded: number, total: number | null) => void): Promise<FetchResult> {
  const retries = options.retries ?? DEFAULT_RETRIES;
  let last: Retryable | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(options.retryDelayMs ?? 200);
    try {
      return await attemptFetch(url, 'GET', ctx, options, onBytes);
    } catch (e) {
      if (!(e instanceof Retryable)) throw e;
      last = e;
    }
  }
  const tries = retries + 1;
  const host = new URL(url).host;
  if (last!.kind === 'server') {
    throw fail('server', `Downloading ${describe(url, ctx)} failed ${tries === 1 ? 'once' : `${tries} times`} (${last!.detail}): the server has a problem; try again later.`, ctx, last!.status);
  }
  throw fail('dropped', `The connection to ${host} dropped ${tries === 1 ? 'once' : `${tries} times`} while downloading ${describe(url, ctx)} (${last!.detail}): the network or the server is unstable; try again.`, ctx);
}

/** Whether `url` exists (HEAD): true for 2xx, false for 404; anything else is a typed error. */
export async function probeFile(url: string, ctx: FileContext, options: HttpOptions = {}): Promise<boolean> {
  const retries = options.retries ?? DEFAULT_RETRIES;
  let last: Retryable | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(options.retryDelayMs ?? 200);
    try {
      const r = await attemptFetch(url, 'HEAD', ctx, options);
      return r.found;
    } catch (e) {
      if (!(e instanceof Retryable)) throw e;
      last = e;
    }
  }
  throw fail(last!.kind === 'server' ? 'server' : 'dropped', `Asking ${new URL(url).host} for ${describe(url, ctx)} failed ${retries + 1} times (${last!.detail}): the network or the server is unstable; try again.`, ctx, last!.status);
}

async function attemptFetch(url: string, method: 'GET' | 'HEAD', ctx: FileContext, options: HttpOptions, onBytes?: (loaded: number, total: number | null) => void): Promise<FetchResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
  };
  const outer = options.signal;
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  const host = new URL(url).host;
  const timeoutError = () =>
    fail('timeout', `${host} sent nothing for ${timeoutMs / 1000} s while ${method === 'HEAD' ? 'asked for' : 'downloading'} ${describe(url, ctx)}: the server is slow or stalled; try again later${options.timeoutHint ? `, or allow more time (${options.timeoutHint})` : ''}.`, ctx);
  arm();
  try {
    let first: Response;
    let response: Response;
    let finalUrl: string;
    try {
      ({ first, last: response, url: finalUrl } = await request(url, method, options, controller.signal));
    } catch (e) {
      if (e instanceof Retryable) throw e;
      if (timedOut) throw timeoutError();
      if (outer?.aborted) throw e;
      const cause = causeOf(e);
      if (cause.code && DROP_CODES.has(cause.code)) throw new Retryable('dropped', cause.code);
      const where = ctx.hub ? ` (the Hub endpoint${options.endpointHint ? `, ${options.endpointHint}` : ''})` : '';
      throw fail('unreachable', `Could not reach ${host} for ${describe(url, ctx)} (${cause.code ?? cause.text}): the host is unreachable; check the address${where}, the network connection, and that the server lets this page read it (CORS).`, ctx);
    }
    const errorCode = response.headers.get('x-error-code');
    if (response.status === 404 && errorCode !== 'RepoNotFound' && errorCode !== 'RevisionNotFound') {
      await response.body?.cancel().catch(() => undefined);
      return { found: false, status: 404, errorCode };
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 500) throw new Retryable('server', `HTTP ${response.status}`, response.status);
      throw statusError(url, response, ctx, options);
    }
    const linked = first.headers.get('x-linked-etag');
    const etag = normalizeEtag(linked ?? response.headers.get('etag'));
    // The Hub's own ETags are content hashes; a CDN's (reached by a redirect whose X-Linked-Etag
    // the browser hides) may be anything 64 hex digits long, so only the former are checked.
    const etagIsHubs = linked !== null || (finalUrl === url && !response.redirected);
    if (method === 'HEAD') {
      await response.body?.cancel().catch(() => undefined);
      return { found: true, file: { bytes: new Uint8Array(0), etag, url: finalUrl } };
    }
    const total = contentLength(response);
    const announced = Number(first.headers.get('x-linked-size') ?? NaN);
    let bytes: Uint8Array;
    let loaded = 0;
    try {
      const chunks: Uint8Array[] = [];
      const reader = response.body?.getReader();
      onBytes?.(0, total);
      while (reader) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        chunks.push(value);
        loaded += value.length;
        onBytes?.(loaded, total);
      }
      bytes = new Uint8Array(loaded);
      let offset = 0;
      for (const c of chunks) {
        bytes.set(c, offset);
        offset += c.length;
      }
    } catch (e) {
      if (timedOut) throw timeoutError();
      if (outer?.aborted) throw e;
      throw new Retryable('dropped', `${causeOf(e).code ?? causeOf(e).text} after ${loaded}${total !== null ? ` of ${total}` : ''} bytes`);
    }
    if (total !== null && loaded < total) throw new Retryable('dropped', `the body ended after ${loaded} of the ${total} bytes of its Content-Length`);
    if (total !== null && loaded > total) {
      throw fail('mismatch', `${describe(url, ctx)} came as ${loaded} bytes, more than its Content-Length of ${total}: the server's answer is damaged; try again, or report it to the server's keeper.`, ctx);
    }
    if (Number.isInteger(announced) && announced >= 0 && announced !== loaded) {
      throw fail('mismatch', `${describe(url, ctx)} came as ${loaded} bytes but the Hub announced ${announced} (X-Linked-Size): the download or the server's copy is damaged; try again later.`, ctx);
    }
    const problem = etagIsHubs ? await etagProblem(bytes, etag) : null;
    if (problem) {
      throw fail('mismatch', `${describe(url, ctx)} does not match its ETag ${etag} (${problem}): the download or the server's copy is damaged; try again later.`, ctx);
    }
    return { found: true, file: { bytes, etag, url: finalUrl } };
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}
