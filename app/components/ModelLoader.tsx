/**
 * Loading a model folder as the student or the teacher: by URL, or from a folder picked on this
 * computer. The worker holds one student and one teacher, so every panel shows the same two.
 */
import { useState } from 'react';
import { useLab, type ModelRole } from '../state/labStore';
import { loadModel } from '../lab/connect';

export function ModelLoader({ role, disabled = false }: { role: ModelRole; disabled?: boolean }) {
  const slot = useLab((s) => s.models[role]);
  const ready = useLab((s) => s.phase === 'ready');
  // A model loaded by URL keeps its URL in the field when the panel is shown again.
  const [url, setUrl] = useState(() => (slot.model && /^https?:\/\//.test(slot.model.label) ? slot.model.label : ''));
  const label = role === 'student' ? 'Student' : 'Teacher';
  const off = !ready || slot.loading || disabled;
  return (
    <div className="loader">
      <label>
        {label} model folder URL
        <input value={url} onChange={(e) => setUrl(e.target.value)} placeholder="http://…/my-model/ (config.json, tokenizer.json, onnx/model.onnx)" />
      </label>
      <div className="loader-actions">
        <button disabled={off || !url.trim()} onClick={() => void loadModel(role, { url: url.trim() })}>
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
            onChange={(e) => e.target.files && e.target.files.length > 0 && void loadModel(role, { files: e.target.files })}
          />
        </label>
      </div>
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
      {slot.warnings.map((w) => (
        <p key={w} className="warning" role="status">{w}</p>
      ))}
      {slot.error && <p className="error" role="alert">{slot.error.message}</p>}
    </div>
  );
}
