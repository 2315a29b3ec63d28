/**
 * A cluster export as files: the TRL script and the tinker-cookbook launcher where the setup can
 * be carried (each target that cannot is named with its sentence in README.md instead of a
 * script), the training prompts, and a README that says what was exported.
 */
import { ClusterExportError, experimentProblems, promptsJsonl, type ClusterExperiment } from './experiment';
import { trlProblems, trlScript } from './trl';
import { tinkerLauncher, tinkerProblems } from './tinker';
import type { ClusterTargetResult, ClusterTargets } from '../../contract/cluster';

export interface ClusterExport {
  files: Map<string, string>;
  /** Per target: the file written, or the sentence why not. */
  targets: ClusterTargets;
}

export function clusterExport(e: ClusterExperiment, generatedBy: string): ClusterExport {
  const common = experimentProblems(e);
  if (common.length > 0) throw new ClusterExportError(common.join(' '));
  const files = new Map<string, string>();
  const trl = trlProblems(e);
  const tinker = tinkerProblems(e);
  if (trl.length === 0) files.set('trl_distill.py', trlScript(e, generatedBy));
  if (tinker.length === 0) files.set('tinker_distill.py', tinkerLauncher(e, generatedBy));
  if (files.size === 0) throw new ClusterExportError(`Neither cluster trainer can run this setup. TRL: ${trl.join(' ')} tinker-cookbook: ${tinker.join(' ')}`);
  files.set('prompts.jsonl', promptsJsonl(e.prompts));
  const s = e.setup;
  const targets: ClusterTargets = {
    trl: trl.length === 0 ? { file: 'trl_distill.py' } : { refused: trl.join(' ') },
    tinker: tinker.length === 0 ? { file: 'tinker_distill.py' } : { refused: tinker.join(' ') },
  };
  const line = (name: string, t: ClusterTargetResult) => ('file' in t ? `- ${name}: \`${t.file}\`` : `- ${name}: not exported. ${t.refused}`);
  files.set(
    'README.md',
    [
      '# An OPD Lab experiment, for a cluster trainer',
      '',
      `Exported by OPD Lab (${generatedBy}): ${s.objective}, student \`${e.student}\`, teacher \`${e.teacher}\`,`,
      `${s.totalSteps} steps of ${s.batchPrompts} prompts × ${s.groupSize} answers, lr ${s.lr}, ${s.loraRank > 0 ? `LoRA rank ${s.loraRank}` : 'every weight trained'},`,
      `${e.prompts.length} training prompts in \`prompts.jsonl\`.`,
      '',
      line('TRL (`DistillationTrainer`)', targets.trl),
      line('tinker-cookbook (`train_on_policy`)', targets.tinker),
      '',
      'Each script says at its top how the lab\'s knobs map onto its trainer.',
      '',
      ...(e.prompts.some((p) => 'messages' in p)
        ? [
            'The prompts are chat messages. The cluster trainer renders each one with the student\'s chat template and feeds the',
            'teacher the same tokens; a run in the lab gives the teacher its own template. Where the two templates differ, the',
            'teacher\'s signal differs from the lab\'s: Inspect\'s chat mode (or `opd-lab score --chat`) measures by how much.',
            '',
          ]
        : []),
    ].join('\n'),
  );
  return { files, targets };
}
