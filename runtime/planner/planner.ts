// The distributed planner: SQL + catalog -> Plan. It parses with DuckDB, resolves every
// table reference, then tries the cheapest shape that fits (scan-aggregate, top-k, scan,
// each optionally over a broadcast join) and checks every rewritten statement by having
// DuckDB bind it against empty tables of the real schemas. A shape that does not fit or
// does not bind falls back to pushdown + single-node, which is correct for any query
// DuckDB accepts; the plan records why.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Catalog, Column, DataFile, TableSnapshot, TableVersion } from '../catalog/types.ts';
import type { Engine } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { parseStatement, printNodes, visitNodes, type AstNode } from '../sql/parse.ts';
import { sqlIdent } from '../sql/quote.ts';
import { AGGREGATE_RULES, DISTINCT_SAFE, findRule } from './aggregates.ts';
import { addInput, assignFiles } from './assign.ts';
import { coSplitGroups, keyComponents, keyRanges, noNulls, type RangedFile } from './co-split.ts';
import {
  baseTable, become, booleanConstant, clone, colRef, collectJoinRefs, conjunction, conjuncts, expressionChildren, exprKey, fromExpressions, func, integerConstant,
  integerValue, isIntegerType, mapExpression, modifierExpressions, operator, selectExpressions, selectNode, someExpression, star, subqueriesOf, subqueryBodies, subqueryExpressions, withAlias,
} from './ast.ts';
import type { FileRef, Fragment, FragmentInput, Partitioning, Plan, PlanShape, ReduceStep, Stage, TableScanReport } from './plan.ts';
import { pruneFiles } from './prune.ts';
import { warehouseCatalogOf, type DeferredTable } from '../catalog/warehouse-catalog.ts';
import { scanPredicateFromAst } from '../catalog/scan-filter.ts';
import type { ScanPredicate } from '../catalog/iceberg/predicate.ts';
import { foldConstants, type Evaluate } from './fold.ts';
import { mentionsVolatile } from '../sql/volatile.ts';
import { addColumnNames, analyzeScopes, findBaseTables, fromBindings, isVolatileFunction, refuseUnsafeCalls, resolveName, unqualify, type ScopeInfo } from './scope.ts';
import {
  MATERIALIZED_PREFIX, constantType, findCandidates, type Candidate, materializedRead, materializedSnapshot, plainScan, sameColumns, selectAllFrom, setOperationBranches, substituteConstants, tempName, type MaterializedInput,
} from './materialize.ts';
import type { MaterializedStep } from './plan.ts';
import { decorrelate } from './decorrelate.ts';
import { flattenCandidate, flattenDerivedTable } from './flatten.ts';
import { eagerAggregation, type EagerRewrite } from './eager.ts';
import { randomBytes } from 'node:crypto';
import { rewriteForIvf, type IvfIndexSource } from './ivf.ts';

export interface PlannerOptions {
  /**
   * The most ranged GETs one shuffle may take (producer tasks x consumer tasks, one piece
   * each): a shuffle from more producers gets fewer consumers than `shufflePartitions`.
   * Default 1,000,000.
   */
  maxShuffleGets?: number;
  /** The coordinator's (sandboxed) engine: parses, binds and prints SQL, evaluates pruning. */
  engine: Engine;
  catalog: Catalog;
  /** Default upper bound of fragments per split table. */
  maxFragments: number;
  /**
   * Where constant expressions of user SQL are computed while planning (AT clauses, table
   * function arguments, LIMIT/OFFSET, pruning constants): the SQL runner, whose process is
   * killed at the query's deadline. Without it they are computed on `engine`.
   */
  evaluate?: Evaluate;
  /** Tables up to this size may be broadcast to every fragment of a join. */
  broadcastLimitBytes: number;
  /** IVF indexes (exec/vector-index.ts): vector top-k queries over an indexed column probe them (planner/ivf.ts). */
  ivf?: IvfIndexSource;
  /**
   * A grouped aggregate estimated to have this many groups or more runs its final aggregate
   * as a stage of `shufflePartitions` tasks; 0: every grouped aggregate does. Default 50,000.
   */
  partitionedAggregateGroups?: number;
  /** Co-split joins and key-grouped splits (planner/co-split.ts); default on. */
  coSplit?: boolean;
  /** Partitions (tasks) of a partitioned hash join; default: the fragment count. */
  shufflePartitions?: number;
  /**
   * Queries with subqueries (CTEs, derived tables, uncorrelated IN / scalar / EXISTS) that
   * would pull up about this many bytes or more to one node (pullUpEstimate) run them as
   * steps of their own first (runtime/planner/materialize.ts); 0: always. Default 64 MiB.
   */
  subqueryStageBytes?: number;
}

export interface PlanOptions {
  fragments?: number;
  /** Partitions of a partitioned hash join for this query (default: the planner's). */
  partitions?: number;
  /** Stops planning (and what it has the SQL runner compute) at the query's deadline. */
  signal?: AbortSignal;
  /** The caller's role; only 'admin' may read admin-only tables (puffindb.query_log). Default 'reader'. */
  role?: 'reader' | 'writer' | 'admin';
  /**
   * May the plan be 'staged' (subqueries run first as steps)? Only callers that run such
   * plans step by step ask for it (LocalCluster's query and explain).
   */
  materialize?: boolean;
  /** Results of steps that ran, by name: tables and constants the SQL reads. */
  temps?: ReadonlyMap<string, MaterializedInput>;
  /**
   * The plan will store its result (a materialized table step): there is no reduce step to
   * spare, so a grouped aggregate always runs its final aggregate as a stage of tasks.
   */
  storeResult?: boolean;
  /** IVF lists a vector top-k query over an indexed table probes (default: the index's; 0: exact search). */
  nprobe?: number;
}

const DEFAULT_SUBQUERY_STAGE_BYTES = 64 * 1024 * 1024;

const DEFAULT_PARTITIONED_AGGREGATE_GROUPS = 50_000;
/** How many tables a chain of semi-join reductions spans, the reduced one included. */
const SEMI_JOIN_DEPTH = 4;

/** The name of the reduce step's view over partial aggregates / rows of a split shape. */
export const PARTIALS_VIEW = '__partials';

interface ResolvedTable {
  snapshot: TableSnapshot;
  view: string;
}

/** A table reference with its table and size, as the join shapes weigh them. */
interface SizedRef {
  ref: AstNode;
  table: ResolvedTable;
  bytes: number;
}

/**
 * A join split along its tables' key ranges; `ranges`: the disjoint ranges of all their
 * files; `tied`: the WHERE subqueries every fragment evaluates over its own files (their
 * bodies, each with its references: see tiedSubqueries).
 */
interface CoSplitJoin {
  join: PartitionedJoin;
  ranges: number;
  tied: Map<AstNode, TiedSubquery>;
}

/** A tied subquery's reference of a co-split table, and the others it reads (broadcast). */
interface TiedSubquery {
  ref: AstNode;
  others: AstNode[];
}

/** Two large references co-partitioned on one equi-join key pair, cast to their common type. */
interface PartitionedJoin {
  a: SizedRef;
  b: SizedRef;
  keyA: Column;
  keyB: Column;
  type: string;
}

interface Built {
  shape: PlanShape;
  fragmentNode: AstNode;
  reduceNode: AstNode;
  reason: string;
  /** The answer is the union of the fragments' rows (see Plan.unionOfFragments). */
  unionOfFragments?: boolean;
  /**
   * A grouped aggregate whose final step can run as a stage of tasks, one per hash
   * partition of the partials on their group keys: what each task runs over its partition
   * (`stage`, with ORDER BY ... LIMIT per task when that is exact), what the reduce step
   * runs over the tasks' rows (`top`), the group expressions; or why it cannot.
   */
  /** `groups` are the query's group keys; `partialGroups` the partials' grouping: the group
   *  keys and the DISTINCT aggregates' arguments, which set how many partial rows there are. */
  finalStage?: { stage: AstNode; top: AstNode; groups: AstNode[]; partialGroups: AstNode[] } | string;
}

let aggregateNamesPromise: Promise<Set<string>> | undefined;

async function aggregateNames(engine: Engine): Promise<Set<string>> {
  aggregateNamesPromise ??= engine
    .query(`SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE function_type = 'aggregate'`)
    .then((r) => new Set(r.rows.map((row) => String(row[0]))));
  return aggregateNamesPromise;
}

let templateCache: Map<string, AstNode> | undefined;

/** Substitute column references `__x0`... / `__p0`... in a template. */
function instantiate(template: AstNode, bindings: Record<string, AstNode>): AstNode {
  return mapExpression(clone(template), (e) => {
    if (e.class === 'COLUMN_REF' && e.column_names.length === 1 && e.column_names[0] in bindings) return clone(bindings[e.column_names[0]]);
    return undefined;
  });
}

/**
 * What a cached plan depends on: the table's data (snapshot id) and its schema, which an
 * Iceberg schema change alters without a new snapshot.
 */
function tableVersion(t: TableSnapshot): string {
  return `${t.snapshotId}|${JSON.stringify(t.columns)}`;
}

function viewNameFor(table: string): string {
  return table.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

function qualifiedName(node: AstNode): string {
  const schema = String(node.schema_name ?? '');
  const catalog = String(node.catalog_name ?? '');
  const parts = [catalog, schema].filter((p) => p && !/^(main|memory|temp)$/i.test(p));
  return [...parts, String(node.table_name)].join('.');
}

/** Plans kept for repeated SQL; each is valid while every table it read is unchanged. */
const PLAN_CACHE_ENTRIES = 256;

interface CachedPlan {
  plan: Plan;
  /** Catalog name -> version (snapshot id and schema) of every table the plan read. */
  snapshots: Map<string, string>;
  /** False for plans that must be made afresh each time (time travel). */
  cacheable?: boolean;
}

export class Planner {
  private readonly cache = new Map<string, CachedPlan>();

  constructor(private readonly options: PlannerOptions) {}

  /**
   * Plan a query. A query planned before is answered from the plan cache when every table
   * it read still has the same snapshot id (planning is a dozen DuckDB round trips; a
   * dashboard repeats the same SQL).
   */
  async plan(sql: string, planOptions: PlanOptions = {}): Promise<Plan> {
    // A vector top-k over a table with an IVF index reads the probed lists of its index (planner/ivf.ts).
    const ivf = this.options.ivf && !planOptions.temps?.size ? await rewriteForIvf(this.options.engine, this.options.ivf, sql, planOptions.nprobe) : undefined;
    if (ivf) {
      const plan = await this.planSql(ivf.sql, planOptions);
      return { ...plan, reason: `${ivf.note}; ${plan.reason}` };
    }
    return this.planSql(sql, planOptions);
  }

  private async planSql(sql: string, planOptions: PlanOptions): Promise<Plan> {
    const key = `${planOptions.fragments ?? ''}\u0000${planOptions.partitions ?? ''}\u0000${planOptions.role === 'admin' ? 'admin' : ''}\u0000${planOptions.materialize ? 'm' : ''}${planOptions.storeResult ? 's' : ''}\u0000${sql}`;
    // Plans over the results of steps that ran are made once, for that run.
    if (planOptions.temps?.size) return (await this.planUncached(sql, planOptions)).plan;
    const cached = this.cache.get(key);
    if (cached && (await this.stillCurrent(cached))) {
      this.cache.delete(key); // most recently used goes last
      this.cache.set(key, cached);
      return cached.plan;
    }
    const { plan, snapshots, cacheable } = await this.planUncached(sql, planOptions);
    if (cacheable === false) return plan;
    this.cache.set(key, { plan, snapshots });
    if (this.cache.size > PLAN_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return plan;
  }

  private async stillCurrent(entry: CachedPlan): Promise<boolean> {
    for (const [name, version] of entry.snapshots) {
      const table = (await this.deferredTable(name))?.head ?? (await this.options.catalog.getTable(name));
      if (!table || tableVersion(table) !== version) return false;
    }
    return true;
  }

  private async planUncached(sql: string, planOptions: PlanOptions): Promise<CachedPlan> {
    const { engine } = this.options;
    const parsed = await parseStatement(engine, sql);
    const root = parsed.node;
    const aggregates = await aggregateNames(engine);

    refuseUnsafeCalls(root);
    const temps = planOptions.temps ?? new Map<string, MaterializedInput>();
    if (temps.size) {
      // Constants of steps that ran take the place of their subqueries.
      const constants = new Map<string, AstNode>();
      for (const t of temps.values()) if (t.kind === 'constant' && !constants.has(t.sql)) constants.set(t.sql, (await parseStatement(engine, `SELECT ${t.sql}`)).node.select_list[0]);
      substituteConstants(root, temps, (c) => clone(constants.get(c)!));
    }
    // DuckDB computes these while binding: on the coordinator's engine they could not be stopped.
    const foldedVolatile = await this.foldBindTimeConstants(root, planOptions.signal);
    // (a AND x) OR (a AND y) is a AND (x OR y): a join key every branch repeats (TPC-H Q19)
    // becomes a conjunct the join rules see.
    if (root.type === 'SELECT_NODE' && root.where_clause) root.where_clause = factorCommonConjuncts(root.where_clause);
    const { tables: refNodes } = findBaseTables(root);

    // Resolve every reference against the catalog and rename it to the table's view.
    const resolved = new Map<string, ResolvedTable>();
    const refTable = new Map<AstNode, ResolvedTable>();
    // Time travel (`FROM t AT (VERSION => id)` / `AT (TIMESTAMP => ts)`): the reference is
    // resolved to that snapshot through Catalog.getTableAt and gets a view of its own, so one
    // query may read a table now and as it was. Such plans are not cached: a timestamp may
    // be relative (now() - INTERVAL ...) and a later commit may fall before it.
    let timeTravel = false;
    // The names each reference was written with, to print a step's SQL for planning anew.
    const written = new Map<AstNode, { catalog_name: unknown; schema_name: unknown; table_name: unknown }>();
    // Iceberg tables resolved by their head: their files are planned once the filters are known.
    const deferred = new Map<ResolvedTable, DeferredTable>();
    for (const node of refNodes) {
      written.set(node, { catalog_name: node.catalog_name, schema_name: node.schema_name, table_name: node.table_name });
      const name = qualifiedName(node).toLowerCase();
      const temp = !node.schema_name && !node.catalog_name && String(node.table_name).startsWith(MATERIALIZED_PREFIX) ? temps.get(String(node.table_name)) : undefined;
      if (temp?.kind === 'table') {
        const tempKey = String(node.table_name);
        let entry = resolved.get(tempKey);
        if (!entry) {
          entry = { snapshot: materializedSnapshot(tempKey, temp), view: tempKey };
          resolved.set(tempKey, entry);
        }
        refTable.set(node, entry);
        continue;
      }
      const at = node.at_clause ? await this.timeTravelTarget(node, sql, planOptions.signal) : undefined;
      const key = at ? `${name}@${at.snapshotId ?? `t${at.timestampMs}`}` : name;
      let entry = resolved.get(key);
      if (!entry) {
        const later = at ? undefined : await this.deferredTable(name);
        const snapshot = later ? later.head : at ? await this.options.catalog.getTableAt!(name, at) : await this.options.catalog.getTable(name);
        if (!snapshot) throw await this.unknownTable(qualifiedName(node));
        if (snapshot.adminOnly && planOptions.role !== 'admin') {
          throw new PuffinError('forbidden', `table ${snapshot.name} holds every user's SQL and is readable with an admin key only; your own queries are listed at GET /v1/queries`);
        }
        const view = at ? viewNameFor(`${snapshot.name}_at_${snapshot.snapshotId}`) : viewNameFor(snapshot.name);
        entry = { snapshot, view };
        resolved.set(key, entry);
        if (later) deferred.set(entry, later);
      }
      if (at) {
        timeTravel = true;
        node.at_clause = null; // the view is already that snapshot
      }
      refTable.set(node, entry);
      const writtenName = String(node.table_name);
      if (!node.alias && writtenName.toLowerCase() !== entry.view) node.alias = writtenName;
      node.table_name = entry.view;
      node.schema_name = '';
      node.catalog_name = '';
    }

    const snapshots = new Map([...resolved].filter(([name]) => !temps.has(name)).map(([name, r]) => [name, tableVersion(r.snapshot)]));
    const conn = await engine.connect();
    try {
      const tables = new Map<string, string>();
      for (const { snapshot, view } of resolved.values()) tables.set(view, await createEmptyTable(conn, view, snapshot.columns));
      let [querySql] = await printNodes(conn, [root]);
      const output = await this.describe(conn, tables, querySql, planOptions.signal).catch((err) => { throw toPuffinError(err); });
      // View merging (flatten.ts): a derived table that only filters and projects a join.
      let merged: string | undefined;
      const mergeable = flattenCandidate(root);
      if (mergeable && !(await mentionsVolatile(conn, mergeable))) {
        const flat = flattenDerivedTable(root, output.map((c) => c.name), (n) => refTable.get(n)?.snapshot.columns, aggregates);
        const flatSql = flat && await this.rebinds(conn, tables, root, output, planOptions.signal);
        if (flatSql) {
          querySql = flatSql;
          merged = flat!.what;
        } else flat?.undo();
      }
      const because = (plan: Plan): Plan => (merged ? { ...plan, reason: `${merged}; ${plan.reason}` } : plan);

      const scope = analyzeScopes(root, (node) => refTable.get(node)?.snapshot.columns, aggregates);
      const fragments = Math.max(1, Math.floor(planOptions.fragments ?? this.options.maxFragments));
      const partitions = Math.max(1, Math.floor(planOptions.partitions ?? this.options.shufflePartitions ?? fragments));
      const ctx: PlanContext = { conn, root, querySql, output, scope, refTable, resolved, fragments, partitions, aggregates, signal: planOptions.signal, tables, storeResult: planOptions.storeResult };
      if (deferred.size) await this.planDeferred(ctx, deferred);

      if (resolved.size === 0) {
        const plan: Plan = {
          shape: 'local', sql: querySql, output, fragments: [], scans: [], join: null,
          reduce: { views: [], sql: querySql }, reason: 'the query reads no table',
        };
        return { plan, snapshots, cacheable: !timeTravel && !foldedVolatile };
      }
      // A split whose subqueries every fragment evaluates over its own files (co-split,
      // tiedSubqueries) needs no steps run before it.
      let early: Plan | string | undefined;
      if (planOptions.materialize && !timeTravel && this.coSplitOn(ctx) && root.type === 'SELECT_NODE' && subqueriesOf(root.where_clause).length) {
        early = await this.trySplit(ctx);
        if (typeof early !== 'string' && early.join?.coSplit?.subqueries) return { plan: because(early), snapshots, cacheable: !foldedVolatile };
      }
      if (planOptions.materialize && !timeTravel) {
        const staged = await this.stagedPlan(ctx, written);
        if (staged) return { plan: because(staged), snapshots, cacheable: !foldedVolatile };
      }
      const split = early ?? await this.trySplit(ctx);
      if (typeof split !== 'string') return { plan: because(split), snapshots, cacheable: !timeTravel && !foldedVolatile };
      const keyed = ctx.root.type === 'SET_OPERATION_NODE' ? await this.setOperationPlan(ctx) : await this.keyPartitionedPlan(ctx);
      if (keyed && typeof keyed !== 'string') return { plan: because(keyed), snapshots, cacheable: !timeTravel && !foldedVolatile };
      return { plan: because(await this.singleNode(ctx, keyed ? `${split}; not partitioned by key: ${keyed}` : split)), snapshots, cacheable: !timeTravel && !foldedVolatile };
    } finally {
      conn.closeSync();
    }
  }

  /**
   * Materialized subqueries (runtime/planner/materialize.ts): when the query reads enough
   * data and has subqueries that bind on their own, a plan of shape 'staged' listing them
   * as steps, in order, and the query over their results. Undefined: plan it as it is.
   */
  private async stagedPlan(ctx: PlanContext, written: ReadonlyMap<AstNode, { catalog_name: unknown; schema_name: unknown; table_name: unknown }>): Promise<Plan | undefined> {
    // Steps cost round trips and writes that one node would not: they pay when the query as
    // it is would pull up more than one node reads quickly.
    const threshold = this.options.subqueryStageBytes ?? DEFAULT_SUBQUERY_STAGE_BYTES;
    if (threshold > 0 && pullUpEstimate(ctx) < threshold) return undefined;
    // Correlated subqueries that are semi, anti or aggregate joins become uncorrelated ones
    // (decorrelate.ts), if the query then binds to the same columns.
    const decorrelated = decorrelate(ctx.root, (node) => ctx.refTable.get(node)?.snapshot.columns, ctx.aggregates);
    if (decorrelated && !(await this.rebinds(ctx.conn, ctx.tables, ctx.root, ctx.output, ctx.signal))) decorrelated.undo();
    // Constant subqueries (no table) cost nothing where they are; a read of a result that
    // is materialized already is what a step would make of it.
    const worthIt = (c: Candidate) => findBaseTables(c.body).tables.length > 0 && !materializedRead(c.body);
    let candidates = findCandidates(ctx.root, ctx.aggregates).filter(worthIt);
    // With nothing else to run first, a join of three or more large tables runs its
    // smallest joined pair first, as a derived table (a partitioned join of its own).
    const pair = candidates.length === 0 ? await this.largeJoinPairFirst(ctx) : undefined;
    if (pair) candidates = findCandidates(ctx.root, ctx.aggregates).filter(worthIt);
    if (candidates.length === 0) {
      pair?.undo();
      decorrelated?.undo();
      return undefined;
    }
    const salt = randomBytes(4).toString('hex');
    const tables = new Map(ctx.tables);
    // An unaliased select item is named by its text, which a step's constant would change:
    // each keeps the name DuckDB gave it.
    const items = (ctx.root.select_list ?? []) as AstNode[];
    if (items.length === ctx.output.length && !items.some((i) => someExpression(i, (e) => e.class === 'STAR' || e.class === 'COLUMNS'))) {
      items.forEach((item, i) => {
        if (!item.alias) item.alias = ctx.output[i].name;
      });
    }
    const steps: MaterializedStep[] = [];
    // The SQL of a part of the query with every table named as the user wrote it, so that
    // a step is planned afresh like any query (its own subqueries becoming steps in turn).
    const printWritten = async (node: AstNode): Promise<string> => {
      const now = [...written.keys()].map((n) => [n, n.table_name, n.schema_name, n.catalog_name] as const);
      for (const [n, w] of written) Object.assign(n, w);
      try {
        return (await printNodes(ctx.conn, [node]))[0];
      } finally {
        for (const [n, table_name, schema_name, catalog_name] of now) Object.assign(n, { table_name, schema_name, catalog_name });
      }
    };
    for (const c of candidates) {
      const [bodySql] = await printNodes(ctx.conn, [c.body]);
      let columns: Column[];
      try {
        // Binding on its own: a correlated subquery names a column of the query around it.
        columns = await this.describe(ctx.conn, tables, bodySql, ctx.signal);
      } catch (err) {
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        continue;
      }
      const names = new Set(columns.map((col) => col.name.toLowerCase()));
      if (names.size !== columns.length || columns.some((col) => /\bUNION\s*\(/i.test(col.type))) continue;
      if (c.kind === 'scalar' && (columns.length !== 1 || !constantType(columns[0].type))) continue;
      const name = tempName(salt, steps.length + 1);
      let sql = await printWritten(c.body);
      // Whether it has a row: one row is enough. (The body is replaced in the query below, and
      // keeps its nodes, so its tables print by the names written.)
      if (c.kind === 'exists' && c.body.type === 'SELECT_NODE' && !(c.body.modifiers as AstNode[]).some((m) => m.type === 'LIMIT_MODIFIER' || m.type === 'LIMIT_PERCENT_MODIFIER')) {
        c.body.modifiers = [...c.body.modifiers, { type: 'LIMIT_MODIFIER', limit: integerConstant(1), offset: null }];
        sql = await printWritten(c.body);
      }
      c.replace(name, columns);
      if (c.kind === 'table') tables.set(name, await createEmptyTable(ctx.conn, name, columns));
      steps.push({ name, kind: c.kind, what: c.what, sql, columns });
    }
    if (steps.length === 0) {
      // Nothing runs first: the query is planned as it was written.
      pair?.undo();
      decorrelated?.undo();
      return undefined;
    }
    const sql = await printWritten(ctx.root);
    const scans: TableScanReport[] = [];
    for (const r of ctx.resolved.values()) {
      if (!r.view.startsWith(MATERIALIZED_PREFIX)) scans.push(await this.scanReport(ctx, r, 'pushdown', r.snapshot.files.map((f) => fileRef(f, r)), null, null));
    }
    return {
      shape: 'staged',
      sql: ctx.querySql,
      output: ctx.output,
      fragments: [],
      reduce: { views: [], sql: '' },
      scans,
      join: null,
      materialized: { steps, sql },
      reason: `${decorrelated ? `decorrelated: ${decorrelated.rewrites.join(', ')}; ` : ''}${pair ? `${pair.what}; ` : ''}materialized subqueries: ${steps.map((st) => st.what).join(', ')} run first, each a distributed query of its own; the rest of the query is planned over their results once they ran`,
    };
  }

  /**
   * A join of three or more tables over the broadcast limit (inner and comma joins only):
   * the pair of them joined by an equality whose join is estimated to give the fewest rows
   * (joinRowsEstimate; then the fewest bytes) becomes a derived table
   * `(SELECT <their columns the rest uses> FROM a, b WHERE <the conjuncts of a and b alone>)`
   * and the query reads its columns instead (each renamed only when a and b share a name).
   * As a step it is a partitioned join of two large tables; the query over its result has
   * one large table fewer, and is planned the same way again until two are left. Undefined
   * (nothing changed) when the query is not such a join, or a part of it cannot be rebound
   * (a star, a subquery other than a read of a materialized result, a column whose table is
   * ambiguous). The rewrite is undone unless the query still binds to the same columns.
   */
  private async largeJoinPairFirst(ctx: PlanContext): Promise<{ undo: () => void; what: string } | undefined> {
    const select = ctx.root;
    if (select.type !== 'SELECT_NODE' || select.sample || (select.cte_map?.map ?? []).length) return undefined;
    const refs: AstNode[] = [];
    if (!collectJoinRefs(select.from_table, refs)) return undefined;
    const ons: AstNode[] = [];
    const innerOnly = (n: AstNode): boolean => {
      if (n.type !== 'JOIN') return true;
      if (n.ref_type === 'CROSS') return innerOnly(n.left) && innerOnly(n.right);
      if (n.ref_type !== 'REGULAR' || n.join_type !== 'INNER' || (n.using_columns ?? []).length) return false;
      if (n.condition) ons.push(n.condition);
      return innerOnly(n.left) && innerOnly(n.right);
    };
    if (!innerOnly(select.from_table)) return undefined;
    const large = refs.filter((r) => tableBytes(ctx.refTable.get(r)!.snapshot) > this.options.broadcastLimitBytes);
    if (large.length < 3) return undefined;
    const exprs = [...selectExpressions(select)];
    if ((select.select_list as AstNode[]).some((i) => someExpression(i, (e) => e.class === 'STAR' || e.class === 'COLUMNS'))) return undefined;
    for (const e of [...exprs, ...ons]) if (subqueriesOf(e).some((sq) => !materializedRead(sq))) return undefined;

    // The tables each column reference names; every one must be known.
    const aliases = new Set((select.select_list as AstNode[]).map((i) => String(i.alias ?? '').toLowerCase()).filter(Boolean));
    // A column reference's table and column; in ORDER BY a select alias names no table's column.
    const resolve = (x: AstNode, orderBy: boolean): { ref: AstNode; column: Column } | 'alias' | undefined => {
      if (orderBy && x.column_names.length === 1 && aliases.has(String(x.column_names[0]).toLowerCase())) return 'alias';
      return columnOwner(ctx, x, refs);
    };
    let unknown = false;
    const owners = (e: AstNode | null | undefined): Set<AstNode> => {
      const out = new Set<AstNode>();
      someExpression(e, (x) => {
        if (x.class !== 'COLUMN_REF') return false;
        const owner = resolve(x, false);
        if (owner && owner !== 'alias') out.add(owner.ref);
        else unknown = true;
        return false;
      });
      return out;
    };
    const all = [...conjuncts(select.where_clause), ...ons.flatMap((c) => conjuncts(c))];
    const conjunctOwners = all.map((c) => owners(c));
    // Pairs of large tables an equality joins: the one whose join is estimated to give the
    // fewest rows first (a key join, not customer and supplier on their nation), then the
    // fewest bytes. A pair's estimate is its most selective equality's.
    const bytesOf = (r: AstNode) => tableBytes(ctx.refTable.get(r)!.snapshot);
    const pairs = new Map<string, { pair: [AstNode, AstNode]; rows: number }>();
    for (const [i, c] of all.entries()) {
      if (c.class !== 'COMPARISON' || c.type !== 'COMPARE_EQUAL' || c.left?.class !== 'COLUMN_REF' || c.right?.class !== 'COLUMN_REF') continue;
      const [x, y] = [columnOwner(ctx, c.left, refs), columnOwner(ctx, c.right, refs)];
      if (!x || !y || x.ref === y.ref || !large.includes(x.ref) || !large.includes(y.ref) || conjunctOwners[i].size !== 2) continue;
      // A table joined with itself is not a pair to partition (its two sides would be one input).
      if (ctx.refTable.get(x.ref) === ctx.refTable.get(y.ref)) continue;
      const rows = joinRowsEstimate(ctx.refTable.get(x.ref)!.snapshot, x.column, ctx.refTable.get(y.ref)!.snapshot, y.column);
      const key = [refs.indexOf(x.ref), refs.indexOf(y.ref)].sort((m, n) => m - n).join(',');
      const seen = pairs.get(key);
      if (!seen || rows < seen.rows) pairs.set(key, { pair: [x.ref, y.ref], rows });
    }
    const ranked = [...pairs.values()].sort((p, q) => p.rows - q.rows || bytesOf(p.pair[0]) + bytesOf(p.pair[1]) - bytesOf(q.pair[0]) - bytesOf(q.pair[1]));
    const best = ranked[0]?.pair;
    if (!best || unknown) return undefined;
    const pairRefs = new Set(best);
    const inPair = (o: Set<AstNode>) => o.size > 0 && [...o].every((r) => pairRefs.has(r));
    const moved = all.filter((_, i) => inPair(conjunctOwners[i]));
    const kept = all.filter((_, i) => !inPair(conjunctOwners[i]));

    // The pair's columns the rest of the query uses, named uniquely.
    const orderExprs = modifierExpressions(select);
    const rest = [...(select.select_list as AstNode[]), ...kept, ...(select.group_expressions ?? []), select.having, select.qualify].filter(Boolean) as AstNode[];
    const used: { ref: AstNode; column: Column }[] = [];
    const note = (e: AstNode, orderBy: boolean) => someExpression(e, (x) => {
      if (x.class !== 'COLUMN_REF') return false;
      const owner = resolve(x, orderBy);
      if (owner && owner !== 'alias' && pairRefs.has(owner.ref) && !used.some((u) => u.ref === owner.ref && u.column.name === owner.column.name)) used.push(owner);
      return false;
    });
    rest.forEach((e) => note(e, false));
    orderExprs.forEach((e) => note(e, true));
    if (unknown) return undefined;
    if (used.length === 0) used.push({ ref: best[0], column: narrowest(ctx.refTable.get(best[0])!.snapshot.columns) });
    const bindingOf = (r: AstNode) => String(ctx.scope.refs.find((x) => x.node === r)?.binding ?? r.alias ?? r.table_name);
    const taken = new Set<string>();
    const names = used.map((u) => {
      const clash = used.filter((v) => v.column.name.toLowerCase() === u.column.name.toLowerCase()).length > 1;
      let name = clash ? `${bindingOf(u.ref)}_${u.column.name}` : u.column.name;
      while (taken.has(name.toLowerCase())) name = `${name}_`;
      taken.add(name.toLowerCase());
      return name;
    });
    const alias = `__pdb_j${refs.length}`;
    const cross = (nodes: AstNode[]): AstNode => nodes.reduce((left, right) => ({
      type: 'JOIN', alias: '', sample: null, query_location: 0, left, right, join_type: 'INNER', ref_type: 'CROSS',
      condition: null, using_columns: [], delim_flipped: false, duplicate_eliminated_columns: [],
    }));
    const body = selectNode(
      used.map((u, i) => withAlias(colRef(bindingOf(u.ref), u.column.name), names[i])),
      cross([best[0], best[1]]),
      { where_clause: moved.length ? conjunction('AND', moved.map(clone)) : null },
    );
    const derived: AstNode = { type: 'SUBQUERY', alias, sample: null, query_location: 0, subquery: { node: body, named_param_map: [] }, column_name_alias: [] };
    const rebind = (e: AstNode, orderBy = false): AstNode => mapExpression(e, (x) => {
      if (x.class !== 'COLUMN_REF') return undefined;
      const owner = resolve(x, orderBy);
      if (!owner || owner === 'alias' || !pairRefs.has(owner.ref)) return undefined;
      const i = used.findIndex((u) => u.ref === owner.ref && u.column.name === owner.column.name);
      return { ...colRef(alias, names[i]), alias: x.alias ?? '' };
    });

    const saved = { from: select.from_table, where: select.where_clause, list: select.select_list, groups: select.group_expressions, having: select.having, qualify: select.qualify, modifiers: select.modifiers };
    const undo = () => Object.assign(select, { from_table: saved.from, where_clause: saved.where, select_list: saved.list, group_expressions: saved.groups, having: saved.having, qualify: saved.qualify, modifiers: saved.modifiers });
    select.select_list = (select.select_list as AstNode[]).map((i) => rebind(i));
    select.group_expressions = (select.group_expressions ?? []).map((g: AstNode) => rebind(g));
    select.having = select.having ? rebind(select.having) : null;
    select.qualify = select.qualify ? rebind(select.qualify) : null;
    select.modifiers = (select.modifiers as AstNode[]).map((m) => (m.type === 'ORDER_MODIFIER' ? { ...m, orders: (m.orders as AstNode[]).map((o) => ({ ...o, expression: rebind(o.expression, true) })) } : m));
    select.where_clause = kept.length ? conjunction('AND', kept.map((c) => rebind(c))) : null;
    select.from_table = cross([derived, ...refs.filter((r) => !pairRefs.has(r))]);
    if (!(await this.rebinds(ctx.conn, ctx.tables, select, ctx.output, ctx.signal))) {
      undo();
      return undefined;
    }
    const [na, nb] = best.map((r) => ctx.refTable.get(r)!.snapshot.name);
    return { undo, what: `${refs.length} joined tables, ${large.length} over the broadcast limit: ${na} and ${nb} joined first (derived table ${alias})` };
  }

  /** Evaluate an AT clause's expression (a constant) to a snapshot id or an instant. */
  private async timeTravelTarget(node: AstNode, sql: string, signal?: AbortSignal): Promise<TableVersion> {
    const table = qualifiedName(node);
    const unit = String(node.at_clause.unit ?? '').toUpperCase();
    const expr = node.at_clause.expr as AstNode;
    // The AST arrives through JSON.parse, which rounds integers past 2^53 and Iceberg snapshot
    // ids are 63-bit: take the exact digits from the SQL text for a literal id.
    const literal = expr.class === 'CONSTANT' ? expr.value?.value : undefined;
    if (unit === 'VERSION' && typeof literal === 'number' && !Number.isSafeInteger(literal)) {
      const exact = [...new Set(sql.match(/\d{16,}/g) ?? [])].filter((digits) => Number(digits) === literal);
      if (exact.length !== 1) throw new PuffinError('bad_request', `AT (VERSION => ...) on table ${table}: cannot tell which snapshot id the SQL names`);
      return { snapshotId: exact[0] };
    }
    if (!this.options.catalog.getTableAt) throw new PuffinError('unsupported', `time travel (AT ...) is not supported on table ${table}: this catalog keeps no history`);
    if (unit !== 'VERSION' && unit !== 'TIMESTAMP') throw new PuffinError('unsupported', `AT (${unit} => ...) on table ${table}: use VERSION => snapshot id or TIMESTAMP => instant`);
    if (someExpression(expr, (e) => e.class === 'SUBQUERY' || e.class === 'COLUMN_REF' || e.class === 'PARAMETER')) {
      throw new PuffinError('bad_request', `AT (${unit} => ...) on table ${table} must be a constant expression`);
    }
    const { engine } = this.options;
    const [valueSql] = await printNodes(engine, [{ ...selectNode([expr], baseTable('__at')), from_table: { type: 'EMPTY', alias: '', sample: null, query_location: 0 } }]);
    const evaluate = async (template: string): Promise<string> => {
      const evaluated = template.replace('$v', `(${valueSql})`);
      const run = this.options.evaluate ? this.options.evaluate({ setup: [], sql: evaluated }, signal) : engine.query(evaluated);
      const r = await run.catch((err: unknown) => {
        if (signal?.aborted) throw signal.reason;
        throw new PuffinError('bad_request', `AT (${unit} => ...) on table ${table}: ${firstLine(toPuffinError(err).message)}`);
      });
      const v = r.rows[0]?.[0];
      if (v === null || v === undefined) throw new PuffinError('bad_request', `AT (${unit} => ...) on table ${table} is NULL`);
      return String(v);
    };
    if (unit === 'VERSION') {
      const id = await evaluate('SELECT CAST($v AS HUGEINT)::VARCHAR');
      if (!/^-?\d+$/.test(id)) throw new PuffinError('bad_request', `AT (VERSION => ${id}) on table ${table}: a snapshot id is an integer`);
      return { snapshotId: id };
    }
    // An instant: a TIMESTAMP WITH TIME ZONE as it is; a plain TIMESTAMP (or text) read as UTC.
    const type = await evaluate('SELECT typeof($v)');
    const ms = await evaluate(/WITH TIME ZONE/i.test(type) ? 'SELECT epoch_ms($v)' : 'SELECT epoch_ms(CAST($v AS TIMESTAMP))');
    return { timestampMs: Number(ms) };
  }

  private async unknownTable(name: string): Promise<PuffinError> {
    if (/[/\\]|\.(parquet|csv|tsv|json|jsonl|ndjson|txt|gz|zst)$/i.test(name)) {
      return new PuffinError('access_denied', `reading files directly ('${name}') is not allowed; register them as a table (puffindb table add NAME '${name}') and query it by name`);
    }
    const known = await this.options.catalog.listTables();
    const hint = known.length ? `known tables: ${known.join(', ')}` : 'no tables are registered yet (run `puffindb demo` or `puffindb table add NAME PATH`)';
    return new PuffinError('unknown_table', `unknown table '${name}'; ${hint}`, { table: name, known });
  }

  /** Try the split shapes; returns a plan, or the reason they do not apply. */
  private async trySplit(ctx: PlanContext): Promise<Plan | string> {
    const undo = this.largeResultsAsJoins(ctx);
    const out = await this.splitPlan(ctx);
    if (typeof out === 'string') undo?.();
    return out;
  }

  /**
   * `x IN (SELECT * FROM <materialized result>)`, a conjunct of the WHERE clause, over a
   * result too large to read whole in every fragment: the same as a semi join of the query's
   * tables with the result on x (a NULL x matches nothing either way, and a semi join keeps
   * each row once), so the conjunct becomes `SEMI JOIN <result> ON x = <its column>` and the
   * join is hash-partitioned like any join of two large tables.
   *
   * Its negation is an anti join when the result's column holds no NULL (its files'
   * statistics say so, or it is empty): `x IS NULL OR NOT (x IN ...)` (NOT EXISTS as
   * decorrelated) is exactly `ANTI JOIN <result> ON x = <column>`, which keeps a NULL x too;
   * `NOT (x IN ...)` (NOT IN) also drops a NULL x unless the result is empty, so it becomes the
   * anti join and `x IS NOT NULL`. A column that may hold NULLs keeps the conjunct as it is
   * (one NULL makes NOT IN true for no row). Returns how to undo it.
   */
  private largeResultsAsJoins(ctx: PlanContext): (() => void) | undefined {
    const select = ctx.root;
    if (select.type !== 'SELECT_NODE' || !select.where_clause || !select.from_table) return undefined;
    const all = conjuncts(select.where_clause);
    const largeIn = (c: AstNode | undefined): { sq: AstNode; table: ResolvedTable } | undefined => {
      if (c?.class !== 'SUBQUERY' || c.subquery_type !== 'ANY' || c.comparison_type !== 'COMPARE_EQUAL' || c.child?.class !== 'COLUMN_REF') return undefined;
      const name = materializedRead(c.subquery.node);
      const table = name ? ctx.refTable.get(c.subquery.node.from_table) : undefined;
      return table && tableBytes(table.snapshot) > this.options.broadcastLimitBytes ? { sq: c, table } : undefined;
    };
    const notIn = (c: AstNode | undefined) => (c?.class === 'OPERATOR' && c.type === 'OPERATOR_NOT' && c.children?.length === 1 ? largeIn(c.children[0]) : undefined);
    // The result's one column holds no NULL: every file says none, or there is no row.
    const nullFree = (t: ResolvedTable) => {
      const column = t.snapshot.columns[0]?.name;
      return t.snapshot.files.every((f) => f.rowCount === 0 || f.stats[column]?.nulls === 0);
    };
    let found: { conjunct: AstNode; sq: AstNode; table: ResolvedTable; join: 'SEMI' | 'ANTI'; notNull: boolean } | undefined;
    for (const c of all) {
      const semi = largeIn(c);
      if (semi) { found = { conjunct: c, ...semi, join: 'SEMI', notNull: false }; break; }
      const negated = notIn(c);
      if (negated && nullFree(negated.table)) {
        const empty = negated.table.snapshot.files.every((f) => f.rowCount === 0);
        found = { conjunct: c, ...negated, join: 'ANTI', notNull: !empty };
        break;
      }
      if (c.class === 'CONJUNCTION' && c.type === 'CONJUNCTION_OR' && c.children?.length === 2) {
        const [isNull, not] = c.children[0].type === 'OPERATOR_IS_NULL' ? c.children : [c.children[1], c.children[0]];
        const inner = notIn(not);
        if (inner && isNull.class === 'OPERATOR' && isNull.type === 'OPERATOR_IS_NULL' && exprKey(isNull.children?.[0]) === exprKey(inner.sq.child) && nullFree(inner.table)) {
          found = { conjunct: c, ...inner, join: 'ANTI', notNull: false };
          break;
        }
      }
    }
    if (!found) return undefined;
    const { sq, table } = found;
    const ref = sq.subquery.node.from_table as AstNode;
    const originalFrom = select.from_table;
    const originalWhere = select.where_clause;
    const binding = String(ref.alias || ref.table_name);
    // x is qualified by its table, so that the result's own column (which may have its name) cannot be meant.
    let key = sq.child as AstNode;
    if (key.column_names.length === 1) {
      const refs: AstNode[] = [];
      if (!collectJoinRefs(originalFrom, refs)) return undefined;
      const name = String(key.column_names[0]).toLowerCase();
      const owners = refs.filter((r) => ctx.refTable.get(r)?.snapshot.columns.some((c) => c.name.toLowerCase() === name));
      if (owners.length !== 1) return undefined;
      key = colRef(String(owners[0].alias || owners[0].table_name), String(key.column_names[0]));
    } else if (key.column_names.length !== 2) return undefined;
    select.from_table = {
      type: 'JOIN', alias: '', sample: null, query_location: 0, left: originalFrom, right: ref, join_type: found.join, ref_type: 'REGULAR',
      condition: { class: 'COMPARISON', type: 'COMPARE_EQUAL', alias: '', query_location: 0, left: key, right: colRef(binding, table.snapshot.columns[0].name) },
      using_columns: [], delim_flipped: false, duplicate_eliminated_columns: [],
    };
    const rest = [...all.filter((c) => c !== found.conjunct), ...(found.notNull ? [operator('OPERATOR_IS_NOT_NULL', [clone(key)])] : [])];
    select.where_clause = rest.length ? conjunction('AND', rest) : null;
    return () => {
      select.from_table = originalFrom;
      select.where_clause = originalWhere;
    };
  }

  private async splitPlan(ctx: PlanContext): Promise<Plan | string> {
    const select = ctx.root;
    if (select.type !== 'SELECT_NODE') return `a ${String(select.type).replace(/_NODE$/, '').toLowerCase().replace(/_/g, ' ')} is not split`;
    if (select.cte_map?.map?.length) return 'common table expressions are evaluated in one place';
    if (select.sample) return 'SAMPLE is evaluated in one place';
    const exprs = [...selectExpressions(select), ...fromExpressions(select.from_table)];
    // A subquery of the WHERE clause that only reads a materialized result (x IN (SELECT *
    // FROM <step>)) is evaluated by every fragment, the result read whole by each; so is one
    // that binds on its own over tables under the broadcast limit (broadcastSubquery).
    // One that reads the tables split along key ranges, and only their rows of the keys
    // each fragment holds, is evaluated by every fragment over its own files (tiedSubqueries):
    // decided once the split is.
    const whereSubqueries = new Set(subqueriesOf(select.where_clause));
    const resultReads: AstNode[] = [];
    const subqueryReads: { body: AstNode; read: AstNode[] | string }[] = [];
    for (const sq of exprs.flatMap((e) => subqueriesOf(e))) {
      if (!whereSubqueries.has(sq)) return 'subqueries are evaluated in one place';
      if (materializedRead(sq)) {
        resultReads.push(sq.from_table);
        continue;
      }
      const read = await this.broadcastSubquery(ctx, sq);
      if (typeof read === 'string' && !this.coSplitOn(ctx)) return `subqueries are evaluated in one place (${read})`;
      subqueryReads.push({ body: sq, read });
    }
    // A collated value compares and groups by its collation, which a partial's plain column
    // loses: GROUP BY x COLLATE NOCASE over partials grouped 'AIR' and 'air' apart.
    if (exprs.some((e) => someExpression(e, (x) => x.class === 'COLLATE'))) return 'collations are evaluated in one place';

    const refs: AstNode[] = [];
    const fromOk = collectJoinRefs(select.from_table, refs);
    if (!fromOk) return 'the FROM clause has derived tables or table functions';
    if (refs.some((r) => r.sample)) return 'TABLESAMPLE is evaluated in one place';

    // The largest table is split; every other one must be small enough to broadcast, or,
    // when exactly one other is not, both are hash-partitioned on their join keys.
    const sized = refs.map((r) => ({ ref: r, table: ctx.refTable.get(r)!, bytes: tableBytes(ctx.refTable.get(r)!.snapshot) }));
    sized.sort((a, b) => b.bytes - a.bytes);
    const splitRef = sized[0];
    let broadcast = sized.slice(1);
    let partitioned: PartitionedJoin | undefined;
    // A table split with the split one along their files' key ranges (planner/co-split.ts),
    // preferred to reading it whole in every fragment and to hash-partitioning both.
    let coSplit: CoSplitJoin | undefined;
    const tooBig = broadcast.filter((b) => b.bytes > this.options.broadcastLimitBytes);
    if (tooBig.length > 0) {
      const why = `table ${tooBig[0].table.snapshot.name} (${tooBig[0].bytes} bytes) is over the broadcast limit (${this.options.broadcastLimitBytes} bytes)`;
      if (tooBig.length > 1) return `${why}, and so is ${tooBig[1].table.snapshot.name}: only two large tables are partitioned on their join keys`;
      const found = await this.partitionedJoin(ctx, select.from_table, splitRef, tooBig[0]);
      if (typeof found === 'string') return `${why}, and ${found}`;
      coSplit = this.coSplitJoin(ctx, found);
      if (!coSplit) partitioned = found;
      broadcast = broadcast.filter((b) => b !== tooBig[0]);
    } else {
      if (broadcast.some((b) => b.table === splitRef.table)) return `table ${splitRef.table.snapshot.name} is joined with itself`;
      if (!splittableSide(select.from_table, splitRef.ref)) {
        // An outer join keeps rows of a small table against the split one (customer LEFT JOIN
        // orders): a split cannot, so the two are split together or hash-partitioned on
        // their join key instead.
        const why = `an outer or positional join keeps rows of ${splitRef.table.snapshot.name} that a split could not`;
        if (broadcast.length !== 1) return why;
        const found = await this.partitionedJoin(ctx, select.from_table, splitRef, broadcast[0]);
        if (typeof found === 'string') return `${why}, and ${found}`;
        coSplit = this.coSplitJoin(ctx, found);
        if (!coSplit) partitioned = found;
        broadcast = [];
      } else if (this.coSplitOn(ctx)) {
        // The largest table the split one joins on key ranges both are written in.
        for (const b of broadcast) {
          const found = await this.partitionedJoin(ctx, select.from_table, splitRef, b);
          coSplit = typeof found === 'string' ? undefined : this.coSplitJoin(ctx, found);
          if (coSplit) break;
        }
        if (coSplit) broadcast = broadcast.filter((b) => b !== coSplit!.join.b);
        // Else the table a correlated subquery joins on key ranges both are written in
        // (TPC-H Q04: orders with EXISTS over lineitem by order key).
        else if (subqueryReads.length) coSplit = this.subqueryCoSplit(ctx, splitRef);
      }
    }
    const tied = coSplit?.tied ?? new Map<AstNode, TiedSubquery>();
    const subqueryTables: AstNode[] = [];
    for (const { body, read } of subqueryReads) {
      const t = tied.get(body);
      if (t) {
        subqueryTables.push(...t.others);
        continue;
      }
      if (typeof read === 'string') return `subqueries are evaluated in one place (${read})`;
      subqueryTables.push(...read);
    }
    for (const ref of resultReads) {
      const table = ctx.refTable.get(ref)!;
      const bytes = tableBytes(table.snapshot);
      if (bytes > this.options.broadcastLimitBytes) return `the materialized result a subquery reads (${bytes} bytes) is over the broadcast limit (${this.options.broadcastLimitBytes} bytes)`;
      if (!broadcast.some((b) => b.table === table)) broadcast.push({ ref, table, bytes });
    }
    // A subquery's table is a view of its own in every task: never the split table or a
    // partitioned side, whose view there holds only the task's part of it.
    for (const ref of subqueryTables) {
      const table = ctx.refTable.get(ref)!;
      if (table === splitRef.table || table === coSplit?.join.b.table || (partitioned && (table === partitioned.a.table || table === partitioned.b.table))) return `subqueries are evaluated in one place (one reads ${table.snapshot.name}, which is split)`;
      // Its own filters prune its files (pruneRef): a table both the query and a subquery
      // read is one input of the files either keeps.
      broadcast.push({ ref, table, bytes: tableBytes(table.snapshot) });
    }

    const isAggregate = select.group_expressions?.length > 0 || select.aggregate_handling === 'FORCE_AGGREGATES'
      || exprs.some((e) => someExpression(e, (x) => x.class === 'FUNCTION' && ctx.aggregates.has(String(x.function_name).toLowerCase())));

    const ordered = orderByAllAsOrdinals(select, ctx.output.length);
    if (typeof ordered === 'string') return ordered;
    // The two sides of a partitioned join arrive at its tasks filtered by their own pushable
    // conjuncts (their leaf fragments apply them): there they are TRUE, and a column only
    // they read is not shuffled (TPC-H Q13's o_comment).
    const assumed = partitioned && partitioned.a.table !== partitioned.b.table ? assumeApplied(ctx, [partitioned.a.ref, partitioned.b.ref]) : undefined;
    let built: Built | string;
    let keyGrouped: ReturnType<Planner['keyGroupedSplit']>;
    let fragmentSql: string, reduceSql: string;
    try {
      // Grouped by a key the fragments' files hold in disjoint ranges: each group is whole in
      // one fragment, which aggregates it to the end, as a scan.
      // (Not under a partitioned join: its tasks hold rows by the join key's hash, not by files.)
      keyGrouped = isAggregate && !partitioned ? this.keyGroupedSplit(ctx, select, splitRef, coSplit) : undefined;
      const whole = keyGrouped ? buildScan(ctx, ordered) : undefined;
      if (whole && typeof whole !== 'string') {
        built = { ...whole, shape: 'scan-aggregate', reason: `grouped by ${keyGrouped!.table}.${keyGrouped!.column.name}, whose values the fragments' files hold in disjoint ranges: each fragment's groups are whole and aggregated there (HAVING too), ${whole.reason}` };
      } else {
        keyGrouped = undefined;
        if (isAggregate) built = await buildAggregate(ctx, ordered);
        else built = buildScan(ctx, ordered);
      }
      if (typeof built === 'string') return built;
      if (ctx.storeResult && built.unionOfFragments) {
        // A stored result is the union of the fragments' rows as they are: each fragment names
        // its columns as the query does (its order is no table's), and the reduce step only
        // passes them through, so the tasks that compute them store them.
        const { reduceNode } = built;
        built = {
          ...built,
          fragmentNode: { ...reduceNode, modifiers: [], from_table: { type: 'SUBQUERY', alias: PARTIALS_VIEW, sample: null, query_location: 0, subquery: { node: built.fragmentNode, named_param_map: [] }, column_name_alias: [] } },
          reduceNode: selectNode([star()], baseTable(PARTIALS_VIEW)),
        };
      }

      [fragmentSql, reduceSql] = await printNodes(ctx.conn, [built.fragmentNode, built.reduceNode]);
    } finally {
      assumed?.restore();
    }

    // Check both statements bind, and that the reduce returns the query's own columns.
    let partialColumns: Column[];
    try {
      partialColumns = await this.describe(ctx.conn, ctx.tables, fragmentSql, ctx.signal);
      const withPartials = new Map(ctx.tables).set(PARTIALS_VIEW, await createEmptyTable(ctx.conn, PARTIALS_VIEW, partialColumns));
      const reduced = await this.describe(ctx.conn, withPartials, reduceSql, ctx.signal);
      if (!sameColumns(reduced, ctx.output)) return `the ${built.shape} rewrite would change the result's columns`;
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      return `the ${built.shape} rewrite does not bind (${firstLine((err as Error).message)})`;
    } finally {
      await ctx.conn.run(`DROP TABLE IF EXISTS temp.${sqlIdent(PARTIALS_VIEW)}`);
    }

    // Prune and assign files.
    const scans: TableScanReport[] = [];
    const broadcastInputs: FragmentInput[] = [];
    const pruneBroadcast = async () => {
      for (const b of broadcast) {
        // A table read twice (two references) is one input: the files either keeps.
        addInput(broadcastInputs, inputFor(b.table, await this.pruneRef(ctx, b.ref, 'broadcast', scans)));
      }
    };
    if (partitioned) {
      await pruneBroadcast();
      return this.partitionedPlan(ctx, partitioned, broadcastInputs, scans, built, fragmentSql, reduceSql, partialColumns, assumed?.names);
    }
    // A table a tied subquery reads too is one input of the files any of its references keeps.
    const filesOf = async (ref: AstNode, role: TableScanReport['role']): Promise<FileRef[]> => {
      const table = ctx.refTable.get(ref)!;
      const own: TableScanReport[] = [];
      const files = await this.pruneRef(ctx, ref, role, own);
      const seen = new Set(files.map((f) => f.uri));
      for (const { ref: other } of tied.values()) {
        if (other === ref || ctx.refTable.get(other) !== table) continue;
        for (const f of await this.pruneRef(ctx, other, role, [])) {
          if (!seen.has(f.uri)) files.push(f);
          seen.add(f.uri);
        }
      }
      // One report per table: its own filter's when the others kept no more files.
      scans.push(files.length === own[0].filesKept ? own[0] : await this.scanReport(ctx, table, role, files, null, null));
      return files;
    };
    const splitFiles = await filesOf(splitRef.ref, 'split');
    const coFiles = coSplit ? await filesOf(coSplit.join.b.ref, 'co-split') : [];
    await pruneBroadcast();
    let groups: { split: FileRef[]; co: FileRef[] }[];
    let coSplitText = '';
    // Files by the ranges of the co-split key (a key-grouped one is that key, or the split
    // table's own), else by bytes. The ranges were found on all the files, and pruning only
    // drops files, so the kept ones have them too.
    const rangeKey = coSplit?.join.keyA ?? keyGrouped?.column;
    if (rangeKey) {
      const components = keyComponents(
        keyRanges(splitFiles, splitRef.table.snapshot.files, rangeKey) as RangedFile[],
        coSplit ? keyRanges(coFiles, coSplit.join.b.table.snapshot.files, coSplit.join.keyB) as RangedFile[] : [],
      );
      groups = coSplitGroups(components, ctx.fragments).map((g) => ({ split: g.a, co: g.b }));
      if (coSplit) {
        const { join: j } = coSplit;
        coSplitText = `co-split join: ${splitRef.table.snapshot.name} and ${j.b.table.snapshot.name} split together along their files' ranges of ${j.keyA.name} = ${j.keyB.name} (${components.length} disjoint key ranges into ${groups.length} fragment(s)), rows that can match always in one fragment`;
        if (tied.size) coSplitText += `; ${tied.size === 1 ? 'the subquery' : `${tied.size} subqueries`} over ${[...new Set([...tied.values()].map((t) => ctx.refTable.get(t.ref)!.snapshot.name))].join(', ')}, which ${tied.size === 1 ? 'reads' : 'read'} only rows of the keys a fragment holds, evaluated by every fragment over its own files`;
      }
    } else groups = assignFiles(splitFiles, ctx.fragments).map((files) => ({ split: files, co: [] }));
    const final = await this.finalAggregateStage(ctx, built, splitFiles.reduce((n, f) => n + f.rowCount, 0), partialColumns, groups.length);
    const fragments: Fragment[] = groups.map((g, i) => ({
      id: `f${i}`,
      output: PARTIALS_VIEW,
      inputs: [inputFor(splitRef.table, g.split), ...(coSplit ? [inputFor(coSplit.join.b.table, g.co)] : []), ...broadcastInputs],
      sql: fragmentSql,
      ...(final ? { shuffleWrite: final.shuffleWrite } : {}),
    }));
    const reduce: ReduceStep = final?.reduce ?? { views: [{ name: PARTIALS_VIEW, columns: partialColumns }], sql: reduceSql };
    // A table the query and a subquery both read is one input: named once.
    const broadcastNames = [...new Set(broadcast.map((b) => b.table.snapshot.name))];
    const joinText = [coSplitText, broadcast.length ? `broadcast join: ${splitRef.table.snapshot.name} split, ${broadcastNames.join(', ')} read whole by every fragment` : ''].filter(Boolean).join('; ');
    const reason = joinText ? `${built.reason}; ${joinText}` : built.reason;
    return {
      shape: built.shape,
      sql: ctx.querySql,
      output: ctx.output,
      fragments,
      ...(final ? { stages: [final.stage] } : {}),
      reduce,
      scans,
      join: broadcast.length || coSplit
        ? { split: splitRef.table.snapshot.name, broadcast: broadcastNames, ...(coSplit ? { coSplit: { table: coSplit.join.b.table.snapshot.name, keys: [coSplit.join.keyA.name, coSplit.join.keyB.name], ranges: coSplit.ranges, ...(tied.size ? { subqueries: tied.size } : {}) } } : {}) }
        : null,
      ...(built.unionOfFragments ? { unionOfFragments: true } : {}),
      reason: final ? `${reason}; ${final.stage.reason}` : reason,
    };
  }

  /**
   * The table references of a WHERE subquery that every task may evaluate itself, reading
   * its tables whole: it binds on its own (so it is not correlated), reads only catalog
   * tables under the broadcast limit, and gives every task the same rows (nothing volatile,
   * no LIMIT or SAMPLE, which could pick different rows in each). TPC-H Q16's `NOT IN
   * (SELECT s_suppkey FROM supplier WHERE ...)`. Otherwise why not.
   */
  private async broadcastSubquery(ctx: PlanContext, body: AstNode): Promise<AstNode[] | string> {
    const { tables, tableFunctions } = findBaseTables(body);
    if (tables.length === 0 || tableFunctions.length > 0) return 'one reads no table, or a table function';
    let chosen = false;
    visitNodes(body, (n) => {
      if (n.type === 'LIMIT_MODIFIER' || n.type === 'LIMIT_PERCENT_MODIFIER' || (n.sample !== undefined && n.sample !== null)) chosen = true;
      return !chosen;
    });
    if (chosen) return 'one has a LIMIT or SAMPLE';
    for (const ref of tables) {
      const table = ctx.refTable.get(ref);
      if (!table) return 'one reads what is not a catalog table';
      const bytes = tableBytes(table.snapshot);
      if (bytes > this.options.broadcastLimitBytes) return `one reads ${table.snapshot.name} (${bytes} bytes), over the broadcast limit (${this.options.broadcastLimitBytes} bytes)`;
    }
    if (await mentionsVolatile(ctx.conn, body)) return 'one calls a volatile function';
    try {
      const [sql] = await printNodes(ctx.conn, [body]);
      await this.describe(ctx.conn, ctx.tables, sql, ctx.signal);
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      return 'one is correlated with the query around it';
    }
    return tables;
  }

  /**
   * Consumer tasks of a shuffle from `producers` tasks: the configured partitions, fewer when
   * producers x consumers (one ranged GET of a piece each) would pass maxShuffleGets.
   */
  private consumers(ctx: PlanContext, producers: number): number {
    const max = this.options.maxShuffleGets ?? 1_000_000;
    return Math.max(1, Math.min(Math.floor(ctx.partitions), Math.floor(max / Math.max(1, producers))));
  }

  /**
   * The final aggregate of a grouped aggregate as a stage (partitioned aggregation): the
   * fragments' partials are hash-partitioned on the group keys, task p runs the final
   * aggregate (and HAVING) over partition p, and the reduce step only orders and limits the
   * tasks' rows. Chosen when the groups are estimated at `partitionedAggregateGroups` or
   * more (0: whenever the query groups), since otherwise every fragment's partial groups
   * travel to the one reduce step. Undefined: the reduce step aggregates, as before.
   */
  private async finalAggregateStage(ctx: PlanContext, built: Built, splitRows: number, partialColumns: Column[], producers: number): Promise<{ stage: Stage; reduce: ReduceStep; shuffleWrite: NonNullable<Fragment['shuffleWrite']> } | undefined> {
    const final = built.finalStage;
    if (!final || typeof final === 'string' || ctx.finalOnOneNode) return undefined;
    const threshold = ctx.storeResult ? 0 : this.options.partitionedAggregateGroups ?? DEFAULT_PARTITIONED_AGGREGATE_GROUPS;
    // Partial rows are per group and DISTINCT argument (count(DISTINCT x) keeps a row per x).
    const estimate = estimateGroups(ctx, final.partialGroups, splitRows);
    // What one reduce step would read: every producer's partial groups (each producer holds
    // up to all the groups, and together no more partial rows than they read).
    const partialGroups = estimate === undefined ? undefined : Math.min(estimate * Math.max(1, producers), Math.max(estimate, splitRows));
    if (threshold > 0 && (partialGroups === undefined || partialGroups < threshold)) return undefined;
    const keys = final.groups.map((_, i) => partialColumns.find((c) => c.name === `__g${i}`));
    // -0.0 and 0.0 are one group but need not hash alike.
    if (keys.some((k) => !k || /^(FLOAT|DOUBLE|REAL|FLOAT4|FLOAT8)$/i.test(k.type))) return undefined;
    const [stageSql, topSql] = await printNodes(ctx.conn, [final.stage, final.top]);
    const withFinal = new Map(ctx.tables).set(FINAL_VIEW, await createEmptyTable(ctx.conn, FINAL_VIEW, ctx.output));
    try {
      const top = await this.describe(ctx.conn, withFinal, topSql, ctx.signal);
      if (!sameColumns(top, ctx.output)) return undefined;
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      return undefined;
    } finally {
      await ctx.conn.run(`DROP TABLE IF EXISTS temp.${sqlIdent(FINAL_VIEW)}`);
    }
    const partitions = this.consumers(ctx, producers);
    const partitioning = { kind: 'hash' as const, keys: keys.map((k) => ({ expr: sqlIdent(k!.name), type: k!.type })), count: partitions };
    const estimated = estimate === undefined ? 'not estimated' : `about ${estimate} estimated, up to ${partialGroups} partial groups from ${producers} producer task(s)`;
    return {
      shuffleWrite: { stage: PARTIALS_VIEW, partitioning },
      stage: {
        id: FINAL_VIEW,
        sql: stageSql,
        reads: [{ view: PARTIALS_VIEW, stage: PARTIALS_VIEW, columns: partialColumns }],
        tables: [],
        tasks: partitions,
        output: { columns: ctx.output, partitioning: { kind: 'single' } },
        reason: `partitioned aggregation (${estimated} groups): partials hash-partitioned on the ${keys.length} group key(s) into ${partitions} partitions, task p aggregates partition p (${producers} x ${partitions} piece GETs at most)`,
      },
      reduce: { views: [{ name: FINAL_VIEW, columns: ctx.output }], sql: topSql },
    };
  }

  /**
   * A partitioned hash join: each large table's filtered, projected rows (a leaf stage per
   * table) are hash-partitioned on the join key, cast to the keys' common type; task p of
   * the join stage runs the split rewrite's fragment SQL over partition p of each, with the
   * small tables read whole; the reduce step combines the tasks' partials as for a
   * broadcast join.
   */
  private async partitionedPlan(
    ctx: PlanContext, join: PartitionedJoin, broadcastInputs: FragmentInput[], scans: TableScanReport[],
    built: Built, fragmentSql: string, reduceSql: string, partialColumns: Column[], sideNames = ctx.scope.names,
  ): Promise<Plan> {
    const fragments: Fragment[] = [];
    const partitionings: Extract<Partitioning, { kind: 'hash' }>[] = [];
    const reads: Stage['reads'] = [];
    const semiJoined: string[] = [];
    const sets: string[] = [];
    let sideRows = 0;
    // A self-join reads its table once: the rows either reference can see, partitioned on
    // the one key column both sides join by; each task joins its partition with itself.
    const self = join.a.table === join.b.table;
    const sides = self ? [[join.a, join.keyA, [join.a.ref, join.b.ref]] as const] : [[join.a, join.keyA, [join.a.ref]] as const, [join.b, join.keyB, [join.b.ref]] as const];
    for (const [side, key, refs] of sides) {
      const view = side.table.view;
      const pushed = await this.pushdownScan(ctx, view, [...refs], sideNames);
      sideRows = Math.max(sideRows, pushed.files.reduce((n, f) => n + f.rowCount, 0));
      semiJoined.push(...pushed.semiJoined);
      if (pushed.asSet) sets.push(pushed.table.snapshot.name);
      scans.push({ ...pushed.scan, role: 'split' });
      const partitioning = { kind: 'hash' as const, keys: [{ expr: sqlIdent(key.name), type: join.type }], count: 0 };
      partitionings.push(partitioning);
      for (const group of assignFiles(pushed.files, ctx.fragments)) {
        fragments.push({
          id: `f${fragments.length}`, output: view, inputs: [inputFor(pushed.table, group), ...pushed.broadcast], sql: pushed.sql,
          shuffleWrite: { stage: view, partitioning },
        });
      }
      reads.push({ view, stage: view, columns: pushed.projected });
    }
    // Each join task reads its piece of every producer of both sides.
    const partitions = this.consumers(ctx, fragments.length);
    for (const p of partitionings) p.count = partitions;
    const names = [join.a.table.snapshot.name, join.b.table.snapshot.name];
    const keyText = `${names[0]}.${join.keyA.name} = ${names[1]}.${join.keyB.name} as ${join.type}`;
    // Many groups: the join tasks' partial aggregates go on, hash-partitioned on the group
    // keys, to a stage that aggregates them (partitioned aggregation after the join).
    const final = await this.finalAggregateStage(ctx, built, sideRows, partialColumns, partitions);
    const stage: Stage = {
      id: PARTIALS_VIEW,
      sql: fragmentSql,
      reads,
      tables: broadcastInputs,
      tasks: partitions,
      output: { columns: partialColumns, partitioning: final ? final.shuffleWrite.partitioning : { kind: 'single' } },
      reason: `partitioned hash join on ${keyText}: task p joins partition p of ${self ? `${names[0]} (read once) with itself` : names.join(' and ')} (${fragments.length} x ${partitions} piece GETs at most)${broadcastInputs.length ? `, ${broadcastInputs.map((b) => b.table).join(', ')} read whole` : ''}`,
    };
    const reduction = reductionText(semiJoined, sets);
    return {
      shape: built.shape,
      sql: ctx.querySql,
      output: ctx.output,
      fragments,
      stages: final ? [stage, final.stage] : [stage],
      reduce: final?.reduce ?? { views: [{ name: PARTIALS_VIEW, columns: partialColumns }], sql: reduceSql },
      scans,
      join: { split: names[0], broadcast: broadcastInputs.map((b) => b.table), partitioned: { tables: names, keys: [join.keyA.name, join.keyB.name], type: join.type, partitions } },
      reason: `${built.reason}; both over the broadcast limit: ${names.join(' and ')} hash-partitioned on ${keyText} into ${partitions} partitions${broadcastInputs.length ? `, ${broadcastInputs.map((b) => b.table).join(', ')} read whole by every task` : ''}${reduction}${final ? `; then ${final.stage.reason}` : ''}`,
    };
  }

  /**
   * Key-partitioned execution: a query whose every grouping and window needs its rows
   * together by some of one table's columns (GROUP BY k with an aggregate that has no
   * partial/final rule, such as median or string_agg(... ORDER BY); windows PARTITION BY
   * k; QUALIFY over them) runs whole in each task of a stage, over the table's filtered,
   * projected rows hash-partitioned on those columns, with every other table read whole.
   * Rows that share k meet in one task, so each task's groups, window partitions and
   * QUALIFY are exact; ORDER BY, LIMIT and DISTINCT across tasks stay in the reduce step.
   * Chosen when the table's pull-up would be over the broadcast limit (what one node is
   * given to read whole). Undefined: the query groups or windows by nothing it could be
   * partitioned on; a string: why it is not partitioned.
   */
  private async keyPartitionedPlan(ctx: PlanContext): Promise<Plan | string | undefined> {
    const query = ctx.root;
    if (query.type !== 'SELECT_NODE' || query.sample) return undefined;
    const select = orderByAllAsOrdinals(query, ctx.output.length);
    if (typeof select === 'string') return undefined;
    const exprs = selectExpressions(select);
    const windows: AstNode[] = [];
    const collectWindows = (e: AstNode) => someExpression(e, (x) => {
      if (x.class === 'WINDOW') windows.push(x);
      return false;
    });
    exprs.forEach(collectWindows);
    const isAggregate = select.group_expressions?.length > 0 || select.aggregate_handling === 'FORCE_AGGREGATES'
      || exprs.some((e) => someExpression(e, (x) => x.class === 'FUNCTION' && ctx.aggregates.has(String(x.function_name).toLowerCase())));
    // Each grouping and each window wants its rows together by a set of expressions; any
    // part of the set they all share will do as the partitioning key.
    const wants: AstNode[][] = [];
    if (isAggregate) {
      if ((select.group_sets?.length ?? 0) > 1) return undefined;
      const groups = groupKeys(ctx, select);
      if (typeof groups === 'string') return undefined;
      wants.push(groups);
    }
    for (const w of windows) wants.push((w.partitions ?? []) as AstNode[]);
    if (wants.length === 0) return undefined;
    let shared = wants[0];
    for (const w of wants.slice(1)) shared = shared.filter((k) => w.some((x) => exprKey(x) === exprKey(k)));
    if (shared.length === 0) return undefined;

    // The keys that are plain columns of one table of the FROM clause.
    const fromRefs: AstNode[] = [];
    collectBaseRefs(select.from_table, fromRefs);
    const owned = new Map<AstNode, Column[]>();
    for (const k of shared) {
      const owner = columnOwner(ctx, k, fromRefs);
      if (!owner) continue;
      // -0.0 and 0.0 (and NaNs) are one key but need not hash alike; a collation groups what hashes apart.
      if (/^(FLOAT|DOUBLE|REAL|FLOAT4|FLOAT8)$/i.test(owner.column.type)) continue;
      const list = owned.get(owner.ref) ?? [];
      if (!list.some((c) => c.name === owner.column.name)) list.push(owner.column);
      owned.set(owner.ref, list);
    }
    if (owned.size === 0) return 'the keys it groups or windows by are not columns of a table it reads';
    const [ref, keys] = [...owned].sort((a, b) => tableBytes(ctx.refTable.get(b[0])!.snapshot) - tableBytes(ctx.refTable.get(a[0])!.snapshot))[0];
    const table = ctx.refTable.get(ref)!;
    const name = table.snapshot.name;
    if (exprs.some((e) => someExpression(e, (x) => x.class === 'COLLATE'))) return 'collations are evaluated in one place';
    if ([...ctx.refTable.values()].filter((t) => t === table).length > 1) return `${name} is read more than once`;
    if (!splittableSide(select.from_table, ref)) return `an outer join keeps rows of another table against ${name}`;
    const projected = usedColumns(ctx, table.snapshot.columns, [ref]);
    const pullUp = (tableBytes(table.snapshot) * projected.length) / Math.max(1, table.snapshot.columns.length);
    if (pullUp <= this.options.broadcastLimitBytes) return undefined;
    const others = [...ctx.resolved.values()].filter((r) => r !== table);
    const large = others.find((r) => tableBytes(r.snapshot) > this.options.broadcastLimitBytes);
    if (large) return `${large.snapshot.name} (${tableBytes(large.snapshot)} bytes), read whole by every task, is over the broadcast limit (${this.options.broadcastLimitBytes} bytes)`;

    const split = lastStepOver(ctx, select, select, KEYED_VIEW);
    if (typeof split === 'string') return split;
    const [stageSql, topSql] = await printNodes(ctx.conn, [split.stage, split.top]);
    const unbound = await this.keyedStatementsBind(ctx, [], stageSql, topSql, { changed: 'partitioning by key would change the result\'s columns', unbound: 'the key-partitioned statements do not bind' });
    if (unbound) return unbound;

    const scans: TableScanReport[] = [];
    const pushed = await this.pushdownScan(ctx, table.view, [ref]);
    scans.push({ ...pushed.scan, role: 'split' });
    const groups = assignFiles(pushed.files, ctx.fragments);
    const partitions = this.consumers(ctx, groups.length);
    const partitioning = { kind: 'hash' as const, keys: keys.map((k) => ({ expr: sqlIdent(k.name), type: k.type })), count: partitions };
    const fragments: Fragment[] = groups.map((files, i) => ({
      id: `f${i}`, output: table.view, inputs: [inputFor(pushed.table, files), ...pushed.broadcast], sql: pushed.sql,
      shuffleWrite: { stage: table.view, partitioning },
    }));
    // Every other table (of the FROM clause or of a subquery) is read whole by each task:
    // the files any of its references keeps.
    const whole: FragmentInput[] = [];
    for (const [node, t] of ctx.refTable) {
      if (t === table) continue;
      addInput(whole, inputFor(t, await this.pruneRef(ctx, node, 'broadcast', scans)));
    }
    const keyText = keys.map((k) => `${name}.${k.name}`).join(', ');
    const what = [isAggregate && 'groups', windows.length && 'window partitions', select.qualify && 'QUALIFY'].filter(Boolean).join(', ');
    const stage: Stage = {
      id: KEYED_VIEW,
      sql: stageSql,
      reads: [{ view: table.view, stage: table.view, columns: pushed.projected }],
      tables: whole,
      tasks: partitions,
      output: { columns: ctx.output, partitioning: { kind: 'single' } },
      reason: `key-partitioned: ${name}'s rows hash-partitioned on ${keyText} into ${partitions} partitions; task p runs the query over partition p (its ${what} are whole there; ${fragments.length} x ${partitions} piece GETs at most)${whole.length ? `, ${whole.map((w) => w.table).join(', ')} read whole` : ''}`,
    };
    const reduction = reductionText(pushed.semiJoined, pushed.asSet ? [pushed.table.snapshot.name] : []);
    return {
      shape: 'key-partitioned',
      sql: ctx.querySql,
      output: ctx.output,
      fragments,
      stages: [stage],
      reduce: { views: [{ name: KEYED_VIEW, columns: ctx.output }], sql: topSql },
      scans,
      join: whole.length ? { split: name, broadcast: whole.map((w) => w.table) } : null,
      reason: `every grouping and window of the query is by ${keyText}: ${name} (about ${Math.round(pullUp)} bytes to pull up, over the broadcast limit) is hash-partitioned on it and the query runs per partition; ORDER BY, LIMIT and DISTINCT over the tasks' rows in the reduce step${reduction}`,
    };
  }

  /**
   * Whether a key-partitioned stage's statement (over the query's tables and the views it
   * reads, `reads`) and the reduce step's statement over the tasks' rows (KEYED_VIEW) both
   * return the query's columns: undefined when they do, else why not.
   */
  private async keyedStatementsBind(ctx: PlanContext, reads: { name: string; columns: Column[] }[], stageSql: string, topSql: string, why: { changed: string; unbound: string }): Promise<string | undefined> {
    const tables = new Map(ctx.tables);
    for (const r of [...reads, { name: KEYED_VIEW, columns: ctx.output }]) tables.set(r.name, await createEmptyTable(ctx.conn, r.name, r.columns));
    try {
      for (const sql of [stageSql, topSql]) if (!sameColumns(await this.describe(ctx.conn, tables, sql, ctx.signal), ctx.output)) return why.changed;
      return undefined;
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      return `${why.unbound} (${firstLine((err as Error).message)})`;
    } finally {
      for (const r of [...reads, { name: KEYED_VIEW }]) await ctx.conn.run(`DROP TABLE IF EXISTS temp.${sqlIdent(r.name)}`);
    }
  }

  /**
   * A partitioned set operation: UNION, EXCEPT and INTERSECT (DISTINCT or ALL, nested) keep,
   * drop or count a row by the identical rows of each branch, so with every branch's rows
   * hash-partitioned on the same columns (by position, cast to the result's types) identical
   * rows meet in one task, and the set operation over each partition is exact. Each branch
   * must be a plain scan of one table (filter and projection, run by its leaf fragments; a
   * branch that is more runs first as a step when subqueries are materialized, and is then a
   * scan of its result); the reduce step orders and limits the tasks' rows. Only UNION ALL
   * needs no partitioning: its answer is the branches' rows as they are pulled up.
   */
  private async setOperationPlan(ctx: PlanContext): Promise<Plan | string | undefined> {
    const root = ctx.root;
    const branches = setOperationBranches(root);
    if (!branches) return 'UNION BY NAME, or a branch with its own ORDER BY or LIMIT';
    const ops = new Set<string>();
    const walk = (n: AstNode): void => {
      if (n.type !== 'SET_OPERATION_NODE') return;
      ops.add(`${n.setop_type}${n.setop_all ? ' ALL' : ''}`);
      walk(n.left);
      walk(n.right);
    };
    walk(root);
    if (ops.size === 1 && ops.has('UNION ALL')) return undefined;
    if (!branches.every((b) => plainScan(b, ctx.aggregates))) return 'a branch is more than a filter and projection of one table';
    if (pullUpEstimate(ctx) <= this.options.broadcastLimitBytes) return undefined;
    const printed = await printNodes(ctx.conn, branches);
    const columns: Column[][] = [];
    for (const sql of printed) {
      try {
        columns.push(await this.describe(ctx.conn, ctx.tables, sql, ctx.signal));
      } catch (err) {
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        return `a branch does not bind on its own (${firstLine((err as Error).message)})`;
      }
    }
    if (columns.some((cols) => cols.length !== ctx.output.length || new Set(cols.map((c) => c.name.toLowerCase())).size !== cols.length)) {
      return 'a branch names two columns alike';
    }
    // Columns every branch hashes alike: not floating point (-0.0 and 0.0 are one value
    // but need not hash alike), and of the result's type in every branch, or integers (a
    // value cast to a wider integer type is the same number).
    const keyIndexes = ctx.output.map((_, i) => i).filter((i) => {
      const types = [ctx.output[i].type, ...columns.map((cols) => cols[i].type)];
      if (types.some((t) => /FLOAT|DOUBLE|REAL/i.test(t))) return false;
      return types.every((t) => t === types[0]) || types.every(isIntegerType);
    });
    if (keyIndexes.length === 0) return 'no column hashes alike in every branch';

    const views = branches.map((_, i) => `__b${i}`);
    const rebuild = (n: AstNode): AstNode => (n.type === 'SET_OPERATION_NODE' ? { ...n, left: rebuild(n.left), right: rebuild(n.right) } : selectAllFrom(views[branches.indexOf(n)]));
    const split = lastStepOver(ctx, root, rebuild(root), KEYED_VIEW);
    if (typeof split === 'string') return split;
    const [stageSql, topSql] = await printNodes(ctx.conn, [split.stage, split.top]);
    const reads = views.map((name, i) => ({ name, columns: columns[i] }));
    const unbound = await this.keyedStatementsBind(ctx, reads, stageSql, topSql, { changed: 'partitioning the set operation would change the result\'s columns', unbound: 'the partitioned set operation does not bind' });
    if (unbound) return unbound;

    const scans: TableScanReport[] = [];
    const fragments: Fragment[] = [];
    const partitionings: Extract<Partitioning, { kind: 'hash' }>[] = [];
    for (const [i, branch] of branches.entries()) {
      const table = ctx.refTable.get(branch.from_table)!;
      const files = await this.pruneRef(ctx, branch.from_table, 'split', scans);
      const partitioning = { kind: 'hash' as const, keys: keyIndexes.map((k) => ({ expr: sqlIdent(columns[i][k].name), type: ctx.output[k].type })), count: 0 };
      partitionings.push(partitioning);
      for (const group of assignFiles(files, ctx.fragments)) {
        fragments.push({ id: `f${fragments.length}`, output: views[i], inputs: [inputFor(table, group)], sql: printed[i], shuffleWrite: { stage: views[i], partitioning } });
      }
    }
    const partitions = this.consumers(ctx, fragments.length);
    for (const p of partitionings) p.count = partitions;
    const names = branches.map((b) => ctx.refTable.get(b.from_table)!.snapshot.name);
    const opText = [...ops].join(', ');
    const stage: Stage = {
      id: KEYED_VIEW,
      sql: stageSql,
      reads: views.map((v, i) => ({ view: v, stage: v, columns: columns[i] })),
      tables: [],
      tasks: partitions,
      output: { columns: ctx.output, partitioning: { kind: 'single' } },
      reason: `partitioned set operation (${opText}): each branch's rows hash-partitioned on ${keyIndexes.length} of its ${ctx.output.length} column(s) into ${partitions} partitions; task p runs the set operation over partition p (${fragments.length} x ${partitions} piece GETs at most)`,
    };
    return {
      shape: 'key-partitioned',
      sql: ctx.querySql,
      output: ctx.output,
      fragments,
      stages: [stage],
      reduce: { views: [{ name: KEYED_VIEW, columns: ctx.output }], sql: topSql },
      scans,
      join: null,
      reason: `${opText} over ${branches.length} branches (${names.join(', ')}), over the broadcast limit: identical rows meet in one partition, so the set operation runs per partition; ORDER BY and LIMIT over the tasks' rows in the reduce step`,
    };
  }

  /** Pushdown + single-node: each table's filtered, projected rows are pulled up. */
  private async singleNode(ctx: PlanContext, why: string): Promise<Plan> {
    const fragments: Fragment[] = [];
    const views: ReduceStep['views'] = [];
    const scans: TableScanReport[] = [];
    const semiJoined = new Set<string>();
    const sets: string[] = [];
    let kept = await this.eagerAggregates(ctx);
    let derived = await this.aggregatedSubqueries(ctx);
    // Aggregated first only to have fragments compute it: else the query as written.
    if (kept && !kept.aggregated.every((ref) => derived.excluded.has(ref))) {
      derived.restore();
      kept.undo();
      kept = undefined;
      derived = await this.aggregatedSubqueries(ctx);
    }
    try {
      const plan = await this.singleNodeOver(ctx, why, derived, { fragments, views, scans, semiJoined, sets });
      return kept ? { ...plan, reason: `${plan.reason}; ${kept.what.join('; ')}` } : plan;
    } finally {
      derived.restore();
      kept?.undo();
    }
  }

  /** Eager aggregation (eager.ts) of ctx.root's grouped joins, when the query still binds to the same columns. */
  private async eagerAggregates(ctx: PlanContext): Promise<EagerRewrite | undefined> {
    const rewrite = eagerAggregation(ctx.root, ctx.output.map((c) => c.name), (n) => ctx.refTable.get(n)?.snapshot.columns, ctx.aggregates);
    if (!rewrite) return undefined;
    if (await this.rebinds(ctx.conn, ctx.tables, ctx.root, ctx.output, ctx.signal)) return rewrite;
    rewrite.undo();
    return undefined;
  }

  /**
   * The subqueries of a query run on one node that aggregate (derived tables, CTEs and
   * subqueries in expressions, at any depth, that bind on their own): each is planned as a
   * query of its own (splitPlan), and when that splits it into partial aggregates per
   * fragment (or, for ORDER BY ... LIMIT, a top-k per fragment) with the final step on the
   * coordinator, the fragments compute the partials and the single-node step reads them:
   * the subquery's body becomes that final step over a view of the partials, and its tables
   * are not pulled up for it. TPC-H Q15's revenue view, a sum per supplier over three months
   * of lineitem, sends 10,000 partial groups per fragment instead of 225,000 rows. Identical
   * bodies share one set of partials.
   *
   * Only where that saves a pull-up: a table the rest of the query reads too is pulled up
   * anyway, and the single-node step aggregates its rows for the subquery at less cost than
   * a second scan of its files (TPC-H Q11's HAVING subquery over partsupp, Q22's average over
   * customer). The bodies are replaced in place until `restore()`.
   */
  private async aggregatedSubqueries(ctx: PlanContext): Promise<AggregatedSubqueries> {
    const out: AggregatedSubqueries = { fragments: [], views: [], scans: [], excluded: new Set(), what: [], restore: () => {} };
    // (A CTE's body that reads an earlier CTE does not bind on its own, and stays.)
    const bodies = subqueryBodies(ctx.root);
    if (bodies.length === 0) return out;
    const isAgg = (e: AstNode) => e.class === 'FUNCTION' && ctx.aggregates.has(String(e.function_name).toLowerCase());

    // The candidates: bodies that aggregate (or take a top-k), read catalog tables only, in
    // the order found (outermost first).
    interface Candidate { body: AstNode; sql: string; refs: AstNode[]; scope: ScopeInfo; inside: Set<AstNode> }
    const candidates: Candidate[] = [];
    for (const body of bodies) {
      const aggregates = body.group_expressions?.length > 0 || body.aggregate_handling === 'FORCE_AGGREGATES' || selectExpressions(body).some((e) => someExpression(e, isAgg));
      const modifiers = (body.modifiers ?? []) as AstNode[];
      const topK = modifiers.some((m) => m.type === 'ORDER_MODIFIER') && modifiers.some((m) => m.type === 'LIMIT_MODIFIER');
      // Any other body is pulled up as the rows of its tables (pushdownScan), as small.
      if (!aggregates && !topK) continue;
      const scope = analyzeScopes(body, (node) => ctx.refTable.get(node)?.snapshot.columns, ctx.aggregates);
      if (scope.refs.length === 0 || scope.refs.some((r) => !ctx.refTable.has(r.node))) continue;
      // A name of a CTE of the query around it would bind to a table of that name on its own.
      let cteRead = false;
      visitNodes(body, (n) => {
        if (n.type === 'BASE_TABLE' && !('class' in n) && !ctx.refTable.has(n)) cteRead = true;
      });
      if (cteRead) continue;
      const [sql] = await printNodes(ctx.conn, [body]);
      candidates.push({ body, sql, refs: scope.refs.map((r) => r.node), scope, inside: new Set(subqueryBodies(body)) });
    }
    // Keep the outermost of them whose every table is read by kept bodies only (dropping one
    // may leave another's table read elsewhere: until none changes), then plan them; one
    // that does not split so is dropped, and the choice made again. A body is planned only
    // once it is kept: most that are not would cost a plan for nothing.
    interface Split extends Candidate { plan: Plan }
    const planned = new Map<string, Plan | undefined>();
    let kept: Split[] = [];
    for (let settled = false; !settled;) {
      const chosen: Candidate[] = [];
      const within = new Set<AstNode>();
      for (const c of candidates) {
        if (within.has(c.body) || (planned.has(c.sql) && !planned.get(c.sql))) continue;
        chosen.push(c);
        for (const n of c.inside) within.add(n);
      }
      let selection = chosen;
      for (let changed = true; changed;) {
        const covered = new Set(selection.flatMap((k) => k.refs));
        const next = selection.filter((k) => {
          const mine = new Set(k.refs.map((r) => ctx.refTable.get(r)!.view));
          return ctx.scope.refs.every((r) => !mine.has(r.view) || covered.has(r.node));
        });
        changed = next.length !== selection.length;
        selection = next;
      }
      settled = true;
      for (const c of selection) {
        if (!planned.has(c.sql)) planned.set(c.sql, await this.partialsOf(ctx, c.body, c.sql, c.scope));
        if (!planned.get(c.sql)) settled = false;
      }
      kept = settled ? selection.map((c) => ({ ...c, plan: planned.get(c.sql)! })) : [];
    }
    if (kept.length === 0) return out;

    const taken = new Set(ctx.tables.keys());
    const finals = new Map<string, AstNode>();
    const saved: { body: AstNode; was: AstNode }[] = [];
    out.restore = () => {
      for (const { body, was } of saved.reverse()) become(body, was);
    };
    try {
      for (const { body, sql, refs, plan } of kept) {
        let final = finals.get(sql);
        if (!final) {
          // Named by the table it reads (the single-node step reads no other table of that name).
          const tables = [...new Set(refs.map((r) => ctx.refTable.get(r)!))];
          let view = `${tables[0].view}_partials`;
          for (let n = 2; taken.has(view); n++) view = `${tables[0].view}_partials${n}`;
          taken.add(view);
          final = (await parseStatement(this.options.engine, plan.reduce.sql)).node;
          visitNodes(final, (n) => {
            if (n.type === 'BASE_TABLE' && !('class' in n) && n.table_name === PARTIALS_VIEW && !n.schema_name && !n.catalog_name) n.table_name = view;
          });
          finals.set(sql, final);
          out.fragments.push(...plan.fragments.map((f) => ({ ...f, output: view })));
          out.views.push({ name: view, columns: plan.reduce.views[0].columns });
          out.scans.push(...plan.scans);
          out.what.push(`${plan.shape === 'top-k' ? 'a top-k' : 'an aggregate'} subquery over ${tables.map((t) => t.snapshot.name).join(', ')}`);
        }
        for (const r of refs) out.excluded.add(r);
        saved.push({ body, was: { ...body } });
        become(body, clone(final));
      }
    } catch (err) {
      out.restore();
      throw err;
    }
    return out;
  }

  /**
   * A subquery body planned as a query of its own, when that gives partial aggregates (or
   * a top-k) per fragment and a final step on one node over them: nothing volatile (drawn
   * by other rows, and once for two equal bodies), binding on its own (a correlated
   * subquery names a column of the query around it), no stage between.
   */
  private async partialsOf(ctx: PlanContext, body: AstNode, sql: string, scope: ScopeInfo): Promise<Plan | undefined> {
    if (await mentionsVolatile(ctx.conn, body)) return undefined;
    let output: Column[];
    try {
      output = await this.describe(ctx.conn, ctx.tables, sql, ctx.signal);
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      return undefined;
    }
    // Its final step is part of the single-node step's, which reads the partials whole.
    const plan = await this.splitPlan({ ...ctx, root: body, querySql: sql, output, scope, setOnly: undefined, storeResult: undefined, finalOnOneNode: true });
    if (typeof plan === 'string' || plan.stages?.length || (plan.shape !== 'scan-aggregate' && plan.shape !== 'top-k')) return undefined;
    if (plan.reduce.views.length !== 1 || plan.fragments.some((f) => f.output !== PARTIALS_VIEW || f.shuffleWrite)) return undefined;
    return plan;
  }

  private async singleNodeOver(
    ctx: PlanContext,
    why: string,
    derived: AggregatedSubqueries,
    { fragments, views, scans, semiJoined, sets }: { fragments: Fragment[]; views: ReduceStep['views']; scans: TableScanReport[]; semiJoined: Set<string>; sets: string[] },
  ): Promise<Plan> {
    const byView = new Map<string, AstNode[]>();
    for (const ref of ctx.scope.refs) {
      if (derived.excluded.has(ref.node)) continue;
      const list = byView.get(ref.view) ?? [];
      list.push(ref.node);
      byView.set(ref.view, list);
    }
    for (const f of derived.fragments) fragments.push({ ...f, id: `f${fragments.length}` });
    views.push(...derived.views);
    scans.push(...derived.scans);
    const reduce = await this.reduceOverFiltered(ctx, byView, derived.what.length > 0);
    for (const [view, nodes] of byView) {
      const pushed = await this.pushdownScan(ctx, view, nodes, reduce.names);
      for (const t of pushed.semiJoined) semiJoined.add(t);
      if (pushed.asSet) sets.push(pushed.table.snapshot.name);
      scans.push(pushed.scan);
      for (const group of assignFiles(pushed.files, ctx.fragments)) {
        fragments.push({ id: `f${fragments.length}`, output: view, inputs: [inputFor(pushed.table, group), ...pushed.broadcast], sql: pushed.sql });
      }
      views.push({ name: view, columns: pushed.projected });
    }
    const reduction = reductionText([...semiJoined], sets) + (derived.what.length ? `; partial aggregates per fragment for ${derived.what.join(', ')}, the final step in the single-node step` : '');
    return {
      shape: 'single-node',
      sql: ctx.querySql,
      output: ctx.output,
      fragments,
      reduce: { views, sql: reduce.sql },
      scans,
      join: null,
      reason: `pushdown + single-node: ${why}${reduction}`,
    };
  }

  /**
   * The single-node step's query over the pulled-up rows. A table read by one reference
   * arrives filtered by that reference's pushable conjuncts (pushdownScan applies them all),
   * and a pushable conjunct is one whose truth depends on that table's row alone, on a path
   * where no outer join null-extends it (scope.ts): on those rows it is true. So it becomes
   * TRUE here, and a column only such filters read (TPC-H Q13's o_comment) is not pulled up.
   * A table read by several references arrives filtered by the OR of their filters, which
   * is not any one of them: its conjuncts stay. `names`: the column names the step reads.
   * `changed`: ctx.root was rewritten (aggregatedSubqueries), so it is printed again.
   */
  private async reduceOverFiltered(ctx: PlanContext, byView: Map<string, AstNode[]>, changed: boolean): Promise<{ sql: string; names: Set<string> }> {
    const assumed = assumeApplied(ctx, [...byView.values()].filter((nodes) => nodes.length === 1).map((nodes) => nodes[0]));
    if (!assumed && !changed) return { sql: ctx.querySql, names: ctx.scope.names };
    try {
      const [sql] = await printNodes(ctx.conn, [ctx.root]);
      return { sql, names: assumed?.names ?? columnNames(ctx.root) };
    } finally {
      assumed?.restore();
    }
  }

  /**
   * A table's rows as the query's references to it can see them: the columns any reference
   * may use, the OR over references of each one's pushable filters (including semi-joins
   * with small filtered tables it must join), its files pruned by that filter.
   */
  private async pushdownScan(ctx: PlanContext, view: string, nodes: AstNode[], names = ctx.scope.names): Promise<{ table: ResolvedTable; sql: string; projected: Column[]; files: FileRef[]; broadcast: FragmentInput[]; semiJoined: string[]; asSet: boolean; scan: TableScanReport }> {
    const table = ctx.refTable.get(nodes[0])!;
    const { columns } = table.snapshot;
    const projected = usedColumns(ctx, columns, nodes, names);

    // The table's rows that any reference can see: OR over references of each one's
    // filters; one unfiltered reference means no filter. A reference's filters include
    // semi-joins with small filtered tables it must join (see semiJoins).
    const broadcast: FragmentInput[] = [];
    const semiJoined: string[] = [];
    const perRef: AstNode[][] = [];
    for (const n of nodes) {
      const own = (ctx.scope.pushable.get(n) ?? []).map((c) => unqualify(c, ctx.scope));
      const semi = await this.semiJoins(ctx, n, table);
      for (const s of semi) {
        // One input per table: a table two conjuncts read (pruned by different filters) is
        // read with the files either keeps.
        for (const input of s.inputs) addInput(broadcast, input);
        semiJoined.push(`${table.snapshot.name} by ${s.tables.join(' by ')}`);
      }
      perRef.push([...own, ...semi.map((s) => s.conjunct)]);
    }
    let filter: AstNode | null = null;
    if (perRef.every((f) => f.length > 0)) {
      // References with the same conjuncts in another order are one branch, and conjuncts
      // every branch has are ANDed once outside the OR (TPC-H Q02's partsupp, reduced by
      // part and by supplier in the query and in its subquery): a scan evaluates `A AND B`
      // as a semi-join of each, `(A AND B) OR (B AND A)` row by row. The reductions'
      // subqueries are uncorrelated, so they may be factored.
      const branches = new Map(perRef.map((f) => [f.map(exprKey).sort().join('\n'), conjunction('AND', f)] as const));
      filter = factorCommonConjuncts(conjunction('OR', [...branches.values()]), { subqueries: true });
    }
    const { kept, applied } = await pruneFiles(ctx.conn, table.snapshot.files, columns, filter ? [filter] : [], (p) => this.printPredicate(ctx, p));
    const files = kept.map((i) => fileRef(table.snapshot.files[i], table));
    const scan = await this.scanReport(ctx, table, 'pushdown', files, applied, projected.map((c) => c.name));
    // A table read only as a set (the whole FROM of EXISTS / IN subqueries) is pulled up
    // without duplicates: TPC-H Q04's lineitem, Q22's orders send their distinct keys.
    const setOnly = await setOnlyReferences(ctx);
    const asSet = nodes.every((n) => setOnly.has(n));
    const fragmentNode = selectNode(projected.map((c) => colRef(c.name)), baseTable(view), { where_clause: filter, ...(asSet ? { modifiers: [{ type: 'DISTINCT_MODIFIER', distinct_on_targets: [] }] } : {}) });
    const [sql] = await printNodes(ctx.conn, [fragmentNode]);
    return { table, sql, projected, files, broadcast, semiJoined, asSet, scan };
  }

  /**
   * Can the join of two large references be computed as the union over partitions of the
   * join of their partitions, both hash-partitioned on equi-join keys? True when the keys
   * join them on every path (WHERE conjuncts of inner joins, or the ON clause of the join
   * that brings them together, of any type: co-partitioned rows meet their every partner,
   * and an unmatched row is null-extended once, in its own partition), and no other table,
   * read whole by every task, is preserved against them by an outer join.
   */
  private async partitionedJoin(ctx: PlanContext, from: AstNode, a: SizedRef, b: SizedRef): Promise<PartitionedJoin | string> {
    const nameA = a.table.snapshot.name;
    const nameB = b.table.snapshot.name;
    const join = lowestCommonJoin(from, a.ref, b.ref);
    if (!join) return `no join brings ${nameA} and ${nameB} together`;
    if (join.ref_type !== 'REGULAR' && join.ref_type !== 'CROSS') return `their ${String(join.ref_type).toLowerCase()} join is not partitioned`;
    if (!['INNER', 'LEFT', 'RIGHT', 'OUTER', 'FULL', 'SEMI', 'ANTI'].includes(String(join.join_type))) return `their ${String(join.join_type).toLowerCase()} join is not partitioned`;
    if (!splittableSide(from, join)) return `an outer join keeps rows of another table against the join of ${nameA} and ${nameB}`;
    const aLeft = contains(join.left, a.ref);
    if (!splittableSide(aLeft ? join.left : join.right, a.ref) || !splittableSide(aLeft ? join.right : join.left, b.ref)) {
      return `an outer join keeps rows of another table against ${nameA} or ${nameB}`;
    }
    // Equi-join keys: the ON clause of the join that brings them together, and, for an inner
    // join, WHERE conjuncts on inner-join paths.
    const pairs: { a: Column; b: Column }[] = [];
    const bindingOf = (ref: AstNode) => ctx.scope.refs.find((r) => r.node === ref)?.binding.toLowerCase();
    const fromRefs: AstNode[] = [];
    collectBaseRefs(from, fromRefs);
    const sideOf = (e: AstNode): { ref: AstNode; column: Column } | undefined => {
      if (e.class !== 'COLUMN_REF') return undefined;
      const names = (e.column_names as string[]).map((n) => String(n));
      if (names.length === 2) {
        for (const x of [a, b]) if (bindingOf(x.ref) === names[0].toLowerCase()) {
          const column = columnOf(x.table, names[1]);
          return column ? { ref: x.ref, column } : undefined;
        }
        return undefined;
      }
      if (names.length !== 1) return undefined;
      // Unqualified: only when exactly one table of the FROM clause has such a column (a
      // subquery's tables are not in the join's scope).
      const owners = fromRefs.filter((r) => columnOf(ctx.refTable.get(r)!, names[0]));
      if (owners.length !== 1 || (owners[0] !== a.ref && owners[0] !== b.ref)) return undefined;
      const owner = owners[0] === a.ref ? a : b;
      return { ref: owner.ref, column: columnOf(owner.table, names[0])! };
    };
    for (const c of conjuncts(join.condition ?? null)) {
      if (c.class !== 'COMPARISON' || c.type !== 'COMPARE_EQUAL') continue;
      const l = sideOf(c.left);
      const r = sideOf(c.right);
      if (!l || !r || l.ref === r.ref) continue;
      pairs.push(l.ref === a.ref ? { a: l.column, b: r.column } : { a: r.column, b: l.column });
    }
    if (join.join_type === 'INNER') {
      for (const k of ctx.scope.joinKeys.get(a.ref) ?? []) {
        if (k.other !== b.ref) continue;
        const ca = columnOf(a.table, k.column);
        const cb = columnOf(b.table, k.otherColumn);
        if (ca && cb) pairs.push({ a: ca, b: cb });
      }
    }
    if (pairs.length === 0) return `no equality joins ${nameA} with ${nameB}`;
    // One key pair is enough to co-partition; the first (the ON clause's, else the WHERE's).
    // A table joined with itself is read once, partitioned on one column: the pair must be
    // that column on both sides.
    const key = a.table === b.table ? pairs.find((p) => p.a.name === p.b.name) : pairs[0];
    if (!key) return `${nameA} is joined with itself on different columns, which would need it partitioned twice`;
    return { a, b, keyA: key.a, keyB: key.b, type: await commonType(ctx.conn, key.a.type, key.b.type) };
  }

  /** Files may be split along key ranges: the setting is on and there are fragments to split into. */
  private coSplitOn(ctx: PlanContext): boolean {
    return this.options.coSplit !== false && ctx.fragments >= 2;
  }

  /**
   * The equi-join `join` (a partitioned join's conditions hold: see partitionedJoin) as a
   * co-split join, when the second table is read by this reference only and both tables'
   * files fall into at least two disjoint ranges of the integer key (planner/co-split.ts).
   * Decided on all the files: pruning only drops files, which never joins two ranges.
   */
  private coSplitJoin(ctx: PlanContext, join: PartitionedJoin): CoSplitJoin | undefined {
    const { a, b } = join;
    if (!this.coSplitOn(ctx) || a.table === b.table) return undefined;
    // Read elsewhere too (a second reference, a subquery), the table is one input of every
    // file the references keep, which holds only some keys in each fragment: only a
    // subquery that reads no other rows (tied to the split) may read it.
    const tied = this.tiedSubqueries(ctx, [{ ref: a.ref, table: a.table, key: join.keyA }, { ref: b.ref, table: b.table, key: join.keyB }]);
    const tiedRefs = new Set([...tied.values()].map((t) => t.ref));
    for (const [node, t] of ctx.refTable) if ((t === a.table || t === b.table) && node !== a.ref && node !== b.ref && !tiedRefs.has(node)) return undefined;
    const ra = keyRanges(a.table.snapshot.files, a.table.snapshot.files, join.keyA);
    const rb = keyRanges(b.table.snapshot.files, b.table.snapshot.files, join.keyB);
    if (typeof ra === 'string' || typeof rb === 'string') return undefined;
    const ranges = keyComponents(ra, rb).length;
    return ranges >= 2 ? { join, ranges, tied } : undefined;
  }

  /**
   * A co-split of the split table with a table only a WHERE subquery reads, correlated on
   * key ranges both are written in: `EXISTS (SELECT ... FROM lineitem WHERE l_orderkey =
   * o_orderkey ...)` over orders, or `o_orderkey IN (SELECT l_orderkey FROM lineitem ...)`.
   * The subquery must be tied to the split (tiedSubqueries), and so must every other that
   * reads either table.
   */
  private subqueryCoSplit(ctx: PlanContext, split: SizedRef): CoSplitJoin | undefined {
    for (const e of subqueryExpressions(ctx.root.where_clause)) {
      const body = e.subquery.node as AstNode;
      const refs: AstNode[] = [];
      if (body?.type !== 'SELECT_NODE' || !collectJoinRefs(body.from_table, refs)) continue;
      for (const ref of refs) {
        const table = ctx.refTable.get(ref);
        if (!table || table === split.table) continue;
        // Candidate keys: the correlation's equality, or the IN's column and its subquery's item.
        const pairs: { a: Column; b: Column }[] = [];
        for (const k of ctx.scope.joinKeys.get(ref) ?? []) {
          const ka = k.other === split.ref ? columnOf(split.table, k.otherColumn) : undefined;
          const kb = columnOf(table, k.column);
          if (ka && kb) pairs.push({ a: ka, b: kb });
        }
        const item = body.select_list?.length === 1 ? body.select_list[0] as AstNode : undefined;
        const owner = e.subquery_type === 'ANY' && e.child ? columnOwner(ctx, e.child, [split.ref]) : undefined;
        const kb = item?.class === 'COLUMN_REF' ? columnOf(table, String(item.column_names.at(-1))) : undefined;
        if (owner && kb) pairs.push({ a: owner.column, b: kb });
        for (const p of pairs) {
          const coSplit = this.coSplitJoin(ctx, { a: split, b: { ref, table, bytes: tableBytes(table.snapshot) }, keyA: p.a, keyB: p.b, type: p.a.type });
          if (coSplit?.tied.get(body)?.ref === ref) return coSplit;
        }
      }
    }
    return undefined;
  }

  /**
   * The WHERE subqueries of the query that each fragment may evaluate over its own files,
   * when the tables of `sides` are split along their files' ranges of each side's key, so
   * that the rows of a key are all in the fragment that holds it: those that read one of
   * those tables once, on an inner-join path (other tables only under the broadcast limit,
   * read whole by every fragment; no nested subquery, nothing volatile) and, of its rows,
   * only ones whose key a row of the fragment holds:
   * - correlated (EXISTS, NOT EXISTS, a scalar subquery) by `inner.key = outer.key`, a
   *   conjunct of its WHERE, with the outer key a side's key of that side's reference: for
   *   each outer row it sees exactly the rows it would see over the whole table (TPC-H
   *   Q21's EXISTS and NOT EXISTS over lineitem, Q04's EXISTS, Q02's minimum cost per part);
   * - `outer.key IN (SELECT key FROM t [WHERE ...] [GROUP BY key] [HAVING ...])`, a conjunct
   *   of the WHERE clause, uncorrelated: grouped by the key, each group is whole in its
   *   key's fragment, so the fragment's keys are in its result exactly when in the whole
   *   one (TPC-H Q18). A NULL the fragment misses could only turn FALSE into NULL, which a
   *   WHERE conjunct drops alike.
   * Returns each one's body with its references.
   */
  private tiedSubqueries(ctx: PlanContext, sides: { ref: AstNode; table: ResolvedTable; key: Column }[]): Map<AstNode, TiedSubquery> {
    const out = new Map<AstNode, TiedSubquery>();
    const select = ctx.root;
    if (select.type !== 'SELECT_NODE') return out;
    const top = new Set(conjuncts(select.where_clause));
    const fromRefs: AstNode[] = [];
    collectBaseRefs(select.from_table, fromRefs);
    const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
    for (const e of subqueryExpressions(select.where_clause)) {
      const body = e.subquery?.node as AstNode | undefined;
      if (body?.type !== 'SELECT_NODE' || body.cte_map?.map?.length || body.sample) continue;
      // One reference of a side's table, on an inner-join path of the body; any others read
      // tables under the broadcast limit, whole in every fragment.
      const refs: AstNode[] = [];
      if (!collectJoinRefs(body.from_table, refs) || refs.some((r) => r.sample || !ctx.refTable.has(r))) continue;
      const tiedRefs = refs.filter((r) => sides.some((s) => s.table === ctx.refTable.get(r)));
      if (tiedRefs.length !== 1) continue;
      const ref = tiedRefs[0];
      const side = sides.find((s) => s.table === ctx.refTable.get(ref))!;
      const others = refs.filter((r) => r !== ref);
      if (!splittableSide(body.from_table, ref) || others.some((r) => tableBytes(ctx.refTable.get(r)!.snapshot) > this.options.broadcastLimitBytes)) continue;
      const bodyExprs = [...selectExpressions(body), ...fromExpressions(body.from_table)];
      if (bodyExprs.some((x) => someExpression(x, (y) => y.class === 'SUBQUERY' || (y.class === 'FUNCTION' && isVolatileFunction(String(y.function_name)))))) continue;
      if (e.subquery_type === 'EXISTS' || e.subquery_type === 'NOT_EXISTS' || e.subquery_type === 'SCALAR') {
        const keyed = (ctx.scope.joinKeys.get(ref) ?? []).some((k) => same(k.column, side.key.name) && sides.some((s) => s.ref === k.other && same(k.otherColumn, s.key.name)));
        if (keyed) out.set(body, { ref, others });
        continue;
      }
      if (e.subquery_type !== 'ANY' || e.comparison_type !== 'COMPARE_EQUAL' || !top.has(e)) continue;
      const owner = e.child ? columnOwner(ctx, e.child, fromRefs) : undefined;
      if (!owner || !sides.some((s) => s.ref === owner.ref && same(owner.column.name, s.key.name))) continue;
      // Uncorrelated, every column its table's; one item, the key; grouped by it or not at all.
      const bindings = fromBindings(body.from_table, (n) => ctx.refTable.get(n)?.snapshot.columns, true) ?? [];
      const isKey = (x: AstNode | undefined) => {
        if (x?.class !== 'COLUMN_REF') return false;
        const r = resolveName(x.column_names as string[], bindings);
        return typeof r !== 'string' && r.binding.ref === ref && r.path.length === 0 && same(r.column, side.key.name);
      };
      let own = true;
      for (const x of bodyExprs) someExpression(x, (y) => {
        if (y.class === 'COLUMN_REF' && typeof resolveName(y.column_names as string[], bindings) === 'string') own = false;
        if (y.class === 'WINDOW' || y.class === 'STAR') own = false;
        return !own;
      });
      const groups = (body.group_expressions ?? []) as AstNode[];
      const grouped = groups.length === 1 && isKey(groups[0]) && (body.group_sets?.length ?? 0) <= 1;
      const plain = groups.length === 0 && !body.having && body.aggregate_handling !== 'FORCE_AGGREGATES'
        && !bodyExprs.some((x) => someExpression(x, (y) => y.class === 'FUNCTION' && ctx.aggregates.has(String(y.function_name).toLowerCase())));
      const modifiersOk = ((body.modifiers ?? []) as AstNode[]).every((m) => m.type === 'DISTINCT_MODIFIER' && !m.distinct_on_targets?.length);
      if (own && body.select_list?.length === 1 && isKey(body.select_list[0]) && (grouped || plain) && modifiersOk && !body.qualify) out.set(body, { ref, others });
    }
    return out;
  }

  /**
   * The split table's column the query groups by, when the fragments' files can hold its
   * values in disjoint ranges: the co-split key (files go by its ranges already), or, with
   * no co-split, an integer column whose files fall into at least two disjoint ranges.
   * Never with grouping sets (a grand total is every fragment's), nor when a NULL could
   * be in any file: every file must hold none, and no outer join may NULL-extend the
   * split table's rows.
   */
  private keyGroupedSplit(ctx: PlanContext, select: AstNode, split: SizedRef, coSplit: CoSplitJoin | undefined): { table: string; column: Column } | undefined {
    if (!this.coSplitOn(ctx) || (select.group_sets?.length ?? 0) > 1) return undefined;
    const keys = groupKeys(ctx, select);
    if (typeof keys === 'string') return undefined;
    const refs: AstNode[] = [];
    collectBaseRefs(select.from_table, refs);
    // Under a co-split join, either table's key: the files go by its ranges already.
    const sides = coSplit ? [{ ref: split.ref, table: split.table, key: coSplit.join.keyA }, { ref: coSplit.join.b.ref, table: coSplit.join.b.table, key: coSplit.join.keyB }] : [{ ref: split.ref, table: split.table, key: undefined }];
    for (const k of keys) {
      const owner = columnOwner(ctx, k, refs);
      const side = owner && sides.find((s) => s.ref === owner.ref && (!s.key || s.key.name === owner.column.name));
      if (!owner || !side) continue;
      const files = side.table.snapshot.files;
      if (!noNulls(files, owner.column.name) || !splittableSide(select.from_table, side.ref)) continue;
      const named = { table: side.table.snapshot.name, column: owner.column };
      if (coSplit) return named;
      const ranges = keyRanges(files, files, owner.column);
      if (typeof ranges !== 'string' && keyComponents(ranges, []).length >= 2) return named;
    }
    return undefined;
  }

  /**
   * Semi-join reduction for a pulled-up reference: when the query joins it on `r.a = s.b`
   * (both on inner-join paths of one WHERE clause) with a small table s that has filters
   * of its own, rows of r whose `a` is not among the filtered s's `b` cannot reach the
   * result, so the fragments keep only `a IN (SELECT b FROM s WHERE <s's filters>)`, with
   * s read whole by each of them. Fewer rows are pulled up; the answer is unchanged.
   *
   * The reduction chains: s's own rows are reduced the same way by the small tables s joins
   * (TPC-H Q11: partsupp by supplier, itself by the one nation filtered), so s counts as
   * filtered when its semi-joins are, up to SEMI_JOIN_DEPTH tables deep, never through a
   * table already on the chain. `inputs` are the small tables each conjunct reads.
   */
  private async semiJoins(ctx: PlanContext, ref: AstNode, table: ResolvedTable, chain: readonly AstNode[] = [ref]): Promise<{ conjunct: AstNode; inputs: FragmentInput[]; tables: string[] }[]> {
    const out: { conjunct: AstNode; inputs: FragmentInput[]; tables: string[] }[] = [];
    for (const key of ctx.scope.joinKeys.get(ref) ?? []) {
      const other = ctx.refTable.get(key.other);
      // Never a table already on the chain: its view is the split input's, or read already.
      // Nor a table larger than the one it reduces: every task would read more than it saves.
      if (!other || other === table || chain.some((r) => ctx.refTable.get(r) === other)) continue;
      const bytes = tableBytes(other.snapshot);
      if (bytes > this.options.broadcastLimitBytes || bytes > tableBytes(table.snapshot)) continue;
      const otherFilters = (ctx.scope.pushable.get(key.other) ?? []).map((c) => unqualify(c, ctx.scope));
      const nested = chain.length < SEMI_JOIN_DEPTH ? await this.semiJoins(ctx, key.other, other, [...chain, key.other]) : [];
      if (otherFilters.length === 0 && nested.length === 0) continue;
      const { kept } = await pruneFiles(ctx.conn, other.snapshot.files, other.snapshot.columns, otherFilters, (p) => this.printPredicate(ctx, p));
      const subquery = selectNode([colRef(key.otherColumn)], baseTable(other.view), { where_clause: conjunction('AND', [...otherFilters, ...nested.map((n) => n.conjunct)]) });
      out.push({
        conjunct: {
          class: 'SUBQUERY', type: 'SUBQUERY', alias: '', query_location: 0, subquery_type: 'ANY',
          subquery: { node: subquery, named_param_map: [] }, child: colRef(key.column), comparison_type: 'COMPARE_EQUAL',
        },
        inputs: [inputFor(other, kept.map((i) => fileRef(other.snapshot.files[i], other))), ...nested.flatMap((n) => n.inputs)],
        tables: [other.snapshot.name, ...nested.flatMap((n) => n.tables)],
      });
    }
    return out;
  }

  private async pruneRef(ctx: PlanContext, ref: AstNode, role: TableScanReport['role'], scans: TableScanReport[]): Promise<FileRef[]> {
    const table = ctx.refTable.get(ref)!;
    const filters = (ctx.scope.pushable.get(ref) ?? []).map((c) => unqualify(c, ctx.scope));
    const { kept, applied } = await pruneFiles(ctx.conn, table.snapshot.files, table.snapshot.columns, filters, (p) => this.printPredicate(ctx, p));
    const files = kept.map((i) => fileRef(table.snapshot.files[i], table));
    scans.push(await this.scanReport(ctx, table, role, files, applied, null));
    return files;
  }

  /**
   * The columns `sql` returns over the empty `tables` (name -> CREATE statement). DuckDB's
   * binder folds constant arithmetic, so binding user SQL can compute a user's constants:
   * with a runner it binds there, where the deadline stops it.
   */
  /**
   * A rewritten query node's SQL when it still binds to `output`'s columns (names and types),
   * else undefined: what every rewrite is checked by before it is kept. A cancel is thrown.
   */
  private async rebinds(conn: DuckDBConnection, tables: ReadonlyMap<string, string>, node: AstNode, output: readonly Column[], signal?: AbortSignal): Promise<string | undefined> {
    try {
      const [sql] = await printNodes(conn, [node]);
      return sameColumns(await this.describe(conn, tables, sql, signal), output) ? sql : undefined;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      return undefined;
    }
  }

  private async describe(conn: DuckDBConnection, tables: ReadonlyMap<string, string>, sql: string, signal?: AbortSignal): Promise<Column[]> {
    if (!this.options.evaluate) return describe(conn, sql);
    const r = await this.options.evaluate({ setup: [...tables.values()], sql: `DESCRIBE ${sql}` }, signal);
    return r.rows.map((row) => ({ name: String(row[0]), type: String(row[1]) }));
  }

  /**
   * A local Iceberg table of the warehouse behind the catalog (its wrappers pass through),
   * resolved without its files (WarehouseCatalog.deferredTable). Names in the `puffindb`
   * namespace are the wrappers' own system tables.
   */
  private async deferredTable(name: string): Promise<DeferredTable | undefined> {
    if (name.toLowerCase().startsWith('puffindb.')) return undefined;
    return warehouseCatalogOf(this.options.catalog)?.deferredTable(name);
  }

  /**
   * The files of each deferred Iceberg table, planned with the OR over its references of each
   * one's pushable filters (none when a reference has none, since it reads every row): scan
   * planning then skips manifests by their partition summaries and files by partition values
   * and column bounds, so what the rest of planning weighs and splits is what may match.
   */
  private async planDeferred(ctx: PlanContext, deferred: ReadonlyMap<ResolvedTable, DeferredTable>): Promise<void> {
    for (const [entry, table] of deferred) {
      const perRef = [...ctx.refTable].filter(([, e]) => e === entry).map(([node]) => (ctx.scope.pushable.get(node) ?? []).map((c) => unqualify(c, ctx.scope)));
      let filter: ScanPredicate | undefined;
      if (perRef.length > 0 && perRef.every((f) => f.length > 0)) {
        filter = await this.scanPredicate(ctx, conjunction('OR', perRef.map((f) => conjunction('AND', f))), entry.snapshot.columns);
      }
      entry.snapshot = await table.plan(filter);
    }
  }

  /** `predicate` as a scan predicate, its constants computed as printPredicate computes them; undefined when nothing in it prunes. */
  private async scanPredicate(ctx: PlanContext, predicate: AstNode, columns: readonly Column[]): Promise<ScanPredicate | undefined> {
    let where = predicate;
    if (this.options.evaluate) {
      const folded = await foldConstants(ctx.conn, [predicate], this.options.evaluate, ctx.signal);
      if (!Array.isArray(folded)) return undefined;
      where = folded[0];
    }
    const types = new Map(columns.map((c) => [c.name.toLowerCase(), c.type]));
    try {
      return await scanPredicateFromAst(where, (c) => types.get(c.toLowerCase()), async (exprs) => {
        // Literals by now (or the planner's own constants, as pruneFiles compares them).
        const casts = exprs.map((e, i) => withAlias({ class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child: e, cast_type: { id: 'VARCHAR', type_info: null }, try_cast: false }, `v${i}`));
        const [sql] = await printNodes(ctx.conn, [{ ...selectNode(casts, baseTable('__values')), from_table: { type: 'EMPTY', alias: '', sample: null, query_location: 0 } }]);
        const row = (await ctx.conn.runAndReadAll(sql)).getRows()[0] ?? [];
        return row.map((v) => (v === null || v === undefined ? null : String(v)));
      });
    } catch {
      // A constant that does not convert prunes nothing here; the query reports it.
      return undefined;
    }
  }

  private async printPredicate(ctx: PlanContext, predicate: AstNode): Promise<string> {
    let where = predicate;
    if (this.options.evaluate) {
      // The constants are computed by the SQL runner; the statistics query here then compares
      // literals only. Constants it cannot compute prune nothing (the query reports the error).
      const folded = await foldConstants(ctx.conn, [predicate], this.options.evaluate, ctx.signal);
      if (!Array.isArray(folded)) return 'true';
      where = folded[0];
    }
    const [sql] = await printNodes(ctx.conn, [selectNode([integerConstant(1)], baseTable('__stats'), { where_clause: where })]);
    return afterWhere(sql);
  }

  /**
   * Replace the constant expressions DuckDB evaluates while binding (table function
   * arguments, LIMIT and OFFSET) by their values, computed by the SQL runner. Returns true
   * when one of them calls a volatile function (the plan must then not be cached).
   */
  private async foldBindTimeConstants(root: AstNode, signal?: AbortSignal): Promise<boolean> {
    const evaluate = this.options.evaluate;
    if (!evaluate) return false;
    const sites: { owner: AstNode; key: string; what: string }[] = [];
    visitNodes(root, (node) => {
      if (node.type === 'TABLE_FUNCTION' && !('class' in node) && node.function) {
        sites.push({ owner: node.function, key: 'children', what: `table function ${String(node.function.function_name)}()` });
      }
      if (node.type === 'LIMIT_MODIFIER' || node.type === 'LIMIT_PERCENT_MODIFIER') {
        if (node.limit) sites.push({ owner: node, key: 'limit', what: 'LIMIT' });
        if (node.offset) sites.push({ owner: node, key: 'offset', what: 'OFFSET' });
      }
    });
    let volatile = false;
    for (const site of sites) {
      const original = site.owner[site.key] as AstNode | AstNode[];
      const exprs = Array.isArray(original) ? original : [original];
      if (exprs.length === 0) continue;
      const folded = await foldConstants(this.options.engine, exprs, evaluate, signal);
      if (!Array.isArray(folded)) throw new PuffinError('bad_request', `${site.what}: ${firstLine(toPuffinError(new Error(folded.error)).message)}`);
      if (folded.some((f, i) => f !== exprs[i]) && (await mentionsVolatile(this.options.engine, { class: 'FUNCTION', children: exprs } as AstNode))) volatile = true;
      site.owner[site.key] = Array.isArray(original) ? folded : folded[0];
    }
    return volatile;
  }

  private async scanReport(ctx: PlanContext, table: ResolvedTable, role: TableScanReport['role'], files: FileRef[], applied: AstNode | null, columns: string[] | null): Promise<TableScanReport> {
    let pruneFilter: string | null = null;
    if (applied) {
      const [sql] = await printNodes(ctx.conn, [selectNode([integerConstant(1)], baseTable(table.view), { where_clause: applied })]);
      pruneFilter = afterWhere(sql);
    }
    // An Iceberg table planned for the query's filter lists only the files that may match:
    // its totals, and the manifests read, come from scan planning.
    const planned = table.snapshot.planned;
    return {
      table: table.snapshot.name,
      role,
      filesTotal: planned ? planned.filesTotal : table.snapshot.files.length,
      filesKept: files.length,
      bytesKept: files.reduce((s, f) => s + f.sizeBytes, 0),
      rowsKept: files.reduce((s, f) => s + f.rowCount, 0),
      pruneFilter,
      columns,
      ...(planned ? { manifests: { total: planned.manifestsTotal, read: planned.manifestsRead } } : {}),
    };
  }
}

/** See Planner.aggregatedSubqueries. `excluded`: the references the partials stand for. */
interface AggregatedSubqueries {
  fragments: Fragment[];
  views: ReduceStep['views'];
  scans: TableScanReport[];
  excluded: Set<AstNode>;
  what: string[];
  restore: () => void;
}

interface PlanContext {
  conn: DuckDBConnection;
  root: AstNode;
  /** References whose rows matter only as a set (setOnlyReferences), once found. */
  setOnly?: Set<AstNode>;
  querySql: string;
  output: Column[];
  scope: ScopeInfo;
  refTable: Map<AstNode, ResolvedTable>;
  resolved: Map<string, ResolvedTable>;
  fragments: number;
  /** Partitions of a partitioned hash join. */
  partitions: number;
  aggregates: Set<string>;
  signal?: AbortSignal;
  /** The empty tables the statements bind over: view name -> CREATE statement. */
  tables: ReadonlyMap<string, string>;
  /** See PlanOptions.storeResult. */
  storeResult?: boolean;
  /** The final aggregate runs where the plan's reduce step runs, never as a stage (aggregatedSubqueries). */
  finalOnOneNode?: boolean;
}

/**
 * The pushable conjuncts of `refs` (scope.ts) made TRUE in ctx.root until `restore()`: for
 * a statement over rows that the references' own fragments filtered by them already (each
 * reference the only one of its view, so its fragments applied exactly its conjuncts), on
 * which they hold. `names`: the column names the statement reads then, so that a column
 * only such a filter reads (TPC-H Q13's o_comment) is not sent on. Undefined: none.
 */
function assumeApplied(ctx: PlanContext, refs: readonly AstNode[]): { names: Set<string>; restore: () => void } | undefined {
  const applied = [...new Set(refs.flatMap((r) => ctx.scope.pushable.get(r) ?? []))];
  if (applied.length === 0) return undefined;
  const saved = applied.map((node) => ({ node, was: { ...node } }));
  for (const { node } of saved) become(node, booleanConstant(true));
  return { names: columnNames(ctx.root), restore: () => { for (const { node, was } of saved) become(node, was); } };
}

function columnNames(root: AstNode): Set<string> {
  const names = new Set<string>();
  visitNodes(root, (node) => addColumnNames(node, names));
  return names;
}

/** The plan reason's note of the pushdowns' semi-join reductions and the tables pulled up as sets. */
function reductionText(semiJoined: readonly string[], sets: readonly string[]): string {
  return `${semiJoined.length ? `; semi-join reduction: ${semiJoined.join(', ')}` : ''}${sets.length ? `; pulled up as a set (DISTINCT: read only by EXISTS / IN): ${[...new Set(sets)].join(', ')}` : ''}`;
}

/**
 * The table references whose rows matter only as a set: each the whole FROM of an EXISTS,
 * NOT EXISTS or IN / ANY / ALL subquery that has no aggregate, window, GROUP BY, HAVING,
 * QUALIFY, LIMIT, OFFSET, SAMPLE, CTE or volatile call. Such a subquery's answer depends on
 * which rows (of the columns it uses) exist, not on how many times each does, so a pulled-up
 * copy of the table may drop duplicates.
 */
async function setOnlyReferences(ctx: PlanContext): Promise<Set<AstNode>> {
  if (ctx.setOnly) return ctx.setOnly;
  const found = new Set<AstNode>();
  const candidates: AstNode[] = [];
  visitNodes(ctx.root, (n) => {
    if (n.class !== 'SUBQUERY' || !['EXISTS', 'NOT_EXISTS', 'ANY'].includes(String(n.subquery_type))) return;
    const q = n.subquery?.node;
    if (q?.type !== 'SELECT_NODE' || q.from_table?.type !== 'BASE_TABLE' || q.from_table.sample) return;
    if (q.group_expressions?.length || q.having || q.qualify || q.sample || q.cte_map?.map?.length || q.aggregate_handling === 'FORCE_AGGREGATES') return;
    if ((q.modifiers ?? []).some((m: AstNode) => m.type !== 'ORDER_MODIFIER' && m.type !== 'DISTINCT_MODIFIER')) return;
    const exprs = selectExpressions(q);
    if (exprs.some((e) => subqueriesOf(e).length || someExpression(e, (x) => x.class === 'WINDOW' || (x.class === 'FUNCTION' && ctx.aggregates.has(String(x.function_name).toLowerCase()))))) return;
    candidates.push(q);
  });
  for (const q of candidates) if (!(await mentionsVolatile(ctx.conn, q))) found.add(q.from_table);
  ctx.setOnly = found;
  return found;
}

// ---------------------------------------------------------------------------------------
// scan-aggregate

/**
 * A grouped SELECT's grouping keys as expressions: GROUP BY ordinals and select aliases
 * resolved to the expressions they name, GROUP BY ALL to the select items without
 * aggregates or windows.
 */
function groupKeys(ctx: PlanContext, select: AstNode): AstNode[] | string {
  const items = select.select_list as AstNode[];
  const hasAgg = (e: AstNode) => someExpression(e, (x) => x.class === 'FUNCTION' && ctx.aggregates.has(String(x.function_name).toLowerCase()));
  const stripAlias = (e: AstNode) => withAlias(clone(e), '');
  if (select.aggregate_handling === 'FORCE_AGGREGATES') {
    return items.filter((i) => !hasAgg(i) && !someExpression(i, (e) => e.class === 'WINDOW')).map(stripAlias);
  }
  if (select.aggregate_handling !== 'STANDARD_HANDLING') return `aggregate handling ${select.aggregate_handling} is evaluated in one place`;
  const fromColumns = new Set<string>();
  for (const r of ctx.scope.refs) for (const c of ctx.refTable.get(r.node)?.snapshot.columns ?? []) fromColumns.add(c.name.toLowerCase());
  const aliasIndex = new Map<string, number>();
  items.forEach((item, i) => { if (item.alias) aliasIndex.set(String(item.alias).toLowerCase(), i); });
  const groups: AstNode[] = [];
  for (const g of (select.group_expressions ?? []) as AstNode[]) {
    const ordinal = integerValue(g);
    if (ordinal !== undefined) {
      if (ordinal < 1 || ordinal > items.length) return 'GROUP BY position out of range';
      groups.push(stripAlias(items[ordinal - 1]));
      continue;
    }
    if (g.class === 'COLUMN_REF' && g.column_names.length === 1) {
      const name = String(g.column_names[0]).toLowerCase();
      if (!fromColumns.has(name) && aliasIndex.has(name)) {
        groups.push(stripAlias(items[aliasIndex.get(name)!]));
        continue;
      }
    }
    groups.push(clone(g));
  }
  return groups;
}

async function buildAggregate(ctx: PlanContext, select: AstNode): Promise<Built | string> {
  const items = select.select_list as AstNode[];
  if (items.some((i) => someExpression(i, (e) => e.class === 'STAR'))) return 'a star in an aggregate query is evaluated in one place';
  if ((select.group_sets?.length ?? 0) > 1) return 'GROUPING SETS / ROLLUP / CUBE are evaluated in one place';
  if ((select.modifiers as AstNode[]).some((m) => m.type === 'DISTINCT_MODIFIER' && m.distinct_on_targets?.length)) return 'DISTINCT ON is evaluated in one place';
  if ((select.modifiers as AstNode[]).some((m) => m.type === 'LIMIT_PERCENT_MODIFIER')) return 'LIMIT PERCENT is evaluated in one place';

  const isAgg = (e: AstNode) => e.class === 'FUNCTION' && ctx.aggregates.has(String(e.function_name).toLowerCase());
  const hasAgg = (e: AstNode) => someExpression(e, isAgg);
  const stripAlias = (e: AstNode) => withAlias(clone(e), '');
  const aliasIndex = new Map<string, number>();
  items.forEach((item, i) => { if (item.alias) aliasIndex.set(String(item.alias).toLowerCase(), i); });

  const groups = groupKeys(ctx, select);
  if (typeof groups === 'string') return groups;
  if (groups.some(hasAgg)) return 'an aggregate inside GROUP BY';

  // ORDER BY terms that name an output column (by position or alias) stay as they are.
  const orderTerms: { order: AstNode; keep: boolean }[] = [];
  for (const mod of select.modifiers as AstNode[]) {
    if (mod.type !== 'ORDER_MODIFIER') continue;
    for (const o of mod.orders as AstNode[]) {
      const e = o.expression;
      const keep = integerValue(e) !== undefined || (e.class === 'COLUMN_REF' && e.column_names.length === 1 && aliasIndex.has(String(e.column_names[0]).toLowerCase()));
      orderTerms.push({ order: o, keep });
    }
  }

  // Aggregate calls, de-duplicated.
  interface Call { node: AstNode; rule?: ReturnType<typeof findRule>; index: number }
  const calls = new Map<string, Call>();
  const distinctKeys = new Map<string, { expr: AstNode; index: number }>();
  let failure: string | undefined;
  const collect = (e: AstNode | null | undefined) => {
    if (!e || failure) return;
    if (isAgg(e)) {
      const key = exprKey(e);
      if (calls.has(key)) return;
      const name = String(e.function_name).toLowerCase();
      if (e.order_bys?.orders?.length) { failure = `ordered aggregate ${name}(... ORDER BY ...) is evaluated in one place`; return; }
      if ((e.children as AstNode[]).some(hasAgg)) { failure = 'nested aggregates'; return; }
      if (e.distinct) {
        if (!DISTINCT_SAFE.has(name) || e.filter) { failure = `${name}(DISTINCT ...)${e.filter ? ' with FILTER' : ''} has no partial/final rule`; return; }
        for (const arg of e.children as AstNode[]) {
          const k = exprKey(arg);
          if (!distinctKeys.has(k)) distinctKeys.set(k, { expr: clone(arg), index: distinctKeys.size });
        }
        calls.set(key, { node: e, index: calls.size });
        return;
      }
      const rule = findRule(name, (e.children as AstNode[]).length);
      if (!rule) { failure = `aggregate ${name}() has no partial/final rule`; return; }
      calls.set(key, { node: e, rule, index: calls.size });
      return;
    }
    expressionChildren(e).forEach(collect);
  };
  items.forEach(collect);
  collect(select.having);
  collect(select.qualify);
  for (const t of orderTerms) if (!t.keep) collect(t.order.expression);
  if (failure) return failure;

  const templatesMap = await ruleTemplates(ctx.conn);

  // The partial statement: group keys, distinct keys, and every call's partial columns.
  const partialItems: AstNode[] = [];
  groups.forEach((g, i) => partialItems.push(withAlias(clone(g), `__g${i}`)));
  for (const { expr, index } of distinctKeys.values()) partialItems.push(withAlias(clone(expr), `__d${index}`));
  for (const call of calls.values()) {
    if (!call.rule) continue;
    const args: Record<string, AstNode> = {};
    (call.node.children as AstNode[]).forEach((c, i) => (args[`__x${i}`] = c));
    call.rule.partials.forEach((p, m) => {
      const partial = instantiate(templatesMap.get(p)!, args);
      if (call.node.filter) partial.filter = clone(call.node.filter);
      partialItems.push(withAlias(partial, `__a${call.index}_${m}`));
    });
  }
  const partialGroups = [...groups.map(clone), ...[...distinctKeys.values()].map((d) => clone(d.expr))];
  const fragmentNode = {
    ...clone(select),
    modifiers: [],
    select_list: partialItems,
    group_expressions: partialGroups,
    group_sets: partialGroups.length ? [partialGroups.map((_, i) => i)] : [],
    aggregate_handling: 'STANDARD_HANDLING',
    having: null,
    qualify: null,
  };

  // The final statement over the partials.
  const groupIndex = new Map(groups.map((g, i) => [exprKey(g), i]));
  const groupByColumn = new Map<string, number[]>();
  // A column reference by its name relative to its table as DuckDB binds it (`t.a` is a,
  // `t.s.a` and `s.a` the field s.a, never column a); a dotted name that binds to no table
  // here (a lambda's parameter) only matches itself.
  const fromBinds = fromBindings(select.from_table, (n) => ctx.refTable.get(n)?.snapshot.columns, false) ?? [];
  const columnKey = (e: AstNode): string => {
    const r = resolveName(e.column_names as string[], fromBinds);
    if (typeof r !== 'string') return r.relative.join('\0').toLowerCase();
    return e.column_names.length === 1 ? String(e.column_names[0]).toLowerCase() : `\0${(e.column_names as string[]).join('\0')}`;
  };
  groups.forEach((g, i) => {
    if (g.class === 'COLUMN_REF') {
      const key = columnKey(g);
      groupByColumn.set(key, [...(groupByColumn.get(key) ?? []), i]);
    }
  });
  const rewrite = (expr: AstNode): AstNode => mapExpression(expr, (e) => {
    const gi = groupIndex.get(exprKey(e));
    if (gi !== undefined) return colRef(`__g${gi}`);
    if (isAgg(e)) {
      const call = calls.get(exprKey(e))!;
      if (!call.rule) {
        return func(String(e.function_name), (e.children as AstNode[]).map((a) => colRef(`__d${distinctKeys.get(exprKey(a))!.index}`)), { distinct: true });
      }
      const parts: Record<string, AstNode> = {};
      call.rule.partials.forEach((_, m) => (parts[`__p${m}`] = colRef(`__a${call.index}_${m}`)));
      return instantiate(templatesMap.get(call.rule.final)!, parts);
    }
    if (e.class === 'COLUMN_REF') {
      const candidates = groupByColumn.get(columnKey(e));
      if (candidates?.length === 1) return colRef(`__g${candidates[0]}`);
    }
    return undefined;
  });

  const castTypes = await typeNodes(ctx.conn, ctx.output.map((c) => c.type));
  const finalItems = items.map((item, i) => ({
    class: 'CAST', type: 'OPERATOR_CAST', alias: ctx.output[i].name, query_location: 0,
    child: rewrite(stripAlias(item)), cast_type: castTypes[i], try_cast: false,
  }));
  const finalModifiers = (select.modifiers as AstNode[]).map((mod) => {
    if (mod.type !== 'ORDER_MODIFIER') return clone(mod);
    return { ...mod, orders: (mod.orders as AstNode[]).map((o) => {
      const keep = orderTerms.find((t) => t.order === o)?.keep;
      return { ...o, expression: keep ? clone(o.expression) : rewrite(clone(o.expression)) };
    }) };
  });
  const reduceNode = selectNode(finalItems, baseTable(PARTIALS_VIEW), {
    modifiers: finalModifiers,
    group_expressions: groups.map((_, i) => colRef(`__g${i}`)),
    group_sets: groups.length ? [groups.map((_, i) => i)] : [],
    having: select.having ? rewrite(clone(select.having)) : null,
    qualify: select.qualify ? rewrite(clone(select.qualify)) : null,
  });
  const names = [...calls.values()].map((c) => String(c.node.function_name).toLowerCase() + (c.node.distinct ? '(distinct)' : ''));
  return {
    shape: 'scan-aggregate',
    fragmentNode,
    reduceNode,
    finalStage: finalStageOf(ctx, select, groups, partialGroups, reduceNode),
    reason: `partial aggregates per fragment (${[...new Set(names)].join(', ') || 'grouping only'}), final aggregate over ${groups.length} group key(s)`,
  };
}

/** The view the reduce step reads a final-aggregate stage's rows through. */
const FINAL_VIEW = '__final';

/** The view the reduce step reads a key-partitioned stage's rows through. */
const KEYED_VIEW = '__keyed';

/**
 * The final aggregate as a stage (see Built.finalStage). Every row of one group lands in one
 * partition, so each task's final aggregate, HAVING included, is exactly that of its
 * groups; what spans groups stays in the reduce step: ORDER BY, LIMIT, OFFSET, DISTINCT.
 */
function finalStageOf(ctx: PlanContext, select: AstNode, groups: AstNode[], partialGroups: AstNode[], reduceNode: AstNode): Built['finalStage'] {
  if (groups.length === 0) return 'no GROUP BY: one group';
  // 'A' and 'a' are one group under NOCASE but hash apart.
  if (groups.some((g) => someExpression(g, (e) => e.class === 'COLLATE'))) return 'a group key has a collation';
  if (select.qualify) return 'QUALIFY spans groups';
  if ((select.select_list as AstNode[]).some((i) => someExpression(i, (e) => e.class === 'WINDOW'))) return 'a window function spans groups';
  const split = lastStepOver(ctx, select, reduceNode, FINAL_VIEW);
  return typeof split === 'string' ? split : { ...split, groups, partialGroups };
}

/**
 * A statement that runs in the tasks of a stage, each over its partition of the rows, split
 * from what spans partitions: `stage` is `node` without its modifiers (with ORDER BY ...
 * LIMIT k per task when that is exact), `top` runs in the reduce step over the tasks' rows
 * (`view`) with the query's modifiers: ORDER BY, LIMIT, OFFSET, DISTINCT. Every ORDER BY
 * term must then be an output column, which the tasks' rows are.
 */
function lastStepOver(ctx: PlanContext, select: AstNode, node: AstNode, view: string): { stage: AstNode; top: AstNode } | string {
  const names = ctx.output.map((c) => c.name.toLowerCase());
  if (new Set(names).size !== names.length) return 'two output columns share a name';
  // The reduce step sorts the tasks' rows, which are the output columns: every ORDER BY
  // term must be one (by position, or by name: DuckDB binds ORDER BY names to output
  // columns first).
  const outputTerm = (e: AstNode) => integerValue(e) !== undefined || (e.class === 'COLUMN_REF' && e.column_names.length === 1 && names.includes(String(e.column_names[0]).toLowerCase()));
  const orders = (select.modifiers as AstNode[]).filter((m) => m.type === 'ORDER_MODIFIER').flatMap((m) => m.orders as AstNode[]);
  if (!orders.every((o) => outputTerm(o.expression))) return 'ORDER BY an expression that is not an output column';
  if ((select.modifiers as AstNode[]).some((m) => m.type !== 'ORDER_MODIFIER' && m.type !== 'LIMIT_MODIFIER' && !(m.type === 'DISTINCT_MODIFIER' && !m.distinct_on_targets?.length))) {
    return 'a modifier other than ORDER BY, LIMIT and DISTINCT';
  }
  const modifiers = node.modifiers as AstNode[];
  // Per task, ORDER BY ... LIMIT k keeps k rows of its groups: exact for the whole when the
  // reduce step sorts and limits again, unless OFFSET or DISTINCT changes which rows count.
  const limit = modifiers.find((m) => m.type === 'LIMIT_MODIFIER');
  const perTask = limit && !limit.offset && !modifiers.some((m) => m.type === 'DISTINCT_MODIFIER') ? modifiers.filter((m) => m.type === 'ORDER_MODIFIER' || m === limit).map(clone) : [];
  return {
    stage: { ...clone(node), modifiers: perTask },
    top: selectNode([star()], baseTable(view), { modifiers: (select.modifiers as AstNode[]).map(clone) }),
  };
}

/**
 * An estimate of the number of groups, from the files' statistics. Each integer group key
 * that is a plain column of one table in the query has a value range (max - min + 1, the
 * most distinct values it can have; ids are usually dense). With only such keys, the
 * estimate is the product of their ranges; with other keys too (strings, expressions,
 * which have no usable statistics), the largest range: the groups are at least that key's
 * distinct values when its range is dense, as for TPC-H's GROUP BY c_custkey, c_name, ...
 * Capped by the split table's rows. Undefined when no key has a range.
 */
function estimateGroups(ctx: PlanContext, groups: AstNode[], splitRows: number): number | undefined {
  const ranges: number[] = [];
  for (const g of groups) {
    const range = integerRange(ctx, g);
    if (range !== undefined) ranges.push(range);
  }
  if (ranges.length === 0) return undefined;
  const estimate = ranges.length === groups.length ? ranges.reduce((p, r) => Math.min(p * r, Number.MAX_SAFE_INTEGER), 1) : Math.max(...ranges);
  return Math.min(estimate, splitRows);
}

/**
 * Rows of the join of two tables on a.x = b.y, from the files' statistics: rows(a) x rows(b)
 * over the larger of the keys' distinct values, each at most its table's rows and its value
 * range (an integer column with statistics). A key with no statistics (a text column, or
 * a file written without them) counts only when neither has them, as a key join (the larger table's rows);
 * otherwise the known one divides, so customer and supplier on their 25 nation keys are
 * estimated at rows x rows / 25 however large the other side is.
 */
export function joinRowsEstimate(a: TableSnapshot, x: Column, b: TableSnapshot, y: Column): number {
  const rows = (t: TableSnapshot) => Math.max(1, t.files.reduce((n, f) => n + f.rowCount, 0));
  const distinct = (t: TableSnapshot, c: Column) => {
    const range = columnRange(t, c);
    return range === undefined ? undefined : Math.max(1, Math.min(rows(t), range));
  };
  const known = [distinct(a, x), distinct(b, y)].filter((n): n is number => n !== undefined);
  if (!known.length) return Math.max(rows(a), rows(b));
  return (rows(a) * rows(b)) / Math.max(...known);
}

/** max - min + 1 of an integer column over its table's files, when every file has both. */
function columnRange(snapshot: TableSnapshot, column: Column): number | undefined {
  if (!isIntegerType(column.type) || snapshot.files.length === 0) return undefined;
  let min: bigint | undefined;
  let max: bigint | undefined;
  for (const f of snapshot.files) {
    const st = f.stats[column.name];
    if (st?.min == null || st?.max == null || !/^-?\d+$/.test(st.min) || !/^-?\d+$/.test(st.max)) return undefined;
    const lo = BigInt(st.min);
    const hi = BigInt(st.max);
    if (min === undefined || lo < min) min = lo;
    if (max === undefined || hi > max) max = hi;
  }
  return min === undefined || max === undefined ? undefined : Number(max - min + 1n);
}

/** The value range of a group key that is a plain integer column of one table in the query (columnRange). */
function integerRange(ctx: PlanContext, g: AstNode): number | undefined {
  if (g.class !== 'COLUMN_REF') return undefined;
  if (g.column_names.length > 1) {
    // A struct field path (`s.a`, `t.s.a`: the field a of t's column s) has no range here,
    // whatever a column named by its last part holds; `t.a` is t's column a.
    const r = resolveName(g.column_names as string[], fromBindings(ctx.root.from_table, (n) => ctx.refTable.get(n)?.snapshot.columns, false) ?? []);
    if (typeof r === 'string' || r.path.length > 0) return undefined;
  }
  const name = String(g.column_names[g.column_names.length - 1]).toLowerCase();
  const owners = [...ctx.resolved.values()].filter((r) => r.snapshot.columns.some((c) => c.name.toLowerCase() === name));
  if (owners.length !== 1) return undefined;
  const { snapshot } = owners[0];
  return columnRange(snapshot, snapshot.columns.find((c) => c.name.toLowerCase() === name)!);
}

/** The aggregate rules' SQL templates, parsed once by DuckDB. */
async function ruleTemplates(conn: DuckDBConnection): Promise<Map<string, AstNode>> {
  if (templateCache) return templateCache;
  const texts = [...new Set(AGGREGATE_RULES.flatMap((r) => [...r.partials, r.final]))];
  const parsed = await parseStatement(conn, `SELECT ${texts.join(', ')} FROM __t`);
  templateCache = new Map(texts.map((t, i) => [t, parsed.node.select_list[i] as AstNode]));
  return templateCache;
}

// ---------------------------------------------------------------------------------------
// top-k and scan

function buildScan(ctx: PlanContext, select: AstNode): Built | string {
  const items = select.select_list as AstNode[];
  const exprs = selectExpressions(select);
  if (exprs.some((e) => someExpression(e, (x) => x.class === 'WINDOW')) || select.qualify) return 'window functions are evaluated in one place';
  let order: AstNode | undefined;
  let limit: AstNode | undefined;
  let distinct = false;
  for (const mod of select.modifiers as AstNode[]) {
    if (mod.type === 'ORDER_MODIFIER') order = mod;
    else if (mod.type === 'LIMIT_MODIFIER') limit = mod;
    else if (mod.type === 'DISTINCT_MODIFIER') {
      if (mod.distinct_on_targets?.length) return 'DISTINCT ON is evaluated in one place';
      distinct = true;
    } else return `${String(mod.type).toLowerCase()} is evaluated in one place`;
  }
  let k: number | undefined;
  let offset = 0;
  if (limit) {
    if (limit.limit) {
      k = integerValue(limit.limit);
      if (k === undefined || k < 0) return 'LIMIT is not a constant';
    }
    if (limit.offset) {
      const o = integerValue(limit.offset);
      if (o === undefined || o < 0) return 'OFFSET is not a constant';
      offset = o;
    }
  }

  const aliasIndex = new Map<string, number>();
  items.forEach((item, i) => { if (item.alias) aliasIndex.set(String(item.alias).toLowerCase(), i); });
  const itemKeys = items.map((i) => exprKey(withAlias(i, '')));
  const columnCount = ctx.output.length;
  const hasStar = items.some((i) => someExpression(i, (e) => e.class === 'STAR'));

  // Each ORDER BY term becomes a column of the partial: an output column, or a hidden key.
  const hidden: AstNode[] = [];
  const finalOrders: AstNode[] = [];
  for (const o of (order?.orders ?? []) as AstNode[]) {
    const e = o.expression;
    let target: AstNode | undefined;
    const ordinal = integerValue(e);
    if (ordinal !== undefined) {
      if (ordinal < 1 || ordinal > columnCount) return 'ORDER BY position out of range';
      target = integerConstant(ordinal);
    } else if (!hasStar && e.class === 'COLUMN_REF' && e.column_names.length === 1 && aliasIndex.has(String(e.column_names[0]).toLowerCase())) {
      target = integerConstant(aliasIndex.get(String(e.column_names[0]).toLowerCase())! + 1);
    } else if (!hasStar && itemKeys.includes(exprKey(e))) {
      target = integerConstant(itemKeys.indexOf(exprKey(e)) + 1);
    } else {
      if (distinct) return 'ORDER BY a term outside the DISTINCT select list';
      hidden.push(withAlias(clone(e), `__o${hidden.length}`));
      target = colRef(`__o${hidden.length - 1}`);
    }
    finalOrders.push({ ...o, expression: target });
  }

  const innerModifiers: AstNode[] = [];
  if (distinct) innerModifiers.push({ type: 'DISTINCT_MODIFIER', distinct_on_targets: [] });
  if (k !== undefined && order) innerModifiers.push(clone(order));
  if (k !== undefined) innerModifiers.push({ type: 'LIMIT_MODIFIER', limit: integerConstant(k + offset), offset: null });
  const inner = { ...clone(select), select_list: [...items.map(clone), ...hidden], modifiers: innerModifiers };
  const names = [...Array.from({ length: columnCount }, (_, i) => `__c${i}`), ...hidden.map((_, j) => `__o${j}`)];
  const fragmentNode = selectNode([star()], {
    type: 'SUBQUERY', alias: '__q', sample: null, query_location: 0,
    subquery: { node: inner, named_param_map: [] }, column_name_alias: names,
  });

  // Ordinals in the final ORDER BY refer to the final select list, hidden keys by name.
  const finalItems = ctx.output.map((c, i) => withAlias(colRef(`__c${i}`), c.name));
  const finalModifiers: AstNode[] = [];
  if (distinct) finalModifiers.push({ type: 'DISTINCT_MODIFIER', distinct_on_targets: [] });
  if (order) finalModifiers.push({ type: 'ORDER_MODIFIER', orders: finalOrders });
  if (limit) finalModifiers.push({ type: 'LIMIT_MODIFIER', limit: k !== undefined ? integerConstant(k) : null, offset: offset ? integerConstant(offset) : null });
  const reduceNode = selectNode(finalItems, baseTable(PARTIALS_VIEW), { modifiers: finalModifiers });

  if (k !== undefined && order) {
    return { shape: 'top-k', fragmentNode, reduceNode, reason: `ORDER BY ... LIMIT ${k}${offset ? ` OFFSET ${offset}` : ''} in every fragment, then once more over the union` };
  }
  const what = [distinct && 'DISTINCT per fragment and once more', order && 'the union sorted', k !== undefined && `LIMIT ${k} per fragment and once more`].filter(Boolean).join('; ');
  return {
    shape: 'scan', fragmentNode, reduceNode, reason: `filter and projection per fragment${what ? `; ${what}` : ''}`,
    unionOfFragments: !distinct && k === undefined,
  };
}

/**
 * `ORDER BY ALL` (DuckDB's AST: one STAR term with `columns: true`) sorts by every output
 * column, left to right, with the term's direction and NULLS order. The split shapes carry
 * ORDER BY terms one column each, so it becomes the ordinals 1..n first. Any other star in
 * ORDER BY (`COLUMNS('re')`, `* EXCLUDE ...`) is left to DuckDB on one node.
 */
function orderByAllAsOrdinals(select: AstNode, columnCount: number): AstNode | string {
  let changed = false;
  const modifiers: AstNode[] = [];
  for (const mod of select.modifiers as AstNode[]) {
    if (mod.type !== 'ORDER_MODIFIER' || !(mod.orders as AstNode[]).some((o) => someExpression(o.expression, (x) => x.class === 'STAR'))) {
      modifiers.push(mod);
      continue;
    }
    const orders: AstNode[] = [];
    for (const o of mod.orders as AstNode[]) {
      const e = o.expression;
      const isAll = e.class === 'STAR' && e.columns === true && !e.expr && !e.relation_name
        && !e.exclude_list?.length && !e.replace_list?.length && !e.rename_list?.length && !e.qualified_exclude_list?.length;
      if (!isAll && someExpression(e, (x) => x.class === 'STAR')) return 'ORDER BY over a column pattern is evaluated in one place';
      if (!isAll) {
        orders.push(o);
        continue;
      }
      for (let i = 1; i <= columnCount; i++) orders.push({ ...o, expression: integerConstant(i) });
    }
    changed = true;
    modifiers.push({ ...mod, orders });
  }
  return changed ? { ...select, modifiers } : select;
}

// ---------------------------------------------------------------------------------------
// helpers

/**
 * Each top-level conjunct that is an OR whose every branch has some conjuncts in common, as
 * those conjuncts AND the OR of what is left of each branch (exact in SQL's three-valued
 * logic; a branch left with nothing makes the OR true). Never a volatile conjunct, nor one
 * with a subquery unless `subqueries` (a user's WHERE keeps its subqueries where they are).
 */
function factorCommonConjuncts(where: AstNode, options: { subqueries?: boolean } = {}): AstNode {
  const disjuncts = (e: AstNode): AstNode[] => (e.class === 'CONJUNCTION' && e.type === 'CONJUNCTION_OR' ? (e.children as AstNode[]).flatMap(disjuncts) : [e]);
  const out: AstNode[] = [];
  for (const c of conjuncts(where)) {
    const branches = disjuncts(c).map((b) => conjuncts(b));
    if (branches.length < 2) {
      out.push(c);
      continue;
    }
    const common = branches[0].filter((x) => branches.every((b) => b.some((y) => exprKey(y) === exprKey(x))));
    const commonKeys = new Set(common.map(exprKey));
    if (common.length === 0 || common.some((x) => someExpression(x, (e) => (e.class === 'SUBQUERY' && !options.subqueries) || e.class === 'FUNCTION' && /random|uuid|nextval/i.test(String(e.function_name))))) {
      out.push(c);
      continue;
    }
    out.push(...common);
    const rest = branches.map((b) => b.filter((x) => !commonKeys.has(exprKey(x))));
    if (rest.every((b) => b.length > 0)) out.push(conjunction('OR', rest.map((b) => conjunction('AND', b))));
  }
  return conjunction('AND', out);
}

/** The table's column of that name, matched without regard to case. */
function columnOf(table: ResolvedTable, name: string): Column | undefined {
  const lower = name.toLowerCase();
  return table.snapshot.columns.find((c) => c.name.toLowerCase() === lower);
}

/** The base-table references of a FROM tree, through its joins (not inside derived tables). */
function collectBaseRefs(from: AstNode | null | undefined, out: AstNode[]): void {
  if (!from) return;
  if (from.type === 'BASE_TABLE') out.push(from);
  else if (from.type === 'JOIN') {
    collectBaseRefs(from.left, out);
    collectBaseRefs(from.right, out);
  }
}

/**
 * The reference among `refs` (base tables of a FROM clause) and its column that a column
 * reference of that query level names: by its binding when qualified, else the one of them
 * with such a column (none when two could be meant).
 */
function columnOwner(ctx: PlanContext, e: AstNode, refs: readonly AstNode[]): { ref: AstNode; column: Column } | undefined {
  if (e.class !== 'COLUMN_REF') return undefined;
  const names = (e.column_names as unknown[]).map((n) => String(n).toLowerCase());
  const colOf = (ref: AstNode, name: string) => {
    const table = ctx.refTable.get(ref);
    return table && columnOf(table, name);
  };
  if (names.length === 2) {
    const ref = refs.find((r) => ctx.scope.refs.find((x) => x.node === r)?.binding.toLowerCase() === names[0]);
    const column = ref ? colOf(ref, names[1]) : undefined;
    return ref && column ? { ref, column } : undefined;
  }
  if (names.length !== 1) return undefined;
  // An expression of the query's own level: a subquery's tables are not in its scope.
  const owners = refs.filter((r) => colOf(r, names[0]));
  if (owners.length !== 1) return undefined;
  return { ref: owners[0], column: colOf(owners[0], names[0])! };
}

/** Can the rows of `target` be split across fragments without changing the join's result? */
function splittableSide(from: AstNode, target: AstNode): boolean {
  if (from === target) return true;
  if (from.type !== 'JOIN') return false;
  const inLeft = contains(from.left, target);
  const side = inLeft ? from.left : from.right;
  const regular = from.ref_type === 'REGULAR' || from.ref_type === 'CROSS' || from.ref_type === 'NATURAL';
  if (!regular) return false;
  switch (from.join_type) {
    case 'INNER': break;
    case 'LEFT': case 'SEMI': case 'ANTI': if (!inLeft) return false; break;
    case 'RIGHT': if (inLeft) return false; break;
    default: return false;
  }
  return splittableSide(side, target);
}

/** The JOIN node whose two sides hold `a` and `b`, one each. */
function lowestCommonJoin(from: AstNode, a: AstNode, b: AstNode): AstNode | undefined {
  if (from.type !== 'JOIN') return undefined;
  const aLeft = contains(from.left, a);
  const bLeft = contains(from.left, b);
  if (aLeft && bLeft) return lowestCommonJoin(from.left, a, b);
  if (!aLeft && !bLeft) return lowestCommonJoin(from.right, a, b);
  return from;
}

function contains(from: AstNode, target: AstNode): boolean {
  if (from === target) return true;
  return from.type === 'JOIN' && (contains(from.left, target) || contains(from.right, target));
}

/**
 * What pushdown + single-node would pull up to one node, about: each table's bytes times the
 * share of its columns the query uses (Parquet is read by column). Filters are not counted,
 * so it errs high.
 */
function pullUpEstimate(ctx: PlanContext): number {
  let bytes = 0;
  for (const r of ctx.resolved.values()) {
    const { columns } = r.snapshot;
    if (columns.length === 0) continue;
    const used = usedColumns(ctx, columns, ctx.scope.refs.filter((ref) => ref.view === r.view).map((ref) => ref.node));
    bytes += (tableBytes(r.snapshot) * used.length) / columns.length;
  }
  return bytes;
}

/**
 * The columns of a table that its references may use: all of them under a star or column
 * aliases (FROM t AS x(a, b) names them by position), else those the query names; at least
 * one (a query that only counts rows still needs a column to carry them).
 */
function usedColumns(ctx: PlanContext, columns: Column[], nodes: AstNode[], names = ctx.scope.names): Column[] {
  const all = nodes.some((n) => ctx.scope.starred.has(n) || (n.column_name_alias ?? []).length > 0);
  const used = all ? columns : columns.filter((c) => names.has(c.name.toLowerCase()));
  return used.length ? used : [narrowest(columns)];
}

function tableBytes(t: TableSnapshot): number {
  return t.files.reduce((s, f) => s + f.sizeBytes, 0);
}

function fileRef(f: DataFile, table: ResolvedTable): FileRef {
  // Iceberg files carry their field-id read schema and delete files to the worker, files of
  // CSV/JSON tables their partition values.
  const ref: FileRef = f.iceberg ? { uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount, iceberg: f.iceberg } : { uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount };
  if (f.partitionValues) ref.partitionValues = f.partitionValues;
  // A plain Parquet file may be split along its row groups (assign.ts): a split is read with
  // DuckDB's file_row_number, so not when the table has a column of that name.
  if (f.rowGroups && !f.iceberg && !table.snapshot.fileSet && !table.snapshot.columns.some((c) => c.name.toLowerCase() === 'file_row_number')) ref.rowGroups = f.rowGroups;
  return ref;
}

function inputFor(table: ResolvedTable, files: FileRef[]): FragmentInput {
  // A file's row-group layout is the planner's (assignFiles splits by it and drops it); a
  // table read whole (a broadcast input) never needs it.
  const input: FragmentInput = { view: table.view, table: table.snapshot.name, columns: table.snapshot.columns, files: files.map(({ rowGroups: _layout, ...f }) => f) };
  // Iceberg tables: the worker reads by field id and applies deletes (see exec/views.ts).
  if (table.snapshot.iceberg) input.iceberg = table.snapshot.iceberg;
  // CSV/JSON tables: the worker reads them with the recorded reader options and columns.
  if (table.snapshot.fileSet) input.fileSet = table.snapshot.fileSet;
  return input;
}

function narrowest(columns: Column[]): Column {
  const width = (t: string) => (/^(BOOLEAN|TINYINT|UTINYINT)$/i.test(t) ? 1 : /^(SMALLINT|USMALLINT)$/i.test(t) ? 2 : /^(INTEGER|UINTEGER|DATE|FLOAT)$/i.test(t) ? 4 : /^(BIGINT|UBIGINT|DOUBLE|TIMESTAMP)/i.test(t) ? 8 : 16);
  return [...columns].sort((a, b) => width(a.type) - width(b.type))[0];
}

/** Create an empty table of `columns` on `conn`; returns the statement (for the SQL runner). */
async function createEmptyTable(conn: DuckDBConnection, name: string, columns: Column[]): Promise<string> {
  const defs = columns.map((c) => `${sqlIdent(c.name)} ${c.type}`).join(', ');
  const statement = `CREATE OR REPLACE TEMP TABLE ${sqlIdent(name)} (${defs})`;
  await conn.run(statement);
  return statement;
}

/** DuckDB's common supertype of two types, asked once per pair (every partitioned-join candidate asks). */
const commonTypes = new Map<string, Promise<string>>();

function commonType(conn: DuckDBConnection, a: string, b: string): Promise<string> {
  const key = `${a}\0${b}`;
  let known = commonTypes.get(key);
  if (!known) {
    known = describe(conn, `SELECT CAST(NULL AS ${a}) AS k UNION ALL SELECT CAST(NULL AS ${b})`).then((columns) => columns[0].type);
    // A failure is not remembered: the next plan asks again.
    known.catch(() => commonTypes.delete(key));
    commonTypes.set(key, known);
  }
  return known;
}

async function describe(conn: DuckDBConnection, sql: string): Promise<Column[]> {
  const reader = await conn.runAndReadAll(`DESCRIBE ${sql}`);
  return reader.getRows().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
}

/** Cast-type AST nodes for DuckDB type names, parsed by DuckDB itself. */
async function typeNodes(conn: DuckDBConnection, types: string[]): Promise<AstNode[]> {
  if (types.length === 0) return [];
  const parsed = await parseStatement(conn, `SELECT ${types.map((t) => `CAST(NULL AS ${t})`).join(', ')}`);
  return (parsed.node.select_list as AstNode[]).map((e) => e.cast_type as AstNode);
}

function afterWhere(sql: string): string {
  const i = sql.indexOf(' WHERE ');
  return i >= 0 ? sql.slice(i + ' WHERE '.length) : sql;
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}
