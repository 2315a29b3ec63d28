/**
 * The experiment as a script for TRL's `DistillationTrainer` (trl ≥ 1.13, the stable API): the
 * student samples its own answers and is trained on the generalized JSD to the teacher with
 * β = 1, i.e. the exact reverse KL of each position of those answers, over the whole vocabulary.
 *
 * How the lab's knobs map:
 *   - opd-full is that objective exactly. opd-sampled trains on a one-sample estimate of the same
 *     reverse KL (the sampled token's log-ratio as a policy-gradient advantage); TRL has no such
 *     estimator, so the script trains on the exact value, whose gradient the estimate's expectation
 *     follows, and says so. λ scales the loss (a subclass); γ > 0 (later tokens' KL) has no
 *     counterpart in TRL and is refused. sft and rl are other trainers and are refused.
 *   - B prompts × G answers a step: each prompt is repeated G times in a row, the dataset is
 *     shuffled once with the run's seed, and a step takes B·G rows (one answer per row).
 *   - The clip ε is not carried: with one update per batch of samples the importance ratio is 1,
 *     so the lab's clip never acts either.
 *   - LoRA rank r: PEFT's LoraConfig(r, lora_alpha = r: the lab's scale 1) on every linear layer
 *     but the head, as the lab adapts every projection of attention and MLP.
 *   - AdamW with the lab's β₁ 0.9, β₂ 0.999, ε 1e-8 (transformers' defaults), its weight decay and
 *     gradient clip; the schedule and warm-up; float32 as the lab trains.
 */
import type { ClusterExperiment } from './experiment';
import { checkExperiment, py, pyFloat } from './experiment';

/** What TRL cannot carry, a sentence each. */
export function trlProblems(e: ClusterExperiment): string[] {
  const { objective, discount } = e.setup;
  if (objective === 'sft') return ['TRL export carries on-policy distillation only: sft (training on the teacher’s answers) is another trainer (TRL’s SFTTrainer on the teacher’s samples); choose opd-sampled or opd-full.'];
  if (objective === 'rl') return ['TRL export carries on-policy distillation only: rl needs the task’s verifier as a reward function (TRL’s GRPOTrainer); choose opd-sampled or opd-full.'];
  if (objective !== 'opd-sampled' && objective !== 'opd-full') {
    return [`TRL export carries opd-sampled and opd-full only (its DistillationTrainer trains on the exact reverse KL); ${objective} is not exported: choose opd-sampled or opd-full.`];
  }
  if (objective === 'opd-sampled' && discount > 0) {
    return [`TRL’s DistillationTrainer has no discount γ (each token answers for itself there); set γ to 0, or export for tinker-cookbook, which carries it (kl_discount_factor = ${discount}).`];
  }
  const chat = e.prompts.filter((p) => 'messages' in p).length;
  if (chat > 0 && chat < e.prompts.length) {
    return [`TRL takes a prompt column of one kind: ${chat} of the ${e.prompts.length} prompts are chat messages and the rest plain text; export a set of one kind.`];
  }
  return [];
}

const SCHEDULE: Record<string, string> = { constant: 'constant_with_warmup', linear: 'linear', cosine: 'cosine' };

export function trlScript(e: ClusterExperiment, generatedBy: string): string {
  checkExperiment(e, trlProblems(e));
  const s = e.setup;
  const lora = s.loraRank > 0;
  const scaled = s.objective === 'opd-sampled' && s.klCoef !== 1;
  const lines = [
    '#!/usr/bin/env python3',
    `"""On-policy distillation with TRL's DistillationTrainer, exported by OPD Lab (${generatedBy}).`,
    '',
    `The lab's run: ${s.objective}, ${s.totalSteps} steps of ${s.batchPrompts} prompts × ${s.groupSize} answers, lr ${s.lr}`,
    `(${s.schedule}, ${s.warmupSteps} warm-up steps), ${lora ? `LoRA rank ${s.loraRank}` : 'every weight trained'}, temperature ${s.temperature},`,
    `${e.maxTokens} new tokens per answer, seed ${s.seed}${s.objective === 'opd-sampled' ? `, λ ${s.klCoef}` : ''}.`,
    s.objective === 'opd-sampled'
      ? "TRL trains on the exact reverse KL of each position of the student's own answers (the lab's opd-full);\nthe lab's opd-sampled uses a one-sample estimate of it, whose expected gradient this follows."
      : "TRL trains on the exact reverse KL of each position of the student's own answers: the lab's opd-full.",
    '',
    'Run:  python trl_distill.py [--student ID_OR_PATH] [--teacher ID_OR_PATH] [--max-steps N] [--output-dir DIR]',
    `Needs: pip install "trl>=1.13"${lora ? ' peft' : ''} datasets (and torch).`,
    '"""',
    'import argparse',
    'import json',
    'import os',
    'import random',
    '',
    'from datasets import Dataset',
    ...(lora ? ['from peft import LoraConfig'] : []),
    'from trl import DistillationConfig, DistillationTrainer',
    '',
    'HERE = os.path.dirname(os.path.abspath(__file__))',
    '',
    '# The lab\'s setup, as it was exported.',
    `STUDENT = ${py(e.student)}`,
    `TEACHER = ${py(e.teacher)}`,
    `STEPS = ${s.totalSteps}`,
    `PROMPTS_PER_STEP = ${s.batchPrompts}`,
    `ANSWERS_PER_PROMPT = ${s.groupSize}`,
    `LEARNING_RATE = ${pyFloat(s.lr)}`,
    `WARMUP_STEPS = ${s.warmupSteps}`,
    `SCHEDULE = ${py(SCHEDULE[s.schedule] ?? 'constant_with_warmup')}`,
    `LORA_RANK = ${s.loraRank}`,
    `KL_COEF = ${pyFloat(s.objective === 'opd-sampled' ? s.klCoef : 1)}`,
    `TEMPERATURE = ${pyFloat(s.temperature)}`,
    `MAX_NEW_TOKENS = ${e.maxTokens}`,
    `WEIGHT_DECAY = ${pyFloat(e.weightDecay)}`,
    `MAX_GRAD_NORM = ${pyFloat(e.maxGradNorm)}`,
    `SEED = ${s.seed}`,
    '',
    '',
    'def training_rows(path):',
    '    """Each prompt repeated ANSWERS_PER_PROMPT times in a row, shuffled once with the seed: B·G rows make a step."""',
    '    with open(path, encoding="utf-8") as f:',
    '        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]',
    '    order = list(range(len(prompts)))',
    '    random.Random(SEED).shuffle(order)',
    '    rows = [{"prompt": prompts[i]} for i in order for _ in range(ANSWERS_PER_PROMPT)]',
    '    need = STEPS * PROMPTS_PER_STEP * ANSWERS_PER_PROMPT',
    '    return (rows * (need // len(rows) + 1))[:need]',
    '',
    '',
    ...(scaled
      ? [
          'class ScaledDistillationTrainer(DistillationTrainer):',
          '    """The lab\'s λ: the reverse-KL loss scaled by KL_COEF."""',
          '',
          '    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):',
          '        out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)',
          '        return (KL_COEF * out[0], out[1]) if return_outputs else KL_COEF * out',
          '',
          '',
        ]
      : []),
    'def main():',
    '    parser = argparse.ArgumentParser(description="On-policy distillation exported by OPD Lab")',
    '    parser.add_argument("--student", default=STUDENT)',
    '    parser.add_argument("--teacher", default=TEACHER)',
    '    parser.add_argument("--prompts", default=os.path.join(HERE, "prompts.jsonl"))',
    '    parser.add_argument("--max-steps", type=int, default=STEPS)',
    '    parser.add_argument("--output-dir", default=os.path.join(HERE, "trl-output"))',
    '    args = parser.parse_args()',
    '',
    '    batch = PROMPTS_PER_STEP * ANSWERS_PER_PROMPT',
    '    config = DistillationConfig(',
    '        output_dir=args.output_dir,',
    '        max_steps=args.max_steps,',
    '        per_device_train_batch_size=batch,',
    '        gradient_accumulation_steps=1,',
    '        learning_rate=LEARNING_RATE,',
    '        lr_scheduler_type=SCHEDULE,',
    '        warmup_steps=WARMUP_STEPS,',
    '        weight_decay=WEIGHT_DECAY,',
    '        max_grad_norm=MAX_GRAD_NORM,',
    '        beta=1.0,  # the reverse KL',
    '        temperature=TEMPERATURE,',
    '        top_p=1.0,',
    '        top_k=0,',
    '        max_completion_length=MAX_NEW_TOKENS,',
    '        shuffle_dataset=False,  # shuffled once above, keeping each prompt\'s answers in one step',
    '        seed=SEED,',
    '        bf16=False,',
    '        fp16=False,',
    '        gradient_checkpointing=False,',
    '        logging_steps=1,',
    '        save_strategy="no",',
    '        report_to="none",',
    '    )',
    ...(lora ? ['    peft_config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")'] : []),
    `    trainer = ${scaled ? 'ScaledDistillationTrainer' : 'DistillationTrainer'}(`,
    '        model=args.student,',
    '        teacher_model=args.teacher,',
    '        args=config,',
    '        train_dataset=Dataset.from_list(training_rows(args.prompts)),',
    ...(lora ? ['        peft_config=peft_config,'] : []),
    '    )',
    '    trainer.train()',
    '    trainer.save_model(args.output_dir)',
    '',
    '',
    'if __name__ == "__main__":',
    '    main()',
    '',
  ];
  return lines.join('\n');
}
