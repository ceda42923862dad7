// The Iceberg writer's operations: create a table (from column definitions or a query's
// result types), append rows (fast append), and copy-on-write DELETE / UPDATE (the data files
// holding affected rows are read, rewritten without / with changed rows, and swapped in one
// `overwrite` snapshot). Each ends in one atomic commit (commit.ts). On a v3 table the rows
// a rewrite copies keep their row lineage (lineage.ts): read with their `_row_id` and
// `_last_updated_sequence_number`, written back explicitly (an updated row's sequence number
// null, so it inherits the commit's).

import type { DuckDBConnection, DuckDBType } from '@duckdb/node-api';
import { PuffinError, toPuffinError } from '../../errors.ts';
import { sqlIdent, sqlString } from '../../sql/quote.ts';
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { commitTable, createTable, liveDataFileInfos, loadTable, type CommitResult, type IsolationLevel, type LoadedTable } from './commit.ts';
import { buildIcebergReadSql, localFilePath, ROW_POSITION_COLUMN, type ReadSqlOptions } from './read.ts';
import { resolveLocation } from './io.ts';
import type { TableMetadata } from './metadata.ts';
import { describeParquetFiles } from './parquet-schema.ts';
import { planTableScan, type IcebergDataFile } from './scan.ts';
import type { PointerStore } from './pointer-store.ts';
import type { IcebergTable } from './table.ts';
import type { TableIO } from './writer-io.ts';
import type { DataFileInfo } from './writer-manifest.ts';
import { writeDataFiles, writeDeletionVectors } from './writer-data.ts';
import { assertWritableFormat } from './metadata.ts';
import { exposedSchema } from './column-names.ts';
import { parsePartitionTerms, partitionSpecFor, schemaFromDuckDB, type DuckDBColumn } from './writer-schema.ts';
import { arraySizeProperties } from './array-sizes.ts';
import { keepsLineage, updatedLineageSql } from './lineage.ts';

export interface WriterContext {
  /** A DuckDB connection for staging and reading (its temp tables are cleaned up). */
  conn: DuckDBConnection;
  store: PointerStore;
  io: TableIO;
  /** Local directory DuckDB may write staging files to. */
  stagingDir: string;
  /** URI under which new tables get their directory: `${warehouseUri}/${name}`. */
  warehouseUri: string;
  /**
   * A local copy of a data file, for reading it (DELETE/UPDATE, and INSERT ... SELECT from a
   * table): e.g. fetched through the worker file cache. Defaults to the path of file:// URIs.
   */
  localFile?: (uri: string) => Promise<string>;
  /**
   * Rewrites a DELETE's or UPDATE's files somewhere else (the query engine's fragments):
   * returns the files it wrote, the data files they replace, and how many rows matched.
   * Absent: the rewrite runs on `conn`.
   */
  rewriteFiles?: FileRewriter;
}

export interface RewriteRequest {
  table: string;
  base: LoadedTable;
  predicate: string;
  /** The rewritten rows of the files read by `readSql` (a subquery text). On a v3 table
   *  (lineage.ts keepsLineage) `readSql`'s rows end in the two lineage columns, and so must
   *  the rewritten rows. */
  rewriteSql: (readSql: string) => string;
}

export interface RewriteOutcome {
  added: DataFileInfo[];
  /** Paths (as recorded in manifests) of the data files the added files replace. */
  removed: string[];
  /** Rows where the predicate is true. */
  matched: number;
}

export type FileRewriter = (request: RewriteRequest) => Promise<RewriteOutcome>;

/**
 * Read options mapping every file of `files` to its local copy (fetched up front), and, given
 * a connection, the data files' footer facts (field ids or not), so files without field ids
 * are read by the table's name mapping rather than refused by the read's own footer check.
 */
export async function localReadOptions(
  ctx: Pick<WriterContext, 'localFile'> & { conn?: DuckDBConnection },
  files: readonly { uri: string; format?: string; deletes: { uri: string }[] }[],
): Promise<ReadSqlOptions> {
  const out: ReadSqlOptions = {};
  const fetch = ctx.localFile;
  if (fetch) {
    const uris = [...new Set(files.flatMap((f) => [f.uri, ...f.deletes.map((d) => d.uri)]))];
    const local = new Map(await Promise.all(uris.map(async (u) => [u, await fetch(u)] as const)));
    out.localPath = (uri) => {
      const p = local.get(uri);
      if (p === undefined) throw new PuffinError('internal', `${uri} was not fetched before reading`);
      return p;
    };
  }
  const parquet = files.filter((f) => (f.format ?? 'parquet') === 'parquet');
  if (ctx.conn && parquet.length > 0 && (out.localPath || parquet.every((f) => /^file:/i.test(f.uri)))) {
    const path = out.localPath ?? localFilePath;
    const found = await describeParquetFiles(ctx.conn, parquet.map((f) => ({ uri: f.uri, localPath: path(f.uri) })));
    out.fileSchemas = (uri) => found.get(uri);
  }
  return out;
}

export interface WriteResult {
  table: string;
  rowsAffected: number;
  /** null when nothing changed (no commit was made). */
  snapshotId: string | null;
  metadataLocation: string;
  attempts?: number;
}

async function typesOf(conn: DuckDBConnection, selectSql: string): Promise<{ name: string; type: DuckDBType }[]> {
  try {
    const r = await conn.runAndReadAll(`SELECT * FROM (${selectSql}) LIMIT 0`);
    const names = r.columnNames();
    const types = r.columnTypes();
    return names.map((name, i) => ({ name, type: types[i] }));
  } catch (err) {
    throw toPuffinError(err);
  }
}

/** Column definitions text (`a INTEGER NOT NULL, b VARCHAR`) as DuckDB types, parsed by DuckDB. */
export async function columnsFromDefinitions(conn: DuckDBConnection, definitions: string): Promise<DuckDBColumn[]> {
  const tmp = `__puffin_def_${Math.random().toString(36).slice(2, 10)}`;
  try {
    await conn.run(`CREATE TEMP TABLE ${tmp} (${definitions})`);
  } catch (err) {
    const e = toPuffinError(err);
    throw new PuffinError(e.code === 'internal' ? 'syntax_error' : e.code, `column definitions do not parse: ${e.message}`);
  }
  try {
    const cols = await typesOf(conn, `SELECT * FROM ${tmp}`);
    const nullable = await conn.runAndReadAll(`SELECT column_name, is_nullable FROM duckdb_columns() WHERE table_name = '${tmp}' ORDER BY column_index`);
    const required = new Map(nullable.getRowObjectsJson().map((r) => [String(r.column_name), r.is_nullable === false]));
    return cols.map((c) => ({ ...c, required: required.get(c.name) === true }));
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${tmp}`).catch(() => undefined);
  }
}

function tableUri(ctx: WriterContext, name: string): string {
  return `${ctx.warehouseUri.replace(/\/+$/, '')}/${name.split('.').map(encodeURIComponent).join('/')}`;
}

export interface CreateOptions {
  partitionBy?: string;
  properties?: Record<string, string>;
  location?: string;
}

export async function createTableFromColumns(ctx: WriterContext, name: string, columns: DuckDBColumn[], options: CreateOptions = {}): Promise<LoadedTable> {
  const { schema, lastColumnId } = schemaFromDuckDB(columns, name);
  const spec = partitionSpecFor(schema, options.partitionBy ? parsePartitionTerms(options.partitionBy) : [], name);
  // Fixed-size ARRAY columns are stored as lists; their sizes are kept in the properties (array-sizes.ts).
  const properties = { ...arraySizeProperties(columns, schema), ...options.properties };
  return createTable(ctx.store, name, { schema, lastColumnId, spec, location: options.location ?? tableUri(ctx, name), ...(Object.keys(properties).length > 0 ? { properties } : {}) }, ctx.io);
}

/** CREATE TABLE name (definitions) [PARTITIONED BY (...)] */
export async function createTableFromDefinitions(ctx: WriterContext, name: string, definitions: string, options: CreateOptions = {}): Promise<WriteResult> {
  const columns = await columnsFromDefinitions(ctx.conn, definitions);
  const t = await createTableFromColumns(ctx, name, columns, options);
  return { table: name, rowsAffected: 0, snapshotId: null, metadataLocation: t.metadataLocation };
}

/** CREATE TABLE name [PARTITIONED BY (...)] AS SELECT ... */
export async function createTableAsSelect(ctx: WriterContext, name: string, selectSql: string, options: CreateOptions = {}): Promise<WriteResult> {
  if (await ctx.store.get(name)) throw new PuffinError('conflict', `table '${name}' already exists`);
  const columns = await typesOf(ctx.conn, selectSql);
  const created = await createTableFromColumns(ctx, name, columns, options);
  const result = await appendRows(ctx, name, selectSql, created);
  return result.snapshotId === null ? { ...result, metadataLocation: created.metadataLocation } : result;
}

/** INSERT INTO name SELECT ...: the SELECT's columns are the table's, in order. */
export async function appendRows(ctx: WriterContext, name: string, selectSql: string, base?: LoadedTable): Promise<WriteResult> {
  const table = base ?? (await loadTable(ctx.store, name, ctx.io));
  assertWritableFormat(table.metadata, name, { v3: true });
  const written = await writeDataFiles({ conn: ctx.conn, table: name, metadata: table.metadata, selectSql, stagingDir: ctx.stagingDir, io: ctx.io });
  if (written.files.length === 0) return { table: name, rowsAffected: 0, snapshotId: null, metadataLocation: table.metadataLocation };
  const c = await withCleanup(ctx, written.files, () => commitTable(ctx.store, name, { operation: 'append', files: written.files }, { io: ctx.io, base: table }));
  return resultOf(name, written.rows, c);
}

/** Delete a refused commit's data files: only after a definitive conflict, never when the
 *  outcome is unknown (an unreachable store may have applied the swap). */
async function withCleanup<T>(ctx: Pick<WriterContext, 'io'>, files: DataFileInfo[], commit: () => Promise<T>): Promise<T> {
  try {
    return await commit();
  } catch (err) {
    if (err instanceof PuffinError && err.code === 'conflict') await Promise.all(files.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
    throw err;
  }
}

/**
 * Commit data files written elsewhere (by fragments: each ran writeDataFiles over its share of
 * the rows against the same table metadata and returned dataFileToJson of its files) as one
 * append. The table must still have the schema and partition spec the files were written for.
 */
export async function appendDataFiles(ctx: Pick<WriterContext, 'store' | 'io'>, name: string, files: DataFileInfo[], base: LoadedTable): Promise<WriteResult> {
  const rows = files.reduce((n, f) => n + f.recordCount, 0);
  if (files.length === 0) return { table: name, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
  const c = await withCleanup(ctx, files, () => commitTable(ctx.store, name, { operation: 'append', files }, { io: ctx.io, base }));
  return resultOf(name, rows, c);
}

function resultOf(name: string, rows: number, c: CommitResult): WriteResult {
  return { table: name, rowsAffected: rows, snapshotId: String(c.snapshotId), metadataLocation: c.metadataLocation, attempts: c.attempts };
}

function asIcebergTable(t: LoadedTable, io: TableIO): IcebergTable {
  return { metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io };
}

async function count(conn: DuckDBConnection, sql: string): Promise<number> {
  try {
    const r = await conn.runAndReadAll(sql);
    return Number(r.getRowsJson()[0][0]);
  } catch (err) {
    throw toPuffinError(err);
  }
}

/** Validate a predicate by asking DuckDB to bind it against the table's columns. */
async function checkPredicate(conn: DuckDBConnection, readSql: string, predicate: string, table: string): Promise<void> {
  try {
    await conn.runAndReadAll(`SELECT count(*) FROM (${readSql}) __t WHERE (${predicate}) LIMIT 0`);
  } catch (err) {
    const e = toPuffinError(err);
    throw new PuffinError(e.code === 'internal' ? 'bad_request' : e.code, `table '${table}': ${e.message}`);
  }
}

/**
 * Refuse SQL text that is not one self-contained expression: it is spliced into generated
 * statements as `(text)`, so it must not close that parenthesis, end the statement or
 * comment out the rest.
 */
export function assertExpression(text: string, what: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const close = text.indexOf(c, i + 1);
      if (close < 0) throw new PuffinError('syntax_error', `${what} has an unterminated ${c === "'" ? 'string' : 'quoted identifier'}: ${text}`);
      i = close;
    } else if ((c === '-' && text[i + 1] === '-') || (c === '/' && text[i + 1] === '*')) {
      throw new PuffinError('syntax_error', `${what} may not contain comments: ${text}`);
    } else if (c === ';') {
      throw new PuffinError('syntax_error', `${what} may not contain ';': ${text}`);
    } else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) throw new PuffinError('syntax_error', `${what} has an unbalanced ')': ${text}`);
  }
  if (depth !== 0) throw new PuffinError('syntax_error', `${what} has an unclosed '(': ${text}`);
  if (!text.trim()) throw new PuffinError('syntax_error', `${what} is empty`);
}

export interface RewriteOptions {
  isolation?: IsolationLevel;
}

/**
 * Copy-on-write rewrite: the files holding rows where `predicate` is true are replaced by
 * files holding `projection` of their rows (`null` projection: those rows dropped).
 */
async function rewriteRows(
  ctx: WriterContext,
  name: string,
  predicate: string,
  rewrite: (readSql: string) => string,
  options: RewriteOptions,
  kind: 'delete' | 'update' = 'update',
  loaded?: LoadedTable,
): Promise<WriteResult> {
  assertExpression(predicate, 'the WHERE condition');
  const base = loaded ?? (await loadTable(ctx.store, name, ctx.io));
  assertWritableFormat(base.metadata, name, { v3: true });
  // v3: the rows read for rewriting carry their lineage, and `rewrite` passes it on.
  const lineage = keepsLineage(base.metadata);
  if (writeMode(base.metadata, kind) === 'merge-on-read') return rowDelta(ctx, name, base, predicate, kind === 'delete' ? null : rewrite, options, lineage);
  if (ctx.rewriteFiles) {
    const r = await ctx.rewriteFiles({ table: name, base, predicate, rewriteSql: rewrite });
    if (r.matched === 0) {
      await Promise.all(r.added.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
      return { table: name, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
    }
    if (kind === 'delete') await checkDeleteAccounts(ctx, name, base, r);
    return commitRewrite(ctx, name, base, r.added, r.removed, predicate, options, r.matched);
  }
  const scan = await planTableScan(asIcebergTable(base, ctx.io));
  const readOptions = await localReadOptions(ctx, scan.dataFiles);
  // Files with delete files are read with them applied, and replaced like any other.
  await checkPredicate(ctx.conn, buildIcebergReadSql(scan, undefined, readOptions), predicate, name);
  const affected: IcebergDataFile[] = [];
  let rows = 0;
  for (const file of scan.dataFiles) {
    const n = await count(ctx.conn, `SELECT count(*) FROM (${buildIcebergReadSql({ ...scan, dataFiles: [file] }, undefined, readOptions)}) __t WHERE (${predicate})`);
    if (n > 0) {
      affected.push(file);
      rows += n;
    }
  }
  if (affected.length === 0) return { table: name, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
  const readAffected = buildIcebergReadSql({ ...scan, dataFiles: affected }, undefined, { ...readOptions, lineage });
  const written = await writeDataFiles({ conn: ctx.conn, table: name, metadata: base.metadata, selectSql: rewrite(readAffected), stagingDir: ctx.stagingDir, io: ctx.io, lineage });
  return commitRewrite(ctx, name, base, written.files, affected.map((f) => f.path), predicate, options, rows);
}

/**
 * A DELETE's rewrite must account for every row it matched: the files it replaces held
 * exactly `matched` rows more than the files replacing them. Fewer means a file holding
 * matching rows was not chosen for the rewrite (scan planning pruned it): the statement
 * fails and nothing is committed, instead of reporting rows deleted that stay. Skipped when
 * a replaced file has delete files (its record count is not its live rows).
 */
async function checkDeleteAccounts(ctx: WriterContext, name: string, base: LoadedTable, r: RewriteOutcome): Promise<void> {
  const scan = await planTableScan(asIcebergTable(base, ctx.io));
  const byPath = new Map(scan.dataFiles.map((f) => [f.path, f]));
  let before = 0;
  for (const path of r.removed) {
    const f = byPath.get(path);
    if (!f || f.deletes.length > 0) return;
    before += f.rowCount;
  }
  const after = r.added.reduce((n, f) => n + f.recordCount, 0);
  if (before - after === r.matched) return;
  await Promise.all(r.added.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
  throw new PuffinError(
    'internal',
    `table '${name}': DELETE matched ${r.matched} row(s), but rewriting the ${r.removed.length} data file(s) chosen for it removes ${before - after}; nothing was committed (a file holding matching rows was not chosen: a scan planning bug, please report it)`,
  );
}

/**
 * Commit a copy-on-write rewrite as one `overwrite` snapshot. On a lost race it conflicts
 * when a removed file changed meanwhile or (serializable) when a concurrently added file
 * holds rows the predicate matches; the added files are removed if the commit fails.
 */
async function commitRewrite(
  ctx: WriterContext,
  name: string,
  base: LoadedTable,
  added: DataFileInfo[],
  removed: string[],
  predicate: string,
  options: RewriteOptions,
  rows: number,
): Promise<WriteResult> {
  const c = await withCleanup(ctx, added, () => commitTable(
    ctx.store,
    name,
    {
      operation: 'overwrite',
      added,
      removed,
      isolation: options.isolation ?? 'serializable',
      conflictingAdds: (paths) => firstMatchingAdd(ctx, name, predicate, paths),
    },
    { io: ctx.io, base },
  ));
  return resultOf(name, rows, c);
}

/** How a table wants a kind of row-level write done: Iceberg's `write.delete.mode`,
 *  `write.update.mode`, `write.merge.mode` (copy-on-write unless set to merge-on-read). */
export function writeMode(m: Pick<TableMetadata, 'properties'>, kind: 'delete' | 'update' | 'merge'): 'copy-on-write' | 'merge-on-read' {
  return m.properties[`write.${kind}.mode`] === 'merge-on-read' ? 'merge-on-read' : 'copy-on-write';
}

/** Iceberg's reserved field ids of position delete files (spec: Reserved Field IDs). */
const DELETE_FILE_PATH_ID = 2147483546;
const DELETE_POS_ID = 2147483545;

export interface PositionDeletes {
  /** The position delete files written, each in its data file's partition and spec. */
  deletes: { specId: number; file: DataFileInfo }[];
  /** The data files they apply to. */
  affected: IcebergDataFile[];
  /** Positions deleted, in all. */
  rows: number;
}

/**
 * Merge-on-read's position deletes (DELETE, UPDATE, MERGE): for each data file of `scan`, one
 * position delete file naming the positions `positionsOf(file)` selects (a query with a `pos`
 * column; null: none), written under the table's own location. Files with no position get no
 * delete file. When any write fails, the delete files already written are removed.
 */
export async function writePositionDeletes(
  ctx: WriterContext,
  name: string,
  base: LoadedTable,
  scan: { dataFiles: IcebergDataFile[] },
  positionsOf: (file: IcebergDataFile) => string | null,
): Promise<PositionDeletes> {
  const infos = await liveDataFileInfos(ctx.io, base);
  const location = resolveLocation(base.metadata.location).replace(/\/+$/, '');
  const deletes: { specId: number; file: DataFileInfo }[] = [];
  const affected: IcebergDataFile[] = [];
  let rows = 0;
  try {
    for (const file of scan.dataFiles) {
      const matching = positionsOf(file);
      if (matching === null) continue;
      const staged = join(ctx.stagingDir, `${randomUUID()}-deletes.parquet`);
      let n: number;
      try {
        const r = await ctx.conn.runAndReadAll(
          `COPY (SELECT ${sqlString(file.path)} AS file_path, pos FROM (${matching}) ORDER BY pos) TO ${sqlString(staged)} (FORMAT parquet, COMPRESSION zstd, FIELD_IDS {file_path: ${DELETE_FILE_PATH_ID}, pos: ${DELETE_POS_ID}})`,
        );
        n = Number(r.getRowsJson()[0]?.[0] ?? 0);
      } catch (err) {
        throw toPuffinError(err);
      }
      if (n === 0) {
        await rm(staged, { force: true });
        continue;
      }
      const own = infos.get(file.path);
      if (!own) throw new PuffinError('internal', `table '${name}': data file ${file.path} is planned but not live in its manifests`);
      const bytes = new Uint8Array(await readFile(staged));
      await rm(staged, { force: true });
      const uri = `${location}/data/${randomUUID()}-deletes.parquet`;
      await ctx.io.write(uri, bytes);
      const pathBound = new TextEncoder().encode(file.path);
      deletes.push({
        specId: own.specId,
        file: {
          path: uri, format: 'PARQUET', partition: own.info.partition, recordCount: n, fileSizeInBytes: bytes.length,
          // Bounds on file_path name the one data file the deletes apply to (readers prune by them).
          lowerBounds: { [DELETE_FILE_PATH_ID]: pathBound }, upperBounds: { [DELETE_FILE_PATH_ID]: pathBound },
        },
      });
      affected.push(file);
      rows += n;
    }
  } catch (err) {
    await Promise.all(deletes.map((d) => ctx.io.delete(d.file.path).catch(() => undefined)));
    throw err;
  }
  return { deletes, affected, rows };
}

/**
 * Merge-on-read DELETE / UPDATE (Iceberg's RowDelta): for each data file holding rows where
 * `predicate` is true, one position delete file (in that data file's partition and spec)
 * naming those rows' positions; an UPDATE also writes the rows' new versions as data files
 * (`rewrite` of just those rows). No data file is rewritten. Runs on the writer's connection.
 */
async function rowDelta(
  ctx: WriterContext,
  name: string,
  base: LoadedTable,
  predicate: string,
  rewrite: ((readSql: string) => string) | null,
  options: RewriteOptions,
  lineage: boolean,
): Promise<WriteResult> {
  const scan = await planTableScan(asIcebergTable(base, ctx.io));
  const readOptions = await localReadOptions(ctx, scan.dataFiles);
  await checkPredicate(ctx.conn, buildIcebergReadSql(scan, undefined, readOptions), predicate, name);
  // v3: deletion vectors, one per data file, each replacing the file's earlier one (writer-data.ts).
  const vectors = base.metadata.formatVersion >= 3
    ? await writeDeletionVectors({ conn: ctx.conn, io: ctx.io, table: name, scan, readOptions, predicate, infos: await liveDataFileInfos(ctx.io, base), location: resolveLocation(base.metadata.location).replace(/\/+$/, '') })
    : undefined;
  const { deletes, affected, rows } = vectors ?? await writePositionDeletes(ctx, name, base, scan, (file) => {
    const read = buildIcebergReadSql({ ...scan, dataFiles: [file] }, undefined, { ...readOptions, rowPositions: true });
    return `SELECT ${ROW_POSITION_COLUMN} AS pos FROM (${read}) __t WHERE (${predicate})`;
  });
  const cleanup = async (added: DataFileInfo[]) => Promise.all([...deletes.map((d) => d.file), ...added].map((f) => ctx.io.delete(f.path).catch(() => undefined)));
  if (deletes.length === 0) return { table: name, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
  let added: DataFileInfo[] = [];
  let committing = false;
  try {
    if (rewrite) {
      // v3: the updated rows keep their _row_id (their new versions' sequence number is the commit's).
      const matched = `SELECT * FROM (${buildIcebergReadSql({ ...scan, dataFiles: affected }, undefined, { ...readOptions, lineage })}) __m WHERE (${predicate}) IS TRUE`;
      added = (await writeDataFiles({ conn: ctx.conn, table: name, metadata: base.metadata, selectSql: rewrite(matched), stagingDir: ctx.stagingDir, io: ctx.io, lineage })).files;
    }
    committing = true;
    const c = await commitTable(
      ctx.store,
      name,
      {
        operation: 'row-delta',
        added,
        deletes,
        referenced: affected.map((f) => f.path),
        ...(vectors?.replaced.length ? { removedDeletes: vectors.replaced } : {}),
        isolation: options.isolation ?? 'serializable',
        conflictingAdds: (paths) => firstMatchingAdd(ctx, name, predicate, paths),
      },
      { io: ctx.io, base },
    );
    return resultOf(name, rows, c);
  } catch (err) {
    // Written files go unless the commit's outcome is unknown (an unreachable store may have swapped).
    if (!committing || (err instanceof PuffinError && err.code === 'conflict')) await cleanup(added);
    throw err;
  }
}

/** Of data files concurrent commits added, the first holding a row `predicate` matches. */
async function firstMatchingAdd(ctx: WriterContext, name: string, predicate: string, paths: string[]): Promise<string | undefined> {
  const current = await loadTable(ctx.store, name, ctx.io);
  const now = await planTableScan(asIcebergTable(current, ctx.io));
  const wanted = new Set(paths);
  const added = now.dataFiles.filter((d) => wanted.has(d.path));
  const addedOptions = await localReadOptions(ctx, added);
  for (const file of added) {
    const n = await count(ctx.conn, `SELECT count(*) FROM (${buildIcebergReadSql({ ...now, dataFiles: [file] }, undefined, addedOptions)}) __t WHERE (${predicate})`);
    if (n > 0) return file.path;
  }
  return undefined;
}

/** DELETE FROM name WHERE predicate (copy-on-write). */
export async function deleteRows(ctx: WriterContext, name: string, predicate: string, options: RewriteOptions = {}): Promise<WriteResult> {
  return rewriteRows(ctx, name, predicate, (read) => `SELECT * FROM (${read}) __t WHERE (${predicate}) IS NOT TRUE`, options, 'delete');
}

/** UPDATE name SET col = expr, ... WHERE predicate (copy-on-write). */
export async function updateRows(ctx: WriterContext, name: string, assignments: { column: string; expression: string }[], predicate: string, options: RewriteOptions = {}): Promise<WriteResult> {
  const base = await loadTable(ctx.store, name, ctx.io);
  const schema = base.metadata.schemas.find((s) => s.schemaId === base.metadata.currentSchemaId);
  // By the names reads expose (columns differing only by case renamed, column-names.ts).
  const fields = schema ? exposedSchema(schema).fields : [];
  const byName = new Map<string, string>();
  for (const a of assignments) {
    assertExpression(a.expression, `the value assigned to '${a.column}'`);
    const f = fields.find((x) => x.name === a.column) ?? fields.find((x) => x.name.toLowerCase() === a.column.toLowerCase());
    if (!f) throw new PuffinError('binder_error', `table '${name}' has no column '${a.column}' (columns: ${fields.map((x) => x.name).join(', ')})`);
    if (byName.has(f.name)) throw new PuffinError('bad_request', `column '${f.name}' is assigned twice`);
    byName.set(f.name, a.expression);
  }
  const projection = fields.map((f) => {
    const e = byName.get(f.name);
    return e === undefined ? `__t.${sqlIdent(f.name)}` : `CASE WHEN (${predicate}) IS TRUE THEN (${e}) ELSE __t.${sqlIdent(f.name)} END`;
  });
  // v3: every row keeps its _row_id; the updated ones get a null _last_updated_sequence_number.
  if (keepsLineage(base.metadata)) projection.push(updatedLineageSql('__t', predicate));
  return rewriteRows(ctx, name, predicate, (read) => `SELECT ${projection.join(', ')} FROM (${read}) __t`, options, 'update', base);
}
