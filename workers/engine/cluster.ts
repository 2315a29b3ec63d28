/**
 * `cluster.export`: the run the Distill panel is set up for, written for a cluster trainer
 * (workers/distill/cluster/) from the loaded student and teacher (named as they were loaded: a
 * Hub id, a URL, a picked folder) and the panel's prompts. Plain text: nothing runs on the GPU.
 */
import type { ClusterTargets } from '../contract/cluster';
import type { LabError } from '../contract/errors';
import type { TrainSetup } from '../contract/knobs';
import { setupProblem } from '../contract/knobs';
import type { PromptTextSource } from '../contract/prompts';
import type { ModelRole } from '../contract/models';
import { clusterExport } from '../distill/cluster/export';
import { ClusterExportError } from '../distill/cluster/experiment';
import { clusterExperimentOf } from '../distill/cluster/from-setup';
import { PromptSetError } from '../prompts/set';
import type { LoadedModel } from './inference';

export function exportForCluster(
  models: Partial<Record<ModelRole, LoadedModel>>,
  setup: TrainSetup,
  prompts: PromptTextSource | undefined,
  generatedBy: string,
): { files: { path: string; text: string }[]; targets: ClusterTargets } | LabError {
  const { student, teacher } = models;
  if (!student || !teacher) return { code: 'no-model', message: 'Load a student and a teacher first: the export names them.' };
  const problem = setupProblem(setup);
  if (problem) return { code: 'bad-options', message: problem };
  try {
    const experiment = clusterExperimentOf({ setup, student: { name: student.folder.label, folder: student.folder }, teacher: { name: teacher.folder.label }, prompts });
    const exported = clusterExport(experiment, generatedBy);
    return { files: [...exported.files].map(([path, text]) => ({ path, text })), targets: exported.targets };
  } catch (e) {
    if (e instanceof PromptSetError) return { code: 'bad-prompts', message: e.message };
    if (e instanceof ClusterExportError) return { code: 'bad-options', message: e.message };
    return { code: 'bad-request', message: e instanceof Error ? e.message : String(e) };
  }
}
