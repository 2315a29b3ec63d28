import { useLab } from '../state/labStore';
import { runDivergenceCheck } from '../lab/connect';

/** Runs the divergence kernels against their float64 reference in the worker and shows the verdict per case. */
export function DivergenceCheck() {
  const { divergence, phase } = useLab();
  const report = divergence.report;
  return (
    <section className="card wide">
      <h2>Divergence kernels self-check</h2>
      <p className="muted">
        The WGSL kernels that turn student and teacher logits into per-token log-probs, sampled and exact reverse KL, forward KL, JSD, entropies,
        the teacher’s top tokens and the reverse-KL gradient, compared with a float64 TypeScript reference on this GPU: awkward vocabulary sizes,
        huge and masked logits, NaN inputs, identical models. Each output is held to a stated tolerance.
      </p>
      <button disabled={phase !== 'ready' || divergence.running} onClick={() => void runDivergenceCheck()} data-testid="run-divergence">
        {divergence.running ? 'Running…' : 'Run kernel check'}
      </button>
      {report && (
        <div data-testid="divergence-result" className={report.passed ? 'result pass' : 'result fail'}>
          <p>
            <b>{report.passed ? 'Passed' : 'FAILED'}</b>: {report.cases.filter((c) => c.passed).length} of {report.cases.length} cases within
            tolerance, in {(report.ms / 1000).toFixed(1)} s (seed {report.seed}).
          </p>
          <table className="grid">
            <thead>
              <tr><th style={{ textAlign: 'left' }}>case</th><th>positions × vocab</th><th>worst error / tolerance</th><th>result</th></tr>
            </thead>
            <tbody>
              {report.cases.map((c) => {
                const worst = Math.max(0, ...c.checks.map((k) => k.worstErrorOverTolerance));
                return (
                  <tr key={c.name} data-testid="divergence-case">
                    <td style={{ textAlign: 'left' }}>{c.name}</td>
                    <td>{c.positions} × {c.vocab.toLocaleString('en-US')}</td>
                    <td>{worst.toFixed(3)}</td>
                    <td>{c.passed ? 'pass' : 'FAIL'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {divergence.error && (
        <div className="result fail" role="alert">
          <b>Could not run:</b> {divergence.error.message}
          {divergence.error.detail && <pre>{divergence.error.detail}</pre>}
        </div>
      )}
    </section>
  );
}
