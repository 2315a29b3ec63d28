import { useId, useState, type ReactNode } from 'react';
import { useLab } from '../state/labStore';
import type { ScoredTokenSummary } from '../../workers/protocol';
import { NumberField } from '../components/NumberField';
import { DEFAULT_ABSOLUTE_MAX_NATS, fmt, heat, legendText, prob, scaleMax, type HeatmapMetric, type HeatmapScale } from './heatmapScale';
import { heatmapJson, heatmapPng, type HeatmapExport } from './heatmapExport';
import { saveBlob } from '../lab/save';

/** What was scored: kept from the moment Score was pressed, since the fields may change after. */
export interface ScoredInput {
  prompt: string;
  completion: string;
  chat: boolean;
}

interface ScoreResultView {
  tokens: ScoredTokenSummary[];
  meanReverseKL: number;
  meanSampledKL: number;
}

/** A token's numbers on hover or keyboard focus: both probabilities of it and both KLs. */
function TokenTooltip({ t, index, id }: { t: ScoredTokenSummary; index: number; id: string }) {
  return (
    <div className="token-tooltip" role="tooltip" id={id} data-testid="token-tooltip" data-token-index={index}>
      <b>{JSON.stringify(t.text)}</b> (index {index}): student p <span data-testid="tooltip-student-p">{prob(t.studentLogprob)}</span>, teacher p{' '}
      <span data-testid="tooltip-teacher-p">{prob(t.teacherLogprob)}</span>; reverse KL <span data-testid="tooltip-reverse-kl">{fmt(t.reverseKL)}</span>, sampled KL{' '}
      <span data-testid="tooltip-sampled-kl">{fmt(t.sampledKL)}</span> nats
    </div>
  );
}

/** The legend: a colour bar from 0 to the scale's top, with its sentence. */
function Legend({ metric, scale, max }: { metric: HeatmapMetric; scale: HeatmapScale; max: number }) {
  const top = heat(max, max).colour;
  return (
    <div className="heat-legend" data-testid="heatmap-legend">
      <div className="heat-bar-row">
        {metric === 'sampledKL' && <span className="heat-tick">−{fmt(max)}</span>}
        {metric === 'sampledKL' && <span className="heat-bar" style={{ background: `linear-gradient(to right, ${heat(-max, max).colour}, #fff)` }} />}
        <span className="heat-tick">0</span>
        <span className="heat-bar" style={{ background: `linear-gradient(to right, #fff, ${top})` }} />
        <span className="heat-tick">{fmt(max)} nats{scale === 'absolute' ? ' ▲' : ''}</span>
      </div>
      <p className="muted legend" data-testid="heatmap-legend-text">{legendText(metric, scale, max)} ␣ is a space.</p>
    </div>
  );
}

/** How the heatmap colours: kept by the panel, so a new score keeps the person's choice and the same scale. */
export interface HeatmapView {
  metric: HeatmapMetric;
  scale: HeatmapScale;
  /** The absolute scale's top, in nats (NaN while the field is empty: the default is used). */
  absoluteMax: number;
}

export const DEFAULT_HEATMAP_VIEW: HeatmapView = { metric: 'reverseKL', scale: 'absolute', absoluteMax: DEFAULT_ABSOLUTE_MAX_NATS };

/** The scored completion as coloured tokens, with the colour switch, legend, token details and exports. */
export function Heatmap({
  result, selected, input, models, view, onView, title, which, note, onSelect, onBranch, branchBusy = false, controls = true,
}: {
  result: ScoreResultView;
  selected: number | null;
  input: ScoredInput | null;
  models: { student: string | null; teacher: string | null };
  view: HeatmapView;
  onView: (v: HeatmapView) => void;
  /** The card's heading (default: "Per-token KL (student ‖ teacher)"), and which heatmap it is (data-heatmap), when there are two. */
  title?: string;
  which?: string;
  /** Shown under the heading (the completion's verdict, what a branch is). */
  note?: ReactNode;
  /** A token clicked (default: Inspect's selected token). */
  onSelect?: (index: number) => void;
  /** Given: each of the teacher's alternatives is a button that branches from it (the student continues from that token). */
  onBranch?: (index: number, alternative: { id: number; text: string }) => void;
  branchBusy?: boolean;
  /** false: no colour switch and no downloads (a second heatmap shares the first one's). */
  controls?: boolean;
}) {
  const uid = useId();
  const tooltipId = `heatmap-tooltip-${uid}`;
  const { metric, scale, absoluteMax } = view;
  const setMetric = (m: HeatmapMetric) => onView({ ...view, metric: m });
  const setScale = (s: HeatmapScale) => onView({ ...view, scale: s });
  const setAbsoluteMax = (x: number) => onView({ ...view, absoluteMax: x });
  const [hover, setHover] = useState<number | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const absMax = Number.isFinite(absoluteMax) && absoluteMax > 0 ? absoluteMax : DEFAULT_ABSOLUTE_MAX_NATS;
  const max = scaleMax(result.tokens, metric, scale, absMax);
  const chosen = selected !== null ? result.tokens[selected] : null;
  const shown = hover !== null ? result.tokens[hover] : null;
  const exported = (): HeatmapExport => ({
    prompt: input?.prompt ?? '',
    completion: input?.completion ?? result.tokens.map((t) => t.text).join(''),
    chat: input?.chat ?? false,
    models,
    colourBy: metric,
    scale,
    scaleMax: max,
    meanReverseKL: result.meanReverseKL,
    meanSampledKL: result.meanSampledKL,
    tokens: result.tokens,
  });
  const savePng = async () => {
    setExportError(null);
    try {
      saveBlob(await heatmapPng(exported()), 'heatmap.png');
    } catch (e) {
      setExportError((e as Error).message);
    }
  };
  return (
    <section className="card wide" data-testid="heatmap-card" data-heatmap={which}>
      <h2>{title ?? 'Per-token KL (student ‖ teacher)'}</h2>
      {note}
      <p data-testid="score-summary">
        Mean reverse KL <b>{result.meanReverseKL.toFixed(4)}</b> nats per token, mean sampled KL <b>{result.meanSampledKL.toFixed(4)}</b>, over {result.tokens.length} tokens.
        Click a token for what the teacher wanted instead; hover or focus one for its numbers.
      </p>
      {controls && <div className="heat-controls">
        <fieldset>
          <legend>Colour by</legend>
          <label><input type="radio" name="heat-metric" checked={metric === 'reverseKL'} onChange={() => setMetric('reverseKL')} /> exact reverse KL</label>
          <label><input type="radio" name="heat-metric" checked={metric === 'sampledKL'} onChange={() => setMetric('sampledKL')} /> sampled KL</label>
        </fieldset>
        <fieldset>
          <legend>Scale</legend>
          <label><input type="radio" name="heat-scale" checked={scale === 'absolute'} onChange={() => setScale('absolute')} /> absolute</label>
          <label><input type="radio" name="heat-scale" checked={scale === 'relative'} onChange={() => setScale('relative')} /> relative to this completion</label>
        </fieldset>
        {scale === 'absolute' && <NumberField label="scale top (nats)" value={absoluteMax} onChange={setAbsoluteMax} min={0.001} step="any" testId="heat-scale-max" />}
        <span className="heat-exports">
          <button className="small" onClick={() => saveBlob(new Blob([heatmapJson(exported())], { type: 'application/json' }), 'heatmap.json')}>Download JSON</button>
          <button className="small" onClick={() => void savePng()}>Download PNG</button>
        </span>
      </div>}
      {exportError && <p className="error" role="alert">{exportError}</p>}
      <Legend metric={metric} scale={scale} max={max} />
      <div className="heatmap" data-testid="heatmap" onMouseLeave={() => setHover(null)}>
        {result.tokens.map((t, i) => {
          const { colour, clamped } = heat(t[metric], max);
          return (
            <button
              key={i}
              className={['token', i === selected ? 'selected' : '', clamped ? 'clamped' : ''].filter(Boolean).join(' ')}
              style={{ background: colour }}
              tabIndex={0}
              aria-describedby={hover === i ? tooltipId : undefined}
              aria-label={`${JSON.stringify(t.text)}: reverse KL ${fmt(t.reverseKL)}, sampled KL ${fmt(t.sampledKL)}`}
              data-testid="heatmap-token"
              data-token-index={i}
              data-reverse-kl={fmt(t.reverseKL)}
              data-sampled-kl={fmt(t.sampledKL)}
              data-clamped={clamped ? 'true' : undefined}
              onMouseEnter={() => setHover(i)}
              onFocus={() => setHover(i)}
              onBlur={() => setHover((h) => (h === i ? null : h))}
              onClick={() => (onSelect ? onSelect(i) : useLab.setState((s) => ({ inspect: { ...s.inspect, selected: i } })))}
            >
              {t.text.replace(/ /g, '␣') || '\u00a0'}
            </button>
          );
        })}
      </div>
      <div className="tooltip-slot">{shown && hover !== null ? <TokenTooltip t={shown} index={hover} id={tooltipId} /> : <span className="muted">Hover over or tab to a token for its probabilities and KLs.</span>}</div>
      {chosen && (
        <>
          <table className="grid details" data-testid="token-details">
            <tbody>
              <tr><th>token</th><td>{JSON.stringify(chosen.text)} (id {chosen.id})</td></tr>
              <tr><th>student log-prob</th><td>{chosen.studentLogprob.toFixed(4)}</td></tr>
              <tr><th>teacher log-prob</th><td>{chosen.teacherLogprob.toFixed(4)}</td></tr>
              <tr><th>sampled KL k</th><td>{chosen.sampledKL.toFixed(4)}</td></tr>
              <tr><th>exact reverse KL</th><td>{chosen.reverseKL.toFixed(4)}</td></tr>
              <tr><th>forward KL</th><td>{chosen.forwardKL.toFixed(4)}</td></tr>
              <tr>
                <th>teacher wanted</th>
                <td data-testid="teacher-top">{chosen.teacherTop.map((c) => `${JSON.stringify(c.text)} ${Math.exp(c.logprob).toFixed(3)}`).join(', ')}</td>
              </tr>
              {chosen.problems.length > 0 && <tr><th>problems</th><td>{chosen.problems.join('; ')}</td></tr>}
            </tbody>
          </table>
          <table className="grid details topk" data-testid="topk-table">
            <caption>
              The teacher’s top {chosen.teacherTop.length} next tokens, and the student’s probability of each
              {onBranch && <>: press one to let the student continue from it instead</>}
            </caption>
            <thead>
              <tr><th>token</th><th>teacher p</th><th>student p</th></tr>
            </thead>
            <tbody>
              {chosen.teacherTop.map((c) => (
                <tr key={c.id} data-testid="topk-row" className={c.id === chosen.id ? 'chosen' : undefined}>
                  <td>
                    {onBranch && c.id !== chosen.id ? (
                      <button
                        className="small secondary branch-button"
                        disabled={branchBusy}
                        data-testid="branch-button"
                        data-alternative={c.text}
                        title={`The student's tokens before this one, then ${JSON.stringify(c.text)}; the student writes the rest`}
                        onClick={() => onBranch(selected!, { id: c.id, text: c.text })}
                      >
                        branch from {JSON.stringify(c.text)}
                      </button>
                    ) : (
                      <>{JSON.stringify(c.text)}{c.id === chosen.id ? ' (written)' : ''}</>
                    )}
                  </td>
                  <td data-testid="topk-teacher-p">{prob(c.logprob)}</td>
                  <td data-testid="topk-student-p">{prob(c.studentLogprob)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
