/**
 * Hugging Face model ids, `ORG/NAME[@REVISION]`, and the URLs of their files as the Hub serves
 * them: `{endpoint}/ORG/NAME/resolve/{revision}/{file}` (huggingface_hub's hf_hub_url and
 * transformers.js build the same; the revision is quoted whole, so `refs/pr/1` is one segment).
 */

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

export interface HubId {
  /** ORG/NAME. */
  repo: string;
  /** A branch, tag or commit; `main` when the id names none. */
  revision: string;
}

/** A part of a repository id: letters, digits, '-', '_', '.', not starting or ending with '-' or '.', no '--' or '..' (the Hub's rule). */
const PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;
/** A revision: a branch, tag or commit, which may hold '/' (refs/pr/1) but no spaces and no '..'. */
const REVISION = /^(?!.*\.\.)[A-Za-z0-9_.\-/]{1,200}$/;

const EXAMPLE = 'for example HuggingFaceTB/SmolLM2-135M-Instruct or Qwen/Qwen3-0.6B@main';

/** Why `text` is not a model id, as one sentence, or null when it is one. */
export function hubIdProblem(text: string): string | null {
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : text.slice(at + 1);
  const parts = repo.split('/');
  const shape = `an id looks like ORG/NAME or ORG/NAME@REVISION, with letters, digits, '-', '_' and '.' (${EXAMPLE})`;
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) return `'${text}' is not a Hugging Face model id: ${shape}.`;
  if (!REVISION.test(revision)) return `'${text}' names the revision '${revision}', which is not a branch, tag or commit name: ${shape}.`;
  return null;
}

/** The id in `text`; throws a one-sentence Error when it is not one. */
export function parseHubId(text: string): HubId {
  const problem = hubIdProblem(text.trim());
  if (problem) throw new Error(problem);
  const t = text.trim();
  const at = t.indexOf('@');
  return at < 0 ? { repo: t, revision: DEFAULT_REVISION } : { repo: t.slice(0, at), revision: t.slice(at + 1) };
}

/** ORG/NAME, with @REVISION unless it is `main`: how the lab names the model to the person. */
export function hubIdLabel(id: HubId): string {
  return id.revision === DEFAULT_REVISION ? id.repo : `${id.repo}@${id.revision}`;
}

/**
 * Whether a command-line argument is meant as a Hub id rather than a path: one '/', not
 * starting with '.', '/' or '~' (the caller checks first that no such directory exists).
 */
export function looksLikeHubId(text: string): boolean {
  return /^[^./~\\\s][^/\\\s]*\/[^/\\\s@]+(@\S+)?$/.test(text);
}

/** An endpoint as given (HF_ENDPOINT, a page setting), without a trailing '/'; the Hub when empty. */
export function normalizeEndpoint(endpoint: string | undefined): string {
  const e = (endpoint ?? '').trim().replace(/\/+$/, '');
  if (!e) return DEFAULT_HUB_ENDPOINT;
  let url: URL;
  try {
    url = new URL(e);
  } catch {
    throw new Error(`The Hub endpoint '${endpoint}' is not a URL: give one like ${DEFAULT_HUB_ENDPOINT} or http://127.0.0.1:8080.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`The Hub endpoint '${endpoint}' must be an http:// or https:// URL.`);
  return e;
}

/** The URL of `file` (relative, '/'-separated) of model `id` on `endpoint`. */
export function hubFileUrl(endpoint: string, id: HubId, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${normalizeEndpoint(endpoint)}/${id.repo}/resolve/${encodeURIComponent(id.revision)}/${path}`;
}
