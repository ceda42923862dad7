// Temporary views over Parquet files (or a CSV/JSON table's text files) with a declared schema. Workers use them for a
// fragment's inputs, the coordinator for the partials it reduces. Selecting exactly the
// declared columns, cast to the declared types, keeps every file set (even an empty one)
// presenting one identical schema, whatever each file happens to contain.

import { PuffinError } from '../errors.ts';
import { sqlIdent, sqlStringList } from '../sql/quote.ts';
import type { Column, IcebergFieldRead } from '../catalog/types.ts';
import { readColumnSql } from '../sql/read-cast.ts';
import { buildIcebergReadSql } from '../catalog/iceberg/read.ts';
import { fileSetSelectSql } from '../catalog/file-sets.ts';
import type { ParquetFileSchema } from '../catalog/iceberg/parquet-schema.ts';
import type { FileRef, FragmentInput } from '../planner/plan.ts';

function selectList(columns: readonly Column[], fromNull: boolean): string {
  return columns.map((c) => (fromNull ? `CAST(NULL AS ${c.type}) AS ${sqlIdent(c.name)}` : readColumnSql(c))).join(', ');
}

/**
 * `CREATE TEMP VIEW name AS SELECT <columns> FROM read_parquet([...])`, or an empty view of
 * the same columns when there are no files (read_parquet refuses an empty list).
 */
export function parquetViewSql(name: string, columns: readonly Column[], paths: readonly string[]): string {
  if (columns.length === 0) {
    throw new PuffinError('bad_request', `view ${sqlIdent(name)} declares no columns; a view must have at least one column`);
  }
  const body = paths.length
    ? `SELECT ${selectList(columns, false)} FROM read_parquet(${sqlStringList(paths)}, union_by_name = true)`
    : `SELECT ${selectList(columns, true)} LIMIT 0`;
  return `CREATE TEMP VIEW ${sqlIdent(name)} AS ${body}`;
}

/**
 * A fragment input over an Iceberg table's files: read by field id (renamed and added columns,
 * identity-partition constants) with the files' position and equality deletes applied, then
 * presented as the declared columns like any other view. `localPath` maps each data and delete
 * file URI to its fetched copy.
 */
export function icebergViewSql(
  name: string,
  columns: readonly Column[],
  fields: readonly IcebergFieldRead[],
  files: readonly FileRef[],
  localPath: (uri: string) => string,
  fileSchemas?: (uri: string) => ParquetFileSchema | undefined,
): string {
  if (columns.length === 0) {
    throw new PuffinError('bad_request', `view ${sqlIdent(name)} declares no columns; a view must have at least one column`);
  }
  const dataFiles = files.map((f) => {
    if (!f.iceberg) throw new PuffinError('bad_request', `view ${sqlIdent(name)}: file ${f.uri} of an Iceberg input carries no Iceberg read information`);
    return { uri: f.uri, path: f.iceberg.path, format: f.iceberg.format, readSchema: f.iceberg.readSchema, deletes: f.iceberg.deletes };
  });
  const read = buildIcebergReadSql({ fields, dataFiles }, columns.map((c) => c.name), fileSchemas ? { localPath, fileSchemas } : { localPath });
  return `CREATE TEMP VIEW ${sqlIdent(name)} AS SELECT ${selectList(columns, false)} FROM (\n${read}\n) AS __iceberg`;
}

/**
 * The view of one fragment input over local copies of its files: by field id, with deletes
 * applied, for an Iceberg input; plain Parquet otherwise. `fileSchemas` (the data files'
 * footer facts, see catalog/iceberg/parquet-schema.ts) lets files without field ids be read
 * by the table's name mapping; without it the view checks the footers itself.
 */
export function inputViewSql(input: FragmentInput, localPath: (uri: string) => string, fileSchemas?: (uri: string) => ParquetFileSchema | undefined): string {
  if (input.fileSet) return fileSetViewSql(input, localPath);
  return input.iceberg
    ? icebergViewSql(input.view, input.columns, input.iceberg.fields, input.files, localPath, fileSchemas)
    : parquetViewSql(input.view, input.columns, input.files.map((f) => localPath(f.uri)));
}

/**
 * A fragment input over a CSV/TSV/JSON/NDJSON table's files: read with the columns and reader
 * options recorded when the table was added (catalog/file-sets.ts), each file's hive
 * partition values as constants, then presented as the declared columns.
 */
export function fileSetViewSql(input: FragmentInput, localPath: (uri: string) => string): string {
  const { view: name, columns, fileSet } = input;
  if (!fileSet) throw new PuffinError('internal', `view ${sqlIdent(name)} is not over a CSV/JSON table`);
  if (columns.length === 0) {
    throw new PuffinError('bad_request', `view ${sqlIdent(name)} declares no columns; a view must have at least one column`);
  }
  const body = input.files.length
    ? `SELECT ${selectList(columns, false)} FROM (\n${fileSetSelectSql(fileSet, input.files.map((f) => ({ path: localPath(f.uri), partitionValues: f.partitionValues })))}\n) AS __files`
    : `SELECT ${selectList(columns, true)} LIMIT 0`;
  return `CREATE TEMP VIEW ${sqlIdent(name)} AS ${body}`;
}
