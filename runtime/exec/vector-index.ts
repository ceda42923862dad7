// IVF vector indexes on Iceberg tables: `CREATE INDEX name ON t USING ivf (v) [WITH (lists = N,
// nprobe = P, iterations = I, sample = S)]` and `DROP INDEX [IF EXISTS] name`. The planner's
// side (which queries probe an index, and how they are rewritten) is runtime/planner/ivf.ts.
//
// Why SQL statements and not a CLI command: an index is a property of a table that every way
// in (HTTP API, PostgreSQL wire protocol, library, CLI shell) should be able to create with the
// same writer-key authorization as CREATE TABLE; DuckDB's own syntax is what a user tries first.
// DuckDB's JSON serializer takes only SELECT statements, so the statement is read here with the
// lexer's comment-free text and a strict pattern.
//
// The build, all in SQL:
//   1. a training sample of the vectors (`ORDER BY hash(v) LIMIT S`: deterministic, distributed
//      as a top-k over the table's files), S = min(rows, max(50 x lists, 1000), 100,000) by default;
//   2. k-means in a DuckDB of the build's own (sandboxed to its staging directory): centroids
//      start from the first `lists` sample rows in hash order, then `iterations` (default 6)
//      Lloyd steps: each sample vector to its nearest centroid (arg_min of array_distance over
//      the cross join), each centroid to the mean of its vectors (an empty list keeps its old
//      centroid);
//   3. the centroids are written as a small Iceberg table `__ivf_<name>_centroids`;
//   4. the index's table `__ivf_<name>` is a CTAS of the base table's rows plus `__ivf_list`,
//      the list of each vector's nearest centroid, PARTITIONED BY (__ivf_list): a distributed
//      CTAS like any other, each fragment assigning its rows with the centroids as one constant.
//
// Why a copy of the rows, partitioned by list, rather than a list-id column added to the base
// table: the base table stays exactly as its writers (PuffinDB or other engines) left it, no
// schema change and no rewrite of files another engine may be reading; a query probing the
// index reads whole files of the probed lists only (identity-partition pruning in scan
// planning), with every column there for the user's filters and select list, so a filtered
// vector search needs no join back. The price is a second copy of the data.
//
// The index is recorded in the base table's properties (`puffindb.ivf-index.<name>`: column,
// lists, default nprobe, the tables and the base snapshot it was built from). Staleness: the
// index reflects the base table's snapshot it was built from. When the table changes (an
// append, a delete, an overwrite), queries do not use the index and are exact (the plan's
// reason says so) until the index is rebuilt (DROP INDEX, CREATE INDEX). Assigning appended
// rows at write time would make every writer (other engines too) keep the copy in step; an
// exact answer until a rebuild is never wrong, only slower.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ARRAY, FLOAT, INTEGER, type DuckDBConnection } from '@duckdb/node-api';
import { loadTable, type LoadedTable } from '../catalog/iceberg/commit.ts';
import { commitMetadataChange, dropTable } from '../catalog/iceberg/ddl.ts';
import type { PointerStore } from '../catalog/iceberg/pointer-store.ts';
import { appendRows, createTableFromColumns, type WriterContext } from '../catalog/iceberg/writer.ts';
import { uriTableIO, type TableIO } from '../catalog/iceberg/writer-io.ts';
import type { Column } from '../catalog/types.ts';
import { INDEX_TABLE_PREFIX } from '../catalog/warehouse-catalog.ts';
import { ulid } from 'ulid';
import { Engine, type JsonValue } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { IVF_LIST_COLUMN, type IvfIndexSource, type IvfIndexUse } from '../planner/ivf.ts';
import type { Plan } from '../planner/plan.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import { sqlIdent } from '../sql/quote.ts';
import type { QueryOptions, QueryOutcome } from './query-service.ts';
import type { ViewHost } from './view-statements.ts';
import { storeOptionsOf } from './worker.ts';

export const IVF_PROPERTY_PREFIX = 'puffindb.ivf-index.';

/** What the base table's property records of an index. */
export interface IvfIndexRecord {
  column: string;
  lists: number;
  nprobe: number;
  /** The table of the base table's rows with __ivf_list. */
  table: string;
  centroids: string;
  dimension: number;
  /** The base table's snapshot the index was built from. */
  snapshotId: string | null;
  builtAt: string;
}

export interface CreateIndexStatement {
  kind: 'create';
  name: string;
  table: string;
  column: string;
  ifNotExists: boolean;
  options: Record<string, number>;
}

export interface DropIndexStatement {
  kind: 'drop';
  name: string;
  ifExists: boolean;
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)`;
const QUALIFIED = String.raw`${IDENT}(?:\s*\.\s*${IDENT})*`;

function unquote(ident: string): string {
  return ident.trim().startsWith('"') ? ident.trim().slice(1, -1).replace(/""/g, '"') : ident.trim().toLowerCase();
}

function qualifiedName(text: string): string {
  return (text.match(new RegExp(IDENT, 'g')) ?? []).map(unquote).join('.');
}

function quoted(name: string): string {
  return name.split('.').map(sqlIdent).join('.');
}

const OPTION_BOUNDS: Record<string, [number, number, string]> = {
  lists: [1, 65_536, 'the number of IVF lists (k-means centroids)'],
  nprobe: [1, 65_536, 'the lists a query probes by default'],
  iterations: [0, 100, 'the Lloyd iterations of k-means'],
  sample: [1, 1_000_000, 'the vectors k-means trains on'],
};

/** CREATE INDEX / DROP INDEX from the statement's comment-free text; undefined for other statements. */
export function parseIndexStatement(text: string): CreateIndexStatement | DropIndexStatement | undefined {
  const t = text.trim();
  const drop = new RegExp(String.raw`^DROP\s+INDEX\s+(IF\s+EXISTS\s+)?(${QUALIFIED})\s*(CASCADE|RESTRICT)?$`, 'is').exec(t);
  if (drop) return { kind: 'drop', name: qualifiedName(drop[2]), ifExists: drop[1] !== undefined };
  if (!/^DROP\s+INDEX\b/i.test(t) && !/^CREATE\s+(UNIQUE\s+)?INDEX\b/i.test(t)) return undefined;
  if (/^DROP/i.test(t)) throw new PuffinError('syntax_error', 'expected DROP INDEX [IF EXISTS] name');
  if (/^CREATE\s+UNIQUE/i.test(t)) throw new PuffinError('unsupported', 'CREATE UNIQUE INDEX is not supported: PuffinDB indexes are IVF vector indexes (CREATE INDEX name ON table USING ivf (column) WITH (lists = N))');
  const m = new RegExp(String.raw`^CREATE\s+INDEX\s+(IF\s+NOT\s+EXISTS\s+)?(${IDENT})\s+ON\s+(${QUALIFIED})\s*(?:USING\s+(${IDENT})\s*)?\(\s*(${IDENT})\s*\)\s*(?:WITH\s*\(([^)]*)\))?$`, 'is').exec(t);
  if (!m) throw new PuffinError('syntax_error', 'expected CREATE INDEX [IF NOT EXISTS] name ON table USING ivf (column) [WITH (lists = N, nprobe = P)]');
  const method = m[4] ? unquote(m[4]) : '';
  if (method !== 'ivf') throw new PuffinError('unsupported', `CREATE INDEX ... USING ${method || '(no method)'}: the index method PuffinDB builds is ivf (CREATE INDEX ${unquote(m[2])} ON ${qualifiedName(m[3])} USING ivf (${unquote(m[5])}) WITH (lists = N))`);
  const options: Record<string, number> = {};
  for (const part of (m[6] ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const kv = /^([A-Za-z_]+)\s*=\s*'?(-?[0-9]+(?:\.[0-9]+)?)'?$/.exec(part);
    const key = kv?.[1].toLowerCase();
    const bounds = key ? OPTION_BOUNDS[key] : undefined;
    if (!kv || !bounds) throw new PuffinError('bad_request', `CREATE INDEX option '${part.slice(0, 60)}': the options are ${Object.keys(OPTION_BOUNDS).map((k) => `${k} = <integer>`).join(', ')}`);
    const n = Number(kv[2]);
    if (!Number.isInteger(n) || n < bounds[0] || n > bounds[1]) throw new PuffinError('bad_request', `CREATE INDEX option ${key} (${bounds[2]}) must be an integer from ${bounds[0]} to ${bounds[1]}, got ${kv[2]}`);
    options[key!] = n;
  }
  return { kind: 'create', name: unquote(m[2]), table: qualifiedName(m[3]), column: unquote(m[5]), ifNotExists: m[1] !== undefined, options };
}

const INDEX_COLUMNS: readonly Column[] = [
  { name: 'operation', type: 'VARCHAR' }, { name: 'index', type: 'VARCHAR' }, { name: 'table', type: 'VARCHAR' },
  { name: 'lists', type: 'INTEGER' }, { name: 'rows', type: 'BIGINT' }, { name: 'detail', type: 'VARCHAR' },
];

function indexPlan(sql: string, reason: string): Plan {
  return { shape: 'write', sql, output: INDEX_COLUMNS.map((c) => ({ ...c })), fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null, reason };
}

/** The element type and size of a fixed-size FLOAT / DOUBLE array type, else undefined. */
export function vectorType(type: string): { element: 'FLOAT' | 'DOUBLE'; dimension: number } | undefined {
  const m = /^(FLOAT|DOUBLE)\[(\d+)\]$/.exec(type.trim().toUpperCase());
  return m ? { element: m[1] as 'FLOAT' | 'DOUBLE', dimension: Number(m[2]) } : undefined;
}

interface CachedCentroids {
  location: string;
  centroids: Float64Array[];
}

export class VectorIndexes implements IvfIndexSource {
  private readonly centroidCache = new Map<string, CachedCentroids>();

  constructor(private readonly host: ViewHost) {}

  /** CREATE INDEX and DROP INDEX (any spelling this module answers for). */
  static handles(statement: ClassifiedStatement): boolean {
    return (statement.kind === 'create' && /^CREATE (UNIQUE|INDEX)/.test(statement.keyword)) || (statement.kind === 'drop' && /^DROP\s+INDEX\b/i.test(statement.text));
  }

  private context(): { store: PointerStore; io: TableIO } {
    const store = this.host.catalog.pointers;
    if (!store) throw new PuffinError('unsupported', 'vector indexes need a catalog that keeps Iceberg tables (the warehouse catalog)');
    return { store, io: uriTableIO(storeOptionsOf(this.host.settings)) };
  }

  /** What the statement would do (EXPLAIN and the API's plan), without doing it. */
  explain(statement: ClassifiedStatement): Plan {
    const parsed = parseIndexStatement(statement.text);
    if (!parsed) throw new PuffinError('syntax_error', `not an index statement: ${statement.keyword}`);
    const reason = parsed.kind === 'create'
      ? `CREATE INDEX ${parsed.name}: k-means over a sample of ${parsed.table}.${parsed.column}, then a CTAS of the rows with their IVF list, partitioned by it`
      : `DROP INDEX ${parsed.name}: its tables are dropped and the base table's property removed`;
    return indexPlan(statement.sql, reason);
  }

  async run(statement: ClassifiedStatement, options: QueryOptions): Promise<QueryOutcome> {
    const parsed = parseIndexStatement(statement.text);
    if (!parsed) throw new PuffinError('syntax_error', `not an index statement: ${statement.keyword}`);
    const started = performance.now();
    const row = parsed.kind === 'create' ? await this.create(parsed, options) : await this.drop(parsed);
    const totalMs = performance.now() - started;
    return {
      queryId: options.queryId ?? ulid(),
      columns: [...INDEX_COLUMNS],
      rows: [row],
      plan: indexPlan(statement.sql, `${parsed.kind === 'create' ? 'CREATE' : 'DROP'} INDEX: ${String(row[5])}`),
      stats: { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: 0, executeMs: totalMs, reduceMs: 0, totalMs },
    };
  }

  /** Every index recorded on a table, by name. */
  private recordsOf(table: LoadedTable): Map<string, IvfIndexRecord> {
    const out = new Map<string, IvfIndexRecord>();
    for (const [k, v] of Object.entries(table.metadata.properties)) {
      if (!k.startsWith(IVF_PROPERTY_PREFIX)) continue;
      try {
        out.set(k.slice(IVF_PROPERTY_PREFIX.length), JSON.parse(v) as IvfIndexRecord);
      } catch {
        // not ours to read: ignored
      }
    }
    return out;
  }

  private async create(st: CreateIndexStatement, options: QueryOptions): Promise<JsonValue[]> {
    const { store, io } = this.context();
    const indexTable = `${INDEX_TABLE_PREFIX}${st.name}`;
    const centroidsTable = `${indexTable}_centroids`;
    const snapshot = await this.host.catalog.getTable(st.table);
    if (!snapshot) throw new PuffinError('unknown_table', `CREATE INDEX: table '${st.table}' does not exist`);
    if (snapshot.kind !== 'iceberg' || (await store.get(st.table)) === undefined) throw new PuffinError('unsupported', `CREATE INDEX: table '${st.table}' is a ${snapshot.kind} table; IVF indexes are built on Iceberg tables (CREATE TABLE ... AS SELECT * FROM ${st.table} makes one)`);
    const column = snapshot.columns.find((c) => c.name === st.column) ?? snapshot.columns.find((c) => c.name.toLowerCase() === st.column.toLowerCase());
    if (!column) throw new PuffinError('bad_request', `CREATE INDEX: table '${st.table}' has no column '${st.column}' (columns: ${snapshot.columns.map((c) => c.name).join(', ')})`);
    const vtype = vectorType(column.type);
    if (!vtype) {
      throw new PuffinError('bad_request', `CREATE INDEX ${st.name}: column '${column.name}' of table '${st.table}' is ${column.type}, not a fixed-size FLOAT[n] or DOUBLE[n] array${/^(FLOAT|DOUBLE)\[\]$/i.test(column.type) ? ` (its lists have no recorded size: ALTER TABLE ${st.table} ALTER COLUMN ${column.name} SET DATA TYPE ${column.type.replace('[]', '[<n>]')} records it)` : ''}`);
    }
    if (snapshot.columns.some((c) => c.name.toLowerCase() === IVF_LIST_COLUMN)) throw new PuffinError('bad_request', `CREATE INDEX: table '${st.table}' has a column named ${IVF_LIST_COLUMN}, which the index's table uses`);
    const base = await loadTable(store, st.table, io);
    const existing = this.recordsOf(base).get(st.name);
    if (existing || (await store.get(indexTable)) !== undefined) {
      if (st.ifNotExists && existing) return ['create', st.name, st.table, existing.lists, null, 'the index exists (IF NOT EXISTS)'];
      throw new PuffinError('conflict', `index '${st.name}' already exists (DROP INDEX ${st.name} first)`);
    }
    const rowCount = snapshot.files.reduce((n, f) => n + f.rowCount, 0);
    const lists = st.options.lists ?? Math.max(1, Math.min(65_536, Math.round(Math.sqrt(rowCount))));
    if (rowCount === 0) throw new PuffinError('bad_request', `CREATE INDEX ${st.name}: table '${st.table}' has no rows to train the index's ${lists} centroids on`);
    if (lists > rowCount) throw new PuffinError('bad_request', `CREATE INDEX ${st.name}: lists = ${lists} is more than the table's ${rowCount} rows (each list needs at least one vector)`);
    const nprobe = Math.min(lists, st.options.nprobe ?? Math.max(1, Math.ceil(lists / 16)));
    const iterations = st.options.iterations ?? 6;
    const sample = Math.min(rowCount, st.options.sample ?? Math.min(100_000, Math.max(50 * lists, 1000)));
    if (sample < lists) throw new PuffinError('bad_request', `CREATE INDEX ${st.name}: sample = ${sample} is fewer vectors than lists = ${lists}`);
    const q = { ...options, plan: undefined, queryId: undefined, nprobe: 0 };
    const col = sqlIdent(column.name);
    const type = `${vtype.element}[${vtype.dimension}]`;

    // 1. The training sample: deterministic, a distributed top-k.
    const trained = await this.host.query(`SELECT CAST(${col} AS DOUBLE[]) FROM ${quoted(st.table)} WHERE ${col} IS NOT NULL ORDER BY hash(${col}) LIMIT ${sample}`, q);
    const vectors = trained.rows.map((r) => r[0] as number[]);
    if (vectors.length < lists) throw new PuffinError('bad_request', `CREATE INDEX ${st.name}: only ${vectors.length} non-NULL vectors for lists = ${lists}`);

    // 2. k-means, 3. the centroids' table.
    const staging = join(this.host.settings.home, 'coordinator', 'staging', `ivf-${st.name}-${Date.now().toString(36)}`);
    mkdirSync(staging, { recursive: true });
    const engine = await Engine.create({ threads: this.host.settings.threads, memoryLimit: this.host.settings.memoryLimit, allowedDirectories: [staging] });
    let centroids: number[][];
    try {
      const conn = await engine.connect();
      try {
        centroids = await kmeans(conn, vectors, lists, vtype.dimension, iterations);
        const ctx: WriterContext = { conn, store, io, stagingDir: staging, warehouseUri: this.host.settings.warehouse };
        const created = await createTableFromColumns(ctx, centroidsTable, [{ name: 'list', type: INTEGER }, { name: 'centroid', type: ARRAY(FLOAT, vtype.dimension) }]);
        await appendRows(ctx, centroidsTable, `SELECT list, CAST(c AS FLOAT[${vtype.dimension}]) FROM __ivf_centroids ORDER BY list`, created);
      } finally {
        conn.closeSync();
      }
    } finally {
      engine.close();
      rmSync(staging, { recursive: true, force: true });
    }

    // 4. The index's table: the rows with their list, partitioned by it.
    const literal = `CAST('${JSON.stringify(centroids.map((c) => c.map((x) => Math.fround(x))))}' AS ${type}[])`;
    const assign = `CAST(list_grade_up(list_transform(${literal}, lambda __c: array_distance(CAST(${col} AS ${type}), __c)))[1] - 1 AS INTEGER)`;
    let rows = 0;
    try {
      const ran = await this.host.query(`CREATE TABLE ${quoted(indexTable)} PARTITIONED BY (${IVF_LIST_COLUMN}) AS SELECT *, ${assign} AS ${IVF_LIST_COLUMN} FROM ${quoted(st.table)}`, q);
      rows = Number(ran.rows[0]?.[2] ?? 0);
      const record: IvfIndexRecord = { column: column.name, lists, nprobe, table: indexTable, centroids: centroidsTable, dimension: vtype.dimension, snapshotId: base.metadata.currentSnapshotId === null ? null : String(base.metadata.currentSnapshotId), builtAt: new Date().toISOString() };
      await commitMetadataChange(store, io, st.table, (m) => {
        // A commit since the build read the table: the index would be stale the moment it exists.
        if (String(m.currentSnapshotId) !== String(base.metadata.currentSnapshotId)) throw new PuffinError('conflict', `table '${st.table}' changed while index '${st.name}' was being built; run CREATE INDEX again`);
        return { ...m, properties: { ...m.properties, [`${IVF_PROPERTY_PREFIX}${st.name}`]: JSON.stringify(record) } };
      });
    } catch (err) {
      await dropTable({ store, io }, indexTable, { ifExists: true, purge: true }).catch(() => undefined);
      await dropTable({ store, io }, centroidsTable, { ifExists: true, purge: true }).catch(() => undefined);
      throw err;
    }
    return ['create', st.name, st.table, lists, String(rows), `IVF index on ${column.name} (${type}): ${lists} lists from k-means over ${vectors.length} sampled vectors (${iterations} iterations); queries probe ${nprobe} lists by default`];
  }

  private async drop(st: DropIndexStatement): Promise<JsonValue[]> {
    const { store, io } = this.context();
    const indexTable = `${INDEX_TABLE_PREFIX}${st.name}`;
    const location = await store.get(indexTable);
    // The base table is found by its property naming this index.
    let baseName: string | undefined;
    for (const p of await store.list()) {
      if (p.name.startsWith(INDEX_TABLE_PREFIX)) continue;
      const t = await loadTable(store, p.name, io).catch(() => undefined);
      if (t && this.recordsOf(t).has(st.name)) {
        baseName = p.name;
        break;
      }
    }
    if (!baseName && location === undefined) {
      if (st.ifExists) return ['drop', st.name, null, null, null, 'no such index (IF EXISTS)'];
      throw new PuffinError('not_found', `index '${st.name}' does not exist`);
    }
    if (baseName) {
      await commitMetadataChange(store, io, baseName, (m) => {
        const { [`${IVF_PROPERTY_PREFIX}${st.name}`]: _gone, ...rest } = m.properties;
        return { ...m, properties: rest };
      });
    }
    await dropTable({ store, io }, indexTable, { ifExists: true, purge: true });
    await dropTable({ store, io }, `${indexTable}_centroids`, { ifExists: true, purge: true });
    this.centroidCache.delete(st.name);
    return ['drop', st.name, baseName ?? null, null, null, 'the index and its tables are dropped'];
  }

  /** The planner's lookup (planner/ivf.ts): the index on a table's column, if any. */
  async indexOn(table: string, column: string): Promise<IvfIndexUse | undefined> {
    const store = this.host.catalog.pointers;
    if (!store) return undefined;
    const name = table.toLowerCase();
    if ((await store.get(name)) === undefined) return undefined;
    const { io } = this.context();
    const base = await loadTable(store, name, io);
    const match = [...this.recordsOf(base)].find(([, r]) => r.column.toLowerCase() === column.toLowerCase());
    if (!match) return undefined;
    const [indexName, record] = match;
    // A dropped index table or centroids' table (DROP TABLE by hand) leaves the query exact, like a change of the table.
    const current = String(base.metadata.currentSnapshotId) === String(record.snapshotId) && (await store.get(record.table)) !== undefined && (await store.get(record.centroids)) !== undefined;
    return {
      name: indexName,
      indexTable: record.table,
      lists: record.lists,
      nprobe: record.nprobe,
      current,
      nearestLists: async (vector, nprobe, metric) => nearest(await this.centroids(indexName, record), vector, nprobe, metric),
    };
  }

  /** The centroids of an index, read once per version of its centroids' table. */
  private async centroids(indexName: string, record: IvfIndexRecord): Promise<Float64Array[]> {
    const { store } = this.context();
    const location = await store.get(record.centroids);
    if (location === undefined) throw new PuffinError('not_found', `index '${indexName}': its centroids' table ${record.centroids} is missing (DROP INDEX ${indexName} and create it again)`);
    const cached = this.centroidCache.get(indexName);
    if (cached && cached.location === location) return cached.centroids;
    const r = await this.host.query(`SELECT list, CAST(centroid AS DOUBLE[]) FROM ${quoted(record.centroids)} ORDER BY list`, { role: 'admin', nprobe: 0 });
    const centroids = r.rows.map((row) => Float64Array.from(row[1] as number[]));
    this.centroidCache.set(indexName, { location, centroids });
    return centroids;
  }
}

/** The `nprobe` lists whose centroids are nearest `vector`. */
export function nearest(centroids: readonly Float64Array[], vector: readonly number[], nprobe: number, metric: 'l2' | 'cosine' | 'ip'): number[] {
  if (centroids.length > 0 && vector.length !== centroids[0].length) throw new PuffinError('bad_request', `the query vector has ${vector.length} dimensions; the index's vectors have ${centroids[0].length}`);
  let qn = 0;
  for (const x of vector) qn += x * x;
  const scored = centroids.map((c, list) => {
    let dot = 0;
    let l2 = 0;
    let cn = 0;
    for (let i = 0; i < c.length; i++) {
      const d = c[i] - vector[i];
      l2 += d * d;
      dot += c[i] * vector[i];
      cn += c[i] * c[i];
    }
    const score = metric === 'l2' ? l2 : metric === 'ip' ? -dot : 1 - dot / (Math.sqrt(cn * qn) || 1);
    return { list, score };
  });
  scored.sort((a, b) => a.score - b.score || a.list - b.list);
  return scored.slice(0, nprobe).map((s) => s.list);
}

/**
 * Lloyd's k-means in DuckDB SQL over `vectors`: centroids start from the first `k` vectors
 * (the sample is already in hash order), then `iterations` assign / update steps.
 */
export async function kmeans(conn: DuckDBConnection, vectors: readonly number[][], k: number, dimension: number, iterations: number): Promise<number[][]> {
  const type = `FLOAT[${dimension}]`;
  await conn.run(`CREATE OR REPLACE TABLE __ivf_train (id INTEGER, v ${type})`);
  const appender = await conn.createAppender('__ivf_train');
  const arrayType = ARRAY(FLOAT, dimension);
  vectors.forEach((v, i) => {
    appender.appendInteger(i);
    appender.appendArray(v, arrayType);
    appender.endRow();
  });
  appender.closeSync();
  await conn.run(`CREATE OR REPLACE TABLE __ivf_centroids AS SELECT (id)::INTEGER AS list, v AS c FROM __ivf_train WHERE id < ${k}`);
  const means = Array.from({ length: dimension }, (_, i) => `avg(t.v[${i + 1}])`).join(', ');
  for (let it = 0; it < iterations; it++) {
    await conn.run(`CREATE OR REPLACE TABLE __ivf_assign AS SELECT t.id, arg_min(c.list, array_distance(t.v, c.c)) AS list FROM __ivf_train t, __ivf_centroids c GROUP BY t.id`);
    await conn.run(`CREATE OR REPLACE TABLE __ivf_centroids AS
      SELECT c.list, CAST(coalesce(CAST(n.c AS FLOAT[]), CAST(c.c AS FLOAT[])) AS ${type}) AS c FROM __ivf_centroids c
      LEFT JOIN (SELECT a.list, CAST([${means}] AS ${type}) AS c FROM __ivf_assign a JOIN __ivf_train t USING (id) GROUP BY a.list) n USING (list)`);
  }
  const r = await conn.runAndReadAll(`SELECT list, CAST(c AS DOUBLE[])::VARCHAR FROM __ivf_centroids ORDER BY list`);
  return r.getRows().map((row) => JSON.parse(String(row[1])) as number[]);
}
