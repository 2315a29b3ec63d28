/** Saving what the lab made (a student folder, a checkpoint, a heatmap, a cluster export) as a file through the browser's download. */

/** Saves a blob as `fileName`; the object URL is revoked once the download has surely started. */
export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
