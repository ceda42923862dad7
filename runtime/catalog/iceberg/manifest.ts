// Manifest lists and manifests (spec: Manifest Lists, Manifests, Sequence Number Inheritance),
// read from their Avro files. Fields are located by Iceberg field id, never by name: writers
// disagree on names (Iceberg 1.0 wrote `added_data_files_count` where later versions write
// `added_files_count`, both id 504). Format v1 files, which lack the v2 fields, read with the
// spec's defaults. A manifest's per-column metrics (bounds and counts) stay in their Avro
// encoding and are parsed when asked for (see AvroIntMap): a scan reads few of them.

import { PuffinError } from '../../errors.ts';
import { AvroIntMap, AvroNumberList, readAvroContainer, type AvroSchemaJson } from './avro.ts';
import { bigIntFromTwosComplement } from './bounds.ts';
import type { PrimitiveType } from './types.ts';
import type { IcebergValue } from './values.ts';

export interface FieldSummary {
  containsNull: boolean;
  containsNaN?: boolean;
  lowerBound?: Uint8Array;
  upperBound?: Uint8Array;
}

/** One manifest_file row of a manifest list. */
export interface ManifestFile {
  path: string;
  length: number;
  partitionSpecId: number;
  content: 'data' | 'deletes';
  /** 0 for v1 manifest lists. */
  sequenceNumber: bigint;
  minSequenceNumber: bigint;
  addedSnapshotId: bigint;
  addedFilesCount?: number;
  existingFilesCount?: number;
  deletedFilesCount?: number;
  addedRowsCount?: bigint;
  existingRowsCount?: bigint;
  deletedRowsCount?: bigint;
  partitions?: FieldSummary[];
  /** v3 row lineage: the first row id of the manifest's data files without one (field 520). */
  firstRowId?: bigint;
}

export type FileContent = 'data' | 'position' | 'equality';

/** Per-column metrics keyed by field id (an Avro `map<int, X>`), parsed on demand. */
export interface FieldMap<T> {
  get(id: number): T | undefined;
  entries(): [number, T][];
}

export function lookup<T>(map: FieldMap<T> | undefined, id: number): T | undefined {
  return map?.get(id);
}

export interface ContentFile {
  content: FileContent;
  filePath: string;
  fileFormat: string;
  /** Raw Avro partition values in the order of `Manifest.partitionFieldIds`. */
  partition: unknown[];
  recordCount: number;
  fileSizeInBytes: number;
  columnSizes?: FieldMap<number>;
  valueCounts?: FieldMap<number>;
  nullValueCounts?: FieldMap<number>;
  nanValueCounts?: FieldMap<number>;
  lowerBounds?: FieldMap<Uint8Array>;
  upperBounds?: FieldMap<Uint8Array>;
  equalityIds?: number[];
  sortOrderId?: number;
  referencedDataFile?: string;
  /** v3 deletion vectors: where the blob sits in its Puffin file. */
  contentOffset?: number;
  contentSizeInBytes?: number;
  /** v3 row lineage: the first row id of the file (absent: inherited, scan.ts). */
  firstRowId?: bigint;
}

export type EntryStatus = 0 | 1 | 2;
export const EXISTING = 0;
export const ADDED = 1;
export const DELETED = 2;

/** A manifest entry as written: null sequence numbers are resolved by `dataSequenceNumber`. */
export interface ManifestEntry {
  status: EntryStatus;
  snapshotId: bigint | null;
  sequenceNumber: bigint | null;
  fileSequenceNumber: bigint | null;
  file: ContentFile;
}

export interface Manifest {
  path: string;
  formatVersion: number;
  content: 'data' | 'deletes';
  /** From the file's key-value metadata, when present. */
  partitionSpecId?: number;
  /** The `partition-spec` metadata (partition fields JSON), when present. */
  partitionSpecJson?: unknown;
  /** Partition field ids in the order of `ContentFile.partition`. */
  partitionFieldIds: number[];
  entries: ManifestEntry[];
}

/**
 * The data sequence number of an entry (spec: Sequence Number Inheritance): null inherits
 * the manifest's sequence number for ADDED entries; other entries must carry it, and v1
 * manifests, which have no such column, default to 0.
 */
export function dataSequenceNumber(entry: ManifestEntry, manifest: ManifestFile): bigint {
  if (entry.sequenceNumber !== null) return entry.sequenceNumber;
  return entry.status === ADDED ? manifest.sequenceNumber : 0n;
}

export function fileSequenceNumber(entry: ManifestEntry, manifest: ManifestFile): bigint {
  if (entry.fileSequenceNumber !== null) return entry.fileSequenceNumber;
  return entry.status === ADDED ? manifest.sequenceNumber : 0n;
}

export function entrySnapshotId(entry: ManifestEntry, manifest: ManifestFile): bigint {
  return entry.snapshotId ?? manifest.addedSnapshotId;
}

// ---------------------------------------------------------------------------------------
// Schema navigation by field id.

type AvroRecordSchema = { type: 'record'; name?: string; fields: AvroFieldSchema[] };
type AvroFieldSchema = { name: string; type: AvroSchemaJson; 'field-id'?: number; [k: string]: unknown };

/** The record inside a schema that may be wrapped in a ['null', record] union. */
function recordOf(schema: AvroSchemaJson): AvroRecordSchema | undefined {
  if (Array.isArray(schema)) {
    for (const branch of schema) {
      const r = recordOf(branch);
      if (r) return r;
    }
    return undefined;
  }
  if (schema && typeof schema === 'object' && (schema as { type?: unknown }).type === 'record') return schema as AvroRecordSchema;
  return undefined;
}

/** Field name for each field id of a record schema. */
function namesById(record: AvroRecordSchema | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of record?.fields ?? []) if (typeof f['field-id'] === 'number') out.set(f['field-id'], f.name);
  return out;
}

function fieldById(record: AvroRecordSchema | undefined, id: number): AvroFieldSchema | undefined {
  return record?.fields.find((f) => f['field-id'] === id);
}

// ---------------------------------------------------------------------------------------

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

function optionalNum(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : num(v);
}

function optionalBig(v: unknown): bigint | undefined {
  return v === null || v === undefined ? undefined : BigInt(v as number | bigint);
}

function bytesOf(v: unknown): Uint8Array | undefined {
  if (v === null || v === undefined) return undefined;
  return v as Uint8Array;
}

/** A metrics map as decoded: kept encoded (AvroIntMap), or from writers that used another
 *  shape (Avro's own map type, or records), adapted to the same interface. */
function fieldMap<T extends number | Uint8Array>(raw: unknown): FieldMap<T> | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (raw instanceof AvroIntMap) return raw as FieldMap<T>;
  const pairs: [number, T][] = Array.isArray(raw)
    ? (raw as { key: unknown; value: unknown }[]).map((kv) => [Number(kv.key), plain(kv.value) as T])
    : Object.entries(raw as Record<string, unknown>).map(([k, v]) => [Number(k), plain(v) as T]);
  const byId = new Map(pairs);
  return { get: (id) => byId.get(id), entries: () => pairs };
}

/** Counts arrive as BigInt from materialized maps; bounds as bytes. */
function plain(v: unknown): number | Uint8Array {
  return typeof v === 'bigint' ? Number(v) : (v as number | Uint8Array);
}

function numberList(raw: unknown): number[] | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (raw instanceof AvroNumberList) return raw.values();
  return Array.isArray(raw) ? raw.map(Number) : undefined;
}

const FILE_CONTENT: Record<number, FileContent> = { 0: 'data', 1: 'position', 2: 'equality' };

/** The partition tuple of every file of an unpartitioned spec (shared: there are many). */
const NO_PARTITION: unknown[] = [];

/** Decode a manifest list. `file` names it in errors. */
export function decodeManifestList(bytes: Uint8Array, file: string): ManifestFile[] {
  const avro = readAvroContainer(bytes, file);
  const record = recordOf(avro.schema);
  if (!record) throw new PuffinError('bad_request', `${file} is not a manifest list: its records are not Avro records`);
  const n = namesById(record);
  const name = (id: number): string | undefined => n.get(id);
  const path = name(500);
  if (!path) throw new PuffinError('bad_request', `${file} is not a manifest list: no manifest_path field (id 500)`);
  const partitionsField = fieldById(record, 507);
  const summaryNames = namesById(recordOf(itemsOf(partitionsField?.type)));
  const sName = (id: number, fallback: string): string => summaryNames.get(id) ?? fallback;

  return avro.records.map((raw, i) => {
    const r = raw as Record<string, unknown>;
    const get = (id: number): unknown => {
      const key = name(id);
      return key === undefined ? undefined : r[key];
    };
    const manifestPath = get(500);
    if (typeof manifestPath !== 'string') throw new PuffinError('bad_request', `${file}: entry ${i} has no manifest_path`);
    const content = optionalNum(get(517)) ?? 0;
    const out: ManifestFile = {
      path: manifestPath,
      length: num(get(501) ?? 0),
      partitionSpecId: optionalNum(get(502)) ?? 0,
      content: content === 1 ? 'deletes' : 'data',
      sequenceNumber: optionalBig(get(515)) ?? 0n,
      minSequenceNumber: optionalBig(get(516)) ?? 0n,
      addedSnapshotId: optionalBig(get(503)) ?? 0n,
    };
    const counts: [keyof ManifestFile, number][] = [['addedFilesCount', 504], ['existingFilesCount', 505], ['deletedFilesCount', 506]];
    for (const [key, id] of counts) {
      const v = optionalNum(get(id));
      if (v !== undefined) (out as unknown as Record<string, unknown>)[key] = v;
    }
    const rows: [keyof ManifestFile, number][] = [['addedRowsCount', 512], ['existingRowsCount', 513], ['deletedRowsCount', 514]];
    for (const [key, id] of rows) {
      const v = optionalBig(get(id));
      if (v !== undefined) (out as unknown as Record<string, unknown>)[key] = v;
    }
    const firstRowId = optionalBig(get(520));
    if (firstRowId !== undefined) out.firstRowId = firstRowId;
    const partitions = get(507);
    if (Array.isArray(partitions)) {
      out.partitions = partitions.map((p: Record<string, unknown>) => {
        const summary: FieldSummary = { containsNull: p[sName(509, 'contains_null')] === true };
        const nan = p[sName(518, 'contains_nan')];
        if (typeof nan === 'boolean') summary.containsNaN = nan;
        const lower = bytesOf(p[sName(510, 'lower_bound')]);
        const upper = bytesOf(p[sName(511, 'upper_bound')]);
        if (lower) summary.lowerBound = lower;
        if (upper) summary.upperBound = upper;
        return summary;
      });
    }
    return out;
  });
}

function itemsOf(schema: AvroSchemaJson): AvroSchemaJson {
  if (Array.isArray(schema)) {
    for (const branch of schema) {
      const items = itemsOf(branch);
      if (items !== undefined) return items;
    }
    return undefined;
  }
  if (schema && typeof schema === 'object' && (schema as { type?: unknown }).type === 'array') return (schema as { items: AvroSchemaJson }).items;
  return undefined;
}

/** Decode a manifest. `file` names it in errors. */
export function decodeManifest(bytes: Uint8Array, file: string): Manifest {
  const avro = readAvroContainer(bytes, file, { lazyArrays: true });
  const entryRecord = recordOf(avro.schema);
  const dataFileField = fieldById(entryRecord, 2);
  const dataFileRecord = recordOf(dataFileField?.type);
  if (!entryRecord || !dataFileField || !dataFileRecord) {
    throw new PuffinError('bad_request', `${file} is not an Iceberg manifest: no manifest_entry record with a data_file field (id 2)`);
  }
  const e = namesById(entryRecord);
  const d = namesById(dataFileRecord);
  const partitionRecord = recordOf(fieldById(dataFileRecord, 102)?.type);
  const partitionFields = partitionRecord?.fields ?? [];
  const partitionNames = partitionFields.map((f) => f.name);

  let partitionSpecJson: unknown;
  if (avro.metadata['partition-spec'] !== undefined) {
    try {
      partitionSpecJson = JSON.parse(avro.metadata['partition-spec']);
    } catch {
      throw new PuffinError('bad_request', `${file}: its 'partition-spec' metadata is not JSON`);
    }
  }
  // Partition tuple fields carry the partition field ids; older writers may omit them, and
  // then the tuple follows the spec's field order.
  const specIds = Array.isArray(partitionSpecJson)
    ? (partitionSpecJson as { 'field-id'?: unknown }[]).map((f, i) => (typeof f['field-id'] === 'number' ? f['field-id'] : 1000 + i))
    : [];
  const partitionFieldIds = partitionFields.map((f, i) => (typeof f['field-id'] === 'number' ? f['field-id'] : specIds[i] ?? 1000 + i));

  const key = (names: Map<number, string>, id: number): string => names.get(id) ?? '\u0000absent';
  const kStatus = key(e, 0), kSnapshot = key(e, 1), kSeq = key(e, 3), kFileSeq = key(e, 4), kDataFile = key(e, 2);
  const kContent = key(d, 134), kPath = key(d, 100), kFormat = key(d, 101), kPartition = key(d, 102);
  const kRecords = key(d, 103), kSize = key(d, 104), kColumnSizes = key(d, 108), kValueCounts = key(d, 109), kNullCounts = key(d, 110);
  const kNanCounts = key(d, 137), kLower = key(d, 125), kUpper = key(d, 128), kEqIds = key(d, 135);
  const kSortOrder = key(d, 140), kReferenced = key(d, 143);
  const kFirstRowId = key(d, 142), kContentOffset = key(d, 144), kContentSize = key(d, 145);

  const entries: ManifestEntry[] = avro.records.map((raw, i) => {
    const r = raw as Record<string, unknown>;
    const df = r[kDataFile] as Record<string, unknown> | undefined;
    const filePath = df?.[kPath];
    if (!df || typeof filePath !== 'string') throw new PuffinError('bad_request', `${file}: entry ${i} has no data_file.file_path`);
    const partitionRaw = df[kPartition] as Record<string, unknown> | undefined;
    const content = FILE_CONTENT[optionalNum(df[kContent]) ?? 0];
    if (!content) throw new PuffinError('bad_request', `${file}: entry ${i} has unknown content ${String(df[kContent])}`);
    const file_: ContentFile = {
      content,
      filePath,
      fileFormat: String(df[kFormat] ?? 'parquet'),
      partition: partitionNames.length === 0 ? NO_PARTITION : partitionNames.map((n) => partitionRaw?.[n] ?? null),
      recordCount: num(df[kRecords]),
      fileSizeInBytes: num(df[kSize]),
    };
    const columnSizes = fieldMap<number>(df[kColumnSizes]);
    const valueCounts = fieldMap<number>(df[kValueCounts]);
    const nullCounts = fieldMap<number>(df[kNullCounts]);
    const nanCounts = fieldMap<number>(df[kNanCounts]);
    const lower = fieldMap<Uint8Array>(df[kLower]);
    const upper = fieldMap<Uint8Array>(df[kUpper]);
    if (columnSizes) file_.columnSizes = columnSizes;
    if (valueCounts) file_.valueCounts = valueCounts;
    if (nullCounts) file_.nullValueCounts = nullCounts;
    if (nanCounts) file_.nanValueCounts = nanCounts;
    if (lower) file_.lowerBounds = lower;
    if (upper) file_.upperBounds = upper;
    const eq = numberList(df[kEqIds]);
    if (eq) file_.equalityIds = eq;
    const sortOrder = optionalNum(df[kSortOrder]);
    if (sortOrder !== undefined) file_.sortOrderId = sortOrder;
    const referenced = df[kReferenced];
    if (typeof referenced === 'string') file_.referencedDataFile = referenced;
    const contentOffset = optionalNum(df[kContentOffset]);
    const contentSize = optionalNum(df[kContentSize]);
    const firstRowId = optionalBig(df[kFirstRowId]);
    if (contentOffset !== undefined) file_.contentOffset = contentOffset;
    if (contentSize !== undefined) file_.contentSizeInBytes = contentSize;
    if (firstRowId !== undefined) file_.firstRowId = firstRowId;
    const status = num(r[kStatus]);
    if (status !== 0 && status !== 1 && status !== 2) throw new PuffinError('bad_request', `${file}: entry ${i} has unknown status ${status}`);
    return {
      status,
      snapshotId: (r[kSnapshot] as bigint | null | undefined) ?? null,
      sequenceNumber: (r[kSeq] as bigint | null | undefined) ?? null,
      fileSequenceNumber: (r[kFileSeq] as bigint | null | undefined) ?? null,
      file: file_,
    };
  });

  const specIdText = avro.metadata['partition-spec-id'];
  const manifest: Manifest = {
    path: file,
    formatVersion: Number(avro.metadata['format-version'] ?? 1),
    content: avro.metadata.content === 'deletes' ? 'deletes' : 'data',
    partitionFieldIds,
    entries,
  };
  if (specIdText !== undefined && /^\d+$/.test(specIdText)) manifest.partitionSpecId = Number(specIdText);
  if (partitionSpecJson !== undefined) manifest.partitionSpecJson = partitionSpecJson;
  return manifest;
}

/**
 * A raw Avro partition value as an Iceberg value of the partition field's type. Decimals
 * arrive as fixed big-endian bytes, UUIDs as 16 bytes (or their text), dates and the
 * year/month/day/hour transforms as ints, times and timestamps as longs.
 */
export function partitionValueFromAvro(type: PrimitiveType, raw: unknown): IcebergValue | null {
  if (raw === null || raw === undefined) return null;
  switch (type.kind) {
    case 'boolean': return Boolean(raw);
    case 'int':
    case 'date': return num(raw);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns': return BigInt(raw as number | bigint);
    case 'float':
    case 'double': return num(raw);
    case 'decimal': return raw instanceof Uint8Array ? bigIntFromTwosComplement(raw) : BigInt(raw as number | bigint);
    case 'string': return String(raw);
    case 'uuid':
      if (typeof raw === 'string') return Uint8Array.from(Buffer.from(raw.replace(/-/g, ''), 'hex'));
      return new Uint8Array(raw as Uint8Array);
    case 'fixed':
    case 'binary': return new Uint8Array(raw as Uint8Array);
  }
}
