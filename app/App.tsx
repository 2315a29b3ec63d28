import { useEffect } from 'react';
import { useLab, panelFromHash, setupFromHash } from './state/labStore';
import { startLab } from './lab/connect';
import { Nav } from './components/Nav';
import { ClassroomSwitch } from './components/ClassroomSwitch';
import { Tour, TourButton } from './tour/Tour';
import { StatusBar } from './components/StatusBar';
import { RecoveryBanner } from './components/RecoveryBanner';
import { ErrorBanner } from './components/ErrorBanner';
import { WebGpuProblem } from './components/WebGpuProblem';
import { SystemPanel } from './panels/SystemPanel';
import { InspectPanel } from './panels/InspectPanel';
import { DistillPanel } from './panels/DistillPanel';
import { ModelsPanel } from './panels/ModelsPanel';
import { ComparePanel } from './panels/ComparePanel';

// A fresh page (no panel in its URL) opens on Inspect, whose welcome teaches by doing ("Try it").
if (typeof location !== 'undefined' && !new URLSearchParams(location.hash.replace(/^#/, '')).has('panel')) useLab.setState({ panel: 'inspect' });

export function App() {
  // Selectors, not the whole store: the app re-renders when these change, not on every update.
  const phase = useLab((s) => s.phase);
  const fatal = useLab((s) => s.fatal);
  const panel = useLab((s) => s.panel);
  useEffect(() => {
    void startLab();
    const onHash = () => useLab.setState({ panel: panelFromHash(location.hash), setup: setupFromHash(location.hash) });
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const blocked = (phase === 'unavailable' || phase === 'lost') && fatal;
  return (
    <div className="app">
      <header className="topbar">
        <h1>
          OPD Lab <span className="subtitle">on-policy distillation, on your GPU</span>
        </h1>
        <Nav />
        <TourButton />
        <ClassroomSwitch />
      </header>
      <RecoveryBanner />
      <ErrorBanner except={blocked ? fatal : null} />
      <main className="main">
        {blocked ? (
          <WebGpuProblem error={fatal} />
        ) : panel === 'system' ? (
          <SystemPanel />
        ) : panel === 'inspect' ? (
          <InspectPanel />
        ) : panel === 'distill' ? (
          <DistillPanel />
        ) : panel === 'models' ? (
          <ModelsPanel />
        ) : (
          <ComparePanel />
        )}
      </main>
      <Tour />
      <StatusBar />
    </div>
  );
}
