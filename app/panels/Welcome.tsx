/**
 * The first screen (issue 14: teach by doing): what the lab is in two sentences and one button,
 * "Try it", which loads the built-in pair, draws a task prompt, lets the student answer and the
 * teacher score it (inspectFlow.ts). Shown at the top of Inspect, where a fresh page opens; once
 * a heatmap is shown it shrinks to a line saying how to read it.
 */
import { useLab } from '../state/labStore';
import { TRY_IT_STAGES, tryIt, tryItPair, useInspectFlow } from '../lab/inspectFlow';
import { useBuiltIns } from '../lab/builtInModels';

export function Welcome({ hasHeatmap }: { hasHeatmap: boolean }) {
  const ready = useLab((s) => s.phase === 'ready');
  const busyModels = useLab((s) => s.models.student.loading || s.models.teacher.loading);
  const { stage, error } = useInspectFlow((s) => s.tryIt);
  const pair = tryItPair(useBuiltIns((s) => s.index));
  const running = stage !== null;
  const current = TRY_IT_STAGES.findIndex((s) => s.stage === stage);
  const button = (label: string, big: boolean) => (
    <button className={big ? 'try-it' : 'small'} disabled={!ready || running || busyModels} onClick={() => void tryIt()} data-testid="try-it">
      {running ? 'Working…' : label}
    </button>
  );

  if (hasHeatmap && !running && !error) {
    return (
      <section className="card wide welcome compact" aria-label="How to read the heatmap" data-testid="welcome">
        <p>
          <b>How to read it:</b> each token of the student’s answer is coloured by how much the teacher disagrees there (the reverse KL, in nats); the
          deeper the red, the larger the penalty on-policy distillation trains away. Click a token for what the teacher wanted instead, and press
          one of its alternatives to let the student continue from it.
        </p>
        {button('Try another', false)}
      </section>
    );
  }
  return (
    <section className="card wide welcome" aria-labelledby="welcome-title" data-testid="welcome">
      <div className="welcome-text">
        <h2 id="welcome-title">Watch a teacher grade a student, token by token</h2>
        <p className="welcome-lede" data-testid="welcome-lede">
          OPD Lab runs on-policy distillation in your browser: a small student model answers, and a larger teacher grades every token of that answer by
          how far the student’s next-token probabilities are from its own. Those grades are the student’s training signal, and here you see them as a
          heatmap on a question the student has never seen.
        </p>
      </div>
      <div className="welcome-action">
        {button('Try it', true)}
        <span className="muted" data-testid="try-it-what">
          Loads the built-in student and teacher for {pair.what}, draws a question, lets the student answer and the teacher score it.
        </span>
      </div>
      {running && (
        <ol className="try-it-stages" aria-live="polite" data-testid="try-it-stages">
          {TRY_IT_STAGES.map((s, i) => (
            <li key={s.stage} className={i < current ? 'done' : i === current ? 'current' : 'todo'}>
              <span className="mark" aria-hidden="true">{i < current ? '✓' : i === current ? '●' : '○'}</span> {s.label}
            </li>
          ))}
        </ol>
      )}
      {error && (
        <p className="error" role="alert" data-testid="try-it-error">
          {error.message}
        </p>
      )}
    </section>
  );
}
