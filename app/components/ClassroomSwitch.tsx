import { useClassroom } from '../state/classroom';

/** The top bar's classroom switch: larger text, only the knobs a first demo needs. */
export function ClassroomSwitch() {
  const on = useClassroom((s) => s.on);
  const set = useClassroom((s) => s.set);
  return (
    <label className="classroom-switch" title="Classroom mode: larger text for a projector, and only the knobs a first demo needs (the others keep their values).">
      <input type="checkbox" role="switch" checked={on} onChange={(e) => set(e.target.checked)} aria-checked={on} data-testid="classroom-switch" />
      Classroom
    </label>
  );
}
