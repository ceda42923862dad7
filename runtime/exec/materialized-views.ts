// Materialized views: CREATE MATERIALIZED VIEW v [PARTITIONED BY (...)] AS SELECT ... is a
// CTAS (written where the fragments run) whose Iceberg table keeps, in its properties, the
// view's query (views it names expanded), how it can be refreshed, and the snapshot of every
// source table it reflects (the CTAS reads each Iceberg source AT that snapshot, so what is
// recorded is exactly what was read). REFRESH MATERIALIZED VIEW v is
//
// - incremental when the view reads one Iceberg table that only had appends since the
//   recorded snapshot (every snapshot after it an 'append'): the view's query runs over only
//   the data files those snapshots added (the source pinned, for this statement, as a table
//   snapshot restricted to them) and
//   - for a projection/filter view, its rows are appended;
//   - for a GROUP BY (or global) aggregate of count / sum / min / max only, they are merged
//     with the stored rows by group (NULL groups matched with IS NOT DISTINCT FROM) and the
//     result replaces the table's files in one overwrite;
// - a full recompute otherwise (a delete, update or overwrite in a source, several sources,
//   avg and other aggregates, DISTINCT, LIMIT, windows, subqueries): one overwrite.
//
// Each refresh's rows are staged as a CTAS of a hidden table (distributed like any CTAS);
// its data files are then committed to the view's table in ONE snapshot, whose summary
// carries the sources it reflects (so a crash before the properties are updated loses
// nothing), and the staging pointer is dropped. The refresh history is in the properties.

import { randomBytes } from 'node:crypto';
import { ulid } from 'ulid';
import { commitTable, liveDataFileInfos, loadTable, type LoadedTable } from '../catalog/iceberg/commit.ts';
import { commitMetadataChange } from '../catalog/iceberg/ddl.ts';
import type { IcebergScan } from '../catalog/iceberg/scan.ts';
import { uriTableIO, type TableIO } from '../catalog/iceberg/writer-io.ts';
import type { PointerStore } from '../catalog/iceberg/pointer-store.ts';
import type { Column } from '../catalog/types.ts';
import { toTableSnapshot } from '../catalog/warehouse-catalog.ts';
import { PuffinError } from '../errors.ts';
import { exprKey } from '../planner/ast.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import { parseStatement, printNodes, type AstNode } from '../sql/parse.ts';
import { sqlIdent } from '../sql/quote.ts';
import { expandViews, referenceName, referencedNames, type ViewStatement } from '../sql/views.ts';
import type { QueryOptions, QueryOutcome } from './query-service.ts';
import { viewCatalogOf, type ViewCatalog, type ViewHost } from './view-statements.ts';
import { storeOptionsOf } from './worker.ts';

export const MV_SQL = 'puffindb.mv.sql';
export const MV_SOURCES = 'puffindb.mv.sources';
export const MV_STRATEGY = 'puffindb.mv.refresh';
export const MV_PARTITION_BY = 'puffindb.mv.partition-by';
export const MV_LAST_REFRESH = 'puffindb.mv.last-refresh';
export const MV_HISTORY = 'puffindb.mv.refreshes';
const HISTORY_KEPT = 20;

/** A source table and the snapshot (the catalog's snapshot id) the view reflects. */
export interface MvSource {
  table: string;
  snapshotId: string;
  kind: string;
}

/** How a view can be refreshed without recomputing it. */
type Strategy =
  | { kind: 'append' }
  | { kind: 'merge'; keys: number[]; aggregates: { index: number; op: 'sum' | 'count' | 'min' | 'max' }[] }
  | { kind: 'full'; why: string };

export const REFRESH_COLUMNS: readonly Column[] = [
  { name: 'view', type: 'VARCHAR' }, { name: 'mode', type: 'VARCHAR' }, { name: 'rows_added', type: 'BIGINT' },
  { name: 'sources', type: 'VARCHAR' }, { name: 'snapshot_id', type: 'VARCHAR' }, { name: 'reason', type: 'VARCHAR' },
];

const MERGEABLE: Record<string, 'sum' | 'count' | 'min' | 'max'> = { sum: 'sum', count: 'count', count_star: 'count', min: 'min', max: 'max' };

export class MaterializedViews {
  private aggregateNames?: Promise<Set<string>>;

  constructor(
    private readonly host: ViewHost,
    /** Parse a query and refuse calls queries may not make (ViewStatements'). */
    private readonly parseQuery: (sql: string) => Promise<AstNode>,
  ) {}

  private context(): { catalog: ViewCatalog & { scanIceberg(name: string, r: { snapshotId?: string }): Promise<IcebergScan> }; store: PointerStore; io: TableIO } {
    const catalog = viewCatalogOf(this.host.catalog);
    if (!catalog || !catalog.pointers || typeof (catalog as { scanIceberg?: unknown }).scanIceberg !== 'function') {
      throw new PuffinError('unsupported', 'materialized views need a catalog that keeps Iceberg tables (the warehouse catalog)');
    }
    return { catalog: catalog as never, store: catalog.pointers, io: uriTableIO(storeOptionsOf(this.host.settings)) };
  }

  async run(statement: ClassifiedStatement, st: ViewStatement, options: QueryOptions): Promise<QueryOutcome> {
    const started = performance.now();
    const queryId = options.queryId ?? ulid();
    let columns: readonly Column[] = REFRESH_COLUMNS;
    let row: (string | null)[];
    if (st.kind === 'create_materialized_view') {
      row = await this.create(st, options);
    } else if (st.kind === 'refresh_materialized_view') {
      row = await this.refresh(st.name, options);
    } else if (st.kind === 'drop_view') {
      row = await this.drop(st.name, st.ifExists, options);
    } else {
      throw new PuffinError('internal', `not a materialized-view statement: ${statement.keyword}`);
    }
    if (st.kind !== 'refresh_materialized_view') {
      columns = [{ name: 'operation', type: 'VARCHAR' }, { name: 'table', type: 'VARCHAR' }, { name: 'rows_affected', type: 'BIGINT' }, { name: 'snapshot_id', type: 'VARCHAR' }];
    }
    const totalMs = performance.now() - started;
    return {
      queryId,
      columns: columns.map((c) => ({ ...c })),
      rows: [row],
      plan: { shape: 'write', sql: statement.sql, output: columns.map((c) => ({ ...c })), fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null, reason: `${statement.keyword}: ${row[row.length - 1] ?? ''}` },
      stats: { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: 0, executeMs: totalMs, reduceMs: 0, totalMs },
    };
  }

  /** The view's query with the views it names expanded, as an AST (a statement). */
  private async expanded(sql: string): Promise<AstNode> {
    const { catalog } = this.context();
    const root = await this.parseQuery(sql);
    const views = new Map((await catalog.listViews()).map((v) => [v.name, v]));
    await expandViews(this.host.engine, root, { lookup: (n) => views.get(n) });
    return root;
  }

  /** The source tables a query reads and their current snapshots. */
  private async sourcesOf(root: AstNode): Promise<MvSource[]> {
    const { catalog } = this.context();
    const out: MvSource[] = [];
    for (const name of referencedNames(root)) {
      const t = await this.host.catalog.getTable(name);
      if (t) out.push({ table: t.name, snapshotId: t.snapshotId, kind: t.kind });
    }
    return out;
  }

  /** `root` printed with every Iceberg source read AT its recorded snapshot. */
  private async pinnedSql(root: AstNode, sources: readonly MvSource[]): Promise<string> {
    const copy = structuredClone(root);
    const at = new Map<string, AstNode>();
    for (const s of sources) {
      if (s.kind !== 'iceberg' || !/^\d+$/.test(s.snapshotId)) continue;
      at.set(s.table, (await parseStatement(this.host.engine, `SELECT * FROM __t AT (VERSION => ${s.snapshotId})`)).node.from_table.at_clause);
    }
    forEachTable(copy, (node) => {
      const pin = at.get(referenceName(node));
      if (pin && !node.at_clause) node.at_clause = structuredClone(pin);
    });
    return (await printNodes(this.host.engine, [copy.node]))[0];
  }

  private async create(st: Extract<ViewStatement, { kind: 'create_materialized_view' }>, options: QueryOptions): Promise<(string | null)[]> {
    const { catalog, store, io } = this.context();
    const name = st.name.toLowerCase();
    if (await catalog.getView(name)) throw new PuffinError('conflict', `'${name}' is a view; a materialized view may not have its name`);
    if (await store.get(name)) {
      if (st.ifNotExists) return ['create_materialized_view', name, '0', null];
      throw new PuffinError('conflict', `table '${name}' already exists`);
    }
    const root = await this.expanded(st.query);
    const sql = (await printNodes(this.host.engine, [root.node]))[0];
    const sources = await this.sourcesOf(root);
    if (sources.length === 0) throw new PuffinError('bad_request', `materialized view ${name} reads no table; a materialized view reflects tables`);
    const plan = await this.host.explain(sql, { role: options.role, signal: options.signal });
    const strategy = await this.strategy(root, sources, plan.output);
    // Iceberg has no 128-bit integers: sum() of integers is stored as DECIMAL(38,0).
    const stored = plan.output.map((c) => ({ name: c.name, type: /^U?HUGEINT$/i.test(c.type) ? 'DECIMAL(38,0)' : c.type }));
    const pinned = stored.some((c, i) => c.type !== plan.output[i].type) ? castTo(await this.pinnedSql(root, sources), stored) : await this.pinnedSql(root, sources);
    const ran = await this.host.query(`CREATE TABLE ${qualified(name)}${st.partitionBy ? ` PARTITIONED BY (${st.partitionBy})` : ''} AS ${pinned}`, { ...options, plan: undefined, queryId: undefined });
    const rows = String(ran.rows[0]?.[2] ?? '0');
    const snapshotId = (ran.rows[0]?.[3] as string | null) ?? null;
    const entry = { at: new Date().toISOString(), mode: 'full', rowsAdded: Number(rows), sources, snapshotId, reason: 'created' };
    await commitMetadataChange(store, io, name, (m) => ({
      ...m,
      properties: {
        ...m.properties,
        [MV_SQL]: sql,
        [MV_SOURCES]: JSON.stringify(sources),
        [MV_STRATEGY]: JSON.stringify(strategy),
        ...(st.partitionBy ? { [MV_PARTITION_BY]: st.partitionBy } : {}),
        [MV_LAST_REFRESH]: JSON.stringify(entry),
        [MV_HISTORY]: JSON.stringify([entry]),
      },
    }));
    return ['create_materialized_view', name, rows, snapshotId];
  }

  private async drop(name: string, ifExists: boolean, options: QueryOptions): Promise<(string | null)[]> {
    const { store, io } = this.context();
    const key = name.toLowerCase();
    if ((await store.get(key)) === undefined) {
      if (ifExists) return ['drop_materialized_view', key, '0', null];
      const plain = await this.context().catalog.getView(key);
      throw new PuffinError('unknown_table', plain ? `${key} is a view, not a materialized view (DROP VIEW drops it)` : `unknown materialized view '${key}'`);
    }
    const t = await loadTable(store, key, io);
    if (t.metadata.properties[MV_SQL] === undefined) throw new PuffinError('bad_request', `${key} is a table, not a materialized view (DROP TABLE drops it)`);
    await this.host.query(`DROP TABLE ${qualified(key)} PURGE`, { ...options, plan: undefined, queryId: undefined });
    return ['drop_materialized_view', key, '0', null];
  }

  /** What refresh can do for this query: append, merge by group, or recompute. */
  private async strategy(root: AstNode, sources: readonly MvSource[], output: readonly Column[]): Promise<Strategy> {
    const node = root.node as AstNode;
    if (!sources.some((s) => s.kind === 'iceberg')) return { kind: 'full', why: 'it reads no Iceberg table (no append history)' };
    if (node.type !== 'SELECT_NODE') return { kind: 'full', why: 'its query is not a single SELECT' };
    if (node.cte_map?.map?.length) return { kind: 'full', why: 'its query has a WITH clause' };
    // One table, or inner joins of distinct tables: the rows new appends to ONE of them add are
    // the query with that table replaced by its new rows (a self-join or an outer join is not so).
    const refs = innerJoinedTables(node.from_table);
    if (!refs) return { kind: 'full', why: 'its query reads something other than tables joined by inner joins' };
    if (new Set(refs.map(referenceName)).size !== refs.length || refs.length !== sources.length) return { kind: 'full', why: 'its query reads a table more than once' };
    if (node.qualify || node.sample || refs.some((r) => r.sample)) return { kind: 'full', why: 'its query has QUALIFY or a sample' };
    if ((node.modifiers ?? []).some((m: AstNode) => m.type !== 'ORDER_MODIFIER')) return { kind: 'full', why: 'its query has DISTINCT or LIMIT' };
    if (someNode(node, (n) => n.class === 'WINDOW' || n.class === 'SUBQUERY')) return { kind: 'full', why: 'its query has a window or a subquery' };
    if (someNode(node, (n) => n.type === 'BASE_TABLE' && !('class' in n) && Boolean(n.at_clause))) return { kind: 'full', why: 'its query reads a table AT a version' };
    const aggregates = await this.aggregates();
    const isAggregate = (e: AstNode): boolean => someNode(e, (n) => n.class === 'FUNCTION' && aggregates.has(String(n.function_name).toLowerCase()));
    const items = node.select_list as AstNode[];
    const grouped = (node.group_expressions?.length ?? 0) > 0 || node.aggregate_handling !== 'STANDARD_HANDLING' || items.some(isAggregate);
    if (!grouped) return node.having ? { kind: 'full', why: 'HAVING' } : { kind: 'append' };
    if (node.having) return { kind: 'full', why: 'its query has HAVING' };
    if ((node.group_sets?.length ?? 0) > 1) return { kind: 'full', why: 'its query has grouping sets' };
    if (node.aggregate_handling !== 'STANDARD_HANDLING' && node.aggregate_handling !== 'FORCE_AGGREGATES') return { kind: 'full', why: 'its aggregation is not a plain GROUP BY' };
    if (items.length !== output.length) return { kind: 'full', why: 'its columns could not be matched to its select list' };
    const keys: number[] = [];
    const aggs: { index: number; op: 'sum' | 'count' | 'min' | 'max' }[] = [];
    for (const [index, e] of items.entries()) {
      if (e.class === 'STAR') return { kind: 'full', why: 'a * in an aggregate query' };
      if (!isAggregate(e)) {
        keys.push(index);
        continue;
      }
      const op = e.class === 'FUNCTION' ? MERGEABLE[String(e.function_name).toLowerCase()] : undefined;
      const plain = op && !e.distinct && !e.filter && !(e.order_bys?.orders?.length) && !(e.children ?? []).some(isAggregate);
      if (!plain) return { kind: 'full', why: `${String(e.function_name ?? 'an expression')}(...) is not merged by group (count, sum, min and max are)` };
      aggs.push({ index, op });
    }
    // Every group expression must be a column of the view, or merged rows could not be matched.
    const keyExprs = keys.map((k) => items[k]);
    for (const g of node.group_expressions ?? []) {
      const position = g.class === 'CONSTANT' && typeof g.value?.value === 'number' ? g.value.value - 1 : undefined;
      const named = g.class === 'COLUMN_REF' && g.column_names?.length === 1 ? keyExprs.some((k) => String(k.alias).toLowerCase() === String(g.column_names[0]).toLowerCase()) : false;
      if (!(position !== undefined && keys.includes(position)) && !named && !keyExprs.some((k) => exprKey(k) === exprKey(g))) {
        return { kind: 'full', why: 'a GROUP BY expression is not one of its columns' };
      }
    }
    return { kind: 'merge', keys, aggregates: aggs };
  }

  private aggregates(): Promise<Set<string>> {
    this.aggregateNames ??= this.host.engine
      .query("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'")
      .then((r) => new Set(r.rows.map((x) => String(x[0]).toLowerCase())));
    return this.aggregateNames;
  }

  private async refresh(name: string, options: QueryOptions): Promise<(string | null)[]> {
    const { catalog, store, io } = this.context();
    const key = name.toLowerCase();
    if ((await store.get(key)) === undefined) throw new PuffinError('unknown_table', `unknown materialized view '${key}'`);
    const view = await loadTable(store, key, io);
    const props = view.metadata.properties;
    const sql = props[MV_SQL];
    if (sql === undefined) throw new PuffinError('bad_request', `${key} is a table, not a materialized view`);
    const strategy = JSON.parse(props[MV_STRATEGY] ?? '{"kind":"full","why":"unknown"}') as Strategy;
    const current = view.metadata.snapshots.find((s) => s.snapshotId === view.metadata.currentSnapshotId);
    // The data commit's own record first: properties are written just after it.
    const recorded = JSON.parse(current?.summary[MV_SOURCES] ?? props[MV_SOURCES] ?? '[]') as MvSource[];
    const root = (await parseStatement(this.host.engine, sql)).statement;
    const now = await this.sourcesOf(root);
    const gone = recorded.find((r) => !now.some((s) => s.table === r.table));
    if (gone) throw new PuffinError('unknown_table', `materialized view ${key} reads table ${gone.table}, which no longer exists`);
    const changed = now.filter((s) => recorded.find((r) => r.table === s.table)?.snapshotId !== s.snapshotId);

    let mode: 'incremental' | 'full' = 'full';
    let reason: string;
    let rowsAdded = 0;
    let snapshotId: string | null = view.metadata.currentSnapshotId === null ? null : String(view.metadata.currentSnapshotId);
    if (changed.length === 0) {
      mode = 'incremental';
      reason = 'no source changed since the last refresh';
    } else {
      const appended = strategy.kind !== 'full' && changed.length === 1 ? await this.appendedFiles(changed[0], recorded.find((r) => r.table === changed[0].table)) : undefined;
      const partitionBy = props[MV_PARTITION_BY];
      if (strategy.kind !== 'full' && appended && typeof appended !== 'string') {
        mode = 'incremental';
        const pin = `__mv_delta_${randomBytes(6).toString('hex')}`;
        catalog.pinSnapshot(pin, toTableSnapshot(pin, { ...appended.scan, snapshotId: `mvdelta:${appended.from}:${appended.scan.snapshotId}`, dataFiles: appended.files }));
        try {
          const delta = await this.deltaSql(root, changed[0].table, pin, now);
          if (strategy.kind === 'append') {
            const staged = await this.stage(key, partitionBy, castTo(delta, await this.storedColumns(key)), options);
            rowsAdded = staged.rows;
            snapshotId = await this.commit(view, staged, 'append', now, 'incremental');
            reason = `appended the view's rows over ${appended.files.length} data file(s) added to ${changed[0].table}`;
          } else {
            const merged = await this.mergeSql(key, strategy, delta);
            const deltaRows = Number((await this.host.query(`SELECT count(*) FROM (${delta}) AS __d`, { ...options, plan: undefined, queryId: undefined })).rows[0]?.[0] ?? 0);
            const staged = await this.stage(key, partitionBy, merged, options);
            rowsAdded = deltaRows;
            snapshotId = await this.commit(view, staged, 'overwrite', now, 'incremental');
            reason = `merged ${deltaRows} group row(s) computed over ${appended.files.length} data file(s) added to ${changed[0].table} with the stored groups`;
          }
        } finally {
          catalog.unpinSnapshot(pin);
        }
      } else {
        const why = strategy.kind === 'full' ? strategy.why : changed.length > 1 ? `${changed.length} sources changed` : typeof appended === 'string' ? appended : 'its source changed';
        const staged = await this.stage(key, partitionBy, castTo(await this.pinnedSql(root, now), await this.storedColumns(key)), options);
        rowsAdded = staged.rows;
        snapshotId = await this.commit(view, staged, 'overwrite', now, 'full');
        reason = `recomputed: ${why}`;
      }
    }
    const entry = { at: new Date().toISOString(), mode, rowsAdded, sources: now, snapshotId, reason };
    if (changed.length > 0) {
      await commitMetadataChange(store, io, key, (m) => {
        const history = JSON.parse(m.properties[MV_HISTORY] ?? '[]') as unknown[];
        return { ...m, properties: { ...m.properties, [MV_SOURCES]: JSON.stringify(now), [MV_LAST_REFRESH]: JSON.stringify(entry), [MV_HISTORY]: JSON.stringify([...history, entry].slice(-HISTORY_KEPT)) } };
      });
    }
    return [key, mode, String(rowsAdded), JSON.stringify(now.map((s) => ({ table: s.table, snapshot_id: s.snapshotId }))), snapshotId, reason];
  }

  /**
   * The data files a source's snapshots after `recorded` added, when every one of them is an
   * append; else why not (a string).
   */
  private async appendedFiles(source: MvSource, recorded: MvSource | undefined): Promise<{ scan: IcebergScan; files: IcebergScan['dataFiles']; from: string } | string> {
    const { catalog, store, io } = this.context();
    if (!recorded) return `${source.table} was not a source before`;
    if (source.kind !== 'iceberg' || !/^\d+$/.test(source.snapshotId)) return `${source.table} has no snapshot history`;
    const t = await loadTable(store, source.table, io);
    const byId = new Map(t.metadata.snapshots.map((s) => [String(s.snapshotId), s]));
    const fromEmpty = !/^\d+$/.test(recorded.snapshotId);
    let at = byId.get(source.snapshotId);
    while (at && String(at.snapshotId) !== recorded.snapshotId) {
      const op = at.summary.operation ?? 'unknown';
      if (op !== 'append') return `${source.table} had a '${op}' (snapshot ${String(at.snapshotId)}) since the last refresh`;
      at = at.parentSnapshotId === undefined ? undefined : byId.get(String(at.parentSnapshotId));
    }
    if (!at && !fromEmpty) return `the recorded snapshot of ${source.table} is no longer in its history`;
    const scan = await catalog.scanIceberg(source.table, { snapshotId: source.snapshotId });
    const before = fromEmpty ? new Set<string>() : new Set((await catalog.scanIceberg(source.table, { snapshotId: recorded.snapshotId })).dataFiles.map((f) => f.path));
    const files = scan.dataFiles.filter((f) => !before.has(f.path));
    if (files.some((f) => f.deletes.length > 0)) return `files added to ${source.table} have delete files`;
    return { scan, files, from: recorded.snapshotId };
  }

  /** The view's query with its one source replaced by the pinned delta table (keeping the name as alias). */
  private async deltaSql(root: AstNode, source: string, pin: string, sources: readonly MvSource[]): Promise<string> {
    // The other tables (unchanged since the last refresh) are read at the snapshots recorded now.
    const copy = (await parseStatement(this.host.engine, await this.pinnedSql(root, sources.filter((s) => s.table !== source)))).statement;
    forEachTable(copy, (node) => {
      if (referenceName(node) !== source) return;
      if (!node.alias) node.alias = String(node.table_name);
      node.table_name = pin;
      node.schema_name = '';
      node.catalog_name = '';
      node.at_clause = null;
    });
    return (await printNodes(this.host.engine, [copy.node]))[0];
  }

  /** The view table's columns (what every refresh writes, so its files match the table's schema). */
  private async storedColumns(view: string): Promise<Column[]> {
    const table = await this.host.catalog.getTable(view);
    if (!table) throw new PuffinError('unknown_table', `unknown materialized view '${view}'`);
    return table.columns;
  }

  /** The stored rows merged with the delta's rows by group, in the view's columns and types. */
  private async mergeSql(view: string, strategy: Extract<Strategy, { kind: 'merge' }>, delta: string): Promise<string> {
    const table = await this.host.catalog.getTable(view);
    if (!table) throw new PuffinError('unknown_table', `unknown materialized view '${view}'`);
    const cols = table.columns;
    const ref = (side: string, i: number) => `${side}.${sqlIdent(cols[i].name)}`;
    const select = cols.map((c, i) => {
      const s = ref('__s', i);
      const n = ref('__n', i);
      const agg = strategy.aggregates.find((a) => a.index === i);
      let e: string;
      if (!agg) e = `coalesce(${s}, ${n})`;
      else if (agg.op === 'sum') e = `CASE WHEN ${s} IS NULL THEN ${n} WHEN ${n} IS NULL THEN ${s} ELSE ${s} + ${n} END`;
      else if (agg.op === 'count') e = `coalesce(${s}, 0) + coalesce(${n}, 0)`;
      else e = `${agg.op === 'min' ? 'least' : 'greatest'}(${s}, ${n})`;
      return `CAST(${e} AS ${c.type}) AS ${sqlIdent(c.name)}`;
    });
    // A group seen on one side only keeps that side's keys; NULL groups match each other.
    const on = strategy.keys.length ? strategy.keys.map((k) => `${ref('__s', k)} IS NOT DISTINCT FROM ${ref('__n', k)}`).join(' AND ') : 'true';
    const names = cols.map((c) => sqlIdent(c.name)).join(', ');
    return `SELECT ${select.join(', ')} FROM ${qualified(view)} AS __s FULL OUTER JOIN (${delta}) AS __n(${names}) ON ${on}`;
  }

  /** Write `sql`'s rows as a hidden table's data files (a CTAS, distributed); the caller commits them elsewhere. */
  private async stage(view: string, partitionBy: string | undefined, sql: string, options: QueryOptions): Promise<{ name: string; rows: number; table: LoadedTable }> {
    const { store, io } = this.context();
    const name = `${view}__mv_refresh_${randomBytes(5).toString('hex')}`;
    const ran = await this.host.query(`CREATE TABLE ${qualified(name)}${partitionBy ? ` PARTITIONED BY (${partitionBy})` : ''} AS ${sql}`, { ...options, plan: undefined, queryId: undefined });
    return { name, rows: Number(ran.rows[0]?.[2] ?? 0), table: await loadTable(store, name, io) };
  }

  /**
   * Commit the staged files to the view's table in one snapshot (recording its sources), then
   * forget the staging table. Only on the version of the view the refresh read (one attempt):
   * a refresh that raced another fails with a conflict rather than append the same rows twice.
   */
  private async commit(view: LoadedTable, staged: { name: string; table: LoadedTable }, operation: 'append' | 'overwrite', sources: readonly MvSource[], mode: string): Promise<string | null> {
    const { store, io } = this.context();
    try {
      const files = [...(await liveDataFileInfos(io, staged.table)).values()].map((f) => f.info);
      const summary = { [MV_SOURCES]: JSON.stringify(sources), 'puffindb.mv.refresh-mode': mode };
      if (operation === 'append') {
        if (files.length === 0) return view.metadata.currentSnapshotId === null ? null : String(view.metadata.currentSnapshotId);
        return String((await commitTable(store, view.name, { operation: 'append', files }, { io, base: view, summary, maxAttempts: 1 })).snapshotId);
      }
      const removed = [...(await liveDataFileInfos(io, view)).keys()];
      if (files.length === 0 && removed.length === 0) return view.metadata.currentSnapshotId === null ? null : String(view.metadata.currentSnapshotId);
      return String((await commitTable(store, view.name, { operation: 'overwrite', added: files, removed }, { io, base: view, summary, maxAttempts: 1 })).snapshotId);
    } finally {
      // Its files now belong to the view; only its pointer goes.
      await store.remove(staged.name, staged.table.metadataLocation).catch(() => undefined);
    }
  }
}

/** `sql`'s rows as `columns` (by position): names and types of the view's table. */
function castTo(sql: string, columns: readonly Column[]): string {
  const names = columns.map((c, i) => sqlIdent(`__c${i}`)).join(', ');
  return `SELECT ${columns.map((c, i) => `CAST(__mv.${sqlIdent(`__c${i}`)} AS ${c.type}) AS ${sqlIdent(c.name)}`).join(', ')} FROM (${sql}) AS __mv(${names})`;
}

function qualified(name: string): string {
  return name.split('.').map(sqlIdent).join('.');
}

/** The tables of a FROM clause that is one table or inner/cross joins of tables; undefined otherwise. */
function innerJoinedTables(from: AstNode | null | undefined): AstNode[] | undefined {
  if (from?.type === 'BASE_TABLE' && !('class' in from)) return [from];
  if (from?.type !== 'JOIN' || from.join_type !== 'INNER' || !['REGULAR', 'CROSS'].includes(String(from.ref_type))) return undefined;
  const left = innerJoinedTables(from.left);
  const right = innerJoinedTables(from.right);
  return left && right ? [...left, ...right] : undefined;
}

function someNode(value: unknown, pred: (n: AstNode) => boolean): boolean {
  if (Array.isArray(value)) return value.some((v) => someNode(v, pred));
  if (!value || typeof value !== 'object') return false;
  const n = value as AstNode;
  if (pred(n)) return true;
  return Object.keys(n).some((k) => someNode(n[k], pred));
}

function forEachTable(value: unknown, fn: (node: AstNode) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) forEachTable(v, fn);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const n = value as AstNode;
  if (n.type === 'BASE_TABLE' && !('class' in n)) {
    fn(n);
    return;
  }
  for (const k of Object.keys(n)) forEachTable(n[k], fn);
}
