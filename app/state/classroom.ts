/**
 * Classroom mode: larger text and only the knobs a first demo needs (the knob schema marks the
 * others `advanced`), for a lab shown on a projector. Kept in the URL hash (`classroom=1`), so a
 * link opens the lab that way, and in localStorage, so a class machine keeps it across reloads.
 */
import { create } from 'zustand';

const KEY = 'opd-lab-classroom';

function initial(): boolean {
  if (typeof location === 'undefined') return false;
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('classroom');
  if (fromHash !== null) return fromHash === '1';
  try {
    return localStorage.getItem(KEY) === '1';
  } catch {
    return false;
  }
}

function apply(on: boolean): void {
  if (typeof document === 'undefined') return;
  document.documentElement.classList.toggle('classroom', on);
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (on) params.set('classroom', '1');
  else params.delete('classroom');
  history.replaceState(null, '', `#${params.toString()}`);
  try {
    localStorage.setItem(KEY, on ? '1' : '0');
  } catch {
    // Storage refused (a private window's quota): the hash still carries the mode.
  }
}

export const useClassroom = create<{ on: boolean; set(on: boolean): void }>()((set) => ({
  on: initial(),
  set(on) {
    apply(on);
    set({ on });
  },
}));

// The page opens in the mode the link or the last visit chose.
if (useClassroom.getState().on) apply(true);
