import { useLab } from '../state/labStore';
import { formatBytes } from '../../workers/contract/format';

/** The bottom bar: which GPU the lab runs on, through which runtime, with which limits. */
export function StatusBar() {
  const { phase, adapter, runtime, progress, fatal } = useLab();
  let state: string;
  if (phase === 'starting') state = progress ?? 'Starting the lab worker…';
  else if (phase === 'ready') state = 'Ready';
  else if (phase === 'lost') state = 'GPU device lost';
  else state = fatal?.code === 'no-webgpu' ? 'No WebGPU' : fatal?.code === 'no-adapter' ? 'No WebGPU adapter' : 'Unavailable';
  return (
    <footer className="statusbar" data-testid="status-bar" aria-label="GPU status">
      <span className={`status-dot status-${phase}`} aria-hidden="true" />
      <span data-testid="status-state">{state}</span>
      {adapter && (
        <>
          <span className="status-item" data-testid="status-adapter" title={adapter.description || undefined}>
            Adapter: <b>{adapter.vendor}</b> / <b>{adapter.architecture}</b>
            {adapter.isFallbackAdapter ? ' (fallback, runs on the CPU)' : ' (hardware)'}
          </span>
          <span className="status-item" data-testid="status-limits">
            Max buffer {formatBytes(adapter.limits.maxBufferSize)} · binding {formatBytes(adapter.limits.maxStorageBufferBindingSize)} · workgroup{' '}
            {adapter.limits.maxComputeInvocationsPerWorkgroup} threads / {formatBytes(adapter.limits.maxComputeWorkgroupStorageSize)}
          </span>
          <span className="status-item" data-testid="status-features">
            {['shader-f16', 'subgroups', 'timestamp-query'].map((f) => (
              <span key={f} className={adapter.features.includes(f) ? 'feature on' : 'feature off'} title={adapter.features.includes(f) ? `${f}: available` : `${f}: not offered by this adapter`}>
                {f}
              </span>
            ))}
          </span>
        </>
      )}
      {runtime && (
        <span className="status-item" data-testid="status-runtime">
          EP: <b>{runtime.executionProvider}</b> (onnxruntime-web {runtime.ortVersion}
          {runtime.sharedDevice ? ', shared device' : ', device NOT shared'})
          {runtime.crossOriginIsolated ? '' : ' · not cross-origin isolated'}
        </span>
      )}
    </footer>
  );
}
