/** A panel whose engine is not built yet: says what it will hold, shows no invented data. */
export function UpcomingPanel({ title, what }: { title: string; what: string }) {
  return (
    <div className="panel-body">
      <section className="card wide upcoming" data-testid="upcoming-panel">
        <h2>{title}</h2>
        <p>{what}</p>
        <p className="muted">Not available in this build yet. The System panel shows what already runs.</p>
      </section>
    </div>
  );
}
