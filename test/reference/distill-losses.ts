/**
 * Float64 reference of the distillation losses of workers/kernels/train/distill_loss.wgsl (k3,
 * JSD(β), top-k with a tail bucket): one row's loss and its gradient w.r.t. the student logits,
 * written straight from the formulas of that kernel's header (no shared code with it).
 * p = softmax(z_s/τ), q = softmax(z_t/τ); the row's weight is 1 (the kernel multiplies by w).
 */

export interface DistillLossSettings {
  kind: 'k3' | 'jsd' | 'topk';
  temperature: number;
  beta?: number;
  topK?: number;
  direction?: 'forward' | 'reverse';
}

/** The kernel's floor under a bucket's mass before its log, and its clamp of log r. */
export const MASS_FLOOR = 1e-30;
export const LOG_R_MAX = 80;

export function logSoftmax(z: ArrayLike<number>, temperature: number): number[] {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]);
  const u = Array.from(z, (x) => (x - m) / temperature);
  const logZ = Math.log(u.reduce((a, x) => a + Math.exp(x), 0));
  return u.map((x) => x - logZ);
}

/** The teacher's top-k ids: larger logit first, ties to the smaller id; k ≥ V: every id. */
export function teacherTopK(zt: ArrayLike<number>, k: number): number[] {
  const ids = Array.from({ length: zt.length }, (_, i) => i);
  ids.sort((a, b) => (zt[a] !== zt[b] ? zt[b] - zt[a] : a - b));
  return ids.slice(0, Math.min(k, zt.length));
}

const term = (weight: number, logA: number, logB: number) => (weight > 0 ? weight * (logA - logB) : 0);
const logFloor = (m: number) => Math.log(Math.max(m, MASS_FLOOR));

/**
 * One row: loss and ∂loss/∂z_s (`y`: the sampled token, for k3), and `terms`: the largest size of
 * the terms whose difference a gradient element is (p_v·(|g_v| + |Σ_u p_u g_u|)/τ, or
 * (p_v + q_v)/τ for the forward KL): an f32 kernel's rounding error is proportional to it, not
 * to the difference, so tests scale their tolerance by it.
 */
export function distillLossRow(zs: ArrayLike<number>, zt: ArrayLike<number>, y: number, s: DistillLossSettings): { loss: number; grad: number[]; terms: number } {
  const tau = s.temperature;
  const lp = logSoftmax(zs, tau);
  const lq = logSoftmax(zt, tau);
  const p = lp.map(Math.exp);
  const q = lq.map(Math.exp);
  const V = p.length;
  if (s.kind === 'k3') {
    const logR = Math.min(LOG_R_MAX, Math.max(-LOG_R_MAX, lq[y] - lp[y]));
    const r = Math.exp(logR);
    const grad = p.map((pv, v) => ((1 - r) * ((v === y ? 1 : 0) - pv)) / tau);
    return { loss: r - 1 - logR, grad, terms: Math.max(...grad.map(Math.abs)) };
  }
  if (s.kind === 'jsd') {
    const beta = s.beta ?? 0.5;
    if (beta === 0) {
      const loss = q.reduce((a, qv, v) => a + term(qv, lq[v], lp[v]), 0);
      return { loss, grad: p.map((pv, v) => (pv - q[v]) / tau), terms: Math.max(...p.map((pv, v) => (pv + q[v]) / tau)) };
    }
    if (beta === 1) {
      const loss = p.reduce((a, pv, v) => a + term(pv, lp[v], lq[v]), 0);
      return { loss, grad: p.map((pv, v) => (pv * (lp[v] - lq[v] - loss)) / tau), terms: Math.max(...p.map((pv, v) => (pv > 0 ? pv * (Math.abs(lp[v] - lq[v]) + loss) : 0) / tau)) };
    }
    const lm = p.map((pv, v) => Math.log((1 - beta) * pv + beta * q[v]));
    const loss = p.reduce((a, pv, v) => a + beta * term(q[v], lq[v], lm[v]) + (1 - beta) * term(pv, lp[v], lm[v]), 0);
    // g_v = ∂L/∂p_v = (1−β)(log p_v − log M_v); dz_v = p_v(g_v − Σ_u p_u g_u)/τ.
    const g = p.map((pv, v) => (pv > 0 ? (1 - beta) * (lp[v] - lm[v]) : 0));
    const S = p.reduce((a, pv, v) => a + pv * g[v], 0);
    return { loss, grad: p.map((pv, v) => (pv * (g[v] - S)) / tau), terms: Math.max(...p.map((pv, v) => (pv * (Math.abs(g[v]) + Math.abs(S))) / tau)) };
  }
  const top = teacherTopK(zt, s.topK ?? 16);
  const bucket = new Array<number>(V).fill(top.length);
  top.forEach((id, i) => (bucket[id] = i));
  const PS = new Array<number>(top.length + 1).fill(0);
  const PT = new Array<number>(top.length + 1).fill(0);
  for (let v = 0; v < V; v++) {
    PS[bucket[v]] += p[v];
    PT[bucket[v]] += q[v];
  }
  const forward = s.direction === 'forward';
  let loss = 0;
  const g = PS.map((ps, i) => {
    const pt = PT[i];
    if (forward) {
      loss += term(pt, logFloor(pt), logFloor(ps));
      return -pt / Math.max(ps, MASS_FLOOR);
    }
    loss += term(ps, logFloor(ps), logFloor(pt));
    return logFloor(ps) - logFloor(pt) + 1;
  });
  const S = PS.reduce((a, ps, i) => a + ps * g[i], 0);
  return {
    loss,
    grad: p.map((pv, v) => (pv * (g[bucket[v]] - S)) / tau),
    terms: Math.max(...p.map((pv, v) => (pv * (Math.abs(g[bucket[v]]) + Math.abs(S))) / tau)),
  };
}
