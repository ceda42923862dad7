// Co-split joins: two tables joined on a.k = b.k whose files each hold a narrow range of k
// (data written in key order: TPC-H's lineitem and orders by order key, any table an engine
// sorted or clustered before writing) are split together along those ranges, so that each
// fragment joins its share of one with the share of the other it can match, and neither
// is read whole by every fragment nor hash-partitioned through the object store. This is
// Spark's storage-partitioned join, with the partitions found from the files' column
// bounds rather than declared.
//
// Why it is exact: a row with key x lies in a file whose [min, max] holds x. The files of
// both tables are grouped into the connected components of their overlapping ranges, so
// every file whose range holds x, of either table, is in the component that holds x, and
// rows that can be equal on the key meet in one fragment. Each file is in exactly one
// component, and each component in exactly one fragment, so no row is read twice: an
// outer join's unmatched rows come out once, as they would from one node. A NULL key
// matches nothing and its row stays in its file's fragment.

import { isIntegerType } from './ast.ts';
import type { FileRef } from './plan.ts';
import type { Column, ColumnStats, DataFile } from '../catalog/types.ts';

/** A file and the range of the join key its rows hold (both ends inclusive). */
export interface RangedFile {
  file: FileRef;
  min: bigint;
  max: bigint;
}

/** One fragment's files of each side. */
export interface CoSplitGroup {
  a: FileRef[];
  b: FileRef[];
}

/**
 * The key ranges of `files` (FileRefs of `dataFiles`, found by URI) on `key`, or why there
 * are none: the key is not an integer (other types' bounds need not order as the join
 * compares them), or a file has no bounds for it (nothing known of its keys, or all NULL).
 */
export function keyRanges(files: readonly FileRef[], dataFiles: readonly DataFile[], key: Column): RangedFile[] | string {
  if (!isIntegerType(key.type)) return `${key.name} is ${key.type}, not an integer`;
  const byUri = new Map(dataFiles.map((f) => [f.uri, f]));
  const out: RangedFile[] = [];
  for (const file of files) {
    // A row range of a file lies inside the file's own bounds.
    const data = byUri.get(file.uri);
    const stats = data ? statsOf(data, key.name) : undefined;
    const min = bound(stats?.min);
    const max = bound(stats?.max);
    if (min === undefined || max === undefined || min > max) return `a file of ${key.name} has no bounds`;
    out.push({ file, min, max });
  }
  return out;
}

/** Every file of the table is known to hold no NULL in `key`. */
export function noNulls(dataFiles: readonly DataFile[], key: string): boolean {
  return dataFiles.every((f) => statsOf(f, key)?.nulls === 0);
}

function statsOf(data: DataFile, key: string): ColumnStats | undefined {
  return data.stats[key] ?? Object.entries(data.stats).find(([name]) => name.toLowerCase() === key.toLowerCase())?.[1];
}

function bound(text: string | null | undefined): bigint | undefined {
  if (text === null || text === undefined || !/^\s*[+-]?\d+\s*$/.test(text)) return undefined;
  return BigInt(text.trim());
}

/**
 * The connected components of the files' key ranges, both tables together, in key order:
 * each holds every file, of either table, whose range meets the others'.
 */
export function keyComponents(a: readonly RangedFile[], b: readonly RangedFile[]): CoSplitGroup[] {
  const all = [...a.map((f) => ({ ...f, side: 'a' as const })), ...b.map((f) => ({ ...f, side: 'b' as const }))];
  all.sort((x, y) => (x.min < y.min ? -1 : x.min > y.min ? 1 : x.max < y.max ? -1 : x.max > y.max ? 1 : x.file.uri.localeCompare(y.file.uri)));
  const out: CoSplitGroup[] = [];
  let hi: bigint | undefined;
  for (const f of all) {
    if (hi === undefined || f.min > hi) {
      out.push({ a: [], b: [] });
      hi = f.max;
    } else if (f.max > hi) hi = f.max;
    out[out.length - 1][f.side].push(f.file);
  }
  return out;
}

/**
 * The components as at most `fragments` groups balanced by the bytes both sides read:
 * largest first onto the lightest group (as assignFiles does with files). Files in each
 * group stay in key order.
 */
export function coSplitGroups(components: readonly CoSplitGroup[], fragments: number): CoSplitGroup[] {
  const bytes = (g: CoSplitGroup) => [...g.a, ...g.b].reduce((n, f) => n + f.sizeBytes, 0);
  const count = Math.max(1, Math.min(Math.floor(fragments) || 1, components.length));
  const bins = Array.from({ length: count }, () => ({ bytes: 0, parts: [] as number[] }));
  const order = components.map((c, i) => ({ i, bytes: bytes(c) })).sort((x, y) => y.bytes - x.bytes || x.i - y.i);
  for (const c of order) {
    let lightest = bins[0];
    for (const bin of bins) if (bin.bytes < lightest.bytes) lightest = bin;
    lightest.parts.push(c.i);
    lightest.bytes += c.bytes;
  }
  return bins.map((bin) => {
    const parts = bin.parts.sort((x, y) => x - y).map((i) => components[i]);
    return { a: parts.flatMap((p) => p.a), b: parts.flatMap((p) => p.b) };
  });
}
