// Files to fragments, balanced by bytes: largest first onto the lightest fragment (LPT
// scheduling, within 4/3 of the best possible makespan).
//
// A file larger than one fragment's share of the bytes is first split along its row groups
// (when its layout is known: FileRef.rowGroups) into contiguous row ranges of about one
// share each, so that a table of fewer files than fragments still spreads over the
// fragments and one large file does not set the makespan. The smallest split is one row
// group: the writer chose that size, and a reader cannot skip less.

import type { FileRef, FragmentInput } from './plan.ts';

export function assignFiles(files: readonly FileRef[], maxFragments: number): FileRef[][] {
  const wanted = Math.max(1, Math.floor(maxFragments) || 1);
  const pieces = splitFiles(files, wanted);
  const count = Math.max(1, Math.min(wanted, pieces.length));
  const bins: { bytes: number; files: FileRef[] }[] = Array.from({ length: count }, () => ({ bytes: 0, files: [] }));
  const bySize = [...pieces].sort((a, b) => b.sizeBytes - a.sizeBytes || a.uri.localeCompare(b.uri) || (a.rows?.start ?? 0) - (b.rows?.start ?? 0));
  for (const file of bySize) {
    let lightest = bins[0];
    for (const bin of bins) if (bin.bytes < lightest.bytes) lightest = bin;
    lightest.files.push(file);
    lightest.bytes += file.sizeBytes;
  }
  // Files in key order inside a fragment keep reads sequential and plans stable.
  return bins.map((b) => b.files.sort((x, y) => x.uri.localeCompare(y.uri) || (x.rows?.start ?? 0) - (y.rows?.start ?? 0)));
}

/**
 * The files as splits for `fragments` fragments: a file over one fragment's share of the
 * total bytes, of more than one row group, becomes up to ceil(size / share) row ranges of
 * whole groups, cut where the running bytes cross each share; every other file stays whole.
 * No split carries the row-group layout on.
 */
export function splitFiles(files: readonly FileRef[], fragments: number): FileRef[] {
  const total = files.reduce((n, f) => n + f.sizeBytes, 0);
  const share = total / Math.max(1, fragments);
  const out: FileRef[] = [];
  for (const file of files) {
    const { rowGroups, ...ref } = file;
    if (!rowGroups || rowGroups.length < 2 || fragments < 2 || file.sizeBytes <= share || ref.rows) {
      out.push(ref);
      continue;
    }
    const groupBytes = rowGroups.reduce((n, g) => n + g.bytes, 0);
    const parts = Math.min(rowGroups.length, Math.ceil(file.sizeBytes / share));
    const target = groupBytes / parts;
    // Each split's size is its groups' share of the file's size (footer included), so the
    // splits' sizes add up to the file's.
    const scale = groupBytes > 0 ? file.sizeBytes / groupBytes : 0;
    let start = 0;
    let rows = 0;
    let running = 0;
    let pieceStart = 0;
    let cut = 1;
    for (const [i, g] of rowGroups.entries()) {
      rows += g.rows;
      running += g.bytes;
      if (i < rowGroups.length - 1 && running < target * cut) continue;
      const sizeBytes = i < rowGroups.length - 1 ? Math.round((running - pieceStart) * scale) : file.sizeBytes - Math.round(pieceStart * scale);
      out.push({ ...ref, sizeBytes, rowCount: rows - start, rows: { start, end: rows } });
      start = rows;
      pieceStart = running;
      while (running >= target * cut) cut++;
    }
  }
  return out;
}

/**
 * Add a table's input to `inputs`: a table read by several references (or conjuncts) is one
 * input, read with the files any of them keeps (a file kept for one only holds no row the
 * others' filters keep, and each applies its own filters again). `inputs` owns its file lists.
 */
export function addInput(inputs: FragmentInput[], input: FragmentInput): void {
  const same = inputs.find((i) => i.view === input.view);
  if (!same) {
    inputs.push({ ...input, files: [...input.files] });
    return;
  }
  for (const f of input.files) if (!same.files.some((x) => x.uri === f.uri)) same.files.push(f);
}
