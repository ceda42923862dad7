// The writing half of `COPY ... TO` (runtime/exec/copy-to.ts has the statement, the
// location checks and the coordination): a query's rows written as Parquet, CSV or JSON
// files into a staging directory the writer's sandboxed DuckDB may write, then uploaded to
// the export location through the object store. A fragment runs this over its own rows
// (Fragment.write, below), the coordinator over a whole result when one writer is needed.
//
// Every file name starts with the query's id and the writer's id (`<queryId>-<fragment>`),
// so fragments writing into one directory (or one hive partition directory) never collide,
// a retried fragment rewrites its own files, and a failed COPY finds exactly its files.
//
// How a fragment is told to export: Fragment.write (runtime/planner/plan.ts) carries
// `{ table, metadataLocation }` for Iceberg writes; an export is the same field with
// `table` set to EXPORT_WRITE_TABLE and `metadataLocation` holding the ExportTarget as JSON,
// so plans, the wire format and the coordinator carry it unchanged. The worker checks the
// target again (exportTargetOf) before writing anything.

import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { runQuery } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlIdent, sqlString } from '../sql/quote.ts';
import { openStore, type StoreOptions } from '../storage/open.ts';
import type { Fragment } from '../planner/plan.ts';
import { queryColumns } from './fragment-sql.ts';

export type ExportFormat = 'parquet' | 'csv' | 'json';

/** Where and how a COPY writes: the same for every writer of one statement. */
export interface ExportTarget {
  /** The export directory: 'file:///dir/' or 's3://bucket/prefix/', ending in '/'. */
  uri: string;
  format: ExportFormat;
  /** Hive partition columns (directories `col=value/`), in order; empty: none. */
  partitionBy: string[];
  /** Start of every file name: the query's id. */
  prefix: string;
  compression?: string;
  /** CSV only. */
  header?: boolean;
  /** CSV only: one character. */
  delimiter?: string;
}

/** One file a COPY wrote. */
export interface ExportedFile {
  uri: string;
  rows: number;
  bytes: number;
}

/** Fragment.write.table of an export fragment (no Iceberg table can be named so: it has a space). */
export const EXPORT_WRITE_TABLE = 'COPY TO';

export const COMPRESSIONS: Record<ExportFormat, readonly string[]> = {
  parquet: ['snappy', 'zstd', 'gzip', 'lz4', 'lz4_raw', 'brotli', 'uncompressed'],
  csv: ['none', 'gzip', 'zstd'],
  json: ['none', 'gzip', 'zstd'],
};

const SAFE_PREFIX = /^[A-Za-z0-9_-]{1,100}$/;

/** Fragment.write of a fragment that exports its rows to `target`. */
export function exportWrite(target: ExportTarget): NonNullable<Fragment['write']> {
  return { table: EXPORT_WRITE_TABLE, metadataLocation: JSON.stringify(target) };
}

/** The export target of a fragment's write, checked; undefined for an Iceberg write. */
export function exportTargetOf(write: Fragment['write']): ExportTarget | undefined {
  if (!write || write.table !== EXPORT_WRITE_TABLE) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(write.metadataLocation);
  } catch {
    throw new PuffinError('bad_request', 'fragment.write: an export target must be JSON');
  }
  return checkExportTarget(value);
}

/** Throws bad_request unless `value` is a well-formed export target (a worker's own check). */
export function checkExportTarget(value: unknown): ExportTarget {
  const bad = (what: string) => new PuffinError('bad_request', `export target: ${what}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const o = value as Record<string, unknown>;
  const uri = o.uri;
  if (typeof uri !== 'string' || !/^(file:\/\/\/|s3:\/\/[A-Za-z0-9][A-Za-z0-9._-]*\/)/.test(uri) || !uri.endsWith('/') || uri.includes('\0') || uri.includes('\\')) {
    throw bad('uri must be a file:/// or s3:// directory URI ending in /');
  }
  const path = uri.replace(/^file:\/\/|^s3:\/\/[^/]*/, '');
  if (path.slice(1, -1).split('/').some((s) => s === '' || s === '.' || s === '..')) throw bad("uri has an empty, '.' or '..' segment");
  const format = o.format;
  if (format !== 'parquet' && format !== 'csv' && format !== 'json') throw bad('format must be parquet, csv or json');
  if (!Array.isArray(o.partitionBy) || !o.partitionBy.every((c) => typeof c === 'string' && c !== '' && !c.includes('\0'))) throw bad('partitionBy must be column names');
  if (typeof o.prefix !== 'string' || !SAFE_PREFIX.test(o.prefix)) throw bad('prefix must be letters, digits, - and _');
  if (o.compression !== undefined && (typeof o.compression !== 'string' || !COMPRESSIONS[format].includes(o.compression))) throw bad(`compression must be one of ${COMPRESSIONS[format].join(', ')}`);
  if (o.header !== undefined && (typeof o.header !== 'boolean' || format !== 'csv')) throw bad('header is a boolean of CSV');
  if (o.delimiter !== undefined && (typeof o.delimiter !== 'string' || [...o.delimiter].length !== 1 || /[\r\n\0]/.test(o.delimiter) || format !== 'csv')) throw bad('delimiter is one character of CSV');
  return {
    uri, format, partitionBy: [...o.partitionBy] as string[], prefix: o.prefix,
    ...(o.compression !== undefined ? { compression: o.compression as string } : {}),
    ...(o.header !== undefined ? { header: o.header as boolean } : {}),
    ...(o.delimiter !== undefined ? { delimiter: o.delimiter as string } : {}),
  };
}

/** DuckDB's COPY options for the target's format (no path, partitioning or file naming). */
function formatOptions(target: ExportTarget): string {
  const options = [`FORMAT ${target.format}`];
  if (target.compression) options.push(`COMPRESSION ${sqlString(target.compression)}`);
  if (target.format === 'csv') {
    options.push(`HEADER ${target.header === false ? 'false' : 'true'}`);
    if (target.delimiter !== undefined) options.push(`DELIMITER ${sqlString(target.delimiter)}`);
  }
  return options.join(', ');
}

/** The file name ending of the target's files. */
export function exportExtension(target: ExportTarget): string {
  if (target.format === 'parquet') return '.parquet';
  const suffix = target.compression === 'gzip' ? '.gz' : target.compression === 'zstd' ? '.zst' : '';
  return `.${target.format}${suffix}`;
}

/**
 * Write `sql`'s rows as the target's files named `<name>...` and upload them under the
 * target. `conn` must be a DuckDB that may write `stagingDir` (a sandboxed one is right).
 * Unpartitioned, one file is written (DuckDB's COPY answers its row count). Partitioned,
 * DuckDB's PARTITION_BY writes the hive directories as Parquet with RETURN_STATS (each
 * file's row count); CSV and JSON files are then written from those Parquet files one by
 * one (DuckDB's JSON writer has no PARTITION_BY, and CSV's does not count rows per file), so
 * their values pass through Parquet's types (a HUGEINT is written as a DOUBLE there, as a
 * Parquet COPY of DuckDB's would).
 */
export async function writeExport(options: {
  conn: DuckDBConnection;
  sql: string;
  target: ExportTarget;
  stagingDir: string;
  /** The writer's part of the file names after the prefix, e.g. the fragment id. */
  writer: string;
  storeOptions: StoreOptions;
  signal?: AbortSignal;
}): Promise<ExportedFile[]> {
  const { conn, target, stagingDir, signal } = options;
  const name = `${target.prefix}-${options.writer}`;
  if (!SAFE_PREFIX.test(name)) throw new PuffinError('internal', `export file name '${name}' is not safe`);
  const query = options.sql.replace(/[\s;]+$/, '');
  // One query, nothing spliced into the COPY around it.
  await queryColumns(conn, query);
  const out = join(stagingDir, 'out');
  await mkdir(out, { recursive: true });
  const staged: { path: string; rows: number }[] = [];
  try {
    if (target.partitionBy.length === 0) {
      const path = join(out, `${name}${exportExtension(target)}`);
      const copied = await runQuery(conn, `COPY (\n${query}\n) TO ${sqlString(path)} (${formatOptions(target)})`);
      staged.push({ path, rows: Number(copied.rows[0]?.[0] ?? 0) });
    } else {
      const parquet = target.format === 'parquet';
      const copyOptions = parquet ? formatOptions(target) : 'FORMAT parquet';
      const partitions = target.partitionBy.map(sqlIdent).join(', ');
      const copied = await runQuery(conn, `COPY (\n${query}\n) TO ${sqlString(out)} (${copyOptions}, PARTITION_BY (${partitions}), FILENAME_PATTERN ${sqlString(`${name}-{i}`)}, RETURN_STATS true)`);
      const file = copied.columns.findIndex((c) => c.name === 'filename');
      const count = copied.columns.findIndex((c) => c.name === 'count');
      for (const row of copied.rows) {
        const path = String(row[file]);
        const rows = Number(row[count]);
        if (parquet) {
          staged.push({ path, rows });
          continue;
        }
        const converted = path.replace(/\.parquet$/, exportExtension(target));
        await runQuery(conn, `COPY (SELECT * FROM read_parquet(${sqlString(path)}, hive_partitioning = false)) TO ${sqlString(converted)} (${formatOptions(target)})`);
        await rm(path, { force: true });
        staged.push({ path: converted, rows });
      }
    }
  } catch (err) {
    throw toPuffinError(err);
  }

  const store = openStore(target.uri, options.storeOptions);
  const uploaded: ExportedFile[] = [];
  const keys: string[] = [];
  try {
    for (const file of staged) {
      if (signal?.aborted) throw signal.reason;
      const key = relative(out, file.path).split(sep).join('/');
      if (key.startsWith('..') || !key.split('/').pop()!.startsWith(name)) throw new PuffinError('internal', `export wrote an unexpected file '${key}'`);
      const bytes = await readFile(file.path);
      keys.push(key);
      await store.put(key, bytes);
      uploaded.push({ uri: `${target.uri}${key}`, rows: file.rows, bytes: bytes.byteLength });
      await rm(file.path, { force: true });
    }
    if (signal?.aborted) throw signal.reason;
  } catch (err) {
    // Nobody will collect these files any more: do not leave them behind.
    await Promise.allSettled(keys.map((k) => store.delete(k)));
    throw signal?.aborted ? signal.reason : toPuffinError(err);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  return uploaded;
}
