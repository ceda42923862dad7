// A local warehouse as the command line (and the Node library's open()) sees it: the
// catalog under PUFFINDB_HOME, the data directory, and a cluster opened only when a command
// needs to run SQL. Queries run through query() are written to the query log
// (runtime/exec/local-query-log.ts), flushed to the lake when the warehouse closes.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openCatalog } from '../catalog/open.ts';
import type { WarehouseCatalog } from '../catalog/warehouse-catalog.ts';
import type { TableSummary } from '../catalog/types.ts';
import { generateTpch } from '../demo/tpch.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { fileUriToPath } from '../storage/locations.ts';
import { ulid } from 'ulid';
import { LocalCluster, type InvokerKind } from '../exec/cluster.ts';
import { LocalQueryLog } from '../exec/local-query-log.ts';
import { withQueryLogTable } from '../exec/query-log.ts';
import { withPipelineTables } from '../exec/pipeline-log.ts';
import { materializedViewStatus } from '../exec/materialized-views.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import type { QueryOptions, QueryOutcome, Statement } from '../exec/query-service.ts';
import { storeOptionsOf } from '../exec/worker.ts';
import { openStore } from '../storage/open.ts';
import type { Plan } from '../planner/plan.ts';
import { Planner } from '../planner/planner.ts';
import type { Settings } from '../settings.ts';

export interface DemoTable {
  table: string;
  files: string[];
  rows: number;
}

export interface WarehouseOptions {
  /** Where fragments run (default: the process pool, or Lambda when a worker function is set). */
  invoker?: InvokerKind;
  /** Who the query log names for query(). Default 'local'. */
  user?: string;
  /** Where the cluster's SQL runner slots run (ClusterOptions.runners). */
  runners?: 'process' | 'in-process';
}

export interface Warehouse {
  settings: Settings;
  catalog: WarehouseCatalog;
  /** The local cluster (worker processes start on first use); its catalog has `puffindb.query_log`. */
  cluster(): Promise<LocalCluster>;
  /** Run a statement on the cluster (role 'admin' unless given) and write it to the query log. */
  query(statement: Statement, options?: QueryOptions): Promise<QueryOutcome>;
  /** Plan without starting workers, for `explain`. */
  planOnly(sql: string, fragments?: number): Promise<Plan>;
  summaries(): Promise<TableSummary[]>;
  writeDemo(scale: number): Promise<DemoTable[]>;
  close(): Promise<void>;
}

/** The local directory of a file:// warehouse. */
export function localWarehouseDir(settings: Settings): string {
  if (!settings.warehouse.startsWith('file://')) {
    throw new PuffinError('unsupported', `this command needs a local warehouse; PUFFINDB_WAREHOUSE is ${settings.warehouse}`);
  }
  return fileUriToPath(settings.warehouse);
}

export async function openWarehouse(settings: Settings, options: WarehouseOptions = {}): Promise<Warehouse> {
  mkdirSync(settings.home, { recursive: true });
  // The catalog reads Parquet footers of files an operator registers: a trusted, unsandboxed engine.
  const engine = await Engine.create({ threads: Math.min(settings.threads, 4), memoryLimit: settings.memoryLimit });
  // Parquet tables and Iceberg tables (pointers under <home>/catalog/iceberg) in one catalog.
  const catalog = await openCatalog(settings, engine);
  let cluster: LocalCluster | undefined;
  let planEngine: Engine | undefined;
  const log = new LocalQueryLog({ settings, engine });
  const user = options.user ?? 'local';
  // Queries see `puffindb.query_log` too, as a server's do.
  const warehouseStore = openStore(settings.warehouse, storeOptionsOf(settings));
  // ... and puffindb.refreshes and puffindb.materialized_views (runtime/exec/pipeline-log.ts).
  const queryCatalog = withPipelineTables(withQueryLogTable(catalog, warehouseStore), warehouseStore, () => materializedViewStatus(catalog, uriTableIO(storeOptionsOf(settings))));
  const openCluster = async (): Promise<LocalCluster> => {
    cluster ??= await LocalCluster.open({ settings, catalog: queryCatalog, invoker: options.invoker, runners: options.runners });
    return cluster;
  };

  return {
    settings,
    catalog,
    cluster: openCluster,
    async query(statement, queryOptions = {}) {
      const queryId = queryOptions.queryId ?? ulid();
      const sql = typeof statement === 'string' ? statement : statement.sql;
      const submittedAt = Date.now();
      try {
        const outcome = await (await openCluster()).query(statement, { role: 'admin', ...queryOptions, queryId });
        await log.record({ queryId, user, sql, submittedAt, outcome });
        return outcome;
      } catch (error) {
        await log.record({ queryId, user, sql, submittedAt, error, cancelled: queryOptions.signal?.aborted });
        throw error;
      }
    },
    async planOnly(sql, fragments) {
      if (cluster) return cluster.explain(sql, { fragments, role: 'admin' });
      const scratch = join(settings.home, 'coordinator');
      mkdirSync(scratch, { recursive: true });
      planEngine ??= await Engine.create({ threads: 1, allowedDirectories: [scratch] });
      // The same planning settings as the cluster's planner: explain shows the plan that runs.
      const planner = new Planner({
        engine: planEngine, catalog: queryCatalog, maxFragments: settings.maxFragments, broadcastLimitBytes: settings.broadcastLimitBytes,
        shufflePartitions: settings.shufflePartitions, partitionedAggregateGroups: settings.partitionedAggregateGroups, coSplit: settings.coSplit, subqueryStageBytes: settings.subqueryStageBytes,
      });
      return planner.plan(sql, { fragments, role: 'admin', materialize: true });
    },
    async summaries() {
      return catalog.summaries();
    },
    async writeDemo(scale) {
      const dir = join(localWarehouseDir(settings), 'demo', 'tpch');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const tables = await generateTpch(engine, dir, { scale });
      for (const t of tables) await catalog.addTable(t.table, join(dir, t.table));
      return tables;
    },
    async close() {
      await log.close().catch((err: unknown) => process.stderr.write(`the query log could not be flushed: ${String(err)}\n`));
      await cluster?.close();
      await catalog.close();
      planEngine?.close();
      engine.close();
    },
  };
}
