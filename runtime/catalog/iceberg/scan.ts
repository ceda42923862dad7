// Table scan planning, the "table scanning API": from a table, a snapshot choice and a
// predicate, the data files that can hold matching rows, each with the delete files that
// apply to it and the field-id mapping DuckDB needs to read it. Pruning runs in three steps,
// cheapest first: the manifest list's partition summaries (whole manifests skipped), each
// entry's partition tuple, then each entry's column bounds and null counts. The predicate
// still has to be applied to the rows: pruning only drops files that cannot match.

import type { Column, ColumnStats, DataFile, IcebergDeleteRead, IcebergFieldRead } from '../types.ts';
import { PuffinError } from '../../errors.ts';
import { bindPredicate } from './bind.ts';
import { decodeBound, valueToSql } from './bounds.ts';
import { DeleteIndex } from './delete-index.ts';
import { resolveLocation, type Reroot } from './io.ts';
import { DELETED, dataSequenceNumber, fileSequenceNumber, lookup, type ContentFile, type Manifest, type ManifestEntry, type ManifestFile } from './manifest.ts';
import { sharedManifestCache, type ManifestCache } from './manifest-cache.ts';
import { parsePartitionFieldsJson, schemaFor, selectSnapshot, type PartitionSpec, type Snapshot } from './metadata.ts';
import { referencedFieldIds, type ScanPredicate } from './predicate.ts';
import { EntryFilter, manifestMightMatch, prepareSpec, type PreparedSpec } from './prune.ts';
import type { IcebergTable } from './table.ts';
import { tableNameMapping, topLevelNames } from './name-mapping.ts';
import { exposedSchema } from './column-names.ts';
import { applyArraySizes } from './array-sizes.ts';
import { defaultValueText, indexFieldsById, isPrimitive, toDuckDBType, type IcebergSchema, type NestedField, type PrimitiveType } from './types.ts';
import { valueKey, type IcebergValue } from './values.ts';

/** How DuckDB reads one column of a data file: `read_parquet(..., schema = MAP {...})`.
 *  The plain-data shape lives in catalog/types.ts, because fragments carry it to workers. */
export type FieldMapping = IcebergFieldRead;

/** A delete file that applies to a data file (catalog/types.ts, carried by fragments). */
export type IcebergDeleteFile = IcebergDeleteRead;

export interface IcebergDataFile extends DataFile {
  /** The path as the manifest records it (position delete files name data files by it). */
  path: string;
  format: string;
  specId: number;
  /** Partition field name -> value as SQL literal text (null for NULL). */
  partition: Record<string, string | null>;
  /** Data sequence number (spec: Sequence Number Inheritance). */
  sequenceNumber: number;
  fileSequenceNumber: number;
  /** v3 row lineage: the file's first_row_id, explicit or inherited from its manifest's
   *  (spec: First Row ID Inheritance); absent when neither has one. */
  firstRowId?: number;
  /** The table's columns by field id, with this file's identity-partition defaults. */
  readSchema: FieldMapping[];
  deletes: IcebergDeleteFile[];
}

export interface ScanCounts {
  /** Manifests (data and delete) in the snapshot's manifest list. */
  manifestsTotal: number;
  /** Manifests skipped by their partition summaries, never read. */
  manifestsSkipped: number;
  /** Live data files in the snapshot (for skipped manifests, from the list's counts). */
  filesTotal: number;
  filesKept: number;
  /** Distinct delete files that apply to the kept data files. */
  deleteFiles: number;
  /** Live delete files read from delete manifests (before matching to data files). */
  deleteFilesTotal: number;
  rowsKept: number;
  bytesKept: number;
}

export interface IcebergScan {
  metadataLocation: string;
  /** null when the table has no snapshot (then there are no files). */
  snapshotId: string | null;
  sequenceNumber: number | null;
  schemaId: number;
  /** The columns the chosen schema gives the table, as DuckDB types. */
  schema: Column[];
  /** The table-level field-id mapping (no per-file defaults). */
  fields: FieldMapping[];
  dataFiles: IcebergDataFile[];
  counts: ScanCounts;
}

export interface PlanScanOptions {
  snapshotId?: bigint | string;
  asOfTimestampMs?: number;
  /** A branch or tag name. */
  ref?: string;
  filter?: ScanPredicate;
  /** Overrides the table's own re-rooting (see OpenTableOptions.reroot): `true` re-roots
   *  the recorded location onto the directory the table was opened from, `false` turns it off. */
  reroot?: Reroot | boolean;
  cache?: ManifestCache;
  /** Manifests read at once. */
  concurrency?: number;
  /** Stop after choosing the snapshot and schema: no manifest list or manifest is read, and
   *  the scan lists no files (what a planner needs before it knows the query's filters). */
  headOnly?: boolean;
}

async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Top-level columns as DuckDB reads them by field id, with their `initial-default` (the
 *  value of rows written before the column existed) and, when the table has a name mapping,
 *  the names files without field ids may give them. */
function fieldMappings(schema: IcebergSchema, names: ReadonlyMap<number, string[]> | undefined, file: string): FieldMapping[] {
  return schema.fields.map((f) => fieldMapping(f, names, file));
}

function fieldMapping(f: NestedField, names: ReadonlyMap<number, string[]> | undefined, file: string): FieldMapping {
  const out: FieldMapping = { fieldId: f.id, name: f.name, type: toDuckDBType(f.type), defaultValue: null };
  const initial = defaultValueText(f.type, f.initialDefault, { file, column: f.name });
  if (initial !== null) out.initialDefault = initial;
  if (names) out.names = names.get(f.id) ?? [];
  if (f.type.kind === 'struct') out.children = f.type.fields.map((c) => fieldMapping(c, names, file));
  return out;
}

/** Every field of every schema by id, newest schema winning: dropped columns stay findable. */
function allFieldsById(schemas: readonly IcebergSchema[], preferred: IcebergSchema): Map<number, NestedField> {
  const out = new Map<number, NestedField>();
  for (const s of [...schemas].sort((a, b) => a.schemaId - b.schemaId)) indexFieldsById(s.fields, out);
  indexFieldsById(preferred.fields, out);
  return out;
}

/**
 * Plan a scan of `table`. Throws PuffinError for a snapshot that does not exist, a manifest
 * list or manifest that is missing or does not decode (naming the file), and a partition
 * spec the table does not define.
 */
export async function planTableScan(table: IcebergTable, options: PlanScanOptions = {}): Promise<IcebergScan> {
  const { metadata } = table;
  const file = table.metadataLocation;
  const cache = options.cache ?? sharedManifestCache;
  const reroot = options.reroot === true ? { from: metadata.location, to: table.tableUri } : options.reroot === false ? undefined : options.reroot ?? table.reroot;
  const resolve = (path: string): string => resolveLocation(path, reroot);

  const timeTravel = options.snapshotId !== undefined || options.asOfTimestampMs !== undefined || options.ref !== undefined;
  const snapshot = selectSnapshot(metadata, options, file);
  // Columns whose names differ only by case get distinct names DuckDB can hold (column-names.ts).
  const schema = exposedSchema(schemaFor(metadata, snapshot, timeTravel));
  const mapping = tableNameMapping(metadata.properties, file);
  const mappedNames = mapping && topLevelNames(mapping);
  const fields = fieldMappings(schema, mappedNames, file);
  applyArraySizes(fields, schema, metadata.properties);
  const counts: ScanCounts = { manifestsTotal: 0, manifestsSkipped: 0, filesTotal: 0, filesKept: 0, deleteFiles: 0, deleteFilesTotal: 0, rowsKept: 0, bytesKept: 0 };
  const result: IcebergScan = {
    metadataLocation: file,
    snapshotId: snapshot ? snapshot.snapshotId.toString() : null,
    sequenceNumber: snapshot ? Number(snapshot.sequenceNumber) : null,
    schemaId: schema.schemaId,
    schema: fields.map((f) => ({ name: f.name, type: f.type })),
    fields,
    dataFiles: [],
    counts,
  };
  if (!snapshot || options.headOnly) return result;

  const fieldsById = allFieldsById(metadata.schemas, schema);
  const topLevelIds = new Set(metadata.schemas.flatMap((s) => s.fields.map((f) => f.id)));
  const bound = bindPredicate(options.filter, schema);
  const metricFields = [...referencedFieldIds(bound)].map((id) => ({ id, field: fieldsById.get(id) }));
  const metricTypes = new Map<number, PrimitiveType>();
  for (const { id, field } of metricFields) if (field && isPrimitive(field.type)) metricTypes.set(id, field.type);

  const preparedSpecs = new Map<number, PreparedSpec>();
  const prepare = (spec: PartitionSpec): PreparedSpec => {
    let p = preparedSpecs.get(spec.specId);
    if (!p) preparedSpecs.set(spec.specId, (p = prepareSpec(spec, fieldsById, bound)));
    return p;
  };
  const specById = (id: number, manifest?: Manifest): PartitionSpec => {
    const spec = metadata.partitionSpecs.find((s) => s.specId === id);
    if (spec) return spec;
    // v1 tables may know a manifest's spec only from the manifest itself.
    if (manifest?.partitionSpecJson !== undefined) return { specId: id, fields: parsePartitionFieldsJson(manifest.partitionSpecJson, manifest.path) };
    throw new PuffinError('bad_request', `${file}: a manifest uses partition spec ${id}, which the table metadata does not define`);
  };

  const manifestFiles = await readManifestList(snapshot, table, cache, resolve);
  counts.manifestsTotal = manifestFiles.length;

  // Step 1: partition summaries.
  const toRead: ManifestFile[] = [];
  for (const mf of manifestFiles) {
    const knownSpec = metadata.partitionSpecs.find((s) => s.specId === mf.partitionSpecId);
    if (knownSpec && !manifestMightMatch(mf, prepare(knownSpec))) {
      counts.manifestsSkipped++;
      if (mf.content === 'data') counts.filesTotal += (mf.addedFilesCount ?? 0) + (mf.existingFilesCount ?? 0);
      continue;
    }
    toRead.push(mf);
  }

  const manifests = await mapWithConcurrency(toRead, options.concurrency ?? 16, (mf) => cache.manifest(resolve(mf.path), table.io));

  // Steps 2 and 3: partition tuples, then column metrics, entry by entry.
  type Kept = { entry: ManifestEntry; mf: ManifestFile; prepared: PreparedSpec; values: (IcebergValue | null)[]; firstRowId?: bigint };
  const keptData: Kept[] = [];
  const deleteIndex = new DeleteIndex<Kept>(fieldsById);
  const partitionKeyOf = (k: Kept): string => `${k.prepared.spec.specId}/${k.values.map(valueKey).join('/')}`;

  const filter = new EntryFilter(bound, metricTypes);
  manifests.forEach((manifest, m) => {
    const mf = toRead[m];
    const prepared = prepare(specById(mf.partitionSpecId, manifest));
    const values = filter.useManifest(manifest, prepared);
    const isDeletes = mf.content === 'deletes';
    // v3: a data file without a first_row_id gets the manifest's plus the record counts of the
    // earlier files (of every status) that had none (spec: First Row ID Inheritance).
    let inherited = isDeletes ? undefined : mf.firstRowId;
    for (let i = 0; i < manifest.entries.length; i++) {
      const entry = manifest.entries[i];
      let firstRowId = entry.file.firstRowId;
      if (firstRowId === undefined && inherited !== undefined) {
        firstRowId = inherited;
        inherited += BigInt(entry.file.recordCount);
      }
      if (entry.status === DELETED) continue;
      const isDelete = entry.file.content !== 'data';
      if (isDelete !== isDeletes) {
        throw new PuffinError('bad_request', `${manifest.path}: a ${isDeletes ? 'delete' : 'data'} manifest lists the ${entry.file.content} file ${entry.file.filePath}`);
      }
      if (isDelete) counts.deleteFilesTotal++;
      else counts.filesTotal++;
      if (!filter.keeps(i)) continue;
      const kept: Kept = { entry, mf, prepared, values: values[i], ...(firstRowId !== undefined && !isDelete ? { firstRowId } : {}) };
      if (isDelete) {
        deleteIndex.add({ file: entry.file, dataSequenceNumber: dataSequenceNumber(entry, mf), partitionKey: partitionKeyOf(kept), unpartitioned: prepared.unpartitioned, ref: kept });
      } else {
        keptData.push(kept);
      }
    }
  });

  // Assemble the kept files with their deletes.
  const deleteRefs = new Map<ManifestEntry, IcebergDeleteFile>();
  const deleteRef = (k: Kept): IcebergDeleteFile => {
    let ref = deleteRefs.get(k.entry);
    if (!ref) {
      ref = toDeleteFile(k.entry, k.mf, fieldsById, topLevelIds, resolve, mappedNames, file);
      deleteRefs.set(k.entry, ref);
    }
    return ref;
  };
  const topLevel = schema.fields.filter((f) => isPrimitive(f.type)) as (NestedField & { type: PrimitiveType })[];
  for (const k of keptData) {
    const f = k.entry.file;
    const seq = dataSequenceNumber(k.entry, k.mf);
    const deletes = deleteIndex.forDataFile({ file: f, dataSequenceNumber: seq, partitionKey: partitionKeyOf(k) }).map((d) => deleteRef(d.ref));
    const dataFile: IcebergDataFile = {
      uri: resolve(f.filePath),
      path: f.filePath,
      format: f.fileFormat.toLowerCase(),
      sizeBytes: f.fileSizeInBytes,
      rowCount: f.recordCount,
      specId: k.prepared.spec.specId,
      partition: partitionText(k.prepared, k.values),
      stats: columnStats(f, topLevel),
      sequenceNumber: Number(seq),
      fileSequenceNumber: Number(fileSequenceNumber(k.entry, k.mf)),
      ...(k.firstRowId !== undefined ? { firstRowId: Number(k.firstRowId) } : {}),
      readSchema: readSchemaFor(fields, k.prepared, k.values),
      deletes,
    };
    result.dataFiles.push(dataFile);
    counts.rowsKept += dataFile.rowCount;
    counts.bytesKept += dataFile.sizeBytes;
  }
  counts.filesKept = result.dataFiles.length;
  counts.deleteFiles = new Set(result.dataFiles.flatMap((d) => d.deletes)).size;
  return result;
}

async function readManifestList(snapshot: Snapshot, table: IcebergTable, cache: ManifestCache, resolve: (p: string) => string): Promise<ManifestFile[]> {
  if (snapshot.manifestList !== undefined) return cache.manifestList(resolve(snapshot.manifestList), table.io);
  // Format v1 snapshots may list manifests inline: no summaries, sequence number 0.
  const manifests = snapshot.manifests ?? [];
  return Promise.all(
    manifests.map(async (path) => {
      const manifest = await cache.manifest(resolve(path), table.io);
      return {
        path,
        length: 0,
        partitionSpecId: manifest.partitionSpecId ?? table.metadata.defaultSpecId,
        content: manifest.content,
        sequenceNumber: 0n,
        minSequenceNumber: 0n,
        addedSnapshotId: snapshot.snapshotId,
      } satisfies ManifestFile;
    }),
  );
}

function partitionText(prepared: PreparedSpec, values: (IcebergValue | null)[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  prepared.fields.forEach((f, i) => {
    const v = values[i];
    out[f.name] = v === null || v === undefined || !f.resultType ? null : valueToSql(f.resultType, v);
  });
  return out;
}

/** Column statistics of a file in the planner's form, for the top-level primitive columns. */
function columnStats(file: ContentFile, columns: readonly (NestedField & { type: PrimitiveType })[]): Record<string, ColumnStats> {
  const out: Record<string, ColumnStats> = {};
  for (const c of columns) {
    const stats: ColumnStats = {};
    const lower = lookup(file.lowerBounds, c.id);
    const upper = lookup(file.upperBounds, c.id);
    const nulls = lookup(file.nullValueCounts, c.id);
    const lowerValue = lower && decodeBound(c.type, lower);
    const upperValue = upper && decodeBound(c.type, upper);
    if (lowerValue !== undefined) stats.min = valueToSql(c.type, lowerValue);
    if (upperValue !== undefined) stats.max = valueToSql(c.type, upperValue);
    if (nulls !== undefined) stats.nulls = nulls;
    if (stats.min !== undefined || stats.max !== undefined || stats.nulls !== undefined) out[c.name] = stats;
  }
  return out;
}

/**
 * The field-id mapping of one data file: the table's columns, where a column that is the
 * source of an identity partition field defaults to the file's partition value (spec:
 * Column Projection; writers may leave identity partition columns out of the data file).
 */
function readSchemaFor(fields: FieldMapping[], prepared: PreparedSpec, values: (IcebergValue | null)[]): FieldMapping[] {
  let out: FieldMapping[] | undefined;
  prepared.spec.fields.forEach((pf, i) => {
    const f = prepared.fields[i];
    const value = values[i];
    if (pf.transform.kind !== 'identity' || !f.sourceType || value === null || value === undefined) return;
    const at = fields.findIndex((m) => m.fieldId === pf.sourceId);
    if (at < 0) return;
    out ??= fields.map((m) => ({ ...m }));
    out[at].defaultValue = valueToSql(f.sourceType, value);
  });
  // Files without identity partitions share the table-level mapping.
  return out ?? fields;
}

function toDeleteFile(
  entry: ManifestEntry,
  mf: ManifestFile,
  fieldsById: ReadonlyMap<number, NestedField>,
  topLevelIds: ReadonlySet<number>,
  resolve: (p: string) => string,
  names: ReadonlyMap<number, string[]> | undefined,
  metadataFile: string,
): IcebergDeleteFile {
  const f = entry.file;
  const ref: IcebergDeleteFile = {
    uri: resolve(f.filePath),
    path: f.filePath,
    content: f.content === 'position' ? 'position' : 'equality',
    format: f.fileFormat.toLowerCase(),
    sequenceNumber: Number(dataSequenceNumber(entry, mf)),
    sizeBytes: f.fileSizeInBytes,
    rowCount: f.recordCount,
  };
  if (f.content === 'equality') {
    const ids = f.equalityIds ?? [];
    if (ids.length === 0) throw new PuffinError('bad_request', `equality delete file ${f.filePath} has no equality_ids`);
    const mapped = ids.map((id) => {
      const field = fieldsById.get(id);
      if (!field) throw new PuffinError('bad_request', `equality delete file ${f.filePath} compares field id ${id}, which no schema of the table defines`);
      if (!topLevelIds.has(id)) throw new PuffinError('unsupported', `equality delete file ${f.filePath} compares the nested field '${field.name}' (id ${id}); only top-level equality columns are supported`);
      return fieldMapping(field, names, metadataFile);
    });
    ref.equalityFieldIds = ids;
    ref.equalityColumns = mapped.map((m) => m.name);
    ref.equalityFields = mapped;
  }
  if (f.referencedDataFile !== undefined) ref.referencedDataFile = f.referencedDataFile;
  if (f.fileFormat.toLowerCase() === 'puffin') {
    // A v3 deletion vector: one blob of a Puffin file, found by offset and length.
    if (f.content !== 'position' || f.contentOffset === undefined || f.contentSizeInBytes === undefined || f.referencedDataFile === undefined) {
      throw new PuffinError('bad_request', `delete file ${f.filePath} is a Puffin file but not a deletion vector with referenced_data_file, content_offset and content_size_in_bytes`);
    }
    ref.contentOffset = f.contentOffset;
    ref.contentSizeInBytes = f.contentSizeInBytes;
  }
  return ref;
}
