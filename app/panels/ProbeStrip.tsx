/**
 * Penalties fading: the run's probe prompts (the `probes` knob) as heatmaps over the evaluations.
 * A strip lists one row per evaluation, growing as the run goes; a scrubber over the evaluations
 * shows the chosen one large, token by token (each token carries data-token-index,
 * data-reverse-kl and data-sampled-kl, as Inspect's heatmap does). The scale is absolute (0 to 2
 * nats, the Inspect default) and the same for every row, so a penalty that fades looks fainter.
 */
import { useState } from 'react';
import type { ProbeHeatmap } from '../../workers/protocol';
import { THROTTLE_MS, useThrottledHistory } from './DistillCharts';
import { DEFAULT_ABSOLUTE_MAX_NATS, fmt, heat, legendText, type HeatmapMetric } from './heatmapScale';

const SCALE = DEFAULT_ABSOLUTE_MAX_NATS;

const shownText = (text: string) => text.replace(/ /g, '␣') || '\u00a0';

function ProbeTokens({ probe, metric, size, testId }: { probe: ProbeHeatmap; metric: HeatmapMetric; size: 'large' | 'small'; testId: string }) {
  return (
    <span className={size === 'large' ? 'heatmap probe-heatmap' : 'probe-mini'} data-testid={testId}>
      {probe.tokens.map((t, i) => {
        const { colour, clamped } = heat(t[metric], SCALE);
        const label = `${JSON.stringify(t.text)}: reverse KL ${fmt(t.reverseKL)}, sampled KL ${fmt(t.sampledKL)} nats`;
        return (
          <span
            key={i}
            className={['token', clamped ? 'clamped' : ''].filter(Boolean).join(' ')}
            style={{ background: colour }}
            title={label}
            {...(size === 'large' ? { tabIndex: 0, role: 'img', 'aria-label': label, 'data-testid': 'probe-token' } : { 'aria-hidden': true })}
            data-token-index={i}
            data-reverse-kl={fmt(t.reverseKL)}
            data-sampled-kl={fmt(t.sampledKL)}
          >
            {shownText(t.text)}
          </span>
        );
      })}
    </span>
  );
}

const verdict = (p: ProbeHeatmap) => (p.correct === undefined ? '' : p.correct ? ' · right' : ' · wrong');

export function ProbeStrip() {
  const { evals } = useThrottledHistory(THROTTLE_MS);
  const rows = evals.filter((e) => e.probes && e.probes.length > 0);
  const [probeIndex, setProbeIndex] = useState(0);
  const [kind, setKind] = useState<ProbeHeatmap['kind']>('fixed');
  const [metric, setMetric] = useState<HeatmapMetric>('reverseKL');
  // null: follow the latest evaluation as the run goes; a number: the person moved the scrubber.
  const [pinned, setPinned] = useState<number | null>(null);
  if (rows.length === 0) {
    return (
      <p className="muted" data-testid="probe-empty">
        No probe heatmaps yet: at every evaluation the teacher re-scores the first held-out prompts (the “probe prompts” knob) token by token, and they appear here.
      </p>
    );
  }
  const probeCount = Math.max(...rows.map((e) => Math.max(...e.probes!.map((p) => p.probe)) + 1));
  const chosenProbe = Math.min(probeIndex, probeCount - 1);
  const at = pinned === null ? rows.length - 1 : Math.min(pinned, rows.length - 1);
  const pick = (e: (typeof rows)[number]) => e.probes!.find((p) => p.probe === chosenProbe && p.kind === kind) ?? null;
  const current = pick(rows[at]);
  const first = rows[0].probes!.find((p) => p.probe === chosenProbe);
  return (
    <div className="probes" data-testid="probes">
      <p className="muted">
        At every evaluation the teacher scores {probeCount} held-out prompt{probeCount === 1 ? '' : 's'} token by token: the student’s answer of the first evaluation, kept fixed (its penalties fade as the student comes to agree with the teacher), or the answer it writes at that step.
      </p>
      <div className="heat-controls">
        <label>
          probe{' '}
          <select value={chosenProbe} onChange={(e) => setProbeIndex(Number(e.target.value))} data-testid="probe-select">
            {Array.from({ length: probeCount }, (_, i) => (
              <option key={i} value={i}>
                {i + 1}: {rows[0].probes!.find((p) => p.probe === i)?.prompt ?? ''}
              </option>
            ))}
          </select>
        </label>
        <fieldset>
          <legend>Completion</legend>
          <label><input type="radio" name="probe-kind" checked={kind === 'fixed'} onChange={() => setKind('fixed')} /> fixed (step {rows[0].step}’s answer)</label>
          <label><input type="radio" name="probe-kind" checked={kind === 'greedy'} onChange={() => setKind('greedy')} /> the student’s answer at each step</label>
        </fieldset>
        <fieldset>
          <legend>Colour by</legend>
          <label><input type="radio" name="probe-metric" checked={metric === 'reverseKL'} onChange={() => setMetric('reverseKL')} /> exact reverse KL</label>
          <label><input type="radio" name="probe-metric" checked={metric === 'sampledKL'} onChange={() => setMetric('sampledKL')} /> sampled KL</label>
        </fieldset>
      </div>
      <label className="probe-scrubber">
        <span>evaluation at step <b data-testid="probe-step">{rows[at].step}</b> ({at + 1} of {rows.length})</span>
        <input
          type="range"
          min={0}
          max={rows.length - 1}
          value={at}
          aria-valuetext={`step ${rows[at].step}`}
          onChange={(e) => {
            const v = Number(e.target.value);
            setPinned(v === rows.length - 1 ? null : v);
          }}
          data-testid="probe-scrubber"
        />
        {pinned !== null && (
          <button className="small" onClick={() => setPinned(null)}>
            follow the run
          </button>
        )}
      </label>
      {first && <p className="probe-prompt">Prompt: <code>{first.prompt}</code></p>}
      {current ? (
        <>
          <ProbeTokens probe={current} metric={metric} size="large" testId="probe-heatmap" />
          <p data-testid="probe-summary">
            Mean reverse KL <b>{current.meanReverseKL.toFixed(4)}</b> nats per token over {current.tokens.length} tokens{verdict(current)}.
          </p>
        </>
      ) : (
        <p className="muted">This probe has no {kind} completion at step {rows[at].step}.</p>
      )}
      <p className="muted legend">{legendText(metric, 'absolute', SCALE)}</p>
      <ol className="probe-strip" data-testid="probe-strip" aria-label="The probe's heatmap at every evaluation">
        {rows.map((e, i) => {
          const p = pick(e);
          return (
            <li key={e.step} className={i === at ? 'current' : undefined}>
              <button className="probe-row" onClick={() => setPinned(i === rows.length - 1 ? null : i)} aria-label={`show step ${e.step}`} aria-current={i === at ? 'true' : undefined} data-testid="probe-row" data-step={e.step}>
                <span className="probe-row-step">step {e.step}</span>
                {p ? <ProbeTokens probe={p} metric={metric} size="small" testId="probe-mini" /> : <span className="muted">none</span>}
                {p && <span className="probe-row-kl">{p.meanReverseKL.toFixed(3)}{verdict(p)}</span>}
              </button>
            </li>
          );
        })}
      </ol>
    </div>
  );
}
