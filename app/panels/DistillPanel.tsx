/**
 * Distill: train the loaded student on the loaded teacher's feedback, and watch it learn. The
 * setup (objective, task, knobs) lives in the URL hash; the run's state and history come from the
 * worker's train.* events (state/distillRun.ts) and stay after the run ends, until the next Start.
 */
import { useLab } from '../state/labStore';
import { runGoing, useDistillRun } from '../state/distillRun';
import { controlTraining, exportForCluster, exportTraining, inspectTrainedStudent, startTraining } from '../lab/connect';
import { useClusterExport } from '../state/clusterExport';
import { LlamaStudentPreset, LoadBuiltIns, ModelLoader, SelfDistillPreset, SelfDistillRoutedPreset, WorkedPreset } from '../components/ModelLoader';
import { NumberField } from '../components/NumberField';
import { formatMetric, formatMs, formatSi } from '../components/numbers';
import { DistillCharts } from './DistillCharts';
import { ProbeStrip } from './ProbeStrip';
import { useClassroom } from '../state/classroom';
import { formatBytes } from '../../workers/contract/format';
import { setupProblem } from '../../workers/contract/knobs';
import { OBJECTIVES, type ObjectiveName } from '../../workers/contract/run';
import { PANEL_FIELDS } from './knobFields';
import { PromptSourcePicker } from './PromptSourcePicker';
import { RunList } from './RunList';
import { promptSourceProblem, promptTextSource, usePromptSource } from '../state/promptSource';

const OBJECTIVE_SENTENCES: Record<ObjectiveName, string> = {
  'opd-sampled':
    'On-policy distillation: the student samples answers, the teacher scores each sampled token, and −λ × that token’s sampled reverse KL is its advantage in a policy-gradient step.',
  'opd-full':
    'On-policy distillation on the exact reverse KL over the whole vocabulary at every position of the student’s own samples: the same target, with less variance.',
  sft: 'Off-policy distillation: the teacher writes the answers and the student learns them by cross-entropy (supervised fine-tuning).',
  rl: 'Reinforcement learning: reward 1 when the final answer verifies and 0 otherwise, minus the group’s mean reward; the teacher only watches.',
  topk: 'Top-k distillation on the student’s samples: KL over the teacher’s k best tokens at each position plus one tail bucket for the rest (reverse or forward).',
  'opd-k3': 'On-policy distillation with the k3 estimator r − 1 − log r, r = teacher/student probability of each sampled token, as the loss (its expected gradient is the forward KL’s).',
  jsd: 'The generalised Jensen–Shannon divergence JSD(β) to the teacher over the whole vocabulary on the student’s samples (β = 0 forward KL, β = 1 reverse KL).',
  gkd: 'Generalised knowledge distillation: each step trains JSD(β) on the student’s samples with probability λ, else on the teacher’s.',
};

/** Shown elsewhere: the objective as the radio group above, the split's knobs with the prompt source. */
const PROMPT_SOURCE_FIELDS: string[] = ['objective', 'heldOutFraction', 'splitSeed'];

function Setup({ locked }: { locked: boolean }) {
  const promptKind = usePromptSource((s) => s.kind);
  const setup = useLab((s) => s.setup);
  const setSetup = useLab((s) => s.setSetup);
  const classroom = useClassroom((s) => s.on);
  return (
    <fieldset className="setup" disabled={locked}>
      <div className="objectives" role="radiogroup" aria-label="Objective">
        {OBJECTIVES.map((o) => (
          <label key={o} className={setup.objective === o ? 'objective chosen' : 'objective'}>
            <input type="radio" name="objective" value={o} checked={setup.objective === o} onChange={() => setSetup({ objective: o })} />
            <span>
              <b>{o}</b> <span className="muted">{OBJECTIVE_SENTENCES[o]}</span>
            </span>
          </label>
        ))}
      </div>
      <div className="knobs">
        {PANEL_FIELDS.filter((f) => !PROMPT_SOURCE_FIELDS.includes(f.name) && !(f.name === 'task' && promptKind !== 'task') && !(classroom && f.advanced)).map((f) => {
          const unrouted = f.name === 'routeTeacher' && setup.routeTask === '';
          const unused = (f.usedBy && !f.usedBy.includes(setup.objective)) || unrouted;
          const title = unrouted ? `${f.title} Used only with a routed task.` : unused ? `${f.title} Not used by ${setup.objective}.` : f.title;
          if (f.kind === 'choice') {
            // The task to keep, or to route, cannot be the task trained on; the routed task's teacher matters only with a routed task.
            const options = f.name === 'keepTask' || f.name === 'routeTask' ? f.options!.filter((o) => o.value !== setup.task) : f.options!;
            return (
              <label key={f.name} className="number" title={title}>
                {f.label}
                <select value={String(setup[f.name])} disabled={unused} onChange={(e) => setSetup({ [f.name]: e.target.value })} data-testid={f.testId}>
                  {options.map((o) => (
                    <option key={o.value} value={o.value}>{o.text}</option>
                  ))}
                </select>
              </label>
            );
          }
          return (
            <NumberField
              key={f.name}
              label={f.label}
              title={title}
              value={setup[f.name] as number}
              min={f.min}
              max={f.max}
              step={f.step}
              disabled={unused}
              onChange={(v) => setSetup({ [f.name]: v })}
            />
          );
        })}
      </div>
    </fieldset>
  );
}

const STATE_WORDS: Record<string, string> = { idle: 'no run yet', running: 'running', paused: 'paused', stopped: 'stopped', finished: 'finished', failed: 'failed' };

/**
 * Start / Step / Pause / Resume / Stop, and the sentence saying where the run stands. Step with no
 * run (or after a stopped one) starts a run that pauses after its first step; on a paused run it
 * runs one more step and pauses again.
 */
function Controls() {
  const ready = useLab((s) => s.phase === 'ready');
  const setup = useLab((s) => s.setup);
  const student = useLab((s) => s.models.student);
  const teacher = useLab((s) => s.models.teacher);
  const run = useDistillRun();
  const prompts = usePromptSource();
  const promptsProblem = promptSourceProblem(prompts);
  const problem = setupProblem(setup);
  const active = run.phase === 'running' || run.phase === 'paused';
  const missing = !student.model ? 'Load a student to start.' : !teacher.model ? 'Load a teacher to start.' : !student.model.trainable ? 'This student has no trainable weights (model.safetensors).' : null;
  const canStart = ready && !problem && !missing && !promptsProblem && !active && !run.starting && !student.loading && !teacher.loading;
  // A finished or failed run has no next step; a stopped one (or none) lets Step begin a new run.
  const canStep = run.phase === 'paused' ? run.pending === null : canStart && (run.phase === 'idle' || run.phase === 'stopped');
  let status: string;
  let word = STATE_WORDS[run.phase];
  if (run.starting) {
    word = 'starting';
    status = run.startStage ?? 'Setting up the run…';
  } else if (run.pending === 'stop' && active) {
    word = 'stopping';
    status = 'Stopping after the current step…';
  } else if (run.pending === 'step' && run.phase === 'running') {
    word = 'stepping';
    status = run.message;
  } else if (run.pending === 'pause' && run.phase === 'running') {
    word = 'pausing';
    status = 'Pausing after the current step…';
  } else status = run.phase === 'idle' ? 'Load a student and a teacher, set the experiment up, and press Start.' : run.message;
  return (
    <div className="run-controls">
      {problem && (
        <p className="error" role="alert" data-testid="setup-problem">
          {problem}
        </p>
      )}
      <div className="buttons">
        <button disabled={!canStart} onClick={() => void startTraining(setup, promptTextSource(prompts))}>
          Start
        </button>
        <button
          className="secondary"
          disabled={!canStep}
          title={run.phase === 'paused' ? 'Run one more step, then pause again.' : 'Start a run that pauses after its first step (the step-0 evaluation comes first).'}
          onClick={() => void (run.phase === 'paused' ? controlTraining('step') : startTraining(setup, promptTextSource(prompts), 1))}
        >
          Step
        </button>
        <button disabled={run.phase !== 'running' || run.pending !== null} onClick={() => void controlTraining('pause')}>
          Pause
        </button>
        <button disabled={run.phase !== 'paused' || run.pending !== null} onClick={() => void controlTraining('resume')}>
          Resume
        </button>
        <button className="danger" disabled={!active || run.pending === 'stop'} onClick={() => void controlTraining('stop')}>
          Stop
        </button>
        {!problem && (missing ?? promptsProblem) && <span className="muted">{missing ?? promptsProblem}</span>}
      </div>
      <p className="run-status" data-testid="distill-status" role="status">
        <span className={`run-badge run-${word}`} data-testid="distill-state">
          {word}
        </span>
        {run.phase !== 'idle' && (
          <span className="run-step" data-testid="distill-step">
            step {run.step} / {run.totalSteps}
          </span>
        )}
        <span data-testid="distill-message">{status}</span>
      </p>
      {run.startError && <p className="error" role="alert" data-testid="start-error">{run.startError.message}</p>}
      {run.controlError && <p className="error" role="alert">{run.controlError.message}</p>}
      {run.failure?.detail && (
        <details className="error-detail">
          <summary>Details</summary>
          <pre>{run.failure.detail}</pre>
        </details>
      )}
      {run.checkpoint && (
        <p className="muted checkpoint" data-testid="distill-checkpoint">
          Checkpoint of step {run.checkpoint.step} kept in the lab worker ({formatBytes(run.checkpoint.bytes)}).
        </p>
      )}
      <Export />
    </div>
  );
}

/**
 * Downloads of what the run made: the student as a Hugging Face folder (zip; a LoRA run's merged
 * weights), the checkpoint (to resume with `opd-lab train --resume`) and, for a LoRA run, its
 * adapter as PEFT saves it (zip). While a run goes, of its current step; after it ended, of its
 * last checkpoint.
 */
function Export() {
  const run = useDistillRun();
  const active = run.phase === 'running' || run.phase === 'paused';
  if (!active && !run.checkpoint) return null;
  const step = active ? run.step : run.checkpoint!.step;
  const busy = run.exporting !== null;
  return (
    <div className="export" data-testid="distill-export">
      <div className="buttons">
        <button className="secondary" disabled={busy} onClick={() => void exportTraining('student')}>
          {run.exporting === 'student' ? 'Preparing the student…' : `Download the student (step ${step})`}
        </button>
        <button className="secondary" disabled={busy} onClick={() => void exportTraining('checkpoint')}>
          {run.exporting === 'checkpoint' ? 'Preparing the checkpoint…' : `Download the checkpoint (step ${step})`}
        </button>
        {run.loraRank > 0 && (
          <button className="secondary" disabled={busy} onClick={() => void exportTraining('adapter')}>
            {run.exporting === 'adapter' ? 'Preparing the adapter…' : `Download the LoRA adapter (step ${step})`}
          </button>
        )}
        <button
          className="secondary"
          disabled={busy || active}
          title={active ? 'Once the run has ended (stop it, or let it finish).' : 'Loads the trained student as the lab’s student and opens Inspect.'}
          onClick={() => void inspectTrainedStudent()}
        >
          Inspect the trained student
        </button>
      </div>
      {run.exported && (
        <p className="muted" data-testid="distill-exported">
          Saved {run.exported.fileName} ({formatBytes(run.exported.bytes)}):{' '}
          {run.exported.what === 'student'
            ? 'a Hugging Face folder (config, tokenizer, model.safetensors, ONNX) that the lab, transformers.js and opd-lab load.'
            : run.exported.what === 'adapter'
              ? "the LoRA adapter as PEFT saves it (adapter_config.json, adapter_model.safetensors): PeftModel.from_pretrained loads it on the student the run started from."
              : 'the weights, AdamW moments and run state; opd-lab train --resume continues from it.'}
        </p>
      )}
      {run.exportError && <p className="error" role="alert">{run.exportError.message}</p>}
    </div>
  );
}

/** The latest step, number by number. */
function LatestStep() {
  const m = useDistillRun((s) => s.latest);
  const problems = useDistillRun((s) => s.problems);
  if (!m) return <p className="muted">No step yet.</p>;
  const rows: [string, string][] = [
    ['loss', formatMetric(m.loss)],
    ...(m.lossMin !== undefined && m.lossMax !== undefined ? [['per-token loss, min … max', `${formatMetric(m.lossMin)} … ${formatMetric(m.lossMax)}`] as [string, string]] : []),
    ['gradient norm', formatMetric(m.gradNorm)],
    ['sampled KL k (per token)', formatMetric(m.sampledKL)],
    ['exact reverse KL (per token)', formatMetric(m.reverseKL)],
    ['student entropy (per token)', formatMetric(m.studentEntropy)],
    ['mean ρ', formatMetric(m.meanRatio)],
    ['ρ spread (std)', formatMetric(m.ratioStd)],
    ...(m.reward !== undefined ? [['reward (answers verified)', formatMetric(m.reward)] as [string, string]] : []),
    ['learning rate', formatMetric(m.lr)],
    ['tokens sampled', m.tokensSampled.toLocaleString('en-US')],
    ['FLOPs: student sampling', `${formatSi(m.flops.studentSampling)}FLOP`],
    ['FLOPs: teacher scoring', `${formatSi(m.flops.teacherScoring)}FLOP`],
    ['FLOPs: training', `${formatSi(m.flops.training)}FLOP`],
    ['FLOPs: total so far', `${formatSi(m.flops.total)}FLOP`],
    ['wall time of the step', formatMs(m.wallMs)],
  ];
  return (
    <>
      <table className="kv metrics" data-testid="step-metrics">
        <caption>
          Step {m.step} ({m.objective}){m.applied ? '' : ', not applied'}
        </caption>
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td className="num">{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {problems.length > 0 && (
        <ul className="problems" data-testid="step-problems">
          {problems.slice(-5).map((p) => (
            <li key={p.step} className="warning">
              Step {p.step} was not applied: {p.problem}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/** The latest evaluation: accuracy and a few answers, right or wrong. */
function LatestEval() {
  const e = useDistillRun((s) => s.latestEval);
  if (!e) return <p className="muted">No evaluation yet: the first comes before the first step.</p>;
  return (
    <>
      {e.accuracy !== undefined ? (
        <p data-testid="eval-summary">
          Held-out accuracy <b>{(100 * e.accuracy).toFixed(1)}%</b> ({e.correct}/{e.prompts}) at step {e.step}; reverse KL of the greedy answers{' '}
          {formatMetric(e.reverseKL)} nats per token.
        </p>
      ) : (
        <p data-testid="eval-summary">
          Held-out reverse KL <b data-testid="eval-reverse-kl">{formatMetric(e.reverseKL)}</b> nats per token at step {e.step} (the teacher’s exact reverse KL over the student’s greedy
          answers to {e.prompts} held-out prompts; sampled KL {e.sampledKL !== undefined ? formatMetric(e.sampledKL) : 'not measured'}). These prompts have no verifier, so there is no accuracy.
        </p>
      )}
      {e.kept && (
        <p data-testid="eval-kept">
          Kept task, {e.kept.task}: <b>{(100 * e.kept.accuracy).toFixed(1)}%</b> ({e.kept.correct}/{e.kept.prompts}) held-out, never trained on in this run.
        </p>
      )}
      {e.routed?.map((r) => (
        <p key={r.task} data-testid="eval-routed" data-task={r.task}>
          Routed task, {r.task} (scored by {r.teacher}):{' '}
          {r.accuracy !== undefined ? (
            <>
              <b>{(100 * r.accuracy).toFixed(1)}%</b> ({r.correct}/{r.prompts}) held-out;{' '}
            </>
          ) : (
            `${r.prompts} held-out prompts; `
          )}
          reverse KL to its teacher {formatMetric(r.reverseKL)} nats per token.
        </p>
      ))}
      <ol className="eval-examples" data-testid="eval-examples">
        {e.examples.map((x, i) => (
          <li key={i} data-testid="eval-example" className={x.correct === undefined ? 'unverified' : x.correct ? 'right' : 'wrong'}>
            {x.correct !== undefined && (
              <span className="verdict" aria-label={x.correct ? 'right' : 'wrong'}>
                {x.correct ? '✓' : '✗'}
              </span>
            )}
            <code>{x.prompt}</code>
            <code className="completion" title="the student’s answer as it wrote it (␣ is a space)">{x.completion.replace(/ /g, '␣') || '∅'}</code>
            {x.reason && <span className="muted reason">{x.reason}</span>}
          </li>
        ))}
      </ol>
    </>
  );
}

/**
 * The same experiment for a cluster trainer, when one tab is not enough: the setup, the loaded
 * models and the prompts written as a TRL script and a tinker-cookbook launcher (one zip), with
 * what was written for each trainer or the sentence why not.
 */
function ClusterExport() {
  const setup = useLab((s) => s.setup);
  const loaded = useLab((s) => Boolean(s.models.student.model && s.models.teacher.model));
  const prompts = usePromptSource();
  const promptsProblem = promptSourceProblem(prompts);
  const problem = setupProblem(setup);
  const state = useClusterExport();
  const why = !loaded ? 'Load a student and a teacher first.' : (problem ?? promptsProblem);
  return (
    <div className="export" data-testid="cluster-export">
      <div className="buttons">
        <button className="secondary" disabled={state.busy || why !== null} title={why ?? 'A TRL DistillationTrainer script and a tinker-cookbook launcher with this setup and these prompts, in one zip.'} onClick={() => void exportForCluster(setup, promptTextSource(prompts))}>
          {state.busy ? 'Writing the scripts…' : 'Export for a cluster (TRL, tinker-cookbook)'}
        </button>
      </div>
      {state.error && (
        <p className="error" role="alert" data-testid="cluster-export-error">
          {state.error.message}
        </p>
      )}
      {state.done && (
        <ul className="muted" data-testid="cluster-export-done">
          <li>
            Saved {state.done.fileName} ({formatBytes(state.done.bytes)}) with the training prompts and a README.
          </li>
          {(['trl', 'tinker'] as const).map((t) => {
            const r = state.done!.targets[t];
            const name = t === 'trl' ? 'TRL DistillationTrainer' : 'tinker-cookbook';
            return (
              <li key={t} data-testid={`cluster-target-${t}`}>
                {'file' in r ? (
                  <>
                    {name}: <code>{r.file}</code>
                  </>
                ) : (
                  `${name}: not written. ${r.refused}`
                )}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

export function DistillPanel() {
  const locked = useDistillRun(runGoing);
  const classroom = useClassroom((s) => s.on);
  return (
    <div className="panel-body">
      <section className="card wide">
        <h2>Distill: train the student on the teacher’s per-token feedback</h2>
        <LoadBuiltIns disabled={locked} />
        <SelfDistillPreset disabled={locked} />
        <SelfDistillRoutedPreset disabled={locked} />
        <LlamaStudentPreset disabled={locked} />
        <WorkedPreset disabled={locked} />
        <div className="loaders">
          <ModelLoader role="student" disabled={locked} />
          <ModelLoader role="teacher" disabled={locked} />
        </div>
        <PromptSourcePicker locked={locked} />
        <Setup locked={locked} />
        <Controls />
        {!classroom && <ClusterExport />}
      </section>
      <RunList />
      <section className="card wide">
        <h2>Curves</h2>
        <DistillCharts />
      </section>
      <section className="card wide" data-testid="probe-card">
        <h2>Penalties at each evaluation</h2>
        <ProbeStrip />
      </section>
      <section className="card">
        <h2>Latest step</h2>
        <LatestStep />
      </section>
      <section className="card">
        <h2>Latest evaluation</h2>
        <LatestEval />
      </section>
    </div>
  );
}
