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
//  - Deletion vectors (v3): the positions of a Puffin blob, decoded here from the local copy
//    of the file, delete like a position delete file naming the referenced data file.
// A column a file lacks reads as its identity-partition value, else its `initial-default`,
// else NULL (spec: Column Projection). A data file without Parquet field ids is read by the
// table's name mapping when the caller knows its footer (`fileSchemas`), is an error naming
// it when the table has no mapping, and is otherwise refused by a footer check in the SQL:
// never read as all NULLs.
// Which delete file applies to which data file (the sequence-number and partition rules) was
// decided by scan planning; the SQL carries that decision as a per-file list of delete ids.
// v3 row lineage (lineage.ts): asked for, each row's `_row_id` and
// `_last_updated_sequence_number` are computed as the spec says, from the file's own reserved
// columns (read by field id) where not null, else from the file's first_row_id plus the row's
// position and from its data sequence number.

import { PuffinError } from '../../errors.ts';
import { fileUriToPath } from '../../storage/locations.ts';
import { sqlIdent, sqlString } from '../../sql/quote.ts';
import { NAME_MAPPING_PROPERTY } from './name-mapping.ts';
import type { FooterField, ParquetFileSchema } from './parquet-schema.ts';
import { cardinality, decodeDeletionVector, readDeletionVector, type PositionRanges } from './puffin.ts';
import type { FieldMapping, IcebergDataFile, IcebergDeleteFile, IcebergScan } from './scan.ts';
import { pushdownSafe } from '../../sql/read-cast.ts';
import { LAST_UPDATED_COLUMN, LAST_UPDATED_FIELD_ID, LAST_UPDATED_NAME, ROW_ID_COLUMN, ROW_ID_FIELD_ID, ROW_ID_NAME } from './lineage.ts';

/**
 * What the SQL is built from: a planned scan, or the same facts after a trip through a
 * fragment (plain data, catalog/types.ts's IcebergFileRead), which is why only these fields.
 */
export interface IcebergReadInput {
  fields: readonly FieldMapping[];
  dataFiles: readonly (Pick<IcebergDataFile, 'uri' | 'path' | 'format' | 'readSchema' | 'deletes'> & {
    /** Data sequence number and v3 first_row_id: needed only to read row lineage. */
    sequenceNumber?: number;
    firstRowId?: number;
  })[];
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
/** The lineage a data file stores (null or absent: computed), and the file's own values. */
const FILE_ROW_ID = '__puffin_file_row_id';
const FILE_LAST_UPDATED = '__puffin_file_last_updated';
const FIRST_ROW_ID = '__puffin_first_row_id';
const DATA_SEQUENCE = '__puffin_data_sequence';
const LINEAGE_FILE_FIELDS: readonly FieldMapping[] = [
  { fieldId: ROW_ID_FIELD_ID, name: FILE_ROW_ID, type: 'BIGINT', defaultValue: null },
  { fieldId: LAST_UPDATED_FIELD_ID, name: FILE_LAST_UPDATED, type: 'BIGINT', defaultValue: null },
];

/** Which lineage value a requested column that is not a table column names, if any: the
 *  spec's metadata column names, or the internal ones rewrites carry (lineage.ts). */
function lineageKind(name: string): 'row_id' | 'last_updated' | undefined {
  if (name === ROW_ID_COLUMN || name.toLowerCase() === ROW_ID_NAME) return 'row_id';
  if (name === LAST_UPDATED_COLUMN || name.toLowerCase() === LAST_UPDATED_NAME) return 'last_updated';
  return undefined;
}

/** The reserved lineage columns of a footer, read by name (the field-id-free plain path). */
function plainLineageSelect(footer: readonly FooterField[]): string {
  return LINEAGE_FILE_FIELDS.map((f) => {
    const ff = footer.find((c) => c.fieldId === f.fieldId);
    return `CAST(${ff ? sqlIdent(ff.name) : 'NULL'} AS BIGINT) AS ${sqlIdent(f.name)}`;
  }).join(', ');
}

export interface ReadSqlOptions {
  /** Local path of a file URI. Defaults to the path of a file:// URI; other URIs fail. */
  localPath?: (uri: string) => string;
  /** The footer facts of a data file by URI (parquet-schema.ts), when the caller has them:
   *  files without field ids are then read by name mapping, and no footer check is needed. */
  fileSchemas?: (uri: string) => ParquetFileSchema | undefined;
  /** Also output `__puffin_pos`, each row's position in its data file (merge-on-read
   *  deletes name rows by it; read one data file per query to know whose position it is). */
  rowPositions?: boolean;
  /** Also output each row's v3 lineage, `__puffin_row_id` and `__puffin_last_updated_seq`
   *  (lineage.ts), after the columns (and before `__puffin_pos`). */
  lineage?: boolean;
}

/** The column `rowPositions` adds. */
export const ROW_POSITION_COLUMN = '__puffin_pos';

/** The local path of a file: URI (what reads use when given no localPath function). */
export function localFilePath(uri: string): string {
  return defaultLocalPath(uri);
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
  const entries = fields.map((f) => {
    const value = missingValue(f);
    return `${f.fieldId}: {name: ${sqlString(f.name)}, type: ${sqlString(f.type)}, default_value: ${value === null ? 'NULL' : sqlString(value)}}`;
  });
  return `MAP {${entries.join(', ')}}`;
}

/** The value of a column a file lacks: the identity-partition value, else `initial-default`. */
function missingValue(f: FieldMapping): string | null {
  return f.defaultValue ?? f.initialDefault ?? null;
}

/**
 * The select list reading `fields` from a file without field ids, by the names the table's
 * name mapping gives them. Throws, naming the file and a column, when the file cannot be
 * mapped: the table has no mapping, or no column of the file is named by it.
 */
function byNameList(fields: readonly FieldMapping[], tableFields: readonly FieldMapping[], file: ReadDataFile, schema: ParquetFileSchema): string {
  if (tableFields.every((f) => f.names === undefined)) {
    throw new PuffinError(
      'bad_request',
      `data file ${file.path} has no Parquet field ids and the table has no name mapping (table property ${NAME_MAPPING_PROPERTY}), so its columns cannot be matched to the table's: column '${fields[0].name}' cannot be read`,
    );
  }
  const present = new Set(schema.columns);
  if (!tableFields.some((f) => (f.names ?? []).some((n) => present.has(n)))) {
    throw new PuffinError(
      'bad_request',
      `data file ${file.path} has no Parquet field ids and none of its columns (${schema.columns.join(', ')}) is named by the table's name mapping (${NAME_MAPPING_PROPERTY}): column '${fields[0].name}' cannot be read`,
    );
  }
  const footerFields = schema.fields ?? schema.columns.map((name) => ({ name, fieldId: null, children: [] }));
  return fields
    .map((f) => {
      const ff = matchFooter(f, footerFields, false);
      return `${remapExpr(ff ? sqlIdent(ff.name) : 'NULL', f, ff, false)} AS ${sqlIdent(f.name)}`;
    })
    .join(', ');
}

/** The file field a table field reads: by field id, or (files without ids) by the names the
 *  table's name mapping gives it. */
function matchFooter(f: FieldMapping, candidates: readonly FooterField[], byId: boolean): FooterField | undefined {
  if (byId) return candidates.find((c) => c.fieldId === f.fieldId);
  for (const n of f.names ?? []) {
    const found = candidates.find((c) => c.name === n);
    if (found) return found;
  }
  return undefined;
}

/**
 * Whether struct field `f` read from file field `ff` needs more than DuckDB's own matching of
 * struct fields, which is by name: a nested field renamed since the file was written, one the
 * file lacks that has an initial-default, or a file field carrying a table field's name under
 * another id (by id, it is not that field).
 */
function needsRemap(f: FieldMapping, ff: FooterField, byId: boolean): boolean {
  if (!f.children) return false;
  for (const c of f.children) {
    const fc = matchFooter(c, ff.children, byId);
    if (!fc) {
      if (missingValue(c) !== null || ff.children.some((x) => x.name === c.name)) return true;
    } else if (fc.name !== c.name || needsRemap(c, fc, byId)) {
      return true;
    }
  }
  return false;
}

/** The DuckDB type to read file field `ff` as: the file's field names, the table's types. */
function fileType(f: FieldMapping, ff: FooterField, byId: boolean): string {
  if (!f.children) return f.type;
  const parts = f.children.flatMap((c) => {
    const fc = matchFooter(c, ff.children, byId);
    return fc ? [`${sqlIdent(fc.name)} ${fileType(c, fc, byId)}`] : [];
  });
  return parts.length > 0 ? `STRUCT(${parts.join(', ')})` : f.type;
}

/** Table field `f` from `ref`, the value of file field `ff` (absent: the file lacks it). */
function remapExpr(ref: string, f: FieldMapping, ff: FooterField | undefined, byId: boolean): string {
  if (!ff) {
    const value = missingValue(f);
    return `CAST(${value === null ? 'NULL' : sqlString(value)} AS ${f.type})`;
  }
  if (!f.children || !needsRemap(f, ff, byId)) return `CAST(${ref} AS ${f.type})`;
  const parts = f.children.map((c) => {
    const fc = matchFooter(c, ff.children, byId);
    return `${sqlIdent(c.name)} := ${remapExpr(fc ? `struct_extract(${ref}, ${sqlString(fc.name)})` : 'NULL', c, fc, byId)}`;
  });
  return `CAST(CASE WHEN ${ref} IS NULL THEN NULL ELSE struct_pack(${parts.join(', ')}) END AS ${f.type})`;
}

/** Nested types (struct, list, map, array, union): DuckDB matches their fields by name. */
const NESTED_TYPE = /STRUCT\s*\(|MAP\s*\(|UNION\s*\(|\[/i;

/**
 * The select list reading `fields` from a file by column name, when that reads exactly what
 * reading by field id would: every field the file holds by id carries the field's current
 * name there (a field it lacks is its partition value or default, whatever other columns
 * the file has), and the file's top-level names are distinct even ignoring case, as DuckDB
 * matches them. Undefined otherwise, and for nested columns (their inner fields are the
 * field-id path's business).
 */
function plainSelect(fields: readonly FieldMapping[], footer: readonly FooterField[]): string | undefined {
  const names = new Set<string>();
  for (const ff of footer) {
    const lower = ff.name.toLowerCase();
    if (names.has(lower)) return undefined;
    names.add(lower);
  }
  const parts: string[] = [];
  for (const f of fields) {
    if (f.children || NESTED_TYPE.test(f.type)) return undefined;
    const ff = footer.find((c) => c.fieldId === f.fieldId);
    if (ff) {
      if (ff.name !== f.name) return undefined;
      parts.push(`CAST(${sqlIdent(f.name)} AS ${f.type}) AS ${sqlIdent(f.name)}`);
    } else {
      const value = missingValue(f);
      parts.push(`CAST(${value === null ? 'NULL' : sqlString(value)} AS ${f.type}) AS ${sqlIdent(f.name)}`);
    }
  }
  return parts.join(', ');
}

/**
 * A condition that is true, or fails the query naming the first listed file whose footer has
 * no field ids: how a read whose caller did not look at the footers refuses such files
 * (read by id, all their columns would be NULL). An uncorrelated scalar subquery, so it runs
 * once, before any row.
 */
function fieldIdCheck(files: readonly { local: string; path: string }[], mapped: boolean, fields: readonly FieldMapping[]): string {
  const names = files.map((f) => `(${sqlString(f.local)}, ${sqlString(f.path)})`).join(', ');
  const list = fileList(files.map((f) => f.local));
  const why = mapped
    ? 'it must be read by the table name mapping, which needs its footer: this read path does not look at footers'
    : `the table has no name mapping (table property ${NAME_MAPPING_PROPERTY}), so its columns cannot be matched to the table's`;
  const noIds = `(SELECT coalesce(bool_and(error('data file ' || n.p || ' has no Parquet field ids; ' || ${sqlString(why)})), true) FROM (SELECT file_name FROM parquet_schema(${list}) GROUP BY file_name HAVING count(field_id) = 0) s JOIN (VALUES ${names}) n(l, p) ON n.l = s.file_name)`;
  // Struct fields are matched by name by DuckDB: one the file names differently (renamed
  // since) would read NULL. Such files need the footer-aware read (fileSchemas).
  const nested: string[] = [];
  const collect = (f: FieldMapping): void => {
    for (const c of f.children ?? []) {
      nested.push(`(${c.fieldId}, ${sqlString(c.name)})`);
      collect(c);
    }
  };
  fields.forEach(collect);
  if (nested.length === 0) return noIds;
  const renamed = `(SELECT coalesce(bool_and(error('data file ' || n.p || ' names nested field id ' || e.id || ' ' || s.name || ', which the table now names ' || e.name || ': reading it needs the file footer, which this read path does not look at')), true) FROM parquet_schema(${list}) s JOIN (VALUES ${nested.join(', ')}) e(id, name) ON s.field_id = e.id AND s.name <> e.name JOIN (VALUES ${names}) n(l, p) ON n.l = s.file_name)`;
  return `${noIds} AND ${renamed}`;
}

/** Positions as compact SQL: singletons and ranges, each list one string literal to split. */
function positionsSql(ranges: PositionRanges): string {
  const singles: string[] = [];
  const spans: string[] = [];
  for (const [s, e] of ranges) {
    if (e - s === 1n) singles.push(String(s));
    else spans.push(`${s}-${e}`);
  }
  const parts: string[] = [];
  if (singles.length) parts.push(`SELECT unnest(string_split(${sqlString(singles.join(','))}, ','))::BIGINT AS p`);
  if (spans.length) {
    parts.push(`SELECT unnest(range(split_part(x, '-', 1)::BIGINT, split_part(x, '-', 2)::BIGINT)) AS p FROM (SELECT unnest(string_split(${sqlString(spans.join(','))}, ',')) AS x)`);
  }
  if (parts.length === 0) parts.push('SELECT NULL::BIGINT AS p WHERE false');
  return parts.join(' UNION ALL ');
}

function fileList(paths: readonly string[]): string {
  return `[${paths.map(sqlString).join(', ')}]`;
}

type DeletionVector = IcebergDeleteFile & { contentOffset: number; contentSizeInBytes: number; referencedDataFile: string };

function isDeletionVector(file: IcebergDeleteFile): file is DeletionVector {
  return file.format === 'puffin' && file.contentOffset !== undefined && file.contentSizeInBytes !== undefined && file.referencedDataFile !== undefined;
}

function deleteKey(file: IcebergDeleteFile): string {
  return isDeletionVector(file) ? `${file.uri}#${file.contentOffset}` : file.uri;
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
  // Requested columns: table columns, or (not being one) a lineage value by its name.
  type Output = { field: FieldMapping } | { lineage: 'row_id' | 'last_updated'; name: string };
  const outputs: Output[] = (columns ?? scan.fields.map((f) => f.name)).map((name) => {
    const field = scan.fields.find((f) => f.name === name) ?? scan.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
    if (field) return { field };
    const lineage = lineageKind(name);
    if (lineage) return { lineage, name };
    throw new PuffinError('binder_error', `column '${name}' does not exist in the table (columns: ${scan.fields.map((f) => f.name).join(', ')})`);
  });
  if (options.lineage) outputs.push({ lineage: 'row_id', name: ROW_ID_COLUMN }, { lineage: 'last_updated', name: LAST_UPDATED_COLUMN });
  if (outputs.length === 0) throw new PuffinError('bad_request', 'an Iceberg read needs at least one column');
  const selected = outputs.flatMap((o) => ('field' in o ? [o.field] : []));
  const lineage = outputs.length > selected.length;
  const lineageSql = (kind: 'row_id' | 'last_updated'): string =>
    kind === 'row_id' ? `coalesce(d.${FILE_ROW_ID}, m.${FIRST_ROW_ID} + ${positions ? `d.${POS}` : 'NULL'})` : `coalesce(d.${FILE_LAST_UPDATED}, m.${DATA_SEQUENCE})`;

  if (scan.dataFiles.length === 0) {
    return `SELECT ${outputs.map((o) => ('field' in o ? `CAST(NULL AS ${o.field.type}) AS ${sqlIdent(o.field.name)}` : `CAST(NULL AS BIGINT) AS ${sqlIdent(o.name)}`)).join(', ')} LIMIT 0`;
  }
  for (const d of scan.dataFiles) {
    requireParquet('data file', d);
    for (const del of d.deletes) if (!isDeletionVector(del)) requireParquet('delete file', del);
  }

  // Every delete file gets an id (every deletion vector: one Puffin file holds many); each
  // data file lists the ids that apply to it.
  const deleteIds = new Map<string, { id: number; file: IcebergDeleteFile }>();
  for (const d of scan.dataFiles) {
    for (const del of d.deletes) if (!deleteIds.has(deleteKey(del))) deleteIds.set(deleteKey(del), { id: deleteIds.size, file: del });
  }
  const hasDeletes = deleteIds.size > 0;

  // Equality columns must be read from the data files even when not selected (or dropped).
  const equalityFields = new Map<number, FieldMapping>();
  for (const { file } of deleteIds.values()) for (const f of file.equalityFields ?? []) equalityFields.set(f.fieldId, f);
  const hidden: FieldMapping[] = [...equalityFields.values()]
    .filter((f) => !selected.some((s) => s.fieldId === f.fieldId))
    .map((f) => ({ ...f, name: `__puffin_eq_${f.fieldId}` }));
  // Lineage alone still reads a column: the scans' select lists are never empty.
  if (selected.length === 0 && hidden.length === 0) hidden.push({ ...scan.fields[0], name: '__puffin_any' });
  const dataColumnOf = (fieldId: number): string => {
    const s = selected.find((f) => f.fieldId === fieldId);
    return sqlIdent(s ? s.name : `__puffin_eq_${fieldId}`);
  };

  // Data files sharing one mapping (the same identity-partition defaults) share one scan;
  // files without field ids, one scan per select list by name.
  const mapped = scan.fields.some((f) => f.names !== undefined);
  const groups = new Map<string, { fields: FieldMapping[]; select: string; files: ReadDataFile[]; byName?: string; plain?: boolean; checked: boolean }>();
  for (const d of scan.dataFiles) {
    const wanted = [...selected, ...hidden].map((f) => {
      const own = d.readSchema.find((m) => m.fieldId === f.fieldId);
      return { ...f, defaultValue: own?.defaultValue ?? null };
    });
    const footer = options.fileSchemas?.(d.uri);
    // Fields with negative ids (Delta tables without column mapping) match by name only.
    const nameOnly = scan.fields.every((f) => f.fieldId < 0);
    if (nameOnly && !footer) throw new PuffinError('internal', `data file ${d.path} must be read by column name, which needs its footer: this read path does not look at footers`);
    const byNameFields = footer && (!footer.hasFieldIds || nameOnly) ? byNameList(wanted, scan.fields, d, footer) : undefined;
    // Files without field ids store no lineage (the reserved columns are known by id only).
    const byName = byNameFields !== undefined && lineage ? `${byNameFields}, CAST(NULL AS BIGINT) AS ${FILE_ROW_ID}, CAST(NULL AS BIGINT) AS ${FILE_LAST_UPDATED}` : byNameFields;
    // A file whose field ids carry the table's current names is read by name, without the
    // field-id layer: DuckDB then keeps its cardinality estimates and pushes projections and
    // filters straight into the Parquet scan.
    const plainFields = byName === undefined && footer?.hasFieldIds && footer.fields && !nameOnly ? plainSelect(wanted, footer.fields) : undefined;
    const plain = plainFields !== undefined && lineage ? `${plainFields}, ${plainLineageSelect(footer?.fields ?? [])}` : plainFields;
    if (plain !== undefined) {
      const key = `plain:${plain}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { fields: wanted, select: plain, files: [], plain: true, checked: false }));
      g.files.push(d);
      continue;
    }
    // Struct columns whose nested fields the file names differently are read with the file's
    // names and rebuilt by field id.
    let read = wanted;
    let select = wanted.map((f) => sqlIdent(f.name)).join(', ');
    if (footer?.hasFieldIds && footer.fields) {
      const fileFields = footer.fields;
      const remapped = wanted.map((f) => {
        const ff = matchFooter(f, fileFields, true);
        return ff && needsRemap(f, ff, true) ? { read: { ...f, type: fileType(f, ff, true) }, select: `${remapExpr(sqlIdent(f.name), f, ff, true)} AS ${sqlIdent(f.name)}` } : undefined;
      });
      if (remapped.some((r) => r !== undefined)) {
        read = wanted.map((f, i) => remapped[i]?.read ?? f);
        select = wanted.map((f, i) => remapped[i]?.select ?? sqlIdent(f.name)).join(', ');
      }
    }
    // The reserved lineage columns are read by their field ids like any other.
    if (lineage) {
      read = [...read, ...LINEAGE_FILE_FIELDS];
      select = `${select}, ${FILE_ROW_ID}, ${FILE_LAST_UPDATED}`;
    }
    const key = byName !== undefined ? `name:${byName}` : `${footer ? 'id' : 'check'}:${schemaMap(read)}:${select}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { fields: read, select, files: [], byName, checked: footer === undefined }));
    g.files.push(d);
  }
  // DuckDB cannot give row positions of a file holding a column named file_row_number: then
  // lineage reads only the ids files store (rows without one get fresh ids when rewritten);
  // deletes and rowPositions still need the positions (and fail naming the column).
  const positionsBlocked = scan.fields.some((f) => f.name.toLowerCase() === 'file_row_number');
  const positions = hasDeletes || options.rowPositions || (lineage && !positionsBlocked);
  const fileNames = hasDeletes || options.rowPositions || lineage;
  const outputList = outputs
    .map((o) => ('field' in o ? `${pushdownSafe(`d.${sqlIdent(o.field.name)}`, o.field.type)} AS ${sqlIdent(o.field.name)}` : `${lineageSql(o.lineage)} AS ${sqlIdent(o.name)}`))
    .join(', ') + (options.rowPositions ? `, d.${POS}` : '');
  const dataScans = [...groups.values()].map((g) => {
    const paths = g.files.map((d) => localPath(d.uri));
    // The file name under a name of ours: a table column named `filename` does not collide.
    const extra = `${fileNames ? `, ${FILE}` : ''}${positions ? `, file_row_number AS ${POS}` : ''}`;
    const flags = `${fileNames ? `, filename = ${sqlString(FILE)}` : ''}${positions ? ', file_row_number = true' : ''}`;
    if (g.byName !== undefined) return `SELECT ${g.byName}${extra} FROM read_parquet(${fileList(paths)}, ${NO_HIVE}${flags})`;
    // union_by_name: the files of a group agree on names and ids but may store a promoted
    // column in its older type (int before long); DuckDB then reads each by name and unifies.
    if (g.plain) return `SELECT ${g.select}${extra} FROM read_parquet(${fileList(paths)}, union_by_name = true, ${NO_HIVE}${flags})`;
    const check = g.checked ? ` WHERE ${fieldIdCheck(g.files.map((d, i) => ({ local: paths[i], path: d.path })), mapped, g.fields)}` : '';
    return `SELECT ${g.select}${extra} FROM read_parquet(${fileList(paths)}, schema = ${schemaMap(g.fields)}, ${NO_HIVE}${flags})${check}`;
  });
  const data = dataScans.join('\nUNION ALL\n');
  if (!hasDeletes && !lineage) return `SELECT ${outputList} FROM (\n${data}\n) d`;

  const ctes: string[] = [`__puffin_data AS (\n${data}\n)`];
  const bigint = (n: number | undefined): string => `CAST(${n === undefined ? 'NULL' : String(n)} AS BIGINT)`;
  const files = scan.dataFiles.map((d) => {
    const ids = d.deletes.map((del) => deleteIds.get(deleteKey(del))?.id as number);
    const lineageValues = lineage ? `, ${bigint(d.firstRowId)}, ${bigint(d.sequenceNumber)}` : '';
    return `(${sqlString(localPath(d.uri))}, ${sqlString(d.path)}, [${ids.join(', ')}]::INTEGER[]${lineageValues})`;
  });
  ctes.push(`__puffin_files(${FILE}, ${PATH}, ${DELS}${lineage ? `, ${FIRST_ROW_ID}, ${DATA_SEQUENCE}` : ''}) AS (VALUES ${files.join(', ')})`);

  const conditions: string[] = [];
  const positional = [...deleteIds.values()].filter((x) => x.file.content === 'position');
  if (positional.length > 0) {
    const posMap = schemaMap([
      { fieldId: POSITION_DELETE_FILE_PATH_ID, name: PATH, type: 'VARCHAR', defaultValue: null },
      { fieldId: POSITION_DELETE_POS_ID, name: POS, type: 'BIGINT', defaultValue: null },
    ]);
    const reads = positional.map((x) => {
      if (!isDeletionVector(x.file)) return `SELECT ${PATH}, ${POS}, ${x.id} AS ${DEL} FROM read_parquet(${sqlString(localPath(x.file.uri))}, schema = ${posMap}, ${NO_HIVE})`;
      const dv = x.file;
      const where = `deletion vector of ${dv.referencedDataFile} in ${dv.path}`;
      // A Delta inline deletion vector rides in the fragment as a blob of the same framing.
      const ranges = dv.inlineBlob !== undefined ? decodeDeletionVector(Buffer.from(dv.inlineBlob, 'base64'), where) : readDeletionVector(localPath(dv.uri), dv.contentOffset, dv.contentSizeInBytes, where);
      const n = cardinality(ranges);
      if (n !== BigInt(dv.rowCount)) throw new PuffinError('bad_request', `${where}: the vector holds ${n} positions, but the manifest records ${dv.rowCount}`);
      return `SELECT ${sqlString(dv.referencedDataFile)} AS ${PATH}, p AS ${POS}, ${x.id} AS ${DEL} FROM (${positionsSql(ranges)})`;
    });
    ctes.push(`__puffin_position_deletes AS (\n${reads.join('\nUNION ALL\n')}\n)`);
    // The (local file, position) pairs deleted: each delete joined to the data files it
    // applies to first, so the row test is an equality anti-join (a hash join in DuckDB; a
    // correlated list_contains per row was ~1 s for 50,000 rows with 500 deletes).
    ctes.push(
      `__puffin_position_applied AS (SELECT DISTINCT f.${FILE}, p.${POS} FROM __puffin_position_deletes p JOIN (SELECT ${FILE}, ${PATH}, unnest(${DELS}) AS ${DEL} FROM __puffin_files) f ON p.${PATH} = f.${PATH} AND p.${DEL} = f.${DEL})`,
    );
    conditions.push(`NOT EXISTS (SELECT 1 FROM __puffin_position_applied a WHERE a.${FILE} = d.${FILE} AND a.${POS} = d.${POS})`);
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
    ...(conditions.length ? [`WHERE ${conditions.join('\n  AND ')}`] : []),
  ].join('\n');
}
