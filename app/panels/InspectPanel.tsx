import { useEffect, useRef, useState } from 'react';
import { useLab } from '../state/labStore';
import { loadModel, sampleFromStudent, type SampleSettings } from '../lab/connect';
import { branchFrom, drawTaskPrompt, scoreFields, setChat, setCompletion, setPrompt, useInspectFlow } from '../lab/inspectFlow';
import { LoadBuiltIns, ModelLoader } from '../components/ModelLoader';
import { NumberField } from '../components/NumberField';
import type { ChatRenderingSummary, DrawnTaskPrompt, TaskVerdict } from '../../workers/protocol';
import { DEFAULT_HEATMAP_VIEW, Heatmap, type HeatmapView, type ScoredInput } from './Heatmap';
import { Welcome } from './Welcome';

/** A completion's verdict in a line: right, or wrong and what the answer should be (as people read it, and as the model writes it when that differs). */
export function VerdictLine({ verdict, testId }: { verdict: TaskVerdict; testId: string }) {
  const written = (readable: string, raw: string) => (readable !== raw ? <span className="muted"> (written “{raw}”)</span> : null);
  return (
    <span className={`verdict-line ${verdict.correct ? 'right' : 'wrong'}`} data-testid={testId} data-correct={verdict.correct ? 'true' : 'false'}>
      <span className="verdict-mark" aria-hidden="true">{verdict.correct ? '✓' : '✗'}</span>{' '}
      {verdict.correct ? (
        <>
          <b>Right:</b> {verdict.gotReadable}
          {written(verdict.expectedReadable, verdict.expected)}
        </>
      ) : (
        <>
          <b>Wrong:</b> {verdict.gotReadable || 'no answer'}
          {verdict.gotReadable && written(verdict.gotReadable, verdict.got)}; the answer should be <b data-testid={`${testId}-expected`}>{verdict.expectedReadable}</b>
          {written(verdict.expectedReadable, verdict.expected)}
          {verdict.reason && <span className="muted"> ({verdict.reason.replace(/\.$/, '')})</span>}
        </>
      )}
    </span>
  );
}

/** What a drawn prompt is: which held-out prompt of which task, and how the task writes prompts and answers. */
function TaskFormat({ drawn }: { drawn: DrawnTaskPrompt }) {
  return (
    <div className="task-format" data-testid="task-format">
      <p>
        Held-out prompt {drawn.index + 1} of {drawn.heldOut} of the <b>{drawn.task}</b> task (never trained on). Its answer is{' '}
        <b data-testid="task-expected">{drawn.expectedReadable}</b>
        {drawn.expectedReadable !== drawn.expected && <> (written “{drawn.expected}”)</>}.
      </p>
      {drawn.format && <p className="muted" data-testid="task-format-note">{drawn.format}</p>}
    </div>
  );
}

/** The student answers the prompt, token by token as they come; any answer can go to the scorer. */
function StudentSamples({ prompt, chat, onPick }: { prompt: string; chat: boolean; onPick: (text: string) => void }) {
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
        <button disabled={!canSample} onClick={() => void sampleFromStudent(prompt, settings, chat)}>
          {inspect.sampling ? 'Sampling…' : 'Sample from the student'}
        </button>
      </div>
      {inspect.sampleError && <p className="error" role="alert">{inspect.sampleError.message}</p>}
      {inspect.renderedPrompt && (
        <div className="rendered-prompt">
          <span className="muted">The student read the prompt in its chat template:</span>
          <pre data-testid="sampled-rendering">{inspect.renderedPrompt}</pre>
        </div>
      )}
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
              {c.verdict && <> <VerdictLine verdict={c.verdict} testId="sample-verdict" /></>}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

const nats = (x: number) => x.toFixed(4);

/**
 * A chat prompt as each model reads it, and, when the two templates render it differently, a
 * warning with what the mismatch costs on the scored completion (workers/chat/README.md).
 */
function ChatRenderings({ chat }: { chat: ChatRenderingSummary }) {
  const { cost } = chat;
  return (
    <section className="card wide" data-testid="chat-renderings">
      <h2>Chat templates</h2>
      <div className="loaders">
        <div>
          <h3>Student’s rendering ({chat.studentPromptTokens} tokens)</h3>
          <pre data-testid="student-rendering">{chat.studentPrompt}</pre>
        </div>
        <div>
          <h3>Teacher’s rendering ({chat.teacherPromptTokens} tokens)</h3>
          <pre data-testid="teacher-rendering">{chat.teacherPrompt}</pre>
        </div>
      </div>
      {chat.same ? (
        <p data-testid="template-match">Both templates render this prompt the same way: the teacher reads exactly what the student read.</p>
      ) : (
        <div className="warning" role="alert" data-testid="template-mismatch">
          <p>
            <b>The chat templates differ</b> (from character {chat.firstDifference}): the student and the teacher read this prompt in different formats.
          </p>
          {cost && (
            <p data-testid="template-mismatch-cost">
              On this completion ({cost.tokens} tokens), feeding the teacher the student’s rendering instead of its own moves its next-token distribution by{' '}
              <b data-testid="template-shift-kl">{nats(cost.teacherShiftKL)}</b> nats per token (mean KL(teacher on the student’s rendering ‖ teacher on its own)), and
              the teacher’s log-prob of each token by {nats(cost.meanAbsTeacherLogprobShift)} on average. The student’s reverse KL is{' '}
              <b>{nats(cost.reverseKLStudentRendering)}</b> with the teacher on the student’s rendering and <b>{nats(cost.reverseKLTeacherRendering)}</b> with the
              teacher on its own (the heatmap): a recipe that feeds the teacher the student’s rendering trains on the first signal.
            </p>
          )}
        </div>
      )}
    </section>
  );
}

/** Score a completion token by token and see where the teacher disagrees. */
export function InspectPanel() {
  const inspect = useLab((s) => s.inspect);
  const phase = useLab((s) => s.phase);
  const models = useLab((s) => s.models);
  const { prompt, completion, chat, drawn, drawing, drawError, branch, tryIt, scored } = useInspectFlow();
  const [heatView, setHeatView] = useState<HeatmapView>(DEFAULT_HEATMAP_VIEW);
  const [branchSelected, setBranchSelected] = useState<number | null>(null);
  const { result, selected } = inspect;
  const canScore = phase === 'ready' && models.student.model && models.teacher.model && prompt && completion && !inspect.scoring;
  const heatmapRef = useRef<HTMLDivElement>(null);
  // "Try it" ends on the heatmap: bring it into view.
  useEffect(() => {
    if (tryIt.done && result) heatmapRef.current?.scrollIntoView({ block: 'start' });
  }, [tryIt.done, result]);
  useEffect(() => setBranchSelected(null), [branch?.result]);
  const input: ScoredInput | null = scored;
  const labels = { student: models.student.model?.label ?? null, teacher: models.teacher.model?.label ?? null };
  const branching = branch !== null && (branch.state === 'sampling' || branch.state === 'scoring');
  const branchCaption = branch && result && (
    <p className="branch-caption" data-testid="branch-caption">
      From token {branch.index}: “{branch.alternative}” instead of “{result.tokens[branch.index]?.text}”, then the student goes on.{' '}
      <button className="small secondary" onClick={() => useInspectFlow.setState({ branch: null })} disabled={branching}>
        Close the branch
      </button>
    </p>
  );
  return (
    <div className="panel-body">
      <Welcome hasHeatmap={result !== null} />
      <section className="card wide">
        <h2>Inspect: where does the teacher disagree?</h2>
        <LoadBuiltIns />
        <div className="loaders">
          <ModelLoader role="student" />
          <ModelLoader role="teacher" />
        </div>
        <p className="sanity">
          <button
            className="secondary small"
            disabled={phase !== 'ready' || !models.teacher.model || models.student.loading || models.teacher.loading}
            onClick={() => void loadModel('student', { sameAs: 'teacher' })}
          >
            Sanity check: the teacher as the student
          </button>{' '}
          <span className="muted">loads the teacher’s folder as the student too: a student equal to its teacher has a KL of 0 at every token.</span>
        </p>
        <label className="field">
          Prompt
          <textarea rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} data-testid="prompt-field" />
        </label>
        <p className="draw-prompt">
          <button
            className="secondary small"
            disabled={phase !== 'ready' || !models.student.model || drawing || models.student.loading}
            onClick={() => void drawTaskPrompt()}
          >
            {drawing ? 'Drawing…' : 'Draw a task prompt'}
          </button>{' '}
          <span className="muted">a held-out prompt of the task the student was trained on, with the task’s format.</span>
        </p>
        {drawError && <p className="error" role="alert" data-testid="draw-error">{drawError.message}</p>}
        {drawn && drawn.prompt === prompt && <TaskFormat drawn={drawn} />}
        <label className="checkbox">
          <input type="checkbox" checked={chat} onChange={(e) => setChat(e.target.checked)} /> Chat prompt: a user message, rendered with each model’s chat template
        </label>
        <StudentSamples prompt={prompt} chat={chat} onPick={setCompletion} />
        <label className="field">
          Completion to score
          <textarea rows={2} value={completion} onChange={(e) => setCompletion(e.target.value)} data-testid="completion-field" />
        </label>
        <button
          disabled={!canScore}
          onClick={() => void scoreFields()}
        >
          {inspect.scoring ? 'Scoring…' : 'Score'}
        </button>
        {inspect.error && <p className="error" role="alert">{inspect.error.message}</p>}
      </section>
      {result?.chat && <ChatRenderings chat={result.chat} />}
      {result && (
        <div className={branch ? 'heatmap-pair wide' : 'heatmap-single wide'} ref={heatmapRef}>
          <div className="heatmap-column">
            <Heatmap
              note={result.verdict && (
                <p className="scored-verdict">
                  <VerdictLine verdict={result.verdict} testId="scored-verdict" />
                </p>
              )}
              result={result}
              selected={selected}
              input={input}
              models={labels}
              view={heatView}
              onView={setHeatView}
              which="original"
              title={branch ? 'The student’s completion' : undefined}
              onBranch={(index, alt) => input && void branchFrom(index, alt.id, alt.text, input.prompt, input.chat)}
              branchBusy={branching}
            />
          </div>
          {branch && (
            <div className="heatmap-column" data-testid="branch">
              {!branch.result && (
                <section className="card branch-pending">
                  <h2>The branch</h2>
                  {branchCaption}
                  {branch.state === 'sampling' && <p className="muted">The student continues from there…</p>}
                  {branch.state === 'scoring' && <p className="muted">The teacher scores “{branch.completion}”…</p>}
                  {branch.error && <p className="error" role="alert" data-testid="branch-error">{branch.error.message}</p>}
                </section>
              )}
              {branch.result && (
                <Heatmap
                  note={
                    <>
                      {branchCaption}
                      {branch.result.verdict && (
                        <p className="scored-verdict">
                          <VerdictLine verdict={branch.result.verdict} testId="branch-verdict" />
                        </p>
                      )}
                    </>
                  }
                  result={branch.result}
                  selected={branchSelected}
                  input={input && branch.completion !== null ? { ...input, completion: branch.completion } : null}
                  models={labels}
                  view={heatView}
                  onView={setHeatView}
                  which="branch"
                  title="The branch"
                  onSelect={setBranchSelected}
                  controls={false}
                />
              )}
            </div>
          )}
        </div>
      )}
    </div>
  );
}
