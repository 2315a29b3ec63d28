/**
 * The cluster experiment of a setup as a run would take it: the student folder (read for max
 * tokens and, on a prompt set, for the checks a run makes: rendering, context length), the
 * training prompts (a prompt set's training split, unrendered: the cluster trainer renders chat
 * prompts with the student's own template; or the built-in task's training stream, as the run's
 * steps would draw it), and the two models as the cluster should load them. The CLI's
 * `opd-lab cluster` and the lab worker's `cluster.export` both come here.
 */
import type { TrainSetup } from '../../contract/knobs';
import type { PromptTextSource } from '../../contract/prompts';
import type { ModelFolder } from '../../models/folder';
import { parsePromptSource, preparePromptSet } from '../../prompts/set';
import { promptStudentOf } from '../../prompts/render';
import { splitPrompts } from '../../prompts/split';
import { resolveTasks } from '../loop';
import { DEFAULT_DISTILL } from '../options';
import type { ClusterExperiment, ClusterPrompt } from './experiment';

export function clusterExperimentOf(o: { setup: TrainSetup; student: { name: string; folder: ModelFolder }; teacher: { name: string }; prompts?: PromptTextSource }): ClusterExperiment {
  const { setup, student } = o;
  let prompts: ClusterPrompt[];
  let maxTokens: number;
  if (o.prompts) {
    const promptStudent = promptStudentOf(student.folder);
    const set = preparePromptSet(o.prompts, setup, promptStudent);
    maxTokens = setup.maxTokens || resolveTasks(setup, student.folder.rawConfig, { set, student: promptStudent }).task.maxTokens;
    const items = parsePromptSource(o.prompts);
    prompts = splitPrompts(items.length, setup.heldOutFraction, setup.splitSeed, o.prompts.label).train.map((i) => items[i]);
  } else {
    const { task } = resolveTasks(setup, student.folder.rawConfig);
    maxTokens = setup.maxTokens || task.maxTokens;
    prompts = Array.from({ length: setup.totalSteps * setup.batchPrompts }, (_, i) => ({ text: task.task.trainPrompt(setup.seed, i) }));
  }
  return { setup, student: student.name, teacher: o.teacher.name, prompts, maxTokens, weightDecay: DEFAULT_DISTILL.weightDecay, maxGradNorm: DEFAULT_DISTILL.maxGradNorm };
}
