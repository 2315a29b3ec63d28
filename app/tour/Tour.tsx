/**
 * The tour's card, docked at the bottom of the window, and the highlight on what the step points
 * at. Focus moves to the card's title at every step (a screen reader reads the step); Escape ends
 * the tour. The page stays usable underneath: nothing is modal.
 */
import { useEffect, useRef } from 'react';
import { NumberField } from '../components/NumberField';
import { TOUR_STEPS } from './steps';
import { endTour, goToStep, setTourRuns, startTour, useTour } from './tour';

const HIGHLIGHT = 'tour-target';

/** Keeps the class on the first element matching one of `selectors`, as the page re-renders. */
function useHighlight(selectors: string[] | undefined, key: number): void {
  useEffect(() => {
    if (!selectors) return;
    let marked: Element | null = null;
    let scrolled = false;
    const mark = () => {
      const el = selectors.map((s) => document.querySelector(s)).find((e) => e !== null) ?? null;
      if (el === marked) return;
      marked?.classList.remove(HIGHLIGHT);
      marked = el;
      if (!el) return;
      el.classList.add(HIGHLIGHT);
      if (!scrolled) {
        scrolled = true;
        el.scrollIntoView({ block: 'center', behavior: 'smooth' });
      }
    };
    mark();
    const timer = setInterval(mark, 400);
    return () => {
      clearInterval(timer);
      marked?.classList.remove(HIGHLIGHT);
    };
  }, [key]);
}

export function TourButton() {
  const active = useTour((s) => s.active);
  return (
    <button className="small secondary tour-button" onClick={() => startTour()} disabled={active}>
      Take the tour
    </button>
  );
}

export function Tour() {
  const { active, index, run, stepsPerRun, evalPrompts } = useTour();
  const title = useRef<HTMLHeadingElement>(null);
  const step = TOUR_STEPS[index];
  useHighlight(active ? step?.target : undefined, active ? index : -1);
  useEffect(() => {
    if (active) title.current?.focus();
  }, [active, index]);
  useEffect(() => {
    // Wide windows make room for the card beside the panels (styles.css); narrow ones get a bottom sheet.
    document.documentElement.classList.toggle('tour-open', active);
    return () => document.documentElement.classList.remove('tour-open');
  }, [active]);
  useEffect(() => {
    if (!active) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') void endTour();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [active]);
  if (!active || !step) return null;
  const last = index === TOUR_STEPS.length - 1;
  const validSteps = Number.isInteger(stepsPerRun) && stepsPerRun >= 1 && stepsPerRun <= 1000 && Number.isInteger(evalPrompts) && evalPrompts >= 1 && evalPrompts <= 1000;
  return (
    <aside className="tour" role="dialog" aria-modal="false" aria-labelledby="tour-title" data-testid="tour" data-step={index}>
      <p className="tour-count muted">
        Tour, {index + 1} of {TOUR_STEPS.length}
      </p>
      <h2 id="tour-title" ref={title} tabIndex={-1}>
        {step.title}
      </h2>
      {step.text.map((t, i) => (
        <p key={i}>{t}</p>
      ))}
      {index === 0 && (
        <div className="tour-knobs">
          <NumberField label="steps per run" value={stepsPerRun} onChange={(v) => setTourRuns({ stepsPerRun: v })} min={1} max={1000} testId="tour-steps" />
          <NumberField label="held-out prompts" value={evalPrompts} onChange={(v) => setTourRuns({ evalPrompts: v })} min={1} max={1000} title="Held-out prompts each evaluation answers (greedy): more is steadier, and slower." testId="tour-eval-prompts" />
        </div>
      )}
      {index === 0 && !validSteps && <p className="error" role="alert">Steps per run and held-out prompts must be whole numbers from 1 to 1,000.</p>}
      {run && (
        <p className={run.status === 'failed' ? 'error' : 'tour-run'} role={run.status === 'failed' ? 'alert' : 'status'} data-testid="tour-run" data-status={run.status}>
          {run.message}
        </p>
      )}
      <div className="buttons">
        <button className="secondary" onClick={() => void goToStep(index - 1)} disabled={index === 0}>
          Back
        </button>
        {last ? (
          <button onClick={() => void endTour()}>Finish</button>
        ) : (
          <button onClick={() => void goToStep(index + 1)} disabled={!validSteps}>
            {run && (run.status === 'running' || run.status === 'loading') ? 'Skip to the next' : 'Next'}
          </button>
        )}
        <button className="secondary" onClick={() => void endTour()}>
          End the tour
        </button>
      </div>
    </aside>
  );
}
