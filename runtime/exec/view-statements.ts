// Views in the query path (runtime/sql/views.ts defines and expands them): CREATE [OR
// REPLACE] VIEW and DROP VIEW keep definitions in the warehouse catalog (beside the tables:
// local files, or Redis with the tables' pointers); every SELECT that names a view is
// expanded before it is planned; materialized views (CREATE / REFRESH / DROP MATERIALIZED
// VIEW) are Iceberg tables kept by runtime/exec/materialized-views.ts.
//
// A view is checked when it is created: its query must parse, make no call queries may not
// make (the planner's refuseUnsafeCalls), refer to no view that leads back to it, and bind
// (the planner's explain of it, with the creator's role); its columns are recorded then.
// Reading a view is reading its query: the caller's role applies to the tables it reads.

import { ulid } from 'ulid';
import type { Catalog, Column, TableSnapshot } from '../catalog/types.ts';
import type { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { Plan } from '../planner/plan.ts';
import { refuseUnsafeCalls } from '../planner/scope.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import { parseStatement, printNodes, type AstNode } from '../sql/parse.ts';
import { expandViews, parseViewStatement, referencedNames, type ViewDefinition, type ViewStatement } from '../sql/views.ts';
import { mentionsVolatile } from '../sql/volatile.ts';
import { MaterializedViews } from './materialized-views.ts';
import { parseCopy } from './copy-to.ts';
import { parseWrite } from '../planner/write-planner.ts';
import { warehouseCatalogOf } from '../catalog/warehouse-catalog.ts';
import type { QueryOptions, QueryOutcome } from './query-service.ts';
import type { Settings } from '../settings.ts';
import type { StateStore } from '../state/state-store.ts';

/** What a catalog that keeps views offers (the warehouse catalog). */
export interface ViewCatalog extends Catalog {
  listViews(): Promise<ViewDefinition[]>;
  getView(name: string): Promise<ViewDefinition | undefined>;
  putView(view: ViewDefinition, replace: boolean): Promise<void>;
  dropView(name: string): Promise<boolean>;
  pinSnapshot(name: string, snapshot: TableSnapshot): void;
  unpinSnapshot(name: string): void;
}

/** The catalog keeping `catalog`'s views: itself, or the warehouse catalog under a wrapper (withQueryLogTable). */
export function viewCatalogOf(catalog: Catalog): ViewCatalog | undefined {
  const own = catalog as Partial<ViewCatalog>;
  if (typeof own.listViews === 'function' && typeof own.putView === 'function') return catalog as ViewCatalog;
  return warehouseCatalogOf(catalog);
}

/** What the view statements need of the cluster they run in. */
export interface ViewHost {
  engine: Engine;
  /** Where refresh leases are held (the control plane's state store); absent: leases in this process only. */
  state?: StateStore;
  catalog: Catalog;
  settings: Settings;
  explain(sql: string, options: QueryOptions): Promise<Plan>;
  query(sql: string, options: QueryOptions): Promise<QueryOutcome>;
}

/** The one row a view statement answers (the write statements' columns). */
export const VIEW_COLUMNS: readonly Column[] = [
  { name: 'operation', type: 'VARCHAR' }, { name: 'table', type: 'VARCHAR' },
  { name: 'rows_affected', type: 'BIGINT' }, { name: 'snapshot_id', type: 'VARCHAR' },
];

export class ViewStatements {
  readonly materialized: MaterializedViews;

  constructor(private readonly host: ViewHost) {
    this.materialized = new MaterializedViews(host, (sql) => this.parseQuery(sql));
  }

  /** CREATE VIEW, DROP VIEW and the materialized-view statements. */
  static handles(statement: ClassifiedStatement): boolean {
    return statement.kind === 'create_view' || statement.kind === 'drop_view' || statement.kind === 'refresh_view';
  }

  /**
   * The statement with every view it names replaced by the view's query (the same object
   * when it names none). Only plain SELECTs: catalog statements answer from the catalog.
   */
  async expand(statement: ClassifiedStatement): Promise<ClassifiedStatement> {
    const catalog = viewCatalogOf(this.host.catalog);
    if (!catalog || statement.catalog) return statement;
    if (['insert', 'create_table', 'copy', 'merge'].includes(statement.kind)) return this.expandEmbedded(catalog, statement);
    if (statement.kind !== 'select' || !statement.parsed) return statement;
    const views = await catalog.listViews();
    if (views.length === 0) return statement;
    const byName = new Map(views.map((v) => [v.name, v]));
    if (!referencedNames(statement.parsed.statement).some((n) => byName.has(n))) return statement;
    const root = structuredClone(statement.parsed.statement) as AstNode;
    await expandViews(this.host.engine, root, { lookup: (n) => byName.get(n) });
    const [sql] = await printNodes(this.host.engine, [root.node]);
    const deterministic = statement.deterministic && !(await mentionsVolatile(this.host.engine, root.node));
    // A view calling now() or random() makes the statement naming it volatile: the caller's
    // classification says so too (the result cache asks it after explain()).
    if (!deterministic) statement.deterministic = false;
    return { ...statement, sql, text: sql, parsed: { statement: root, node: root.node }, deterministic };
  }

  /**
   * INSERT ... SELECT, CREATE TABLE ... AS SELECT, MERGE ... USING (SELECT ...) and COPY (SELECT ...) TO: the views their
   * query names expanded in the statement's text (what the write path reads). Statements
   * the write path will refuse are left for it to refuse.
   */
  private async expandEmbedded(catalog: ViewCatalog, statement: ClassifiedStatement): Promise<ClassifiedStatement> {
    const views = await catalog.listViews();
    if (views.length === 0) return statement;
    let select: string | undefined;
    try {
      if (statement.kind === 'copy') select = parseCopy(statement.text).select;
      else {
        const write = parseWrite(statement.text);
        // A table may not take a view's name (the view would hide it).
        if ((write?.kind === 'create' || write?.kind === 'ctas') && views.some((v) => v.name === write.table.toLowerCase())) {
          throw new PuffinError('conflict', `'${write.table}' is a view; a table may not have a view's name (DROP VIEW first)`);
        }
        select = write?.kind === 'insert' || write?.kind === 'ctas' ? write.select : write?.kind === 'merge' ? write.merge.sourceSql : undefined;
      }
    } catch (err) {
      if (err instanceof PuffinError && err.code === 'conflict') throw err;
      return statement;
    }
    // COPY's and MERGE's query come first (MERGE ... USING (query): a source named by a bare view name is not found here), INSERT's and CTAS's last.
    const at = select === undefined ? -1 : statement.kind === 'copy' || statement.kind === 'merge' ? statement.text.indexOf(select) : statement.text.lastIndexOf(select);
    if (select === undefined || at < 0) return statement;
    const byName = new Map(views.map((v) => [v.name, v]));
    const root = (await parseStatement(this.host.engine, select)).statement;
    if (!referencedNames(root).some((n) => byName.has(n))) return statement;
    await expandViews(this.host.engine, root, { lookup: (n) => byName.get(n) });
    const [expanded] = await printNodes(this.host.engine, [root.node]);
    return { ...statement, text: statement.text.slice(0, at) + expanded + statement.text.slice(at + select.length) };
  }

  /** The plan of a view statement (nothing runs). */
  explain(statement: ClassifiedStatement): Plan {
    const parsed = this.parse(statement);
    return viewPlan(statement.sql, `${statement.keyword} ${parsed.name}: ${describe(parsed)}`);
  }

  async run(statement: ClassifiedStatement, options: QueryOptions): Promise<QueryOutcome> {
    const started = performance.now();
    const parsed = this.parse(statement);
    const catalog = viewCatalogOf(this.host.catalog);
    if (!catalog) throw new PuffinError('unsupported', 'views need a catalog that keeps them (the warehouse catalog)');
    if (parsed.kind === 'create_materialized_view' || parsed.kind === 'refresh_materialized_view' || parsed.kind === 'alter_materialized_view' || (parsed.kind === 'drop_view' && parsed.materialized)) {
      return this.materialized.run(statement, parsed, options);
    }
    let row: (string | null)[];
    if (parsed.kind === 'create_view') {
      row = await this.create(catalog, parsed, options);
    } else {
      const dropped = await catalog.dropView(parsed.name);
      if (!dropped && !parsed.ifExists) {
        const table = await this.host.catalog.getTable(parsed.name);
        throw new PuffinError('unknown_table', table ? `${parsed.name} is a table, not a view (DROP TABLE drops it; DROP MATERIALIZED VIEW a materialized view)` : `unknown view '${parsed.name}'`);
      }
      row = ['drop_view', parsed.name, '0', null];
    }
    const totalMs = performance.now() - started;
    return {
      queryId: options.queryId ?? ulid(),
      columns: VIEW_COLUMNS.map((c) => ({ ...c })),
      rows: [row],
      plan: viewPlan(statement.sql, `${statement.keyword} ${parsed.name}: ${describe(parsed)}`),
      stats: { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: 0, executeMs: totalMs, reduceMs: 0, totalMs },
    };
  }

  private parse(statement: ClassifiedStatement): ViewStatement {
    const parsed = parseViewStatement(statement.text);
    if (!parsed) throw new PuffinError('unsupported', `${statement.keyword} is not a view statement this engine runs`);
    return parsed;
  }

  /** Parse a view's query and refuse calls queries may not make. */
  private async parseQuery(sql: string): Promise<AstNode> {
    const parsed = await parseStatement(this.host.engine, sql);
    refuseUnsafeCalls(parsed.statement);
    return parsed.statement;
  }

  private async create(catalog: ViewCatalog, st: Extract<ViewStatement, { kind: 'create_view' }>, options: QueryOptions): Promise<(string | null)[]> {
    const existing = await catalog.getView(st.name);
    if (existing && st.ifNotExists) return ['create_view', existing.name, '0', null];
    if (!existing && (await this.host.catalog.getTable(st.name))) throw new PuffinError('conflict', `'${st.name}' is a table; a view may not have a table's name`);
    const root = await this.parseQuery(st.query);
    const name = st.name.toLowerCase();
    const draft: ViewDefinition = { name, sql: st.query, columns: [], createdAt: new Date().toISOString(), ...(st.columnNames ? { columnNames: st.columnNames } : {}) };
    // With the new definition in place: does any view it reads lead back to it?
    const views = new Map((await catalog.listViews()).map((v) => [v.name, v]));
    views.set(name, draft);
    await expandViews(this.host.engine, structuredClone(root), { lookup: (n) => views.get(n), path: [name] });
    // It binds, with the creator's role (a writer may not define a view over admin-only tables).
    const plan = await this.host.explain(st.query, { role: options.role, fragments: 1, signal: options.signal, timeoutMs: options.timeoutMs });
    let columns = plan.output.map((c) => ({ name: c.name, type: c.type }));
    if (st.columnNames) {
      if (st.columnNames.length > columns.length) throw new PuffinError('binder_error', `view ${name} names ${st.columnNames.length} columns but its query has ${columns.length}`);
      columns = columns.map((c, i) => ({ ...c, name: st.columnNames![i] ?? c.name }));
    }
    let adminOnly = false;
    for (const scan of plan.scans) if ((await this.host.catalog.getTable(scan.table))?.adminOnly) adminOnly = true;
    await catalog.putView({ ...draft, columns, ...(adminOnly ? { adminOnly } : {}) }, st.replace);
    return ['create_view', name, '0', null];
  }
}

function describe(st: ViewStatement): string {
  switch (st.kind) {
    case 'create_view': return 'a view kept in the catalog; queries naming it are expanded before planning';
    case 'drop_view': return st.materialized ? 'the materialized view\'s Iceberg table is dropped with its files' : 'the view is removed from the catalog';
    case 'create_materialized_view': return 'its query is written as an Iceberg table (CTAS), with the source snapshots it reflects in the table\'s properties';
    case 'refresh_materialized_view': return 'incremental when every source only had appends (the view\'s query over the new files, appended or merged by group), else recomputed';
    case 'alter_materialized_view': return st.every === null ? 'the view\'s refresh schedule is cleared (refreshed by REFRESH statements only)' : `the control plane refreshes the view every ${st.every} (runtime/exec/pipelines.ts)`;
  }
}

export function viewPlan(sql: string, reason: string): Plan {
  return { shape: 'write', sql, output: VIEW_COLUMNS.map((c) => ({ ...c })), fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null, reason };
}

/**
 * The catalog with views as tables of no files (their recorded columns), for the catalog
 * mirror that answers DESCRIBE, SHOW TABLES and information_schema: a view over an
 * admin-only table is listed to admin callers only.
 */
export function withViewTables(catalog: Catalog): Catalog {
  const views = viewCatalogOf(catalog);
  if (!views) return catalog;
  const asTable = (v: ViewDefinition): TableSnapshot => ({
    name: v.name, kind: 'parquet', columns: v.columns.map((c) => ({ ...c })), files: [], snapshotId: `view:${v.createdAt}`, ...(v.adminOnly ? { adminOnly: true } : {}),
  });
  return {
    pointers: catalog.pointers,
    listTables: async () => [...new Set([...(await catalog.listTables()), ...(await views.listViews()).map((v) => v.name)])].sort(),
    getTable: async (name) => {
      const table = await catalog.getTable(name);
      if (table) return table;
      const view = await views.getView(name);
      return view ? asTable(view) : undefined;
    },
    ...(catalog.getTableAt ? { getTableAt: catalog.getTableAt.bind(catalog) } : {}),
  };
}
