// Writes Iceberg metadata trees (metadata.json, manifest lists, manifests) for tests and
// benchmarks: synthetic tables whose every field is chosen by the caller, including the
// awkward ones (equality and position deletes, explicit sequence numbers, evolved schemas).
// It is a fixture generator, not the product's writer: it trusts its input.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { writeAvroContainer } from '../../runtime/catalog/iceberg/avro.ts';
import { encodeBound, twosComplementMinBytes } from '../../runtime/catalog/iceberg/bounds.ts';
import { parseTransform, transformResultType } from '../../runtime/catalog/iceberg/transforms.ts';
import { indexFieldsById, isPrimitive, parseSchema, type PrimitiveType } from '../../runtime/catalog/iceberg/types.ts';
import { compareValues, type IcebergValue } from '../../runtime/catalog/iceberg/values.ts';
// The spec's Avro pieces are the product writer's; only the entry schema differs here (it
// carries the v3 field referenced_data_file, which reader tests need and v2 writes must not).
import { avroPrimitive, kv, MANIFEST_LIST_SCHEMA } from '../../runtime/catalog/iceberg/writer-manifest.ts';

export interface FixtureSchema {
  schemaId: number;
  /** Iceberg JSON fields: { id, name, required, type }, and v3 defaults. */
  fields: { id: number; name: string; required?: boolean; type: unknown; 'initial-default'?: unknown; 'write-default'?: unknown }[];
}

export interface FixtureSpec {
  specId: number;
  fields: { sourceId: number; fieldId: number; name: string; transform: string }[];
}

export interface FixtureFile {
  /** Relative to the table root (recorded as `${location}/${path}`). */
  path: string;
  content?: 0 | 1 | 2;
  status?: 0 | 1 | 2;
  /** Written explicitly when set; null (the default) is inherited at read time. */
  sequenceNumber?: bigint | null;
  fileSequenceNumber?: bigint | null;
  snapshotId?: bigint | null;
  /** Partition values by partition field id, as Iceberg values of the transform's type. */
  partition?: Record<number, IcebergValue | null>;
  recordCount: number;
  sizeBytes: number;
  /** Column metrics by field id (values as Iceberg values of the column's type). */
  lower?: Record<number, IcebergValue>;
  upper?: Record<number, IcebergValue>;
  nullCounts?: Record<number, number>;
  valueCounts?: Record<number, number>;
  equalityIds?: number[];
  referencedDataFile?: string;
  /** 'PUFFIN' for a v3 deletion vector (with content offset and size); default 'PARQUET'. */
  format?: string;
  contentOffset?: number;
  contentSizeInBytes?: number;
  firstRowId?: bigint;
}

export interface FixtureManifest {
  content: 'data' | 'deletes';
  specId?: number;
  /** The manifest's sequence number in the manifest list (what ADDED entries inherit). */
  sequenceNumber: bigint;
  addedSnapshotId: bigint;
  files: FixtureFile[];
  /** Reuse the file of a manifest written for an earlier snapshot. */
  reuse?: string;
}

export interface FixtureSnapshot {
  snapshotId: bigint;
  parentSnapshotId?: bigint;
  sequenceNumber: bigint;
  timestampMs: number;
  schemaId?: number;
  operation?: string;
  /** Every live manifest of the snapshot. */
  manifests: FixtureManifest[];
}

export interface FixtureTable {
  /** What metadata records as the table location; defaults to the directory's file:// URI. */
  location?: string;
  schemas: FixtureSchema[];
  currentSchemaId?: number;
  specs?: FixtureSpec[];
  snapshots: FixtureSnapshot[];
  /** Defaults to the last snapshot. */
  currentSnapshotId?: bigint | null;
  properties?: Record<string, string>;
  /** 2 (default) or 3: v3 writes row-lineage fields (next-row-id, first-row-id). */
  formatVersion?: 2 | 3;
}

function avroValue(type: PrimitiveType, v: IcebergValue | null | undefined): unknown {
  if (v === null || v === undefined) return null;
  if (type.kind === 'decimal') return Buffer.from(twosComplementMinBytes(v as bigint));
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'bigint' && (type.kind === 'int' || type.kind === 'date')) return Number(v);
  return v;
}

/** A partition field's Avro type: longs without their logical type (time, timestamps), since
 *  avsc refuses BigInt values for a long with a logical type inside a union. */
function partitionAvroType(type: PrimitiveType): unknown {
  const t = avroPrimitive(type) as { type?: unknown; logicalType?: unknown } | string;
  return typeof t === 'object' && t.type === 'long' ? 'long' : t;
}

function manifestEntrySchema(partitionFields: { name: string; fieldId: number; type: PrimitiveType }[]): unknown {
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
              type: { type: 'record', name: 'r102', fields: partitionFields.map((f) => ({ name: f.name, type: ['null', partitionAvroType(f.type)], default: null, 'field-id': f.fieldId })) },
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
            { name: 'first_row_id', type: ['null', 'long'], default: null, 'field-id': 142 },
            { name: 'referenced_data_file', type: ['null', 'string'], default: null, 'field-id': 143 },
            { name: 'content_offset', type: ['null', 'long'], default: null, 'field-id': 144 },
            { name: 'content_size_in_bytes', type: ['null', 'long'], default: null, 'field-id': 145 },
          ],
        },
      },
    ],
  };
}

/** A bound as the writer of the file would have encoded it: a number for a long column is a
 *  file written before int was promoted to long, so its bound is 4 bytes. */
function encodeFileBound(type: PrimitiveType, value: IcebergValue): Buffer {
  if (type.kind === 'long' && typeof value === 'number') return Buffer.from(encodeBound({ kind: 'int' }, value));
  return Buffer.from(encodeBound(type, value));
}

function metricsMap(values: Record<number, number> | undefined): unknown {
  return values ? Object.entries(values).map(([k, v]) => ({ key: Number(k), value: BigInt(v) })) : null;
}

/**
 * Write a table under `dir` (metadata/ only; data files are the caller's). Returns the
 * metadata file's path. Manifests are written once per FixtureManifest object, so the same
 * object listed by several snapshots is one file, as real tables reuse manifests.
 */
export function writeFixtureTable(dir: string, table: FixtureTable): string {
  const location = (table.location ?? `file://${dir}`).replace(/\/+$/, '');
  const metadataDir = join(dir, 'metadata');
  mkdirSync(metadataDir, { recursive: true });
  const specs = table.specs ?? [{ specId: 0, fields: [] }];
  const currentSchemaId = table.currentSchemaId ?? table.schemas[table.schemas.length - 1].schemaId;
  const parsedSchemas = table.schemas.map((s) => parseSchema({ type: 'struct', 'schema-id': s.schemaId, fields: s.fields.map((f) => ({ required: false, ...f })) }, 'fixture'));
  const fieldsById = new Map();
  for (const s of parsedSchemas) indexFieldsById(s.fields, fieldsById);
  const typeOf = (id: number): PrimitiveType => {
    const f = fieldsById.get(id);
    if (!f || !isPrimitive(f.type)) throw new Error(`fixture: field ${id} is not a primitive column`);
    return f.type;
  };
  const written = new Map<FixtureManifest, { path: string; length: number }>();
  const formatVersion = table.formatVersion ?? 2;
  const addedRows = (s: FixtureSnapshot): number =>
    s.manifests.filter((m) => m.content === 'data' && m.addedSnapshotId === s.snapshotId).reduce((n, m) => n + m.files.filter((f) => (f.status ?? 1) === 1).reduce((k, f) => k + f.recordCount, 0), 0);
  const rowIdsBefore = (s: FixtureSnapshot): number => table.snapshots.slice(0, table.snapshots.indexOf(s)).reduce((n, x) => n + addedRows(x), 0);

  const writeManifest = (m: FixtureManifest): { path: string; length: number } => {
    const done = written.get(m);
    if (done) return done;
    const spec = specs.find((s) => s.specId === (m.specId ?? 0));
    if (!spec) throw new Error(`fixture: no spec ${m.specId}`);
    const partitionFields = spec.fields.map((f) => ({ name: f.name, fieldId: f.fieldId, type: transformResultType(parseTransform(f.transform), typeOf(f.sourceId)) as PrimitiveType }));
    const entries = m.files.map((f) => ({
      status: f.status ?? 1,
      snapshot_id: f.snapshotId ?? null,
      sequence_number: f.sequenceNumber ?? null,
      file_sequence_number: f.fileSequenceNumber ?? null,
      data_file: {
        content: f.content ?? (m.content === 'data' ? 0 : 2),
        file_path: `${location}/${f.path}`,
        file_format: f.format ?? 'PARQUET',
        partition: Object.fromEntries(partitionFields.map((p) => [p.name, avroValue(p.type, f.partition?.[p.fieldId])])),
        record_count: BigInt(f.recordCount),
        file_size_in_bytes: BigInt(f.sizeBytes),
        column_sizes: null,
        value_counts: metricsMap(f.valueCounts),
        null_value_counts: metricsMap(f.nullCounts),
        nan_value_counts: null,
        lower_bounds: f.lower ? Object.entries(f.lower).map(([k, v]) => ({ key: Number(k), value: encodeFileBound(typeOf(Number(k)), v) })) : null,
        upper_bounds: f.upper ? Object.entries(f.upper).map(([k, v]) => ({ key: Number(k), value: encodeFileBound(typeOf(Number(k)), v) })) : null,
        key_metadata: null,
        split_offsets: null,
        equality_ids: f.equalityIds ?? null,
        sort_order_id: null,
        first_row_id: f.firstRowId ?? null,
        referenced_data_file: f.referencedDataFile ?? null,
        content_offset: f.contentOffset === undefined ? null : BigInt(f.contentOffset),
        content_size_in_bytes: f.contentSizeInBytes === undefined ? null : BigInt(f.contentSizeInBytes),
      },
    }));
    const bytes = writeAvroContainer(manifestEntrySchema(partitionFields), entries, {
      'format-version': String(formatVersion),
      'partition-spec-id': String(spec.specId),
      'partition-spec': JSON.stringify(spec.fields.map((f) => ({ name: f.name, transform: f.transform, 'source-id': f.sourceId, 'field-id': f.fieldId }))),
      schema: JSON.stringify(table.schemas.find((s) => s.schemaId === currentSchemaId)),
      'schema-id': String(currentSchemaId),
      content: m.content,
    });
    const name = m.reuse ?? `${randomUUID()}-m0.avro`;
    writeFileSync(join(metadataDir, name), bytes);
    const out = { path: `${location}/metadata/${name}`, length: bytes.length };
    written.set(m, out);
    return out;
  };

  const summaries = (m: FixtureManifest): unknown => {
    const spec = specs.find((s) => s.specId === (m.specId ?? 0)) as FixtureSpec;
    return spec.fields.map((pf) => {
      const type = transformResultType(parseTransform(pf.transform), typeOf(pf.sourceId)) as PrimitiveType;
      let lower: IcebergValue | undefined;
      let upper: IcebergValue | undefined;
      let containsNull = false;
      for (const f of m.files) {
        if ((f.status ?? 1) === 2) continue;
        const v = f.partition?.[pf.fieldId];
        if (v === null || v === undefined) {
          containsNull = true;
          continue;
        }
        if (lower === undefined || compareValues(v, lower) < 0) lower = v;
        if (upper === undefined || compareValues(v, upper) > 0) upper = v;
      }
      return {
        contains_null: containsNull,
        contains_nan: false,
        lower_bound: lower === undefined ? null : Buffer.from(encodeBound(type, lower)),
        upper_bound: upper === undefined ? null : Buffer.from(encodeBound(type, upper)),
      };
    });
  };

  const snapshotsJson = table.snapshots.map((s) => {
    const rows = s.manifests.map((m) => {
      const { path, length } = writeManifest(m);
      const live = m.files.filter((f) => (f.status ?? 1) !== 2);
      const count = (status: number): number => m.files.filter((f) => (f.status ?? 1) === status).length;
      const rowsOf = (status: number): bigint => BigInt(m.files.filter((f) => (f.status ?? 1) === status).reduce((n, f) => n + f.recordCount, 0));
      const minSeq = live.reduce<bigint>((min, f) => {
        const seq = f.sequenceNumber ?? m.sequenceNumber;
        return seq < min ? seq : min;
      }, m.sequenceNumber);
      return {
        manifest_path: path,
        manifest_length: BigInt(length),
        partition_spec_id: m.specId ?? 0,
        content: m.content === 'data' ? 0 : 1,
        sequence_number: m.sequenceNumber,
        min_sequence_number: minSeq,
        added_snapshot_id: m.addedSnapshotId,
        added_files_count: count(1),
        existing_files_count: count(0),
        deleted_files_count: count(2),
        added_rows_count: rowsOf(1),
        existing_rows_count: rowsOf(0),
        deleted_rows_count: rowsOf(2),
        partitions: summaries(m),
        key_metadata: null,
      };
    });
    const listName = `snap-${s.snapshotId}-1-${randomUUID()}.avro`;
    writeFileSync(
      join(metadataDir, listName),
      writeAvroContainer(MANIFEST_LIST_SCHEMA, rows, {
        'snapshot-id': String(s.snapshotId),
        'parent-snapshot-id': s.parentSnapshotId === undefined ? 'null' : String(s.parentSnapshotId),
        'sequence-number': String(s.sequenceNumber),
        'format-version': String(formatVersion),
      }),
    );
    return {
      'snapshot-id': `@@${s.snapshotId}@@`,
      ...(s.parentSnapshotId !== undefined ? { 'parent-snapshot-id': `@@${s.parentSnapshotId}@@` } : {}),
      'sequence-number': Number(s.sequenceNumber),
      'timestamp-ms': s.timestampMs,
      summary: { operation: s.operation ?? 'append' },
      'manifest-list': `${location}/metadata/${listName}`,
      'schema-id': s.schemaId ?? currentSchemaId,
      // v3 row lineage: each snapshot's rows get ids from the table's running next-row-id.
      ...(formatVersion === 3 ? { 'first-row-id': rowIdsBefore(s), 'added-rows': addedRows(s) } : {}),
    };
  });

  const last = table.snapshots[table.snapshots.length - 1];
  const current = table.currentSnapshotId === undefined ? last?.snapshotId ?? null : table.currentSnapshotId;
  const metadata = {
    'format-version': formatVersion,
    ...(formatVersion === 3 ? { 'next-row-id': table.snapshots.reduce((n, s) => n + addedRows(s), 0) } : {}),
    'table-uuid': randomUUID(),
    location,
    'last-sequence-number': Number(table.snapshots.reduce((n, s) => (s.sequenceNumber > n ? s.sequenceNumber : n), 0n)),
    'last-updated-ms': last?.timestampMs ?? 0,
    'last-column-id': Math.max(0, ...fieldsById.keys()),
    'current-schema-id': currentSchemaId,
    schemas: table.schemas.map((s) => ({ type: 'struct', 'schema-id': s.schemaId, fields: s.fields.map((f) => ({ required: false, ...f })) })),
    'default-spec-id': specs[specs.length - 1].specId,
    'partition-specs': specs.map((s) => ({ 'spec-id': s.specId, fields: s.fields.map((f) => ({ name: f.name, transform: f.transform, 'source-id': f.sourceId, 'field-id': f.fieldId })) })),
    'last-partition-id': Math.max(999, ...specs.flatMap((s) => s.fields.map((f) => f.fieldId))),
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties: table.properties ?? {},
    'current-snapshot-id': current === null ? -1 : `@@${current}@@`,
    refs: current === null ? {} : { main: { 'snapshot-id': `@@${current}@@`, type: 'branch' } },
    snapshots: snapshotsJson,
    'snapshot-log': table.snapshots.map((s) => ({ 'timestamp-ms': s.timestampMs, 'snapshot-id': `@@${s.snapshotId}@@` })),
    'metadata-log': [],
  };
  // 63-bit ids are written as JSON numbers, exactly, as Java writers do.
  const text = JSON.stringify(metadata, null, 2).replace(/"@@(-?\d+)@@"/g, '$1');
  const file = join(metadataDir, 'v1.metadata.json');
  writeFileSync(file, text);
  writeFileSync(join(metadataDir, 'version-hint.text'), '1');
  return file;
}

// ---------------------------------------------------------------------------------------
// v3 deletion vectors: Puffin files of `deletion-vector-v1` blobs (Puffin spec), each the
// deleted positions of one data file as a portable 64-bit Roaring bitmap.

/** The 32-bit portable Roaring serialization of sorted distinct values below 2^32. Array
 *  containers up to 4096 values, bitmap containers above; `runs` writes run containers. */
function roaring32(values: readonly number[], runs: boolean): Buffer {
  const containers = new Map<number, number[]>();
  for (const v of values) {
    const key = Math.floor(v / 65536);
    let c = containers.get(key);
    if (!c) containers.set(key, (c = []));
    c.push(v % 65536);
  }
  const keys = [...containers.keys()];
  const bodies = keys.map((key) => {
    const low = containers.get(key) as number[];
    if (runs) {
      const pairs: number[] = [];
      for (let i = 0; i < low.length; ) {
        let j = i;
        while (j + 1 < low.length && low[j + 1] === low[j] + 1) j++;
        pairs.push(low[i], j - i);
        i = j + 1;
      }
      const b = Buffer.alloc(2 + pairs.length * 2);
      b.writeUInt16LE(pairs.length / 2, 0);
      pairs.forEach((v, i) => b.writeUInt16LE(v, 2 + i * 2));
      return b;
    }
    if (low.length <= 4096) {
      const b = Buffer.alloc(low.length * 2);
      low.forEach((v, i) => b.writeUInt16LE(v, i * 2));
      return b;
    }
    const b = Buffer.alloc(8192);
    for (const v of low) b[v >> 3] |= 1 << (v & 7);
    return b;
  });
  const header: Buffer[] = [];
  const n = keys.length;
  if (runs) {
    const cookie = Buffer.alloc(4);
    cookie.writeUInt32LE(12347 | ((n - 1) << 16), 0);
    header.push(cookie, Buffer.alloc(Math.ceil(n / 8), 0xff));
  } else {
    const cookie = Buffer.alloc(8);
    cookie.writeUInt32LE(12346, 0);
    cookie.writeUInt32LE(n, 4);
    header.push(cookie);
  }
  const descriptive = Buffer.alloc(4 * n);
  keys.forEach((key, i) => {
    descriptive.writeUInt16LE(key, i * 4);
    descriptive.writeUInt16LE((containers.get(key) as number[]).length - 1, i * 4 + 2);
  });
  header.push(descriptive);
  if (!runs || n >= 4) {
    const offsets = Buffer.alloc(4 * n);
    let at = header.reduce((k, b) => k + b.length, 0) + 4 * n;
    bodies.forEach((b, i) => {
      offsets.writeUInt32LE(at, i * 4);
      at += b.length;
    });
    header.push(offsets);
  }
  return Buffer.concat([...header, ...bodies]);
}

/** A `deletion-vector-v1` blob: length, magic, portable 64-bit Roaring bitmap, CRC-32. */
export function deletionVectorBlob(positions: readonly bigint[], options: { runs?: boolean } = {}): Buffer {
  const sorted = [...new Set(positions)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const byHigh = new Map<number, number[]>();
  for (const p of sorted) {
    const high = Number(p >> 32n);
    let l = byHigh.get(high);
    if (!l) byHigh.set(high, (l = []));
    l.push(Number(p & 0xffffffffn));
  }
  const count = Buffer.alloc(8);
  count.writeBigUInt64LE(BigInt(byHigh.size), 0);
  const parts: Buffer[] = [count];
  for (const [high, low] of byHigh) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(high, 0);
    parts.push(key, roaring32(low, options.runs ?? false));
  }
  const body = Buffer.concat([Buffer.from([0xd1, 0xd3, 0x39, 0x64]), ...parts]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length, 0);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([length, body, crc]);
}

/**
 * Write a Puffin file of deletion vectors (magic, blobs, footer) at `path`; returns each
 * vector's place in it, for the manifest entry (content_offset, content_size_in_bytes).
 */
export function writeDeletionVectors(
  path: string,
  vectors: { referencedDataFile: string; positions: readonly bigint[]; runs?: boolean }[],
): { offset: number; length: number; cardinality: number }[] {
  const magic = Buffer.from('PFA1', 'latin1');
  const blobs: Buffer[] = [];
  const out: { offset: number; length: number; cardinality: number }[] = [];
  let at = magic.length;
  for (const v of vectors) {
    const blob = deletionVectorBlob(v.positions, { runs: v.runs });
    out.push({ offset: at, length: blob.length, cardinality: new Set(v.positions).size });
    blobs.push(blob);
    at += blob.length;
  }
  const footer = Buffer.from(JSON.stringify({
    blobs: vectors.map((v, i) => ({
      type: 'deletion-vector-v1',
      fields: [2147483545],
      'snapshot-id': -1,
      'sequence-number': -1,
      offset: out[i].offset,
      length: out[i].length,
      properties: { 'referenced-data-file': v.referencedDataFile, cardinality: String(out[i].cardinality) },
    })),
  }), 'utf8');
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(footer.length, 0);
  writeFileSync(path, Buffer.concat([magic, ...blobs, magic, footer, tail, magic]));
  return out;
}
