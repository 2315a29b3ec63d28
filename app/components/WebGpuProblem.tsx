import type { LabError } from '../../workers/protocol';

const TITLES: Record<string, string> = {
  'no-webgpu': 'This browser has no WebGPU',
  'no-adapter': 'No WebGPU adapter available',
  'adapter-below-minimum': 'This GPU is below the lab’s minimum',
  'device-request-failed': 'The GPU refused to create a device',
  'device-lost': 'The GPU device was lost',
  'ort-init-failed': 'The model runtime could not start',
};

/** Full-page explanation when the lab cannot run: what is wrong and what to do. */
export function WebGpuProblem({ error }: { error: LabError }) {
  return (
    <section className="problem" role="alert" data-testid="webgpu-problem" data-code={error.code}>
      <h2>{TITLES[error.code] ?? 'The lab cannot start'}</h2>
      <p>{error.message}</p>
      {(error.code === 'no-adapter' || (error.code === 'no-webgpu' && isSecureContext)) && (
        <ul>
          <li>Chrome or Edge 113+ on Windows, macOS or ChromeOS: WebGPU is on by default.</li>
          <li>
            Chromium on Linux: start it with <code>--enable-unsafe-webgpu</code>; without a GPU add{' '}
            <code>--use-webgpu-adapter=swiftshader</code> (slow, but everything works).
          </li>
          <li>Firefox: WebGPU is on in recent versions on Windows; elsewhere set <code>dom.webgpu.enabled</code> in about:config.</li>
          <li>Safari 26+: WebGPU is on; on older versions enable it under Develop → Feature Flags.</li>
        </ul>
      )}
      {error.code === 'device-lost' && <button onClick={() => location.reload()}>Reload the lab</button>}
      {error.detail && (
        <details>
          <summary>Technical detail</summary>
          <pre>{error.detail}</pre>
        </details>
      )}
    </section>
  );
}
