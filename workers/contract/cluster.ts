/**
 * A run's setup exported for a cluster trainer, as the page receives it: the files written
 * (text) and, per target, the file or the sentence saying why that trainer cannot carry the
 * setup. Made by workers/distill/cluster/.
 */
export type ClusterTargetResult = { file: string } | { refused: string };

export interface ClusterTargets {
  /** TRL's DistillationTrainer. */
  trl: ClusterTargetResult;
  /** tinker-cookbook's on-policy distillation (train_on_policy). */
  tinker: ClusterTargetResult;
}
