// Table maintenance (Iceberg's Java actions and Spark's procedures of the same names):
// listing snapshots, expiring snapshots (then deleting the files only they referenced),
// removing orphan files, rewriting manifests, and compaction (rewrite_data_files).
//
// Safety rules, as Java's:
//  - Expiry commits the metadata first (one compare-and-swap, recomputed on the new base when
//    it loses), THEN deletes. Candidates come only from the expired snapshots (their manifest
//    lists, the manifests those list, the files those name); a candidate is deleted only when
//    no snapshot of the table as re-read after the commit references it (manifest lists,
//    manifests, live entries of manifests). A file a concurrent commit added is never a
//    candidate, and one a newer snapshot still names is kept.
//  - Nothing is ever deleted outside the table's location (an adopted table's files in place
//    stay, as DROP TABLE ... PURGE leaves them).
//  - Orphan removal deletes only files older than a bound (default 3 days): a commit in
//    flight has files nothing references yet.
//  - Rewrites (manifests, data files) are `replace` snapshots: rows unchanged. Compaction is
//    an overwrite that concurrent appends do not conflict with; a concurrent delete, update
//    or rewrite of a file it rewrote (or any concurrent delete files) is a conflict.
//  - v3: rewrite_manifests keeps every entry's row ids (written explicitly); compaction's new
//    files store each row's `_row_id` and `_last_updated_sequence_number` explicitly (lineage.ts),
//    so the rows keep both (the files' own first_row_id range, assigned by commitTable, is then
//    unused), and the deletion vectors of the files it replaced are removed in the same commit
//    (a vector never outlives its data file).

import { PuffinError } from '../../errors.ts';
import { randomUUID } from 'node:crypto';
import { appendSnapshot, commitTable, loadTable, newSnapshotId, toDataFileInfo, writeMetadataFile, type LoadedTable } from './commit.ts';
import { resolveLocation } from './io.ts';
import { DELETED, EXISTING, dataSequenceNumber, decodeManifest, decodeManifestList, entrySnapshotId, fileSequenceNumber, type ContentFile, type Manifest } from './manifest.ts';
import { assertWritableFormat, decodeTableMetadata, type Snapshot, type TableMetadata } from './metadata.ts';
import { findOrphanFiles, referencedFiles } from './orphans.ts';
import type { PointerStore } from './pointer-store.ts';
import { planTableScan, type IcebergDataFile } from './scan.ts';
import type { IcebergSchema } from './types.ts';
import type { TableIO } from './writer-io.ts';
import { encodeManifest, encodeManifestList, manifestListFirstRowIds, type EntryToWrite, type ManifestListRow } from './writer-manifest.ts';
import { partitionTypes } from './writer-schema.ts';
import { localReadOptions, type WriterContext } from './writer.ts';
import { buildIcebergReadSql } from './read.ts';
import { deletionVectorsOf, writeDataFiles } from './writer-data.ts';
import { keepsLineage } from './lineage.ts';

const DAY_MS = 24 * 3600 * 1000;
/** Java's defaults: history.expire.max-snapshot-age-ms (5 days), min-snapshots-to-keep (1). */
export const DEFAULT_SNAPSHOT_AGE_MS = 5 * DAY_MS;
/** Spark's remove_orphan_files default: files older than 3 days. */
export const DEFAULT_ORPHAN_AGE_MS = 3 * DAY_MS;
export const DEFAULT_TARGET_FILE_SIZE = 128 * 1024 * 1024;
export const DEFAULT_MANIFEST_TARGET_SIZE = 8 * 1024 * 1024;
const ATTEMPTS = 20;

// ---------------------------------------------------------------------------------------
// snapshots

export interface SnapshotRow {
  id: string;
  parent: string | null;
  timestamp: string;
  timestampMs: number;
  operation: string | null;
  summary: Record<string, string>;
  manifestList: string | null;
  current: boolean;
  /** Branches and tags naming it. */
  refs: string[];
}

export async function listSnapshots(store: PointerStore, name: string, io: TableIO): Promise<SnapshotRow[]> {
  const t = await loadTable(store, name, io);
  const m = t.metadata;
  return [...m.snapshots]
    .sort((a, b) => a.timestampMs - b.timestampMs || (a.sequenceNumber < b.sequenceNumber ? -1 : 1))
    .map((s) => ({
      id: String(s.snapshotId),
      parent: s.parentSnapshotId === undefined ? null : String(s.parentSnapshotId),
      timestamp: new Date(s.timestampMs).toISOString(),
      timestampMs: s.timestampMs,
      operation: s.summary.operation ?? null,
      summary: s.summary,
      manifestList: s.manifestList ?? null,
      current: m.currentSnapshotId === s.snapshotId,
      refs: Object.entries(m.refs).filter(([, r]) => r.snapshotId === s.snapshotId).map(([k]) => k),
    }));
}

// ---------------------------------------------------------------------------------------
// helpers

function locationOf(m: TableMetadata): string {
  return resolveLocation(m.location).replace(/\/+$/, '');
}

function isUnder(uri: string, location: string): boolean {
  return uri.startsWith(`${location}/`);
}

function currentOf(m: TableMetadata): Snapshot | undefined {
  return m.currentSnapshotId === null ? undefined : m.snapshots.find((s) => s.snapshotId === m.currentSnapshotId);
}

async function manifestsOf(io: TableIO, s: Snapshot): Promise<ManifestListRow[]> {
  if (!s.manifestList) throw new PuffinError('unsupported', `snapshot ${s.snapshotId} lists manifests inline (format v1); maintenance needs manifest lists`);
  const list = resolveLocation(s.manifestList);
  const bytes = await io.read(list);
  // v3 row lineage: each manifest's first_row_id (absent before v3).
  const ids = manifestListFirstRowIds(bytes, list);
  return decodeManifestList(bytes, list).map((mf, i) => ({ ...mf, path: resolveLocation(mf.path), ...(ids[i] !== undefined ? { firstRowId: ids[i] } : {}) }));
}

/** Decoded manifests, by path (they never change). */
class Manifests {
  private readonly cache = new Map<string, Promise<Manifest>>();
  constructor(private readonly io: TableIO) {}
  get(path: string): Promise<Manifest> {
    let p = this.cache.get(path);
    if (!p) {
      p = this.io.read(path).then((b) => decodeManifest(b, path));
      this.cache.set(path, p);
    }
    return p;
  }
}

/** Everything the snapshots of `m` reference: manifest lists, manifests, live content files. */
async function reachable(io: TableIO, m: TableMetadata, manifests: Manifests): Promise<Set<string>> {
  const out = new Set<string>();
  for (const s of m.snapshots) {
    if (s.manifestList) out.add(resolveLocation(s.manifestList));
    for (const mf of await manifestsOf(io, s)) {
      if (out.has(mf.path)) continue;
      out.add(mf.path);
      for (const e of (await manifests.get(mf.path)).entries) if (e.status !== DELETED) out.add(resolveLocation(e.file.filePath));
    }
  }
  return out;
}

/** A metadata-only commit: `compute` builds the new metadata from a base (recomputed on every attempt). */
async function commitMetadata(
  store: PointerStore,
  name: string,
  io: TableIO,
  compute: (base: LoadedTable) => Promise<{ metadata: TableMetadata; attemptFiles: string[] } | undefined>,
): Promise<{ base: LoadedTable; metadataLocation: string; metadata: TableMetadata } | { base: LoadedTable; metadataLocation?: undefined; metadata?: undefined }> {
  const original = await loadTable(store, name, io);
  // v3: expiry changes no snapshot; rewrite_manifests keeps every entry's row ids.
  assertWritableFormat(original.metadata, name, { v3: true });
  let base = original;
  for (let attempt = 1; ; attempt++) {
    const next = await compute(base);
    if (!next) return { base };
    const metadataLocation = await writeMetadataFile(io, next.metadata, base.metadataLocation, name);
    if (await store.compareAndSwap(name, base.metadataLocation, metadataLocation)) return { base, metadataLocation, metadata: next.metadata };
    await Promise.all([metadataLocation, ...next.attemptFiles].map((f) => io.delete(f).catch(() => undefined)));
    if (attempt >= ATTEMPTS) throw new PuffinError('conflict', `table '${name}': commit lost the race ${attempt} times in a row; giving up`, { table: name });
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(250, 10 * 2 ** Math.min(attempt, 5))));
    const current = await store.get(name);
    if (current === undefined) throw new PuffinError('conflict', `table '${name}' was dropped while it was being maintained`);
    base = { name, metadataLocation: current, metadata: decodeTableMetadata(await io.read(current), current) };
    if (base.metadata.tableUuid !== original.metadata.tableUuid) throw new PuffinError('conflict', `table '${name}' was replaced by another table (uuid ${base.metadata.tableUuid}) while it was being maintained`, { table: name });
  }
}

// ---------------------------------------------------------------------------------------
// expire snapshots

export interface ExpireOptions {
  /** Expire snapshots older than this (ms since the epoch); default now - history.expire.max-snapshot-age-ms (5 days). */
  olderThanMs?: number;
  /** Keep at least this many of the newest ancestors of each branch; default history.expire.min-snapshots-to-keep (1). */
  retainLast?: number;
  now?: () => number;
}

export interface ExpireReport {
  table: string;
  snapshotsExpired: number;
  snapshotsRetained: number;
  manifestListsDeleted: number;
  manifestsDeleted: number;
  dataFilesDeleted: number;
  deleteFilesDeleted: number;
  bytesDeleted: number;
  /** Unreferenced files outside the table's location, left in place. */
  filesKeptOutsideLocation: number;
  /** Every file deleted, sorted. */
  deleted: string[];
  expiredSnapshotIds: string[];
  metadataLocation: string;
}

function numberProperty(m: TableMetadata, key: string): number | undefined {
  const v = m.properties[key];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** The ids of the snapshots an expiry keeps. */
export function retainedSnapshots(m: TableMetadata, olderThanMs: number, retainLast: number): Set<bigint> {
  const keep = new Set<bigint>();
  const byId = new Map(m.snapshots.map((s) => [s.snapshotId, s]));
  if (m.currentSnapshotId !== null) keep.add(m.currentSnapshotId);
  const heads: { id: bigint; min: number }[] = [];
  if (m.currentSnapshotId !== null) heads.push({ id: m.currentSnapshotId, min: retainLast });
  for (const r of Object.values(m.refs)) {
    keep.add(r.snapshotId);
    if (r.type === 'branch') heads.push({ id: r.snapshotId, min: Math.max(retainLast, r.minSnapshotsToKeep ?? 0) });
  }
  for (const h of heads) {
    let s = byId.get(h.id);
    for (let n = 0; s && n < h.min; n++) {
      keep.add(s.snapshotId);
      s = s.parentSnapshotId === undefined ? undefined : byId.get(s.parentSnapshotId);
    }
  }
  for (const s of m.snapshots) if (s.timestampMs >= olderThanMs) keep.add(s.snapshotId);
  return keep;
}

export async function expireSnapshots(store: PointerStore, name: string, io: TableIO, options: ExpireOptions = {}): Promise<ExpireReport> {
  const now = (options.now ?? Date.now)();
  if (options.retainLast !== undefined && (!Number.isInteger(options.retainLast) || options.retainLast < 1)) {
    throw new PuffinError('bad_request', `retain_last must be a whole number of at least 1, got ${options.retainLast}`);
  }
  let expired: Snapshot[] = [];
  const committed = await commitMetadata(store, name, io, async (base) => {
    const m = base.metadata;
    const olderThan = options.olderThanMs ?? now - (numberProperty(m, 'history.expire.max-snapshot-age-ms') ?? DEFAULT_SNAPSHOT_AGE_MS);
    const retainLast = options.retainLast ?? numberProperty(m, 'history.expire.min-snapshots-to-keep') ?? 1;
    const keep = retainedSnapshots(m, olderThan, retainLast);
    expired = m.snapshots.filter((s) => !keep.has(s.snapshotId));
    if (expired.length === 0) return undefined;
    const metadata: TableMetadata = {
      ...m,
      lastUpdatedMs: now,
      snapshots: m.snapshots.filter((s) => keep.has(s.snapshotId)),
      snapshotLog: m.snapshotLog.filter((e) => keep.has(e.snapshotId)),
      metadataLog: [...m.metadataLog, { timestampMs: m.lastUpdatedMs, metadataFile: base.metadataLocation }],
    };
    return { metadata, attemptFiles: [] };
  });
  const report: ExpireReport = {
    table: name, snapshotsExpired: 0, snapshotsRetained: (committed.metadata ?? committed.base.metadata).snapshots.length,
    manifestListsDeleted: 0, manifestsDeleted: 0, dataFilesDeleted: 0, deleteFilesDeleted: 0, bytesDeleted: 0, filesKeptOutsideLocation: 0,
    deleted: [], expiredSnapshotIds: [], metadataLocation: committed.metadataLocation ?? committed.base.metadataLocation,
  };
  if (!committed.metadata) return report;
  report.snapshotsExpired = expired.length;
  report.expiredSnapshotIds = expired.map((s) => String(s.snapshotId));

  // What is still referenced: the metadata committed, and the table as it is now (a commit
  // that landed after ours keeps everything its snapshots name).
  const manifests = new Manifests(io);
  const keep = await reachable(io, committed.metadata, manifests);
  const latest = await store.get(name);
  if (latest && latest !== committed.metadataLocation) {
    for (const f of await reachable(io, decodeTableMetadata(await io.read(latest), latest), manifests)) keep.add(f);
  }
  const location = locationOf(committed.metadata);
  // Candidates: only what the expired snapshots referenced.
  const lists: string[] = [];
  const manifestPaths = new Map<string, number>();
  const content = new Map<string, { size: number; delete: boolean }>();
  for (const s of expired) {
    if (s.manifestList) lists.push(resolveLocation(s.manifestList));
    for (const mf of await manifestsOf(io, s)) {
      // A manifest still listed stays, and so do the live files it names (they are in `keep`).
      if (keep.has(mf.path) || manifestPaths.has(mf.path)) continue;
      manifestPaths.set(mf.path, mf.length);
      for (const e of (await manifests.get(mf.path)).entries) content.set(resolveLocation(e.file.filePath), { size: e.file.fileSizeInBytes, delete: e.file.content !== 'data' });
    }
  }
  const toDelete: { uri: string; kind: 'list' | 'manifest' | 'data' | 'delete'; size: number }[] = [];
  for (const l of lists) if (!keep.has(l)) toDelete.push({ uri: l, kind: 'list', size: 0 });
  for (const [p, size] of manifestPaths) if (!keep.has(p)) toDelete.push({ uri: p, kind: 'manifest', size });
  for (const [p, f] of content) if (!keep.has(p)) toDelete.push({ uri: p, kind: f.delete ? 'delete' : 'data', size: f.size });
  for (const d of toDelete) {
    if (!isUnder(d.uri, location)) {
      report.filesKeptOutsideLocation++;
      continue;
    }
    await io.delete(d.uri);
    report.deleted.push(d.uri);
    report.bytesDeleted += d.size;
    if (d.kind === 'list') report.manifestListsDeleted++;
    else if (d.kind === 'manifest') report.manifestsDeleted++;
    else if (d.kind === 'data') report.dataFilesDeleted++;
    else report.deleteFilesDeleted++;
  }
  report.deleted.sort();
  return report;
}

// ---------------------------------------------------------------------------------------
// remove orphan files

export interface RemoveOrphansOptions {
  /** Delete only files last modified before this (ms since the epoch); default now - 3 days. */
  olderThanMs?: number;
  now?: () => number;
  /** A file's last modification time (ms), for the age bound; undefined when unknown (then kept). */
  modifiedMs: (uri: string) => Promise<number | undefined>;
}

export interface RemoveOrphansReport {
  table: string;
  filesTotal: number;
  referenced: number;
  orphansFound: number;
  /** Orphans newer than the bound (perhaps a commit in flight), left in place. */
  orphansKeptTooNew: number;
  filesDeleted: number;
  bytesDeleted: number;
  deleted: string[];
  olderThan: string;
}

export async function removeOrphanFiles(store: PointerStore, name: string, io: TableIO, options: RemoveOrphansOptions): Promise<RemoveOrphansReport> {
  const olderThan = options.olderThanMs ?? (options.now ?? Date.now)() - DEFAULT_ORPHAN_AGE_MS;
  const found = await findOrphanFiles(store, name, io);
  const t = await loadTable(store, name, io);
  const location = locationOf(t.metadata);
  // The table may have changed since the listing: whatever its metadata now references stays.
  const refsNow = await referencedFiles(t.metadataLocation, io);
  const report: RemoveOrphansReport = {
    table: name, filesTotal: found.filesTotal, referenced: found.referenced, orphansFound: found.orphans.length,
    orphansKeptTooNew: 0, filesDeleted: 0, bytesDeleted: 0, deleted: [], olderThan: new Date(olderThan).toISOString(),
  };
  for (const uri of found.orphans) {
    if (!isUnder(uri, location) || refsNow.has(uri)) continue;
    const modified = await options.modifiedMs(uri);
    if (modified === undefined || modified >= olderThan) {
      report.orphansKeptTooNew++;
      continue;
    }
    const size = (await io.read(uri).catch(() => new Uint8Array())).byteLength;
    await io.delete(uri);
    report.deleted.push(uri);
    report.filesDeleted++;
    report.bytesDeleted += size;
  }
  return report;
}

// ---------------------------------------------------------------------------------------
// rewrite manifests

export interface RewriteManifestsOptions {
  targetBytes?: number;
  now?: () => number;
}

export interface RewriteManifestsReport {
  table: string;
  snapshotId: string | null;
  manifestsRewritten: number;
  manifestsAdded: number;
  manifestsKept: number;
  entries: number;
  bytesRewritten: number;
  metadataLocation: string;
}

export async function rewriteManifests(store: PointerStore, name: string, io: TableIO, options: RewriteManifestsOptions = {}): Promise<RewriteManifestsReport> {
  const manifests = new Manifests(io);
  let stats = { rewritten: 0, added: 0, kept: 0, entries: 0, bytes: 0, snapshotId: null as bigint | null };
  const committed = await commitMetadata(store, name, io, async (base) => {
    const m = base.metadata;
    const parent = currentOf(m);
    if (!parent) return undefined;
    const target = options.targetBytes ?? numberProperty(m, 'commit.manifest.target-size-bytes') ?? DEFAULT_MANIFEST_TARGET_SIZE;
    const rows = await manifestsOf(io, parent);
    // Small data manifests, by spec; delete manifests are kept as they are (as Java's action does).
    const bySpec = new Map<number, ManifestListRow[]>();
    for (const mf of rows) if (mf.content === 'data' && mf.length < target) bySpec.set(mf.partitionSpecId, [...(bySpec.get(mf.partitionSpecId) ?? []), mf]);
    const groups = [...bySpec.values()].filter((g) => g.length >= 2);
    if (groups.length === 0) return undefined;
    const replaced = new Set(groups.flat().map((g) => g.path));
    const seq = m.lastSequenceNumber + 1n;
    const snapshotId = newSnapshotId();
    const schema = m.schemas.find((s) => s.schemaId === m.currentSchemaId) as IcebergSchema;
    const location = locationOf(m);
    const attemptFiles: string[] = [];
    const newRows: ManifestListRow[] = [];
    const v3 = m.formatVersion >= 3;
    stats = { rewritten: replaced.size, added: 0, kept: rows.length - replaced.size, entries: 0, bytes: 0, snapshotId };
    for (const group of groups) {
      const spec = m.partitionSpecs.find((s) => s.specId === group[0].partitionSpecId);
      if (!spec) throw new PuffinError('bad_request', `table '${name}': partition spec ${group[0].partitionSpecId} is not defined`);
      const entries: EntryToWrite[] = [];
      let bytes = 0;
      for (const mf of group) {
        bytes += mf.length;
        const manifest = await manifests.get(mf.path);
        // v3: every entry keeps its first row id, written explicitly (an entry without one
        // inherits it from its manifest's, in entry order), so no row id changes.
        const rowIds = new Map<ContentFile, bigint>();
        let inherited = mf.firstRowId;
        for (const e of manifest.entries) {
          if (e.file.firstRowId !== undefined) rowIds.set(e.file, e.file.firstRowId);
          else if (inherited !== undefined) {
            rowIds.set(e.file, inherited);
            inherited += BigInt(e.file.recordCount);
          }
        }
        for (const e of manifest.entries) {
          if (e.status === DELETED) continue;
          entries.push({
            status: EXISTING, snapshotId: entrySnapshotId(e, mf), sequenceNumber: dataSequenceNumber(e, mf), fileSequenceNumber: fileSequenceNumber(e, mf), file: toDataFileInfo(e.file, spec, m),
            ...(v3 ? { firstRowId: rowIds.get(e.file) ?? null } : {}),
          });
        }
      }
      stats.bytes += bytes;
      stats.entries += entries.length;
      const parts = Math.max(1, Math.ceil(bytes / target));
      const per = Math.ceil(entries.length / parts);
      for (let i = 0; i < entries.length; i += per) {
        const chunk = entries.slice(i, i + per);
        const encoded = encodeManifest(schema, spec, partitionTypes(schema, spec), chunk, 'data', m.formatVersion);
        // v3: a manifest whose entries all carry their ids keeps the lowest as its own (never
        // inherited from); one with an entry lacking an id gets a fresh range below.
        const explicit = chunk.map((e) => e.firstRowId);
        const manifestFirstRowId = v3 && explicit.length && explicit.every((x) => typeof x === 'bigint') ? (explicit as bigint[]).reduce((a, b) => (b < a ? b : a)) : undefined;
        const path = `${location}/metadata/${randomUUID()}-m${newRows.length}.avro`;
        await io.write(path, encoded.bytes);
        attemptFiles.push(path);
        const s = encoded.summary;
        newRows.push({
          path, length: encoded.bytes.length, partitionSpecId: spec.specId, content: 'data', sequenceNumber: seq,
          ...(manifestFirstRowId !== undefined ? { firstRowId: manifestFirstRowId } : {}),
          minSequenceNumber: s.minExplicitSequenceNumber ?? seq, addedSnapshotId: snapshotId,
          addedFilesCount: 0, existingFilesCount: s.existingFiles, deletedFilesCount: 0,
          addedRowsCount: 0n, existingRowsCount: s.existingRows, deletedRowsCount: 0n,
          partitions: s.partitions.map((p) => ({ containsNull: p.containsNull, containsNaN: p.containsNaN, ...(p.lower ? { lowerBound: p.lower } : {}), ...(p.upper ? { upperBound: p.upper } : {}) })),
        });
      }
    }
    stats.added = newRows.length;
    let all = [...newRows, ...rows.filter((r) => !replaced.has(r.path))];
    // v3 row lineage, as commit.ts's: a data manifest without a first_row_id gets the next
    // range (none does when every rewritten entry had an id: next-row-id stays).
    const firstRowId = v3 ? (m.nextRowId ?? 0n) : undefined;
    let nextRowId = firstRowId;
    if (nextRowId !== undefined) {
      all = all.map((r) => {
        if (r.content !== 'data' || r.firstRowId !== undefined || nextRowId === undefined) return r;
        const assigned = { ...r, firstRowId: nextRowId };
        nextRowId += (r.addedRowsCount ?? 0n) + (r.existingRowsCount ?? 0n);
        return assigned;
      });
    }
    const listPath = `${location}/metadata/snap-${snapshotId}-1-${randomUUID()}.avro`;
    await io.write(listPath, encodeManifestList(all, snapshotId, parent.snapshotId, seq, m.formatVersion, firstRowId));
    attemptFiles.push(listPath);
    const now = (options.now ?? Date.now)();
    const totals = Object.fromEntries(Object.entries(parent.summary).filter(([k]) => k.startsWith('total-')));
    const snapshot: Snapshot = {
      snapshotId, parentSnapshotId: parent.snapshotId, sequenceNumber: seq, timestampMs: now, manifestList: listPath, schemaId: m.currentSchemaId,
      summary: { operation: 'replace', 'manifests-created': String(newRows.length), 'manifests-replaced': String(replaced.size), 'manifests-kept': String(rows.length - replaced.size), 'entries-processed': String(stats.entries), ...totals },
      ...(firstRowId !== undefined && nextRowId !== undefined ? { firstRowId, addedRows: nextRowId - firstRowId } : {}),
    };
    const appended = appendSnapshot(m, base.metadataLocation, snapshot);
    return { metadata: nextRowId !== undefined ? { ...appended, nextRowId } : appended, attemptFiles };
  });
  if (!committed.metadata) {
    return { table: name, snapshotId: null, manifestsRewritten: 0, manifestsAdded: 0, manifestsKept: 0, entries: 0, bytesRewritten: 0, metadataLocation: committed.base.metadataLocation };
  }
  return { table: name, snapshotId: String(stats.snapshotId), manifestsRewritten: stats.rewritten, manifestsAdded: stats.added, manifestsKept: stats.kept, entries: stats.entries, bytesRewritten: stats.bytes, metadataLocation: committed.metadataLocation };
}

// ---------------------------------------------------------------------------------------
// rewrite data files (compaction)

export interface CompactOptions {
  /** Target size of the files written; default write.target-file-size-bytes or 128 MiB. */
  targetFileSize?: number;
}

export interface CompactReport {
  table: string;
  snapshotId: string | null;
  filesRewritten: number;
  filesAdded: number;
  bytesRewritten: number;
  bytesAdded: number;
  rows: number;
  /** Partitions (spec and partition tuple) rewritten. */
  groups: number;
  metadataLocation: string;
}

/**
 * Data files below the target size (and any with delete files), per partition, rewritten
 * into files of about the target size with their deletes applied, in one `replace`
 * snapshot. A partition is rewritten when it has two or more such files, or one with deletes.
 */
export async function rewriteDataFiles(ctx: WriterContext, name: string, options: CompactOptions = {}): Promise<CompactReport> {
  const base = await loadTable(ctx.store, name, ctx.io);
  // v3: the rows keep their lineage (read with it, written explicitly).
  assertWritableFormat(base.metadata, name, { v3: true });
  const m = base.metadata;
  const target = options.targetFileSize ?? numberProperty(m, 'write.target-file-size-bytes') ?? DEFAULT_TARGET_FILE_SIZE;
  if (!Number.isFinite(target) || target <= 0) throw new PuffinError('bad_request', `the target file size must be a positive number of bytes, got ${target}`);
  const none: CompactReport = { table: name, snapshotId: null, filesRewritten: 0, filesAdded: 0, bytesRewritten: 0, bytesAdded: 0, rows: 0, groups: 0, metadataLocation: base.metadataLocation };
  const scan = await planTableScan({ metadataLocation: base.metadataLocation, tableUri: m.location, metadata: m, io: ctx.io });
  const groups = new Map<string, IcebergDataFile[]>();
  for (const f of scan.dataFiles) {
    if (f.sizeBytes >= target && f.deletes.length === 0) continue;
    const key = JSON.stringify([f.specId, f.partition]);
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  // Bins of about the target size, per partition.
  const bins: IcebergDataFile[][] = [];
  let groupCount = 0;
  for (const files of groups.values()) {
    if (files.length < 2 && !files.some((f) => f.deletes.length > 0)) continue;
    groupCount++;
    files.sort((a, b) => b.sizeBytes - a.sizeBytes);
    let bin: IcebergDataFile[] = [];
    let size = 0;
    for (const f of files) {
      if (bin.length && size + f.sizeBytes > target) {
        bins.push(bin);
        bin = [];
        size = 0;
      }
      bin.push(f);
      size += f.sizeBytes;
    }
    if (bin.length) bins.push(bin);
  }
  // A lone small file in a bin of its own, without deletes, gains nothing.
  const work = bins.filter((b) => b.length > 1 || b[0].deletes.length > 0);
  if (work.length === 0) return none;
  const rewriting = work.flat();
  const readOptions = await localReadOptions(ctx, rewriting);
  const added = [];
  let rows = 0;
  try {
    for (const bin of work) {
      const read = buildIcebergReadSql({ ...scan, dataFiles: bin }, undefined, { ...readOptions, lineage: keepsLineage(m) });
      const written = await writeDataFiles({ conn: ctx.conn, table: name, metadata: m, selectSql: `SELECT * FROM (${read}) __t`, stagingDir: ctx.stagingDir, io: ctx.io, lineage: keepsLineage(m) });
      added.push(...written.files);
      rows += written.rows;
    }
  } catch (err) {
    await Promise.all(added.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
    throw err;
  }
  // v3: a deletion vector must not outlive its data file: the vectors of the files replaced
  // (their rows are applied in the new files) are removed in the same commit.
  const vectors = m.formatVersion >= 3 ? rewriting.flatMap(deletionVectorsOf) : [];
  let c;
  try {
    c = await commitTable(ctx.store, name, {
      operation: 'overwrite', added, removed: rewriting.map((f) => f.path), isolation: 'snapshot', snapshotOperation: 'replace',
      ...(vectors.length ? { removedDeletes: vectors } : {}),
    }, { io: ctx.io, base });
  } catch (err) {
    if (err instanceof PuffinError && err.code === 'conflict') {
      await Promise.all(added.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
      throw new PuffinError('conflict', `rewrite_data_files on '${name}': ${err.message.replace(/; re-run the statement$/, '')}; nothing was committed, run the compaction again`, { table: name });
    }
    throw err;
  }
  return {
    table: name,
    snapshotId: String(c.snapshotId),
    filesRewritten: rewriting.length,
    filesAdded: added.length,
    bytesRewritten: rewriting.reduce((n, f) => n + f.sizeBytes, 0),
    bytesAdded: added.reduce((n, f) => n + f.fileSizeInBytes, 0),
    rows,
    groups: groupCount,
    metadataLocation: c.metadataLocation,
  };
}
