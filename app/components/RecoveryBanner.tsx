/**
 * The banner saying what the lab did when something went away under a run: a lost GPU device
 * (the worker restarted on a new device and the run resumed by itself) or a crashed worker
 * (restarted at once, the run offered for resuming). Shown above every panel.
 */
import { dismissRecovery, resumeRun, useRuns } from '../lab/runs';
import { getRun } from '../state/runArchive';
import { useDistillRun } from '../state/distillRun';

export function RecoveryBanner() {
  const recovery = useRuns((s) => s.recovery);
  const resuming = useRuns((s) => s.resuming);
  const live = useDistillRun((s) => s.phase === 'running' || s.phase === 'paused' || s.starting);
  if (!recovery) return null;
  const run = recovery.runId ? getRun(recovery.runId) : undefined;
  const checkpoint = run?.checkpoints.at(-1);
  const offer = recovery.phase === 'offer' && run && checkpoint;
  return (
    <div className={`recovery recovery-${recovery.phase}`} role="alert" data-testid="run-recovery" data-cause={recovery.cause} data-phase={recovery.phase}>
      <p data-testid="run-recovery-message">{recovery.message}</p>
      <div className="buttons">
        {offer && (
          <button disabled={live || resuming !== null} onClick={() => void resumeRun(run.id).then((ok) => ok && dismissRecovery())}>
            {resuming?.id === run.id ? `${resuming.stage}…` : `Continue the run from step ${checkpoint.step}`}
          </button>
        )}
        {recovery.phase !== 'recovering' && (
          <button className="secondary" onClick={dismissRecovery}>
            Dismiss
          </button>
        )}
      </div>
      {recovery.detail && (
        <details>
          <summary>Technical detail</summary>
          <pre>{recovery.detail}</pre>
        </details>
      )}
    </div>
  );
}
