/**
 * Where a model folder's files come from: the shipped models/ (served by the lab), a URL, a
 * folder the person picked in the browser, or a directory on disk (Node; see workers/node/).
 * Every reader answers with bytes or a clear error naming the file and the folder.
 */

import { ModelFetchError, ModelFolderError } from './errors';
import { fetchFile, probeFile, type HttpOptions } from './hub/http';

export { ModelFetchError, ModelFolderError, type FetchErrorKind } from './errors';

export interface ModelSource {
  /** How the person knows this folder: a path, a URL, "picked folder 'name'". */
  readonly label: string;
  /** True when the folder has `path` (relative, with '/' separators). */
  has(path: string): Promise<boolean>;
  /** The file's bytes; throws ModelFolderError when it is missing or unreadable. */
  read(path: string): Promise<Uint8Array>;
}

async function readText(source: ModelSource, path: string): Promise<string> {
  return new TextDecoder('utf-8', { fatal: false }).decode(await source.read(path));
}

/** Reads and parses a JSON file, with an error that names the file when it is not JSON. */
export async function readJson<T = unknown>(source: ModelSource, path: string): Promise<T> {
  const text = await readText(source, path);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new ModelFolderError(`${path} in ${source.label} is not valid JSON (${(e as Error).message}).`, source.label, path);
  }
}

/**
 * A folder served over HTTP(S): `base` is the folder's URL (a trailing '/' is added). A missing
 * file (404) is absent; an unreachable host, a refusal, a timeout or a dropped connection is a
 * ModelFetchError saying so (never "the folder has no config.json").
 */
export function urlSource(base: string, fetchOrOptions: typeof fetch | HttpOptions = {}): ModelSource {
  const options: HttpOptions = typeof fetchOrOptions === 'function' ? { fetch: fetchOrOptions } : fetchOrOptions;
  const root = base.endsWith('/') ? base : `${base}/`;
  const url = (path: string) => new URL(path, root).href;
  const ctx = (path: string) => ({ folder: root, file: path });
  return {
    label: root,
    async has(path) {
      return probeFile(url(path), ctx(path), options);
    },
    async read(path) {
      const result = await fetchFile(url(path), ctx(path), options);
      if (!result.found) throw new ModelFetchError('not-found', `${path} is missing from ${root} (HTTP ${result.status}).`, root, path, result.status);
      return result.file.bytes;
    },
  };
}

/**
 * A folder the person picked in the browser (`<input type="file" webkitdirectory>` gives Files
 * whose webkitRelativePath starts with the folder's name), or files dropped with their paths.
 */
export function filesSource(files: Iterable<{ file: Blob; path: string }>, label: string): ModelSource {
  const byPath = new Map<string, Blob>();
  for (const { file, path } of files) byPath.set(path.replace(/\\/g, '/').replace(/^\.?\//, ''), file);
  return {
    label,
    async has(path) {
      return byPath.has(path);
    },
    async read(path) {
      const file = byPath.get(path);
      if (!file) throw new ModelFolderError(`${path} is missing from ${label}.`, label, path);
      try {
        return new Uint8Array(await file.arrayBuffer());
      } catch (e) {
        throw new ModelFolderError(`Could not read ${path} from ${label}: ${(e as Error).message}.`, label, path);
      }
    },
  };
}
