// File-set tables in the text formats DuckDB reads built in: CSV, TSV, JSON (an array or
// concatenated objects) and NDJSON. `puffindb table add t 'data/*.csv' [--format csv]
// [--options '{"delim": ";"}']` sniffs the files once, at registration (DuckDB's CSV sniffer
// for the dialect and the columns, read_json's schema detection), and keeps the result: every
// fragment then reads its files with those exact columns and that dialect
// (`auto_detect = false, columns = {...}`), so all fragments present one schema. Hive
// partition directories (`region=eu/`) become columns whose values are recorded per file at
// registration (workers read local copies, whose paths no longer show them), typed the way
// DuckDB's hive_types_autocast types them (BIGINT, DATE, else VARCHAR), and used as min = max
// statistics for pruning.
//
// Reader options come from the user: each is checked against an allow-list by name and by
// value (no option names a file, a table or SQL; every value is a bounded literal), both when
// a table is added and again when a worker builds its view, and rendered as SQL literals.

import { PuffinError } from '../errors.ts';
import { sqlIdent, sqlString, sqlStringList } from '../sql/quote.ts';
import type { Engine } from '../engine/engine.ts';
import type { Column } from './types.ts';

export type FileFormat = 'parquet' | 'csv' | 'tsv' | 'json' | 'ndjson';
export const FILE_FORMATS: readonly FileFormat[] = ['parquet', 'csv', 'tsv', 'json', 'ndjson'];
export type TextFormat = Exclude<FileFormat, 'parquet'>;

/** What a reader option may hold once validated. */
export type OptionValue = string | number | boolean | string[] | Record<string, string>;
export type ReaderOptions = Record<string, OptionValue>;

/** How the files of a text-format table are read; carried by its snapshot into fragments. */
export interface FileSetRead {
  format: TextFormat;
  /** Validated read-time options (`readOptionNames`), the sniffed dialect included. */
  options: ReaderOptions;
  /** The files' own columns, in file order, as sniffed at registration. */
  fileColumns: Column[];
  /** Hive partition columns after them; each file records its values (DataFile.partitionValues). */
  partitionColumns: Column[];
}

/** File name endings of each format (a directory stands for its files with these). */
export const EXTENSIONS: Record<FileFormat, readonly string[]> = {
  parquet: ['.parquet'],
  csv: ['.csv', '.csv.gz', '.csv.zst'],
  tsv: ['.tsv', '.tsv.gz', '.tsv.zst', '.tab'],
  json: ['.json', '.json.gz', '.json.zst'],
  ndjson: ['.ndjson', '.jsonl', '.ndjson.gz', '.jsonl.gz', '.ndjson.zst', '.jsonl.zst'],
};

/** The format a file name's ending names, if any. */
export function formatOfPath(path: string): FileFormat | undefined {
  const name = path.toLowerCase();
  for (const f of FILE_FORMATS) if (EXTENSIONS[f].some((e) => name.endsWith(e))) return f;
  return undefined;
}

export function parseFileFormat(value: unknown): FileFormat {
  if (typeof value !== 'string' || !FILE_FORMATS.includes(value as FileFormat)) {
    throw new PuffinError('bad_request', `--format must be one of ${FILE_FORMATS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as FileFormat;
}

// ---- options -------------------------------------------------------------------------------

type Check = (v: unknown) => OptionValue | undefined;

const MAX_TEXT = 64;
const noNul = (s: string) => !s.includes('\u0000');
const text = (min: number, max: number): Check => (v) => (typeof v === 'string' && [...v].length >= min && [...v].length <= max && noNul(v) ? v : undefined);
const bool: Check = (v) => (typeof v === 'boolean' ? v : undefined);
const int = (min: number, max: number): Check => (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : undefined);
const num = (min: number, max: number): Check => (v) => (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : undefined);
const oneOf = (...values: string[]): Check => (v) => (typeof v === 'string' && values.includes(v) ? v : undefined);
const textOrList: Check = (v) => {
  if (typeof v === 'string') return text(0, MAX_TEXT)(v);
  if (Array.isArray(v) && v.length >= 1 && v.length <= 16 && v.every((s) => text(0, MAX_TEXT)(s) !== undefined)) return [...v] as string[];
  return undefined;
};
const NEW_LINES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\r\n': '\\r\\n', '\\n': '\\n', '\\r': '\\r', '\\r\\n': '\\r\\n' };
const newLine: Check = (v) => (typeof v === 'string' ? NEW_LINES[v] : undefined);
/** `types`: column name -> DuckDB type name, both bounded text (DuckDB checks the types when sniffing). */
const typeMap: Check = (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0 || entries.length > 256) return undefined;
  const out: Record<string, string> = {};
  for (const [k, t] of entries) {
    if (text(1, 255)(k) === undefined || typeof t !== 'string' || !/^[A-Za-z][A-Za-z0-9_ (),]{0,63}$/.test(t)) return undefined;
    out[k] = t;
  }
  return out;
};

interface OptionSpec {
  check: Check;
  /** What the value must be, for the error message. */
  expect: string;
  /** Only used when sniffing at registration (not passed to reads). */
  sniffOnly?: boolean;
  /** Interpreted here, never passed to DuckDB. */
  own?: boolean;
}

const COMMON: Record<string, OptionSpec> = {
  hive_partitioning: { check: bool, expect: 'true or false', own: true },
  hive_types_autocast: { check: bool, expect: 'true or false', own: true },
  compression: { check: oneOf('auto', 'none', 'gzip', 'zstd'), expect: "'auto', 'none', 'gzip' or 'zstd'" },
  dateformat: { check: text(1, MAX_TEXT), expect: 'a strftime format' },
  timestampformat: { check: text(1, MAX_TEXT), expect: 'a strftime format' },
  ignore_errors: { check: bool, expect: 'true or false' },
};

const CSV_OPTIONS: Record<string, OptionSpec> = {
  ...COMMON,
  delim: { check: text(1, 4), expect: 'one to four characters' },
  quote: { check: text(0, 1), expect: 'one character or empty' },
  escape: { check: text(0, 1), expect: 'one character or empty' },
  comment: { check: text(0, 1), expect: 'one character or empty' },
  header: { check: bool, expect: 'true or false' },
  skip: { check: int(0, 1_000_000), expect: 'a non-negative integer' },
  new_line: { check: newLine, expect: "'\\n', '\\r' or '\\r\\n'" },
  nullstr: { check: textOrList, expect: 'a string or a list of strings' },
  decimal_separator: { check: oneOf('.', ','), expect: "'.' or ','" },
  thousands: { check: text(0, 1), expect: 'one character or empty' },
  null_padding: { check: bool, expect: 'true or false' },
  strict_mode: { check: bool, expect: 'true or false' },
  allow_quoted_nulls: { check: bool, expect: 'true or false' },
  encoding: { check: oneOf('utf-8', 'utf-16', 'latin-1'), expect: "'utf-8', 'utf-16' or 'latin-1'" },
  max_line_size: { check: int(1, 1 << 30), expect: 'a positive integer' },
  sample_size: { check: (v) => (v === -1 ? -1 : int(1, 1 << 30)(v)), expect: '-1 or a positive integer', sniffOnly: true },
  all_varchar: { check: bool, expect: 'true or false', sniffOnly: true },
  types: { check: typeMap, expect: 'an object of column name to DuckDB type name', sniffOnly: true },
};

const JSON_OPTIONS: Record<string, OptionSpec> = {
  ...COMMON,
  format: { check: oneOf('auto', 'array', 'newline_delimited', 'unstructured'), expect: "'auto', 'array', 'newline_delimited' or 'unstructured'" },
  maximum_object_size: { check: int(1, 1 << 30), expect: 'a positive integer' },
  sample_size: { check: (v) => (v === -1 ? -1 : int(1, 1 << 30)(v)), expect: '-1 or a positive integer', sniffOnly: true },
  maximum_depth: { check: (v) => (v === -1 ? -1 : int(1, 1024)(v)), expect: '-1 or a positive integer', sniffOnly: true },
  field_appearance_threshold: { check: num(0, 1), expect: 'a number from 0 to 1', sniffOnly: true },
  map_inference_threshold: { check: (v) => (v === -1 ? -1 : int(0, 1 << 30)(v)), expect: '-1 or a non-negative integer', sniffOnly: true },
  convert_strings_to_integers: { check: bool, expect: 'true or false', sniffOnly: true },
};

function specsOf(format: TextFormat): Record<string, OptionSpec> {
  return format === 'csv' || format === 'tsv' ? CSV_OPTIONS : JSON_OPTIONS;
}

/** The DuckDB reader of a format. */
function readerOf(format: TextFormat): 'read_csv' | 'read_json' {
  return format === 'csv' || format === 'tsv' ? 'read_csv' : 'read_json';
}

/**
 * Checks user-given reader options (the parsed `--options` JSON) for `format`: every name
 * must be on the format's allow-list and every value of the expected kind; anything else is a
 * bad_request naming the option. `readOnly` takes only the options reads use (what a stored
 * registration or a fragment may carry).
 */
export function validateReaderOptions(format: TextFormat, raw: unknown, readOnly = false): ReaderOptions {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PuffinError('bad_request', `--options must be a JSON object of ${format} reader options, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  const specs = specsOf(format);
  const out: ReaderOptions = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    const allowed = Object.keys(specs).filter((n) => !readOnly || !(specs[n].sniffOnly || specs[n].own));
    if (!spec || (readOnly && (spec.sniffOnly || spec.own))) {
      throw new PuffinError('bad_request', `unknown ${format} reader option '${name.slice(0, 64)}'; the options allowed are ${allowed.join(', ')}`);
    }
    const checked = spec.check(value);
    if (checked === undefined) throw new PuffinError('bad_request', `${format} reader option '${name}' must be ${spec.expect}, got ${JSON.stringify(value)?.slice(0, 80)}`);
    out[name] = checked;
  }
  if (format === 'tsv' && out.delim !== undefined && out.delim !== '\t') throw new PuffinError('bad_request', "a TSV table's delimiter is a tab; use --format csv with the 'delim' option for another one");
  if (format === 'ndjson' && out.format !== undefined && out.format !== 'newline_delimited') throw new PuffinError('bad_request', "an NDJSON table's JSON format is 'newline_delimited'; use --format json for another one");
  return out;
}

function literal(v: OptionValue): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return sqlString(v);
  if (Array.isArray(v)) return sqlStringList(v);
  return `{${Object.entries(v).map(([k, t]) => `${sqlString(k)}: ${sqlString(t)}`).join(', ')}}`;
}

/** `, name = literal` for each option DuckDB should get (own ones left out). */
function optionList(format: TextFormat, options: ReaderOptions): string {
  const specs = specsOf(format);
  return Object.entries(options)
    .filter(([name]) => !specs[name]?.own)
    .map(([name, v]) => `, ${name} = ${literal(v)}`)
    .join('');
}

/** The options a format always reads with. */
function fixedOptions(format: TextFormat): ReaderOptions {
  if (format === 'tsv') return { delim: '\t' };
  if (format === 'ndjson') return { format: 'newline_delimited' };
  return {};
}

function columnsLiteral(columns: readonly Column[]): string {
  return `{${columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(', ')}}`;
}

/**
 * The table-function call reading `paths` as the registration says: the recorded columns,
 * no detection, the options re-checked against the allow-list, never hive partitioning
 * (partition values are constants the view adds).
 */
export function readerCallSql(read: FileSetRead, paths: readonly string[]): string {
  const options = validateReaderOptions(read.format, read.options, true);
  const detect = readerOf(read.format) === 'read_csv' ? ', auto_detect = false' : '';
  return `${readerOf(read.format)}(${sqlStringList(paths)}${detect}, columns = ${columnsLiteral(read.fileColumns)}, hive_partitioning = false${optionList(read.format, { ...options, ...fixedOptions(read.format) })})`;
}

// ---- registration --------------------------------------------------------------------------

/** Hive's and DuckDB's spellings of a NULL partition value. */
const NULL_VALUES = new Set(['__HIVE_DEFAULT_PARTITION__', 'NULL']);

/** The `key=value` directory parts of a path, values percent-decoded as DuckDB decodes them. */
export function hiveParts(path: string): { key: string; value: string | null }[] {
  const dirs = path.split(/[\\/]/).slice(0, -1);
  const out: { key: string; value: string | null }[] = [];
  for (const d of dirs) {
    const eq = d.indexOf('=');
    if (eq <= 0) continue;
    let value = d.slice(eq + 1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // left as written
    }
    out.push({ key: d.slice(0, eq), value: NULL_VALUES.has(value) ? null : value });
  }
  return out;
}

const INT64 = [-(2n ** 63n), 2n ** 63n - 1n];

/** A partition column's type from its values, as DuckDB's hive_types_autocast picks it. */
export function partitionType(values: readonly (string | null)[], autocast: boolean): string {
  const present = values.filter((v): v is string => v !== null);
  if (!autocast || present.length === 0) return 'VARCHAR';
  if (present.every((v) => /^-?\d{1,19}$/.test(v) && BigInt(v) >= INT64[0] && BigInt(v) <= INT64[1])) return 'BIGINT';
  if (present.every((v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v))) return 'DATE';
  return 'VARCHAR';
}

export interface SniffedFileSet {
  read: FileSetRead;
  /** Per file (in the order given): its partition values, aligned with read.partitionColumns. */
  partitionValues: (string | null)[][];
}

const EMPTY = '(empty)';

/**
 * Sniffs the files (local absolute paths) of a text-format table: DuckDB's CSV sniffer on the
 * first file for the dialect and the columns, read_json's detection over the files for JSON;
 * hive partition directories as typed columns after the files' own.
 */
export async function sniffFileSet(engine: Engine, format: TextFormat, userOptions: ReaderOptions, paths: readonly string[]): Promise<SniffedFileSet> {
  if (paths.length === 0) throw new PuffinError('bad_request', `no ${format} files to sniff`);
  const specs = specsOf(format);
  const passed = { ...userOptions, ...fixedOptions(format) };
  let fileColumns: Column[];
  let stored: ReaderOptions = Object.fromEntries(Object.entries(passed).filter(([n]) => !specs[n]?.sniffOnly && !specs[n]?.own));
  const fail = (err: unknown): never => {
    throw new PuffinError('bad_request', `cannot read the ${format} files (the first is '${paths[0]}'): ${(err as Error).message.split('\n')[0]}`);
  };
  if (readerOf(format) === 'read_csv') {
    const r = await engine.query(`SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, DateFormat, TimestampFormat, to_json(Columns)::VARCHAR FROM sniff_csv(${sqlString(paths[0])}, hive_partitioning = false${optionList(format, passed)})`).catch(fail);
    const [delim, quote, escape, newLine, comment, skip, header, dateFormat, timestampFormat, columnsJson] = r.rows[0] as (string | number | boolean | null)[];
    const dialect: ReaderOptions = {
      delim: String(delim),
      quote: quote === EMPTY ? '' : String(quote),
      escape: escape === EMPTY ? '' : String(escape),
      new_line: NEW_LINES[String(newLine)] ?? '\\n',
      comment: comment === EMPTY ? '' : String(comment),
      skip: Number(skip),
      header: header === true,
      ...(typeof dateFormat === 'string' && dateFormat !== '' ? { dateformat: dateFormat } : {}),
      ...(typeof timestampFormat === 'string' && timestampFormat !== '' ? { timestampformat: timestampFormat } : {}),
    };
    stored = { ...dialect, ...stored };
    fileColumns = (JSON.parse(String(columnsJson)) as { name: string; type: string }[]).map((c) => ({ name: c.name, type: c.type }));
  } else {
    const r = await engine.query(`DESCRIBE SELECT * FROM read_json(${sqlStringList(paths)}, hive_partitioning = false${optionList(format, passed)})`).catch(fail);
    fileColumns = r.rows.map((row) => ({ name: String(row[0]), type: String(row[1]) }));
  }
  if (fileColumns.length === 0) throw new PuffinError('bad_request', `the ${format} files have no columns (the first is '${paths[0]}')`);
  const read: FileSetRead = { format, options: validateReaderOptions(format, stored, true), fileColumns, partitionColumns: [] };
  // The stored options must read the first file as sniffed: a check before anything is kept.
  await engine.query(`SELECT count(*) FROM (SELECT * FROM ${readerCallSql(read, [paths[0]])} LIMIT 1)`).catch(fail);

  const parts = paths.map(hiveParts);
  const keys = parts[0].map((p) => p.key);
  const consistent = keys.length > 0 && parts.every((p) => p.length === keys.length && p.every((x, i) => x.key === keys[i]));
  const wanted = userOptions.hive_partitioning;
  if (wanted === true && !consistent) {
    throw new PuffinError('bad_request', keys.length === 0 ? `hive_partitioning is set but '${paths[0]}' is in no key=value directory` : 'hive_partitioning is set but the files are not in the same key=value directories');
  }
  if (wanted === false || !consistent) return { read, partitionValues: paths.map(() => []) };
  const lower = new Set(fileColumns.map((c) => c.name.toLowerCase()));
  const seen = new Set<string>();
  for (const k of keys) {
    if (lower.has(k.toLowerCase())) throw new PuffinError('bad_request', `hive partition key '${k}' is also a column of the files; set "hive_partitioning": false to read the files' column`);
    if (seen.has(k.toLowerCase())) throw new PuffinError('bad_request', `hive partition key '${k}' appears twice in the files' directories`);
    seen.add(k.toLowerCase());
  }
  const autocast = userOptions.hive_types_autocast !== false;
  read.partitionColumns = keys.map((k, i) => ({ name: k, type: partitionType(parts.map((p) => p[i].value), autocast) }));
  return { read, partitionValues: parts.map((p) => p.map((x) => x.value)) };
}

// ---- reading -------------------------------------------------------------------------------

/**
 * The SELECT over local copies of a text-format table's files: the recorded columns read by
 * `readerCallSql`, each file group's partition values added as typed constants. `files`
 * pairs each local path with its partition values.
 */
export function fileSetSelectSql(read: FileSetRead, files: readonly { path: string; partitionValues?: readonly (string | null)[] }[]): string {
  const groups = new Map<string, { values: readonly (string | null)[]; paths: string[] }>();
  for (const f of files) {
    const values = f.partitionValues ?? [];
    if (values.length !== read.partitionColumns.length) throw new PuffinError('bad_request', `file ${f.path} has ${values.length} partition value(s) for ${read.partitionColumns.length} partition column(s)`);
    const key = JSON.stringify(values);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { values, paths: [] }));
    g.paths.push(f.path);
  }
  return [...groups.values()]
    .map((g) => {
      const constants = read.partitionColumns.map((c, i) => `, CAST(${g.values[i] === null ? 'NULL' : sqlString(g.values[i] as string)} AS ${c.type}) AS ${sqlIdent(c.name)}`).join('');
      return `SELECT *${constants} FROM ${readerCallSql(read, g.paths)}`;
    })
    .join('\nUNION ALL BY NAME\n');
}
