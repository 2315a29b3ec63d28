import { useLab } from '../state/labStore';
import { runInteropCheck } from '../lab/connect';
import { formatBytes } from '../../workers/contract/format';
import { DivergenceCheck } from './DivergenceCheck';

/** The GPU the lab runs on, in full, and the self-check proving ORT and our kernels share it. */
export function SystemPanel() {
  const { adapter, runtime, interop, phase } = useLab();
  return (
    <div className="panel-body">
      <section className="card">
        <h2>GPU</h2>
        {adapter ? (
          <table className="kv" data-testid="adapter-table">
            <tbody>
              <tr><th>Vendor</th><td>{adapter.vendor}</td></tr>
              <tr><th>Architecture</th><td>{adapter.architecture}</td></tr>
              {adapter.device && <tr><th>Device</th><td>{adapter.device}</td></tr>}
              {adapter.description && <tr><th>Description</th><td>{adapter.description}</td></tr>}
              <tr><th>Fallback (software) adapter</th><td>{adapter.isFallbackAdapter ? 'yes: emulated on the CPU, kernels run slowly' : 'no'}</td></tr>
              <tr><th>Optional features in use</th><td>{adapter.features.length ? adapter.features.join(', ') : 'none'}</td></tr>
              {Object.entries(adapter.limits).map(([k, v]) => (
                <tr key={k}><th>{k}</th><td>{/Size$/.test(k) ? formatBytes(v) : v.toLocaleString('en-US')}</td></tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{phase === 'starting' ? 'Waiting for the lab worker…' : 'No GPU.'}</p>
        )}
      </section>
      <section className="card">
        <h2>Runtime</h2>
        {runtime ? (
          <table className="kv">
            <tbody>
              <tr><th>Execution provider</th><td>{runtime.executionProvider} (onnxruntime-web {runtime.ortVersion})</td></tr>
              <tr><th>Shares the lab’s GPUDevice</th><td>{runtime.sharedDevice ? 'yes (verified at start-up)' : 'no'}</td></tr>
              <tr><th>Cross-origin isolated</th><td>{runtime.crossOriginIsolated ? 'yes' : 'no — serve the lab with npm start'}</td></tr>
            </tbody>
          </table>
        ) : (
          <p className="muted">Not started.</p>
        )}
      </section>
      <section className="card wide">
        <h2>GPU interop self-check</h2>
        <p className="muted">
          Our WGSL kernel writes an input on the GPU, onnxruntime-web reads it in place (<code>Tensor.fromGpuBuffer</code>) and computes{' '}
          <code>y = 3·tanh(x) + 0.5</code>, leaves <code>y</code> on the GPU, and our second kernel reads that buffer directly:{' '}
          <code>z = 2·y + 1</code>. Only <code>z</code> returns to the CPU, checked against a float64 reference.
        </p>
        <button disabled={phase !== 'ready' || interop.running} onClick={() => void runInteropCheck()} data-testid="run-interop">
          {interop.running ? 'Running…' : 'Run interop check'}
        </button>
        {interop.report && (
          <div data-testid="interop-result" className={interop.report.passed ? 'result pass' : 'result fail'}>
            <p>
              <b>{interop.report.passed ? 'Passed' : 'FAILED'}</b>: {interop.report.elements.toLocaleString('en-US')} values, max |error|{' '}
              <span data-testid="interop-error">{interop.report.maxAbsError.toExponential(2)}</span> (tolerance {interop.report.tolerance.toExponential(0)}), in{' '}
              {interop.report.ms.toFixed(0)} ms.
            </p>
            <ol>
              {interop.report.stages.map((s) => (
                <li key={s}>{s}</li>
              ))}
            </ol>
            <table className="grid">
              <thead>
                <tr><th>i</th><th>x (our kernel)</th><th>y (ORT, on GPU)</th><th>z (our kernel)</th><th>z expected</th></tr>
              </thead>
              <tbody>
                {interop.report.sample.map((r) => (
                  <tr key={r.index}>
                    <td>{r.index}</td><td>{r.input.toFixed(4)}</td><td>{r.ortOutput.toFixed(6)}</td><td>{r.kernelOutput.toFixed(6)}</td><td>{r.expected.toFixed(6)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {interop.error && (
          <div className="result fail" role="alert" data-testid="interop-error-message">
            <b>Could not run:</b> {interop.error.message}
            {interop.error.detail && <pre>{interop.error.detail}</pre>}
          </div>
        )}
      </section>
      <DivergenceCheck />
    </div>
  );
}
