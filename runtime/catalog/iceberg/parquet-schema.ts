// What a read needs to know of a data file's Parquet footer: whether it carries field ids
// (files written by Iceberg writers do; files of migrated Hive tables and add_files may not),
// and its top-level column names, to map such a file by the table's name mapping.
//
// The worker learns this where the file already is, on local disk after the fetch: one
// parquet_schema() over the footers of the files it has not seen before. Data files never
// change once written (Iceberg never rewrites a path), so the answer is cached by URI for
// the life of the process. Reads whose caller does not supply it still never return NULLs
// for a file without ids: the read SQL then checks the footers itself (read.ts).

import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlStringList } from '../../sql/quote.ts';

export interface ParquetFileSchema {
  /** Some column of the file has a Parquet field id. */
  hasFieldIds: boolean;
  /** The file's top-level column names, in order. */
  columns: string[];
  /** The file's columns as a tree (struct children; list and map levels included as Parquet
   *  nests them), each with its field id, when the caller needs nested names. */
  fields?: FooterField[];
}

export interface FooterField {
  name: string;
  fieldId: number | null;
  children: FooterField[];
}

const CACHE_LIMIT = 200_000;
const cache = new Map<string, ParquetFileSchema>();

function remember(uri: string, schema: ParquetFileSchema): void {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(uri, schema);
}

interface SchemaRow {
  name: string;
  children: number;
  fieldId: number | null;
}

/** The file schema from parquet_schema()'s rows of one file (depth-first, root first). */
export function schemaFromRows(rows: readonly SchemaRow[]): ParquetFileSchema {
  // Depth first: a row's children follow it; `read` returns the field and the next row.
  const read = (at: number): [FooterField, number] => {
    const row = rows[at];
    const field: FooterField = { name: row.name, fieldId: row.fieldId, children: [] };
    let next = at + 1;
    for (let c = 0; c < row.children && next < rows.length; c++) {
      const [child, after] = read(next);
      field.children.push(child);
      next = after;
    }
    return [field, next];
  };
  const fields = rows.length > 0 ? read(0)[0].children : [];
  return { hasFieldIds: rows.slice(1).some((r) => r.fieldId !== null), columns: fields.map((f) => f.name), fields };
}

/**
 * The footer facts of each file, keyed by URI. `files` pairs each URI with its local copy;
 * files already known are not read again.
 */
export async function describeParquetFiles(
  conn: DuckDBConnection,
  files: readonly { uri: string; localPath: string }[],
): Promise<Map<string, ParquetFileSchema>> {
  const out = new Map<string, ParquetFileSchema>();
  const unknown = new Map<string, string>();
  for (const f of files) {
    const known = cache.get(f.uri);
    if (known) out.set(f.uri, known);
    else unknown.set(f.localPath, f.uri);
  }
  if (unknown.size === 0) return out;
  const result = await conn.runAndReadAll(
    `SELECT file_name, name, coalesce(num_children, 0)::INTEGER, field_id::INTEGER FROM parquet_schema(${sqlStringList([...unknown.keys()])})`,
  );
  const byFile = new Map<string, SchemaRow[]>();
  for (const [file, name, children, fieldId] of result.getRows() as [string, string, number, number | null][]) {
    let rows = byFile.get(file);
    if (!rows) byFile.set(file, (rows = []));
    rows.push({ name, children, fieldId });
  }
  for (const [localPath, uri] of unknown) {
    const rows = byFile.get(localPath);
    if (!rows) continue;
    const schema = schemaFromRows(rows);
    remember(uri, schema);
    out.set(uri, schema);
  }
  return out;
}
