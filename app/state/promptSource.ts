/**
 * The Distill panel's prompt source: the built-in task (the setup's task knob), pasted prompts or
 * an uploaded .txt / .jsonl file, and what the lab worker said about it (prompts.check: the
 * split, or the sentence saying what is wrong). The text stays in the page (not in the URL: a
 * prompt set can be large); the split's knobs are the setup's (heldOutFraction, splitSeed).
 */
import { create } from 'zustand';
import type { LabError, PromptSetSummary, PromptTextSource } from '../../workers/protocol';
import { promptSourceOfFile } from '../../workers/contract/prompts';

export type PromptSourceKind = 'task' | 'paste' | 'upload';

export interface PromptSourceState {
  kind: PromptSourceKind;
  pasted: string;
  upload: { name: string; text: string } | null;
  /** Each line (pasted or of a .txt) is a user message, rendered with each model's chat template. */
  asChat: boolean;
  checking: boolean;
  summary: PromptSetSummary | null;
  error: LabError | null;
}

export const usePromptSource = create<PromptSourceState>(() => ({ kind: 'task', pasted: '', upload: null, asChat: false, checking: false, summary: null, error: null }));

/** The prompts a run takes from the page: undefined for the built-in task. */
export function promptTextSource(s: Pick<PromptSourceState, 'kind' | 'pasted' | 'upload' | 'asChat'> = usePromptSource.getState()): PromptTextSource | undefined {
  if (s.kind === 'paste') return { kind: 'lines', label: 'the pasted text', text: s.pasted, ...(s.asChat ? { asChat: true } : {}) };
  if (s.kind === 'upload' && s.upload) return promptSourceOfFile(s.upload.name, s.upload.text, s.asChat);
  return undefined;
}

/** Why Start must wait for the prompt source, or null when it need not. */
export function promptSourceProblem(s: PromptSourceState): string | null {
  if (s.kind === 'task') return null;
  if (s.kind === 'upload' && !s.upload) return 'Choose a .txt or .jsonl file of prompts to start.';
  if (s.kind === 'paste' && s.pasted.trim() === '') return 'Paste prompts, one per line, to start.';
  if (s.checking) return 'Reading the prompts…';
  if (s.error) return 'Fix the prompts to start.';
  if (!s.summary) return 'Reading the prompts…';
  return null;
}
