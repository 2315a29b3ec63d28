import { useState } from 'react';
import { useLab } from '../state/labStore';
import { sampleFromStudent, scoreCompletion, type SampleSettings } from '../lab/connect';
import { LoadBuiltIns, ModelLoader } from '../components/ModelLoader';
import { NumberField } from '../components/NumberField';

/** Background of a token: white at KL 0, deepening red up to the largest KL in the completion. */
function heat(kl: number, max: number): string {
  const t = max > 0 ? Math.min(1, Math.max(0, kl / max)) : 0;
  return `rgba(214, 48, 39, ${(0.08 + 0.77 * t).toFixed(3)})`;
}

/** The student answers the prompt, token by token as they come; any answer can go to the scorer. */
function StudentSamples({ prompt, onPick }: { prompt: string; onPick: (text: string) => void }) {
  const inspect = useLab((s) => s.inspect);
  const phase = useLab((s) => s.phase);
  const student = useLab((s) => s.models.student.model);
  const [settings, setSettings] = useState<SampleSettings>({ n: 4, maxTokens: 16, temperature: 1, seed: 0 });
  const set = (k: keyof SampleSettings) => (v: number) => setSettings((s) => ({ ...s, [k]: v }));
  const canSample = phase === 'ready' && student && prompt && !inspect.sampling;
  return (
    <div className="samples">
      <div className="sample-settings">
        <NumberField label="completions" value={settings.n} onChange={set('n')} min={1} max={16} />
        <NumberField label="max tokens" value={settings.maxTokens} onChange={set('maxTokens')} min={1} max={256} />
        <NumberField label="temperature" value={settings.temperature} onChange={set('temperature')} min={0} max={5} step={0.1} />
        <NumberField label="seed" value={settings.seed} onChange={set('seed')} min={0} max={1e9} />
        <button disabled={!canSample} onClick={() => void sampleFromStudent(prompt, settings)}>
          {inspect.sampling ? 'Sampling…' : 'Sample from the student'}
        </button>
      </div>
      {inspect.sampleError && <p className="error" role="alert">{inspect.sampleError.message}</p>}
      {inspect.samples.length > 0 && (
        <ol className="sample-list" data-testid="samples">
          {inspect.samples.map((c, i) => (
            <li key={i} data-testid="sample">
              <code>{prompt}</code>
              <code className="completion">{c.text || '…'}</code>
              <span className="muted"> {c.tokens} tokens{c.finish ? `, ${c.finish === 'eos' ? 'ended' : 'hit max tokens'}` : c.done ? '' : ', sampling…'}</span>
              {c.finish && (
                <button className="small" onClick={() => onPick(c.text)}>
                  Score this
                </button>
              )}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

/** Score a completion token by token and see where the teacher disagrees. */
export function InspectPanel() {
  const inspect = useLab((s) => s.inspect);
  const phase = useLab((s) => s.phase);
  const models = useLab((s) => s.models);
  const [prompt, setPrompt] = useState('');
  const [completion, setCompletion] = useState('');
  const { result, selected } = inspect;
  const maxKL = result ? Math.max(...result.tokens.map((t) => (Number.isFinite(t.reverseKL) ? t.reverseKL : 0))) : 0;
  const chosen = result && selected !== null ? result.tokens[selected] : null;
  const canScore = phase === 'ready' && models.student.model && models.teacher.model && prompt && completion && !inspect.scoring;
  return (
    <div className="panel-body">
      <section className="card wide">
        <h2>Inspect: where does the teacher disagree?</h2>
        <LoadBuiltIns />
        <div className="loaders">
          <ModelLoader role="student" />
          <ModelLoader role="teacher" />
        </div>
        <label className="field">
          Prompt
          <textarea rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <StudentSamples prompt={prompt} onPick={setCompletion} />
        <label className="field">
          Completion to score
          <textarea rows={2} value={completion} onChange={(e) => setCompletion(e.target.value)} />
        </label>
        <button disabled={!canScore} onClick={() => void scoreCompletion(prompt, completion)}>
          {inspect.scoring ? 'Scoring…' : 'Score'}
        </button>
        {inspect.error && <p className="error" role="alert">{inspect.error.message}</p>}
      </section>
      {result && (
        <section className="card wide" data-testid="heatmap-card">
          <h2>Per-token reverse KL (student ‖ teacher)</h2>
          <p data-testid="score-summary">
            Mean reverse KL <b>{result.meanReverseKL.toFixed(4)}</b> nats per token, mean sampled KL <b>{result.meanSampledKL.toFixed(4)}</b>, over{' '}
            {result.tokens.length} tokens. Click a token for what the teacher wanted instead.
          </p>
          <p className="muted legend">
            Colour: the token’s exact reverse KL, from 0 (pale) to {maxKL.toFixed(3)} (deep red); ␣ is a space.
          </p>
          <div className="heatmap" data-testid="heatmap">
            {result.tokens.map((t, i) => (
              <button
                key={i}
                className={i === selected ? 'token selected' : 'token'}
                style={{ background: heat(t.reverseKL, maxKL) }}
                title={`reverse KL ${t.reverseKL.toFixed(4)}`}
                data-testid="heatmap-token"
                onClick={() => useLab.setState((s) => ({ inspect: { ...s.inspect, selected: i } }))}
              >
                {t.text.replace(/ /g, '␣') || '\u00a0'}
              </button>
            ))}
          </div>
          {chosen && (
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
          )}
        </section>
      )}
    </div>
  );
}
