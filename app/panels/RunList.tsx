/**
 * The runs kept in this browser (the run archive, app/state/runArchive.ts): each with its setup,
 * where it stands and its last checkpoint; Show (its curves in the charts), Resume (from its last
 * checkpoint: the step count and the curves go on), Export (one run file, which `opd-lab` reads)
 * and Delete; Import of a run file; the storage this site uses; and, when the browser refuses to
 * store a checkpoint, the oldest checkpoints offered for deletion.
 */
import { memo, useRef, useState } from 'react';
import { deleteRun, dismissQuota, exportRun, freeRoom, importRun, useRunArchive, type RunRecord } from '../state/runArchive';
import { resumable, resumeRun, showArchivedRun, useRuns, liveArchiveId } from '../lab/runs';
import { useDistillRun } from '../state/distillRun';
import { useLab } from '../state/labStore';
import { saveBlob } from '../lab/save';
import { formatBytes } from '../../workers/contract/format';
import { RUN_FILE_SUFFIX } from '../../workers/contract/runFile';
import { routeTeacherWords } from '../../workers/contract/knobs';

const STATUS_WORDS: Record<RunRecord['status'], string> = {
  running: 'running', paused: 'paused', stopped: 'stopped', finished: 'finished', failed: 'failed', interrupted: 'interrupted',
};

function lastEvalText(run: RunRecord): string {
  const e = run.evals.at(-1);
  if (!e) return '';
  return e.accuracy !== undefined ? `, held-out accuracy ${(100 * e.accuracy).toFixed(1)}% at step ${e.step}` : `, held-out reverse KL ${e.reverseKL.toFixed(3)} at step ${e.step}`;
}

function setupText(run: RunRecord): string {
  const s = run.setup;
  const on = `${run.prompts ? run.prompts.label : s.task}${s.routeTask ? ` and ${s.routeTask} (routed to ${routeTeacherWords(s.routeTeacher)})` : ''}`;
  return `${s.objective} on ${on}: ${s.totalSteps} steps of ${s.batchPrompts} × ${s.groupSize}, lr ${s.lr}, seed ${s.seed}; ${run.models.student.label} from ${run.models.teacher.label}`;
}

/** One run; records are replaced when they change, so a step of one run re-renders only its item. */
const RunItem = memo(function RunItem({ run, busy }: { run: RunRecord; busy: boolean }) {
  const live = useDistillRun((s) => s.phase === 'running' || s.phase === 'paused' || s.starting);
  const ready = useLab((s) => s.phase === 'ready');
  const shown = useRuns((s) => s.shown === run.id);
  const resuming = useRuns((s) => (s.resuming?.id === run.id ? s.resuming.stage : null));
  const resumeError = useRuns((s) => (s.resumeError?.id === run.id ? s.resumeError.message : null));
  const [exportError, setExportError] = useState<string | null>(null);
  const isLive = live && liveArchiveId() === run.id;
  const checkpoint = run.checkpoints.at(-1);
  const canResume = resumable(run) && !live && ready && !busy;
  return (
    <li className={`run-item${shown || isLive ? ' shown' : ''}`} data-testid="run-item" data-run-id={run.id} data-status={run.status} aria-label={run.label}>
      <div className="run-head">
        <span className={`run-badge run-${run.status}`} data-testid="run-item-status">{STATUS_WORDS[run.status]}</span>
        <b className="run-label">{run.label}</b>
        <span className="run-step" data-testid="run-item-step">
          step {run.step} / {run.totalSteps}
        </span>
      </div>
      <p className="muted run-setup">{setupText(run)}</p>
      <p className="muted run-facts" data-testid="run-item-facts">
        {run.steps.length} steps and {run.evals.length} evaluations kept{lastEvalText(run)};{' '}
        {checkpoint ? `checkpoint of step ${checkpoint.step} stored (${formatBytes(checkpoint.bytes)})` : 'no checkpoint stored'}.
      </p>
      {run.status === 'interrupted' && <p className="warning run-message">{run.message}</p>}
      <div className="buttons">
        <button className="secondary" disabled={isLive || shown} onClick={() => showArchivedRun(run.id)} title="Draw this run's curves in the charts below.">
          Show curves
        </button>
        {resumable(run) && (
          <button disabled={!canResume} onClick={() => void resumeRun(run.id)} title={live ? 'Once the run going now has ended.' : 'Loads its student and teacher again and goes on from its last checkpoint.'}>
            {resuming ? `${resuming}…` : `Continue from step ${checkpoint!.step}`}
          </button>
        )}
        <button
          className="secondary"
          onClick={() => {
            setExportError(null);
            exportRun(run.id).then(
              ({ fileName, bytes }) => saveBlob(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/zip' }), fileName),
              (e: unknown) => setExportError(e instanceof Error ? e.message : String(e)),
            );
          }}
          title={`One file (${RUN_FILE_SUFFIX}): the setup, every metric and the last checkpoint; opd-lab run show and opd-lab train --resume read it.`}
        >
          Export the run
        </button>
        <button className="secondary danger-text" disabled={isLive} onClick={() => void deleteRun(run.id)}>
          Delete
        </button>
      </div>
      {resumeError && <p className="error" role="alert" data-testid="run-resume-error">{resumeError}</p>}
      {exportError && <p className="error" role="alert">{exportError}</p>}
    </li>
  );
});

function Storage() {
  const storage = useRunArchive((s) => s.storage);
  const count = useRunArchive((s) => s.runs.length);
  const stored = useRunArchive((s) => s.runs.reduce((n, r) => n + r.checkpoints.reduce((m, c) => m + c.bytes, 0), 0));
  return (
    <p className="muted" data-testid="run-storage">
      {count} run{count === 1 ? '' : 's'} kept, {formatBytes(stored)} of checkpoints
      {storage ? `; this site uses ${formatBytes(storage.usage)} of the ${formatBytes(storage.quota)} the browser allows it` : ''}.
    </p>
  );
}

function QuotaOffer() {
  const quota = useRunArchive((s) => s.quota);
  if (!quota) return null;
  const freed = quota.offer.reduce((n, c) => n + c.bytes, 0);
  return (
    <div className="quota" role="alert" data-testid="run-quota">
      <p className="error">{quota.message}</p>
      {quota.offer.length > 0 ? (
        <>
          <ul className="muted">
            {quota.offer.map((c) => (
              <li key={`${c.runId}-${c.step}`}>
                checkpoint of step {c.step} of {c.label} ({formatBytes(c.bytes)})
              </li>
            ))}
          </ul>
          <div className="buttons">
            <button className="danger" onClick={() => void freeRoom(quota.offer)}>
              Delete the {quota.offer.length === 1 ? 'oldest checkpoint' : `${quota.offer.length} oldest checkpoints`} ({formatBytes(freed)})
            </button>
            <button className="secondary" onClick={dismissQuota}>
              Go on without storing it
            </button>
          </div>
        </>
      ) : (
        <div className="buttons">
          <p className="muted">No stored checkpoint is left to delete: delete runs, or free space in the browser's site settings.</p>
          <button className="secondary" onClick={dismissQuota}>
            Go on without storing it
          </button>
        </div>
      )}
    </div>
  );
}

export function RunList() {
  const runs = useRunArchive((s) => s.runs);
  const loaded = useRunArchive((s) => s.loaded);
  const error = useRunArchive((s) => s.error);
  const resuming = useRuns((s) => s.resuming !== null);
  const input = useRef<HTMLInputElement>(null);
  const [importState, setImportState] = useState<{ ok: string | null; error: string | null }>({ ok: null, error: null });
  const onFile = async (file: File | undefined) => {
    if (!file) return;
    try {
      const run = await importRun(new Uint8Array(await file.arrayBuffer()), file.name);
      setImportState({ ok: `Imported ${file.name}: ${run.label}, step ${run.step} of ${run.totalSteps}.`, error: null });
    } catch (e) {
      setImportState({ ok: null, error: e instanceof Error ? e.message : String(e) });
    } finally {
      if (input.current) input.current.value = '';
    }
  };
  return (
    <section className="card wide run-list" aria-labelledby="run-list-title" data-testid="run-list">
      <h2 id="run-list-title">Runs kept in this browser</h2>
      <Storage />
      {error && <p className="error" role="alert">{error}</p>}
      <QuotaOffer />
      {loaded && runs.length === 0 && <p className="muted">No run yet: each run is kept here as it goes (its setup, curves and last checkpoints), and survives a reload.</p>}
      <ol className="runs">
        {runs.map((r) => (
          <RunItem key={r.id} run={r} busy={resuming} />
        ))}
      </ol>
      <div className="buttons">
        <label className="file-button">
          Import a run file ({RUN_FILE_SUFFIX})
          <input ref={input} type="file" accept=".zip,application/zip" data-testid="run-import" onChange={(e) => void onFile(e.target.files?.[0])} />
        </label>
        {importState.ok && <span className="muted" data-testid="run-imported">{importState.ok}</span>}
      </div>
      {importState.error && <p className="error" role="alert" data-testid="run-import-error">{importState.error}</p>}
    </section>
  );
}
