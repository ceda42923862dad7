// DDL on Iceberg tables: schema evolution (ADD / DROP / RENAME COLUMN, type promotion,
// nullability), partition evolution, table properties, RENAME TO, DROP [PURGE] and
// TRUNCATE. Each is one metadata commit through the table's pointer (compare-and-swap):
// a metadata change is a function of the base metadata, so one that loses the race is
// re-validated and re-applied on the new base (the table uuid must be the same table);
// TRUNCATE is an `overwrite` snapshot with commit.ts's rules.
//
// The rules are the spec's (Schema Evolution, Partition Evolution): columns get new ids and
// are never reused; a type changes only by the allowed promotions (int -> long, float ->
// double, decimal(P, S) -> decimal(P', S) with P' > P); a required column may become
// optional, never the reverse (older files may hold NULLs), and a new column is optional
// (format v2 has no defaults for older rows); a column a partition spec or the identifier
// fields use cannot be dropped. A new partition spec applies to files written after it:
// older files keep theirs (manifests record each file's spec id), and scan planning prunes
// each manifest by its own spec.

import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../errors.ts';
import { commitTable, loadTable, writeMetadataFile, type LoadedTable } from './commit.ts';
import { DELETED, decodeManifest, decodeManifestList } from './manifest.ts';
import type { PartitionField, PartitionSpec, TableMetadata } from './metadata.ts';
import { assertWritableFormat } from './metadata.ts';
import type { PointerStore } from './pointer-store.ts';
import { transformToString } from './transforms.ts';
import { ARRAY_SIZE_PREFIX, checkArraySizeProperties, duckArraySize } from './array-sizes.ts';
import { isPrimitive, toDuckDBType, type IcebergSchema, type IcebergType, type NestedField, type PrimitiveType } from './types.ts';
import { FieldIdAllocator, icebergTypeOf, parsePartitionTerms, partitionSpecFor, type DuckDBColumn } from './writer-schema.ts';
import type { TableIO } from './writer-io.ts';
import { columnsFromDefinitions } from './writer.ts';

export type AlterAction =
  | { op: 'add_column'; column: string; /** `name TYPE [NOT NULL]` as written */ definition: string; ifNotExists: boolean }
  | { op: 'drop_column'; column: string; ifExists: boolean }
  | { op: 'rename_column'; column: string; to: string }
  | { op: 'set_type'; column: string; type: string }
  | { op: 'set_not_null' | 'drop_not_null'; column: string }
  | { op: 'set_partitioning'; /** The inside of PARTITIONED BY (...); empty: unpartitioned. */ partitionBy: string }
  | { op: 'set_properties'; properties: Record<string, string> }
  | { op: 'rename_table'; to: string };

export interface DdlContext {
  conn: DuckDBConnection;
  store: PointerStore;
  io: TableIO;
}

export interface DdlResult {
  metadataLocation: string;
  /** Rows removed (TRUNCATE), else 0. */
  rowsAffected: number;
  snapshotId: string | null;
}

const DEFAULT_ATTEMPTS = 40;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function currentSchema(m: TableMetadata): IcebergSchema {
  const s = m.schemas.find((x) => x.schemaId === m.currentSchemaId);
  if (!s) throw new PuffinError('bad_request', `the table's current schema ${m.currentSchemaId} is not defined`);
  return s;
}

/** A top-level column by name: exact first, then case-insensitively (as DuckDB binds names). */
function findColumn(schema: IcebergSchema, name: string): NestedField | undefined {
  return schema.fields.find((f) => f.name === name) ?? schema.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
}

function noColumn(table: string, schema: IcebergSchema, name: string): PuffinError {
  return new PuffinError('binder_error', `table '${table}' has no column '${name}' (columns: ${schema.fields.map((f) => f.name).join(', ')})`);
}

function typeText(t: IcebergType): string {
  if (t.kind === 'decimal') return `decimal(${t.precision}, ${t.scale})`;
  if (t.kind === 'fixed') return `fixed[${t.length}]`;
  return t.kind;
}

/** The spec's allowed type promotions (format v2): int -> long, float -> double, decimal widening. */
function promotionAllowed(from: IcebergType, to: PrimitiveType): boolean {
  if (from.kind === to.kind && from.kind !== 'decimal' && from.kind !== 'fixed') return true;
  if (from.kind === 'int' && to.kind === 'long') return true;
  if (from.kind === 'float' && to.kind === 'double') return true;
  if (from.kind === 'decimal' && to.kind === 'decimal') return to.scale === from.scale && to.precision >= from.precision;
  return false;
}

/** A schema with a fresh id appended to the metadata and made current (or an equal existing one reused). */
function withSchema(m: TableMetadata, fields: NestedField[], lastColumnId = m.lastColumnId): TableMetadata {
  const base = currentSchema(m);
  const schemaId = Math.max(-1, ...m.schemas.map((s) => s.schemaId)) + 1;
  const schema: IcebergSchema = { schemaId, fields, identifierFieldIds: base.identifierFieldIds };
  return { ...m, schemas: [...m.schemas, schema], currentSchemaId: schemaId, lastColumnId };
}

async function duckColumn(conn: DuckDBConnection, definition: string): Promise<DuckDBColumn> {
  // Parsed and typed by DuckDB itself (a temp table of the one column).
  const cols = await columnsFromDefinitions(conn, definition);
  if (cols.length !== 1) throw new PuffinError('syntax_error', `expected one column definition, got: ${definition}`);
  return cols[0];
}

/**
 * The metadata after `action`, or `m` itself when the action changes nothing (IF [NOT]
 * EXISTS). Throws a 4xx PuffinError naming the rule an action breaks.
 */
export async function applyAlter(conn: DuckDBConnection, table: string, m: TableMetadata, action: AlterAction): Promise<TableMetadata> {
  const schema = currentSchema(m);
  switch (action.op) {
    case 'add_column': {
      if (findColumn(schema, action.column)) {
        if (action.ifNotExists) return m;
        throw new PuffinError('bad_request', `table '${table}' already has a column '${findColumn(schema, action.column)!.name}'`);
      }
      if (/\bDEFAULT\b/i.test(action.definition.replace(/'[^']*'|"[^"]*"/g, ''))) {
        throw new PuffinError('unsupported', `ADD COLUMN ... DEFAULT is not supported: Iceberg format v2 has no column defaults, so rows written before the column read NULL; add the column without a default and UPDATE it`);
      }
      const col = await duckColumn(conn, action.definition);
      if (col.required) {
        throw new PuffinError('bad_request', `cannot add required column '${col.name}' to table '${table}': rows written before it have no value for it (Iceberg schema evolution adds optional columns); add it without NOT NULL`);
      }
      const ids = new FieldIdAllocator(m.lastColumnId);
      const id = ids.next();
      const type = icebergTypeOf(col.type, col.name, ids, table);
      const added = withSchema(m, [...schema.fields, { id, name: col.name, required: false, type }], ids.last);
      const size = duckArraySize(col.type);
      return size === undefined ? added : { ...added, properties: { ...added.properties, [`${ARRAY_SIZE_PREFIX}${id}`]: String(size) } };
    }
    case 'drop_column': {
      const f = findColumn(schema, action.column);
      if (!f) {
        if (action.ifExists) return m;
        throw noColumn(table, schema, action.column);
      }
      if (schema.fields.length === 1) throw new PuffinError('bad_request', `cannot drop column '${f.name}': it is the only column of table '${table}'`);
      const spec = m.partitionSpecs.find((s) => s.fields.some((p) => p.sourceId === f.id));
      if (spec) {
        throw new PuffinError('bad_request', `cannot drop column '${f.name}' of table '${table}': partition spec ${spec.specId} uses it (field '${spec.fields.find((p) => p.sourceId === f.id)!.name}')${spec.specId === m.defaultSpecId ? '; change the partitioning first (ALTER TABLE ... SET PARTITIONED BY)' : ' and older data files are partitioned by it'}`);
      }
      if (schema.identifierFieldIds.includes(f.id)) throw new PuffinError('bad_request', `cannot drop column '${f.name}' of table '${table}': it is an identifier field`);
      return withSchema(m, schema.fields.filter((x) => x.id !== f.id));
    }
    case 'rename_column': {
      const f = findColumn(schema, action.column);
      if (!f) throw noColumn(table, schema, action.column);
      if (!action.to) throw new PuffinError('syntax_error', 'RENAME COLUMN needs a new name');
      const clash = findColumn(schema, action.to);
      if (clash && clash.id !== f.id) throw new PuffinError('bad_request', `table '${table}' already has a column '${clash.name}'`);
      if (f.name === action.to) return m;
      return withSchema(m, schema.fields.map((x) => (x.id === f.id ? { ...x, name: action.to } : x)));
    }
    case 'set_type': {
      const f = findColumn(schema, action.column);
      if (!f) throw noColumn(table, schema, action.column);
      const col = await duckColumn(conn, `"__puffin_type" ${action.type}`);
      const to = icebergTypeOf(col.type, f.name, new FieldIdAllocator(m.lastColumnId), table);
      // A list column's fixed size (FLOAT[] <-> FLOAT[n]) is a property, not a schema change (array-sizes.ts).
      if (to.kind === 'list' && f.type.kind === 'list' && to.element.kind === f.type.element.kind && isPrimitive(to.element) && typeText(to.element) === typeText(f.type.element)) {
        const key = `${ARRAY_SIZE_PREFIX}${f.id}`;
        const size = duckArraySize(col.type);
        const { [key]: _old, ...rest } = m.properties;
        if (size === undefined) return key in m.properties ? { ...m, properties: rest } : m;
        return m.properties[key] === String(size) ? m : { ...m, properties: { ...rest, [key]: String(size) } };
      }
      if (to.kind === 'struct' || to.kind === 'list' || to.kind === 'map') {
        throw new PuffinError('unsupported', `ALTER COLUMN ... TYPE to ${typeText(to)}: only primitive types can be changed (nested columns evolve field by field)`);
      }
      if (col.type.toString() !== toDuckDBType(to)) {
        throw new PuffinError('bad_request', `cannot change column '${f.name}' of table '${table}' to ${col.type.toString()}: Iceberg has no such type (it would be stored as ${typeText(to)}, read as ${toDuckDBType(to)})`);
      }
      if (!promotionAllowed(f.type, to)) {
        throw new PuffinError(
          'bad_request',
          `cannot change column '${f.name}' of table '${table}' from ${typeText(f.type)} to ${typeText(to)}: Iceberg allows only the promotions int -> long, float -> double and decimal(P, S) -> decimal(P', S) with P' >= P (older data files must still read as the new type)`,
        );
      }
      if (typeText(f.type) === typeText(to)) return m;
      return withSchema(m, schema.fields.map((x) => (x.id === f.id ? { ...x, type: to } : x)));
    }
    case 'drop_not_null': {
      const f = findColumn(schema, action.column);
      if (!f) throw noColumn(table, schema, action.column);
      if (!f.required) return m;
      if (schema.identifierFieldIds.includes(f.id)) throw new PuffinError('bad_request', `column '${f.name}' is an identifier field of table '${table}', which must stay required`);
      return withSchema(m, schema.fields.map((x) => (x.id === f.id ? { ...x, required: false } : x)));
    }
    case 'set_not_null': {
      const f = findColumn(schema, action.column);
      if (!f) throw noColumn(table, schema, action.column);
      if (f.required) return m;
      throw new PuffinError(
        'bad_request',
        `cannot make column '${f.name}' of table '${table}' required (SET NOT NULL): Iceberg schema evolution may make a required column optional, never an optional one required, since data files written before may hold NULLs`,
      );
    }
    case 'set_partitioning':
      return withSpec(m, table, action.partitionBy);
    case 'set_properties': {
      const { 'format-version': requested, ...props } = action.properties;
      const upgraded = requested === undefined ? m : upgradeFormat(m, table, requested);
      if (Object.keys(props).length === 0) return upgraded;
      checkSettableProperties(props, 'ALTER TABLE ... SET');
      checkArraySizeProperties(table, schema, props);
      return { ...upgraded, properties: { ...upgraded.properties, ...props } };
    }
    case 'rename_table':
      throw new PuffinError('internal', 'RENAME TO is not a metadata change');
  }
}

/**
 * Table properties a statement may set (`format-version` aside, which each statement checks
 * itself): the write modes take their two values, and the table's locations are not
 * properties to change.
 */
export function checkSettableProperties(props: Record<string, string>, statement: string): void {
  for (const [k, v] of Object.entries(props)) {
    if (/^write\.(delete|update|merge)\.mode$/.test(k) && v !== 'copy-on-write' && v !== 'merge-on-read') {
      throw new PuffinError('bad_request', `table property '${k}' must be 'copy-on-write' or 'merge-on-read', got '${v}'`);
    }
    if (k === 'format-version' || /^write\.(data|metadata|object-storage)\.path$/.test(k) || k === 'location') {
      throw new PuffinError('bad_request', `table property '${k}' cannot be set with ${statement}`);
    }
  }
}

/**
 * ALTER TABLE ... SET ('format-version' = 'N'): a v2 table upgraded to v3 (row lineage starts
 * at next-row-id 0: rows written before have no row ids, as the spec allows). The version
 * never goes down, and a v1 table is not upgraded here.
 */
function upgradeFormat(m: TableMetadata, table: string, requested: string): TableMetadata {
  const v = Number(requested.trim());
  if (v === m.formatVersion) return m;
  if (v === 3 && m.formatVersion === 2) return { ...m, formatVersion: 3, nextRowId: 0n };
  if (v === 1 || v === 2 || v === 3) {
    throw new PuffinError('bad_request', `table '${table}' is format v${m.formatVersion}: 'format-version' can only be raised from 2 to 3 here (never lowered), got '${requested}'`);
  }
  throw new PuffinError('bad_request', `table property 'format-version' must be '2' or '3', got '${requested}'`);
}

function sameField(a: PartitionField, b: Pick<PartitionField, 'sourceId' | 'transform'>): boolean {
  return a.sourceId === b.sourceId && transformToString(a.transform) === transformToString(b.transform);
}

/** Partition evolution: the spec for `partitionBy` becomes the default (a new spec id unless an equal one exists). */
function withSpec(m: TableMetadata, table: string, partitionBy: string): TableMetadata {
  const schema = currentSchema(m);
  const wanted = partitionSpecFor(schema, partitionBy.trim() ? parsePartitionTerms(partitionBy) : [], table);
  // Field ids: a field equal to one of an earlier spec keeps that field's id (and name), as
  // Java's UpdatePartitionSpec does; new fields take ids after lastPartitionId.
  let last = m.lastPartitionId ?? Math.max(999, ...m.partitionSpecs.flatMap((s) => s.fields.map((f) => f.fieldId)));
  const earlier = m.partitionSpecs.flatMap((s) => s.fields);
  const fields: PartitionField[] = wanted.fields.map((f) => {
    const seen = earlier.find((e) => sameField(e, f));
    return seen ? { ...f, fieldId: seen.fieldId, name: seen.name } : { ...f, fieldId: ++last };
  });
  const names = new Set<string>();
  for (const f of fields) {
    if (names.has(f.name)) throw new PuffinError('bad_request', `table '${table}': partition field '${f.name}' is listed twice`);
    names.add(f.name);
  }
  const equal = (s: PartitionSpec) => s.fields.length === fields.length && s.fields.every((f, i) => f.fieldId === fields[i].fieldId && sameField(f, fields[i]));
  const existing = m.partitionSpecs.find(equal);
  if (existing) return existing.specId === m.defaultSpecId ? m : { ...m, defaultSpecId: existing.specId };
  const specId = Math.max(-1, ...m.partitionSpecs.map((s) => s.specId)) + 1;
  return { ...m, partitionSpecs: [...m.partitionSpecs, { specId, fields }], defaultSpecId: specId, lastPartitionId: Math.max(last, m.lastPartitionId ?? 999) };
}

/**
 * Commit a metadata-only change: `change` computes the new metadata from the base (and
 * throws when the change is not valid there); on a lost compare-and-swap it is re-applied
 * to the new base, as long as the table is still the same table (uuid).
 */
export async function commitMetadataChange(
  store: PointerStore,
  io: TableIO,
  name: string,
  change: (base: TableMetadata) => Promise<TableMetadata> | TableMetadata,
  maxAttempts = DEFAULT_ATTEMPTS,
): Promise<LoadedTable> {
  const original = await loadTable(store, name, io);
  let base = original;
  for (let attempt = 1; ; attempt++) {
    if (base.metadata.tableUuid !== original.metadata.tableUuid) {
      throw new PuffinError('conflict', `table '${name}' was replaced by another table while this change was being committed; re-run the statement`);
    }
    assertWritableFormat(base.metadata, name, { v3: true });
    const next = await change(base.metadata);
    if (next === base.metadata) return base;
    const now = Date.now();
    const metadata: TableMetadata = {
      ...next,
      lastUpdatedMs: Math.max(now, base.metadata.lastUpdatedMs),
      metadataLog: [...base.metadata.metadataLog, { timestampMs: base.metadata.lastUpdatedMs, metadataFile: base.metadataLocation }],
    };
    const location = await writeMetadataFile(io, metadata, base.metadataLocation, name);
    if (await store.compareAndSwap(name, base.metadataLocation, location)) return { name, metadataLocation: location, metadata };
    await io.delete(location).catch(() => undefined);
    if (attempt >= maxAttempts) throw new PuffinError('conflict', `table '${name}': the change lost the commit race ${attempt} times in a row; giving up`);
    await pause(Math.random() * Math.min(250, 10 * 2 ** Math.min(attempt, 5)));
    base = await loadTable(store, name, io);
  }
}

/** ALTER TABLE name <action>. */
export async function alterTable(ctx: DdlContext, name: string, action: AlterAction): Promise<DdlResult> {
  if (action.op === 'rename_table') return renameTable(ctx, name, action.to);
  const t = await commitMetadataChange(ctx.store, ctx.io, name, (m) => applyAlter(ctx.conn, name, m, action));
  return { metadataLocation: t.metadataLocation, rowsAffected: 0, snapshotId: t.metadata.currentSnapshotId === null ? null : String(t.metadata.currentSnapshotId) };
}

/** ALTER TABLE name RENAME TO other: the pointer moves; the files stay where they are. */
export async function renameTable(ctx: Pick<DdlContext, 'store' | 'io'>, name: string, to: string): Promise<DdlResult> {
  const target = to.toLowerCase();
  const t = await loadTable(ctx.store, name, ctx.io);
  if (target === name.toLowerCase()) return { metadataLocation: t.metadataLocation, rowsAffected: 0, snapshotId: null };
  if (await ctx.store.get(target)) throw new PuffinError('conflict', `cannot rename table '${name}' to '${to}': a table '${to}' already exists`);
  if (!(await ctx.store.compareAndSwap(target, undefined, t.metadataLocation))) throw new PuffinError('conflict', `cannot rename table '${name}' to '${to}': a table '${to}' was created concurrently`);
  if (!(await ctx.store.remove(name, t.metadataLocation))) {
    // The source changed (a concurrent commit) or vanished meanwhile: undo, nothing moved.
    await ctx.store.remove(target, t.metadataLocation).catch(() => undefined);
    throw new PuffinError('conflict', `table '${name}' changed while being renamed; re-run the statement`);
  }
  return { metadataLocation: t.metadataLocation, rowsAffected: 0, snapshotId: null };
}

/** Every file a table's metadata references: metadata files, manifest lists, manifests, data and delete files. */
async function referencedFiles(io: TableIO, t: LoadedTable): Promise<string[]> {
  const out = new Set<string>([t.metadataLocation, ...t.metadata.metadataLog.map((e) => e.metadataFile)]);
  for (const s of t.metadata.snapshots) {
    const manifests = s.manifestList ? decodeManifestList(await io.read(s.manifestList), s.manifestList).map((mf) => mf.path) : s.manifests ?? [];
    if (s.manifestList) out.add(s.manifestList);
    for (const path of manifests) {
      out.add(path);
      for (const e of decodeManifest(await io.read(path), path).entries) out.add(e.file.filePath);
    }
  }
  return [...out];
}

/**
 * DROP TABLE name: the pointer goes; the files stay (other engines may share them), unless
 * `purge`: then every file the table's metadata references under the table's location is
 * deleted (files elsewhere, e.g. of an adopted table read in place, are left and counted).
 */
export async function dropTable(ctx: Pick<DdlContext, 'store' | 'io'>, name: string, options: { ifExists?: boolean; purge?: boolean } = {}): Promise<DdlResult & { filesDeleted: number; filesKept: number; existed: boolean }> {
  const location = await ctx.store.get(name);
  if (location === undefined) {
    if (options.ifExists) return { metadataLocation: '', rowsAffected: 0, snapshotId: null, filesDeleted: 0, filesKept: 0, existed: false };
    throw new PuffinError('unknown_table', `table '${name}' does not exist in the catalog`);
  }
  const t = await loadTable(ctx.store, name, ctx.io);
  // Listed before the pointer goes, so a purge that cannot read the metadata drops nothing.
  const files = options.purge ? await referencedFiles(ctx.io, t) : [];
  if (!(await ctx.store.remove(name, t.metadataLocation))) throw new PuffinError('conflict', `table '${name}' changed while being dropped; re-run the statement`);
  let filesDeleted = 0;
  let filesKept = 0;
  const root = `${t.metadata.location.replace(/\/+$/, '')}/`;
  for (const f of files) {
    if (!f.startsWith(root)) {
      filesKept++;
      continue;
    }
    await ctx.io.delete(f).then(() => filesDeleted++, () => filesKept++);
  }
  return { metadataLocation: t.metadataLocation, rowsAffected: 0, snapshotId: null, filesDeleted, filesKept, existed: true };
}

/**
 * TRUNCATE name: one `overwrite` snapshot removing every live data file (snapshot isolation:
 * rows appended concurrently survive, as they would after the truncate). Delete files of the
 * removed data files no longer apply to anything. `liveRows` counts the rows removed.
 */
export async function truncateTable(
  ctx: Pick<DdlContext, 'store' | 'io'>,
  name: string,
  liveRows: (base: LoadedTable, files: string[]) => Promise<number>,
): Promise<DdlResult> {
  const base = await loadTable(ctx.store, name, ctx.io);
  assertWritableFormat(base.metadata, name, { v3: true });
  const snapshot = base.metadata.snapshots.find((s) => s.snapshotId === base.metadata.currentSnapshotId);
  const live: string[] = [];
  if (snapshot?.manifestList) {
    for (const mf of decodeManifestList(await ctx.io.read(snapshot.manifestList), snapshot.manifestList)) {
      if (mf.content !== 'data') continue;
      for (const e of decodeManifest(await ctx.io.read(mf.path), mf.path).entries) if (e.status !== DELETED) live.push(e.file.filePath);
    }
  }
  if (live.length === 0) return { metadataLocation: base.metadataLocation, rowsAffected: 0, snapshotId: null };
  const rows = await liveRows(base, live);
  const c = await commitTable(ctx.store, name, { operation: 'overwrite', added: [], removed: live, isolation: 'snapshot' }, { io: ctx.io, base, summary: { 'puffindb.operation': 'truncate' } });
  return { metadataLocation: c.metadataLocation, rowsAffected: rows, snapshotId: String(c.snapshotId) };
}
