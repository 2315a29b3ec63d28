/**
 * The Distill panel's export for a cluster trainer: whether it is being made, and what the last
 * one wrote (the zip's name and size, and per target the file or why not) or the sentence why
 * there was none.
 */
import { create } from 'zustand';
import type { LabError } from '../../workers/protocol';
import type { ClusterTargets } from '../../workers/contract/cluster';

export interface ClusterExportState {
  busy: boolean;
  error: LabError | null;
  done: { fileName: string; bytes: number; targets: ClusterTargets } | null;
}

export const useClusterExport = create<ClusterExportState>(() => ({ busy: false, error: null, done: null }));
