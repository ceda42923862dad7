// A copy-on-write Hudi table as the planner's TableSnapshot: the latest file slice of every
// file group as of one completed instant, found the way Hudi's file-system view finds it
// without the metadata table (a listing of the table's directories), each base file read by
// column name (catalog/types.ts IcebergFileRead with negative field ids), its partition values
// from its directory name as statistics for pruning.
//
// A base file is `<fileId>_<writeToken>_<instant>.parquet`. It belongs to the snapshot when
// its instant is a completed `commit` or `replacecommit` at or before the snapshot's instant,
// or is older than the whole active timeline (archived instants are completed ones: Hudi
// archives nothing past a pending instant, and rolls failed writes back first); when the
// instant's metadata lists other files of that group (a retried task's leftover), only the
// listed one counts. The newest such file of a group is its latest slice; groups replaced by a
// completed replacecommit (clustering, insert overwrite) at or before the instant are left out.

import { createHash } from 'node:crypto';
import { PuffinError } from '../../errors.ts';
import { joinUri, type TreeEntry } from '../iceberg/io.ts';
import type { ColumnStats, DataFile, TableSnapshot } from '../types.ts';
import type { HudiConfig } from './properties.ts';
import { partitionLiteral, partitionPathValues, toColumns, type HudiColumn } from './schema.ts';
import { compareInstants, instantOrder, type CommitMetadata, type Instant, type Timeline } from './timeline.ts';

const BASE_FILE = /^([^_/]+)_([^_/]+)_(\d{14}|\d{17})\.parquet$/;

export interface BaseFileName {
  fileId: string;
  writeToken: string;
  instant: string;
}

export function parseBaseFileName(name: string): BaseFileName | undefined {
  const m = BASE_FILE.exec(name);
  return m ? { fileId: m[1], writeToken: m[2], instant: m[3] } : undefined;
}

/** One file group's latest base file in a snapshot. */
export interface FileSlice {
  partitionPath: string;
  fileId: string;
  instant: string;
  /** Relative to the table root. */
  path: string;
  sizeBytes: number;
  /** The instant's write statistics' record count, when its metadata is on the active timeline. */
  rowCount?: number;
}

export interface HudiState {
  config: HudiConfig;
  /** The completed instant the snapshot is as of. */
  instant: string;
  columns: HudiColumn[];
  slices: FileSlice[];
}

/** The commits at or before `instant`, with their metadata, in time order. */
export interface CommitsUpTo {
  commits: { instant: Instant; metadata: CommitMetadata }[];
}

function groupKey(partitionPath: string, fileId: string): string {
  return `${partitionPath}\u0000${fileId}`;
}

/**
 * The latest file slices as of `instant` from a listing of the table root (`files`, relative
 * paths) and the metadata of the completed commits at or before it.
 */
export function latestFileSlices(config: HudiConfig, timeline: Timeline, instant: string, commits: CommitsUpTo['commits'], files: readonly TreeEntry[], where: string): FileSlice[] {
  const target = instantOrder(instant);
  const completed = new Map<string, CommitMetadata>();
  for (const c of commits) completed.set(instantOrder(c.instant.requested), c.metadata);
  const start = timeline.start === undefined ? undefined : instantOrder(timeline.start);
  const replaced = new Set<string>();
  for (const c of commits) for (const r of c.metadata.replaced) replaced.add(groupKey(r.partitionPath, r.fileId));
  const partitioned = config.partitionFields.length > 0;

  const latest = new Map<string, FileSlice>();
  for (const f of files) {
    const slash = f.path.lastIndexOf('/');
    const partitionPath = slash < 0 ? '' : f.path.slice(0, slash);
    if (partitioned === (partitionPath === '')) continue; // a file outside the table's partition layout
    const name = parseBaseFileName(f.path.slice(slash + 1));
    if (!name) continue;
    const order = instantOrder(name.instant);
    if (order > target) continue;
    const metadata = completed.get(order);
    if (!metadata && !(start !== undefined && order < start)) continue; // pending, failed or rolled back
    if (metadata) {
      const written = metadata.writeStats.filter((s) => s.fileId === name.fileId && s.partitionPath === partitionPath);
      if (written.length > 0 && !written.some((s) => s.path === f.path)) continue; // not the file the commit kept
    }
    const key = groupKey(partitionPath, name.fileId);
    const previous = latest.get(key);
    if (previous && compareInstants(previous.instant, name.instant) >= 0) {
      if (previous.instant === name.instant) throw new PuffinError('bad_request', `${where}: file group ${name.fileId} in '${partitionPath}' has two base files of instant ${name.instant} (${previous.path}, ${f.path})`);
      continue;
    }
    const stat = metadata?.writeStats.find((s) => s.path === f.path);
    latest.set(key, { partitionPath, fileId: name.fileId, instant: name.instant, path: f.path, sizeBytes: f.size, ...(stat?.numWrites !== undefined ? { rowCount: stat.numWrites } : {}) });
  }
  for (const k of replaced) latest.delete(k);

  // Every group a commit on the timeline wrote must still have that file or a newer one: a
  // missing one was cleaned (an instant older than the cleaner keeps) or lost.
  const expected = new Map<string, { path: string; instant: string }>();
  for (const c of commits) {
    for (const s of c.metadata.writeStats) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(s.path) || !s.path.endsWith('.parquet')) continue;
      expected.set(groupKey(s.partitionPath, s.fileId), { path: s.path, instant: c.instant.requested });
    }
  }
  for (const [k, e] of expected) {
    if (replaced.has(k)) continue;
    const got = latest.get(k);
    if (!got || compareInstants(got.instant, e.instant) < 0) {
      throw new PuffinError('not_found', `${where}: base file ${e.path} written by instant ${e.instant} is missing (cleaned, or the table was copied incompletely): the table cannot be read as of instant ${instant}`);
    }
  }
  return [...latest.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function toDataFile(s: FileSlice, columns: readonly HudiColumn[], config: HudiConfig, rootUri: string, where: string): DataFile {
  const values = partitionPathValues(s.partitionPath, config);
  const stats: Record<string, ColumnStats> = {};
  const readSchema = columns.map((c) => {
    if (c.partitionIndex === undefined) return { ...c.field };
    const pf = config.partitionFields[c.partitionIndex];
    const literal = values === undefined ? undefined : partitionLiteral(c, values[c.partitionIndex], pf.valuePreserving);
    if (literal === undefined) {
      if (config.dropPartitionColumns) {
        throw new PuffinError('unsupported', `${where}: base file ${s.path}: partition column ${c.name} is not written into the files (hoodie.datasource.write.drop.partition.columns) and its value cannot be taken from the directory name '${s.partitionPath}'`);
      }
      return { ...c.field };
    }
    if (literal === null) {
      if (s.rowCount !== undefined) stats[c.name] = { nulls: s.rowCount };
    } else {
      stats[c.name] = s.rowCount === undefined ? { min: literal, max: literal } : { min: literal, max: literal, nulls: 0 };
    }
    return { ...c.field, defaultValue: literal };
  });
  return {
    uri: joinUri(rootUri, s.path),
    sizeBytes: s.sizeBytes,
    rowCount: s.rowCount ?? 0,
    stats,
    iceberg: { path: s.path, format: 'parquet', sequenceNumber: 0, partition: {}, readSchema, deletes: [] },
  };
}

/** The planner's view of a Hudi table rooted at `rootUri` as of `state.instant`. */
export function hudiSnapshot(name: string, rootUri: string, state: HudiState): TableSnapshot {
  const where = `Hudi table ${name} (${rootUri}) at instant ${state.instant}`;
  return {
    name,
    kind: 'hudi',
    columns: toColumns(state.columns),
    files: state.slices.map((s) => toDataFile(s, state.columns, state.config, rootUri, where)),
    // The instant, and the table's root: caches keyed by snapshot id (plans, results) must not
    // take another table registered under the same name for this one.
    snapshotId: `${state.instant}:${createHash('sha256').update(rootUri).digest('hex').slice(0, 12)}`,
    iceberg: { fields: state.columns.map((c) => ({ ...c.field })) },
  };
}

/** An instant time (yyyyMMddHHmmssSSS) of a moment, read in UTC. */
export function instantAt(timestampMs: number): string {
  if (!Number.isFinite(timestampMs)) throw new PuffinError('bad_request', `bad timestamp ${timestampMs}`);
  const d = new Date(timestampMs);
  const year = d.getUTCFullYear();
  if (Number.isNaN(year) || year < 1 || year > 9999) throw new PuffinError('bad_request', `timestamp ${timestampMs} is outside the years 1 to 9999`);
  return d.toISOString().replace(/[-:T.Z]/g, ''); // 2024-04-18T17:35:51.123Z -> 20240418173551123
}
