/**
 * The layer rule of the lab, checked by `npm test` (scripts/check-layers.mjs): an import may only
 * go down the layers, never up.
 *
 *   app → protocol ← engine ← run loop ← prompt sets ← sampler / scorer / trainer ← chat templates ← model families ← kernels ← gpu
 *
 * workers/contract/ is the bottom floor: plain types and values that every layer, and the app,
 * may import; it imports nothing of the project. The app imports from workers/ only the protocol
 * and the contract. The CLI, scripts and tests are drivers: they may import any layer of workers/.
 */

/** Bottom to top. A module of one layer may import its own layer and the layers below it. */
const LAYERS = [
  { name: 'contract', path: '^workers/contract/' },
  { name: 'gpu', path: '^workers/gpu/' },
  // Low-level utilities beside the GPU: onnxruntime-web's runtime, the ONNX graph builder, seeded random streams.
  { name: 'runtime', path: '^workers/(ort|onnx|random)/' },
  { name: 'kernels', path: '^workers/kernels/' },
  // Built-in tasks: plain logic (prompts, held-out split, verifiers).
  { name: 'tasks', path: '^workers/tasks/' },
  { name: 'model families', path: '^workers/models/' },
  // Chat templates: a model folder's template rendered with @huggingface/jinja (workers/chat/).
  { name: 'chat templates', path: '^workers/chat/' },
  // Node-only glue (Dawn, folders on disk): a platform layer for model sources and the device.
  { name: 'node glue', path: '^workers/node/' },
  { name: 'sampler, scorer, trainer, self-checks', path: '^workers/(sampling|scoring|train|selfcheck)/' },
  // Prompt sets without labels (parsing, the split, rendering with the student's chat template): what the run loop draws from.
  { name: 'prompt sets', path: '^workers/prompts/' },
  { name: 'run loop', path: '^workers/distill/' },
  { name: 'engine', path: '^workers/(engine/|lab\\.worker\\.ts$)' },
  { name: 'protocol', path: '^workers/protocol\\.ts$' },
];

const upward = LAYERS.map((layer, i) => ({
  name: `no-upward-from-${layer.name.replace(/[^a-z]+/g, '-')}`,
  comment: `${layer.name} may not import a layer above it (${LAYERS.slice(i + 1).map((l) => l.name).join(', ')})`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(i + 1).map((l) => l.path) },
})).filter((rule) => rule.to.path.length > 0);

// The engine answers the protocol's commands, so it imports the protocol; nothing below does.
upward.find((r) => r.from.path === '^workers/(engine/|lab\\.worker\\.ts$)').to.path = [];

module.exports = {

  forbidden: [
    ...upward.filter((r) => r.to.path.length > 0),
    {
      name: 'app-imports-only-the-contract',
      comment: 'the app imports from workers/ only the protocol and workers/contract/',
      severity: 'error',
      from: { path: '^app/' },
      to: { path: '^workers/', pathNot: ['^workers/protocol\\.ts$', '^workers/contract/'] },
    },
    {
      name: 'engine-layers-never-import-drivers',
      comment: 'workers/ runs in a browser worker and in Node: it never imports the app, the CLI, scripts or tests',
      severity: 'error',
      from: { path: '^workers/' },
      to: { path: '^(app|cli|scripts|test)/' },
    },
    {
      name: 'no-circular-between-folders',
      comment: 'folders of workers/ import each other in one direction only',
      severity: 'error',
      from: { path: '^workers/([^/]+)/' },
      to: { path: '^workers/', pathNot: '^workers/$1/', circular: true, dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/|\\.wgsl\\?raw$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js', '.mjs', '.json'] },
  },
};
