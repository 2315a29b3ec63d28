/**
 * Where a run's prompts come from: the built-in task (with its verifier: accuracy), prompts
 * pasted one per line, or an uploaded .txt (one per line) or .jsonl file (a "prompt" or
 * "messages" field per line). For the last two the lab worker reads and splits the set as the
 * run will (prompts.check, for the loaded student) and the panel shows the split, n training /
 * n held out, or the sentence saying what is wrong, in place. Such runs have no verifier: the
 * evaluations report the held-out reverse KL instead of accuracy.
 */
import { useEffect } from 'react';
import { useLab } from '../state/labStore';
import { usePromptSource, promptTextSource, type PromptSourceKind } from '../state/promptSource';
import { checkPrompts } from '../lab/connect';
import { NumberField } from '../components/NumberField';
import { KNOB_BY_NAME, knobProblem, rangeText } from '../../workers/contract/knobs';
import { teacherRenderingSentence } from '../../workers/contract/prompts';

const KINDS: { kind: PromptSourceKind; text: string }[] = [
  { kind: 'task', text: 'built-in task' },
  { kind: 'paste', text: 'paste prompts' },
  { kind: 'upload', text: 'upload .txt / .jsonl' },
];

/** How long typing pauses before the worker reads the pasted prompts. */
const CHECK_DELAY_MS = 300;

export function PromptSourcePicker({ locked }: { locked: boolean }) {
  const source = usePromptSource();
  const ready = useLab((s) => s.phase === 'ready');
  const setup = useLab((s) => s.setup);
  const setSetup = useLab((s) => s.setSetup);
  // The check depends on the student (its context length and chat template) and on the teacher
  // (its chat template: which rendering it reads): re-run it when another loads.
  const student = useLab((s) => s.models.student.model?.label ?? null);
  const teacher = useLab((s) => s.models.teacher.model?.label ?? null);
  const { kind, pasted, upload, asChat } = source;
  const { heldOutFraction, splitSeed } = setup;

  useEffect(() => {
    const text = promptTextSource({ kind, pasted, upload, asChat });
    if (!ready || !text || (kind === 'paste' && pasted.trim() === '')) return;
    if (knobProblem(KNOB_BY_NAME.heldOutFraction, heldOutFraction) || knobProblem(KNOB_BY_NAME.splitSeed, splitSeed)) return;
    const timer = setTimeout(() => void checkPrompts(text, { heldOutFraction, splitSeed }), CHECK_DELAY_MS);
    return () => clearTimeout(timer);
  }, [ready, kind, pasted, upload, asChat, heldOutFraction, splitSeed, student, teacher]);

  const fraction = KNOB_BY_NAME.heldOutFraction;
  const seed = KNOB_BY_NAME.splitSeed;
  return (
    <fieldset className="prompt-source" disabled={locked} data-testid="prompt-source">
      <legend>Prompts</legend>
      <div className="buttons" role="radiogroup" aria-label="Prompt source">
        {KINDS.map((k) => (
          <label key={k.kind} className={kind === k.kind ? 'objective chosen' : 'objective'}>
            <input
              type="radio"
              name="prompt-source"
              value={k.kind}
              checked={kind === k.kind}
              onChange={() => usePromptSource.setState({ kind: k.kind, summary: null, error: null })}
            />{' '}
            {k.text}
          </label>
        ))}
      </div>
      {kind === 'task' && <p className="muted">The task chosen below: its training prompts, its held-out prompts and its verifier (held-out accuracy).</p>}
      {kind === 'paste' && (
        <label className="field">
          One prompt per line (blank lines are skipped)
          <textarea
            rows={6}
            value={pasted}
            data-testid="prompt-paste"
            placeholder={'Q:  12+ 34= A: \nQ: 505+  7= A: '}
            onChange={(e) => usePromptSource.setState({ pasted: e.target.value })}
          />
        </label>
      )}
      {kind === 'upload' && (
        <label className="field">
          A .txt file (one prompt per line) or a .jsonl file (a "prompt" or "messages" field per line)
          <input
            type="file"
            accept=".txt,.jsonl,text/plain"
            data-testid="prompt-file"
            onChange={async (e) => {
              const file = e.target.files?.[0];
              if (file) usePromptSource.setState({ upload: { name: file.name, text: await file.text() }, summary: null, error: null });
            }}
          />
        </label>
      )}
      {kind !== 'task' && (
        <>
          {(kind === 'paste' || !upload || !/\.jsonl$/i.test(upload.name)) && (
            <label className="checkbox">
              <input type="checkbox" checked={asChat} onChange={(e) => usePromptSource.setState({ asChat: e.target.checked, summary: null, error: null })} /> Each line is a user
              message, rendered with each model’s chat template (for chat models)
            </label>
          )}
          <div className="knobs">
            <NumberField
              label={fraction.label}
              title={`${fraction.help} Must ${rangeText(fraction)}.`}
              value={heldOutFraction}
              min={fraction.min}
              max={fraction.max}
              step="any"
              testId="held-out-fraction"
              onChange={(v) => setSetup({ heldOutFraction: v })}
            />
            <NumberField
              label={seed.label}
              title={`${seed.help} Must ${rangeText(seed)}.`}
              value={splitSeed}
              min={seed.min}
              max={seed.max}
              step={1}
              onChange={(v) => setSetup({ splitSeed: v })}
            />
          </div>
          {source.error ? (
            <p className="error" role="alert" data-testid="prompt-error">
              {source.error.message}
            </p>
          ) : source.summary ? (
            <p data-testid="prompt-split">
              {source.summary.label}: <b>{source.summary.train}</b> training / <b>{source.summary.heldOut}</b> held-out prompts
              {student ? '' : ' (checked again against the student once one is loaded)'}. No verifier: evaluations report the held-out reverse KL and sampled KL instead of
              accuracy. {teacherRenderingSentence(source.summary)}
            </p>
          ) : (
            <p className="muted">{source.checking ? 'Reading the prompts…' : kind === 'upload' && !upload ? 'No file chosen.' : 'Paste prompts, one per line.'}</p>
          )}
        </>
      )}
    </fieldset>
  );
}
