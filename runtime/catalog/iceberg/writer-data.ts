// Writing Iceberg data files from a DuckDB query: rows are cast to the table's column types,
// partition values computed per the table's partition spec, and DuckDB writes Parquet with
// Iceberg field ids and returns each file's statistics (`COPY ... (FIELD_IDS ...,
// RETURN_STATS true)`, verified on DuckDB 1.5.6: one row per file with count, size, and per
// column min/max/null_count/num_values/column_size_bytes as text, `has_nan` for floats).
// The min/max text becomes the spec's single-value binary bounds (Appendix D), widened where
// the text does not pin one value down, so a bound is never tighter than the data.
//
// Partitioning: the transforms are computed in SQL (identity, truncate, year, month, day,
// hour; bucket through a value -> bucket table computed with the spec's Murmur3 hash), each
// distinct partition tuple gets a number, and DuckDB's PARTITION_BY splits the files by it.
// The numbered directories are staging only: the tuple values come from DuckDB as exact
// canonical text (`canonicalSql`: integers, day and microsecond counts, unscaled decimals,
// hex), never through floating point or the session time zone, and not from Hive paths, so
// NULL and 'NULL' never mix.

import { randomUUID } from 'node:crypto';
import { readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError, toPuffinError } from '../../errors.ts';
import { sqlIdent, sqlString } from '../../sql/quote.ts';
import { encodeBound } from './bounds.ts';
import { parseBlob, parseLiteral } from './literals.ts';
import type { PartitionSpec, TableMetadata } from './metadata.ts';
import { exposedSchema } from './column-names.ts';
import { bucketValue } from './transforms.ts';
import { writeCastSql } from './array-sizes.ts';
import { isPrimitive, type IcebergSchema, type IcebergType, type NestedField, type PrimitiveType } from './types.ts';
import type { IcebergValue } from './values.ts';
import type { TableIO } from './writer-io.ts';
import type { DataFileInfo } from './writer-manifest.ts';
import { buildIcebergReadSql, ROW_POSITION_COLUMN, type ReadSqlOptions } from './read.ts';
import type { IcebergDataFile, IcebergScan } from './scan.ts';
import { encodePuffinDeletionVectors, type PositionRanges } from './puffin.ts';
import { partitionTypes } from './writer-schema.ts';
import { endsInLineage, keepsLineage, LAST_UPDATED_FIELD_ID, LAST_UPDATED_NAME, ROW_ID_FIELD_ID, ROW_ID_NAME } from './lineage.ts';

export interface WriteDataOptions {
  conn: DuckDBConnection;
  /** Table name, for messages. */
  table: string;
  metadata: TableMetadata;
  /**
   * A SELECT whose columns are the table's columns, in table order (names are ignored), and,
   * with `lineage`, then the rows' v3 lineage.
   */
  selectSql: string;
  /**
   * The rows end in two more columns, `__puffin_row_id` and `__puffin_last_updated_seq`
   * (lineage.ts): their v3 lineage, written into a v3 table's files as the reserved `_row_id`
   * / `_last_updated_sequence_number` columns (a null where a row has none); a v2 table's
   * files never get them. Only for rows PuffinDB read from the table itself (rewrites), never
   * for a user's SELECT: ids must stay unique.
   */
  lineage?: boolean;
  /** A local directory DuckDB may write to; files are staged here, then uploaded. */
  stagingDir: string;
  io: TableIO;
}

export interface WrittenData {
  files: DataFileInfo[];
  rows: number;
}

async function run(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } catch (err) {
    throw toPuffinError(err);
  }
}

/** Iceberg value of DuckDB's text for a value; `side` picks the end of a widened range. */
export function valueFromText(type: PrimitiveType, text: string, side: 'lo' | 'hi' | 'exact' = 'exact'): IcebergValue | undefined {
  switch (type.kind) {
    case 'float': {
      const v = Number(text);
      return Number.isNaN(v) ? undefined : Math.fround(v);
    }
    case 'double': {
      const v = Number(text);
      return Number.isNaN(v) ? undefined : v;
    }
    case 'binary':
    case 'fixed':
      return /^[0-9A-F]*$/i.test(text) && text.length % 2 === 0 && side !== 'exact' ? Uint8Array.from(Buffer.from(text, 'hex')) : parseBlob(text);
    default: {
      const r = parseLiteral(type, text);
      if (!r) return undefined;
      if (side === 'hi') return r.hi;
      if (side === 'lo') return r.lo;
      return r.lo === r.hi || (typeof r.lo === 'bigint' && r.lo === r.hi) ? r.lo : r.lo;
    }
  }
}

const MICROS_DAY = 86_400_000_000n;
const MICROS_HOUR = 3_600_000_000n;

function floorDivSql(expr: string, d: bigint): string {
  return `((${expr}) // ${d} - CASE WHEN (${expr}) % ${d} < 0 THEN 1 ELSE 0 END)`;
}

/** UTC timestamp (no zone) or date of a date/timestamp column, for year/month. */
function civilSql(col: string, type: PrimitiveType): string {
  if (type.kind === 'date') return col;
  if (type.kind === 'timestamptz') return `make_timestamp(epoch_us(${col}))`;
  return col;
}

function epochMicrosSql(col: string, type: PrimitiveType): string {
  return type.kind === 'date' ? `(epoch_us(${col}::TIMESTAMP))` : `epoch_us(${col})`;
}

/** Two's-complement wrap of an exact integer (SQL, in `via` arithmetic) to `bits` bits, as Java's int/long arithmetic does. */
function wrapSql(expr: string, bits: 32 | 64): string {
  const via = bits === 32 ? 'BIGINT' : 'HUGEINT';
  const half = 2n ** BigInt(bits - 1);
  const full = 2n ** BigInt(bits);
  return `((((${expr})::${via} + ${half}::${via}) % ${full}::${via} + ${full}::${via}) % ${full}::${via} - ${half}::${via})`;
}

/**
 * An exact, canonical VARCHAR form of a value of Iceberg type `type` (SQL), which
 * `valueFromCanonical` turns into the Iceberg value: integers and day/microsecond counts as
 * decimal text, decimals as their unscaled integer, binary as hex. Never the session time
 * zone, never floating point for an exact type. NULL stays NULL.
 */
export function canonicalSql(expr: string, type: PrimitiveType): string {
  switch (type.kind) {
    case 'date': return `((${expr}) - DATE '1970-01-01')::VARCHAR`;
    case 'time':
    case 'timestamp':
    case 'timestamptz': return `epoch_us(${expr})::VARCHAR`;
    case 'timestamp_ns':
    case 'timestamptz_ns': return `epoch_ns(${expr})::VARCHAR`;
    // DuckDB prints a DECIMAL(P,S) with exactly S fraction digits: dropping the point gives
    // the unscaled integer ('-0.05' -> '-005').
    case 'decimal': return type.scale === 0 ? `(${expr})::VARCHAR` : `replace((${expr})::VARCHAR, '.', '')`;
    case 'binary':
    case 'fixed': return `hex(${expr})`;
    case 'string': return `(${expr})`;
    default: return `(${expr})::VARCHAR`;
  }
}

/** The Iceberg value of `canonicalSql`'s text. */
export function valueFromCanonical(type: PrimitiveType, text: string): IcebergValue {
  switch (type.kind) {
    case 'boolean': return text === 'true';
    case 'int':
    case 'date': {
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw new PuffinError('internal', `'${text}' is not a ${type.kind} value`);
      return n;
    }
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns':
    case 'decimal': return BigInt(text);
    case 'float':
    case 'double': {
      const v = text === 'inf' ? Infinity : text === '-inf' ? -Infinity : text === 'nan' ? NaN : Number(text);
      return type.kind === 'float' ? Math.fround(v) : v;
    }
    case 'string': return text;
    case 'binary':
    case 'fixed': return Uint8Array.from(Buffer.from(text, 'hex'));
    case 'uuid': {
      const v = valueFromText(type, text);
      if (v === undefined) throw new PuffinError('internal', `'${text}' is not a uuid`);
      return v;
    }
  }
}

/**
 * SQL computing a partition value in `canonicalSql` form, in exact integer arithmetic and
 * with Java's int/long wrap-around where the spec's formula overflows (the reference
 * implementation's partition values, which other engines compute when pruning). Bucket is
 * not here: its Murmur3 hash is computed in TypeScript (`writeDataFiles`).
 */
export function transformSql(col: string, field: Pick<PartitionSpec['fields'][number], 'name' | 'transform'>, source: PrimitiveType): string {
  const t = field.transform;
  switch (t.kind) {
    case 'identity': return canonicalSql(col, source);
    case 'void': return 'CAST(NULL AS VARCHAR)';
    case 'year': return `(year(${civilSql(col, source)}) - 1970)::VARCHAR`;
    case 'month': return `((year(${civilSql(col, source)}) - 1970) * 12 + month(${civilSql(col, source)}) - 1)::VARCHAR`;
    case 'day': return source.kind === 'date' ? `(${col} - DATE '1970-01-01')::VARCHAR` : `${floorDivSql(epochMicrosSql(col, source), MICROS_DAY)}::VARCHAR`;
    case 'hour': return `${floorDivSql(epochMicrosSql(col, source), MICROS_HOUR)}::VARCHAR`;
    case 'truncate': {
      const w = t.width;
      switch (source.kind) {
        // Code points (DuckDB's left() counts code points, as Iceberg's truncate does).
        case 'string': return `left(${col}, ${w})`;
        case 'binary': return `left(hex(${col}), ${2 * w})`;
        case 'int': {
          // Java: v - (((v % W) + W) % W) in 32-bit arithmetic.
          const v = `(${col})::BIGINT`;
          return `${wrapSql(`${v} - (${wrapSql(`${v} % ${w} + ${w}`, 32)} % ${w})`, 32)}::VARCHAR`;
        }
        case 'long': {
          const v = `(${col})::HUGEINT`;
          return `${wrapSql(`${v} - (${wrapSql(`${v} % ${w} + ${w}`, 64)} % ${w})`, 64)}::VARCHAR`;
        }
        case 'decimal': {
          // On the unscaled integer, exactly (Java uses BigInteger: no wrap-around).
          const u = `(${canonicalSql(col, source)})::HUGEINT`;
          return `(${u} - (((${u} % ${w}) + ${w}) % ${w}))::VARCHAR`;
        }
        default: throw new PuffinError('unsupported', `partition field '${field.name}': truncate does not apply to ${source.kind} values`);
      }
    }
    case 'bucket': throw new PuffinError('internal', 'bucket partition values are computed from a hash table, not in SQL');
    case 'unknown': throw new PuffinError('unsupported', `partition field '${field.name}' uses the unknown transform '${t.name}'; this writer cannot compute it`);
  }
}

/** FIELD_IDS clause value for one field (nested types carry their children's ids). */
function fieldIdsOf(type: IcebergType, id: number): string {
  switch (type.kind) {
    case 'struct': return `{__duckdb_field_id: ${id}, ${type.fields.map((f) => `${sqlString(f.name)}: ${fieldIdsOf(f.type, f.id)}`).join(', ')}}`;
    case 'list': return `{__duckdb_field_id: ${id}, element: ${fieldIdsOf(type.element, type.elementId)}}`;
    case 'map': return `{__duckdb_field_id: ${id}, key: ${fieldIdsOf(type.key, type.keyId)}, value: ${fieldIdsOf(type.value, type.valueId)}}`;
    default: return String(id);
  }
}

/** Stats key (DuckDB's quoted column path) -> the primitive field it describes. */
function statsPaths(fields: readonly NestedField[], prefix = '', into = new Map<string, NestedField & { type: PrimitiveType }>()): Map<string, NestedField & { type: PrimitiveType }> {
  for (const f of fields) {
    const path = `${prefix}${sqlIdent(f.name)}`;
    if (isPrimitive(f.type)) into.set(path, f as NestedField & { type: PrimitiveType });
    else if (f.type.kind === 'struct') statsPaths(f.type.fields, `${path}.`, into);
  }
  return into;
}

/** Bounds longer than this are truncated (lower) or left out (upper), as Iceberg's truncate(n) metrics do. */
const MAX_BOUND_BYTES = 64;

function boundBytes(type: PrimitiveType, text: string, side: 'lo' | 'hi'): Uint8Array | undefined {
  let value = valueFromText(type, text, side);
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isNaN(value)) return undefined;
  if (typeof value === 'string' && Buffer.byteLength(value) > MAX_BOUND_BYTES) {
    if (side === 'hi') return undefined;
    value = Array.from(value).slice(0, 16).join('');
  }
  if (value instanceof Uint8Array && value.length > MAX_BOUND_BYTES && type.kind === 'binary') {
    if (side === 'hi') return undefined;
    value = value.slice(0, 16);
  }
  try {
    return encodeBound(type, value);
  } catch {
    return undefined;
  }
}

type StatsMap = { key: string; value: { key: string; value: string }[] }[];

function metricsOf(schema: IcebergSchema, stats: StatsMap | null): Pick<DataFileInfo, 'columnSizes' | 'valueCounts' | 'nullValueCounts' | 'nanValueCounts' | 'lowerBounds' | 'upperBounds'> {
  const paths = statsPaths(schema.fields);
  const columnSizes: Record<number, number> = {};
  const valueCounts: Record<number, number> = {};
  const nullValueCounts: Record<number, number> = {};
  const nanValueCounts: Record<number, number> = {};
  const lowerBounds: Record<number, Uint8Array> = {};
  const upperBounds: Record<number, Uint8Array> = {};
  for (const col of stats ?? []) {
    const field = paths.get(col.key);
    if (!field) continue;
    const s = Object.fromEntries(col.value.map((kv) => [kv.key, kv.value]));
    if (s.column_size_bytes !== undefined) columnSizes[field.id] = Number(s.column_size_bytes);
    if (s.num_values !== undefined) valueCounts[field.id] = Number(s.num_values);
    if (s.null_count !== undefined) nullValueCounts[field.id] = Number(s.null_count);
    if (s.has_nan === 'false') nanValueCounts[field.id] = 0;
    if (s.min !== undefined) {
      const b = boundBytes(field.type, s.min, 'lo');
      if (b) lowerBounds[field.id] = b;
    }
    if (s.max !== undefined) {
      const b = boundBytes(field.type, s.max, 'hi');
      if (b) upperBounds[field.id] = b;
    }
  }
  return { columnSizes, valueCounts, nullValueCounts, nanValueCounts, lowerBounds, upperBounds };
}

function partitionPathPart(name: string, value: IcebergValue | null): string {
  const text = value === null ? 'null' : value instanceof Uint8Array ? Buffer.from(value).toString('hex') : String(value);
  return `${encodeURIComponent(name)}=${encodeURIComponent(text)}`;
}

/**
 * The names a data file gives the reserved lineage columns: the spec's, or (a table column
 * already has the name, as DuckDB compares names: ignoring case) a PuffinDB name; readers
 * find them by field id either way.
 */
function lineageNames(schema: IcebergSchema): { rowId: string; lastUpdated: string } {
  const taken = new Set(schema.fields.map((f) => f.name.toLowerCase()));
  const free = (name: string): string => {
    let n = name;
    for (let i = 1; taken.has(n.toLowerCase()); i++) n = `${name}__lineage${i}`;
    return n;
  };
  return { rowId: free(ROW_ID_NAME), lastUpdated: free(LAST_UPDATED_NAME) };
}

/**
 * Write the rows of `selectSql` as data files of the table (not yet committed: the caller
 * commits the returned files). Throws naming the table and column for a row that violates
 * NOT NULL or a value that does not cast to the column's type.
 */
export async function writeDataFiles(o: WriteDataOptions): Promise<WrittenData> {
  const { conn, metadata, io } = o;
  // Columns whose names differ only by case are staged under distinct names (column-names.ts).
  const schema = exposedSchema(metadata.schemas.find((s) => s.schemaId === metadata.currentSchemaId) as IcebergSchema);
  const spec = metadata.partitionSpecs.find((s) => s.specId === metadata.defaultSpecId) as PartitionSpec;
  const location = metadata.location.replace(/\/+$/, '');
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  const src = `__puffin_write_${id}`;
  const staged = `__puffin_staged_${id}`;
  const temps: string[] = [];
  const stageDir = join(o.stagingDir, `write-${id}`);
  await mkdir(stageDir, { recursive: true });
  try {
    const probe = await conn.runAndReadAll(`SELECT * FROM (${o.selectSql}) LIMIT 0`).catch((err: unknown) => {
      throw toPuffinError(err);
    });
    const width = probe.columnCount;
    // Rows carrying their v3 row lineage end in the two lineage columns (lineage.ts).
    const carried = o.lineage === true;
    if (carried && !endsInLineage(probe.columnNames())) {
      throw new PuffinError('internal', `writing to table '${o.table}': the rows to write were to end in their lineage columns, but end in ${probe.columnNames().slice(-2).join(', ')}`);
    }
    if (width !== schema.fields.length + (carried ? 2 : 0)) {
      throw new PuffinError('bad_request', `table '${o.table}' has ${schema.fields.length} columns (${schema.fields.map((f) => f.name).join(', ')}) but the rows to write have ${width - (carried ? 2 : 0)}`);
    }
    const aliases = probe.columnNames().map((_, i) => `__c${i}`);
    const casts = schema.fields.map((f, i) => `${writeCastSql(`__q.${aliases[i]}`, f, metadata.properties)} AS ${sqlIdent(f.name)}`);
    // The reserved columns' names in the file: the spec's, unless a table column has one.
    const lineage = carried && keepsLineage(metadata) ? lineageNames(schema) : undefined;
    if (lineage) {
      const n = schema.fields.length;
      casts.push(`CAST(__q.${aliases[n]} AS BIGINT) AS ${sqlIdent(lineage.rowId)}`, `CAST(__q.${aliases[n + 1]} AS BIGINT) AS ${sqlIdent(lineage.lastUpdated)}`);
    }
    try {
      await conn.run(`CREATE TEMP TABLE ${src} AS SELECT ${casts.join(', ')} FROM (${o.selectSql}) __q(${aliases.join(', ')})`);
    } catch (err) {
      const e = toPuffinError(err);
      throw new PuffinError(e.code === 'internal' ? 'bad_request' : e.code, `writing to table '${o.table}': ${e.message}`);
    }
    temps.push(src);
    for (const f of schema.fields.filter((x) => x.required)) {
      const [row] = await run(conn, `SELECT count(*) AS n FROM ${src} WHERE ${sqlIdent(f.name)} IS NULL`);
      if (Number(row.n) > 0) throw new PuffinError('bad_request', `table '${o.table}': column '${f.name}' is NOT NULL, but ${row.n} row(s) to write have NULL there`);
    }

    const lineageIds = lineage ? `, ${sqlString(lineage.rowId)}: ${ROW_ID_FIELD_ID}, ${sqlString(lineage.lastUpdated)}: ${LAST_UPDATED_FIELD_ID}` : '';
    const fieldIds = `{${schema.fields.map((f) => `${sqlString(f.name)}: ${fieldIdsOf(f.type, f.id)}`).join(', ')}${lineageIds}}`;
    const dataCols = [...schema.fields.map((f) => sqlIdent(f.name)), ...(lineage ? [sqlIdent(lineage.rowId), sqlIdent(lineage.lastUpdated)] : [])].join(', ');
    const copyOptions = `FORMAT parquet, COMPRESSION zstd, FIELD_IDS ${fieldIds}, RETURN_STATS true`;
    const pTypes = partitionTypes(schema, spec);

    let copied: Record<string, unknown>[];
    const tuples = new Map<string, (IcebergValue | null)[]>();
    if (spec.fields.length === 0) {
      copied = await run(conn, `COPY (SELECT ${dataCols} FROM ${src}) TO ${sqlString(join(stageDir, `${id}.parquet`))} (${copyOptions})`);
    } else {
      const exprs: string[] = [];
      const joins: string[] = [];
      for (const [i, pf] of spec.fields.entries()) {
        const source = schema.fields.find((f) => f.id === pf.sourceId) as NestedField & { type: PrimitiveType };
        const col = `s.${sqlIdent(source.name)}`;
        if (pf.transform.kind === 'bucket') {
          // Murmur3 of each distinct value, computed here from its exact canonical form.
          const n = pf.transform.n;
          const map = `__puffin_bucket_${id}_${i}`;
          await conn.run(`CREATE TEMP TABLE ${map} (k VARCHAR, b INTEGER)`);
          temps.push(map);
          const canon = (c: string): string => canonicalSql(c, source.type);
          const values = await run(conn, `SELECT DISTINCT ${canon(sqlIdent(source.name))} AS t FROM ${src} WHERE ${sqlIdent(source.name)} IS NOT NULL`);
          for (let k = 0; k < values.length; k += 1000) {
            const chunk = values.slice(k, k + 1000).map((r) => {
              const text = String(r.t);
              return `(${sqlString(text)}, ${bucketValue(source.type, valueFromCanonical(source.type, text), n)})`;
            });
            await conn.run(`INSERT INTO ${map} VALUES ${chunk.join(', ')}`);
          }
          joins.push(`LEFT JOIN ${map} b${i} ON b${i}.k = ${canon(col)}`);
          exprs.push(`b${i}.b::VARCHAR`);
        } else {
          exprs.push(transformSql(col, pf, source.type));
        }
      }
      const pcols = exprs.map((e, i) => `${e} AS __p${i}`);
      const order = exprs.map((_, i) => `__p${i}`).join(', ');
      await conn.run(
        `CREATE TEMP TABLE ${staged} AS SELECT *, dense_rank() OVER (ORDER BY ${order} NULLS FIRST) AS __pid FROM (SELECT s.*, ${pcols.join(', ')} FROM ${src} s ${joins.join(' ')})`,
      );
      temps.push(staged);
      const distinct = await run(conn, `SELECT DISTINCT __pid, ${exprs.map((_, i) => `__p${i}`).join(', ')} FROM ${staged}`);
      for (const row of distinct) {
        tuples.set(
          String(row.__pid),
          spec.fields.map((pf, i) => {
            const text = row[`__p${i}`];
            if (text === null || text === undefined) return null;
            try {
              return valueFromCanonical(pTypes[i], String(text));
            } catch {
              throw new PuffinError('internal', `partition value ${String(text)} of '${pf.name}' does not parse as ${pTypes[i].kind}`);
            }
          }),
        );
      }
      copied = await run(
        conn,
        `COPY (SELECT ${dataCols}, __pid FROM ${staged}) TO ${sqlString(stageDir)} (${copyOptions}, PARTITION_BY (__pid), FILENAME_PATTERN '{uuid}', OVERWRITE_OR_IGNORE true)`,
      );
    }

    const files: DataFileInfo[] = [];
    let rows = 0;
    for (const r of copied) {
      const count = Number(r.count);
      const localFile = String(r.filename);
      if (count === 0) continue;
      let partition: (IcebergValue | null)[] = [];
      let dir = 'data';
      if (spec.fields.length) {
        const keys = (r.partition_keys ?? []) as { key: string; value: string }[];
        const pid = keys.find((k) => k.key === '__pid')?.value;
        const tuple = pid === undefined ? undefined : tuples.get(pid);
        if (!tuple) throw new PuffinError('internal', `DuckDB wrote ${localFile} for an unknown partition`);
        partition = tuple;
        dir = `data/${spec.fields.map((pf, i) => partitionPathPart(pf.name, tuple[i])).join('/')}`;
      }
      const uri = `${location}/${dir}/${randomUUID()}.parquet`;
      await io.write(uri, new Uint8Array(await readFile(localFile)));
      rows += count;
      files.push({
        path: uri,
        format: 'PARQUET',
        partition,
        recordCount: count,
        fileSizeInBytes: Number(r.file_size_bytes),
        ...metricsOf(schema, r.column_statistics as StatsMap | null),
      });
    }
    return { files, rows };
  } finally {
    for (const t of temps.reverse()) await conn.run(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
    await rm(stageDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// v3 merge-on-read deletes: deletion vectors (spec: Deletion Vectors). A data file gets at
// most one vector, holding every deleted position of the file: this change's rows and those
// deleted before (by an earlier vector, position delete files or equality deletes), so the
// earlier vector is replaced (removed in the same commit) rather than added to.

export interface DeletionVectorInput {
  conn: DuckDBConnection;
  io: TableIO;
  table: string;
  scan: IcebergScan;
  readOptions: ReadSqlOptions;
  predicate: string;
  /** The live data files of the base snapshot: spec and partition of each. */
  infos: Map<string, { specId: number; info: DataFileInfo }>;
  /** The table's location (no trailing slash). */
  location: string;
}

export interface WrittenDeletionVectors {
  deletes: { specId: number; file: DataFileInfo }[];
  affected: IcebergDataFile[];
  /** Rows where the predicate is true (deleted by this change). */
  rows: number;
  /** The deletion vectors the new ones replace. */
  replaced: { path: string; referencedDataFile: string }[];
}

/** Write one Puffin file with a deletion vector for each data file holding rows `predicate` matches. */
export async function writeDeletionVectors(o: DeletionVectorInput): Promise<WrittenDeletionVectors> {
  return writeVectors(o, (read) => ({
    deleted: `SELECT ${ROW_POSITION_COLUMN} AS pos FROM (${read}) __t WHERE (${o.predicate})`,
    kept: `SELECT ${ROW_POSITION_COLUMN} AS pos FROM (${read}) __t WHERE (${o.predicate}) IS NOT TRUE`,
  }));
}

/**
 * writeDeletionVectors by positions (MERGE): `positionsOf(file)` is a query with a `pos`
 * column naming the live positions of the file this change deletes (null: none). Each
 * vector holds them and the file's earlier deletions, as writeDeletionVectors' do.
 */
export async function writeDeletionVectorsAt(o: Omit<DeletionVectorInput, 'predicate'>, positionsOf: (file: IcebergDataFile) => string | null): Promise<WrittenDeletionVectors> {
  return writeVectors(o, (read, file) => {
    const deleted = positionsOf(file);
    return deleted === null ? null : { deleted, kept: `SELECT ${ROW_POSITION_COLUMN} AS pos FROM (${read}) __t EXCEPT SELECT pos FROM (${deleted})` };
  });
}

/** The two above: `select` gives, for a file read with its positions, this change's deleted positions and the live ones it keeps. */
async function writeVectors(
  o: Omit<DeletionVectorInput, 'predicate'>,
  select: (read: string, file: IcebergDataFile) => { deleted: string; kept: string } | null,
): Promise<WrittenDeletionVectors> {
  const vectors: { file: IcebergDataFile; ranges: PositionRanges; specId: number; partition: DataFileInfo['partition'] }[] = [];
  const replaced: { path: string; referencedDataFile: string }[] = [];
  let rows = 0;
  for (const file of o.scan.dataFiles) {
    const read = buildIcebergReadSql({ ...o.scan, dataFiles: [file] }, undefined, { ...o.readOptions, rowPositions: true });
    const q = select(read, file);
    if (q === null) continue;
    let n: number;
    let ranges: PositionRanges;
    try {
      const matched = await o.conn.runAndReadAll(`SELECT count(*) FROM (${q.deleted})`);
      n = Number(matched.getRowsJson()[0]?.[0] ?? 0);
      if (n === 0) continue;
      // Deleted after this change: every position of the file but the live rows kept.
      const r = await o.conn.runAndReadAll(
        `WITH kept AS (${q.kept}),
              gone AS (SELECT range AS pos FROM range(${file.rowCount}) EXCEPT SELECT pos FROM kept)
         SELECT min(pos)::VARCHAR, (max(pos) + 1)::VARCHAR FROM (SELECT pos, pos - row_number() OVER (ORDER BY pos) AS g FROM gone) GROUP BY g ORDER BY min(pos)`,
      );
      ranges = r.getRowsJson().map((row) => [BigInt(String(row[0])), BigInt(String(row[1]))] as [bigint, bigint]);
    } catch (err) {
      throw toPuffinError(err);
    }
    const own = o.infos.get(file.path);
    if (!own) throw new PuffinError('internal', `table '${o.table}': data file ${file.path} is planned but not live in its manifests`);
    replaced.push(...deletionVectorsOf(file));
    vectors.push({ file, ranges, specId: own.specId, partition: own.info.partition });
    rows += n;
  }
  if (vectors.length === 0) return { deletes: [], affected: [], rows: 0, replaced: [] };
  const puffin = encodePuffinDeletionVectors(vectors.map((v) => ({ referencedDataFile: v.file.path, ranges: v.ranges })));
  const uri = `${o.location}/data/${randomUUID()}-deletes.puffin`;
  await o.io.write(uri, puffin.bytes);
  const deletes = vectors.map((v, i) => {
    const pathBound = new TextEncoder().encode(v.file.path);
    return {
      specId: v.specId,
      file: {
        path: uri, format: 'PUFFIN' as const, partition: v.partition, recordCount: Number(puffin.blobs[i].cardinality), fileSizeInBytes: puffin.bytes.length,
        referencedDataFile: v.file.path, contentOffset: puffin.blobs[i].offset, contentSizeInBytes: puffin.blobs[i].length,
        lowerBounds: { [DELETE_FILE_PATH_ID]: pathBound }, upperBounds: { [DELETE_FILE_PATH_ID]: pathBound },
      },
    };
  });
  return { deletes, affected: vectors.map((v) => v.file), rows, replaced };
}

/** A data file's deletion vectors (v3), as a commit names them to remove them. */
export function deletionVectorsOf(file: IcebergDataFile): { path: string; referencedDataFile: string }[] {
  return file.deletes.filter((d) => d.content === 'position' && d.format === 'puffin').map((d) => ({ path: d.path, referencedDataFile: d.referencedDataFile ?? file.path }));
}

/** Reserved field id of a position delete's file_path (spec: Reserved Field IDs). */
const DELETE_FILE_PATH_ID = 2147483546;
