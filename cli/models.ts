/**
 * Where the CLI finds a model folder: a directory on disk, or, when no such directory exists and
 * the argument looks like ORG/NAME[@REVISION], a Hugging Face model id, downloaded from
 * HF_ENDPOINT (the Hub by default, as huggingface_hub reads it) into the model cache
 * OPD_LAB_CACHE (default ~/.cache/opd-lab), with HF_TOKEN for gated or private models and
 * HF_HUB_DOWNLOAD_TIMEOUT (seconds) for slow servers. A model in the cache loads with no network.
 * Download progress goes to stderr: a line per file (and, on a terminal, a throttled live line).
 */
import { existsSync } from 'node:fs';
import type { ModelSource } from '../workers/models/source';
import { dirSource } from '../workers/node/fs-source';
import { diskCache } from '../workers/node/hub-cache';
import { hubIdProblem, looksLikeHubId, normalizeEndpoint } from '../workers/models/hub/id';
import { hubSource, type HubProgress } from '../workers/models/hub/source';
import { DEFAULT_TIMEOUT_MS } from '../workers/models/hub/http';
import { isOnnxDtype, ONNX_DTYPES, type ReadFolderOptions } from '../workers/models/folder';
import { UsageError } from './args';

/** Whether a model argument is taken as a Hub id: not an existing path, and shaped like one. */
export const isHubArgument = (arg: string): boolean => !existsSync(arg) && looksLikeHubId(arg);

const size = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

/** Progress on stderr: one line per file when it is done; on a terminal also a live line, at most 4 a second. */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): (p: HubProgress) => void {
  let last = 0;
  return (p) => {
    const of = p.total !== null ? ` / ${size(p.total)}` : '';
    const line = `opd-lab: ${p.model} ${p.file} ${size(p.loaded)}${of}${p.fromCache ? ' from the cache' : ''} (folder ${size(p.folderLoaded)} / ${size(p.folderTotal)} so far)`;
    if (p.done) {
      stream.write(stream.isTTY ? `\r${line}\x1b[K\n` : `${line}\n`);
      return;
    }
    const now = Date.now();
    if (!stream.isTTY || now - last < 250) return;
    last = now;
    stream.write(`\r${line}\x1b[K`);
  };
}

/** The seconds of HF_HUB_DOWNLOAD_TIMEOUT as milliseconds, or the default. */
function timeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env.HF_HUB_DOWNLOAD_TIMEOUT;
  if (raw === undefined || raw.trim() === '') return DEFAULT_TIMEOUT_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`HF_HUB_DOWNLOAD_TIMEOUT must be a number of seconds above 0, got '${raw}'.`);
  return s * 1000;
}

/** The model folder an option names: a directory, or a Hub id read through the cache. */
export async function openModel(arg: string, env: NodeJS.ProcessEnv = process.env): Promise<ModelSource> {
  if (!isHubArgument(arg)) return dirSource(arg);
  const problem = hubIdProblem(arg);
  if (problem) throw new Error(`There is no folder '${arg}', and ${problem}`);
  const endpoint = normalizeEndpoint(env.HF_ENDPOINT);
  return hubSource(arg, {
    endpoint,
    cache: diskCache(),
    token: env.HF_TOKEN || undefined,
    timeoutMs: timeoutMs(env),
    tokenHint: 'HF_TOKEN',
    timeoutHint: 'HF_HUB_DOWNLOAD_TIMEOUT, in seconds',
    endpointHint: 'HF_ENDPOINT',
    onProgress: stderrProgress(),
    onWarning: (w) => process.stderr.write(`opd-lab: warning: ${w}\n`),
  });
}

/** The help of --dtype / --teacher-dtype. */
export const DTYPE_HELP = `ONNX variant of an onnx-community folder: ${ONNX_DTYPES.join(', ')} (default: fp32 when there, else the smallest the adapter runs; fp16/q4f16 need shader-f16)`;

/** --dtype's value as the folder reader takes it, with whether `device` runs float16 graphs. */
export function folderOptions(dtype: unknown, device: GPUDevice, flag = '--dtype'): ReadFolderOptions {
  if (dtype !== undefined && !isOnnxDtype(dtype)) throw new UsageError(`${flag} '${String(dtype)}' is not an ONNX dtype: use one of ${ONNX_DTYPES.join(', ')}`);
  return { dtype, shaderF16: device.features.has('shader-f16') };
}
