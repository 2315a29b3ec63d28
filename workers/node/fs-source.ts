/** A model folder on disk, for the CLI and the tests. */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ModelFolderError, type ModelSource } from '../models/source';

export async function dirSource(dir: string): Promise<ModelSource> {
  const root = resolve(dir);
  let isDir = false;
  try {
    isDir = (await stat(root)).isDirectory();
  } catch {
    throw new ModelFolderError(`The model folder ${root} does not exist.`, root);
  }
  if (!isDir) throw new ModelFolderError(`${root} is a file, not a model folder (a folder with config.json, tokenizer.json, onnx/model.onnx).`, root);
  return {
    label: root,
    async has(path) {
      try {
        return (await stat(join(root, path))).isFile();
      } catch {
        return false;
      }
    },
    async read(path) {
      try {
        return new Uint8Array(await readFile(join(root, path)));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ModelFolderError(code === 'ENOENT' ? `${path} is missing from ${root}.` : `Could not read ${join(root, path)}: ${(e as Error).message}.`, root, path);
      }
    },
  };
}
