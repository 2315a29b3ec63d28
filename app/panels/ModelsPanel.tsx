/**
 * Models: the built-in teacher and student (models/index.json, served by the lab itself), each
 * with its recipe and training log, loaded as the student or the teacher through the same
 * `model.load` by URL as any folder; the architecture of the student and teacher the lab holds
 * (any family it knows: GPT-2, Llama, Qwen2, Qwen3); and how to bring a folder of one's own.
 */
import { useEffect } from 'react';
import { useLab, type ModelRole } from '../state/labStore';
import type { ModelSummary } from '../../workers/protocol';
import { loadModel } from '../lab/connect';
import { LoadBuiltIns } from '../components/ModelLoader';
import { HubSettings, ModelManager } from '../components/ModelManager';
import { builtInModelUrl, builtInUrl, describeTask, fetchBuiltIns, formatSeconds, useBuiltIns, type BuiltInModel } from '../lab/builtInModels';

const ROLES: ModelRole[] = ['student', 'teacher'];

/** The recipe's time for this model: the teacher's part, or (for the student) the rest of the recipe. */
function buildTime(m: BuiltInModel): string | null {
  const b = m.buildSeconds;
  if (!b) return null;
  if (typeof b.recovery === 'number') return `${formatSeconds(b.recovery)} (the fine-tune that made the pair)`;
  // A model built by a step of its own (the Llama student: `--only llama-student`).
  if (typeof b.total !== 'number' && m.role === 'student' && typeof b.student === 'number') return `${formatSeconds(b.student)} (its own step of the recipe)`;
  const whole = typeof b.total === 'number' ? `the whole recipe took ${formatSeconds(b.total)}` : null;
  let own: string | null = null;
  if (m.role === 'teacher' && typeof b.teacher === 'number') own = formatSeconds(b.teacher);
  else if (m.role === 'student' && typeof b.total === 'number' && typeof b.teacher === 'number') own = formatSeconds(b.total - b.teacher);
  if (own && whole) return `${own} (${whole})`;
  return own ?? whole;
}

function ModelCard({ model }: { model: BuiltInModel }) {
  const slots = useLab((s) => s.models);
  const ready = useLab((s) => s.phase === 'ready');
  const url = builtInModelUrl(model.name);
  const loadedAs = ROLES.filter((r) => slots[r].model?.label === url);
  const busy = !ready || slots.student.loading || slots.teacher.loading;
  const accuracy =
    model.heldOutAccuracy !== null
      ? `${(100 * model.heldOutAccuracy).toFixed(1)}%${model.heldOutPrompts !== null ? ` of ${model.heldOutPrompts.toLocaleString('en-US')} held-out prompts (greedy)` : ''}`
      : null;
  const time = buildTime(model);
  const has = (file: string) => model.files.includes(file);
  return (
    <section className="card model-card" data-testid="builtin-model" data-name={model.name}>
      <h2>
        <code>{model.name}</code> {model.role && <span className={`role-badge role-${model.role}`}>{model.role}</span>}
      </h2>
      <table className="kv">
        <tbody>
          <tr>
            <th>Architecture</th>
            <td data-testid="builtin-parameters">
              {model.modelType ?? 'unknown'}
              {model.parameters !== null ? `, ${model.parameters.toLocaleString('en-US')} parameters` : ''}
            </td>
          </tr>
          <tr>
            <th>Task</th>
            <td>{describeTask(model.taskName, model.task)}</td>
          </tr>
          {model.description && (
            <tr>
              <th>What it is</th>
              <td>{model.description}</td>
            </tr>
          )}
          <tr>
            <th>Held-out accuracy</th>
            <td data-testid="builtin-accuracy">{accuracy ?? 'not measured'}</td>
          </tr>
          {model.keptTask && (
            <tr>
              <th>Kept task: {model.keptTask}</th>
              <td data-testid="builtin-kept-accuracy">{model.keptAccuracy !== null ? `${(100 * model.keptAccuracy).toFixed(1)}% held-out` : 'not measured'}</td>
            </tr>
          )}
          {model.steps !== null && (
            <tr>
              <th>Training steps</th>
              <td>{model.steps.toLocaleString('en-US')}</td>
            </tr>
          )}
          {time && (
            <tr>
              <th>Build time</th>
              <td data-testid="builtin-build-time">{time}</td>
            </tr>
          )}
          {model.adapter && (
            <tr>
              <th>Built on</th>
              <td>{model.adapter}</td>
            </tr>
          )}
          <tr>
            <th>Files</th>
            <td className="file-links">
              {has('recipe.json') && (
                <a href={`${url}recipe.json`} target="_blank" rel="noreferrer">
                  recipe.json
                </a>
              )}
              {has('training-log.jsonl') && (
                <a href={`${url}training-log.jsonl`} target="_blank" rel="noreferrer">
                  training-log.jsonl
                </a>
              )}
              <a href={`${url}config.json`} target="_blank" rel="noreferrer">
                config.json
              </a>
              <span className="muted">{model.files.length} files</span>
            </td>
          </tr>
        </tbody>
      </table>
      <div className="buttons">
        {ROLES.map((role) => (
          <button key={role} className={model.role === role ? undefined : 'secondary'} disabled={busy} onClick={() => void loadModel(role, { url })}>
            Use as {role}
          </button>
        ))}
        {loadedAs.length > 0 && (
          <span className="loaded-as" data-testid="builtin-loaded-as">
            ✓ loaded as the {loadedAs.join(' and the ')}
          </span>
        )}
      </div>
    </section>
  );
}

/** The architecture of a loaded model, as its family describes it (worker-side: no math here). */
function LoadedModelCard({ role, model }: { role: ModelRole; model: ModelSummary }) {
  const a = model.architecture;
  const n = (x: number) => x.toLocaleString('en-US');
  const rows: [string, string][] = a
    ? [
        ['Architecture', `${a.family} (model_type ${model.modelType})`],
        ['Layers', n(a.layers)],
        ['Hidden size', n(a.hidden)],
        ['Heads', a.kvHeads === a.heads ? `${a.heads}` : `${a.heads} query heads sharing ${a.kvHeads} key/value heads`],
        ['Head dimension', n(a.headDim)],
        ['MLP width', n(a.intermediate)],
        ['Positions', a.positions],
        ['Output head', a.tiedHead ? 'tied to the embedding' : 'its own (untied)'],
        ...(a.extras.length ? [['Also', a.extras.join(', ')] as [string, string]] : []),
        ['Parameters', n(a.parameters)],
        ['Vocabulary', n(model.vocabSize)],
      ]
    : [
        ['Architecture', `${model.modelType} (a family the lab does not know: it runs the folder’s onnx/model.onnx as a teacher)`],
        ['Vocabulary', n(model.vocabSize)],
      ];
  return (
    <section className="card model-card" data-testid={`loaded-${role}`}>
      <h2>
        The {role} <span className={`role-badge role-${role}`}>{role}</span>
      </h2>
      <p className="muted source">from {model.label}</p>
      <table className="kv">
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td data-testid={`loaded-${role}-${k.toLowerCase().replace(/ /g, '-')}`}>{v}</td>
            </tr>
          ))}
          <tr>
            <th>Trainable</th>
            <td>{model.trainable ? 'yes (model.safetensors)' : 'no'}</td>
          </tr>
        </tbody>
      </table>
    </section>
  );
}

export function ModelsPanel() {
  const slots = useLab((s) => s.models);
  const { status, index, error } = useBuiltIns();
  useEffect(() => void fetchBuiltIns(), []);
  const models = index?.models ?? [];
  const recipe = (models.find((m) => m.role === 'teacher') ?? models[0])?.name;
  return (
    <div className="panel-body">
      <section className="card wide">
        <h2>Models</h2>
        <p className="prose">
          The lab ships a teacher and a student for the addition task, a Llama-family student for the same task, the pair of the self-distillation
          preset, and a Llama-family teacher and student for worked addition (every column’s working written out, so the heatmap shows the step where
          an answer first goes wrong), as Hugging Face model folders
          served by the lab itself from{' '}
          <a href={builtInUrl('index.json')} target="_blank" rel="noreferrer">
            <code>models/</code>
          </a>{' '}
          on this server: nothing is downloaded from a model hub. Load them here, or in the Inspect and Distill panels, which share the one student and
          one teacher the lab holds.
        </p>
        {status === 'loaded' && models.length > 0 && <LoadBuiltIns />}
        {(status === 'idle' || status === 'loading') && <p className="muted">Reading the list of built-in models…</p>}
        {status === 'failed' && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {status === 'loaded' && models.length === 0 && (
          <p className="warning" data-testid="no-builtins">
            This build has no built-in models: run <code>npm run build:models</code>, then <code>npm start</code> again.
          </p>
        )}
      </section>
      {ROLES.map((role) => {
        const model = slots[role].model;
        return model ? <LoadedModelCard key={`loaded-${role}`} role={role} model={model} /> : null;
      })}
      <section className="card wide" data-testid="hub-card">
        <h2>Hugging Face models</h2>
        <HubSettings />
        <h3>Cached models</h3>
        <ModelManager />
      </section>
      {models.map((m) => (
        <ModelCard key={m.name} model={m} />
      ))}
      <section className="card">
        <h2>Your own model folder</h2>
        <p className="prose">
          In the Inspect or Distill panel, put the folder’s URL in <i>Student model folder URL</i> or <i>Teacher model folder URL</i> and press Load, or
          pick the folder on this computer with the folder picker beside it. The folder is a Hugging Face / transformers.js folder with{' '}
          <code>config.json</code>, <code>tokenizer.json</code> and <code>tokenizer_config.json</code>. For a model of a family the lab knows (GPT-2,
          Llama, Qwen2, Qwen3: SmolLM2, Llama 3.2, Qwen2.5, Qwen3), <code>model.safetensors</code> is enough: the lab builds the decoder from it; any
          other decoder can serve as a teacher through its <code>onnx/model.onnx</code>. A folder on another server must allow this page to read it (CORS, and{' '}
          <code>Cross-Origin-Resource-Policy: cross-origin</code>, since the lab is cross-origin isolated). Student and teacher must share one tokenizer.
        </p>
      </section>
      <section className="card">
        <h2>How these were made</h2>
        <p className="prose">
          By the project’s own recipe, <code>npm run build:models</code> (<code>scripts/build-models.ts</code>), on this lab’s trainer: the teacher, a
          GPT-2 trained from random weights on the addition task’s ground-truth answers until its held-out accuracy reaches the target; the student, a
          smaller GPT-2 trained briefly on the teacher’s own samples and stopped early, so it still makes the mistakes distillation can fix; the
          recovery pair, the teacher before and after a fine-tune on subtraction that cost it half of its addition; the Llama student, a Llama-family
          model with the addition tokenizer trained briefly on ground truth, so the GPT-2 teacher can teach it; the worked pair, a Llama teacher trained
          on worked-addition ground truth until 97% held-out, and a smaller Llama student trained on the teacher’s own samples and stopped early. Each folder
          holds its <code>recipe.json</code> (the recipe, the seed and the measured accuracy) and its <code>training-log.jsonl</code> (every step’s loss
          and every evaluation).
          {recipe && (
            <>
              {' '}
              The recipe:{' '}
              <a href={`${builtInModelUrl(recipe)}recipe.json`} target="_blank" rel="noreferrer">
                {recipe}/recipe.json
              </a>
              .
            </>
          )}
        </p>
        <p className="muted">A student trained in the Distill panel is saved as such a folder with its Download the student button.</p>
      </section>
    </div>
  );
}
