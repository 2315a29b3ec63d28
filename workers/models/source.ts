/**
 * Where a model folder's files come from: the shipped models/ (served by the lab), a URL, a
 * folder the person picked in the browser, or a directory on disk (Node; see workers/node/).
 * Every reader answers with bytes or a clear error naming the file and the folder.
 */

export class ModelFolderError extends Error {
  constructor(
    message: string,
    /** The folder's label, as the person knows it. */
    readonly folder: string,
    /** The file inside the folder, when one is to blame. */
    readonly file?: string,
  ) {
    super(message);
    this.name = 'ModelFolderError';
  }
}

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

/** A folder served over HTTP(S): `base` is the folder's URL (a trailing '/' is added). */
export function urlSource(base: string, fetchFn: typeof fetch = fetch): ModelSource {
  const root = base.endsWith('/') ? base : `${base}/`;
  const url = (path: string) => new URL(path, root).href;
  return {
    label: root,
    async has(path) {
      try {
        const r = await fetchFn(url(path), { method: 'HEAD' });
        return r.ok;
      } catch {
        return false;
      }
    },
    async read(path) {
      let response: Response;
      try {
        response = await fetchFn(url(path));
      } catch (e) {
        throw new ModelFolderError(`Could not fetch ${url(path)}: ${(e as Error).message}. Check the address and that the server allows this page to read it (CORS).`, root, path);
      }
      if (!response.ok) {
        throw new ModelFolderError(
          response.status === 404 ? `${path} is missing from ${root} (HTTP 404).` : `Fetching ${url(path)} failed with HTTP ${response.status}.`,
          root,
          path,
        );
      }
      return new Uint8Array(await response.arrayBuffer());
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
