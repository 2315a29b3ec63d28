/** Numbers for people: metrics (4 significant digits), FLOPs and durations. */

/** 4 significant digits; scientific notation for the very large and the very small. */
export function formatMetric(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-3) return x.toExponential(digits - 2);
  return String(Number(x.toPrecision(digits)));
}

const PREFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

/** 1234567 → "1.23 M" (SI prefixes; the unit is said by the caller). */
export function formatSi(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  let i = 0;
  let v = x;
  while (Math.abs(v) >= 1000 && i < PREFIXES.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${PREFIXES[i] ? ` ${PREFIXES[i]}` : ''}`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
