/**
 * Compare: the runs the archive keeps (app/state/runArchive.ts), listed with their setups; any
 * selection drawn on shared axes (held-out accuracy, or held-out reverse KL where a run has no
 * verifier, and the held-out reverse KL) against steps or against FLOPs, with each run's FLOPs
 * split into student sampling, teacher scoring and training. The race runs the four objectives on
 * the built-in task with the same seed and budget (app/lab/race.ts), drawn here as they go.
 */
import { useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { useRunArchive, type RunRecord } from '../state/runArchive';
import { NumberField } from '../components/NumberField';
import { formatMetric, formatSi } from '../components/numbers';
import { DEFAULT_RACE_STEPS, RACE_OBJECTIVES, RACE_PRESETS, RACE_SETUP, startRace, stopRace, useRace, type RacePreset, type RacePresetName } from '../lab/race';
import { useLab } from '../state/labStore';
import type { ObjectiveName } from '../../workers/contract/run';

type XKey = 'step' | 'flops';

/** One colour per objective, so a race reads at a glance; a second run of an objective gets a dash. */
const OBJECTIVE_COLOURS: Record<ObjectiveName, string> = {
  'opd-sampled': '#3056d3', 'opd-full': '#0f766e', sft: '#d97706', rl: '#c0392b',
  topk: '#7c3aed', 'opd-k3': '#0891b2', jsd: '#be185d', gkd: '#65a30d',
};
const FALLBACK = ['#7c3aed', '#1c8a4a', '#8e44ad', '#555'];
const SPLIT_COLOURS = { studentSampling: '#3056d3', teacherScoring: '#d97706', training: '#7c3aed' };

const chartStyle = { width: '100%', height: 260 };
const margin = { top: 8, right: 16, bottom: 22, left: 4 };

function shortLabel(r: RunRecord): string {
  return `${r.setup.objective} · ${new Date(r.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}`;
}

/** A model's label as the list shows it: a folder URL's last segment, an id as it is. */
function shortModel(label: string): string {
  const m = /^[a-z]+:\/\/.*?([^/]+)\/?$/.exec(label);
  return m ? m[1] : label;
}

function setupText(r: RunRecord): string {
  const s = r.setup;
  const prompts = r.prompts ? 'own prompts' : s.task;
  const lora = s.loraRank > 0 ? `, LoRA ${s.loraRank}` : '';
  return `${prompts}, ${s.batchPrompts}×${s.groupSize}, lr ${s.lr}${lora}, seed ${s.seed}`;
}

/** The last evaluation's headline: accuracy where there is a verifier, else the held-out reverse KL. */
function headline(r: RunRecord): string {
  const e = r.evals.at(-1);
  if (!e) return '—';
  return e.accuracy !== undefined ? `${(100 * e.accuracy).toFixed(1)}%` : `KL ${formatMetric(e.reverseKL, 3)}`;
}

interface Series {
  run: RunRecord;
  name: string;
  colour: string;
  dashed: boolean;
  points: { step: number; flops: number; accuracy: number | null; reverseKL: number | null }[];
}

function seriesOf(runs: RunRecord[]): Series[] {
  const seen = new Map<string, number>();
  return runs.map((run, i) => {
    const o = run.setup.objective;
    const n = seen.get(o) ?? 0;
    seen.set(o, n + 1);
    return {
      run,
      name: shortLabel(run),
      colour: OBJECTIVE_COLOURS[o] ?? FALLBACK[i % FALLBACK.length],
      dashed: n > 0,
      points: run.evals.map((e) => ({
        step: e.step,
        flops: e.flopsTotal,
        accuracy: e.accuracy === undefined ? null : 100 * e.accuracy,
        reverseKL: Number.isFinite(e.reverseKL) ? e.reverseKL : null,
      })),
    };
  });
}

function SharedChart({ series, x, y, title, testId, unit }: { series: Series[]; x: XKey; y: 'accuracy' | 'reverseKL'; title: string; testId: string; unit?: string }) {
  const drawn = series.filter((s) => s.points.some((p) => p[y] !== null));
  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      {drawn.length === 0 ? (
        <p className="chart-empty muted">No evaluations yet in the runs selected.</p>
      ) : (
        <LineChart style={chartStyle} responsive margin={margin}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis
            dataKey={x}
            type="number"
            domain={[0, 'dataMax']}
            allowDuplicatedCategory={false}
            tickFormatter={(v: number) => (x === 'flops' ? formatSi(v) : String(v))}
            label={{ value: x === 'flops' ? 'FLOPs (student sampling + teacher scoring + training)' : 'step', position: 'insideBottom', offset: -10 }}
          />
          <YAxis width={56} unit={unit} domain={y === 'accuracy' ? [0, 100] : ['auto', 'auto']} tickFormatter={(v: number) => (y === 'accuracy' ? String(v) : formatMetric(v, 3))} />
          <Tooltip formatter={(v) => (typeof v === 'number' ? (y === 'accuracy' ? `${v.toFixed(1)}%` : formatMetric(v)) : String(v))} labelFormatter={(v) => (x === 'flops' ? `${formatSi(Number(v))}FLOP` : `step ${v}`)} />
          <Legend verticalAlign="top" height={24} />
          {drawn.map((s) => (
            <Line
              key={s.run.id}
              data={s.points}
              dataKey={y}
              name={s.name}
              stroke={s.colour}
              strokeWidth={2}
              strokeDasharray={s.dashed ? '5 3' : undefined}
              dot={s.points.length <= 40 ? { r: 2.5 } : false}
              isAnimationActive={false}
              connectNulls
            />
          ))}
        </LineChart>
      )}
    </figure>
  );
}

function FlopsSplit({ series }: { series: Series[] }) {
  const data = series.map((s) => {
    const f = s.run.steps.at(-1)?.flops;
    return { name: s.name, studentSampling: f?.studentSampling ?? 0, teacherScoring: f?.teacherScoring ?? 0, training: f?.training ?? 0 };
  });
  return (
    <figure className="chart" data-testid="compare-flops-split">
      <figcaption>FLOPs spent so far, by where they went</figcaption>
      <BarChart data={data} layout="vertical" style={{ width: '100%', height: 40 + 36 * data.length }} responsive margin={{ ...margin, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis type="number" tickFormatter={(v: number) => formatSi(v)} />
        <YAxis type="category" dataKey="name" width={150} />
        <Tooltip formatter={(v) => (typeof v === 'number' ? `${formatSi(v)}FLOP` : String(v))} />
        <Legend verticalAlign="top" height={24} />
        <Bar dataKey="studentSampling" name="student sampling" stackId="f" fill={SPLIT_COLOURS.studentSampling} isAnimationActive={false} />
        <Bar dataKey="teacherScoring" name="teacher scoring" stackId="f" fill={SPLIT_COLOURS.teacherScoring} isAnimationActive={false} />
        <Bar dataKey="training" name="training" stackId="f" fill={SPLIT_COLOURS.training} isAnimationActive={false} />
      </BarChart>
    </figure>
  );
}

function Race() {
  const race = useRace();
  const ready = useLab((s) => s.phase === 'ready');
  const [presetName, setPresetName] = useState<RacePresetName>('demo');
  const preset: RacePreset = RACE_PRESETS[presetName];
  const [steps, setSteps] = useState(DEFAULT_RACE_STEPS);
  const [evalPrompts, setEvalPrompts] = useState<number>(RACE_SETUP.evalPrompts);
  const going = race.status === 'loading' || race.status === 'running';
  const valid = Number.isInteger(steps) && steps >= 1 && steps <= 10_000 && Number.isInteger(evalPrompts) && evalPrompts >= 1 && evalPrompts <= 1000;
  const s = preset.setup;
  const lrs = [...new Set(Object.values(preset.lr))];
  const choose = (name: RacePresetName) => {
    setPresetName(name);
    setEvalPrompts(RACE_PRESETS[name].setup.evalPrompts);
  };
  return (
    <section className="card wide" data-testid="race">
      <h2>Race the four objectives</h2>
      <label className="race-preset">
        race setup{' '}
        <select value={presetName} onChange={(e) => choose(e.target.value as RacePresetName)} disabled={going} data-testid="race-preset">
          {(Object.keys(RACE_PRESETS) as RacePresetName[]).map((name) => (
            <option key={name} value={name}>
              {RACE_PRESETS[name].label}
            </option>
          ))}
        </select>
      </label>
      <p data-testid="race-about">
        <code>opd-sampled</code>, <code>opd-full</code>, <code>sft</code> and <code>rl</code>, one after the other: {preset.about}. The same seed ({s.seed}), the same steps,{' '}
        {s.batchPrompts} prompts × {s.groupSize} answers a step, learning rate {lrs.length === 1 ? lrs[0] : RACE_OBJECTIVES.map((o) => `${o} ${preset.lr[o]}`).join(', ')}; held-out accuracy every{' '}
        {s.evalEvery === 1 ? 'step' : `${s.evalEvery} steps`} (and at the start and the end). Each run is drawn below as it goes, and kept with the others.
      </p>
      <div className="race-controls">
        <NumberField label="steps per run" value={steps} onChange={setSteps} min={1} max={10_000} disabled={going} testId="race-steps" />
        <NumberField label="held-out prompts" value={evalPrompts} onChange={setEvalPrompts} min={1} max={1000} disabled={going} title="Held-out prompts each evaluation answers (greedy): more is steadier, and slower." testId="race-eval-prompts" />
        <button onClick={() => void startRace(steps, evalPrompts, presetName)} disabled={!ready || going || !valid}>
          Start the race
        </button>
        <button className="danger" onClick={() => void stopRace()} disabled={!going}>
          Stop the race
        </button>
      </div>
      {!valid && <p className="error" role="alert">Steps per run must be a whole number from 1 to 10,000, and held-out prompts one from 1 to 1,000.</p>}
      {race.message && (
        <p data-testid="race-status" className={race.status === 'failed' ? 'error' : undefined} role={race.status === 'failed' ? 'alert' : 'status'}>
          {race.message}
        </p>
      )}
    </section>
  );
}

export function ComparePanel() {
  const { runs, loaded, error } = useRunArchive();
  const raceStartedAt = useRace((s) => s.startedAt);
  // null: the default selection (the race's runs once there is a race, else the 4 newest runs).
  const [picked, setPicked] = useState<Set<string> | null>(null);
  const [x, setX] = useState<XKey>('step');
  const selection = useMemo(() => {
    if (picked) return picked;
    const race = raceStartedAt !== null ? runs.filter((r) => r.createdAt >= raceStartedAt) : [];
    return new Set((race.length > 0 ? race : runs.slice(0, 4)).map((r) => r.id));
  }, [picked, runs, raceStartedAt]);
  const chosen = runs.filter((r) => selection.has(r.id)).reverse(); // oldest first: the race's order
  const series = seriesOf(chosen);
  const anyAccuracy = series.some((s) => s.points.some((p) => p.accuracy !== null));
  const toggle = (id: string) => {
    const next = new Set(selection);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setPicked(next);
  };
  return (
    <div className="panel-body">
      <section className="card wide">
        <h2>Compare runs</h2>
        <p className="muted">
          On-policy distillation against off-policy distillation (SFT on the teacher’s answers) and reinforcement learning with a 1/0 reward,
          on shared axes. Every run the lab drives is kept here; pick the ones to draw.
        </p>
        {error && <p className="error" role="alert">{error}</p>}
        {!loaded ? (
          <p className="muted">Reading the kept runs…</p>
        ) : runs.length === 0 ? (
          <p className="muted" data-testid="compare-empty">No runs yet: start one in the Distill panel, or race the four objectives below.</p>
        ) : (
          <div className="table-scroll">
            <table className="grid compare-runs" data-testid="compare-runs">
              <thead>
                <tr>
                  <th scope="col">draw</th><th scope="col">objective</th><th scope="col">setup</th><th scope="col">models</th><th scope="col">steps</th><th scope="col">status</th><th scope="col">last eval</th>
                </tr>
              </thead>
              <tbody>
                {runs.map((r) => (
                  <tr key={r.id} data-testid="compare-run" data-run-id={r.id} data-objective={r.setup.objective}>
                    <td>
                      <input type="checkbox" checked={selection.has(r.id)} onChange={() => toggle(r.id)} aria-label={`draw ${r.label}`} />
                    </td>
                    <td>
                      <span className="swatch" style={{ background: OBJECTIVE_COLOURS[r.setup.objective] ?? '#555' }} /> {r.setup.objective}
                    </td>
                    <td>{setupText(r)}</td>
                    <td className="muted" title={`${r.models.student.label} ← ${r.models.teacher.label}`}>{shortModel(r.models.student.label)} ← {shortModel(r.models.teacher.label)}</td>
                    <td>{r.step} / {r.totalSteps}</td>
                    <td>{r.status}</td>
                    <td data-testid="compare-headline">{headline(r)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Race />
      <section className="card wide" data-testid="compare-charts">
        <h2>The runs selected ({series.length})</h2>
        <fieldset className="inline-choice">
          <legend>Draw against</legend>
          <label><input type="radio" name="compare-x" checked={x === 'step'} onChange={() => setX('step')} /> steps</label>
          <label><input type="radio" name="compare-x" checked={x === 'flops'} onChange={() => setX('flops')} /> FLOPs</label>
        </fieldset>
        <div className="charts">
          {anyAccuracy && <SharedChart series={series} x={x} y="accuracy" unit="%" title="Held-out accuracy" testId="compare-accuracy" />}
          <SharedChart series={series} x={x} y="reverseKL" title="Held-out reverse KL to the teacher, per token (nats)" testId="compare-kl" />
        </div>
        {series.length > 0 && <FlopsSplit series={series} />}
      </section>
    </div>
  );
}
