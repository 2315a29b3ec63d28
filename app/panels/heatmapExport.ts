/**
 * The heatmap saved as files: JSON (every scored token with its numbers, the prompt, the
 * completion, the models and the colour setting) and PNG (the tokens drawn on a canvas in the
 * colours the page shows, with the legend's sentence; no library).
 */
import type { ScoredTokenSummary } from '../../workers/protocol';
import { fmt, heat, legendText, type HeatmapMetric, type HeatmapScale } from './heatmapScale';

export interface HeatmapExport {
  prompt: string;
  completion: string;
  chat: boolean;
  models: { student: string | null; teacher: string | null };
  colourBy: HeatmapMetric;
  scale: HeatmapScale;
  /** The top of the colour scale, in nats. */
  scaleMax: number;
  meanReverseKL: number;
  meanSampledKL: number;
  tokens: ScoredTokenSummary[];
}

/** The JSON file: the export with each token's index and probabilities written out beside the log-probs. */
export function heatmapJson(e: HeatmapExport): string {
  const tokens = e.tokens.map((t, index) => ({
    index,
    ...t,
    studentProb: Math.exp(t.studentLogprob),
    teacherProb: Math.exp(t.teacherLogprob),
    teacherTop: t.teacherTop.map((c) => ({ ...c, teacherProb: Math.exp(c.logprob), studentProb: Math.exp(c.studentLogprob) })),
  }));
  return JSON.stringify({ kind: 'opd-lab heatmap', version: 1, ...e, tokens }, null, 2);
}

const FONT = '18px ui-monospace, "DejaVu Sans Mono", Menlo, monospace';
const SMALL = '13px system-ui, sans-serif';

/** Splits `text` into lines at most `width` pixels wide (at spaces where it can). */
function wrap(ctx: CanvasRenderingContext2D, text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line ? `${line} ${word}` : word;
    if (ctx.measureText(next).width > width && line) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** Draws the heatmap (title, prompt, tokens in their colours, legend) and returns it as PNG bytes. */
export async function heatmapPng(e: HeatmapExport): Promise<Blob> {
  const width = 960;
  const pad = 16;
  const measure = document.createElement('canvas').getContext('2d');
  if (!measure) throw new Error('This browser cannot draw on a 2D canvas, so the heatmap cannot be saved as PNG: save it as JSON instead.');
  // Lay out first (token boxes wrapped to the width), then size the canvas and draw.
  measure.font = FONT;
  const boxes: { x: number; y: number; w: number; label: string; colour: string; clamped: boolean }[] = [];
  const lineH = 30;
  measure.font = SMALL;
  const header = [
    ...wrap(measure, `Student ${e.models.student ?? '?'} against teacher ${e.models.teacher ?? '?'}. Prompt: ${JSON.stringify(e.prompt)}`, width - 2 * pad),
    `Mean reverse KL ${fmt(e.meanReverseKL)} nats per token, mean sampled KL ${fmt(e.meanSampledKL)}, over ${e.tokens.length} tokens.`,
  ];
  const legend = wrap(measure, legendText(e.colourBy, e.scale, e.scaleMax), width - 2 * pad);
  measure.font = FONT;
  let x = pad;
  let y = pad + header.length * 18 + 10;
  for (const t of e.tokens) {
    const label = t.text.replace(/ /g, '␣') || '\u00a0';
    const w = Math.ceil(measure.measureText(label).width) + 10;
    if (x + w > width - pad && x > pad) {
      x = pad;
      y += lineH + 4;
    }
    const { colour, clamped } = heat(t[e.colourBy], e.scaleMax);
    boxes.push({ x, y, w, label, colour, clamped });
    x += w + 3;
  }
  const height = y + lineH + 36 + legend.length * 18 + pad;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.textBaseline = 'top';
  ctx.fillStyle = '#1d1d1f';
  ctx.font = SMALL;
  header.forEach((l, i) => ctx.fillText(l, pad, pad + i * 18));
  for (const b of boxes) {
    ctx.fillStyle = b.colour;
    ctx.fillRect(b.x, b.y, b.w, lineH);
    ctx.strokeStyle = b.clamped ? '#1d1d1f' : 'rgba(0, 0, 0, 0.12)';
    ctx.strokeRect(b.x + 0.5, b.y + 0.5, b.w - 1, lineH - 1);
    ctx.fillStyle = '#1d1d1f';
    ctx.font = FONT;
    ctx.fillText(b.label, b.x + 5, b.y + 5);
    if (b.clamped) {
      ctx.font = '10px sans-serif';
      ctx.fillText('▲', b.x + b.w - 9, b.y + 1);
    }
  }
  // The colour bar: 0 to the scale's top (from minus the top for the sampled KL, which can be below 0).
  const barY = y + lineH + 12;
  const barW = 240;
  const bar = ctx.createLinearGradient(pad, 0, pad + barW, 0);
  if (e.colourBy === 'sampledKL') {
    bar.addColorStop(0, heat(-e.scaleMax, e.scaleMax).colour);
    bar.addColorStop(0.5, '#ffffff');
  } else bar.addColorStop(0, '#ffffff');
  bar.addColorStop(1, heat(e.scaleMax, e.scaleMax).colour);
  ctx.fillStyle = bar;
  ctx.fillRect(pad, barY, barW, 12);
  ctx.strokeStyle = 'rgba(0, 0, 0, 0.15)';
  ctx.strokeRect(pad + 0.5, barY + 0.5, barW - 1, 11);
  ctx.font = SMALL;
  ctx.fillStyle = '#1d1d1f';
  ctx.fillText(`${e.colourBy === 'sampledKL' ? `−${fmt(e.scaleMax)}` : '0'} … ${fmt(e.scaleMax)} nats`, pad + barW + 8, barY - 1);
  legend.forEach((l, i) => ctx.fillText(l, pad, barY + 20 + i * 18));
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The browser could not encode the heatmap as PNG: save it as JSON instead.'))), 'image/png'),
  );
}
