// Fixed-size lists in Parquet files written by Arrow writers (pyarrow, arrow-rs, Polars, the
// Arrow-based Iceberg and Lance exporters). Parquet has no fixed-size list: such a column is a
// plain LIST, which DuckDB reads as `FLOAT[]`, and array_distance & co. do not bind on it. The
// writer keeps the Arrow schema in the footer's key-value metadata (`ARROW:schema`, base64 of
// an IPC schema message), where the column is `FixedSizeList[n]<Float32>`. At registration,
// the table's kept columns take the size from there (`FLOAT[n]`), and every read casts to the
// kept type (sql/read-cast.ts), so the column is `FLOAT[n]` on every path.
//
// Files of writers that keep no Arrow schema (DuckDB's own COPY among them) stay `FLOAT[]`:
// a list's length is a property of each row, not of the column, so it is never guessed from
// the data. Such tables cast in the query (`v::FLOAT[128]`) or are loaded into an Iceberg
// table, whose column can be declared `FLOAT[128]` (catalog/iceberg/array-sizes.ts).

import type { DuckDBConnection } from '@duckdb/node-api';
// apache-arrow loads only when a file with list columns carries an Arrow schema: the CLI's
// start does not pay for it (test/runtime/compiled.test.ts walks its static imports).
import type { DataType, Field } from 'apache-arrow';
import { sqlString } from '../sql/quote.ts';
import type { Column } from './types.ts';

/** DuckDB's element type names of the Arrow primitive types a fixed-size list may hold. */
function duckElement(type: DataType): string | undefined {
  const t = String(type);
  const known: Record<string, string> = { Float32: 'FLOAT', Float64: 'DOUBLE', Float16: 'FLOAT', Int8: 'TINYINT', Int16: 'SMALLINT', Int32: 'INTEGER', Int64: 'BIGINT', Uint8: 'UTINYINT', Uint16: 'USMALLINT', Uint32: 'UINTEGER', Uint64: 'UBIGINT', Bool: 'BOOLEAN' };
  return known[t];
}

/** Column name -> fixed size, from the base64 `ARROW:schema` value; empty when it does not decode. */
export async function fixedSizeListsOf(arrowSchemaBase64: string): Promise<Map<string, { size: number; element: string }>> {
  const out = new Map<string, { size: number; element: string }>();
  let fields: Field[];
  const { RecordBatchReader } = await import('apache-arrow');
  try {
    const reader = RecordBatchReader.from(Buffer.from(arrowSchemaBase64, 'base64'));
    reader.open();
    fields = reader.schema?.fields ?? [];
  } catch {
    return out; // not an Arrow schema we can read: the DuckDB types stand
  }
  for (const f of fields) {
    const t = f.type as DataType & { listSize?: number; children?: Field[] };
    if (String(t).startsWith('FixedSizeList') && typeof t.listSize === 'number' && t.listSize > 0 && t.children?.[0]) {
      const element = duckElement(t.children[0].type);
      if (element) out.set(f.name, { size: t.listSize, element });
    }
  }
  return out;
}

/**
 * `columns` (DuckDB's reading of the Parquet file at `path`) with the list columns the file's
 * Arrow schema declares fixed-size turned into `T[n]`. Files without list columns are not read.
 */
export async function withArrowFixedSizes(conn: DuckDBConnection, path: string, columns: Column[]): Promise<Column[]> {
  if (!columns.some((c) => /^[A-Z]+\[\]$/.test(c.type))) return columns;
  let value: string | undefined;
  try {
    const r = await conn.runAndReadAll(`SELECT decode(value) FROM parquet_kv_metadata(${sqlString(path)}) WHERE decode(key) = 'ARROW:schema' LIMIT 1`);
    const row = r.getRows()[0];
    value = row ? String(row[0]) : undefined;
  } catch {
    return columns;
  }
  if (!value) return columns;
  const sizes = await fixedSizeListsOf(value);
  return columns.map((c) => {
    const s = sizes.get(c.name);
    return s && c.type === `${s.element}[]` ? { ...c, type: `${s.element}[${s.size}]` } : c;
  });
}
