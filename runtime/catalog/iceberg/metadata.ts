// Iceberg table metadata (spec: Table Metadata, Snapshots, Appendix C): parsing format v1, v2
// and v3 `metadata.json` (v3's row-lineage fields are tolerated, not used), finding a table's
// current metadata file in its directory, and choosing the snapshot a read sees (current, by
// id, or as of a time: Appendix F).

import { gunzipSync } from 'node:zlib';
import { PuffinError } from '../../errors.ts';
import { joinUri, type FileIO } from './io.ts';
import { parseTransform, type Transform } from './transforms.ts';
import { parseSchema, type IcebergSchema } from './types.ts';

export interface PartitionField {
  sourceId: number;
  fieldId: number;
  name: string;
  transform: Transform;
}

export interface PartitionSpec {
  specId: number;
  fields: PartitionField[];
}

export interface SortField {
  sourceId: number;
  transform: Transform;
  direction: 'asc' | 'desc';
  nullOrder: 'nulls-first' | 'nulls-last';
}

export interface SortOrder {
  orderId: number;
  fields: SortField[];
}

export interface Snapshot {
  snapshotId: bigint;
  parentSnapshotId?: bigint;
  /** 0 for v1 tables (spec: Appendix E). */
  sequenceNumber: bigint;
  timestampMs: number;
  /** Location of the manifest list (always in v2). */
  manifestList?: string;
  /** v1 only: manifest locations listed inline instead of a manifest list. */
  manifests?: string[];
  summary: Record<string, string>;
  schemaId?: number;
  /** v3 row lineage: the first row id assigned to this snapshot's new rows. */
  firstRowId?: bigint;
  /** v3 row lineage: how many row ids this snapshot assigned. */
  addedRows?: bigint;
}

export interface SnapshotRef {
  snapshotId: bigint;
  type: 'branch' | 'tag';
  minSnapshotsToKeep?: number;
  maxSnapshotAgeMs?: number;
  maxRefAgeMs?: number;
}

export interface TableMetadata {
  formatVersion: 1 | 2 | 3;
  tableUuid?: string;
  location: string;
  lastSequenceNumber: bigint;
  lastUpdatedMs: number;
  lastColumnId: number;
  schemas: IcebergSchema[];
  currentSchemaId: number;
  partitionSpecs: PartitionSpec[];
  defaultSpecId: number;
  lastPartitionId?: number;
  sortOrders: SortOrder[];
  defaultSortOrderId: number;
  properties: Record<string, string>;
  /** null when the table has no snapshot yet. */
  currentSnapshotId: bigint | null;
  snapshots: Snapshot[];
  snapshotLog: { timestampMs: number; snapshotId: bigint }[];
  metadataLog: { timestampMs: number; metadataFile: string }[];
  refs: Record<string, SnapshotRef>;
  /** v3 row lineage: the next row id to assign (0 when absent). */
  nextRowId?: bigint;
}

export const SUPPORTED_FORMAT_VERSIONS = [1, 2, 3] as const;

/** Format versions every PuffinDB writer path writes; v3 only where the caller keeps row lineage. */
export const WRITABLE_FORMAT_VERSIONS: readonly number[] = [1, 2];

/**
 * Refuse to commit to (or write metadata for) a table whose format the calling path does not
 * write. A v3 commit must keep row lineage (next-row-id, first_row_id) and write deletion
 * vectors instead of position delete files: the paths that do (commit.ts's commits, the
 * writer's INSERT / DELETE / UPDATE, MERGE, DDL, and maintenance: compaction,
 * rewrite_manifests, snapshot expiry) pass `{ v3: true }`; a path that does not refuses v3
 * tables. A format past v3 is refused everywhere.
 */
export function assertWritableFormat(metadata: Pick<TableMetadata, 'formatVersion'>, table: string, options: { v3?: boolean } = {}): void {
  if (metadata.formatVersion === 3 && options.v3) return;
  if (!WRITABLE_FORMAT_VERSIONS.includes(metadata.formatVersion)) {
    throw new PuffinError(
      'unsupported',
      metadata.formatVersion === 3
        ? `table ${table} is Iceberg format v3: PuffinDB writes v3 tables with INSERT, DELETE, UPDATE, MERGE, DDL and maintenance, but not with this operation yet; use one of those, or another engine`
        : `table ${table} is Iceberg format v${metadata.formatVersion}: PuffinDB writes format v1 to v3 only`,
    );
  }
}

/**
 * JSON.parse loses integers past 2^53, and snapshot ids are 63-bit: quote every integer
 * literal of 16 or more digits (outside strings) so it arrives as text for BigInt.
 */
export function quoteBigIntegers(text: string): string {
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + (c === 0x2d ? 1 : 0);
      while (j < text.length && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x39) j++;
      const next = text.charCodeAt(j);
      const isInteger = next !== 0x2e && next !== 0x65 && next !== 0x45;
      if (isInteger && j - i >= 16) {
        out += `${text.slice(last, i)}"${text.slice(i, j)}"`;
        last = j;
      }
      i = j - 1;
    }
  }
  return out + text.slice(last);
}

type Json = Record<string, unknown>;

class Reader {
  constructor(readonly file: string) {}

  fail(message: string): never {
    throw new PuffinError('bad_request', `${this.file}: ${message}`);
  }

  int(obj: Json, key: string, fallback?: number): number {
    const v = obj[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return this.fail(`required field '${key}' is missing`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.fail(`field '${key}' must be an integer, got ${JSON.stringify(v)}`);
    return v;
  }

  long(obj: Json, key: string, fallback?: bigint): bigint {
    const v = obj[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return this.fail(`required field '${key}' is missing`);
    }
    if ((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v))) return BigInt(v);
    return this.fail(`field '${key}' must be an integer, got ${JSON.stringify(v)}`);
  }

  optionalLong(obj: Json, key: string): bigint | undefined {
    return obj[key] === undefined || obj[key] === null ? undefined : this.long(obj, key);
  }

  string(obj: Json, key: string): string {
    const v = obj[key];
    if (typeof v !== 'string') return this.fail(`required field '${key}' is missing or not a string`);
    return v;
  }

  list(obj: Json, key: string): Json[] {
    const v = obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return this.fail(`field '${key}' must be a list`);
    return v as Json[];
  }

  stringMap(obj: Json, key: string): Record<string, string> {
    const v = obj[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) return this.fail(`field '${key}' must be an object`);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v as Json)) out[k] = typeof val === 'string' ? val : JSON.stringify(val);
    return out;
  }
}

function parsePartitionFields(r: Reader, fields: Json[], nextId: { value: number }): PartitionField[] {
  return fields.map((f) => {
    const hasId = f['field-id'] !== undefined && f['field-id'] !== null;
    // v1 specs carry no field ids; the reference implementation numbered them from 1000.
    const fieldId = hasId ? r.int(f, 'field-id') : nextId.value;
    nextId.value = Math.max(nextId.value, fieldId) + 1;
    if (f['source-ids'] !== undefined && f['source-id'] === undefined) {
      r.fail(`partition field '${String(f.name)}' uses a multi-argument transform, which format v1/v2 readers do not support`);
    }
    return { sourceId: r.int(f, 'source-id'), fieldId, name: r.string(f, 'name'), transform: parseTransform(r.string(f, 'transform')) };
  });
}

/** Parse the partition fields list stored in a manifest's `partition-spec` metadata. */
export function parsePartitionFieldsJson(json: unknown, file: string): PartitionField[] {
  if (!Array.isArray(json)) throw new PuffinError('bad_request', `${file}: partition-spec must be a list of fields`);
  return parsePartitionFields(new Reader(file), json as Json[], { value: 1000 });
}

/** Parse a metadata.json document. `file` names it in every error. */
export function parseTableMetadata(text: string, file: string): TableMetadata {
  let root: unknown;
  try {
    root = JSON.parse(quoteBigIntegers(text));
  } catch (err) {
    // JSON.parse's message quotes the text around the error: never echo a file's content.
    throw new PuffinError('bad_request', `${file} is not an Iceberg metadata file (not valid JSON)`);
  }
  if (!root || typeof root !== 'object' || Array.isArray(root)) throw new PuffinError('bad_request', `${file} is not a table metadata object`);
  const r = new Reader(file);
  const m = root as Json;

  const rawVersion = m['format-version'];
  if (rawVersion !== 1 && rawVersion !== 2 && rawVersion !== 3) {
    const version = rawVersion;
    if (typeof version === 'number' && version > 3) {
      throw new PuffinError(
        'unsupported',
        `${file}: Iceberg format version ${version} is not supported; this reader implements format versions 1, 2 and 3`,
      );
    }
    return r.fail(`'format-version' must be 1, 2 or 3, got ${JSON.stringify(version)}`);
  }
  const version: 1 | 2 | 3 = rawVersion;

  const schemaJsons = m.schemas !== undefined ? r.list(m, 'schemas') : m.schema !== undefined ? [m.schema as Json] : r.fail(`required field 'schemas' is missing`);
  const schemas = schemaJsons.map((s, i) => parseSchema(s, file, i));
  const currentSchemaId = m['current-schema-id'] !== undefined ? r.int(m, 'current-schema-id') : schemas[0]?.schemaId ?? 0;
  if (!schemas.some((s) => s.schemaId === currentSchemaId)) r.fail(`current-schema-id ${currentSchemaId} names no schema`);

  let partitionSpecs: PartitionSpec[];
  if (m['partition-specs'] !== undefined) {
    partitionSpecs = r.list(m, 'partition-specs').map((s) => ({ specId: r.int(s, 'spec-id'), fields: parsePartitionFields(r, r.list(s, 'fields'), { value: 1000 }) }));
  } else if (m['partition-spec'] !== undefined) {
    partitionSpecs = [{ specId: 0, fields: parsePartitionFields(r, r.list(m, 'partition-spec'), { value: 1000 }) }];
  } else if (version === 1) {
    partitionSpecs = [{ specId: 0, fields: [] }];
  } else {
    return r.fail(`required field 'partition-specs' is missing`);
  }
  const defaultSpecId = r.int(m, 'default-spec-id', partitionSpecs[0]?.specId ?? 0);

  const sortOrders: SortOrder[] = r.list(m, 'sort-orders').map((o) => ({
    orderId: r.int(o, 'order-id'),
    fields: r.list(o, 'fields').map((f) => ({
      sourceId: r.int(f, 'source-id', -1),
      transform: parseTransform(typeof f.transform === 'string' ? f.transform : 'identity'),
      direction: f.direction === 'desc' ? 'desc' : 'asc',
      nullOrder: f['null-order'] === 'nulls-last' ? 'nulls-last' : 'nulls-first',
    })),
  }));

  const snapshots: Snapshot[] = r.list(m, 'snapshots').map((s) => {
    const snapshot: Snapshot = {
      snapshotId: r.long(s, 'snapshot-id'),
      sequenceNumber: version === 1 ? r.long(s, 'sequence-number', 0n) : r.long(s, 'sequence-number'),
      timestampMs: r.int(s, 'timestamp-ms'),
      summary: r.stringMap(s, 'summary'),
    };
    const parent = r.optionalLong(s, 'parent-snapshot-id');
    if (parent !== undefined) snapshot.parentSnapshotId = parent;
    if (typeof s['manifest-list'] === 'string') snapshot.manifestList = s['manifest-list'];
    else if (Array.isArray(s.manifests) && version === 1) snapshot.manifests = s.manifests.map(String);
    else r.fail(`snapshot ${snapshot.snapshotId} has no 'manifest-list'`);
    if (s['schema-id'] !== undefined && s['schema-id'] !== null) snapshot.schemaId = r.int(s, 'schema-id');
    const firstRowId = r.optionalLong(s, 'first-row-id');
    if (firstRowId !== undefined) snapshot.firstRowId = firstRowId;
    const addedRows = r.optionalLong(s, 'added-rows');
    if (addedRows !== undefined) snapshot.addedRows = addedRows;
    return snapshot;
  });

  const refs: Record<string, SnapshotRef> = {};
  const refsJson = m.refs;
  if (refsJson && typeof refsJson === 'object') {
    for (const [name, ref] of Object.entries(refsJson as Record<string, Json>)) {
      refs[name] = {
        snapshotId: r.long(ref, 'snapshot-id'),
        type: ref.type === 'tag' ? 'tag' : 'branch',
        ...(typeof ref['min-snapshots-to-keep'] === 'number' ? { minSnapshotsToKeep: ref['min-snapshots-to-keep'] } : {}),
        ...(typeof ref['max-snapshot-age-ms'] === 'number' ? { maxSnapshotAgeMs: ref['max-snapshot-age-ms'] } : {}),
        ...(typeof ref['max-ref-age-ms'] === 'number' ? { maxRefAgeMs: ref['max-ref-age-ms'] } : {}),
      };
    }
  }

  // -1 was the "no snapshot" marker of older writers.
  let currentSnapshotId = r.optionalLong(m, 'current-snapshot-id') ?? null;
  if (currentSnapshotId === -1n) currentSnapshotId = null;
  if (currentSnapshotId === null && refs.main) currentSnapshotId = refs.main.snapshotId;
  if (currentSnapshotId !== null && !snapshots.some((s) => s.snapshotId === currentSnapshotId)) {
    r.fail(`current-snapshot-id ${currentSnapshotId} names no snapshot in 'snapshots'`);
  }

  const tableUuid = m['table-uuid'];
  return {
    formatVersion: version,
    ...(typeof tableUuid === 'string' ? { tableUuid } : {}),
    location: r.string(m, 'location'),
    lastSequenceNumber: version === 1 ? r.long(m, 'last-sequence-number', 0n) : r.long(m, 'last-sequence-number'),
    lastUpdatedMs: r.int(m, 'last-updated-ms'),
    lastColumnId: r.int(m, 'last-column-id'),
    schemas,
    currentSchemaId,
    partitionSpecs,
    defaultSpecId,
    ...(m['last-partition-id'] !== undefined ? { lastPartitionId: r.int(m, 'last-partition-id') } : {}),
    sortOrders,
    defaultSortOrderId: r.int(m, 'default-sort-order-id', 0),
    properties: r.stringMap(m, 'properties'),
    currentSnapshotId,
    snapshots,
    snapshotLog: r.list(m, 'snapshot-log').map((e) => ({ timestampMs: r.int(e, 'timestamp-ms'), snapshotId: r.long(e, 'snapshot-id') })),
    metadataLog: r.list(m, 'metadata-log').map((e) => ({ timestampMs: r.int(e, 'timestamp-ms'), metadataFile: r.string(e, 'metadata-file') })),
    refs,
    ...(version === 3 ? { nextRowId: r.optionalLong(m, 'next-row-id') ?? 0n } : {}),
  };
}

/** Decode a metadata file's bytes (the spec allows GZIP) and parse it. */
export function decodeTableMetadata(bytes: Uint8Array, file: string): TableMetadata {
  let raw = bytes;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw);
    } catch (err) {
      throw new PuffinError('bad_request', `${file} looks gzip-compressed but does not decompress: ${(err as Error).message}`);
    }
  }
  return parseTableMetadata(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'), file);
}

/** The version a metadata file name carries: v12.metadata.json, 00012-<uuid>.metadata.json. */
export function metadataFileVersion(name: string): number | undefined {
  const m = /^v(\d+)(?:\.gz)?\.metadata\.json(?:\.gz)?$/.exec(name) ?? /^(\d+)-[^/]*\.metadata\.json(?:\.gz)?$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The current metadata file of a table directory: the version in `metadata/version-hint.text`
 * (advanced past newer files a lagging hint missed, as Hadoop tables allow), else the
 * highest-numbered metadata file.
 */
export async function findCurrentMetadataFile(tableDirUri: string, io: FileIO): Promise<string> {
  const metadataDir = joinUri(tableDirUri, 'metadata');
  const names = await io.list(metadataDir);
  const versions = names
    .map((name) => ({ name, version: metadataFileVersion(name) }))
    .filter((x): x is { name: string; version: number } => x.version !== undefined)
    .sort((a, b) => a.version - b.version || a.name.localeCompare(b.name));

  const hintUri = joinUri(metadataDir, 'version-hint.text');
  if (names.includes('version-hint.text') || (names.length === 0 && (await io.exists(hintUri)))) {
    const hint = Buffer.from(await io.read(hintUri)).toString('utf8').trim();
    const present = async (name: string): Promise<boolean> => names.includes(name) || (names.length === 0 && (await io.exists(joinUri(metadataDir, name))));
    let chosen: string | undefined;
    if (/^\d+$/.test(hint)) {
      // Hadoop's convention: a version number, v<N>.metadata.json.
      const n = Number(hint);
      const newest = versions.filter((v) => v.version >= n).pop();
      chosen = newest?.name;
      for (const name of [`v${n}.metadata.json`, `v${n}.gz.metadata.json`, `${hint}.metadata.json`]) if (!chosen && (await present(name))) chosen = name;
    } else if (/\.metadata\.json(\.gz)?$/.test(hint)) {
      chosen = hint.slice(hint.lastIndexOf('/') + 1);
    } else if (hint) {
      // A bare file name without its suffix (`00001-<uuid>`), as DuckDB and Spark accept:
      // exactly that file; its number says nothing about files with other uuids.
      const base = hint.slice(hint.lastIndexOf('/') + 1);
      for (const name of [`${base}.metadata.json`, `${base}.gz.metadata.json`, `${base}.metadata.json.gz`]) if (!chosen && (await present(name))) chosen = name;
    }
    if (!chosen) throw new PuffinError('not_found', `${hintUri} names version '${hint}', but no such metadata file exists in ${metadataDir}`);
    return joinUri(metadataDir, chosen);
  }
  const last = versions.pop();
  if (!last) throw new PuffinError('not_found', `${tableDirUri} has no Iceberg metadata: no version-hint.text and no *.metadata.json in ${metadataDir}`);
  return joinUri(metadataDir, last.name);
}

export interface SnapshotSelector {
  snapshotId?: bigint | string;
  asOfTimestampMs?: number;
  /** A branch or tag name. */
  ref?: string;
}

/**
 * The snapshot a read sees: by id, by ref, as of a time (the newest snapshot-log entry at or
 * before it, per Appendix F; tables without a log fall back to the snapshots' own times),
 * or the current one. Undefined only for the current snapshot of a table that has none.
 */
export function selectSnapshot(metadata: TableMetadata, selector: SnapshotSelector = {}, file = 'table'): Snapshot | undefined {
  const byId = (id: bigint): Snapshot | undefined => metadata.snapshots.find((s) => s.snapshotId === id);
  if (selector.snapshotId !== undefined) {
    const id = BigInt(selector.snapshotId);
    const s = byId(id);
    if (!s) throw new PuffinError('not_found', `${file}: snapshot ${id} does not exist (known: ${metadata.snapshots.map((x) => x.snapshotId).join(', ') || 'none'})`);
    return s;
  }
  if (selector.ref !== undefined) {
    const ref = metadata.refs[selector.ref];
    if (!ref) throw new PuffinError('not_found', `${file}: no branch or tag named '${selector.ref}'`);
    const s = byId(ref.snapshotId);
    if (!s) throw new PuffinError('not_found', `${file}: ref '${selector.ref}' names snapshot ${ref.snapshotId}, which does not exist`);
    return s;
  }
  if (selector.asOfTimestampMs !== undefined) {
    const t = selector.asOfTimestampMs;
    const history = metadata.snapshotLog.length > 0
      ? metadata.snapshotLog
      : metadata.snapshots.map((s) => ({ timestampMs: s.timestampMs, snapshotId: s.snapshotId }));
    let chosen: { timestampMs: number; snapshotId: bigint } | undefined;
    for (const entry of history) if (entry.timestampMs <= t && (!chosen || entry.timestampMs >= chosen.timestampMs)) chosen = entry;
    if (!chosen) {
      const first = history.length ? Math.min(...history.map((h) => h.timestampMs)) : undefined;
      throw new PuffinError('not_found', `${file}: no snapshot at or before ${new Date(t).toISOString()}${first !== undefined ? ` (the oldest is ${new Date(first).toISOString()})` : ' (the table has no snapshots)'}`);
    }
    const s = byId(chosen.snapshotId);
    if (!s) throw new PuffinError('not_found', `${file}: the snapshot current at ${new Date(t).toISOString()} (${chosen.snapshotId}) has expired`);
    return s;
  }
  return metadata.currentSnapshotId === null ? undefined : byId(metadata.currentSnapshotId);
}

/** The schema to read a snapshot with: its own when traveling in time, else the current one. */
export function schemaFor(metadata: TableMetadata, snapshot: Snapshot | undefined, timeTravel: boolean): IcebergSchema {
  const id = timeTravel && snapshot?.schemaId !== undefined ? snapshot.schemaId : metadata.currentSchemaId;
  return metadata.schemas.find((s) => s.schemaId === id) ?? (metadata.schemas.find((s) => s.schemaId === metadata.currentSchemaId) as IcebergSchema);
}
