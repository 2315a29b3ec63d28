/**
 * Hugging Face models in the page: where ids are read from (the Hub endpoint: the Hub, a mirror
 * or a local server), the access token for gated or private models (kept in memory only), and
 * the model manager: the models the browser's model cache holds, with their sizes, the total,
 * and a delete button each (a deleted model downloads again the next time it is loaded).
 */
import { useEffect } from 'react';
import { DEFAULT_HUB_ENDPOINT, formatBytes, useHub } from '../state/hub';
import { deleteCachedModel, listCachedModels } from '../lab/connect';
import { useLab } from '../state/labStore';

export function HubSettings() {
  const { endpoint, token, setEndpoint, setToken } = useHub();
  return (
    <div className="hub-settings">
      <label>
        Hub endpoint
        <input value={endpoint} onChange={(e) => setEndpoint(e.target.value)} placeholder={DEFAULT_HUB_ENDPOINT} spellCheck={false} />
      </label>
      <label>
        Access token (gated or private models)
        <input type="password" value={token} onChange={(e) => setToken(e.target.value)} placeholder="hf_…" autoComplete="off" spellCheck={false} />
      </label>
      <p className="muted">
        Ids (<code>ORG/NAME</code> or <code>ORG/NAME@revision</code>) typed in a model field are read from{' '}
        <code>{'{endpoint}'}/ORG/NAME/resolve/{'{revision}'}/FILE</code>: the Hub, a mirror, or a server on this computer. The endpoint is remembered
        in this browser; the token is kept only until the page is reloaded, and sent only to the endpoint.
      </p>
    </div>
  );
}

export function ModelManager() {
  const ready = useLab((s) => s.phase === 'ready');
  const loading = useLab((s) => s.models.student.loading || s.models.teacher.loading);
  const { listing, busy, error } = useHub((s) => s.cache);
  // Which cached model each role holds now, by the id it was loaded as (ORG/NAME or ORG/NAME@REV).
  const studentLabel = useLab((s) => s.models.student.model?.label ?? null);
  const teacherLabel = useLab((s) => s.models.teacher.model?.label ?? null);
  useEffect(() => {
    if (ready) void listCachedModels();
  }, [ready]);
  return (
    <div className="model-manager" data-testid="model-manager">
      {!listing && !error && <p className="muted">{ready ? 'Reading the model cache…' : 'The model cache is listed once the lab has started.'}</p>}
      {error && (
        <p className="error" role="alert">
          {error.message}
        </p>
      )}
      {listing && listing.models.length === 0 && <p className="muted" data-testid="cache-empty">No model is cached yet: load one by its Hugging Face id.</p>}
      {listing && listing.models.length > 0 && (
        <table className="cached-models">
          <thead>
            <tr>
              <th>Model</th>
              <th>Files</th>
              <th className="num">Size</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {listing.models.map((m) => {
              const name = m.revision === 'main' ? m.repo : `${m.repo}@${m.revision}`;
              const isIt = (label: string | null) => label === name || label === `${m.repo}@${m.revision}`;
              const roles = [isIt(studentLabel) && 'student', isIt(teacherLabel) && 'teacher'].filter(Boolean);
              return (
                <tr key={`${m.repo}@${m.revision}`} data-testid="cached-model" data-model={name}>
                  <td>
                    <code>{name}</code>
                    {roles.length > 0 && (
                      <span className="badge" data-testid="cached-model-use">
                        {' '}
                        loaded as the {roles.join(' and the ')}
                      </span>
                    )}
                  </td>
                  <td title={m.files.map((f) => `${f.file} ${formatBytes(f.size)}`).join('\n')}>{m.files.length}</td>
                  <td className="num" data-testid="cached-model-size">
                    {formatBytes(m.bytes)}
                  </td>
                  <td>
                    <button className="small secondary" disabled={busy || loading} aria-label={`Delete ${name}`} onClick={() => void deleteCachedModel(m.repo, m.revision)}>
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {listing && (
        <p className="muted" data-testid="cache-total">
          {listing.models.length} {listing.models.length === 1 ? 'model' : 'models'}, {formatBytes(listing.bytes)} in {listing.where}.
        </p>
      )}
    </div>
  );
}
