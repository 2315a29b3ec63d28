/**
 * The run's live curves. The history is read by reference (state/distillRun.ts) and copied into
 * this component's state at most every THROTTLE_MS, so a stream of steps redraws five charts a few
 * times a second and nothing else.
 */
import { useEffect, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { runHistory, subscribeHistory, useDistillRun, type RunHistory } from '../state/distillRun';
import { formatMetric, formatSi } from '../components/numbers';

export const THROTTLE_MS = 250;

const COLORS = {
  reverseKL: '#3056d3',
  sampledKL: '#d97706',
  loss: '#7c3aed',
  entropy: '#0f766e',
  ratio: '#c0392b',
  accuracy: '#1c8a4a',
  kept: '#8e44ad',
  routed: ['#b45309', '#0e7490', '#be185d'],
  teacherMass: '#3056d3',
  studentMass: '#d97706',
  overlap: '#0f766e',
};

const snapshot = (): RunHistory => ({ steps: [...runHistory.steps], evals: [...runHistory.evals] });

/** The history, redrawn at a throttled rate while it grows. */
export function useThrottledHistory(ms: number): RunHistory {
  const [history, setHistory] = useState(snapshot);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      setHistory(snapshot());
    };
    const unsubscribe = subscribeHistory(() => {
      timer ??= setTimeout(flush, ms);
    });
    flush(); // what arrived between the first render and this subscription
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
  }, [ms]);
  return history;
}

function ChartFrame({ title, testId, empty, note, children }: { title: string; testId: string; empty: boolean; note?: string; children: React.ReactNode }) {
  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      {note && <p className="chart-note muted">{note}</p>}
      {empty ? <p className="chart-empty muted">No points yet: they appear as the run goes.</p> : children}
    </figure>
  );
}

const chartStyle = { width: '100%', height: 220 };
const margin = { top: 8, right: 16, bottom: 18, left: 4 };
const stepAxis = (
  <XAxis dataKey="step" type="number" domain={['dataMin', 'dataMax']} allowDecimals={false} label={{ value: 'step', position: 'insideBottom', offset: -8 }} />
);
const tooltipValue = (v: unknown) => (typeof v === 'number' ? formatMetric(v) : String(v));
/** Dots while there are few points, so a short run's points are visible one by one. */
const dots = (n: number) => (n <= 40 ? { r: 2.5 } : false);

const flopsAxis = (
  <XAxis
    dataKey="flops"
    type="number"
    domain={[0, 'dataMax']}
    tickFormatter={(v: number) => formatSi(v)}
    label={{ value: 'FLOPs (student sampling + teacher scoring + training)', position: 'insideBottom', offset: -8 }}
  />
);

export function DistillCharts() {
  const { steps, evals } = useThrottledHistory(THROTTLE_MS);
  const keptTask = useDistillRun((s) => s.latestEval?.kept?.task ?? null);
  // Routed tasks (a run with routes): each drawn beside the main task, against its own teacher.
  const routed = useDistillRun((s) => s.latestEval?.routed) ?? [];
  const routedLine = (r: { task: string }, i: number, what: 'routedAccuracy' | 'routedReverseKL') => (
    <Line key={`${what}-${r.task}`} dataKey={`${what}.${r.task}`} name={`routed: ${r.task}`} stroke={COLORS.routed[i % COLORS.routed.length]} strokeWidth={2} strokeDasharray="2 2" dot={dots(evals.length)} isAnimationActive={false} />
  );
  // A run on prompts without a verifier (a prompt set) has no accuracy: its held-out curve is the reverse KL.
  const unverified = useDistillRun((s) => s.latestEval !== undefined && s.latestEval !== null && s.latestEval.accuracy === undefined);
  const n = steps.length;
  // Runs recorded before the top-k diagnostics have no such points; the k is the latest step's.
  const topkPoints = steps.filter((p) => p.topkOverlap !== null).length;
  const topkK = useDistillRun((s) => s.latest?.topkK ?? 16);
  return (
    <div className="charts">
      <ChartFrame title="Reverse KL to the teacher, per token (nats)" testId="chart-kl" empty={n === 0}>
        <LineChart data={steps} style={chartStyle} responsive margin={margin}>
          <CartesianGrid strokeDasharray="3 3" />
          {stepAxis}
          <YAxis width={56} tickFormatter={(v: number) => formatMetric(v, 3)} />
          <Tooltip formatter={tooltipValue} labelFormatter={(s) => `step ${s}`} />
          <Legend verticalAlign="top" height={24} />
          <Line dataKey="reverseKL" name="exact reverse KL" stroke={COLORS.reverseKL} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
          <Line dataKey="sampledKL" name="sampled KL k" stroke={COLORS.sampledKL} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
        </LineChart>
      </ChartFrame>
      {unverified ? (
        <ChartFrame title="Held-out reverse KL against compute (per token, nats)" testId="chart-heldout-kl" empty={evals.length === 0}>
          <LineChart data={evals} style={chartStyle} responsive margin={margin}>
            <CartesianGrid strokeDasharray="3 3" />
            {flopsAxis}
            <YAxis width={56} tickFormatter={(v: number) => formatMetric(v, 3)} domain={['auto', 'auto']} />
            <Tooltip formatter={tooltipValue} labelFormatter={(f) => `${formatSi(Number(f))}FLOP`} />
            <Legend verticalAlign="top" height={24} />
            <Line dataKey="reverseKL" name="held-out reverse KL" stroke={COLORS.reverseKL} strokeWidth={2} dot={dots(evals.length)} isAnimationActive={false} />
            <Line dataKey="sampledKL" name="held-out sampled KL" stroke={COLORS.sampledKL} strokeWidth={2} dot={dots(evals.length)} isAnimationActive={false} />
            {routed.map((r, i) => routedLine(r, i, 'routedReverseKL'))}
          </LineChart>
        </ChartFrame>
      ) : (
        <ChartFrame title="Held-out accuracy against compute" testId="chart-accuracy" empty={evals.length === 0}>
          <LineChart data={evals} style={chartStyle} responsive margin={margin}>
            <CartesianGrid strokeDasharray="3 3" />
            {flopsAxis}
            <YAxis width={56} domain={[0, 100]} unit="%" />
            <Tooltip formatter={(v) => (typeof v === 'number' ? `${v.toFixed(1)}%` : String(v))} labelFormatter={(f) => `${formatSi(Number(f))}FLOP`} />
            <Legend verticalAlign="top" height={24} />
            <Line dataKey="accuracy" name="held-out accuracy" stroke={COLORS.accuracy} strokeWidth={2} dot={dots(evals.length)} isAnimationActive={false} />
            {keptTask && (
              <Line dataKey="keptAccuracy" name={`kept: ${keptTask}`} stroke={COLORS.kept} strokeWidth={2} strokeDasharray="5 3" dot={dots(evals.length)} isAnimationActive={false} />
            )}
            {routed.filter((r) => r.accuracy !== undefined).map((r, i) => routedLine(r, i, 'routedAccuracy'))}
          </LineChart>
        </ChartFrame>
      )}
      <ChartFrame title="Loss" testId="chart-loss" empty={n === 0}>
        <LineChart data={steps} style={chartStyle} responsive margin={margin}>
          <CartesianGrid strokeDasharray="3 3" />
          {stepAxis}
          <YAxis width={56} tickFormatter={(v: number) => formatMetric(v, 3)} domain={['auto', 'auto']} />
          <Tooltip formatter={tooltipValue} labelFormatter={(s) => `step ${s}`} />
          <Legend verticalAlign="top" height={24} />
          <Line dataKey="loss" name="loss" stroke={COLORS.loss} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
        </LineChart>
      </ChartFrame>
      <ChartFrame
        title={`Teacher and student mass on the teacher's top-${topkK}, and overlap`}
        testId="chart-topk"
        empty={topkPoints === 0}
        note={`Mass: each model's probability on the teacher's ${topkK} most likely tokens; overlap: the share of those tokens also among the student's own top ${topkK} (mean over the step's tokens).`}
      >
        <LineChart data={steps} style={chartStyle} responsive margin={margin}>
          <CartesianGrid strokeDasharray="3 3" />
          {stepAxis}
          <YAxis width={56} domain={[0, 100]} unit="%" />
          <Tooltip formatter={(v) => (typeof v === 'number' ? `${v.toFixed(1)}%` : String(v))} labelFormatter={(s) => `step ${s}`} />
          <Legend verticalAlign="top" height={24} />
          <Line dataKey="teacherTopkMass" name="teacher mass" stroke={COLORS.teacherMass} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
          <Line dataKey="studentTopkMass" name="student mass" stroke={COLORS.studentMass} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
          <Line dataKey="topkOverlap" name="overlap" stroke={COLORS.overlap} strokeWidth={2} strokeDasharray="5 3" dot={dots(n)} isAnimationActive={false} />
        </LineChart>
      </ChartFrame>
      <ChartFrame title="Student entropy (nats) and mean importance ratio ρ" testId="chart-entropy" empty={n === 0}>
        <LineChart data={steps} style={chartStyle} responsive margin={margin}>
          <CartesianGrid strokeDasharray="3 3" />
          {stepAxis}
          <YAxis yAxisId="entropy" width={56} tickFormatter={(v: number) => formatMetric(v, 3)} />
          {/* ρ sits at 1 on-policy: the axis spans at least 0.9–1.1 so its ticks say so, and widens for runs that drift. */}
          <YAxis yAxisId="ratio" orientation="right" width={56} tickFormatter={(v: number) => formatMetric(v, 3)} domain={[(lo: number) => Math.min(lo, 0.9), (hi: number) => Math.max(hi, 1.1)]} />
          <Tooltip formatter={tooltipValue} labelFormatter={(s) => `step ${s}`} />
          <Legend verticalAlign="top" height={24} />
          <Line yAxisId="entropy" dataKey="entropy" name="entropy (left)" stroke={COLORS.entropy} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
          <Line yAxisId="ratio" dataKey="meanRatio" name="mean ρ (right)" stroke={COLORS.ratio} strokeWidth={2} dot={dots(n)} isAnimationActive={false} />
        </LineChart>
      </ChartFrame>
    </div>
  );
}
