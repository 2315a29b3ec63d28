/** `opd-lab cache`: the models in the model cache (OPD_LAB_CACHE) with their sizes, and deleting one. */
import type { Command } from './main';
import { UsageError } from './args';
import { diskCache } from '../workers/node/hub-cache';
import { hubIdProblem, parseHubId } from '../workers/models/hub/id';

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export const cacheCommand: Command = {
  summary: 'list the Hugging Face models in the model cache (OPD_LAB_CACHE) with their sizes, or delete one',
  options: {
    delete: { kind: 'string', help: 'delete this model: ORG/NAME (every revision) or ORG/NAME@REVISION' },
    json: { kind: 'flag', help: 'print JSON' },
  },
  async run(o) {
    const cache = diskCache();
    if (o.delete !== undefined) {
      const text = String(o.delete);
      const problem = hubIdProblem(text);
      if (problem) throw new UsageError(`cache: ${problem}`);
      const id = parseHubId(text);
      const revision = text.includes('@') ? id.revision : undefined;
      const held = (await cache.list()).filter((m) => m.repo === id.repo && (revision === undefined || m.revision === revision));
      if (held.length === 0) throw new Error(`${text} is not in the model cache ${cache.label}: 'opd-lab cache' lists what is.`);
      await cache.deleteModel(id.repo, revision);
      const bytes = held.reduce((a, m) => a + m.bytes, 0);
      console.log(`deleted ${held.map((m) => `${m.repo}@${m.revision}`).join(', ')} (${mb(bytes)}) from ${cache.label}`);
      return;
    }
    const models = await cache.list();
    if (o.json) console.log(JSON.stringify({ cache: cache.label, models }, null, 2));
    else if (models.length === 0) console.log(`the model cache ${cache.label} is empty`);
    else {
      console.log(`the model cache ${cache.label}:`);
      for (const m of models) console.log(`  ${`${m.repo}@${m.revision}`.padEnd(48)} ${mb(m.bytes).padStart(10)}  ${m.files.length} files`);
    }
  },
};
