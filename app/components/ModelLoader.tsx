/**
 * Loading a model folder as the student or the teacher: by URL, by Hugging Face id
 * (ORG/NAME[@REVISION], from the Hub endpoint set in the Models panel, through the model cache,
 * with a progress bar), or from a folder picked on this computer, as the ONNX dtype picked beside
 * it (auto, or one of onnx-community's variants: workers/contract/dtypes.ts). The worker holds one
 * student and one teacher, so every panel shows the same two. The field starts at the lab's
 * built-in model for the role (models/<name>/ on this server).
 */
import { useEffect, useState } from 'react';
import { useLab, type ModelRole } from '../state/labStore';
import { loadModel } from '../lab/connect';
import { builtInFor, builtInModelUrl, fetchBuiltIns, useBuiltIns, type BuiltInModel } from '../lab/builtInModels';
import { LLAMA_STUDENT, SELF_DISTILL, SELF_DISTILL_ROUTED, WORKED, type Preset } from '../../workers/contract/presets';
import { formatBytes, isHubId, useHub, type HubLoadProgress } from '../state/hub';
import { useLoadDtype, type DtypePick } from '../state/loadDtype';
import { isOnnxDtype, ONNX_DTYPE_FILES, ONNX_DTYPE_NOTES, ONNX_DTYPES } from '../../workers/contract/dtypes';

/** A loaded model's label when it can be typed back into the field: its URL or its Hub id. */
const byUrl = (label: string | undefined) => (label && (/^https?:\/\//.test(label) || isHubId(label)) ? label : null);

/** A Hub download: the bytes over the model's files as a bar and "12.3 MB of 48.0 MB", and the file under way. */
function HubProgressLine({ role, progress, loading }: { role: ModelRole; progress: HubLoadProgress; loading: boolean }) {
  const current = progress.files.find((f) => !f.done) ?? progress.files[progress.files.length - 1];
  const cached = progress.files.length > 0 && progress.files.every((f) => f.fromCache);
  const fileText = current && (current.total !== null ? `${formatBytes(current.loaded)} of ${formatBytes(current.total)}` : formatBytes(current.loaded));
  return (
    <div className="hub-progress" data-testid={`${role}-progress`}>
      <progress value={progress.folderLoaded} max={Math.max(progress.folderTotal, 1)} aria-label={`${role} download`} />
      <span data-testid={`${role}-progress-text`}>
        {formatBytes(progress.folderLoaded)} of {formatBytes(progress.folderTotal)}
      </span>
      <span className="muted">
        {loading
          ? current && ` ${current.file}: ${fileText}${current.fromCache ? ' from the cache' : ''}`
          : ` ${progress.files.length} files of ${progress.model}${cached ? ', all from the cache' : ''}`}
      </span>
    </div>
  );
}

/** Loads the built-in student, then the built-in teacher (the folders models/index.json gives those roles). */
export async function loadBuiltInPair(): Promise<void> {
  const index = useBuiltIns.getState().index;
  // The built-in pair knows addition only: no kept or routed task (a preset may have set one).
  const { keepTask, routeTask } = useLab.getState().setup;
  if (keepTask || routeTask) useLab.getState().setSetup({ keepTask: '', routeTask: '' });
  await loadModel('student', { url: builtInModelUrl(builtInFor('student', index)) });
  await loadModel('teacher', { url: builtInModelUrl(builtInFor('teacher', index)) });
}

/** One click for the built-in student and teacher; hidden when this build has none. */
export function LoadBuiltIns({ disabled = false }: { disabled?: boolean }) {
  const ready = useLab((s) => s.phase === 'ready');
  const loading = useLab((s) => s.models.student.loading || s.models.teacher.loading);
  const setPanel = useLab((s) => s.setPanel);
  const inModels = useLab((s) => s.panel === 'models');
  const { status, index } = useBuiltIns();
  useEffect(() => void fetchBuiltIns(), []);
  const names = { student: builtInFor('student', index), teacher: builtInFor('teacher', index) };
  const present = index ? index.models.some((m) => m.role === 'student') && index.models.some((m) => m.role === 'teacher') : status !== 'failed';
  if (!present) {
    return <p className="muted builtins">This build has no built-in student and teacher (see the Models panel): load folders of your own below.</p>;
  }
  return (
    <p className="builtins">
      <button disabled={!ready || loading || disabled} onClick={() => void loadBuiltInPair()}>
        Load the built-in student and teacher
      </button>{' '}
      <span className="muted">
        <code>{names.student}</code> and <code>{names.teacher}</code>, served by the lab itself
        {inModels ? '.' : (
          <>
            : see the{' '}
            <a href="#panel=models" onClick={(e) => (e.preventDefault(), setPanel('models'))}>
              Models
            </a>{' '}
            panel.
          </>
        )}
      </span>
    </p>
  );
}

export function ModelLoader({ role, disabled = false }: { role: ModelRole; disabled?: boolean }) {
  const slot = useLab((s) => s.models[role]);
  const ready = useLab((s) => s.phase === 'ready');
  const index = useBuiltIns((s) => s.index);
  useEffect(() => void fetchBuiltIns(), []);
  // The built-in folder for the role, unless index.json says this build has none.
  const builtIn = index && !index.models.some((m) => m.role === role) ? '' : builtInModelUrl(builtInFor(role, index));
  // A model loaded by URL keeps its URL in the field when the panel is shown again; else the built-in one.
  const [url, setUrl] = useState(() => byUrl(slot.model?.label) ?? builtIn);
  // A model loaded by URL elsewhere (the built-in pair, the Models panel) shows its URL here;
  // after a failed load the field keeps what the person typed (the model kept is named below it).
  const loadedUrl = byUrl(slot.model?.label);
  const failed = slot.error !== null;
  useEffect(() => {
    if (loadedUrl && !failed) setUrl(loadedUrl);
  }, [loadedUrl]);
  // index.json read after the field was filled: an untouched default follows it.
  useEffect(() => {
    setUrl((old) => (!loadedUrl && old !== builtIn && old === builtInModelUrl(builtInFor(role, null)) ? builtIn : old));
  }, [builtIn]);
  const dtype = useLoadDtype((s) => s.dtype[role]);
  const setDtype = useLoadDtype((s) => s.setDtype);
  const endpoint = useHub((s) => s.endpoint);
  const progress = useHub((s) => s.progress[role]);
  const label = role === 'student' ? 'Student' : 'Teacher';
  const off = !ready || slot.loading || disabled;
  const hub = isHubId(url);
  // The download shown while it runs, and after it for the model it brought (or the failure it ended in).
  const showProgress = progress && (slot.loading || slot.error || slot.model?.label === progress.model);
  return (
    <div className="loader">
      <label>
        {label} model folder URL or Hugging Face id
        <input value={url} onChange={(e) => setUrl(e.target.value)} placeholder="http://…/my-model/ or ORG/NAME[@revision]" />
      </label>
      <p className="muted hub-hint">
        {hub ? (
          <>
            A Hugging Face id: read from <code>{endpoint || 'https://huggingface.co'}</code> (set in the Models panel) and kept in this browser’s model
            cache.
          </>
        ) : (
          <>
            A folder URL (config.json, tokenizer.json, model.safetensors or onnx/model.onnx), or a Hugging Face id such as <code>ORG/NAME</code>.
          </>
        )}
      </p>
      <div className="loader-actions">
        <button disabled={off || !url.trim()} onClick={() => void loadModel(role, hub ? { hub: url.trim() } : { url: url.trim() }, dtype || undefined)}>
          {slot.loading ? 'Loading…' : `Load ${role}`}
        </button>
        <label className="pick">
          or pick a folder on this computer
          <input
            type="file"
            disabled={off}
            aria-label={`${label} model folder on this computer`}
            // A folder picker: the browser hands over every file with its path inside the folder.
            {...{ webkitdirectory: '', directory: '' }}
            multiple
            onChange={(e) => e.target.files && e.target.files.length > 0 && void loadModel(role, { files: e.target.files }, dtype || undefined)}
          />
        </label>
        <label className="pick" title="Which ONNX file of an onnx-community / transformers.js folder runs. Auto: onnx/model.onnx when the folder has it (for a folder with model.safetensors of a family the lab knows, the decoder built from those weights), else the smallest variant this adapter runs.">
          {label} ONNX dtype
          <select value={dtype} disabled={off} onChange={(e) => setDtype(role, (isOnnxDtype(e.target.value) ? e.target.value : '') as DtypePick)}>
            <option value="">auto (fits this adapter)</option>
            {ONNX_DTYPES.map((d) => (
              <option key={d} value={d}>
                {d}: {ONNX_DTYPE_FILES[d].replace(/^onnx\//, '')} ({ONNX_DTYPE_NOTES[d]})
              </option>
            ))}
          </select>
        </label>
      </div>
      {showProgress && <HubProgressLine role={role} progress={progress} loading={slot.loading} />}
      {slot.model && (
        <p className="muted source" data-testid={`${role}-source`}>
          from {slot.model.label}
        </p>
      )}
      {slot.model && (
        <p className="muted" data-testid={`${role}-summary`}>
          {slot.model.modelType}
          {slot.model.parameters !== null ? `, ${slot.model.parameters.toLocaleString('en-US')} parameters` : ''}, vocabulary{' '}
          {slot.model.vocabSize.toLocaleString('en-US')}
          {slot.model.trainable ? ', trainable' : ''}
        </p>
      )}
      {slot.model && (
        <p className="muted" data-testid={`${role}-runs`}>
          {slot.model.onnx ? (
            <>
              runs <code>{slot.model.onnx.file}</code> (dtype {slot.model.onnx.dtype})
            </>
          ) : (
            'runs the decoder the lab builds from model.safetensors'
          )}
        </p>
      )}
      {slot.warnings.map((w) => (
        <p key={w} className="warning" role="status">{w}</p>
      ))}
      {slot.error && <p className="error" role="alert" data-testid={`${role}-error`}>{slot.error.message}</p>}
    </div>
  );
}

/**
 * A preset's button: loads its built-in student and teacher and sets its knobs, with a sentence
 * about the pair from their recipes. Hidden when this build lacks either folder.
 */
function PresetButton({ preset, disabled, blurb }: { preset: Preset; disabled: boolean; blurb: (student: BuiltInModel, teacher: BuiltInModel) => React.ReactNode }) {
  const ready = useLab((s) => s.phase === 'ready');
  const loading = useLab((s) => s.models.student.loading || s.models.teacher.loading);
  const setSetup = useLab((s) => s.setSetup);
  const index = useBuiltIns((s) => s.index);
  const student = index?.models.find((m) => m.name === preset.student);
  const teacher = index?.models.find((m) => m.name === preset.teacher);
  if (!student || !teacher) return null;
  const apply = async () => {
    setSetup(preset.setup);
    await loadModel('student', { url: builtInModelUrl(student.name) });
    await loadModel('teacher', { url: builtInModelUrl(teacher.name) });
  };
  return (
    <p className="builtins preset" data-testid={`preset-${preset.name}`}>
      <button className="secondary" disabled={!ready || loading || disabled} onClick={() => void apply()}>
        {preset.title}
      </button>{' '}
      <span className="muted">{blurb(student, teacher)}</span>
    </p>
  );
}

const pct = (x: number | null) => (x === null ? '?' : `${(100 * x).toFixed(1)}%`);

/**
 * The self-distillation preset: the recovery pair as student and teacher, and a setup that trains
 * on addition while keeping subtraction. Hidden when this build has no recovery pair.
 */
export function SelfDistillPreset({ disabled = false }: { disabled?: boolean }) {
  return (
    <PresetButton
      preset={SELF_DISTILL}
      disabled={disabled}
      blurb={(student, teacher) => (
        <>
          <code>{student.name}</code> is <code>{teacher.name}</code> fine-tuned on subtraction: subtraction {pct(teacher.keptAccuracy)} → {pct(student.keptAccuracy)},
          addition {pct(teacher.heldOutAccuracy)} → {pct(student.heldOutAccuracy)}. The preset distils it on addition with its own earlier checkpoint as the
          teacher, and evaluates subtraction beside it (never trained on).
        </>
      )}
    />
  );
}

/**
 * The self-distillation preset with routing: the recovery pair, trained on addition (scored by
 * the teacher) and on subtraction (scored by a frozen copy of the student). Hidden without the pair.
 */
export function SelfDistillRoutedPreset({ disabled = false }: { disabled?: boolean }) {
  return (
    <PresetButton
      preset={SELF_DISTILL_ROUTED}
      disabled={disabled}
      blurb={(student, teacher) => (
        <>
          The same pair, with routing: addition’s prompts are scored by <code>{teacher.name}</code>, subtraction’s by a frozen copy of <code>{student.name}</code>{' '}
          as loaded, so the student trains on both and keeps subtraction ({pct(student.keptAccuracy)}) from its own earlier self.
        </>
      )}
    />
  );
}

/** The Llama-student preset: a Llama-family student taught by the GPT-2 teacher. Hidden when this build lacks either. */
export function LlamaStudentPreset({ disabled = false }: { disabled?: boolean }) {
  return (
    <PresetButton
      preset={LLAMA_STUDENT}
      disabled={disabled}
      blurb={(student, teacher) => (
        <>
          <code>{student.name}</code> ({student.modelType}, {pct(student.heldOutAccuracy)} held-out) learns from <code>{teacher.name}</code> ({teacher.modelType},{' '}
          {pct(teacher.heldOutAccuracy)}): two families, one tokenizer.
        </>
      )}
    />
  );
}

/** The reasoning-task preset: the worked-addition pair. Hidden when this build lacks either folder. */
export function WorkedPreset({ disabled = false }: { disabled?: boolean }) {
  return (
    <PresetButton
      preset={WORKED}
      disabled={disabled}
      blurb={(student, teacher) => (
        <>
          Addition with the working written out (<code>7+9+0=16 4+8+1=13 3+5+1=09 so 936</code>): <code>{student.name}</code> ({pct(student.heldOutAccuracy)} held-out) learns from{' '}
          <code>{teacher.name}</code> ({pct(teacher.heldOutAccuracy)}), and the heatmap shows the step where its working first goes wrong.
        </>
      )}
    />
  );
}
