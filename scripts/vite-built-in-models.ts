/**
 * The built-in model folders (models/<name>/, each a folder with a config.json) as part of the
 * lab: served at <base>models/<name>/… by the dev server, copied into the build (dist/models/…),
 * and listed in <base>models/index.json with what each folder's recipe.json and config.json say
 * (role, parameters, task, held-out accuracy, build time), so the page lists them without a
 * network. Served with the cross-origin isolation headers, from the lab's own origin.
 *
 * The preview server (`npm start`) serves the build's copy, with the same headers and types, and
 * answers 404 for a file that is not there (instead of the app's index.html).
 */
import type { Plugin, ResolvedConfig } from 'vite';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, relative, resolve, sep } from 'node:path';
import type { BuiltInModel, BuiltInModelsIndex } from '../app/lab/builtInModels.ts';

/** Every file under dir (paths with '/'), hidden files and folders left out, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    if (entry.isDirectory()) out.push(...filesUnder(join(dir, entry.name), `${prefix}${entry.name}/`));
    else if (entry.isFile()) out.push(`${prefix}${entry.name}`);
  }
  return out;
}

/** The model folders under root: its subfolders that hold a config.json. */
export function modelFolders(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && existsSync(join(root, e.name, 'config.json')))
    .map((e) => e.name)
    .sort();
}

function readJson(path: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** models/index.json: each folder with its recipe.json summary (fields it lacks are null). */
export function modelsIndex(root: string): BuiltInModelsIndex {
  const models = modelFolders(root).map((name): BuiltInModel => {
    const dir = join(root, name);
    const config = readJson(join(dir, 'config.json'));
    const recipe = existsSync(join(dir, 'recipe.json')) ? readJson(join(dir, 'recipe.json')) : {};
    const role = str(recipe.role) ?? str(config.lab_role);
    const build = recipe.buildSeconds;
    return {
      name,
      role: role === 'student' || role === 'teacher' ? role : null,
      modelType: str(config.model_type),
      parameters: num(recipe.parameters),
      taskName: str(config.task),
      task: recipe.task ?? null,
      heldOutAccuracy: num(recipe.heldOutAccuracy),
      description: str(recipe.description),
      preset: str(config.lab_preset),
      keptTask: str(config.task_kept),
      keptAccuracy: num(recipe.keptAccuracy),
      heldOutPrompts: num(recipe.heldOutPrompts),
      buildSeconds: build && typeof build === 'object' ? (build as BuiltInModel['buildSeconds']) : null,
      steps: num(recipe.steps),
      adapter: str(recipe.adapter),
      files: filesUnder(dir),
    };
  });
  return { models };
}

const TYPES: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  // Shown as text when a person follows the link (application/x-ndjson would download it).
  jsonl: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

/**
 * Serves <base>models/… from root: index.json (from the folder when it has one, else made now)
 * and the files of its model folders; anything else under <base>models/ is a 404.
 */
function middleware(root: () => string, base: () => string, headers: Record<string, string>) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const prefix = `${base()}models/`;
    const path = (req.url ?? '').split('?')[0];
    if (!path.startsWith(prefix) || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
    let rel: string;
    try {
      rel = decodeURIComponent(path.slice(prefix.length));
    } catch {
      return void res.writeHead(400).end();
    }
    const dir = root();
    const send = (body: Buffer | string, type: string) => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    };
    if (rel === 'index.json') {
      const file = join(dir, 'index.json');
      return send(existsSync(file) ? readFileSync(file) : JSON.stringify(modelsIndex(dir), null, 2) + '\n', TYPES.json);
    }
    const file = normalize(join(dir, rel));
    const [folder] = relative(dir, file).split(sep);
    const inFolder = file.startsWith(dir + sep) && modelFolders(dir).includes(folder) && !rel.split('/').some((p) => p.startsWith('.'));
    if (!inFolder || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      return void res.end(req.method === 'HEAD' ? undefined : `No ${rel} among the lab's built-in models.\n`);
    }
    send(readFileSync(file), TYPES[file.split('.').pop() ?? ''] ?? 'application/octet-stream');
  };
}

/**
 * The plugin. `dir` is the models folder (the repository's models/ unless OPD_LAB_MODELS_DIR
 * names another, e.g. stand-in folders while developing).
 */
export function builtInModels(dir: string, headers: Record<string, string>): Plugin {
  const source = resolve(process.env.OPD_LAB_MODELS_DIR || dir);
  let config: ResolvedConfig;
  // A relative base ('./') serves from '/' on the dev and preview servers.
  const base = () => (config.base.startsWith('/') ? config.base : '/');
  return {
    name: 'opd-lab:built-in-models',
    configResolved(resolved) {
      config = resolved;
    },
    configureServer(server) {
      server.middlewares.use(middleware(() => source, base, headers));
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware(() => resolve(config.root, config.build.outDir, 'models'), base, headers));
    },
    generateBundle() {
      const index = modelsIndex(source);
      for (const model of index.models) {
        for (const file of model.files) {
          this.emitFile({ type: 'asset', fileName: `models/${model.name}/${file}`, source: readFileSync(join(source, model.name, file)) });
        }
      }
      this.emitFile({ type: 'asset', fileName: 'models/index.json', source: JSON.stringify(index, null, 2) + '\n' });
    },
  };
}
