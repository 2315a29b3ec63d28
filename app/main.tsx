import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';
import { memoryReport } from './lab/connect';

// For benchmarks driving the page (scripts/bench/soak.ts): what the lab holds on the GPU.
(globalThis as { opdLabDebug?: unknown }).opdLabDebug = { memoryReport };

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
