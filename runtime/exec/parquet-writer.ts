// Rows held in memory (a query result, a batch of query-log entries) written as one Parquet
// file by DuckDB, keeping each column's DuckDB type: the rows go to a newline-delimited
// JSON file in a scratch directory and DuckDB reads it back with the declared column types
// and copies it to Parquet. JSON keeps big integers and decimals as exact strings, so
// nothing passes through a double on the way. HUGEINT, which Parquet cannot hold, is
// written as DECIMAL(38,0) (as text when a value has more digits than that).

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Column } from '../catalog/types.ts';
import type { Engine, JsonValue } from '../engine/engine.ts';
import { sqlIdent, sqlString } from '../sql/quote.ts';

/**
 * Parquet bytes of `rows` under `columns`. `engine` must be allowed to read and write
 * `scratchDir` (a sandboxed engine whose allowed directories contain it is fine).
 */
export async function writeParquet(engine: Engine, scratchDir: string, columns: readonly Column[], rows: readonly JsonValue[][]): Promise<Uint8Array> {
  const source = await rowsAsQuery(scratchDir, columns, rows);
  const parquetPath = `${source.base}.parquet`;
  try {
    await engine.exec(`COPY (${source.sql}) TO ${sqlString(parquetPath)} (FORMAT parquet)`);
    return await readFile(parquetPath);
  } finally {
    await Promise.allSettled([source.remove(), rm(parquetPath, { force: true })]);
  }
}

/**
 * `rows` under `columns` as a query a DuckDB allowed to read `scratchDir` can run: the rows
 * go to a newline-delimited JSON file there, read back with the declared types (HUGEINT as
 * DECIMAL(38,0), see above). `remove()` deletes the file once the query has run.
 */
export async function rowsAsQuery(scratchDir: string, columns: readonly Column[], rows: readonly JsonValue[][]): Promise<{ sql: string; base: string; remove: () => Promise<void> }> {
  await mkdir(scratchDir, { recursive: true });
  const base = join(scratchDir, `rows-${randomUUID()}`);
  const jsonPath = `${base}.ndjson`;
  // Positional keys: result columns may repeat a name, JSON object keys may not.
  const key = (i: number) => `c${i}`;
  const lines = rows.map((row) => JSON.stringify(Object.fromEntries(row.map((v, i) => [key(i), v]))));
  await writeFile(jsonPath, lines.length ? `${lines.join('\n')}\n` : '');
  const typed = columns.map((c, i) => `${sqlString(key(i))}: ${sqlString(jsonReadType(c.type))}`).join(', ');
  const select = columns.map((c, i) => `${fromJson(sqlIdent(key(i)), c.type, rows, i)} AS ${sqlIdent(c.name)}`).join(', ');
  const source = rows.length
    ? `read_json(${sqlString(jsonPath)}, format = 'newline_delimited', records = true, columns = {${typed}})`
    // read_json cannot read an empty file; an empty result still keeps its schema.
    : `(SELECT ${columns.map((c, i) => `NULL::${jsonReadType(c.type)} AS ${sqlIdent(key(i))}`).join(', ')} LIMIT 0)`;
  return { sql: `SELECT ${select} FROM ${source}`, base, remove: () => rm(jsonPath, { force: true }) };
}

const INTERVAL_JSON = 'STRUCT(months INTEGER, days INTEGER, micros BIGINT)';

/** DuckDB writes an INTERVAL to JSON as {months, days, micros}; everything else reads back as itself. */
function jsonReadType(type: string): string {
  return type === 'INTERVAL' ? INTERVAL_JSON : type;
}

function fromJson(column: string, type: string, rows: readonly JsonValue[][], index: number): string {
  if (type === 'INTERVAL') return `to_months(${column}.months) + to_days(${column}.days) + to_microseconds(${column}.micros)`;
  if (type === 'HUGEINT' || type === 'UHUGEINT') {
    // Parquet has no 128-bit integer and DuckDB would write a double: a decimal keeps sums
    // exact, and the rare column with a value past 38 digits is written as text instead.
    const fits = rows.every((row) => row[index] === null || String(row[index]).replace('-', '').length <= 38);
    return fits ? `${column}::DECIMAL(38,0)` : `${column}::VARCHAR`;
  }
  return column;
}
