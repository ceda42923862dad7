// Catalog statements answered from PuffinDB's catalog: DESCRIBE t, DESCRIBE SELECT ...,
// SHOW TABLES, SHOW ALL TABLES and queries over information_schema run on a catalog mirror
// (runtime/pgwire/catalog.ts: a DuckDB of its own holding one EMPTY table per catalog
// table, so DuckDB's own DESCRIBE, SHOW and information_schema give DuckDB's columns and
// shape for the catalog's tables); SUMMARIZE becomes one aggregate query over the data,
// planned and run like any other (distributed), whose one row is pivoted into SUMMARIZE's
// rows. The classifier decides what a statement is (ClassifiedStatement.catalog); this
// module only answers.
//
// Roles, as the planner has them: admin-only tables (puffindb.query_log) are in an admin
// caller's mirror only; DESCRIBE of one by another role is refused as reading it is.
// Nothing here writes: the mirror runs classified SELECTs only, with the planner's check of
// calls, external access off and its configuration locked.

import { ulid } from 'ulid';
import { performance } from 'node:perf_hooks';
import type { Catalog } from '../catalog/types.ts';
import { Engine, type QueryResult } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { CatalogMirror } from '../pgwire/catalog.ts';
import type { Plan } from '../planner/plan.ts';
import { refuseUnsafeCalls } from '../planner/scope.ts';
import { classifyStatement, type ClassifiedStatement } from '../sql/classify.ts';
import { pivotSummary, summarizedSource, summaryQuery, SUMMARY_COLUMNS } from '../sql/catalog-statements.ts';
import { withViewTables } from './view-statements.ts';
import type { CallerRole, QueryOptions, QueryOutcome, QueryService, Statement } from './query-service.ts';

/** What SUMMARIZE needs of the service it runs on: planning (for the summarized columns) and running. */
export type CatalogStatementRunner = Pick<QueryService, 'query' | 'explain'>;

export class CatalogStatements {
  private readonly mirrors = new Map<'admin' | 'other', CatalogMirror>();
  private engine?: Promise<Engine>;

  private readonly catalog: Catalog;

  constructor(catalog: Catalog) {
    // Views are described and listed like tables (their recorded columns; runtime/exec/view-statements.ts).
    this.catalog = withViewTables(catalog);
  }

  /** Whether the classifier found the statement to be one answered here. */
  static handles(statement: ClassifiedStatement): boolean {
    return statement.kind === 'select' && statement.catalog !== undefined;
  }

  /** Classify SQL text (a parser engine of its own, for callers that have none at hand). */
  async classify(statement: Statement): Promise<ClassifiedStatement> {
    if (typeof statement !== 'string') return statement;
    this.engine ??= Engine.create({ threads: 1 });
    return classifyStatement(await this.engine, statement);
  }

  /** Answer a catalog statement; undefined for any other statement (the caller runs it). */
  async query(statement: ClassifiedStatement, options: QueryOptions, runner: CatalogStatementRunner): Promise<QueryOutcome | undefined> {
    if (!CatalogStatements.handles(statement)) return undefined;
    const started = performance.now();
    const queryId = options.queryId ?? ulid();
    const role = options.role ?? 'reader';
    if (statement.catalog!.kind === 'summarize') {
      const { sql, columns, plan } = await this.summary(statement, options, runner);
      // The aggregate runs as a query of its own (the plan explain made for SUMMARIZE is not its plan).
      const ran = await runner.query(sql, { ...options, plan: undefined, queryId });
      return {
        queryId,
        columns: SUMMARY_COLUMNS.map((c) => ({ ...c })),
        rows: ran.rows.length ? pivotSummary(columns, ran.rows[0]) : [],
        plan: summaryPlan(statement, ran.plan ?? plan),
        stats: { ...ran.stats, totalMs: performance.now() - started },
      };
    }
    const result = await this.onMirror(statement, role);
    const totalMs = performance.now() - started;
    return {
      queryId,
      columns: result.columns,
      rows: result.rows,
      plan: mirrorPlan(statement, result),
      stats: { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: totalMs, executeMs: 0, reduceMs: 0, totalMs },
    };
  }

  /** The plan of a catalog statement; undefined for any other statement. */
  async explain(statement: ClassifiedStatement, options: QueryOptions, runner: CatalogStatementRunner): Promise<Plan | undefined> {
    if (!CatalogStatements.handles(statement)) return undefined;
    if (statement.catalog!.kind === 'summarize') {
      const { plan } = await this.summary(statement, options, runner);
      return summaryPlan(statement, plan);
    }
    // Its output columns are known once DuckDB has answered it: the mirror holds no data, so that is cheap.
    return mirrorPlan(statement, await this.onMirror(statement, options.role ?? 'reader'));
  }

  close(): void {
    for (const m of this.mirrors.values()) m.close();
    this.mirrors.clear();
    void this.engine?.then((e) => e.close(), () => undefined);
    this.engine = undefined;
  }

  private async onMirror(statement: ClassifiedStatement, role: CallerRole): Promise<QueryResult> {
    if (statement.catalog!.kind === 'nested-summarize') {
      throw new PuffinError('unsupported', 'SUMMARIZE runs as a statement of its own (SUMMARIZE t, SUMMARIZE SELECT ...), not inside another query');
    }
    // No file readers, no SQL run from a value (query(), query_table()): the mirror is shared.
    refuseUnsafeCalls(statement.parsed!.statement);
    await this.checkTables(statement.catalog!.tables, role);
    const key = role === 'admin' ? 'admin' : 'other';
    let mirror = this.mirrors.get(key);
    if (!mirror) {
      mirror = new CatalogMirror(this.catalog, 10_000, { postgres: false, adminOnly: key === 'admin' });
      this.mirrors.set(key, mirror);
    }
    return mirror.query(statement.text);
  }

  /** Every table a DESCRIBE names exists, and the caller may read it (as the planner decides for a query). */
  private async checkTables(tables: readonly string[], role: CallerRole): Promise<void> {
    for (const name of tables) {
      const table = await this.catalog.getTable(name);
      if (!table) {
        const known: string[] = [];
        for (const n of await this.catalog.listTables()) {
          if (role === 'admin' || !(await this.catalog.getTable(n))?.adminOnly) known.push(n);
        }
        const hint = known.length ? `known tables: ${known.join(', ')}` : 'no tables are registered yet (run `puffindb demo` or `puffindb table add NAME PATH`)';
        throw new PuffinError('unknown_table', `unknown table '${name}'; ${hint}`, { table: name, known });
      }
      if (table.adminOnly && role !== 'admin') {
        throw new PuffinError('forbidden', `table ${table.name} holds every user's SQL and is readable with an admin key only; your own queries are listed at GET /v1/queries`);
      }
    }
  }

  /** SUMMARIZE's aggregate query, the summarized columns (as the planner binds them) and the aggregate's plan. */
  private async summary(statement: ClassifiedStatement, options: QueryOptions, runner: CatalogStatementRunner): Promise<{ sql: string; columns: { name: string; type: string }[]; plan: Plan }> {
    const source = summarizedSource(statement.text);
    if (!source.sql) throw new PuffinError('bad_request', 'SUMMARIZE needs a table or a query: SUMMARIZE lineitem, SUMMARIZE SELECT ...');
    const planOptions: QueryOptions = { fragments: options.fragments, partitions: options.partitions, role: options.role, timeoutMs: options.timeoutMs, signal: options.signal };
    const inner = await runner.explain(source.kind === 'table' ? `SELECT * FROM ${source.sql}` : source.sql, planOptions);
    const columns = inner.output.map((c) => ({ name: c.name, type: c.type }));
    if (columns.length === 0) throw new PuffinError('bad_request', 'SUMMARIZE of a relation without columns');
    const sql = summaryQuery(source, columns);
    const plan = await runner.explain(sql, planOptions);
    return { sql, columns, plan };
  }
}

/** The plan of a statement the mirror answers: nothing to split, no table data read. */
function mirrorPlan(statement: ClassifiedStatement, result: QueryResult): Plan {
  return {
    shape: 'local',
    sql: statement.text,
    output: result.columns.map((c) => ({ name: c.name, type: c.type })),
    fragments: [],
    scans: [],
    join: null,
    reduce: { views: [], sql: statement.text },
    reason: `${statement.keyword} answered from the catalog (its tables' columns; no data read)`,
  };
}

/**
 * SUMMARIZE's plan is its aggregate's, named by the statement (so a result cached for it
 * is never served for the aggregate itself) and with SUMMARIZE's output.
 */
function summaryPlan(statement: ClassifiedStatement, aggregate: Plan): Plan {
  return { ...aggregate, sql: statement.text, output: SUMMARY_COLUMNS.map((c) => ({ ...c })), reason: `SUMMARIZE as one aggregate query over the data: ${aggregate.reason}` };
}
