/**
 * A model folder picked on the person's computer, as `model.load` carries it: each file with its
 * path inside the folder.
 */

/** Strips the picked folder's own name from webkitRelativePath ('gpt2/onnx/model.onnx' → 'onnx/model.onnx'). */
export function pickedFolderEntries(files: ArrayLike<File>): { file: Blob; path: string }[] {
  return Array.from(files, (file) => {
    const rel = (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;
    return { file, path: rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : rel };
  });
}
