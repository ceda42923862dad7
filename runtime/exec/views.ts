// Temporary views over Parquet files (or a CSV/JSON table's text files) with a declared schema. Workers use them for a
// fragment's inputs, the coordinator for the partials it reduces. Selecting exactly the
// declared columns, cast to the declared types, keeps every file set (even an empty one)
// presenting one identical schema, whatever each file happens to contain.

import { PuffinError } from '../errors.ts';
import { sqlIdent, sqlString, sqlStringList } from '../sql/quote.ts';
import type { Column, IcebergFieldRead } from '../catalog/types.ts';
import { readColumnSql } from '../sql/read-cast.ts';
import { buildIcebergReadSql } from '../catalog/iceberg/read.ts';
import { fileSetSelectSql } from '../catalog/file-sets.ts';
import type { ParquetFileSchema } from '../catalog/iceberg/parquet-schema.ts';
import type { FileRef, FragmentInput } from '../planner/plan.ts';

function selectList(columns: readonly Column[], fromNull: boolean): string {
  return columns.map((c) => (fromNull ? `CAST(NULL AS ${c.type}) AS ${sqlIdent(c.name)}` : readColumnSql(c))).join(', ');
}

/** A local Parquet file to read, whole or (a split, FileRef.rows) a range of its rows. */
export type ParquetRead = string | { path: string; rows?: { start: number; end: number } };

/**
 * `CREATE TEMP VIEW name AS SELECT <columns> FROM read_parquet([...])`, or an empty view of
 * the same columns when there are no files (read_parquet refuses an empty list).
 *
 * A split of a file reads its rows [start, end) by `file_row_number`, a filter DuckDB's
 * reader applies to whole row groups before reading them. Splits are read one read_parquet
 * each (a filter naming the file would not reach the reader) and combined BY NAME with an
 * empty branch of the declared columns, so a file lacking a column reads it as NULL, as
 * union_by_name does for whole files.
 */
export function parquetViewSql(name: string, columns: readonly Column[], files: readonly ParquetRead[]): string {
  if (columns.length === 0) {
    throw new PuffinError('bad_request', `view ${sqlIdent(name)} declares no columns; a view must have at least one column`);
  }
  const whole = files.flatMap((f) => (typeof f === 'string' ? [f] : f.rows ? [] : [f.path]));
  const splits = files.flatMap((f) => (typeof f !== 'string' && f.rows ? [{ path: f.path, rows: f.rows }] : []));
  const wholeRead = `read_parquet(${sqlStringList(whole)}, union_by_name = true)`;
  let body: string;
  if (splits.length) {
    const branches = [
      `(SELECT ${selectList(columns, true)} LIMIT 0)`,
      ...splits.map(({ path, rows }) => `(SELECT * EXCLUDE (file_row_number) FROM read_parquet(${sqlString(path)}, file_row_number = true) WHERE file_row_number >= ${rows.start} AND file_row_number < ${rows.end})`),
      ...(whole.length ? [`(SELECT * FROM ${wholeRead})`] : []),
    ];
    body = `SELECT ${selectList(columns, false)} FROM (${branches.join(' UNION ALL BY NAME ')}) AS __splits`;
  } else {
    body = whole.length ? `SELECT ${selectList(columns, false)} FROM ${wholeRead}` : `SELECT ${selectList(columns, true)} LIMIT 0`;
  }
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
    // Only plain Parquet files are split (planner.ts fileRef): a range here would be ignored.
    if (f.rows) throw new PuffinError('internal', `view ${sqlIdent(name)}: file ${f.uri} of an Iceberg input is a row range; Iceberg files are read whole`);
    if (!f.iceberg) throw new PuffinError('bad_request', `view ${sqlIdent(name)}: file ${f.uri} of an Iceberg input carries no Iceberg read information`);
    return { uri: f.uri, path: f.iceberg.path, format: f.iceberg.format, readSchema: f.iceberg.readSchema, deletes: f.iceberg.deletes, sequenceNumber: f.iceberg.sequenceNumber, ...(f.iceberg.firstRowId !== undefined ? { firstRowId: f.iceberg.firstRowId } : {}) };
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
    : parquetViewSql(input.view, input.columns, input.files.map((f) => ({ path: localPath(f.uri), ...(f.rows ? { rows: f.rows } : {}) })));
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
  const split = input.files.find((f) => f.rows);
  if (split) throw new PuffinError('internal', `view ${sqlIdent(name)}: file ${split.uri} of a CSV/JSON input is a row range; text files are read whole`);
  const body = input.files.length
    ? `SELECT ${selectList(columns, false)} FROM (\n${fileSetSelectSql(fileSet, input.files.map((f) => ({ path: localPath(f.uri), partitionValues: f.partitionValues })))}\n) AS __files`
    : `SELECT ${selectList(columns, true)} LIMIT 0`;
  return `CREATE TEMP VIEW ${sqlIdent(name)} AS ${body}`;
}
