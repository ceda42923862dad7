// A tiny Delta Lake writer for tests, following the protocol (PROTOCOL.md of delta-io/delta):
// data files written by DuckDB COPY (physical column names and Parquet field ids as column
// mapping asks), commits as newline-delimited JSON actions, deletion vectors in the
// RoaringBitmapArray format (inline, Z85, or in a deletion_vector_<uuid>.bin file), and
// checkpoints (classic, multi-part, v2 with a sidecar) as Parquet written by DuckDB.
// Independent of the reader: it shares no code with runtime/catalog/delta/ but the Z85 table.

import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Engine } from '../../runtime/engine/engine.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

export type Action = Record<string, unknown>;

export function version20(v: number): string {
  return String(v).padStart(20, '0');
}

export function writeCommit(root: string, version: number, actions: Action[]): void {
  mkdirSync(join(root, '_delta_log'), { recursive: true });
  writeFileSync(join(root, '_delta_log', `${version20(version)}.json`), actions.map((a) => JSON.stringify(a)).join('\n') + '\n', { flag: 'wx' });
}

export function protocol(minReaderVersion: number, readerFeatures?: string[]): Action {
  return { protocol: { minReaderVersion, minWriterVersion: readerFeatures ? 7 : 2, ...(readerFeatures ? { readerFeatures, writerFeatures: readerFeatures } : {}) } };
}

export interface FieldSpec {
  name: string;
  type: unknown;
  /** Column mapping: the physical name and id. */
  physicalName?: string;
  id?: number;
}

export function metaData(fields: FieldSpec[], partitionColumns: string[] = [], configuration: Record<string, string> = {}): Action {
  const schema = {
    type: 'struct',
    fields: fields.map((f) => ({
      name: f.name, type: f.type, nullable: true,
      metadata: f.physicalName !== undefined ? { 'delta.columnMapping.id': f.id, 'delta.columnMapping.physicalName': f.physicalName } : {},
    })),
  };
  return { metaData: { id: randomUUID(), format: { provider: 'parquet', options: {} }, schemaString: JSON.stringify(schema), partitionColumns, configuration, createdTime: 0 } };
}

export function commitInfo(timestampMs: number): Action {
  return { commitInfo: { timestamp: timestampMs, operation: 'WRITE' } };
}

/**
 * Writes `selectSql`'s rows as a Parquet file at `relPath` under root; `fieldIds` names the
 * Parquet field id of each output column (column mapping 'id'/'name' files). Returns the
 * `add` action (with `stats` when given).
 */
export async function writeDataFile(engine: Engine, root: string, relPath: string, selectSql: string, options: { fieldIds?: Record<string, unknown>; partitionValues?: Record<string, string | null>; stats?: Record<string, unknown>; deletionVector?: Action } = {}): Promise<Action> {
  const path = join(root, relPath);
  mkdirSync(join(path, '..'), { recursive: true });
  const ids = options.fieldIds ? `, FIELD_IDS ${fieldIdsSql(options.fieldIds)}` : '';
  await engine.query(`COPY (${selectSql}) TO ${sqlString(path)} (FORMAT parquet${ids})`);
  return {
    add: {
      path: relPath.split('/').map(encodeURIComponent).join('/'),
      partitionValues: options.partitionValues ?? {},
      size: statSync(path).size,
      modificationTime: 0,
      dataChange: true,
      ...(options.stats ? { stats: JSON.stringify(options.stats) } : {}),
      ...(options.deletionVector ? { deletionVector: options.deletionVector } : {}),
    },
  };
}

/** DuckDB's FIELD_IDS: {col: id} or, for a struct, {col: {__duckdb_field_id: id, child: id}}. */
function fieldIdsSql(ids: Record<string, unknown>): string {
  return `{${Object.entries(ids).map(([k, v]) => `${k === '__duckdb_field_id' ? k : sqlString(k)}: ${typeof v === 'number' ? v : fieldIdsSql(v as Record<string, unknown>)}`).join(', ')}}`;
}

export function removeAction(add: Action): Action {
  const a = add.add as Record<string, unknown>;
  return { remove: { path: a.path, deletionTimestamp: 0, dataChange: true, ...(a.deletionVector ? { deletionVector: a.deletionVector } : {}) } };
}

// Deletion vectors.

function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** 32-bit Roaring "portable" serialization, array and bitmap containers (no runs). */
function roaring32(values: number[]): number[] {
  const containers = new Map<number, number[]>();
  for (const v of values) {
    const key = v >>> 16;
    if (!containers.has(key)) containers.set(key, []);
    containers.get(key)!.push(v & 0xffff);
  }
  const keys = [...containers.keys()].sort((a, b) => a - b);
  const out: number[] = [...u32le(12346), ...u32le(keys.length)];
  const bodies: number[][] = keys.map((k) => {
    const lows = [...new Set(containers.get(k)!)].sort((a, b) => a - b);
    if (lows.length <= 4096) return lows.flatMap((l) => [l & 0xff, l >>> 8]);
    const bits = new Array(8192).fill(0);
    for (const l of lows) bits[l >> 3] |= 1 << (l & 7);
    return bits;
  });
  for (const k of keys) {
    const card = new Set(containers.get(k)!).size;
    out.push(k & 0xff, k >>> 8, (card - 1) & 0xff, (card - 1) >>> 8);
  }
  let offset = out.length + 4 * keys.length;
  for (const b of bodies) {
    out.push(...u32le(offset));
    offset += b.length;
  }
  for (const b of bodies) out.push(...b);
  return out;
}

/** Delta's RoaringBitmapArray: magic 1681511377 (LE), u64 LE count, per bitmap u32 key + 32-bit bitmap. */
export function roaringBitmapArray(positions: number[]): Uint8Array {
  const high = new Map<number, number[]>();
  for (const p of positions) {
    const h = Math.floor(p / 2 ** 32);
    if (!high.has(h)) high.set(h, []);
    high.get(h)!.push(p % 2 ** 32);
  }
  const keys = [...high.keys()].sort((a, b) => a - b);
  const out: number[] = [...u32le(1681511377), ...u32le(keys.length), 0, 0, 0, 0];
  for (const k of keys) out.push(...u32le(k), ...roaring32(high.get(k)!));
  return new Uint8Array(out);
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

export function z85(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v = bytes[i] * 2 ** 24 + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chunk: string[] = [];
    for (let k = 0; k < 5; k++) {
      chunk.unshift(Z85[v % 85]);
      v = Math.floor(v / 85);
    }
    s += chunk.join('');
  }
  return s;
}

/** An inline (`i`) deletion vector descriptor. */
export function inlineDeletionVector(positions: number[]): Action {
  const data = roaringBitmapArray(positions);
  const padded = new Uint8Array(Math.ceil(data.length / 4) * 4);
  padded.set(data);
  return { storageType: 'i', pathOrInlineDv: z85(padded), sizeInBytes: data.length, cardinality: new Set(positions).size };
}

/**
 * A file of deletion vectors (version byte 1, then each vector as u32 BE size, data, u32 BE
 * CRC-32) at <root>/<prefix>/deletion_vector_<uuid>.bin; one descriptor per vector. With
 * `absolute`, the descriptors use storage type `p` and the file's URI.
 */
export function deletionVectorFile(root: string, vectors: number[][], options: { prefix?: string; absolute?: boolean } = {}): Action[] {
  const uuid = randomUUID();
  const dir = options.prefix ? join(root, options.prefix) : root;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `deletion_vector_${uuid}.bin`);
  const parts: number[] = [1];
  const descriptors: Action[] = [];
  for (const positions of vectors) {
    const data = roaringBitmapArray(positions);
    const offset = parts.length;
    const size = [data.length >>> 24, (data.length >>> 16) & 0xff, (data.length >>> 8) & 0xff, data.length & 0xff];
    const c = crc32(data);
    parts.push(...size, ...data, c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff);
    const uuidBytes = Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
    descriptors.push(options.absolute
      ? { storageType: 'p', pathOrInlineDv: `file://${path}`, offset, sizeInBytes: data.length, cardinality: new Set(positions).size }
      : { storageType: 'u', pathOrInlineDv: `${options.prefix ?? ''}${z85(uuidBytes)}`, offset, sizeInBytes: data.length, cardinality: new Set(positions).size });
  }
  writeFileSync(path, Uint8Array.from(parts));
  return descriptors;
}

// Checkpoints.

const CHECKPOINT_COLUMNS = {
  add: 'STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, deletionVector STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, "offset" INTEGER, sizeInBytes INTEGER, cardinality BIGINT))',
  remove: 'STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN)',
  metaData: 'STRUCT(id VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)',
  protocol: 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])',
  sidecar: 'STRUCT(path VARCHAR, sizeInBytes BIGINT, modificationTime BIGINT)',
  checkpointMetadata: 'STRUCT(version BIGINT)',
};

/** Writes actions (one per row) to a Parquet file in the checkpoint schema, via DuckDB. */
export async function writeActionsParquet(engine: Engine, path: string, actions: Action[], columns: (keyof typeof CHECKPOINT_COLUMNS)[] = ['add', 'remove', 'metaData', 'protocol']): Promise<void> {
  const tmp = `${path}.ndjson`;
  writeFileSync(tmp, actions.map((a) => JSON.stringify(a)).join('\n') + '\n');
  const spec = `{${columns.map((c) => `${sqlString(c)}: ${sqlString(CHECKPOINT_COLUMNS[c])}`).join(', ')}}`;
  try {
    await engine.query(`COPY (SELECT * FROM read_json(${sqlString(tmp)}, format = 'newline_delimited', columns = ${spec})) TO ${sqlString(path)} (FORMAT parquet)`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** A classic single-file checkpoint of `version` holding `actions`, and `_last_checkpoint`. */
export async function writeCheckpoint(engine: Engine, root: string, version: number, actions: Action[]): Promise<void> {
  await writeActionsParquet(engine, join(root, '_delta_log', `${version20(version)}.checkpoint.parquet`), actions);
  writeFileSync(join(root, '_delta_log', '_last_checkpoint'), JSON.stringify({ version, size: actions.length }));
}

/** A multi-part checkpoint: the actions split over `parts` files. */
export async function writeMultiPartCheckpoint(engine: Engine, root: string, version: number, actions: Action[], parts: number): Promise<void> {
  for (let i = 0; i < parts; i++) {
    const slice = actions.filter((_, k) => k % parts === i);
    const name = `${version20(version)}.checkpoint.${String(i + 1).padStart(10, '0')}.${String(parts).padStart(10, '0')}.parquet`;
    await writeActionsParquet(engine, join(root, '_delta_log', name), slice);
  }
  writeFileSync(join(root, '_delta_log', '_last_checkpoint'), JSON.stringify({ version, size: actions.length, parts }));
}

/** A v2 checkpoint (UUID-named, Parquet or JSON) whose file actions live in one sidecar file. */
export async function writeV2Checkpoint(engine: Engine, root: string, version: number, actions: Action[], format: 'parquet' | 'json' = 'parquet'): Promise<void> {
  const fileActions = actions.filter((a) => 'add' in a || 'remove' in a);
  const others = actions.filter((a) => !('add' in a || 'remove' in a));
  mkdirSync(join(root, '_delta_log', '_sidecars'), { recursive: true });
  const sidecar = `${randomUUID()}.parquet`;
  await writeActionsParquet(engine, join(root, '_delta_log', '_sidecars', sidecar), fileActions, ['add', 'remove']);
  const top = [...others, { checkpointMetadata: { version } }, { sidecar: { path: sidecar, sizeInBytes: statSync(join(root, '_delta_log', '_sidecars', sidecar)).size, modificationTime: 0 } }];
  const name = `${version20(version)}.checkpoint.${randomUUID()}.${format}`;
  if (format === 'json') writeFileSync(join(root, '_delta_log', name), top.map((a) => JSON.stringify(a)).join('\n') + '\n');
  else await writeActionsParquet(engine, join(root, '_delta_log', name), top, ['metaData', 'protocol', 'checkpointMetadata', 'sidecar']);
  writeFileSync(join(root, '_delta_log', '_last_checkpoint'), JSON.stringify({ version, size: top.length }));
}
