/**
 * A local stand-in for the Hugging Face Hub, in the test process, for unit and e2e tests (no test
 * reaches the internet). Laid out like the Hub: `GET|HEAD /ORG/NAME/resolve/REVISION/FILE`.
 *   - A large file (.safetensors, .onnx, .onnx_data) answers 302 to `/cdn/ORG/NAME/REVISION/FILE`
 *     with X-Linked-Etag (its SHA-256) and X-Linked-Size, as the Hub redirects LFS files to its
 *     CDN; the CDN answers the bytes with ETag = the SHA-256. Any other file answers 200 at once
 *     with ETag = git's blob SHA-1, as the Hub does.
 *   - An unknown model: 404 with X-Error-Code RepoNotFound; an unknown revision: 404
 *     RevisionNotFound; a missing file: 404 EntryNotFound.
 *   - A gated model (`gated`: repo → token): 401 GatedRepo without a token, 403 with a wrong one.
 *   - CORS headers on every answer (and OPTIONS), so a page on another port can read it.
 * Failure modes are switched on per request with `fault()` (see HubFault), each for a number of
 * requests or until `clearFaults()`. Every request is logged in `requests`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const FIXTURES_DIR = join(import.meta.dirname, '..', 'fixtures', 'hf');
/** The organisation the fixture folders are served under: test/fixtures/hf/qwen3 is `opd-lab-test/qwen3`. */
export const FIXTURE_ORG = 'opd-lab-test';

export type HubFault =
  /** Answer this status (with an X-Error-Code when given) instead of the file. */
  | { kind: 'status'; status: number; errorCode?: string }
  /** Wait this long before answering at all. */
  | { kind: 'slow'; delayMs: number }
  /** Send half the body, then nothing for this long, then the rest. */
  | { kind: 'stall'; delayMs: number }
  /** Send the headers (with the full Content-Length) and half the body, then close the connection. */
  | { kind: 'drop' }
  /** Announce a size one byte more than the file's (X-Linked-Size) and send the file. */
  | { kind: 'wrong-size' }
  /** Announce the ETag of other bytes and send the file. */
  | { kind: 'wrong-etag' };

export interface FaultRule {
  fault: HubFault;
  /** Only requests for this model (ORG/NAME). */
  repo?: string;
  /** Only requests for this file. */
  file?: string;
  /** How many matching requests get the fault; every one when not given. */
  times?: number;
}

export interface HubRequest {
  method: string;
  /** The path asked for, as sent (with the query, if any). */
  path: string;
  status: number;
  authorization: string | null;
  /** The fault applied, if any. */
  fault?: HubFault['kind'];
}

export interface HubServerOptions {
  /** Models served, ORG/NAME → folder. Default: each folder of test/fixtures/hf as opd-lab-test/NAME. */
  models?: Record<string, string>;
  /** Gated models: ORG/NAME → the token that opens it. */
  gated?: Record<string, string>;
  /** Revisions every model has. Default ['main']. */
  revisions?: string[];
  /** Port on 127.0.0.1 (0: any free port). */
  port?: number;
}

export interface HubServer {
  /** The endpoint, e.g. http://127.0.0.1:40123 (no trailing '/'): HF_ENDPOINT for the CLI. */
  url: string;
  requests: HubRequest[];
  fault(rule: FaultRule): void;
  clearFaults(): void;
  close(): Promise<void>;
}

/** The fixture folders of test/fixtures/hf, as opd-lab-test/NAME → folder. */
export function fixtureModels(dir = FIXTURES_DIR, org = FIXTURE_ORG): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) if (statSync(join(dir, name)).isDirectory()) out[`${org}/${name}`] = join(dir, name);
  return out;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const gitSha1 = (bytes: Uint8Array) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const isLarge = (file: string) => /\.(safetensors|onnx|onnx_data)$|_data(_\d+)?$/.test(file);

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, range',
  'access-control-expose-headers': 'etag, x-linked-etag, x-linked-size, content-length, x-error-code, location',
};

export async function startHub(options: HubServerOptions = {}): Promise<HubServer> {
  const models = options.models ?? fixtureModels();
  const gated = options.gated ?? {};
  const revisions = new Set(options.revisions ?? ['main']);
  const requests: HubRequest[] = [];
  let faults: FaultRule[] = [];

  const takeFault = (repo: string, file: string, kinds: HubFault['kind'][]): HubFault | undefined => {
    const rule = faults.find((r) => kinds.includes(r.fault.kind) && (!r.repo || r.repo === repo) && (!r.file || r.file === file));
    if (!rule) return undefined;
    if (rule.times !== undefined && --rule.times <= 0) faults = faults.filter((r) => r !== rule);
    return rule.fault;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const log: HubRequest = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0, authorization: req.headers.authorization ?? null };
    requests.push(log);
    const answer = (status: number, headers: Record<string, string | number> = {}, body?: Uint8Array | string) => {
      log.status = status;
      res.writeHead(status, { ...CORS, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method === 'OPTIONS') return answer(204);
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, { 'content-type': 'text/plain' }, 'method not allowed');
    const path = decodeURI((req.url ?? '/').split('?')[0]);
    const cdn = path.match(/^\/cdn\/([^/]+\/[^/]+)\/([^/]+)\/(.+)$/);
    const resolve = path.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    const match = cdn ?? resolve;
    if (!match) return answer(404, { 'content-type': 'text/plain' }, 'not found');
    const repo = match[1];
    const revision = decodeURIComponent(match[2]);
    const file = match[3];
    const folder = models[repo];
    if (!folder) return answer(404, { 'x-error-code': 'RepoNotFound', 'content-type': 'text/plain' }, 'Repository not found');
    if (!revisions.has(revision)) return answer(404, { 'x-error-code': 'RevisionNotFound', 'content-type': 'text/plain' }, 'Revision not found');
    if (!cdn && gated[repo] !== undefined) {
      const given = req.headers.authorization?.replace(/^Bearer /, '');
      if (!given) return answer(401, { 'x-error-code': 'GatedRepo', 'content-type': 'text/plain' }, 'Access to this model is restricted: you must be authenticated.');
      if (given !== gated[repo]) return answer(403, { 'x-error-code': 'GatedRepo', 'content-type': 'text/plain' }, 'Access to this model is restricted and you are not in the authorized list.');
    }
    const target = join(folder, ...file.split('/'));
    if (file.split('/').includes('..') || !existsSync(target) || !statSync(target).isFile()) {
      return answer(404, { 'x-error-code': 'EntryNotFound', 'content-type': 'text/plain' }, 'Entry not found');
    }
    // Faults that replace or delay the answer happen where the person's request first lands.
    if (!cdn) {
      const status = takeFault(repo, file, ['status']);
      if (status?.kind === 'status') {
        log.fault = 'status';
        return answer(status.status, { 'content-type': 'text/plain', ...(status.errorCode ? { 'x-error-code': status.errorCode } : {}) }, `fault: HTTP ${status.status}`);
      }
      const slow = takeFault(repo, file, ['slow']);
      if (slow?.kind === 'slow') {
        log.fault = 'slow';
        await new Promise((r) => setTimeout(r, slow.delayMs));
        if (res.destroyed) return;
      }
    }
    const bytes = new Uint8Array(readFileSync(target));
    const large = isLarge(file);
    const announce = !cdn ? takeFault(repo, file, ['wrong-size', 'wrong-etag']) : undefined;
    if (announce) log.fault = announce.kind;
    const etag = announce?.kind === 'wrong-etag' ? sha256(new TextEncoder().encode('other bytes')) : large ? sha256(bytes) : gitSha1(bytes);
    const linkedSize = announce?.kind === 'wrong-size' ? bytes.length + 1 : bytes.length;
    if (!cdn && large) {
      const location = `/cdn/${repo}/${encodeURIComponent(revision)}/${file}`;
      return answer(302, { location, 'x-linked-etag': `"${etag}"`, 'x-linked-size': linkedSize, 'content-length': 0 });
    }
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': bytes.length, etag: `"${etag}"` };
    if (!cdn && announce?.kind === 'wrong-size') headers['x-linked-size'] = linkedSize;
    const body = takeFault(repo, file, ['drop', 'stall']);
    if (!body || req.method === 'HEAD') return answer(200, headers, bytes);
    log.fault = body.kind;
    log.status = 200;
    res.writeHead(200, { ...CORS, ...headers });
    const half = bytes.subarray(0, Math.floor(bytes.length / 2));
    if (body.kind === 'drop') {
      res.write(half, () => res.destroy());
      return;
    }
    res.write(half);
    await new Promise((r) => setTimeout(r, body.kind === 'stall' ? body.delayMs : 0));
    if (!res.destroyed) res.end(bytes.subarray(half.length));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, CORS);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fault(rule) {
      faults.push({ ...rule });
    },
    clearFaults() {
      faults = [];
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
