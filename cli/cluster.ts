/**
 * `opd-lab cluster`: the experiment `opd-lab train` would run, with the same options, written out
 * for a cluster trainer instead (workers/distill/cluster/): a TRL `DistillationTrainer` script
 * and a tinker-cookbook launcher where each can carry the setup, the training prompts as
 * prompts.jsonl, and a README saying what was written and why a target was not. No GPU needed;
 * the student folder is read to resolve max tokens as the run would.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from './main';
import { UsageError, wasGiven } from './args';
import { isHubArgument, openModel } from './models';
import { KNOB_OPTIONS, setupFromOptions } from './train';
import { readModelFolder } from '../workers/models/folder';
import { setupProblem } from '../workers/contract/knobs';
import { PRESETS, type Preset } from '../workers/contract/presets';
import { promptSourceOfFile, type PromptTextSource } from '../workers/contract/prompts';
import { clusterExport } from '../workers/distill/cluster/export';
import { clusterExperimentOf } from '../workers/distill/cluster/from-setup';

/** A model as the cluster should load it: a Hub id as given, a folder by its absolute path. */
const asNamed = (model: string) => (isHubArgument(model) ? model : resolve(model));

export const clusterCommand: Command = {
  summary: 'write the experiment train would run as a TRL script and a tinker-cookbook launcher, for a cluster',
  options: {
    student: { kind: 'string', help: 'student folder or Hugging Face id ORG/NAME[@REVISION] (as the cluster will load it); required unless --preset' },
    teacher: { kind: 'string', help: 'teacher folder or Hugging Face id; required unless --preset' },
    preset: { kind: 'string', help: `a ready-made experiment on the built-in models (${Object.keys(PRESETS).join(', ')})` },
    models: { kind: 'string', default: 'models', help: 'where the built-in folders of --preset are' },
    prompts: { kind: 'string', help: 'your own prompts instead of --task (.txt or .jsonl, as for train); their training split is exported' },
    'chat-lines': { kind: 'flag', help: 'with a .txt --prompts file: each line is a user message, rendered with each model\'s chat template (as a .jsonl "messages" line is)' },
    out: { kind: 'string', required: true, help: 'folder to write (created; must be empty or absent)' },
    ...KNOB_OPTIONS,
  },
  async run(o) {
    const out = resolve(String(o.out));
    if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`cluster: ${out} is not empty: choose another --out`);
    let preset: Preset | undefined;
    if (o.preset !== undefined) {
      preset = PRESETS[String(o.preset)];
      if (!preset) throw new UsageError(`cluster: unknown --preset '${String(o.preset)}' (presets: ${Object.keys(PRESETS).join(', ')})`);
    }
    const setup = setupFromOptions(o, preset);
    if (o.prompts !== undefined && wasGiven(o, 'task')) throw new UsageError('cluster: --prompts and --task are two sources of prompts: give one of them');
    if (o['chat-lines'] && o.prompts === undefined) throw new UsageError('cluster: --chat-lines reads the lines of a --prompts file as user messages: give --prompts FILE.txt');
    const problem = setupProblem(setup);
    if (problem) throw new UsageError(`cluster: ${problem}`);
    const studentArg = o.student !== undefined ? String(o.student) : preset ? join(String(o.models), preset.student) : undefined;
    const teacherArg = o.teacher !== undefined ? String(o.teacher) : preset ? join(String(o.models), preset.teacher) : undefined;
    if (!studentArg || !teacherArg) throw new UsageError('cluster: --student and --teacher are required (or a --preset that names them)');
    const student = await readModelFolder(await openModel(studentArg));
    let prompts: PromptTextSource | undefined;
    if (o.prompts !== undefined) {
      const file = resolve(String(o.prompts));
      if (!existsSync(file)) throw new UsageError(`cluster: --prompts ${String(o.prompts)}: no such file`);
      prompts = promptSourceOfFile(basename(file), readFileSync(file, 'utf8'), Boolean(o['chat-lines']));
    }
    const experiment = clusterExperimentOf({ setup, student: { name: asNamed(studentArg), folder: student }, teacher: { name: asNamed(teacherArg) }, prompts });
    const exported = clusterExport(experiment, `opd-lab cluster, ${new Date().toISOString().slice(0, 10)}`);
    mkdirSync(out, { recursive: true });
    for (const [name, text] of exported.files) writeFileSync(join(out, name), text);
    for (const [target, t] of Object.entries(exported.targets)) {
      console.log('file' in t ? `wrote ${join(out, t.file)} (${target})` : `${target}: not written. ${t.refused}`);
    }
    console.log(`wrote ${join(out, 'prompts.jsonl')} (${experiment.prompts.length} training prompts) and ${join(out, 'README.md')}`);
  },
};
