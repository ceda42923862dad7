// v3 row lineage of rows that are rewritten (spec: Row Lineage). A row's `_row_id` is the
// value its data file stores in the reserved column of that name (field id 2147483540), or,
// when that is null or absent, the file's `first_row_id` plus the row's position in the file;
// its `_last_updated_sequence_number` (field id 2147483539) is the stored value, or the data
// file's data sequence number. Writers that copy existing rows into new files (copy-on-write
// DELETE / UPDATE, MERGE, compaction) must store both explicitly:
//  - a row copied unchanged keeps both;
//  - an updated row keeps `_row_id` and stores a null `_last_updated_sequence_number` (it
//    inherits the new file's sequence number, the commit's);
//  - a new row stores null for both (it gets a fresh id from the new file's first_row_id).
//
// Inside PuffinDB the two values ride along a rewrite's rows as two trailing columns with
// internal names (ROW_ID_COLUMN, LAST_UPDATED_COLUMN): read.ts computes them when asked
// (`lineage: true`, or a requested column of that name), and writer-data.ts's writeDataFiles,
// told so (`lineage: true`; a fragment's `write.lineage`), writes them into v3 tables' files
// under the reserved field ids (v2 tables' files never get them). Never on a user's rows: a
// SELECT naming its columns so does not make its values row ids. This module holds the names and the SQL pieces that
// carry them through a rewrite's projection.

import { sqlIdent } from '../../sql/quote.ts';

/** Reserved field ids and names of the lineage columns (spec: Reserved Field IDs). */
export const ROW_ID_FIELD_ID = 2147483540;
export const LAST_UPDATED_FIELD_ID = 2147483539;
export const ROW_ID_NAME = '_row_id';
export const LAST_UPDATED_NAME = '_last_updated_sequence_number';

/** The internal columns a rewrite's rows carry their lineage in (read.ts outputs them,
 *  writeDataFiles, told `lineage: true`, takes them from the last two columns of its rows). */
export const ROW_ID_COLUMN = '__puffin_row_id';
export const LAST_UPDATED_COLUMN = '__puffin_last_updated_seq';
export const LINEAGE_COLUMNS: readonly string[] = [ROW_ID_COLUMN, LAST_UPDATED_COLUMN];

/** Whether a table's rewrites must keep row lineage (format v3 and later). */
export function keepsLineage(m: { formatVersion: number }): boolean {
  return m.formatVersion >= 3;
}

/** Whether `names` end in the lineage columns (writeDataFiles checks rows said to carry them). */
export function endsInLineage(names: readonly string[]): boolean {
  return names.length >= 2 && names[names.length - 2] === ROW_ID_COLUMN && names[names.length - 1] === LAST_UPDATED_COLUMN;
}

/** Select-list items passing the lineage of rows `alias` through unchanged (rows copied as they are). */
export function keptLineageSql(alias: string): string {
  return `${alias}.${sqlIdent(ROW_ID_COLUMN)}, ${alias}.${sqlIdent(LAST_UPDATED_COLUMN)}`;
}

/**
 * Select-list items giving the lineage of rows `alias` after an UPDATE whose changed rows are
 * those where `changed` is true: every row keeps its `_row_id`; a changed row's
 * `_last_updated_sequence_number` becomes null (the commit's sequence number, by inheritance).
 */
export function updatedLineageSql(alias: string, changed: string): string {
  return `${alias}.${sqlIdent(ROW_ID_COLUMN)}, CASE WHEN (${changed}) IS TRUE THEN CAST(NULL AS BIGINT) ELSE ${alias}.${sqlIdent(LAST_UPDATED_COLUMN)} END AS ${sqlIdent(LAST_UPDATED_COLUMN)}`;
}

/** Select-list items for new rows: null lineage (fresh ids, the commit's sequence number). */
export function newLineageSql(): string {
  return `CAST(NULL AS BIGINT) AS ${sqlIdent(ROW_ID_COLUMN)}, CAST(NULL AS BIGINT) AS ${sqlIdent(LAST_UPDATED_COLUMN)}`;
}

/** `text` with string literals and quoted names blanked out, keeping every offset. */
function masked(text: string): string {
  return text.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, (q) => ' '.repeat(q.length));
}

/**
 * For a MERGE run by DuckDB over rows carrying the lineage columns: every `UPDATE SET` of the
 * WHEN clauses also sets `_last_updated_sequence_number` to null, so the rows an UPDATE
 * clause touches are marked updated (they keep `_row_id`, which no clause assigns); DELETE
 * removes rows with their lineage, and INSERT with a column list leaves both null (new rows).
 * Run it after `UPDATE SET *` / `INSERT *` are spelled out column by column (merge.ts's
 * expandStars): with the two extra columns, `*` no longer lines up with the source.
 */
export function markUpdatedRows(clauses: string): string {
  const mask = masked(clauses);
  const found = [...mask.matchAll(/\bUPDATE\s+SET\b/gi)];
  let out = clauses;
  for (const m of found.reverse()) {
    const end = (m.index ?? 0) + m[0].length;
    out = `${out.slice(0, end)} ${sqlIdent(LAST_UPDATED_COLUMN)} = CAST(NULL AS BIGINT),${out.slice(end)}`;
  }
  return out;
}
