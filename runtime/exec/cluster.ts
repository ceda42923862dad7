// The local cluster: planner, catalog and coordinator in this process, fragments on a pool
// of worker processes (or on Lambda when a worker function is configured, or in-process
// for tests). It is the QueryService that `puffindb query`, `puffindb serve` and
// `npm start` talk to.

import { prepareCompiled } from '../compiled.js';
import type { DuckDBConnection } from '@duckdb/node-api';
import { linkSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ulid } from 'ulid';
import { loadTable } from '../catalog/iceberg/commit.ts';
import { assertWritableFormat } from '../catalog/iceberg/metadata.ts';
import { planTableScan } from '../catalog/iceberg/scan.ts';
import { keepsLineage, LINEAGE_COLUMNS } from '../catalog/iceberg/lineage.ts';
import { appendDataFiles, createTableFromDefinitions, type RewriteOutcome, type RewriteRequest } from '../catalog/iceberg/writer.ts';
import type { MergeFragmentsRequest } from '../catalog/iceberg/merge.ts';
import { mergeInFragments, type MergeRun } from './merge-fragments.ts';
import { executeWriteFragments, type WriteFragmentsHost } from './write-fragments.ts';
import { scanPredicateFromSql } from '../catalog/scan-filter.ts';
import { toTableSnapshot, warehouseCatalogOf } from '../catalog/warehouse-catalog.ts';
import { addInput, assignFiles } from '../planner/assign.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import { dataFileFromJson, type DataFileInfo, type DataFileJson } from '../catalog/iceberg/writer-manifest.ts';
import type { Catalog, Column, TableSummary } from '../catalog/types.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError, registerInternalPath } from '../errors.ts';
import type { FileRef, FragmentInput, MaterializedStep, Plan } from '../planner/plan.ts';
import { Planner } from '../planner/planner.ts';
import { executeWriteStatement, parseWrite, type WriteOutcome, type WritePlannerContext, type WriteStatement } from '../planner/write-planner.ts';
import type { Settings } from '../settings.ts';
import { sqlIdent } from '../sql/quote.ts';
import type { StateStore } from '../state/state-store.ts';
import { FileCache } from '../storage/file-cache.ts';
import { asyncFanoutFor } from './async-fanout.ts';
import { Coordinator, type ExecuteOutcome } from './coordinator.ts';
import { MATERIALIZED_PREFIX, storingPlan, typedLiteral, type MaterializedInput } from '../planner/materialize.ts';
import { InProcessInvoker } from './in-process-invoker.ts';
import type { Invoker } from './invoker.ts';
import { ProcessPoolInvoker } from './process-pool-invoker.ts';
import { ownProcessDir } from './leftovers.ts';
import { SqlRunnerPool } from './sql-runner.ts';
import { addStats, emptyStats, type QueryOptions, type QueryOutcome, type QueryService, type QueryStats, type Statement } from './query-service.ts';
import { classifyStatement, unsupportedStatement, type ClassifiedStatement, type StatementKind } from '../sql/classify.ts';
import { inputViewSql } from './views.ts';
import { describeParquetFiles } from '../catalog/iceberg/parquet-schema.ts';
import { storeOptionsOf } from './worker.ts';
import { RemoteTables } from './remote-tables.ts';
import { openRemoteRegistry } from '../state/remote-file.ts';
import { tableSummary } from '../catalog/summary.ts';
import { CatalogStatements } from './catalog-statements.ts';
import { copyTo, explainCopy, type CopyHost } from './copy-to.ts';
import { ViewStatements } from './view-statements.ts';
import type { MaterializedViews } from './materialized-views.ts';
import { callProcedure, explainProcedure } from './maintenance.ts';
import { curlPlaceholderSql, materializeCurl, mayCallCurl } from './curl.ts';
import { VectorIndexes } from './vector-index.ts';

export type InvokerKind = 'pool' | 'in-process' | 'lambda';

export interface ClusterOptions {
  settings: Settings;
  catalog: Catalog;
  /** Where fragments run; default: Lambda when settings.workerFunction is set, else the process pool. */
  invoker?: InvokerKind | Invoker;
  /** The state store, for asynchronous fan-out (completion streams). */
  state?: StateStore;
  /**
   * When the worker processes start: 'now' (a server: the first query does not wait for
   * them) or 'on-first-use' (default: a one-shot command starts what its query needs, no
   * worker for a query that runs no fragment). The first runner slot starts now either way
   * (every query's last step runs in one, and its start overlaps planning); the planning
   * slots start on first use either way (only constants that are not literals need them).
   */
  startProcesses?: 'now' | 'on-first-use';
  /**
   * Where the reduce step, 'local' plans and planning's constants run: child processes,
   * killed at a deadline (the default with worker processes: a server's SQL is anybody's),
   * or engines in this process, interrupted between vectors (the default elsewhere). A
   * one-shot CLI command runs its own user's SQL and exits: starting child processes would
   * be most of its time.
   */
  runners?: 'process' | 'in-process';
}

export class LocalCluster implements QueryService {
  private constructor(
    readonly settings: Settings,
    readonly catalog: Catalog,
    private readonly engine: Engine,
    private readonly planner: Planner,
    private readonly coordinator: Coordinator,
    private readonly invoker: Invoker,
    /** Local copies of table files for the coordinator's own reads (writes). */
    private readonly files: FileCache,
    /** The SQL runners (reduce steps, planning); closed with the cluster. */
    private readonly runners: SqlRunnerPool[],
    /** The state store (materialized views' refresh leases), when one was given. */
    private readonly state?: StateStore,
  ) {}

  static async open(options: ClusterOptions): Promise<LocalCluster> {
    const { settings, catalog } = options;
    // Worker and SQL runner processes start from the compiled runtime when it can be built.
    await prepareCompiled();
    const scratch = join(settings.home, 'coordinator');
    mkdirSync(scratch, { recursive: true });
    // Where the server keeps its files is admin information: error messages name them by label.
    registerInternalPath(settings.cacheDir, '<worker cache>');
    registerInternalPath(settings.home, '<PUFFINDB_HOME>');
    // The coordinator's DuckDB parses, binds and prunes. It may read only a directory of its
    // own that never holds a file (DuckDB's spill files aside): partials, write staging and
    // cached table copies live elsewhere under the scratch directory, where no engine that
    // sees user SQL can read them.
    const engine = await Engine.create({ threads: settings.threads, memoryLimit: settings.memoryLimit, allowedDirectories: [join(scratch, 'planner')] });
    const eager = options.startProcesses === 'now';
    const invoker = typeof options.invoker === 'object' ? options.invoker : await createInvoker(settings, options.invoker, !eager);
    // The reduce step and 'local' plans run in runner slots that see one job's files each;
    // with worker processes (the pool) the slots are processes too, killed at a deadline.
    // Elsewhere (Lambda bundles, in-process tests) they are engines in this process.
    const kind = options.runners ?? (invoker instanceof ProcessPoolInvoker ? 'process' : 'in-process');
    const runner = new SqlRunnerPool({ dir: join(scratch, 'runners'), size: Math.max(2, settings.workers), kind, threads: settings.threads, memoryLimit: settings.memoryLimit });
    // Planning binds and computes constants in slots of its own: short jobs that must not
    // queue behind long reduce steps.
    // They start on first use everywhere: only constants that are not literals need them.
    const planning = new SqlRunnerPool({ dir: join(scratch, 'planning'), size: 2, kind, threads: 1, warm: false });
    let indexes: VectorIndexes | undefined;
    const planner = new Planner({
      engine, catalog, maxFragments: settings.maxFragments, broadcastLimitBytes: settings.broadcastLimitBytes, shufflePartitions: settings.shufflePartitions, partitionedAggregateGroups: settings.partitionedAggregateGroups, coSplit: settings.coSplit, subqueryStageBytes: settings.subqueryStageBytes,
      // Constants of user SQL computed while planning run where the deadline can stop them.
      evaluate: (job, signal) => planning.run({ build: () => job }, signal),
      // IVF indexes (vector-index.ts), known once the cluster exists.
      ivf: { indexOn: async (table, column) => indexes?.indexOn(table, column) },
    });
    const coordinator = new Coordinator({
      invoker,
      engine,
      runner,
      scratchDir: join(scratch, 'partials'),
      concurrency: settings.concurrency,
      retries: settings.retries,
      queryTimeoutMs: settings.queryTimeoutMs,
      inlineLimitBytes: settings.inlineLimitBytes,
      storeOptions: storeOptionsOf(settings),
      shuffleUrl: settings.shuffleUrl,
      shuffleCombineAbove: settings.shuffleCombineAbove,
      stageTaskBytes: settings.stageTaskBytes,
      // Event invocations with completions in the state store, for queries of many fragments
      // (only with a worker Lambda, Redis and PUFFINDB_ASYNC_THRESHOLD > 0).
      asyncFanout: asyncFanoutFor(settings, invoker, options.state),
    });
    // Its own per process (pins and the byte bound are in memory: sharing the directory would
    // let one process evict a file another is reading).
    const files = new FileCache({ dir: ownProcessDir(join(scratch, 'files')), maxBytes: settings.cacheBytes, storeOptions: storeOptionsOf(settings) });
    const cluster = new LocalCluster(settings, catalog, engine, planner, coordinator, invoker, files, [runner, planning], options.state);
    indexes = cluster.vectorIndexes();
    return cluster;
  }

  /** SELECT ... THROUGH and remote.table (runtime/exec/remote-tables.ts), over the registry the API and CLI change. */
  private remoteTables?: RemoteTables;
  private remotes(): RemoteTables {
    return (this.remoteTables ??= new RemoteTables(this.settings, this.engine, openRemoteRegistry(this.settings)));
  }

  /** DESCRIBE, SHOW TABLES, SUMMARIZE, information_schema: answered from the catalog (runtime/exec/catalog-statements.ts). */
  private statements?: CatalogStatements;
  private catalogStatements(): CatalogStatements {
    return (this.statements ??= new CatalogStatements(this.catalog));
  }

  /** Views: CREATE / DROP [MATERIALIZED] VIEW, REFRESH, and SELECTs naming views expanded before planning (runtime/exec/view-statements.ts). */
  private viewStatements?: ViewStatements;
  private views(): ViewStatements {
    return (this.viewStatements ??= new ViewStatements({ engine: this.engine, state: this.state, catalog: this.catalog, settings: this.settings, explain: (s, o) => this.explain(s, o), query: (s, o) => this.query(s, o) }));
  }

  /** The materialized views (refreshes, schedules, status) this cluster runs: what the pipelines call. */
  materializedViews(): MaterializedViews {
    return this.views().materialized;
  }

  /** CREATE INDEX ... USING ivf and DROP INDEX (runtime/exec/vector-index.ts). */
  private indexes?: VectorIndexes;
  vectorIndexes(): VectorIndexes {
    return (this.indexes ??= new VectorIndexes({ engine: this.engine, catalog: this.catalog, settings: this.settings, explain: (s, o) => this.explain(s, o), query: (s, o) => this.query(s, o) }));
  }

  /** The statement classified once (runtime/sql/classify.ts); what is done with it follows from that alone. */
  private async classified(statement: Statement): Promise<ClassifiedStatement> {
    return typeof statement === 'string' ? classifyStatement(this.engine, statement) : statement;
  }

  /** What COPY ... TO (runtime/exec/copy-to.ts) runs with. */
  private copyHost(): CopyHost {
    return { settings: this.settings, engine: this.engine, plan: (sql, o) => this.planner.plan(sql, o), execute: (plan, o) => this.coordinator.execute(plan, o), query: (sql, o) => this.query(sql, o) };
  }

  /** The write a non-SELECT statement is, or the reason it does not run. */
  private writeOf(statement: ClassifiedStatement): WriteStatement {
    // The write path reads the statement without its comments, as classified: never the raw text.
    const write = parseWrite(statement.text);
    if (!write || !WRITE_KINDS[write.kind].includes(statement.kind)) throw unsupportedStatement(statement);
    return write;
  }

  async explain(input: Statement, options: QueryOptions = {}): Promise<Plan> {
    const classified = await this.classified(input);
    // THROUGH runs the statement elsewhere: nothing of it is expanded or planned here.
    if (classified.through) return this.remotes().explainThrough(classified);
    const statement = await this.views().expand(classified);
    if (ViewStatements.handles(statement)) return this.views().explain(statement);
    const catalogPlan = statement.catalog ? await this.catalogStatements().explain(statement, options, this) : undefined;
    if (catalogPlan) return catalogPlan;
    if (statement.kind === 'copy') return explainCopy(this.copyHost(), statement, options);
    if (statement.kind === 'call') return explainProcedure({ settings: this.settings, catalog: this.catalog, files: this.files }, statement);
    if (VectorIndexes.handles(statement)) return this.vectorIndexes().explain(statement);
    if (statement.kind !== 'select') return writePlan(statement.sql, this.writeOf(statement));
    // curl() is fetched when the query runs, not to explain it: the plan is made after the fetch.
    const curl = mayCallCurl(statement.sql) ? await curlPlaceholderSql(this.engine, statement.sql) : undefined;
    if (curl) return curlDeferredPlan(curl.sql, curl.urls);
    // Remote tables are fetched when the query runs; explain shows what each is fetched with.
    const remote = await this.remotes().placeholder(statement.sql, Date.now() + (options.timeoutMs ?? this.settings.queryTimeoutMs), options.signal, classified.sql);
    if (remote) return remote;
    // Planning binds and computes constants in the SQL runner: a deadline stops that too.
    const planning = deadlineSignal(Date.now() + (options.timeoutMs ?? this.settings.queryTimeoutMs), options.queryId ?? 'explain', options.signal);
    return this.planner.plan(statement.sql, { fragments: options.fragments, partitions: options.partitions, role: options.role, signal: planning.signal, materialize: true, nprobe: options.nprobe }).finally(planning.done);
  }

  async query(input: Statement, options: QueryOptions = {}): Promise<QueryOutcome> {
    const classified = await this.classified(input);
    if (classified.through) return this.remotes().runThrough(classified, options, options.queryId ?? ulid());
    const statement = await this.views().expand(classified);
    if (ViewStatements.handles(statement)) return this.views().run(statement, options);
    const answered = statement.catalog ? await this.catalogStatements().query(statement, options, this) : undefined;
    if (answered) return answered;
    if (statement.kind === 'copy') return copyTo(this.copyHost(), statement, options);
    if (statement.kind === 'call') return callProcedure({ settings: this.settings, catalog: this.catalog, files: this.files }, statement, options);
    if (VectorIndexes.handles(statement)) return this.vectorIndexes().run(statement, options);
    if (statement.kind !== 'select') {
      await this.remotes().refuseInWrite(statement);
      return this.write(statement.sql, this.writeOf(statement), options);
    }
    const sql = statement.sql;
    const queryId = options.queryId ?? ulid();
    const started = performance.now();
    const deadline = Date.now() + (options.timeoutMs ?? this.settings.queryTimeoutMs);
    // A plan made by explain() for this query is used as is (planned once); otherwise planning
    // binds and computes constants in the SQL runner, under the query's deadline.
    // curl() calls are fetched once, here, and planned as the tables they were stored as
    // (runtime/exec/curl.ts); a plan explain() made for such a query is only a placeholder.
    // Remote tables (runtime/exec/remote-tables.ts) likewise: fetched once, with what can be
    // pushed to the remote, and planned as the tables they were stored as.
    const remote = await this.remotes().materialize(sql, { received: classified.sql, queryId, deadline, signal: options.signal }, (files) => this.coordinator.discard(files));
    const local = remote?.sql ?? sql;
    const curl = mayCallCurl(local) ? await materializeCurl({ settings: this.settings, engine: this.engine, queryId, deadline, signal: options.signal }, local, (files) => this.coordinator.discard(files)).catch(async (err: unknown) => {
      if (remote) await this.coordinator.discard(remote.files).catch(() => undefined);
      throw err;
    }) : undefined;
    const temps: ReadonlyMap<string, MaterializedInput> = new Map([...(remote?.temps ?? []), ...(curl?.temps ?? [])]);
    const run: StepsRun = { queryId, deadline, options, steps: 0, stored: [...(remote?.files ?? []), ...(curl?.files ?? [])], totals: { ...emptyStats(), singleNodeBytes: 0, stages: [] } };
    try {
      let plan = curl || remote ? undefined : options.plan;
      if (!plan) plan = await this.planUnder(curl?.sql ?? local, temps, { queryId, deadline, options });
      const planMs = performance.now() - started;
      if (deadline - Date.now() <= 0) throw new PuffinError('timeout', `query ${queryId} passed its deadline while planning`);
      const ran = await this.runPlan(plan, temps, run, 'rows');
      return {
        queryId,
        columns: ran.outcome.columns,
        rows: ran.outcome.rows,
        plan: remote ? { ...ran.plan, remote: remote.remote } : ran.plan,
        stats: { ...run.totals, planMs, totalMs: performance.now() - started },
      };
    } finally {
      // The results of materialized subqueries, once nothing reads them.
      if (run.stored.length) await this.coordinator.discard(run.stored).catch(() => undefined);
    }
  }

  /** Plan a SELECT (which may come back 'staged') under the query's deadline. */
  private async planUnder(sql: string, temps: ReadonlyMap<string, MaterializedInput>, run: Pick<StepsRun, 'queryId' | 'deadline' | 'options'>, storeResult = false): Promise<Plan> {
    const planning = deadlineSignal(run.deadline, run.queryId, run.options.signal);
    const { fragments, partitions, role } = run.options;
    return this.planner.plan(sql, { fragments, partitions, role, signal: planning.signal, materialize: true, temps, storeResult, nprobe: run.options.nprobe }).finally(planning.done);
  }

  /**
   * Run a plan. A 'staged' plan runs its steps first, in order, each planned and run like a
   * query (its own steps first); a table step's rows stay in the files its last tasks wrote,
   * a scalar or EXISTS step's value becomes a constant; then the query over their results
   * is planned with their real sizes and run. `mode` is what the caller needs of the
   * answer: its rows, a stored table, one value as text, or whether it has a row.
   */
  private async runPlan(plan: Plan, temps: ReadonlyMap<string, MaterializedInput>, run: StepsRun, mode: 'rows' | 'table' | 'scalar' | 'exists'): Promise<{ plan: Plan; outcome: ExecuteOutcome }> {
    if (plan.shape === 'staged' && plan.materialized) {
      const inner = new Map(temps);
      const steps: MaterializedStep[] = [];
      const all = plan.materialized.steps;
      // A step starts when the steps its SQL reads are done; independent ones run at once.
      const finished = new Map<string, Promise<void>>();
      const runStep = async (step: MaterializedStep, index: number): Promise<void> => {
        const stepPlan = await this.planUnder(step.sql, inner, run, step.kind === 'table');
        const ran = await this.runPlan(stepPlan, inner, run, step.kind);
        if (step.kind === 'table') {
          const files = ran.outcome.stored ?? [];
          inner.set(step.name, { kind: 'table', columns: step.columns, files: files.map((f) => ({ uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount, stats: f.stats ?? {} })) });
          steps[index] = { ...step, plan: ran.plan, result: { rows: files.reduce((n, f) => n + f.rowCount, 0), bytes: files.reduce((n, f) => n + f.sizeBytes, 0), files: files.length, stages: ran.outcome.stats.stages } };
        } else {
          const rows = ran.outcome.rows;
          if (rows.length > 1) throw new PuffinError('bad_request', 'More than one row returned by a subquery used as an expression - scalar subqueries can only return a single row.');
          const text = rows.length ? rows[0][0] : null;
          const value = step.kind === 'exists' ? typedLiteral(String(text ?? 'false'), 'BOOLEAN') : typedLiteral(text === null ? null : String(text), step.columns[0].type);
          inner.set(step.name, { kind: 'constant', sql: value });
          steps[index] = { ...step, plan: ran.plan, result: { rows: rows.length, bytes: 0, files: 0, stages: ran.outcome.stats.stages } };
        }
      };
      all.forEach((step, index) => {
        const deps = all.slice(0, index).filter((earlier) => step.sql.includes(earlier.name)).map((earlier) => finished.get(earlier.name)!);
        const done = Promise.all(deps).then(() => runStep(step, index));
        done.catch(() => undefined);
        finished.set(step.name, done);
      });
      // Every step settles before the query fails (its files are then deleted with the rest).
      const settled = await Promise.allSettled(finished.values());
      const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      const rest = await this.planUnder(plan.materialized.sql, inner, run, mode === 'table');
      const ran = await this.runPlan(rest, inner, run, mode);
      const scans = [...steps.flatMap((st) => st.plan?.scans ?? []), ...ran.plan.scans].filter((sc) => !sc.table.startsWith(MATERIALIZED_PREFIX));
      return {
        outcome: ran.outcome,
        plan: { ...ran.plan, sql: plan.sql, output: plan.output, scans, materialized: { steps, sql: plan.materialized.sql }, reason: `${plan.reason}; then: ${ran.plan.reason}` },
      };
    }
    let exec = plan;
    if (mode === 'table') exec = storingPlan(plan);
    // One value as text (a typed literal is made of it), at most two rows to tell "more than one".
    if (mode === 'scalar') exec = { ...plan, reduce: { ...plan.reduce, sql: `SELECT CAST(__v AS VARCHAR) AS __v FROM (${plan.reduce.sql}) AS __s(__v) LIMIT 2` } };
    if (mode === 'exists') exec = { ...plan, reduce: { ...plan.reduce, sql: `SELECT CAST(count(*) > 0 AS VARCHAR) AS __v FROM (${plan.reduce.sql}) AS __s` } };
    if (mode === 'table' && plan.shape === 'local') throw new PuffinError('internal', 'a subquery that reads no table is not materialized');
    const remaining = run.deadline - Date.now();
    if (remaining <= 0) throw new PuffinError('timeout', `query ${run.queryId} passed its deadline`);
    run.options.onPlan?.(exec);
    const { onFragment } = run.options;
    // Each step runs under an id of its own (its shuffle objects and scratch are its own).
    const id = mode === 'rows' && run.steps === 0 ? run.queryId : `${run.queryId}-s${++run.steps}`;
    const outcome = await this.coordinator.execute(exec, {
      queryId: id,
      timeoutMs: remaining,
      signal: run.options.signal,
      onFragment: onFragment ? (done) => onFragment({ fragmentId: done.fragmentId, bytesScanned: done.bytesScanned, ...(done.cache ? { cache: done.cache } : {}) }) : undefined,
    });
    if (outcome.stored) run.stored.push(...outcome.stored);
    const st = outcome.stats;
    run.totals = addStats(run.totals, { ...st, stages: st.stages.map((s) => (id === run.queryId ? s : { ...s, stage: `${id.slice(run.queryId.length + 1)}/${s.stage}` })) });
    return { plan: exec, outcome };
  }

  /**
   * A write to an Iceberg table. The coordinator's DuckDB runs the SELECT of an INSERT or
   * CTAS itself, over views of the files the planner keeps for it (local copies in its
   * sandbox), streaming rows into the writer's Parquet files; the commit is one
   * compare-and-swap of the table's metadata pointer (runtime/catalog/iceberg/commit.ts).
   */
  private async write(sql: string, statement: WriteStatement, options: QueryOptions): Promise<QueryOutcome> {
    // A table of an external catalog (CATALOG.namespace.table) commits through that catalog.
    const external = await warehouseCatalogOf(this.catalog)?.external?.writeTarget(statement.table);
    if (external && (statement.kind === 'create' || statement.kind === 'ctas') && !external.warehouseUri) {
      throw new PuffinError('bad_request', `catalog '${external.catalog}' has no location for new tables; register it with --location s3://... (or give its REST config a warehouse URI)`);
    }
    const pointers = external?.store ?? this.catalog.pointers;
    if (!pointers) throw new PuffinError('unsupported', 'writes need a catalog that keeps Iceberg tables (the warehouse catalog)');
    const readOnly = (await this.catalog.getTable(statement.table))?.kind;
    if (readOnly === 'delta' || readOnly === 'hudi') {
      throw new PuffinError(statement.kind === 'create' || statement.kind === 'ctas' ? 'conflict' : 'unsupported', `table ${statement.table} is a ${readOnly === 'delta' ? 'Delta Lake' : 'Hudi'} table, which is read only here (${statement.kind} refused; \`puffindb table drop\` forgets it)`);
    }
    const queryId = options.queryId ?? ulid();
    const started = performance.now();
    const staging = join(this.settings.home, 'coordinator', 'staging', queryId);
    mkdirSync(join(staging, 'in'), { recursive: true });
    // A DuckDB of this write's own, sandboxed to its staging directory: the files the write
    // reads are linked in there, so its SQL reaches them and nothing else (not the cache of
    // every table's copies, nor other writes' staging).
    const writeEngine = await Engine.create({ threads: this.settings.threads, memoryLimit: this.settings.memoryLimit, allowedDirectories: [staging] });
    const conn = await writeEngine.connect();
    const releases: (() => void)[] = [];
    let linked = 0;
    const localFile = async (uri: string): Promise<string> => {
      const got = await this.files.acquire([uri], options.signal);
      releases.push(got.release);
      const path = join(staging, 'in', `${linked++}.${uri.split('.').pop()?.replace(/[^a-z0-9]/gi, '') || 'dat'}`);
      linkSync(got.paths[0], path);
      return path;
    };
    const merged: { run?: MergeRun } = {};
    // A copy-on-write DELETE / UPDATE rewritten in the fragments: what ran (its stats are the statement's).
    const rewritten: { run?: { plan?: Plan; stats: Omit<QueryStats, 'planMs' | 'totalMs'> } } = {};
    try {
      const ctx: WritePlannerContext = {
        conn,
        store: pointers,
        io: uriTableIO(storeOptionsOf(this.settings)),
        stagingDir: staging,
        warehouseUri: external?.warehouseUri ?? this.settings.warehouse,
        localFile,
        resolveSelect: (select) => this.exposeTables(conn, select, localFile, options),
        rewriteFiles: async (request) => {
          const r = await this.rewriteInFragments(request, queryId, options);
          rewritten.run = { ...(r.plan ? { plan: r.plan } : {}), stats: addStats(rewritten.run?.stats ?? emptyStats(), r.stats) };
          return r.outcome;
        },
        // MERGE (copy-on-write) in the fragments; what ran is what the statement answers with.
        mergeFiles: async (request) => (merged.run = await this.mergeInFragments(request, queryId, options)).outcome,
      };
      const distributed = await this.writeInFragments(statement, ctx, queryId, options);
      const outcome = distributed?.outcome ?? (await executeWriteStatement(statement, ctx));
      const totalMs = performance.now() - started;
      return {
        queryId,
        columns: WRITE_COLUMNS.map((c) => ({ ...c })),
        rows: [[outcome.operation, outcome.table, String(outcome.rowsAffected), outcome.snapshotId]],
        plan: distributed?.plan ?? merged.run?.plan ?? rewritten.run?.plan ?? writePlan(sql, statement),
        stats: distributed ?? merged.run ?? rewritten.run
          ? { ...(distributed ?? merged.run ?? rewritten.run)!.stats, planMs: 0, totalMs }
          : { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: 0, executeMs: totalMs, reduceMs: 0, totalMs },
      };
    } finally {
      for (const release of releases) release();
      conn.closeSync();
      writeEngine.close();
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /**
   * INSERT ... SELECT and CREATE TABLE ... AS SELECT whose SELECT plans as a plain scan
   * (its answer is the union of the fragments' rows) are written where the fragments run:
   * each fragment writes its rows as data files of the table and returns their
   * descriptions; the coordinator commits them all in one append. A CTAS creates its table
   * first and removes it again if the write fails. Other writes return undefined and run on
   * the coordinator.
   */
  private async writeInFragments(statement: WriteStatement, ctx: WritePlannerContext, queryId: string, options: QueryOptions): Promise<{ outcome: WriteOutcome; plan: Plan; stats: Omit<QueryStats, 'planMs' | 'totalMs'> } | undefined> {
    if (statement.kind !== 'insert' && statement.kind !== 'ctas') return undefined;
    if (statement.kind === 'insert' && statement.columns) return undefined;
    const plan = await this.planner.plan(statement.select, { fragments: options.fragments, role: options.role }).catch(() => undefined);
    if (!plan?.unionOfFragments || plan.fragments.length === 0 || plan.stages?.length) return undefined;

    let created: string | undefined;
    if (statement.kind === 'ctas') {
      const existing = await ctx.store.get(statement.table);
      if (existing && statement.ifNotExists) {
        return { outcome: { operation: 'ctas', table: statement.table, rowsAffected: 0, snapshotId: null, metadataLocation: existing }, plan, stats: emptyStats() };
      }
      const definitions = plan.output.map((c) => `${sqlIdent(c.name)} ${c.type}`).join(', ');
      created = (await createTableFromDefinitions(ctx, statement.table, definitions, { ...(statement.partitionBy ? { partitionBy: statement.partitionBy } : {}), ...(statement.properties ? { properties: statement.properties } : {}) })).metadataLocation;
    }
    try {
      const base = await loadTable(ctx.store, statement.table, ctx.io);
      // Before any fragment writes a file. The fragments' files are committed by commitTable,
      // which assigns a v3 table's row lineage.
      assertWritableFormat(base.metadata, statement.table, { v3: true });
      const { files, plan: writing, stats } = await this.runWriteFragments(
        plan, statement.table, base.metadataLocation, queryId, options,
        `${statement.kind} on Iceberg table ${statement.table}: each fragment writes its rows as data files; one commit appends them all`,
      );
      const committed = await appendDataFiles(ctx, statement.table, files, base);
      return {
        outcome: { operation: statement.kind, table: statement.table, rowsAffected: committed.rowsAffected, snapshotId: committed.snapshotId, metadataLocation: committed.metadataLocation },
        plan: writing,
        stats,
      };
    } catch (err) {
      // A CTAS that did not complete leaves no empty table behind.
      if (created) await ctx.store.remove(statement.table, created).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Run `plan`'s fragments as write fragments of `table`; returns the files they wrote. A
   * fragment failing fails the write with the files the others wrote deleted (write-fragments.ts).
   */
  private async runWriteFragments(plan: Plan, table: string, metadataLocation: string, queryId: string, options: QueryOptions, reason: string, lineage = false): Promise<{ files: DataFileInfo[]; plan: Plan; stats: Omit<QueryStats, 'planMs' | 'totalMs'> }> {
    // `lineage`: the rows end in their v3 row lineage (a rewrite's), kept in the files.
    const write = { table, metadataLocation, ...(lineage ? { lineage: true } : {}) };
    const writing: Plan = {
      ...plan,
      shape: 'write',
      fragments: plan.fragments.map((f) => ({ ...f, output: WRITTEN_VIEW, write })),
      reduce: { views: [{ name: WRITTEN_VIEW, columns: [{ name: 'file', type: 'VARCHAR' }] }], sql: `SELECT file FROM ${WRITTEN_VIEW}` },
      unionOfFragments: false,
      reason,
    };
    // Each fragment run on its own: when one fails, the files the others wrote are deleted (write-fragments.ts).
    const ran = await executeWriteFragments(this.writeFragmentsHost(), writing, { queryId, timeoutMs: options.timeoutMs ?? this.settings.queryTimeoutMs, signal: options.signal });
    const files = ran.rows.map((row) => dataFileFromJson(JSON.parse(String(row[0])) as DataFileJson));
    return { files, plan: writing, stats: ran.stats };
  }

  /** What write fragments run with: the coordinator, its concurrency, and the table files' store. */
  private writeFragmentsHost(): WriteFragmentsHost {
    const io = uriTableIO(storeOptionsOf(this.settings));
    return { execute: (plan, o) => this.coordinator.execute(plan, o), concurrency: this.settings.concurrency, deleteFile: (path) => io.delete(path) };
  }

  /**
   * DELETE / UPDATE in the fragments (copy-on-write): rows matching the predicate are
   * counted by a distributed query at the table's current snapshot; the files that can hold
   * them (Iceberg scan planning with the predicate: partition summaries, partition values,
   * bounds) are rewritten by write fragments, and the writer commits one overwrite that
   * replaces exactly those files. Returns also what ran (the counting query's and the
   * rewrite's stats, the rewrite's plan): the statement's answer.
   */
  private async rewriteInFragments(request: RewriteRequest, queryId: string, options: QueryOptions): Promise<{ outcome: RewriteOutcome; plan?: Plan; stats: Omit<QueryStats, 'planMs' | 'totalMs'> }> {
    const { table, base, predicate } = request;
    const snapshotId = base.metadata.currentSnapshotId;
    if (snapshotId === undefined || snapshotId === null) return { outcome: { added: [], removed: [], matched: 0 }, stats: emptyStats() };
    const counted = await this.query(`SELECT count(*) FROM ${qualifiedIdent(table)} AT (VERSION => ${String(snapshotId)}) WHERE ${predicate}`, { timeoutMs: options.timeoutMs, signal: options.signal, role: options.role });
    // The statement's stats: the counting query's and the rewrite's.
    const { planMs: _planMs, totalMs: _totalMs, ...countStats } = counted.stats;
    const matched = Number(counted.rows[0]?.[0] ?? 0);
    if (matched === 0) return { outcome: { added: [], removed: [], matched: 0 }, stats: countStats };

    const io = uriTableIO(storeOptionsOf(this.settings));
    // The predicate is bound over `FROM (...) __t` (writer.ts): no table name qualifies a
    // column there, so `t.a` is a struct field of a column t, never column a.
    const filter = await scanPredicateFromSql(this.engine, predicate, []);
    const scan = await planTableScan({ metadataLocation: base.metadataLocation, tableUri: base.metadata.location, metadata: base.metadata, io }, filter ? { filter } : {});
    // Files with delete files are read with them applied (rows already deleted stay deleted)
    // and replaced like any other: the delete files then apply to nothing live.
    const snapshot = toTableSnapshot(table, scan);
    // v3: the rows carry their lineage (two trailing columns the view computes, the writer
    // stores), so rewritten rows keep their _row_id (catalog/iceberg/lineage.ts).
    const lineage = keepsLineage(base.metadata);
    const columns = lineage ? [...snapshot.columns, ...LINEAGE_COLUMNS.map((name) => ({ name, type: 'BIGINT' }))] : snapshot.columns;
    const input: FragmentInput = { view: REWRITE_VIEW, table, columns, files: [], ...(snapshot.iceberg ? { iceberg: snapshot.iceberg } : {}) };
    const refs: FileRef[] = snapshot.files.map((f) => ({ uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount, ...(f.iceberg ? { iceberg: f.iceberg } : {}) }));
    const sql = request.rewriteSql(`SELECT * FROM ${REWRITE_VIEW}`);
    const plan: Plan = {
      shape: 'write', sql, output: [], join: null, scans: [],
      fragments: assignFiles(refs, options.fragments ?? this.settings.maxFragments).map((files, i) => ({ id: `f${i}`, output: WRITTEN_VIEW, inputs: [{ ...input, files }], sql })),
      reduce: { views: [], sql: '' },
      reason: '',
    };
    const written = await this.runWriteFragments(plan, table, base.metadataLocation, queryId, options, `copy-on-write rewrite of ${scan.dataFiles.length} data file(s) of Iceberg table ${table} in the fragments (${matched} matching row(s) counted first); one commit replaces them`, lineage);
    return { outcome: { added: written.files, removed: scan.dataFiles.map((f) => f.path), matched }, plan: written.plan, stats: addStats(countStats, written.stats) };
  }

  /** MERGE INTO (copy-on-write) in the fragments: runtime/exec/merge-fragments.ts. */
  private async mergeInFragments(request: MergeFragmentsRequest, queryId: string, options: QueryOptions): Promise<MergeRun> {
    return mergeInFragments({ settings: this.settings, execute: (plan, o) => this.coordinator.execute(plan, o), discard: (files) => this.coordinator.discard(files) }, request, queryId, options);
  }

  /**
   * Make the tables a SELECT reads available on `conn`: the planner resolves and prunes
   * them, and each becomes a temporary view over local copies of the files its plan
   * keeps. Returns the SELECT as the planner re-printed it over those views.
   */
  private async exposeTables(conn: DuckDBConnection, selectSql: string, localFile: (uri: string) => Promise<string>, options: QueryOptions): Promise<string> {
    const plan = await this.planner.plan(selectSql, { fragments: 1, role: options.role });
    const inputs: FragmentInput[] = [];
    // Every table a task of the plan reads: the leaf fragments' and the later stages' broadcast ones.
    for (const taskInputs of [...plan.fragments.map((f) => f.inputs), ...(plan.stages ?? []).map((s) => s.tables)]) {
      for (const input of taskInputs) addInput(inputs, input);
    }
    for (const input of inputs) {
      const uris = input.files.flatMap((f: FileRef) => [f.uri, ...(f.iceberg?.deletes ?? []).filter((d) => d.inlineBlob === undefined).map((d) => d.uri)]);
      const local = new Map<string, string>();
      for (const uri of new Set(uris)) local.set(uri, await localFile(uri));
      // Iceberg files without field ids are read by name mapping: the view needs their footers.
      const footers = input.iceberg
        ? await describeParquetFiles(conn, input.files.filter((f) => f.iceberg?.format === 'parquet').map((f) => ({ uri: f.uri, localPath: local.get(f.uri)! })))
        : new Map();
      await conn.run(inputViewSql(input, (uri) => local.get(uri)!, (uri) => footers.get(uri)));
    }
    return plan.sql;
  }

  async listTables(): Promise<TableSummary[]> {
    const names = await this.catalog.listTables();
    const out: TableSummary[] = [];
    for (const name of names) {
      const t = await this.catalog.getTable(name);
      if (t) out.push(tableSummary(t));
    }
    return out;
  }

  /** 'ok' while fragments and reduce steps can run, else why not (no worker or SQL runner process can start, ...). */
  workersHealth(): 'ok' | string {
    const reasons = [this.invoker.health?.() ?? 'ok', ...this.runners.map((r) => r.health())].filter((h) => h !== 'ok');
    return reasons.length > 0 ? reasons.join('; ') : 'ok';
  }

  async close(): Promise<void> {
    this.statements?.close();
    await this.remoteTables?.close();
    await this.invoker.close();
    await Promise.all(this.runners.map((r) => r.close()));
    this.engine.close();
  }
}

/** The statement kinds (from the classifier) each write the write path recognizes may be. */
const WRITE_KINDS: Record<WriteStatement['kind'], readonly StatementKind[]> = {
  create: ['create_table'],
  ctas: ['create_table'],
  insert: ['insert'],
  delete: ['delete'],
  update: ['update'],
  alter: ['alter'],
  drop: ['drop'],
  truncate: ['truncate'],
  merge: ['merge'],
};

/**
 * A signal that aborts at `deadline` (with a timeout PuffinError) or when `outer` does:
 * planning has the SQL runner compute constants, and the deadline must stop them too.
 */
function deadlineSignal(deadline: number, queryId: string, outer?: AbortSignal): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new PuffinError('timeout', `query ${queryId} passed its deadline while planning`)), Math.max(0, deadline - Date.now()));
  const onOuter = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

/** What a write statement answers: one row saying what it did. */
const WRITE_COLUMNS: readonly Column[] = [
  { name: 'operation', type: 'VARCHAR' }, { name: 'table', type: 'VARCHAR' },
  { name: 'rows_affected', type: 'BIGINT' }, { name: 'snapshot_id', type: 'VARCHAR' },
];

/** The partial set of a write plan: one row per data file written, described as JSON. */
const WRITTEN_VIEW = '__written';
/** The view a rewrite fragment reads its share of the table's files through. */
const REWRITE_VIEW = '__target';

/** A possibly namespaced table name as SQL: each dotted part quoted. */
function qualifiedIdent(name: string): string {
  return name.split('.').map(sqlIdent).join('.');
}

/** One query's run through its steps (runPlan): ids, what to delete after, the stats so far. */
interface StepsRun {
  queryId: string;
  deadline: number;
  options: QueryOptions;
  /** Steps run so far (each execution after the first gets the id <queryId>-s<n>). */
  steps: number;
  /** Files of materialized results, deleted when the query is over. */
  stored: FileRef[];
  totals: Omit<QueryStats, 'planMs' | 'totalMs'>;
}

/**
 * What explain() answers for a SELECT that calls curl(): the data is fetched (once, on the
 * coordinator) when the query runs and planned then, as a step's result is.
 */
function curlDeferredPlan(sql: string, urls: string[]): Plan {
  return {
    shape: 'staged',
    sql,
    output: [],
    fragments: [],
    reduce: { views: [], sql: '' },
    scans: [],
    join: null,
    reason: `curl(): ${urls.map((u) => { try { const p = new URL(u); return `${p.origin}${p.pathname}`; } catch { return u; } }).join(', ')} fetched on the coordinator when the query runs (only under PUFFINDB_CURL_ALLOW), stored as Parquet under the shuffle prefix and read as a table; the rest of the query is planned after the fetch`,
  };
}

/** The plan of a write statement: no fragments; the coordinator writes and commits. */
function writePlan(sql: string, statement: WriteStatement): Plan {
  return {
    shape: 'write',
    sql,
    output: WRITE_COLUMNS.map((c) => ({ ...c })),
    fragments: [],
    reduce: { views: [], sql: '' },
    scans: [],
    join: null,
    reason: statement.kind === 'merge'
      ? `merge on Iceberg table ${statement.table}: copy-on-write runs in the fragments (they match the broadcast source against the data files, then rewrite the files holding matched rows by DuckDB's MERGE; the coordinator inserts the unmatched source rows); a merge-on-read table (write.merge.mode) is merged by the coordinator, which writes position deletes or deletion vectors; one commit by a compare-and-swap of the table's metadata pointer`
      : `${statement.kind} on Iceberg table ${statement.table}: data files written by the coordinator, committed by a compare-and-swap of the table's metadata pointer`,
  };
}


async function createInvoker(settings: Settings, kind: InvokerKind | undefined, lazy: boolean): Promise<Invoker> {
  const chosen = kind ?? (settings.workerFunction ? 'lambda' : 'pool');
  switch (chosen) {
    case 'in-process':
      return InProcessInvoker.create(settings);
    case 'lambda': {
      if (!settings.workerFunction) throw new PuffinError('bad_request', 'PUFFINDB_WORKER_FUNCTION must name the worker Lambda to run fragments on Lambda');
      // The AWS SDK's Lambda client loads only where fragments run on Lambda.
      const { LambdaInvoker } = await import('./lambda-invoker.ts');
      return new LambdaInvoker({ functionName: settings.workerFunction, region: settings.region, endpoint: settings.lambdaEndpoint, invokeTimeoutMs: settings.invokeTimeoutMs });
    }
    case 'pool':
      // The machine's threads are shared among the worker processes, not multiplied.
      // A cancelled fragment that DuckDB does not stop within half a second (a long scalar
      // call) is ended by killing its process: the deadline must free the core.
      return new ProcessPoolInvoker({ settings: { ...settings, threads: Math.max(1, Math.floor(settings.threads / settings.workers)) }, size: settings.workers, cancelGraceMs: 500, lazy });
  }
}
