// `node --import tsx --import ./workers/node/register.mjs script.ts`: TypeScript through tsx,
// and `?raw` imports of .wgsl files as strings.
import { register } from 'node:module';

register('./raw-import-hooks.mjs', import.meta.url);
