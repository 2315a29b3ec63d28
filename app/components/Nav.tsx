import { PANELS, useLab } from '../state/labStore';

export function Nav() {
  const panel = useLab((s) => s.panel);
  const setPanel = useLab((s) => s.setPanel);
  return (
    <nav className="nav" aria-label="Panels">
      {PANELS.map((p) => (
        <button key={p.id} className={p.id === panel ? 'tab active' : 'tab'} aria-current={p.id === panel ? 'page' : undefined} onClick={() => setPanel(p.id)}>
          {p.label}
        </button>
      ))}
    </nav>
  );
}
