/** Writing a model folder's files (relative path → bytes) into a directory on disk. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export async function writeFolder(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<string> {
  const root = resolve(dir);
  for (const [path, bytes] of files) {
    const target = join(root, path);
    if (!target.startsWith(root + '/')) throw new Error(`refusing to write ${path} outside ${root}`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }
  return root;
}
