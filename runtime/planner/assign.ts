// Files to fragments, balanced by bytes: largest file first onto the lightest fragment
// (LPT scheduling, within 4/3 of the best possible makespan).

import type { FileRef } from './plan.ts';

export function assignFiles(files: readonly FileRef[], maxFragments: number): FileRef[][] {
  const count = Math.max(1, Math.min(Math.floor(maxFragments) || 1, files.length));
  const bins: { bytes: number; files: FileRef[] }[] = Array.from({ length: count }, () => ({ bytes: 0, files: [] }));
  const bySize = [...files].sort((a, b) => b.sizeBytes - a.sizeBytes || a.uri.localeCompare(b.uri));
  for (const file of bySize) {
    let lightest = bins[0];
    for (const bin of bins) if (bin.bytes < lightest.bytes) lightest = bin;
    lightest.files.push(file);
    lightest.bytes += file.sizeBytes;
  }
  // Files in key order inside a fragment keep reads sequential and plans stable.
  return bins.map((b) => b.files.sort((x, y) => x.uri.localeCompare(y.uri)));
}
