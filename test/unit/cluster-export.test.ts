/**
 * The cluster export (workers/distill/cluster/): a run's setup written as a TRL
 * DistillationTrainer script and a tinker-cookbook launcher. Checked here without Python: every
 * knob lands in the script as the value the lab ran with, the prompts file holds the training
 * prompts, and what a target cannot carry is refused with its sentence. The TRL scripts were
 * run for real, by hand, with TRL 1.13 on the fixtures and the built-in models (the README's
 * "same experiment on a cluster" gives the runs and their losses).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LLAMA_STUDENT } from '../../workers/contract/presets';
import { DEFAULT_SETUP, type TrainSetup } from '../../workers/contract/knobs';
import { clusterExport } from '../../workers/distill/cluster/export';
import { ClusterExportError, type ClusterExperiment } from '../../workers/distill/cluster/experiment';
import { trlScript } from '../../workers/distill/cluster/trl';
import { tinkerLauncher } from '../../workers/distill/cluster/tinker';

const experiment = (setup: Partial<TrainSetup>, more: Partial<ClusterExperiment> = {}): ClusterExperiment => ({
  setup: { ...DEFAULT_SETUP, objective: 'opd-sampled', totalSteps: 37, batchPrompts: 6, groupSize: 3, lr: 3e-4, loraRank: 16, klCoef: 0.5, discount: 0, warmupSteps: 5, schedule: 'cosine', seed: 11, ...setup },
  student: 'HuggingFaceTB/SmolLM2-135M',
  teacher: 'HuggingFaceTB/SmolLM2-360M@main',
  prompts: [{ text: 'Q: 1+2= A: ' }, { text: 'a "quoted" prompt\nwith a newline' }],
  maxTokens: 24,
  weightDecay: 0,
  maxGradNorm: 1,
  ...more,
});

/** `NAME = value` assignments at the top of a generated script. */
function constants(script: string): Record<string, string> {
  return Object.fromEntries([...script.matchAll(/^([A-Z_]+) = (.+?)(?:  #.*)?$/gm)].map((m) => [m[1], m[2]]));
}

describe('cluster export: TRL DistillationTrainer', () => {
  it('carries every knob the lab ran with, and scales the loss by λ', () => {
    const script = trlScript(experiment({}), 'test');
    expect(constants(script)).toMatchObject({
      STUDENT: '"HuggingFaceTB/SmolLM2-135M"', TEACHER: '"HuggingFaceTB/SmolLM2-360M@main"', STEPS: '37', PROMPTS_PER_STEP: '6', ANSWERS_PER_PROMPT: '3',
      LEARNING_RATE: '0.0003', WARMUP_STEPS: '5', SCHEDULE: '"cosine"', LORA_RANK: '16', KL_COEF: '0.5', TEMPERATURE: '1.0', MAX_NEW_TOKENS: '24', WEIGHT_DECAY: '0.0', MAX_GRAD_NORM: '1.0', SEED: '11',
    });
    expect(script).toContain('beta=1.0,  # the reverse KL');
    expect(script).toContain('class ScaledDistillationTrainer(DistillationTrainer):');
    expect(script).toContain('peft_config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK');
    expect(script).toContain("the lab's opd-sampled uses a one-sample estimate");
  });

  it('opd-full without LoRA: no λ scaling, no PEFT, a constant schedule with warm-up', () => {
    const script = trlScript(experiment({ objective: 'opd-full', loraRank: 0, schedule: 'constant', klCoef: 3 }), 'test');
    expect(constants(script)).toMatchObject({ KL_COEF: '1.0', LORA_RANK: '0', SCHEDULE: '"constant_with_warmup"' });
    expect(script).not.toContain('ScaledDistillationTrainer');
    expect(script).not.toContain('peft');
    expect(script).toContain('    trainer = DistillationTrainer(');
  });

  it('refuses what TRL cannot carry, a sentence each', () => {
    expect(() => trlScript(experiment({ discount: 0.9 }), 't')).toThrow(/TRL’s DistillationTrainer has no discount γ .*kl_discount_factor = 0\.9/);
    expect(() => trlScript(experiment({ objective: 'sft' }), 't')).toThrow(/sft .* SFTTrainer/);
    expect(() => trlScript(experiment({ objective: 'rl' }), 't')).toThrow(/rl needs the task’s verifier/);
    const mixed = experiment({}, { prompts: [{ text: 'a' }, { messages: [{ role: 'user', content: 'b' }] }] });
    expect(() => trlScript(mixed, 't')).toThrow(ClusterExportError);
    expect(() => trlScript(mixed, 't')).toThrow('1 of the 2 prompts are chat messages');
  });
});

describe('cluster export: tinker-cookbook', () => {
  it('carries opd-sampled knob for knob: λ, γ, group size, groups per batch, rank, lr, max tokens', () => {
    const script = tinkerLauncher(experiment({ discount: 0.25 }), 'test');
    expect(constants(script)).toMatchObject({ STEPS: '37', PROMPTS_PER_STEP: '6', ANSWERS_PER_PROMPT: '3', LEARNING_RATE: '0.0003', LORA_RANK: '16', KL_PENALTY_COEF: '0.5', KL_DISCOUNT_FACTOR: '0.25', MAX_NEW_TOKENS: '24' });
    expect(script).toContain('loss_fn="importance_sampling"');
  });

  it('refuses opd-full, full fine-tuning, another temperature and multi-message prompts', () => {
    expect(() => tinkerLauncher(experiment({ objective: 'opd-full' }), 't')).toThrow(/not the exact one: choose opd-sampled/);
    expect(() => tinkerLauncher(experiment({ loraRank: 0 }), 't')).toThrow(/LoRA adapters only/);
    expect(() => tinkerLauncher(experiment({ temperature: 0.7 }), 't')).toThrow(/temperature to 1 \(got 0\.7\)/);
    const chat = experiment({}, { prompts: [{ messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }] }] });
    expect(() => tinkerLauncher(chat, 't')).toThrow(/Prompt 1 has messages other than one user turn/);
  });
});

describe('cluster export: the folder', () => {
  it('writes both targets, the prompts as JSON lines (text and quotes intact) and a README', () => {
    const e = clusterExport(experiment({}), 'test');
    expect([...e.files.keys()].sort()).toEqual(['README.md', 'prompts.jsonl', 'tinker_distill.py', 'trl_distill.py']);
    const lines = e.files.get('prompts.jsonl')!.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([{ prompt: 'Q: 1+2= A: ' }, { prompt: 'a "quoted" prompt\nwith a newline' }]);
    expect(e.files.get('README.md')).not.toMatch(/chat template/);
    // Chat prompts: the README says the cluster trainer feeds the teacher the student's rendering.
    const chat = clusterExport(experiment({}, { prompts: [{ messages: [{ role: 'user', content: 'Why?' }] }] }), 'test');
    expect(chat.files.get('README.md')).toMatch(/renders each one with the student's chat template and feeds the\nteacher the same tokens; a run in the lab gives the teacher its own template/);
  });

  it('names the target it could not write, with the reason, and refuses when neither can run', () => {
    const e = clusterExport(experiment({ objective: 'opd-full' }), 'test');
    expect(e.targets.trl).toEqual({ file: 'trl_distill.py' });
    expect('refused' in e.targets.tinker && e.targets.tinker.refused).toMatch(/choose opd-sampled/);
    expect(e.files.get('README.md')).toMatch(/tinker-cookbook \(`train_on_policy`\): not exported\. tinker-cookbook’s on-policy distillation trains on the sampled token’s reverse KL/);
    expect(e.files.has('tinker_distill.py')).toBe(false);
    expect(() => clusterExport(experiment({ objective: 'sft' }), 't')).toThrow(/Neither cluster trainer can run this setup/);
    expect(() => clusterExport(experiment({}, { prompts: [] }), 't')).toThrow('There are no training prompts to export.');
    expect(() => clusterExport(experiment({}, { student: ' ' }), 't')).toThrow(/The student is not named/);
    // A routed task needs a second teacher, which neither trainer takes.
    expect(() => clusterExport(experiment({ routeTask: 'subtraction', routeTeacher: 'student' }), 't')).toThrow(
      'The routed task (subtraction, scored by a frozen copy of the student as loaded) cannot be exported: TRL\'s and tinker-cookbook\'s trainers give every prompt one teacher. Set "route a second task" to none to export the rest.',
    );
  });
});

describe('opd-lab cluster', () => {
  const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opd-lab.mjs');
  const MODELS = join(import.meta.dirname, '..', '..', 'models');
  const PROMPTS = join(import.meta.dirname, '..', 'fixtures', 'prompts-addition.txt');
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'cluster', ...args], { encoding: 'utf8', timeout: 60_000 });

  it('writes the scripts for a prompt file: its training split, the knobs given over the preset’s', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'opd-cluster-')), 'export');
    const r = cli('--preset', 'llama-student', '--models', MODELS, '--prompts', PROMPTS, '--held-out', '0.25', '--lora', '8', '--steps', '12', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = readFileSync(PROMPTS, 'utf8').split('\n').filter((l) => l.trim() !== '');
    const exported = readFileSync(join(out, 'prompts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).prompt as string);
    // 25% held out (rounded), the rest exported, each one a line of the file.
    expect(exported).toHaveLength(lines.length - Math.round(0.25 * lines.length));
    for (const p of exported) expect(lines).toContain(p);
    const trl = constants(readFileSync(join(out, 'trl_distill.py'), 'utf8'));
    expect(trl).toMatchObject({ STEPS: '12', LORA_RANK: '8', LEARNING_RATE: String(LLAMA_STUDENT.setup.lr), PROMPTS_PER_STEP: String(LLAMA_STUDENT.setup.batchPrompts) });
    expect(JSON.parse(trl.STUDENT)).toBe(join(MODELS, LLAMA_STUDENT.student));
    expect(r.stdout).toMatch(/wrote .*trl_distill\.py \(trl\)\nwrote .*tinker_distill\.py \(tinker\)\n/);
  });

  it('says why when neither target can run the setup, and writes nothing', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'opd-cluster-')), 'export');
    const r = cli('--preset', 'llama-student', '--models', MODELS, '--objective', 'rl', '--steps', '5', '--out', out);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^opd-lab: Neither cluster trainer can run this setup\. TRL: .*rl needs the task’s verifier/);
    expect(existsSync(out)).toBe(false);
  });
});
