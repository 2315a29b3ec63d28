/**
 * The experiment as a launcher for tinker-cookbook's on-policy distillation
 * (`tinker_cookbook.distillation.train_on_policy`): the student samples G answers to each of B
 * prompts a step, the teacher's log-prob of each sampled token gives the per-token reverse-KL
 * advantage −λ·k_t (discounted by γ over later tokens), trained with importance sampling: the
 * lab's opd-sampled, knob for knob. The prompts come from prompts.jsonl through a small dataset
 * builder of the launcher's own (the cookbook's recipe takes named datasets only).
 *
 * Refused, a sentence each: opd-full (the cookbook trains on the sampled estimate only), sft and
 * rl (other recipes), a rank of 0 (Tinker trains LoRA adapters only), a temperature other than 1
 * (the recipe samples at 1), chat prompts with more than one message (the recipe's prompts are
 * single user turns, rendered with the student's renderer).
 */
import type { ClusterExperiment } from './experiment';
import { checkExperiment, py, pyFloat } from './experiment';

export function tinkerProblems(e: ClusterExperiment): string[] {
  const s = e.setup;
  const problems: string[] = [];
  if (s.objective === 'opd-full') problems.push('tinker-cookbook’s on-policy distillation trains on the sampled token’s reverse KL (the lab’s opd-sampled), not the exact one: choose opd-sampled, or export opd-full for TRL.');
  else if (s.objective !== 'opd-sampled') problems.push(`tinker-cookbook export carries on-policy distillation only; ${s.objective} is another recipe: choose opd-sampled.`);
  if (s.loraRank === 0) problems.push('Tinker trains LoRA adapters only: set a LoRA rank (the cookbook’s distillation recipes use 32 to 128).');
  if (s.temperature !== 1) problems.push(`tinker-cookbook’s on-policy distillation samples at temperature 1; set the temperature to 1 (got ${s.temperature}).`);
  const multi = e.prompts.findIndex((p) => 'messages' in p && (p.messages.length !== 1 || p.messages[0].role !== 'user'));
  if (multi >= 0) problems.push(`Prompt ${multi + 1} has messages other than one user turn; the cookbook’s prompts are single user messages, rendered with the student’s renderer.`);
  return problems;
}

export function tinkerLauncher(e: ClusterExperiment, generatedBy: string): string {
  checkExperiment(e, tinkerProblems(e));
  const s = e.setup;
  return [
    '#!/usr/bin/env python3',
    `"""On-policy distillation with tinker-cookbook, exported by OPD Lab (${generatedBy}).`,
    '',
    `The lab's run: opd-sampled, ${s.totalSteps} steps of ${s.batchPrompts} prompts × ${s.groupSize} answers, lr ${s.lr},`,
    `LoRA rank ${s.loraRank}, λ ${s.klCoef}, γ ${s.discount}, ${e.maxTokens} new tokens per answer.`,
    'The cookbook keeps its own optimizer settings and schedule (the lab ran',
    `${s.schedule} with ${s.warmupSteps} warm-up steps); the clip ε is not needed: one update per batch of samples.`,
    '',
    'Run:  TINKER_API_KEY=... python tinker_distill.py [--log-path DIR] [--max-steps N]',
    'Needs: pip install tinker tinker-cookbook',
    '"""',
    'import argparse',
    'import asyncio',
    'import json',
    'import os',
    '',
    'import chz',
    'from tinker_cookbook import model_info, renderers',
    'from tinker_cookbook.distillation import train_on_policy',
    'from tinker_cookbook.distillation.datasets import DistillationDatasetConfig, PromptOnlyDataset, TeacherConfig',
    'from tinker_cookbook.rl.types import RLDatasetBuilder',
    'from tinker_cookbook.tokenizer_utils import get_tokenizer',
    '',
    'HERE = os.path.dirname(os.path.abspath(__file__))',
    '',
    `STUDENT = ${py(e.student)}`,
    `TEACHER = ${py(e.teacher)}`,
    `STEPS = ${s.totalSteps}`,
    `PROMPTS_PER_STEP = ${s.batchPrompts}  # groups_per_batch`,
    `ANSWERS_PER_PROMPT = ${s.groupSize}  # group_size`,
    `LEARNING_RATE = ${pyFloat(s.lr)}`,
    `LORA_RANK = ${s.loraRank}`,
    `KL_PENALTY_COEF = ${pyFloat(s.klCoef)}  # λ`,
    `KL_DISCOUNT_FACTOR = ${pyFloat(s.discount)}  # γ`,
    `MAX_NEW_TOKENS = ${e.maxTokens}`,
    '',
    '',
    'def read_prompts(path):',
    '    """prompts.jsonl: a string, or a single user message, per line."""',
    '    out = []',
    '    with open(path, encoding="utf-8") as f:',
    '        for line in f:',
    '            if line.strip():',
    '                p = json.loads(line)["prompt"]',
    '                out.append(p if isinstance(p, str) else p[0]["content"])',
    '    return out',
    '',
    '',
    '@chz.chz',
    'class LabPromptsBuilder(RLDatasetBuilder):',
    '    """The lab\'s training prompts, PROMPTS_PER_STEP groups of ANSWERS_PER_PROMPT a batch."""',
    '',
    '    path: str',
    '    renderer_name: str',
    '',
    '    async def __call__(self):',
    '        tokenizer = get_tokenizer(STUDENT)',
    '        renderer = renderers.get_renderer(self.renderer_name, tokenizer=tokenizer)',
    '        train = PromptOnlyDataset(',
    '            prompts=read_prompts(self.path),',
    '            batch_size=PROMPTS_PER_STEP,',
    '            group_size=ANSWERS_PER_PROMPT,',
    '            renderer=renderer,',
    '            tokenizer=tokenizer,',
    '            dataset_name="opd-lab",',
    '        )',
    '        return train, None',
    '',
    '',
    'def main():',
    '    parser = argparse.ArgumentParser(description="On-policy distillation exported by OPD Lab")',
    '    parser.add_argument("--prompts", default=os.path.join(HERE, "prompts.jsonl"))',
    '    parser.add_argument("--log-path", default=os.path.join(HERE, "tinker-log"))',
    '    parser.add_argument("--max-steps", type=int, default=STEPS)',
    '    args = parser.parse_args()',
    '    renderer_name = model_info.get_recommended_renderer_name(STUDENT)',
    '    builder = LabPromptsBuilder(path=args.prompts, renderer_name=renderer_name)',
    '    config = train_on_policy.Config(',
    '        learning_rate=LEARNING_RATE,',
    '        dataset_configs=[DistillationDatasetConfig(dataset_builder=builder, teacher_config=TeacherConfig(base_model=TEACHER), groups_per_batch=PROMPTS_PER_STEP)],',
    '        model_name=STUDENT,',
    '        renderer_name=renderer_name,',
    '        lora_rank=LORA_RANK,',
    '        max_tokens=MAX_NEW_TOKENS,',
    '        kl_penalty_coef=KL_PENALTY_COEF,',
    '        kl_discount_factor=KL_DISCOUNT_FACTOR,',
    '        num_substeps=1,',
    '        loss_fn="importance_sampling",',
    '        log_path=args.log_path,',
    '        max_steps=args.max_steps,',
    '    )',
    '    asyncio.run(train_on_policy.main(config))',
    '',
    '',
    'if __name__ == "__main__":',
    '    main()',
    '',
  ].join('\n');
}
