// What a Parquet file holds, read from its footer alone: row count, size, columns with
// their DuckDB types, and per-column min/max/null-count statistics that the planner uses to
// prune files. Nothing here scans data pages.
//
// Statistics follow one rule: a bound is reported only when every row group carries it and
// it parses as the column's type; otherwise it is unknown (null), never a guess. Row-group
// bounds are combined in SQL as values of the column's type, so '9' < '10' for integers and
// dates, decimals and strings compare as themselves.
//
// Floating-point columns keep their statistics as written. DuckDB's writer omits min/max for
// a row group that holds a NaN (so such a column reads as unknown here), but other writers
// (Arrow, Spark) leave NaN out of the bounds while DuckDB orders NaN above every number: a
// pruner must not use a FLOAT/DOUBLE max to exclude a file for `x > c` unless it accepts that.

import { resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { runQuery, type Engine, type QueryResult } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { pathToFileUri } from '../storage/locations.ts';
import { sqlString, sqlStringList } from '../sql/quote.ts';
import type { Column, ColumnStats, DataFile, RowGroup } from './types.ts';
import { withArrowFixedSizes } from './arrow-schema.ts';

export interface ParquetFileInfo {
  file: DataFile;
  columns: Column[];
}

/** A local Parquet file and the URI it is known by (a file:// URL unless it is a cached copy). */
export interface ParquetFileRef {
  path: string;
  uri: string;
}

/** Footer facts of one local Parquet file. */
export async function readParquetFileInfo(engine: Engine, path: string, uri: string): Promise<ParquetFileInfo> {
  const [info] = await readParquetFilesInfo(engine, [{ path, uri }]);
  return info;
}

/**
 * Footer facts of many local Parquet files, in the order given. Footers are read in a few
 * batched queries rather than per file, and the DuckDB schema is described once per distinct
 * Parquet schema, so thousands of files cost about as much as a handful.
 * A bare string is a path whose URI is its file:// URL.
 */
export async function readParquetFilesInfo(
  engine: Engine,
  files: readonly (string | ParquetFileRef)[],
): Promise<ParquetFileInfo[]> {
  if (files.length === 0) return [];
  const refs = files.map((f) => (typeof f === 'string' ? { path: resolve(f), uri: pathToFileUri(resolve(f)) } : f));
  const paths = [...new Set(refs.map((r) => r.path))];
  const conn = await engine.connect();
  try {
    const footers = await readFooters(conn, paths);
    const columnsByPath = await readColumns(conn, paths);
    const statsByPath = await readStats(conn, paths, columnsByPath, footers);
    const groupsByPath = await readRowGroups(conn);
    return refs.map((ref) => {
      const footer = footers.get(ref.path)!;
      const rowGroups = groupsByPath.get(ref.path);
      return {
        file: { uri: ref.uri, sizeBytes: footer.sizeBytes, rowCount: footer.rowCount, stats: statsByPath.get(ref.path) ?? {}, ...(rowGroups ? { rowGroups } : {}) },
        columns: columnsByPath.get(ref.path)!,
      };
    });
  } finally {
    conn.closeSync();
  }
}

interface Footer {
  rowCount: number;
  sizeBytes: number;
}

async function query(conn: DuckDBConnection, sql: string, what: string): Promise<QueryResult> {
  try {
    return await runQuery(conn, sql);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new PuffinError('bad_request', `cannot read Parquet ${what}: ${message}`);
  }
}

async function readFooters(conn: DuckDBConnection, paths: string[]): Promise<Map<string, Footer>> {
  const result = await query(
    conn,
    `SELECT file_name, num_rows, file_size_bytes FROM parquet_file_metadata(${sqlStringList(paths)})`,
    'footers',
  );
  const footers = new Map<string, Footer>();
  for (const [name, rows, size] of result.rows) {
    footers.set(String(name), { rowCount: Number(rows), sizeBytes: Number(size) });
  }
  for (const p of paths) {
    if (!footers.has(p)) throw new PuffinError('bad_request', `cannot read Parquet footer of '${p}'`);
  }
  return footers;
}

/**
 * DuckDB column types per file. Files with an identical Parquet schema get identical DuckDB
 * types, so only one file of each distinct schema is described.
 */
async function readColumns(conn: DuckDBConnection, paths: string[]): Promise<Map<string, Column[]>> {
  const signatures = await query(
    conn,
    `SELECT file_name,
            string_agg(concat_ws('|', name, type, type_length, repetition_type, num_children, converted_type,
                                 scale, precision, logical_type, duckdb_type), ';' ORDER BY column_id)
       FROM parquet_schema(${sqlStringList(paths)})
      GROUP BY file_name`,
    'schemas',
  );
  const representativeOf = new Map<string, string>();
  const signatureOf = new Map<string, string>();
  for (const [name, signature] of signatures.rows) {
    const sig = String(signature);
    signatureOf.set(String(name), sig);
    if (!representativeOf.has(sig)) representativeOf.set(sig, String(name));
  }
  const columnsOfSignature = new Map<string, Column[]>();
  for (const [sig, path] of representativeOf) {
    // Hive-style directories (k=v/) would otherwise add columns the file does not hold.
    const described = await query(
      conn,
      `DESCRIBE SELECT * FROM read_parquet(${sqlString(path)}, hive_partitioning = false)`,
      `schema of '${path}'`,
    );
    // Arrow writers' fixed-size lists keep their size (arrow-schema.ts).
    columnsOfSignature.set(sig, await withArrowFixedSizes(conn, path, described.rows.map(([name, type]) => ({ name: String(name), type: String(type) }))));
  }
  const columns = new Map<string, Column[]>();
  for (const p of paths) {
    const sig = signatureOf.get(p);
    if (sig === undefined) throw new PuffinError('bad_request', `cannot read Parquet schema of '${p}'`);
    columns.set(p, columnsOfSignature.get(sig)!);
  }
  return columns;
}

/** Nested columns (lists, structs, maps, unions, variants) carry no usable top-level bounds. */
export function isPrimitiveType(type: string): boolean {
  return !/[[\]]/.test(type) && !/^(STRUCT|MAP|UNION|VARIANT)\b/i.test(type);
}

async function readStats(
  conn: DuckDBConnection,
  paths: string[],
  columnsByPath: Map<string, Column[]>,
  footers: Map<string, Footer>,
): Promise<Map<string, Record<string, ColumnStats>>> {
  await query(
    conn,
    `CREATE TEMP TABLE footer_stats AS
       SELECT file_name, row_group_id, row_group_num_rows, total_compressed_size,
              path_in_schema, stats_min_value, stats_max_value, stats_null_count
         FROM parquet_metadata(${sqlStringList(paths)})`,
    'statistics',
  );
  // One aggregation branch per (column name, type) shared by a set of files.
  const branches = new Map<string, { name: string; type: string; paths: string[] }>();
  for (const p of paths) {
    for (const c of columnsByPath.get(p)!) {
      if (!isPrimitiveType(c.type)) continue;
      const key = `${c.name}\u0000${c.type}`;
      const branch = branches.get(key) ?? { name: c.name, type: c.type, paths: [] };
      branch.paths.push(p);
      branches.set(key, branch);
    }
  }
  const stats = new Map<string, Record<string, ColumnStats>>();
  for (const p of paths) {
    // A file without row groups holds no rows: nothing is NULL and no bound exists.
    const empty = footers.get(p)!.rowCount === 0;
    const initial: Record<string, ColumnStats> = {};
    if (empty) {
      for (const c of columnsByPath.get(p)!) if (isPrimitiveType(c.type)) initial[c.name] = { min: null, max: null, nulls: 0 };
    }
    stats.set(p, initial);
  }
  if (branches.size === 0) return stats;
  const everyFile = paths.length;
  const selects = [...branches.values()].map(({ name, type, paths: files }) => {
    const typedMin = `TRY_CAST(stats_min_value AS ${type})`;
    const typedMax = `TRY_CAST(stats_max_value AS ${type})`;
    const fileFilter = files.length === everyFile ? '' : ` AND file_name IN (${files.map(sqlString).join(', ')})`;
    return `SELECT file_name, ${sqlString(name)} AS column_name,
              CASE WHEN count(*) = count(${typedMin}) THEN min(${typedMin})::VARCHAR END AS min_value,
              CASE WHEN count(*) = count(${typedMax}) THEN max(${typedMax})::VARCHAR END AS max_value,
              CASE WHEN count(*) = count(stats_null_count) THEN sum(stats_null_count) END AS null_count
         FROM footer_stats
        WHERE path_in_schema = ${sqlString(name)}${fileFilter}
        GROUP BY file_name`;
  });
  const result = await query(conn, selects.join('\nUNION ALL\n'), 'statistics');
  for (const [file, column, min, max, nulls] of result.rows) {
    const entry: ColumnStats = {
      min: min === null ? null : String(min),
      max: max === null ? null : String(max),
      nulls: nulls === null ? null : Number(nulls),
    };
    if (entry.min === null && entry.max === null && entry.nulls === null) continue;
    stats.get(String(file))![String(column)] = entry;
  }
  return stats;
}

/**
 * The row groups of each file read by readStats (its footer_stats table), for files of more
 * than one: rows and compressed bytes per group, in file order. The planner splits a large
 * file along them; a file of one group is never split, so it records nothing.
 */
async function readRowGroups(conn: DuckDBConnection): Promise<Map<string, RowGroup[]>> {
  const result = await query(
    conn,
    `SELECT file_name, list({'rows': rows, 'bytes': bytes} ORDER BY row_group_id)
       FROM (SELECT file_name, row_group_id, any_value(row_group_num_rows) AS rows, sum(total_compressed_size) AS bytes
               FROM footer_stats GROUP BY file_name, row_group_id)
      GROUP BY file_name
     HAVING count(*) > 1`,
    'row groups',
  );
  const groups = new Map<string, RowGroup[]>();
  for (const [file, list] of result.rows) {
    groups.set(String(file), (list as { rows: unknown; bytes: unknown }[]).map((g) => ({ rows: Number(g.rows), bytes: Number(g.bytes) })));
  }
  return groups;
}
