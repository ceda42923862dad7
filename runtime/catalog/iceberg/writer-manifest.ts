// Manifests and manifest lists written as Avro (spec: Manifests, Manifest Lists), with the
// spec's field names and field ids, format v2 (v3: with row lineage and deletion vector fields). New files are ADDED with null snapshot id and
// null sequence numbers, so they inherit both from the manifest list entry at read time
// (spec: Sequence Number Inheritance): a manifest of new files written once can be reused
// unchanged by every retry of a commit, only the manifest list changes.

import { readAvroContainer, writeAvroContainer } from './avro.ts';
import { encodeBound, twosComplementMinBytes } from './bounds.ts';
import type { ManifestFile } from './manifest.ts';
import type { PartitionSpec } from './metadata.ts';
import type { IcebergSchema, PrimitiveType } from './types.ts';
import { compareValues, type IcebergValue } from './values.ts';
import { partitionFieldsToJson, schemaToJson } from './writer-schema.ts';

/** A data file and its metrics, as the writer describes it (values are Iceberg values). */
export interface DataFileInfo {
  path: string;
  /** PUFFIN: a v3 deletion vector (one blob of a Puffin file, located by contentOffset/Size). */
  format: 'PARQUET' | 'PUFFIN';
  /** Partition values in spec field order. */
  partition: (IcebergValue | null)[];
  recordCount: number;
  fileSizeInBytes: number;
  columnSizes?: Record<number, number>;
  valueCounts?: Record<number, number>;
  nullValueCounts?: Record<number, number>;
  nanValueCounts?: Record<number, number>;
  /** Appendix D single-value binary, by field id. */
  lowerBounds?: Record<number, Uint8Array>;
  upperBounds?: Record<number, Uint8Array>;
  /** v3 deletion vectors: the data file whose rows it deletes, and where its blob is. */
  referencedDataFile?: string;
  contentOffset?: number;
  contentSizeInBytes?: number;
}

/** A manifest entry to write: new files carry no snapshot id or sequence numbers. */
export interface EntryToWrite {
  status: 0 | 1 | 2;
  snapshotId: bigint | null;
  sequenceNumber: bigint | null;
  fileSequenceNumber: bigint | null;
  file: DataFileInfo;
  /** v3: the data file's first row id; null/absent inherits it from the manifest (new files). */
  firstRowId?: bigint | null;
}

export function avroPrimitive(type: PrimitiveType): unknown {
  switch (type.kind) {
    case 'boolean': return 'boolean';
    case 'int': return 'int';
    case 'date': return { type: 'int', logicalType: 'date' };
    case 'long': return 'long';
    case 'time': return { type: 'long', logicalType: 'time-micros' };
    case 'timestamp':
    case 'timestamptz': return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': type.kind === 'timestamptz' };
    case 'timestamp_ns':
    case 'timestamptz_ns': return { type: 'long', logicalType: 'timestamp-nanos', 'adjust-to-utc': type.kind === 'timestamptz_ns' };
    case 'float': return 'float';
    case 'double': return 'double';
    case 'decimal': return { type: 'bytes', logicalType: 'decimal', precision: type.precision, scale: type.scale };
    case 'string': return 'string';
    case 'uuid':
    case 'fixed':
    case 'binary': return 'bytes';
  }
}

function avroValue(type: PrimitiveType, v: IcebergValue | null): unknown {
  if (v === null) return null;
  if (type.kind === 'decimal') return Buffer.from(twosComplementMinBytes(v as bigint));
  if (v instanceof Uint8Array) return Buffer.from(v);
  return v;
}

export const kv = (name: string, keyId: number, valueId: number, value: unknown): unknown => ({
  type: 'array',
  logicalType: 'map',
  items: { type: 'record', name, fields: [{ name: 'key', type: 'int', 'field-id': keyId }, { name: 'value', type: value, 'field-id': valueId }] },
});

/** The manifest_entry schema of the spec (v2), with this spec's partition tuple. */
export function manifestEntrySchema(spec: PartitionSpec, partitionTypes: readonly PrimitiveType[], formatVersion = 2): unknown {
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: ['null', 'long'], default: null, 'field-id': 1 },
      { name: 'sequence_number', type: ['null', 'long'], default: null, 'field-id': 3 },
      { name: 'file_sequence_number', type: ['null', 'long'], default: null, 'field-id': 4 },
      {
        name: 'data_file',
        'field-id': 2,
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'content', type: 'int', 'field-id': 134 },
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            {
              name: 'partition',
              'field-id': 102,
              type: {
                type: 'record',
                name: 'r102',
                fields: spec.fields.map((f, i) => ({ name: f.name, type: ['null', avroPrimitive(partitionTypes[i])], default: null, 'field-id': f.fieldId })),
              },
            },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            { name: 'column_sizes', type: ['null', kv('k117_v118', 117, 118, 'long')], default: null, 'field-id': 108 },
            { name: 'value_counts', type: ['null', kv('k119_v120', 119, 120, 'long')], default: null, 'field-id': 109 },
            { name: 'null_value_counts', type: ['null', kv('k121_v122', 121, 122, 'long')], default: null, 'field-id': 110 },
            { name: 'nan_value_counts', type: ['null', kv('k138_v139', 138, 139, 'long')], default: null, 'field-id': 137 },
            { name: 'lower_bounds', type: ['null', kv('k126_v127', 126, 127, 'bytes')], default: null, 'field-id': 125 },
            { name: 'upper_bounds', type: ['null', kv('k129_v130', 129, 130, 'bytes')], default: null, 'field-id': 128 },
            { name: 'key_metadata', type: ['null', 'bytes'], default: null, 'field-id': 131 },
            { name: 'split_offsets', type: ['null', { type: 'array', items: 'long', 'element-id': 133 }], default: null, 'field-id': 132 },
            { name: 'equality_ids', type: ['null', { type: 'array', items: 'int', 'element-id': 136 }], default: null, 'field-id': 135 },
            { name: 'sort_order_id', type: ['null', 'int'], default: null, 'field-id': 140 },
            ...(formatVersion >= 3 ? V3_DATA_FILE_FIELDS : []),
          ],
        },
      },
    ],
  };
}

/** Fields v3 adds to data_file (spec: Manifests): row lineage and deletion vector location. */
const V3_DATA_FILE_FIELDS = [
  { name: 'first_row_id', type: ['null', 'long'], default: null, 'field-id': 142 },
  { name: 'referenced_data_file', type: ['null', 'string'], default: null, 'field-id': 143 },
  { name: 'content_offset', type: ['null', 'long'], default: null, 'field-id': 144 },
  { name: 'content_size_in_bytes', type: ['null', 'long'], default: null, 'field-id': 145 },
];

export const MANIFEST_LIST_SCHEMA = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    {
      name: 'partitions',
      type: [
        'null',
        {
          type: 'array',
          'element-id': 508,
          items: {
            type: 'record',
            name: 'r508',
            fields: [
              { name: 'contains_null', type: 'boolean', 'field-id': 509 },
              { name: 'contains_nan', type: ['null', 'boolean'], default: null, 'field-id': 518 },
              { name: 'lower_bound', type: ['null', 'bytes'], default: null, 'field-id': 510 },
              { name: 'upper_bound', type: ['null', 'bytes'], default: null, 'field-id': 511 },
            ],
          },
        },
      ],
      default: null,
      'field-id': 507,
    },
    { name: 'key_metadata', type: ['null', 'bytes'], default: null, 'field-id': 519 },
  ],
};

/** The v3 manifest list: v2's fields and the manifest's first row id (row lineage). */
export const MANIFEST_LIST_SCHEMA_V3 = {
  ...MANIFEST_LIST_SCHEMA,
  fields: [...MANIFEST_LIST_SCHEMA.fields, { name: 'first_row_id', type: ['null', 'long'], default: null, 'field-id': 520 }],
};

function metricsMap(values: Record<number, number> | undefined): unknown {
  return values ? Object.entries(values).map(([k, v]) => ({ key: Number(k), value: BigInt(v) })) : null;
}

function boundsMap(values: Record<number, Uint8Array> | undefined): unknown {
  return values ? Object.entries(values).map(([k, v]) => ({ key: Number(k), value: Buffer.from(v) })) : null;
}

export interface WrittenManifest {
  bytes: Uint8Array;
  /** The manifest list row, without path, length and the snapshot's own numbers. */
  summary: {
    addedFiles: number;
    existingFiles: number;
    deletedFiles: number;
    addedRows: bigint;
    existingRows: bigint;
    deletedRows: bigint;
    partitions: { containsNull: boolean; containsNaN: boolean; lower?: Uint8Array; upper?: Uint8Array }[];
    /** Smallest explicit data sequence number of live entries (null: only inherited ones). */
    minExplicitSequenceNumber: bigint | null;
  };
}

/** Encode a data manifest. */
export function encodeManifest(schema: IcebergSchema, spec: PartitionSpec, partitionTypes: readonly PrimitiveType[], entries: readonly EntryToWrite[], content: 'data' | 'deletes' = 'data', formatVersion = 2): WrittenManifest {
  const v3 = formatVersion >= 3;
  const records = entries.map((e) => ({
    status: e.status,
    snapshot_id: e.snapshotId,
    sequence_number: e.sequenceNumber,
    file_sequence_number: e.fileSequenceNumber,
    data_file: {
      // A delete manifest holds position delete files (content 1) only.
      content: content === 'deletes' ? 1 : 0,
      file_path: e.file.path,
      file_format: e.file.format,
      partition: Object.fromEntries(spec.fields.map((f, i) => [f.name, avroValue(partitionTypes[i], e.file.partition[i] ?? null)])),
      record_count: BigInt(e.file.recordCount),
      file_size_in_bytes: BigInt(e.file.fileSizeInBytes),
      column_sizes: metricsMap(e.file.columnSizes),
      value_counts: metricsMap(e.file.valueCounts),
      null_value_counts: metricsMap(e.file.nullValueCounts),
      nan_value_counts: metricsMap(e.file.nanValueCounts),
      lower_bounds: boundsMap(e.file.lowerBounds),
      upper_bounds: boundsMap(e.file.upperBounds),
      key_metadata: null,
      split_offsets: null,
      equality_ids: null,
      sort_order_id: null,
      ...(v3
        ? {
            first_row_id: e.firstRowId ?? null,
            referenced_data_file: e.file.referencedDataFile ?? null,
            content_offset: e.file.contentOffset === undefined ? null : BigInt(e.file.contentOffset),
            content_size_in_bytes: e.file.contentSizeInBytes === undefined ? null : BigInt(e.file.contentSizeInBytes),
          }
        : {}),
    },
  }));
  const bytes = writeAvroContainer(manifestEntrySchema(spec, partitionTypes, formatVersion), records, {
    schema: JSON.stringify(schemaToJson(schema)),
    'schema-id': String(schema.schemaId),
    'partition-spec': JSON.stringify(partitionFieldsToJson(spec.fields)),
    'partition-spec-id': String(spec.specId),
    'format-version': v3 ? '3' : '2',
    content,
  });

  const live = entries.filter((e) => e.status !== 2);
  // Partition summaries cover every entry, DELETED ones included, as Java's writer does:
  // conflict detection and incremental scans over a snapshot's changes rely on them.
  const partitions = spec.fields.map((_, i) => {
    let lower: IcebergValue | undefined;
    let upper: IcebergValue | undefined;
    let containsNull = false;
    let containsNaN = false;
    for (const e of entries) {
      const v = e.file.partition[i] ?? null;
      if (v === null) {
        containsNull = true;
        continue;
      }
      if (typeof v === 'number' && Number.isNaN(v)) {
        containsNaN = true;
        continue;
      }
      if (lower === undefined || compareValues(v, lower) < 0) lower = v;
      if (upper === undefined || compareValues(v, upper) > 0) upper = v;
    }
    return {
      containsNull,
      containsNaN,
      ...(lower !== undefined ? { lower: encodeBound(partitionTypes[i], lower) } : {}),
      ...(upper !== undefined ? { upper: encodeBound(partitionTypes[i], upper) } : {}),
    };
  });
  const count = (s: number): number => entries.filter((e) => e.status === s).length;
  const rows = (s: number): bigint => entries.filter((e) => e.status === s).reduce((n, e) => n + BigInt(e.file.recordCount), 0n);
  let minExplicit: bigint | null = null;
  for (const e of live) if (e.sequenceNumber !== null && (minExplicit === null || e.sequenceNumber < minExplicit)) minExplicit = e.sequenceNumber;
  return {
    bytes,
    summary: {
      addedFiles: count(1),
      existingFiles: count(0),
      deletedFiles: count(2),
      addedRows: rows(1),
      existingRows: rows(0),
      deletedRows: rows(2),
      partitions,
      minExplicitSequenceNumber: minExplicit,
    },
  };
}

/** A manifest list row for a manifest (new or carried over). */
export function manifestListRow(m: ManifestFile & { firstRowId?: bigint }): Record<string, unknown> {
  return {
    manifest_path: m.path,
    manifest_length: BigInt(m.length),
    partition_spec_id: m.partitionSpecId,
    content: m.content === 'deletes' ? 1 : 0,
    sequence_number: m.sequenceNumber,
    min_sequence_number: m.minSequenceNumber,
    added_snapshot_id: m.addedSnapshotId,
    added_files_count: m.addedFilesCount ?? 0,
    existing_files_count: m.existingFilesCount ?? 0,
    deleted_files_count: m.deletedFilesCount ?? 0,
    added_rows_count: m.addedRowsCount ?? 0n,
    existing_rows_count: m.existingRowsCount ?? 0n,
    deleted_rows_count: m.deletedRowsCount ?? 0n,
    partitions: m.partitions
      ? m.partitions.map((p) => ({
          contains_null: p.containsNull,
          contains_nan: p.containsNaN ?? null,
          lower_bound: p.lowerBound ? Buffer.from(p.lowerBound) : null,
          upper_bound: p.upperBound ? Buffer.from(p.upperBound) : null,
        }))
      : null,
    key_metadata: null,
    first_row_id: m.firstRowId ?? null,
  };
}

/** A manifest list row and, in v3, the manifest's first row id. */
export type ManifestListRow = ManifestFile & { firstRowId?: bigint };

export function encodeManifestList(rows: readonly ManifestListRow[], snapshotId: bigint, parentSnapshotId: bigint | undefined, sequenceNumber: bigint, formatVersion = 2, firstRowId?: bigint): Uint8Array {
  const v3 = formatVersion >= 3;
  return writeAvroContainer(v3 ? MANIFEST_LIST_SCHEMA_V3 : MANIFEST_LIST_SCHEMA, rows.map(manifestListRow), {
    'snapshot-id': String(snapshotId),
    'parent-snapshot-id': parentSnapshotId === undefined ? 'null' : String(parentSnapshotId),
    'sequence-number': String(sequenceNumber),
    'format-version': v3 ? '3' : '2',
    ...(v3 && firstRowId !== undefined ? { 'first-row-id': String(firstRowId) } : {}),
  });
}

/** The first_row_id (field 520) of each row of a manifest list, in order (v3; undefined where absent). */
export function manifestListFirstRowIds(bytes: Uint8Array, file: string): (bigint | undefined)[] {
  const avro = readAvroContainer(bytes, file);
  const schema = avro.schema as { fields?: { name: string; 'field-id'?: number }[] };
  const name = schema.fields?.find((f) => f['field-id'] === 520)?.name;
  return avro.records.map((r) => {
    const v = name === undefined ? undefined : (r as Record<string, unknown>)[name];
    return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : undefined;
  });
}

// ---------------------------------------------------------------------------------------
// Plain-data form of DataFileInfo, so fragments that write data files can return them to the
// coordinator that commits (across a worker thread, a process or a Lambda invocation).

export type DataFileJson = Omit<DataFileInfo, 'partition' | 'lowerBounds' | 'upperBounds'> & {
  /** bigint as {bigint: '...'}, bytes as {bytes: base64}; other values as JSON. */
  partition: (null | boolean | number | string | { bigint: string } | { bytes: string })[];
  lowerBounds?: Record<number, string>;
  upperBounds?: Record<number, string>;
};

const toBase64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const fromBase64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

function boundsToJson(b: Record<number, Uint8Array> | undefined): Record<number, string> | undefined {
  return b && Object.fromEntries(Object.entries(b).map(([k, v]) => [k, toBase64(v)]));
}

function boundsFromJson(b: Record<number, string> | undefined): Record<number, Uint8Array> | undefined {
  return b && Object.fromEntries(Object.entries(b).map(([k, v]) => [k, fromBase64(v)]));
}

export function dataFileToJson(f: DataFileInfo): DataFileJson {
  const { lowerBounds, upperBounds, partition, ...rest } = f;
  const out: DataFileJson = {
    ...rest,
    partition: partition.map((v) => (typeof v === 'bigint' ? { bigint: String(v) } : v instanceof Uint8Array ? { bytes: toBase64(v) } : v)),
  };
  const lo = boundsToJson(lowerBounds);
  const hi = boundsToJson(upperBounds);
  if (lo) out.lowerBounds = lo;
  if (hi) out.upperBounds = hi;
  return out;
}

export function dataFileFromJson(j: DataFileJson): DataFileInfo {
  const { lowerBounds, upperBounds, partition, ...rest } = j;
  const out: DataFileInfo = {
    ...rest,
    partition: partition.map((v) => (v !== null && typeof v === 'object' ? ('bigint' in v ? BigInt(v.bigint) : fromBase64(v.bytes)) : v)),
  };
  const lo = boundsFromJson(lowerBounds);
  const hi = boundsFromJson(upperBounds);
  if (lo) out.lowerBounds = lo;
  if (hi) out.upperBounds = hi;
  return out;
}
