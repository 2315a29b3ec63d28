/**
 * How the heatmap turns a token's KL into a colour, shared by the page and the PNG export so the
 * picture saved is the picture seen.
 *
 * The absolute scale is a fixed range of nats, the same for every completion, so a small penalty
 * looks small (0.002 nats is near white on 0–2) and a penalty fading over training looks fainter.
 * The relative scale stretches this completion's largest value to full colour: it shows where the
 * teacher disagrees most within one answer, not how much.
 */
import type { ScoredTokenSummary } from '../../workers/protocol';

export type HeatmapMetric = 'reverseKL' | 'sampledKL';
export type HeatmapScale = 'absolute' | 'relative';

/** The absolute scale's top, in nats, until the person sets another. */
export const DEFAULT_ABSOLUTE_MAX_NATS = 2;

export const METRIC_NAMES: Record<HeatmapMetric, string> = {
  reverseKL: 'exact reverse KL',
  sampledKL: 'sampled KL (log p_student − log p_teacher of the token)',
};

/** How numbers are shown, in the tooltip, the data-* attributes and the table alike. */
export const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));
export const prob = (logprob: number) => Math.exp(logprob).toFixed(4);

/** The top of the scale in nats: the fixed maximum, or this completion's largest |value| (0 when all are 0). */
export function scaleMax(tokens: readonly ScoredTokenSummary[], metric: HeatmapMetric, scale: HeatmapScale, absoluteMax: number): number {
  if (scale === 'absolute') return absoluteMax;
  let m = 0;
  for (const t of tokens) if (Number.isFinite(t[metric])) m = Math.max(m, Math.abs(t[metric]));
  return m;
}

/**
 * The background of a value on a scale topping at `max`: white at 0, deepening red for a positive
 * value, blue for a negative one (the sampled KL of one token is a log-ratio and can be below 0;
 * the exact reverse KL cannot). `clamped` when |value| is past the top.
 */
export function heat(value: number, max: number): { colour: string; clamped: boolean } {
  const v = Number.isFinite(value) ? value : 0;
  const clamped = max > 0 && Math.abs(v) > max;
  const t = max > 0 ? Math.min(1, Math.abs(v) / max) : 0;
  const alpha = (0.85 * t).toFixed(3);
  return { colour: v < 0 ? `rgba(49, 104, 196, ${alpha})` : `rgba(214, 48, 39, ${alpha})`, clamped };
}

/** The legend's sentence for the current setting. */
export function legendText(metric: HeatmapMetric, scale: HeatmapScale, max: number): string {
  const what = `Colour: the token’s ${METRIC_NAMES[metric]}`;
  const neg = metric === 'sampledKL' ? '; below 0 (the student less sure than the teacher) in blue' : '';
  if (scale === 'absolute') {
    return `${what}, absolute scale from 0 (white) to ${fmt(max)} nats (deep red), the same for every completion; values above ${fmt(max)} are clamped and marked ▲${neg}.`;
  }
  return `${what}, relative scale from 0 (white) to this completion’s largest, ${fmt(max)} nats (deep red)${neg}.`;
}
