/**
 * The errors of model folders, in a module of their own so that both the folder readers
 * (source.ts) and the HTTP transport they use (hub/http.ts) can import them without a cycle.
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

/**
 * Why a file could not be fetched over the network (or read back from the model cache):
 *   unreachable   the host did not answer at all (refused, unknown name, offline, CORS);
 *   not-found     no such model or revision (HTTP 404, or the Hub's RepoNotFound);
 *   unauthorized  a gated or private model: a token is needed, or access must be requested (401/403);
 *   timeout       the server sent nothing for longer than the time allowed;
 *   dropped       the connection closed before the whole file came, on every try;
 *   mismatch      the bytes disagree with their announced size or ETag, or a cached file with its record;
 *   server        any other HTTP failure (5xx and the like).
 */
export type FetchErrorKind = 'unreachable' | 'not-found' | 'unauthorized' | 'timeout' | 'dropped' | 'mismatch' | 'server';

export class ModelFetchError extends ModelFolderError {
  constructor(
    readonly kind: FetchErrorKind,
    message: string,
    folder: string,
    file?: string,
    /** The HTTP status when the server answered one. */
    readonly status?: number,
  ) {
    super(message, folder, file);
    this.name = 'ModelFetchError';
  }
}
