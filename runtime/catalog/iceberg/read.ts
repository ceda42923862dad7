// The DuckDB SELECT that reads a planned Iceberg scan: data files by field id (so renamed and
// added columns read correctly from older files, and identity partition columns a writer
// left out of the file come from the partition tuple), minus the rows their delete files
// remove. A fragment runs it over local copies of the files, so every file is named through
// a `localPath` function.
//
//  - Position deletes: a row goes when a position delete file that applies to its data file
//    names the data file's recorded path and the row's position (`filename`,
//    `file_row_number` of read_parquet).
//  - Equality deletes: a row goes when an equality delete file that applies to its data file
//    has a row whose delete columns all equal the row's (NULL matching NULL, per the spec).
// Which delete file applies to which data file (the sequence-number and partition rules) was
// decided by scan planning; the SQL carries that decision as a per-file list of delete ids.

import { PuffinError } from '../../errors.ts';
import { fileUriToPath } from '../../storage/locations.ts';
import { sqlIdent, sqlString } from '../../sql/quote.ts';
import type { FieldMapping, IcebergDataFile, IcebergDeleteFile, IcebergScan } from './scan.ts';

/**
 * What the SQL is built from: a planned scan, or the same facts after a trip through a
 * fragment (plain data, catalog/types.ts's IcebergFileRead), which is why only these fields.
 */
export interface IcebergReadInput {
  fields: readonly FieldMapping[];
  dataFiles: readonly Pick<IcebergDataFile, 'uri' | 'path' | 'format' | 'readSchema' | 'deletes'>[];
}
type ReadDataFile = IcebergReadInput['dataFiles'][number];

/** Iceberg's reserved field ids of position delete files (spec: Reserved Field IDs). */
const POSITION_DELETE_FILE_PATH_ID = 2147483546;
const POSITION_DELETE_POS_ID = 2147483545;

const FILE = '__puffin_file';
const PATH = '__puffin_path';
const POS = '__puffin_pos';
const DELS = '__puffin_deletes';
const DEL = '__puffin_delete';

export interface ReadSqlOptions {
  /** Local path of a file URI. Defaults to the path of a file:// URI; other URIs fail. */
  localPath?: (uri: string) => string;
}

function defaultLocalPath(uri: string): string {
  if (/^file:/i.test(uri)) return fileUriToPath(uri);
  throw new PuffinError('bad_request', `${uri} is not a local file; pass a localPath function that maps it to a fetched copy`);
}

/** Iceberg paths may look like Hive partitions (`region=eu/`); only metadata decides values. */
const NO_HIVE = 'hive_partitioning = false';

/** `MAP {id: {name, type, default_value}, ...}`: read_parquet's field-id projection. Defaults
 *  are VARCHAR literals that DuckDB casts to each column's type (a MAP's values must share one
 *  type, so typed defaults of different columns cannot sit in one MAP). */
function schemaMap(fields: readonly FieldMapping[]): string {
  const entries = fields.map(
    (f) => `${f.fieldId}: {name: ${sqlString(f.name)}, type: ${sqlString(f.type)}, default_value: ${f.defaultValue === null ? 'NULL' : sqlString(f.defaultValue)}}`,
  );
  return `MAP {${entries.join(', ')}}`;
}

function fileList(paths: readonly string[]): string {
  return `[${paths.map(sqlString).join(', ')}]`;
}

function requireParquet(kind: string, file: { path: string; format: string }): void {
  if (file.format !== 'parquet') {
    throw new PuffinError('unsupported', `${kind} ${file.path} is in ${file.format.toUpperCase()} format; only Parquet files can be read`);
  }
}

/**
 * The SELECT returning `columns` (default: every column of the scan's schema) of the scan's
 * data files with their deletes applied. Column names are the schema's; the statement has no
 * side effects and reads nothing but the listed files.
 */
export function buildIcebergReadSql(scan: IcebergScan | IcebergReadInput, columns?: readonly string[], options: ReadSqlOptions = {}): string {
  const localPath = options.localPath ?? defaultLocalPath;
  const selected = (columns ?? scan.fields.map((f) => f.name)).map((name) => {
    const field = scan.fields.find((f) => f.name === name) ?? scan.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
    if (!field) throw new PuffinError('binder_error', `column '${name}' does not exist in the table (columns: ${scan.fields.map((f) => f.name).join(', ')})`);
    return field;
  });
  if (selected.length === 0) throw new PuffinError('bad_request', 'an Iceberg read needs at least one column');
  const outputList = selected.map((f) => `d.${sqlIdent(f.name)}`).join(', ');

  if (scan.dataFiles.length === 0) {
    return `SELECT ${selected.map((f) => `CAST(NULL AS ${f.type}) AS ${sqlIdent(f.name)}`).join(', ')} LIMIT 0`;
  }
  for (const d of scan.dataFiles) {
    requireParquet('data file', d);
    for (const del of d.deletes) requireParquet('delete file', del);
  }

  // Every delete file gets an id; each data file lists the ids that apply to it.
  const deleteIds = new Map<string, { id: number; file: IcebergDeleteFile }>();
  for (const d of scan.dataFiles) {
    for (const del of d.deletes) if (!deleteIds.has(del.uri)) deleteIds.set(del.uri, { id: deleteIds.size, file: del });
  }
  const hasDeletes = deleteIds.size > 0;

  // Equality columns must be read from the data files even when not selected (or dropped).
  const equalityFields = new Map<number, FieldMapping>();
  for (const { file } of deleteIds.values()) for (const f of file.equalityFields ?? []) equalityFields.set(f.fieldId, f);
  const hidden: FieldMapping[] = [...equalityFields.values()]
    .filter((f) => !selected.some((s) => s.fieldId === f.fieldId))
    .map((f) => ({ ...f, name: `__puffin_eq_${f.fieldId}` }));
  const dataColumnOf = (fieldId: number): string => {
    const s = selected.find((f) => f.fieldId === fieldId);
    return sqlIdent(s ? s.name : `__puffin_eq_${fieldId}`);
  };

  // Data files sharing one mapping (the same identity-partition defaults) share one scan.
  const groups = new Map<string, { fields: FieldMapping[]; files: ReadDataFile[] }>();
  for (const d of scan.dataFiles) {
    const wanted = [...selected, ...hidden].map((f) => {
      const own = d.readSchema.find((m) => m.fieldId === f.fieldId);
      return { ...f, defaultValue: own?.defaultValue ?? null };
    });
    const key = schemaMap(wanted);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { fields: wanted, files: [] }));
    g.files.push(d);
  }
  const readColumns = [...selected, ...hidden].map((f) => sqlIdent(f.name)).join(', ');
  const dataScans = [...groups.values()].map((g) => {
    const paths = g.files.map((d) => localPath(d.uri));
    return hasDeletes
      ? `SELECT ${readColumns}, filename AS ${FILE}, file_row_number AS ${POS} FROM read_parquet(${fileList(paths)}, schema = ${schemaMap(g.fields)}, ${NO_HIVE}, filename = true, file_row_number = true)`
      : `SELECT ${readColumns} FROM read_parquet(${fileList(paths)}, schema = ${schemaMap(g.fields)}, ${NO_HIVE})`;
  });
  const data = dataScans.join('\nUNION ALL\n');
  if (!hasDeletes) return `SELECT ${outputList} FROM (\n${data}\n) d`;

  const ctes: string[] = [`__puffin_data AS (\n${data}\n)`];
  const files = scan.dataFiles.map((d) => {
    const ids = d.deletes.map((del) => deleteIds.get(del.uri)?.id as number);
    return `(${sqlString(localPath(d.uri))}, ${sqlString(d.path)}, [${ids.join(', ')}]::INTEGER[])`;
  });
  ctes.push(`__puffin_files(${FILE}, ${PATH}, ${DELS}) AS (VALUES ${files.join(', ')})`);

  const conditions: string[] = [];
  const positional = [...deleteIds.values()].filter((x) => x.file.content === 'position');
  if (positional.length > 0) {
    const posMap = schemaMap([
      { fieldId: POSITION_DELETE_FILE_PATH_ID, name: PATH, type: 'VARCHAR', defaultValue: null },
      { fieldId: POSITION_DELETE_POS_ID, name: POS, type: 'BIGINT', defaultValue: null },
    ]);
    const reads = positional.map((x) => `SELECT ${PATH}, ${POS}, ${x.id} AS ${DEL} FROM read_parquet(${sqlString(localPath(x.file.uri))}, schema = ${posMap}, ${NO_HIVE})`);
    ctes.push(`__puffin_position_deletes AS (\n${reads.join('\nUNION ALL\n')}\n)`);
    conditions.push(
      `NOT EXISTS (SELECT 1 FROM __puffin_position_deletes p WHERE p.${PATH} = m.${PATH} AND p.${POS} = d.${POS} AND list_contains(m.${DELS}, p.${DEL}))`,
    );
  }

  // Equality delete files comparing the same columns are read together.
  const equalityGroups = new Map<string, { ids: number[]; files: { id: number; file: IcebergDeleteFile }[] }>();
  for (const x of deleteIds.values()) {
    if (x.file.content !== 'equality') continue;
    const ids = [...(x.file.equalityFieldIds ?? [])].sort((a, b) => a - b);
    const key = ids.join(',');
    let g = equalityGroups.get(key);
    if (!g) equalityGroups.set(key, (g = { ids, files: [] }));
    g.files.push(x);
  }
  let n = 0;
  for (const g of equalityGroups.values()) {
    const cte = `__puffin_equality_deletes_${n++}`;
    const reads = g.files.map((x) => {
      const byId = new Map((x.file.equalityFields ?? []).map((f) => [f.fieldId, f]));
      const fields = g.ids.map((id, k) => ({ ...(byId.get(id) as FieldMapping), name: `__puffin_k${k}` }));
      return `SELECT ${fields.map((f) => sqlIdent(f.name)).join(', ')}, ${x.id} AS ${DEL} FROM read_parquet(${sqlString(localPath(x.file.uri))}, schema = ${schemaMap(fields)}, ${NO_HIVE})`;
    });
    ctes.push(`${cte} AS (\n${reads.join('\nUNION ALL\n')}\n)`);
    const matches = g.ids.map((id, k) => `e.${sqlIdent(`__puffin_k${k}`)} IS NOT DISTINCT FROM d.${dataColumnOf(id)}`);
    conditions.push(`NOT EXISTS (SELECT 1 FROM ${cte} e WHERE ${matches.join(' AND ')} AND list_contains(m.${DELS}, e.${DEL}))`);
  }

  return [
    `WITH ${ctes.join(',\n')}`,
    `SELECT ${outputList}`,
    `FROM __puffin_data d JOIN __puffin_files m ON m.${FILE} = d.${FILE}`,
    `WHERE ${conditions.join('\n  AND ')}`,
  ].join('\n');
}
