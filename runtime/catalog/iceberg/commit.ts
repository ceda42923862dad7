// Atomic commits of Iceberg tables through a PointerStore. A commit writes everything new
// under fresh names (manifest, manifest list, metadata.json) and only then swaps the table's
// metadata pointer by compare-and-swap, so a reader sees the old table or the new one,
// never a half-made commit. A commit that loses the race re-reads the new base, checks for
// real conflicts, and retries on it with the data files (and the manifest of added files)
// it already wrote.
//
// Conflict rules (isolation per operation, as Iceberg's own defaults):
//  - append: never conflicts; it is re-applied on whatever the base has become.
//  - overwrite (copy-on-write DELETE/UPDATE): conflicts when a file it rewrote is no longer
//    live in the new base (a concurrent delete/update removed or rewrote it). Under
//    'serializable' isolation (the default for DELETE/UPDATE, as Iceberg's
//    write.delete.isolation-level), it also conflicts when a concurrent snapshot added a data
//    file holding rows that match its predicate (checked by the caller's `conflictingAdds`).
//    Under 'snapshot' isolation such appended rows simply survive.
//  - row-delta (merge-on-read DELETE/UPDATE): as overwrite, with the data files its position
//    deletes name in place of removed files.
//  - overwrite and row-delta also conflict with a concurrent snapshot that added delete files.
//  - a schema change conflicts, except for an append whose files still read right under the
//    new schema (appendSurvivesSchemaChange); a partition-spec or table-uuid change conflicts.

import { randomBytes, randomUUID } from 'node:crypto';
import { PuffinError } from '../../errors.ts';
import { resolveLocation } from './io.ts';
import { ADDED, DELETED, dataSequenceNumber, decodeManifest, decodeManifestList, entrySnapshotId, fileSequenceNumber, partitionValueFromAvro, type ContentFile, type FieldMap, type ManifestFile } from './manifest.ts';
import { assertWritableFormat, decodeTableMetadata, metadataFileVersion, type PartitionSpec, type Snapshot, type TableMetadata } from './metadata.ts';
import type { PointerStore } from './pointer-store.ts';
import type { IcebergSchema } from './types.ts';
import type { TableIO } from './writer-io.ts';
import { encodeManifest, encodeManifestList, manifestListFirstRowIds, type DataFileInfo, type EntryToWrite, type ManifestListRow } from './writer-manifest.ts';
import { metadataToJson } from './writer-metadata.ts';
import { partitionTypes } from './writer-schema.ts';

export interface LoadedTable {
  name: string;
  metadataLocation: string;
  metadata: TableMetadata;
}

export type IsolationLevel = 'snapshot' | 'serializable';

export type TableChange =
  | { operation: 'append'; files: DataFileInfo[] }
  | {
      operation: 'overwrite';
      added: DataFileInfo[];
      /** Paths (as the manifests record them) of the data files this change replaces. */
      removed: string[];
      isolation?: IsolationLevel;
      /**
       * Serializable isolation: given data files that concurrent snapshots added, the path of
       * one holding rows the change's predicate matches, or undefined when none does.
       */
      conflictingAdds?: (paths: string[]) => Promise<string | undefined>;
      /**
       * The snapshot's operation when it is not an overwrite: 'replace' for a rewrite that
       * keeps the table's rows (compaction, runtime/catalog/iceberg/maintenance.ts).
       */
      snapshotOperation?: 'replace';
      /** v3: deletion vectors of the removed files, removed with them (compaction). */
      removedDeletes?: { path: string; referencedDataFile: string }[];
    }
  | {
      /**
       * Merge-on-read (Iceberg's RowDelta): position delete files for rows of `referenced`
       * data files, and possibly new data files (an UPDATE's new row versions), in one
       * snapshot. Nothing is removed. Conflicts like an overwrite whose removed files are
       * `referenced`, and with any concurrent snapshot that added delete files.
       */
      operation: 'row-delta';
      added: DataFileInfo[];
      /** Position delete files, each in the partition (and spec) of the data file it names. */
      deletes: { specId: number; file: DataFileInfo }[];
      referenced: string[];
      /**
       * v3: deletion vectors this change replaces (a new vector of the same data file holds
       * their positions too), by Puffin file path and the data file each names.
       */
      removedDeletes?: { path: string; referencedDataFile: string }[];
      isolation?: IsolationLevel;
      conflictingAdds?: (paths: string[]) => Promise<string | undefined>;
    };

export interface CommitOptions {
  io: TableIO;
  /** The table as the change was computed against; loaded from the store when absent. */
  base?: LoadedTable;
  maxAttempts?: number;
  /** Extra snapshot summary properties. */
  summary?: Record<string, string>;
  now?: () => number;
}

export interface CommitResult {
  metadataLocation: string;
  metadata: TableMetadata;
  snapshotId: bigint;
  sequenceNumber: bigint;
  attempts: number;
}

const DEFAULT_ATTEMPTS = 40;

export function tableNotFound(name: string): PuffinError {
  return new PuffinError('unknown_table', `table '${name}' does not exist in the catalog`);
}

export async function loadTable(store: PointerStore, name: string, io: TableIO): Promise<LoadedTable> {
  const metadataLocation = await store.get(name);
  if (metadataLocation === undefined) throw tableNotFound(name);
  const metadata = decodeTableMetadata(await io.read(metadataLocation), metadataLocation);
  return { name, metadataLocation, metadata };
}

/** A positive 63-bit id, as Iceberg's snapshot ids are. */
export function newSnapshotId(): bigint {
  return BigInt.asUintN(63, randomBytes(8).readBigUInt64BE(0)) || 1n;
}

function tableLocation(metadata: TableMetadata, name: string): string {
  try {
    return resolveLocation(metadata.location).replace(/\/+$/, '');
  } catch {
    throw new PuffinError('unsupported', `table '${name}' records a relative location '${metadata.location}'; this writer only writes tables with absolute locations`);
  }
}

function nextMetadataUri(location: string, previous: string | undefined, metadata: TableMetadata): string {
  const prevVersion = previous ? metadataFileVersion(previous.slice(previous.lastIndexOf('/') + 1)) : undefined;
  const version = previous === undefined ? 0 : (prevVersion ?? metadata.metadataLog.length) + 1;
  return `${location}/metadata/${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`;
}

export async function writeMetadataFile(io: TableIO, metadata: TableMetadata, previous: string | undefined, name: string): Promise<string> {
  assertWritableFormat(metadata, name, { v3: true });
  const uri = nextMetadataUri(tableLocation(metadata, name), previous, metadata);
  await io.write(uri, new TextEncoder().encode(metadataToJson(metadata)));
  return uri;
}

export interface NewTable {
  schema: IcebergSchema;
  lastColumnId: number;
  spec: PartitionSpec;
  /** Absolute URI of the table's directory. */
  location: string;
  properties?: Record<string, string>;
}

/**
 * The format version a new table asks for with its `format-version` property (Iceberg's
 * reserved property, not kept in the properties): 2 by default, 3 when asked.
 */
export function requestedFormatVersion(properties: Record<string, string> | undefined): 2 | 3 {
  const v = properties?.['format-version'];
  if (v === undefined || v.trim() === '2') return 2;
  if (v.trim() === '3') return 3;
  throw new PuffinError('bad_request', `table property 'format-version' must be '2' or '3' for a new table, got '${v}'`);
}

/** The metadata of a new, empty table: format v2, or v3 when its properties ask for it. */
export function newTableMetadata(t: NewTable, now = Date.now()): TableMetadata {
  const formatVersion = requestedFormatVersion(t.properties);
  const { 'format-version': _reserved, ...properties } = t.properties ?? {};
  return {
    formatVersion,
    ...(formatVersion === 3 ? { nextRowId: 0n } : {}),
    tableUuid: randomUUID(),
    location: t.location.replace(/\/+$/, ''),
    lastSequenceNumber: 0n,
    lastUpdatedMs: now,
    lastColumnId: t.lastColumnId,
    schemas: [t.schema],
    currentSchemaId: t.schema.schemaId,
    partitionSpecs: [t.spec],
    defaultSpecId: t.spec.specId,
    lastPartitionId: Math.max(999, ...t.spec.fields.map((f) => f.fieldId)),
    sortOrders: [{ orderId: 0, fields: [] }],
    defaultSortOrderId: 0,
    properties: { 'write.format.default': 'parquet', 'write.parquet.compression-codec': 'zstd', ...properties },
    currentSnapshotId: null,
    snapshots: [],
    snapshotLog: [],
    metadataLog: [],
    refs: {},
  };
}

/** Create a table: write its first metadata file, then claim the name by CAS. */
export async function createTable(store: PointerStore, name: string, table: NewTable, io: TableIO): Promise<LoadedTable> {
  if (await store.get(name)) throw new PuffinError('conflict', `table '${name}' already exists`);
  const metadata = newTableMetadata(table);
  const metadataLocation = await writeMetadataFile(io, metadata, undefined, name);
  if (!(await store.compareAndSwap(name, undefined, metadataLocation))) throw new PuffinError('conflict', `table '${name}' already exists (created concurrently)`);
  return { name, metadataLocation, metadata };
}

// ---------------------------------------------------------------------------------------

function fieldMapRecord<T>(m: FieldMap<T> | undefined): Record<number, T> | undefined {
  if (!m) return undefined;
  const out: Record<number, T> = {};
  for (const [k, v] of m.entries()) out[k] = v;
  return out;
}

/** A manifest's file back in the writer's form (partition values decoded to Iceberg values). */
export function toDataFileInfo(file: ContentFile, spec: PartitionSpec, metadata: TableMetadata): DataFileInfo {
  const schema = metadata.schemas.find((s) => s.schemaId === metadata.currentSchemaId) as IcebergSchema;
  const types = partitionTypes(schema, spec);
  const info: DataFileInfo = {
    path: file.filePath,
    format: file.fileFormat.toUpperCase() === 'PUFFIN' ? 'PUFFIN' : 'PARQUET',
    partition: file.partition.map((raw, i) => partitionValueFromAvro(types[i], raw)),
    recordCount: file.recordCount,
    fileSizeInBytes: file.fileSizeInBytes,
  };
  const cs = fieldMapRecord(file.columnSizes);
  const vc = fieldMapRecord(file.valueCounts);
  const nc = fieldMapRecord(file.nullValueCounts);
  const nan = fieldMapRecord(file.nanValueCounts);
  const lo = fieldMapRecord(file.lowerBounds);
  const hi = fieldMapRecord(file.upperBounds);
  if (cs) info.columnSizes = cs;
  if (vc) info.valueCounts = vc;
  if (nc) info.nullValueCounts = nc;
  if (nan) info.nanValueCounts = nan;
  if (lo) info.lowerBounds = Object.fromEntries(Object.entries(lo).map(([k, v]) => [k, new Uint8Array(v)]));
  if (hi) info.upperBounds = Object.fromEntries(Object.entries(hi).map(([k, v]) => [k, new Uint8Array(v)]));
  if (file.referencedDataFile !== undefined) info.referencedDataFile = file.referencedDataFile;
  if (file.contentOffset !== undefined) info.contentOffset = file.contentOffset;
  if (file.contentSizeInBytes !== undefined) info.contentSizeInBytes = file.contentSizeInBytes;
  return info;
}

/** The live data files of the table's current snapshot: each one's spec and partition values. */
export async function liveDataFileInfos(io: TableIO, base: LoadedTable): Promise<Map<string, { specId: number; info: DataFileInfo }>> {
  const m = base.metadata;
  const out = new Map<string, { specId: number; info: DataFileInfo }>();
  for (const mf of await readManifestList(io, currentSnapshot(m))) {
    if (mf.content !== 'data') continue;
    const spec = specOf(m, mf.partitionSpecId, base.name);
    for (const e of decodeManifest(await io.read(mf.path), mf.path).entries) {
      if (e.status !== DELETED) out.set(e.file.filePath, { specId: spec.specId, info: toDataFileInfo(e.file, spec, m) });
    }
  }
  return out;
}

async function readManifestList(io: TableIO, snapshot: Snapshot | undefined): Promise<ManifestListRow[]> {
  if (!snapshot) return [];
  if (!snapshot.manifestList) throw new PuffinError('unsupported', `snapshot ${snapshot.snapshotId} lists manifests inline (format v1); this writer appends to v2 tables only`);
  const bytes = await io.read(snapshot.manifestList);
  const rows: ManifestListRow[] = decodeManifestList(bytes, snapshot.manifestList);
  // v3 row lineage: each manifest's first_row_id, carried over unchanged by later commits.
  const ids = manifestListFirstRowIds(bytes, snapshot.manifestList);
  return rows.map((r, i) => (ids[i] === undefined ? r : { ...r, firstRowId: ids[i] }));
}

function currentSnapshot(m: TableMetadata): Snapshot | undefined {
  return m.currentSnapshotId === null ? undefined : m.snapshots.find((s) => s.snapshotId === m.currentSnapshotId);
}

function specOf(m: TableMetadata, specId: number, name: string): PartitionSpec {
  const spec = m.partitionSpecs.find((s) => s.specId === specId);
  if (!spec) throw new PuffinError('bad_request', `table '${name}': partition spec ${specId} is not defined`);
  return spec;
}

/** The manifest of a change's added files, written once and reused by every attempt. */
interface AddedManifest {
  path: string;
  content?: 'data' | 'deletes';
  length: number;
  specId: number;
  summary: ReturnType<typeof encodeManifest>['summary'];
}

async function writeAddedManifest(io: TableIO, base: LoadedTable, files: DataFileInfo[], specId = base.metadata.defaultSpecId, content: 'data' | 'deletes' = 'data'): Promise<AddedManifest | undefined> {
  if (files.length === 0) return undefined;
  const m = base.metadata;
  const spec = specOf(m, specId, base.name);
  const schema = m.schemas.find((s) => s.schemaId === m.currentSchemaId) as IcebergSchema;
  const entries: EntryToWrite[] = files.map((file) => ({ status: ADDED, snapshotId: null, sequenceNumber: null, fileSequenceNumber: null, file }));
  const encoded = encodeManifest(schema, spec, partitionTypes(schema, spec), entries, content, m.formatVersion);
  const path = `${tableLocation(m, base.name)}/metadata/${randomUUID()}-m0.avro`;
  await io.write(path, encoded.bytes);
  return { path, length: encoded.bytes.length, specId: spec.specId, summary: encoded.summary, content };
}

/** The delete manifests of a row delta: one per partition spec of the data files its deletes name. */
async function writeDeleteManifests(io: TableIO, base: LoadedTable, deletes: { specId: number; file: DataFileInfo }[]): Promise<AddedManifest[]> {
  const bySpec = new Map<number, DataFileInfo[]>();
  for (const d of deletes) bySpec.set(d.specId, [...(bySpec.get(d.specId) ?? []), d.file]);
  const out: AddedManifest[] = [];
  for (const [specId, files] of bySpec) {
    const written = await writeAddedManifest(io, base, files, specId, 'deletes');
    if (written) out.push(written);
  }
  return out;
}

function addedRow(a: AddedManifest, snapshotId: bigint, seq: bigint): ManifestListRow {
  return {
    path: a.path,
    length: a.length,
    partitionSpecId: a.specId,
    content: a.content ?? 'data',
    sequenceNumber: seq,
    minSequenceNumber: seq,
    addedSnapshotId: snapshotId,
    addedFilesCount: a.summary.addedFiles,
    existingFilesCount: 0,
    deletedFilesCount: 0,
    addedRowsCount: a.summary.addedRows,
    existingRowsCount: 0n,
    deletedRowsCount: 0n,
    partitions: a.summary.partitions.map((p) => ({
      containsNull: p.containsNull,
      containsNaN: p.containsNaN,
      ...(p.lower ? { lowerBound: p.lower } : {}),
      ...(p.upper ? { upperBound: p.upper } : {}),
    })),
  };
}

interface BuiltSnapshot {
  metadata: TableMetadata;
  snapshotId: bigint;
  sequenceNumber: bigint;
  /** Files written for this attempt only (manifest list, rewritten manifests): removed if it loses. */
  attemptFiles: string[];
}

const deleteKey = (path: string, referenced: string | undefined): string => `${path}\u0000${referenced ?? ''}`;

/**
 * Rewrite the base's manifests that hold removed files: those entries become DELETED.
 * `removed` names data files by path; `removedDeletes` (v3) deletion vectors by deleteKey.
 */
async function rewriteForRemoval(
  io: TableIO,
  base: LoadedTable,
  manifests: ManifestListRow[],
  removed: Set<string>,
  snapshotId: bigint,
  seq: bigint,
  attemptFiles: string[],
  removedDeletes: Set<string> = new Set(),
): Promise<{ rows: ManifestListRow[]; removedFiles: DataFileInfo[]; removedDeleteFiles: DataFileInfo[] }> {
  const rows: ManifestListRow[] = [];
  const removedFiles: DataFileInfo[] = [];
  const removedDeleteFiles: DataFileInfo[] = [];
  const found = new Set<string>();
  const m = base.metadata;
  const v3 = m.formatVersion >= 3;
  const schema = m.schemas.find((s) => s.schemaId === m.currentSchemaId) as IcebergSchema;
  for (const mf of manifests) {
    const isData = mf.content === 'data';
    const keyOf = (f: ContentFile): string => (isData ? f.filePath : deleteKey(f.filePath, f.referencedDataFile));
    const wanted = isData ? removed : removedDeletes;
    if (wanted.size === 0) {
      rows.push(mf);
      continue;
    }
    const manifest = decodeManifest(await io.read(mf.path), mf.path);
    // v3: data files with no first_row_id inherit one from the manifest's, in entry order.
    let nextInherited = isData ? mf.firstRowId : undefined;
    const rowIds = new Map<ContentFile, bigint>();
    for (const e of manifest.entries) {
      if (!isData) break;
      if (e.file.firstRowId !== undefined) rowIds.set(e.file, e.file.firstRowId);
      else if (nextInherited !== undefined) {
        rowIds.set(e.file, nextInherited);
        nextInherited += BigInt(e.file.recordCount);
      }
    }
    const live = manifest.entries.filter((e) => e.status !== DELETED);
    if (!live.some((e) => wanted.has(keyOf(e.file)))) {
      rows.push(mf);
      continue;
    }
    const spec = specOf(m, mf.partitionSpecId, base.name);
    const entries: EntryToWrite[] = live.map((e) => {
      const file = toDataFileInfo(e.file, spec, m);
      const isRemoved = wanted.has(keyOf(e.file));
      if (isRemoved) {
        found.add(keyOf(e.file));
        (isData ? removedFiles : removedDeleteFiles).push(file);
      }
      return {
        status: isRemoved ? DELETED : 0,
        snapshotId: isRemoved ? snapshotId : entrySnapshotId(e, mf),
        sequenceNumber: dataSequenceNumber(e, mf),
        fileSequenceNumber: fileSequenceNumber(e, mf),
        file,
        ...(v3 ? { firstRowId: rowIds.get(e.file) ?? null } : {}),
      };
    });
    const encoded = encodeManifest(schema, spec, partitionTypes(schema, spec), entries, mf.content, m.formatVersion);
    const path = `${tableLocation(m, base.name)}/metadata/${randomUUID()}-m1.avro`;
    await io.write(path, encoded.bytes);
    attemptFiles.push(path);
    const s = encoded.summary;
    rows.push({
      path,
      length: encoded.bytes.length,
      partitionSpecId: spec.specId,
      content: mf.content,
      // Its entries carry their row ids explicitly: the manifest keeps its range of ids.
      ...(mf.firstRowId !== undefined ? { firstRowId: mf.firstRowId } : {}),
      sequenceNumber: seq,
      minSequenceNumber: s.minExplicitSequenceNumber ?? seq,
      addedSnapshotId: snapshotId,
      addedFilesCount: 0,
      existingFilesCount: s.existingFiles,
      deletedFilesCount: s.deletedFiles,
      addedRowsCount: 0n,
      existingRowsCount: s.existingRows,
      deletedRowsCount: s.deletedRows,
      partitions: s.partitions.map((p) => ({ containsNull: p.containsNull, containsNaN: p.containsNaN, ...(p.lower ? { lowerBound: p.lower } : {}), ...(p.upper ? { upperBound: p.upper } : {}) })),
    });
  }
  const missing = [...removed].filter((p) => !found.has(p));
  if (missing.length) throw rewrittenConflict(base.name, missing);
  const missingDeletes = [...removedDeletes].filter((p) => !found.has(p));
  if (missingDeletes.length) {
    throw new PuffinError('conflict', `table '${base.name}': a concurrent commit replaced ${missingDeletes.length} deletion vector(s) this change replaces; re-run the statement`, { table: base.name });
  }
  return { rows, removedFiles, removedDeleteFiles };
}

async function buildSnapshot(io: TableIO, base: LoadedTable, change: TableChange, added: AddedManifest | undefined, addedFiles: DataFileInfo[], extraSummary: Record<string, string>, now: number, deleteManifests: AddedManifest[] = []): Promise<BuiltSnapshot> {
  const m = base.metadata;
  const parent = currentSnapshot(m);
  const seq = m.lastSequenceNumber + 1n;
  const snapshotId = newSnapshotId();
  const baseManifests = await readManifestList(io, parent);
  let rows: ManifestListRow[];
  let removedFiles: DataFileInfo[] = [];
  let removedDeleteFiles: DataFileInfo[] = [];
  const attemptFiles: string[] = [];
  const removedDeletes = change.operation === 'row-delta' || change.operation === 'overwrite' ? (change.removedDeletes ?? []) : [];
  const removedDeleteKeys = new Set(removedDeletes.map((d) => deleteKey(d.path, d.referencedDataFile)));
  if (change.operation === 'overwrite' && change.removed.length) {
    const r = await rewriteForRemoval(io, base, baseManifests, new Set(change.removed), snapshotId, seq, attemptFiles, removedDeleteKeys);
    rows = r.rows;
    removedFiles = r.removedFiles;
    removedDeleteFiles = r.removedDeleteFiles;
  } else if (removedDeletes.length) {
    const r = await rewriteForRemoval(io, base, baseManifests, new Set(), snapshotId, seq, attemptFiles, removedDeleteKeys);
    rows = r.rows;
    removedDeleteFiles = r.removedDeleteFiles;
  } else {
    rows = baseManifests;
  }
  if (added) rows = [addedRow(added, snapshotId, seq), ...rows];
  if (deleteManifests.length) rows = [...deleteManifests.map((d) => addedRow(d, snapshotId, seq)), ...rows];
  const deleteFiles = change.operation === 'row-delta' ? change.deletes.map((d) => d.file) : [];
  const deleteRows = deleteFiles.reduce((n, f) => n + f.recordCount, 0);
  const removedDeleteRows = removedDeleteFiles.reduce((n, f) => n + f.recordCount, 0);

  // v3 row lineage (spec: Row Lineage): every data manifest without a first_row_id gets the
  // next range of ids, as long as its added and existing rows; the snapshot records the first
  // id and how many it assigned, and the table's next-row-id moves past them.
  let firstRowId: bigint | undefined;
  let assignedRows = 0n;
  if (m.formatVersion >= 3) {
    firstRowId = m.nextRowId ?? 0n;
    let next = firstRowId;
    rows = rows.map((r) => {
      if (r.content !== 'data' || r.firstRowId !== undefined) return r;
      const assigned = { ...r, firstRowId: next };
      next += (r.addedRowsCount ?? 0n) + (r.existingRowsCount ?? 0n);
      return assigned;
    });
    assignedRows = next - firstRowId;
  }

  const dataRows = rows.filter((r) => r.content === 'data');
  const totalFiles = dataRows.reduce((n, r) => n + (r.addedFilesCount ?? 0) + (r.existingFilesCount ?? 0), 0);
  const totalRecords = dataRows.reduce((n, r) => n + (r.addedRowsCount ?? 0n) + (r.existingRowsCount ?? 0n), 0n);
  const addedSize = addedFiles.reduce((n, f) => n + f.fileSizeInBytes, 0);
  const removedSize = removedFiles.reduce((n, f) => n + f.fileSizeInBytes, 0);
  const parentSize = parent ? Number(parent.summary['total-files-size'] ?? NaN) : 0;
  const summary: Record<string, string> = {
    operation: change.operation === 'row-delta' ? (addedFiles.length ? 'overwrite' : 'delete') : change.operation === 'overwrite' && change.snapshotOperation ? change.snapshotOperation : change.operation,
    'added-data-files': String(addedFiles.length),
    'added-records': String(addedFiles.reduce((n, f) => n + f.recordCount, 0)),
    'added-files-size': String(addedSize),
    ...(removedFiles.length
      ? {
          'deleted-data-files': String(removedFiles.length),
          'deleted-records': String(removedFiles.reduce((n, f) => n + f.recordCount, 0)),
          'removed-files-size': String(removedSize),
        }
      : {}),
    'changed-partition-count': String(new Set([...addedFiles, ...removedFiles].map((f) => JSON.stringify(f.partition, (_k, v) => (typeof v === 'bigint' ? String(v) : v)))).size),
    'total-records': String(totalRecords),
    'total-data-files': String(totalFiles),
    ...(Number.isFinite(parentSize) ? { 'total-files-size': String(parentSize + addedSize - removedSize) } : {}),
    ...(deleteFiles.length
      ? {
          'added-delete-files': String(deleteFiles.length),
          'added-position-delete-files': String(deleteFiles.length),
          'added-position-deletes': String(deleteRows),
        }
      : {}),
    ...(removedDeleteFiles.length ? { 'removed-delete-files': String(removedDeleteFiles.length), 'removed-position-deletes': String(removedDeleteRows) } : {}),
    'total-delete-files': String(Number(parent?.summary['total-delete-files'] ?? '0') + deleteFiles.length - removedDeleteFiles.length),
    'total-position-deletes': String(Number(parent?.summary['total-position-deletes'] ?? '0') + deleteRows - removedDeleteRows),
    'total-equality-deletes': parent?.summary['total-equality-deletes'] ?? '0',
    ...extraSummary,
  };

  const location = tableLocation(m, base.name);
  const listPath = `${location}/metadata/snap-${snapshotId}-1-${randomUUID()}.avro`;
  await io.write(listPath, encodeManifestList(rows, snapshotId, parent?.snapshotId, seq, m.formatVersion, firstRowId));
  attemptFiles.push(listPath);

  const snapshot: Snapshot = {
    snapshotId,
    ...(parent ? { parentSnapshotId: parent.snapshotId } : {}),
    sequenceNumber: seq,
    timestampMs: now,
    manifestList: listPath,
    summary,
    schemaId: m.currentSchemaId,
    ...(firstRowId !== undefined ? { firstRowId, addedRows: assignedRows } : {}),
  };
  const appended = appendSnapshot(m, base.metadataLocation, snapshot);
  const metadata = firstRowId !== undefined ? { ...appended, nextRowId: firstRowId + assignedRows } : appended;
  return { metadata, snapshotId, sequenceNumber: seq, attemptFiles };
}

/**
 * `m` with `snapshot` committed on the main branch: current snapshot, sequence number,
 * snapshot and metadata logs, and the main ref moved to it keeping the ref's other
 * properties (retention: min-snapshots-to-keep, max-snapshot-age-ms, max-ref-age-ms).
 * Every snapshot-producing commit (appends, overwrites, row deltas, rewrite_manifests) goes
 * through here. `previousLocation` is the metadata file `m` was read from.
 */
export function appendSnapshot(m: TableMetadata, previousLocation: string, snapshot: Snapshot): TableMetadata {
  const { snapshotId, timestampMs } = snapshot;
  return {
    ...m,
    lastSequenceNumber: snapshot.sequenceNumber > m.lastSequenceNumber ? snapshot.sequenceNumber : m.lastSequenceNumber,
    lastUpdatedMs: timestampMs,
    currentSnapshotId: snapshotId,
    snapshots: [...m.snapshots, snapshot],
    snapshotLog: [...m.snapshotLog, { timestampMs, snapshotId }],
    metadataLog: [...m.metadataLog, { timestampMs: m.lastUpdatedMs, metadataFile: previousLocation }],
    refs: { ...m.refs, main: { ...m.refs.main, snapshotId, type: 'branch' } },
  };
}

function rewrittenConflict(name: string, missing: string[]): PuffinError {
  return new PuffinError('conflict', `table '${name}': a concurrent commit removed or rewrote ${missing.length} data file(s) this change rewrites (e.g. ${missing[0]}); re-run the statement`, { table: name, files: missing.slice(0, 10) });
}

/** Paths of the live data files of the current snapshot. */
async function liveDataFiles(io: TableIO, m: TableMetadata): Promise<Set<string>> {
  const out = new Set<string>();
  for (const mf of await readManifestList(io, currentSnapshot(m))) {
    if (mf.content !== 'data') continue;
    for (const e of decodeManifest(await io.read(mf.path), mf.path).entries) if (e.status !== DELETED) out.add(e.file.filePath);
  }
  return out;
}

/** Snapshots committed after `since` on the way to `m`'s current snapshot (newest first). */
function snapshotsSince(m: TableMetadata, since: bigint | null): Snapshot[] {
  const out: Snapshot[] = [];
  let s = currentSnapshot(m);
  while (s && s.snapshotId !== since) {
    out.push(s);
    s = s.parentSnapshotId === undefined ? undefined : m.snapshots.find((x) => x.snapshotId === s?.parentSnapshotId);
  }
  return out;
}

/** Data files that the given snapshots added. */
async function filesAddedBy(io: TableIO, snapshots: Snapshot[]): Promise<string[]> {
  const ids = new Set(snapshots.map((s) => s.snapshotId));
  const out: string[] = [];
  for (const s of snapshots) {
    for (const mf of await readManifestList(io, s)) {
      if (mf.content !== 'data' || mf.addedSnapshotId !== s.snapshotId || !mf.addedFilesCount) continue;
      const manifest = decodeManifest(await io.read(mf.path), mf.path);
      for (const e of manifest.entries) if (e.status === ADDED && ids.has(entrySnapshotId(e, mf))) out.push(e.file.filePath);
    }
  }
  return [...new Set(out)];
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Whether an append's files, written for `from`'s current schema, read right under `to`'s
 * (a concurrent ALTER TABLE committed meanwhile): every column of `to` that the files hold
 * (same field id) has the same type and is not newly required, and every column `to` adds
 * is optional (older files read NULL for it). Dropped and renamed columns are fine: reads
 * go by field id. Anything else (a type promotion, SET NOT NULL) conflicts.
 */
function appendSurvivesSchemaChange(from: TableMetadata, to: TableMetadata): boolean {
  const a = from.schemas.find((s) => s.schemaId === from.currentSchemaId);
  const b = to.schemas.find((s) => s.schemaId === to.currentSchemaId);
  if (!a || !b) return false;
  return b.fields.every((f) => {
    const old = a.fields.find((x) => x.id === f.id);
    if (!old) return !f.required && f.id > from.lastColumnId;
    return JSON.stringify(old.type) === JSON.stringify(f.type) && (old.required || !f.required);
  });
}

/**
 * Commit `change` to table `name`: build a snapshot on the current base, write its metadata
 * to a fresh file, and swap the pointer. On a lost race: re-read, check conflicts, retry
 * (bounded), reusing the data files and the manifest of added files already written.
 */
export async function commitTable(store: PointerStore, name: string, change: TableChange, options: CommitOptions): Promise<CommitResult> {
  const io = options.io;
  const maxAttempts = options.maxAttempts ?? DEFAULT_ATTEMPTS;
  const now = options.now ?? Date.now;
  const original = options.base ?? (await loadTable(store, name, io));
  assertWritableFormat(original.metadata, name, { v3: true });
  const addedFiles = change.operation === 'append' ? change.files : change.added;
  const added = await writeAddedManifest(io, original, addedFiles);
  const deleteManifests = change.operation === 'row-delta' ? await writeDeleteManifests(io, original, change.deletes) : [];
  try {
    return await commitAttempts(store, name, change, options, original, added, addedFiles, maxAttempts, now, deleteManifests);
  } catch (err) {
    // Only a definitive refusal (a conflict, never an unknown outcome such as an unreachable
    // store, where the swap may have happened) makes the added manifest safe to delete.
    if (err instanceof PuffinError && err.code === 'conflict') {
      await Promise.all([...(added ? [added] : []), ...deleteManifests].map((a) => io.delete(a.path).catch(() => undefined)));
    }
    throw err;
  }
}

async function commitAttempts(
  store: PointerStore,
  name: string,
  change: TableChange,
  options: CommitOptions,
  original: LoadedTable,
  added: AddedManifest | undefined,
  addedFiles: DataFileInfo[],
  maxAttempts: number,
  now: () => number,
  deleteManifests: AddedManifest[] = [],
): Promise<CommitResult> {
  const io = options.io;
  let base = original;
  const checkedSince = new Set<bigint>();
  for (let attempt = 1; ; attempt++) {
    const touched = change.operation === 'overwrite' ? change.removed : change.operation === 'row-delta' ? change.referenced : [];
    if (base !== original && touched.length) {
      const live = await liveDataFiles(io, base.metadata);
      const missing = touched.filter((p) => !live.has(p));
      if (missing.length) throw rewrittenConflict(name, missing);
    }
    if (base !== original && change.operation !== 'append' && touched.length) {
      // Rows deleted by a concurrent merge-on-read commit: an overwrite would bring them back
      // (it read the files before those deletes), a row delta could delete or update them twice.
      const deleting = snapshotsSince(base.metadata, original.metadata.currentSnapshotId).find((s) => Number(s.summary['added-delete-files'] ?? '0') > 0);
      if (deleting) {
        throw new PuffinError('conflict', `table '${name}': a concurrent commit (snapshot ${deleting.snapshotId}) added delete files while this change was written; re-run the statement`, { table: name });
      }
    }
    if (base !== original && change.operation !== 'append' && (change.isolation ?? 'serializable') === 'serializable' && change.conflictingAdds) {
      const concurrent = snapshotsSince(base.metadata, original.metadata.currentSnapshotId).filter((s) => !checkedSince.has(s.snapshotId));
      const paths = await filesAddedBy(io, concurrent);
      for (const s of concurrent) checkedSince.add(s.snapshotId);
      const hit = paths.length ? await change.conflictingAdds(paths) : undefined;
      if (hit) {
        throw new PuffinError('conflict', `table '${name}': a concurrent commit added ${hit}, which holds rows this statement's predicate matches (serializable isolation); re-run the statement`, { table: name, file: hit });
      }
    }
    if (base.metadata.schemas.length && base.metadata.currentSchemaId !== original.metadata.currentSchemaId && !(change.operation === 'append' && appendSurvivesSchemaChange(original.metadata, base.metadata))) {
      throw new PuffinError('conflict', `table '${name}': its schema changed (schema ${original.metadata.currentSchemaId} -> ${base.metadata.currentSchemaId}) while this change was written; re-run the statement`, { table: name });
    }
    if (base.metadata.formatVersion !== original.metadata.formatVersion) {
      // Manifests were written for the old format (v3 adds row lineage and deletion vectors).
      throw new PuffinError('conflict', `table '${name}': its format version changed (v${original.metadata.formatVersion} -> v${base.metadata.formatVersion}) while this change was written; re-run the statement`, { table: name });
    }
    if (base.metadata.defaultSpecId !== original.metadata.defaultSpecId) {
      throw new PuffinError('conflict', `table '${name}': its partition spec changed while this change was written; re-run the statement`, { table: name });
    }
    const built = await buildSnapshot(io, base, change, added, addedFiles, options.summary ?? {}, now(), deleteManifests);
    const metadataLocation = await writeMetadataFile(io, built.metadata, base.metadataLocation, name);
    if (await store.compareAndSwap(name, base.metadataLocation, metadataLocation)) {
      return { metadataLocation, metadata: built.metadata, snapshotId: built.snapshotId, sequenceNumber: built.sequenceNumber, attempts: attempt };
    }
    // The losing attempt's files were never published: nothing can reference them.
    await Promise.all([metadataLocation, ...built.attemptFiles].map((f) => io.delete(f).catch(() => undefined)));
    if (attempt >= maxAttempts) {
      throw new PuffinError('conflict', `table '${name}': commit lost the race ${attempt} times in a row; giving up (the files written are orphans until cleaned)`, { table: name });
    }
    // Jittered exponential backoff: losers spread out instead of colliding again at once.
    await pause(Math.random() * Math.min(250, 10 * 2 ** Math.min(attempt, 5)));
    const current = await store.get(name);
    if (current === undefined) throw new PuffinError('conflict', `table '${name}' was dropped while this change was being committed`);
    base = { name, metadataLocation: current, metadata: decodeTableMetadata(await io.read(current), current) };
    if (base.metadata.tableUuid !== original.metadata.tableUuid) {
      throw new PuffinError('conflict', `table '${name}' was replaced by another table (uuid ${base.metadata.tableUuid}) while this change was being committed`, { table: name });
    }
  }
}
