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
//
// One refresh of a view runs at a time across processes and Lambdas: a refresh holds the
// lease `puffindb:mv-refresh:<view>` in the state store (renewed while it runs, lapsing
// when its holder dies), and checks it is still held before each commit (the fence; the
// commit is also a compare-and-swap on the version of the view it read). Every refresh that
// starts, succeeded or failed, is recorded in `puffindb.refreshes` (runtime/exec/pipeline-log.ts)
// under the query id it ran as. ALTER MATERIALIZED VIEW v SET REFRESH EVERY '<interval>' keeps
// a schedule in the properties, which the control plane runs (runtime/exec/pipelines.ts).

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
import type { Catalog } from '../catalog/types.ts';
import { MemoryStateStore } from '../state/memory-store.ts';
import type { Lease, StateStore } from '../state/state-store.ts';
import { openStore } from '../storage/open.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { recordRefresh, type MaterializedViewStatus, type RefreshRecord, type SourceSnapshot } from './pipeline-log.ts';

export const MV_SQL = 'puffindb.mv.sql';
export const MV_SOURCES = 'puffindb.mv.sources';
export const MV_STRATEGY = 'puffindb.mv.refresh';
export const MV_PARTITION_BY = 'puffindb.mv.partition-by';
export const MV_LAST_REFRESH = 'puffindb.mv.last-refresh';
export const MV_HISTORY = 'puffindb.mv.refreshes';
export const MV_SCHEDULE = 'puffindb.mv.schedule';
const HISTORY_KEPT = 20;
/** A refresh's lease: renewed every third of it while the refresh runs, so a dead holder's lapses within it. */
export const REFRESH_LEASE_MS = 60_000;
/** The shortest schedule: the control plane (and the stack's EventBridge rule) checks once a minute. */
const MIN_INTERVAL_MS = 60_000;

/** The state-store lock key of a view's refresh. */
export function refreshLockKey(view: string): string {
  return `puffindb:mv-refresh:${view.toLowerCase()}`;
}

/** A view's refresh schedule, as its properties keep it. */
export interface RefreshSchedule {
  /** As written, e.g. '15 minutes'. */
  every: string;
  everyMs: number;
  /** When it was set (ms since the epoch): due times are since + k * everyMs. */
  since: number;
}

const UNIT_MS: Record<string, number> = { second: 1_000, minute: 60_000, min: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000 };

/** '15 minutes', '1 hour 30 minutes', '2 days' as milliseconds; bad_request otherwise or under a minute. */
export function parseRefreshInterval(text: string): number {
  const parts = [...text.trim().toLowerCase().matchAll(/(\d+)\s*([a-z]+)\s*/g)];
  const consumed = parts.map((m) => m[0]).join('');
  let ms = 0;
  for (const m of parts) {
    const unit = UNIT_MS[m[2].replace(/s$/, '')];
    if (!unit) { ms = NaN; break; }
    ms += Number(m[1]) * unit;
  }
  if (parts.length === 0 || consumed.length !== text.trim().length || !Number.isFinite(ms)) {
    throw new PuffinError('bad_request', `refresh interval '${text}' is not an interval like '15 minutes', '1 hour' or '1 day' (units: seconds, minutes, hours, days, weeks)`);
  }
  if (ms < MIN_INTERVAL_MS) throw new PuffinError('bad_request', `refresh interval '${text}' is under a minute; schedules are checked once a minute`);
  if (ms > 366 * 86_400_000) throw new PuffinError('bad_request', `refresh interval '${text}' is over a year`);
  return ms;
}

/** The latest due time of `schedule` at `now`, or undefined before the first one. */
export function latestDue(schedule: RefreshSchedule, now: number): number | undefined {
  if (now - schedule.since < schedule.everyMs) return undefined;
  return schedule.since + Math.floor((now - schedule.since) / schedule.everyMs) * schedule.everyMs;
}

/** Who started a refresh, and under which lease (a caller that holds it already: the pipelines). */
export interface RefreshRun {
  trigger: 'statement' | 'schedule';
  dueAt?: number;
  lease?: Lease;
}

/** A materialized view as stored: its name and loaded table. */
interface StoredView {
  name: string;
  table: LoadedTable;
}

/** Every materialized view kept by `store` (tables whose properties hold a view query). */
async function storedViews(store: PointerStore, io: TableIO): Promise<StoredView[]> {
  const out: StoredView[] = [];
  for (const p of await store.list()) {
    const table = await loadTable(store, p.name, io).catch(() => undefined);
    if (table && table.metadata.properties[MV_SQL] !== undefined) out.push({ name: p.name, table });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function scheduleOf(table: LoadedTable): RefreshSchedule | undefined {
  const raw = table.metadata.properties[MV_SCHEDULE];
  return raw ? (JSON.parse(raw) as RefreshSchedule) : undefined;
}

/** The sources a view's data reflects: its data commit's own record first (properties are written just after it). */
function reflectedSources(table: LoadedTable): MvSource[] {
  const current = table.metadata.snapshots.find((s) => s.snapshotId === table.metadata.currentSnapshotId);
  return JSON.parse(current?.summary[MV_SOURCES] ?? table.metadata.properties[MV_SOURCES] ?? '[]') as MvSource[];
}

const shown = (sources: readonly MvSource[]): SourceSnapshot[] => sources.map((s) => ({ table: s.table, snapshot_id: s.snapshotId }));

/**
 * Every materialized view of `catalog` (its Iceberg pointers) with the source snapshots it
 * reflects against their current ones: what `puffindb.materialized_views` lists.
 */
export async function materializedViewStatus(catalog: Catalog, io: TableIO, now = Date.now()): Promise<MaterializedViewStatus[]> {
  if (!catalog.pointers) return [];
  const out: MaterializedViewStatus[] = [];
  for (const v of await storedViews(catalog.pointers, io)) {
    const reflected = reflectedSources(v.table);
    const current: MvSource[] = [];
    for (const r of reflected) {
      const t = await catalog.getTable(r.table).catch(() => undefined);
      current.push({ table: r.table, snapshotId: t ? t.snapshotId : '(dropped)', kind: t?.kind ?? r.kind });
    }
    const stale = current.some((c, i) => c.snapshotId !== reflected[i].snapshotId);
    const last = v.table.metadata.properties[MV_LAST_REFRESH] ? (JSON.parse(v.table.metadata.properties[MV_LAST_REFRESH]) as { at?: string; mode?: string }) : undefined;
    const strategy = JSON.parse(v.table.metadata.properties[MV_STRATEGY] ?? '{"kind":"full"}') as Strategy;
    const schedule = scheduleOf(v.table);
    const due = schedule ? (latestDue(schedule, now) ?? schedule.since) + schedule.everyMs : null;
    out.push({
      view: v.name,
      stale,
      sourcesReflected: shown(reflected),
      sourcesCurrent: shown(current),
      strategy: strategy.kind === 'full' ? `full (${strategy.why})` : strategy.kind === 'append' ? 'incremental (append)' : 'incremental (merge by group)',
      lastRefreshAt: last?.at ?? null,
      lastRefreshMode: last?.mode ?? null,
      schedule: schedule?.every ?? null,
      nextDueAt: due,
      snapshotId: v.table.metadata.currentSnapshotId === null ? null : String(v.table.metadata.currentSnapshotId),
    });
  }
  return out;
}

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
  { name: 'refresh_id', type: 'VARCHAR' },
];

const MERGEABLE: Record<string, 'sum' | 'count' | 'min' | 'max'> = { sum: 'sum', count: 'count', count_star: 'count', min: 'min', max: 'max' };

export class MaterializedViews {
  private aggregateNames?: Promise<Set<string>>;
  /** Refresh leases: the host's state store, else this process's own. */
  readonly leases: StateStore;
  private warehouseStore?: ObjectStore;

  constructor(
    private readonly host: ViewHost,
    /** Parse a query and refuse calls queries may not make (ViewStatements'). */
    private readonly parseQuery: (sql: string) => Promise<AstNode>,
  ) {
    this.leases = host.state ?? new MemoryStateStore();
  }

  /** Where refresh records are stored (the warehouse). */
  warehouse(): ObjectStore {
    return (this.warehouseStore ??= openStore(this.host.settings.warehouse, storeOptionsOf(this.host.settings)));
  }

  /** The views that have a refresh schedule, with it. */
  async scheduled(): Promise<{ view: string; schedule: RefreshSchedule }[]> {
    const { store, io } = this.context();
    return (await storedViews(store, io)).flatMap((v) => {
      const schedule = scheduleOf(v.table);
      return schedule ? [{ view: v.name, schedule }] : [];
    });
  }

  /** A view's schedule now (read again: the pipelines check it under the lease). */
  async scheduleOf(view: string): Promise<RefreshSchedule | undefined> {
    const { store, io } = this.context();
    if ((await store.get(view.toLowerCase())) === undefined) return undefined;
    return scheduleOf(await loadTable(store, view.toLowerCase(), io));
  }

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
      row = await this.refresh(st.name, { ...options, queryId }, { trigger: 'statement' });
    } else if (st.kind === 'alter_materialized_view') {
      row = await this.alter(st.name, st.every);
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

  /** SET REFRESH EVERY '<interval>' (kept in the view's properties) or SET REFRESH MANUAL (removed). */
  private async alter(name: string, every: string | null): Promise<(string | null)[]> {
    const { store, io } = this.context();
    const key = name.toLowerCase();
    await this.viewTable(key);
    const schedule: RefreshSchedule | undefined = every === null ? undefined : { every: every.trim(), everyMs: parseRefreshInterval(every), since: Date.now() };
    await commitMetadataChange(store, io, key, (m) => {
      const properties = { ...m.properties };
      if (schedule) properties[MV_SCHEDULE] = JSON.stringify(schedule);
      else delete properties[MV_SCHEDULE];
      return { ...m, properties };
    });
    return ['alter_materialized_view', key, '0', null];
  }

  /** The view's table; unknown_table / bad_request when there is none or it is a plain table. */
  private async viewTable(key: string): Promise<LoadedTable> {
    const { store, io } = this.context();
    if ((await store.get(key)) === undefined) throw new PuffinError('unknown_table', `unknown materialized view '${key}'`);
    const view = await loadTable(store, key, io);
    if (view.metadata.properties[MV_SQL] === undefined) throw new PuffinError('bad_request', `${key} is a table, not a materialized view`);
    return view;
  }

  /**
   * Refresh a view under its lease (acquired here unless `run` brings it) and record the
   * refresh, succeeded or failed, in `puffindb.refreshes`. Answers REFRESH's row.
   */
  async refresh(name: string, options: QueryOptions, run: RefreshRun): Promise<(string | null)[]> {
    const key = name.toLowerCase();
    await this.viewTable(key);
    let lease = run.lease ?? (await this.leases.acquireLock(refreshLockKey(key), REFRESH_LEASE_MS));
    if (!lease) throw new PuffinError('conflict', `a refresh of materialized view ${key} is running (another process holds its lease); try again when it ends`);
    const renewing = setInterval(() => {
      if (lease) void this.leases.renewLock(lease, REFRESH_LEASE_MS).then((l) => { if (l) lease = l; }, () => undefined);
    }, REFRESH_LEASE_MS / 3);
    renewing.unref();
    const fence = async (): Promise<void> => {
      const held = lease ? await this.leases.renewLock(lease, REFRESH_LEASE_MS) : undefined;
      if (!held) throw new PuffinError('conflict', `the refresh of ${key} lost its lease (it ran past ${REFRESH_LEASE_MS} ms without renewing, or another process took it); nothing was committed`);
      lease = held;
    };
    const startedAt = Date.now();
    const refreshId = ulid(startedAt);
    const seen: { before: MvSource[]; read: MvSource[] } = { before: [], read: [] };
    const base = { refreshId, view: key, queryId: options.queryId ?? refreshId, trigger: run.trigger, ...(run.dueAt !== undefined ? { dueAt: run.dueAt } : {}), startedAt };
    try {
      const row = await this.refreshUnder(key, options, fence, seen);
      await this.record({ ...base, finishedAt: Date.now(), status: 'succeeded', mode: row[1] as 'incremental' | 'full', rowsAdded: Number(row[2]), sourcesRead: shown(seen.read), sourcesBefore: shown(seen.before), snapshotId: row[4], reason: row[5], error: null });
      return [...row, refreshId];
    } catch (err) {
      const e = err instanceof PuffinError ? err : new PuffinError('internal', (err as Error).message ?? String(err));
      await this.record({ ...base, finishedAt: Date.now(), status: 'failed', mode: null, rowsAdded: 0, sourcesRead: shown(seen.read), sourcesBefore: shown(seen.before), snapshotId: null, reason: null, error: `${e.code}: ${e.message}` });
      throw err;
    } finally {
      clearInterval(renewing);
      if (!run.lease && lease) await this.leases.releaseLock(lease).catch(() => undefined);
    }
  }

  /** A record that could not be stored does not fail the refresh it describes (it is said on stderr). */
  private async record(record: RefreshRecord): Promise<void> {
    await recordRefresh(this.warehouse(), record).catch((err: unknown) => {
      console.error(JSON.stringify({ level: 'error', message: 'refresh record', view: record.view, refreshId: record.refreshId, error: String(err) }));
    });
  }

  private async refreshUnder(key: string, options: QueryOptions, fence: () => Promise<void>, seen: { before: MvSource[]; read: MvSource[] }): Promise<(string | null)[]> {
    const { catalog, store, io } = this.context();
    const view = await this.viewTable(key);
    const props = view.metadata.properties;
    const sql = props[MV_SQL];
    const strategy = JSON.parse(props[MV_STRATEGY] ?? '{"kind":"full","why":"unknown"}') as Strategy;
    const current = view.metadata.snapshots.find((s) => s.snapshotId === view.metadata.currentSnapshotId);
    // The data commit's own record first: properties are written just after it.
    const recorded = JSON.parse(current?.summary[MV_SOURCES] ?? props[MV_SOURCES] ?? '[]') as MvSource[];
    seen.before = recorded;
    const root = (await parseStatement(this.host.engine, sql)).statement;
    const now = await this.sourcesOf(root);
    seen.read = now;
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
            snapshotId = await this.commit(view, staged, 'append', now, 'incremental', fence);
            reason = `appended the view's rows over ${appended.files.length} data file(s) added to ${changed[0].table}`;
          } else {
            const merged = await this.mergeSql(key, strategy, delta);
            const deltaRows = Number((await this.host.query(`SELECT count(*) FROM (${delta}) AS __d`, { ...options, plan: undefined, queryId: undefined })).rows[0]?.[0] ?? 0);
            const staged = await this.stage(key, partitionBy, merged, options);
            rowsAdded = deltaRows;
            snapshotId = await this.commit(view, staged, 'overwrite', now, 'incremental', fence);
            reason = `merged ${deltaRows} group row(s) computed over ${appended.files.length} data file(s) added to ${changed[0].table} with the stored groups`;
          }
        } finally {
          catalog.unpinSnapshot(pin);
        }
      } else {
        const why = strategy.kind === 'full' ? strategy.why : changed.length > 1 ? `${changed.length} sources changed` : typeof appended === 'string' ? appended : 'its source changed';
        const staged = await this.stage(key, partitionBy, castTo(await this.pinnedSql(root, now), await this.storedColumns(key)), options);
        rowsAdded = staged.rows;
        snapshotId = await this.commit(view, staged, 'overwrite', now, 'full', fence);
        reason = `recomputed: ${why}`;
      }
    }
    const entry = { at: new Date().toISOString(), mode, rowsAdded, sources: now, snapshotId, reason };
    if (changed.length > 0) {
      await fence();
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
  private async commit(view: LoadedTable, staged: { name: string; table: LoadedTable }, operation: 'append' | 'overwrite', sources: readonly MvSource[], mode: string, fence: () => Promise<void>): Promise<string | null> {
    const { store, io } = this.context();
    try {
      await fence();
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
