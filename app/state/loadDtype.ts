/**
 * The dtype each role's next load asks for: '' is "auto" (the engine picks fp32 when the folder
 * has it, else the smallest variant the adapter runs), else one of the contract's ONNX dtypes.
 * Kept in the page, per role, so every panel's loader shows the same pick. Not in the URL hash:
 * it is a load setting, like the folder URL or Hub id it goes with, and neither is there (the hash
 * holds the run's setup, the knob table of workers/contract/knobs.ts).
 */
import { create } from 'zustand';
import type { ModelRole } from '../../workers/protocol';
import type { OnnxDtype } from '../../workers/contract/dtypes';

export type DtypePick = OnnxDtype | '';

interface LoadDtypeState {
  dtype: Record<ModelRole, DtypePick>;
  setDtype(role: ModelRole, dtype: DtypePick): void;
}

export const useLoadDtype = create<LoadDtypeState>()((set) => ({
  dtype: { student: '', teacher: '' },
  setDtype: (role, dtype) => set((s) => ({ dtype: { ...s.dtype, [role]: dtype } })),
}));
