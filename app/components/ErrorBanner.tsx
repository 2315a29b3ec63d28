/**
 * The page-level error banner: every worker error that no panel shows (an `error` event with no
 * request id, or one answering a request nobody is waiting for) appears here with its sentence,
 * until the person dismisses it. connect.ts reports them; anything else may call `reportError`.
 */
import { create } from 'zustand';
import type { LabError } from '../../workers/protocol';

interface Shown {
  id: number;
  error: LabError;
  /** How many times the same sentence came (shown once, counted). */
  count: number;
}

const useErrorBanner = create<{ shown: Shown[] }>()(() => ({ shown: [] }));
let nextId = 1;

/** Shows `error` in the banner (the same sentence again is counted, not repeated). */
export function reportError(error: LabError): void {
  useErrorBanner.setState((s) => {
    const same = s.shown.find((x) => x.error.message === error.message && x.error.code === error.code);
    if (same) return { shown: s.shown.map((x) => (x === same ? { ...x, count: x.count + 1 } : x)) };
    return { shown: [...s.shown, { id: nextId++, error, count: 1 }] };
  });
}

const dismiss = (id: number) => useErrorBanner.setState((s) => ({ shown: s.shown.filter((x) => x.id !== id) }));

/** `except`: an error the page already shows in full (the WebGPU problem page), not repeated here. */
export function ErrorBanner({ except = null }: { except?: LabError | null }) {
  const shown = useErrorBanner((s) => s.shown).filter((x) => !(except && x.error.message === except.message && x.error.code === except.code));
  if (shown.length === 0) return null;
  return (
    <div className="error-banners">
      {shown.map(({ id, error, count }) => (
        <div key={id} className="error-banner" role="alert" data-testid="error-banner" data-code={error.code}>
          <p>
            <b>The lab worker reported an error{count > 1 ? ` (${count} times)` : ''}:</b> <span data-testid="error-banner-message">{error.message}</span>
          </p>
          {error.detail && (
            <details>
              <summary>Details</summary>
              <pre>{error.detail}</pre>
            </details>
          )}
          <button className="small secondary" onClick={() => dismiss(id)} aria-label={`Dismiss: ${error.message}`}>
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}
