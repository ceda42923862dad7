// Everything a process needs to take queries, assembled from settings: the state store,
// the catalog with `puffindb.query_log`, the local cluster, the query manager, the result
// keeper and the query log flusher. `puffindb serve`, the admin Lambda and the coordinator
// Lambda each open one; only the wiring differs (the admin Lambda dispatches queries to
// the coordinator Lambda when PUFFINDB_COORDINATOR_FUNCTION is set). Over a warehouse
// catalog it also assembles what the Iceberg REST catalog needs, so the API can serve it.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IcebergRestOptions } from '../api/iceberg-rest/app.ts';
import { FilePointerStore } from '../catalog/iceberg/file-pointer-store.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import { locationPolicyOf } from '../storage/locations.ts';
import type { Catalog } from '../catalog/types.ts';
import { WarehouseCatalog } from '../catalog/warehouse-catalog.ts';
import { Engine } from '../engine/engine.ts';
import type { Settings } from '../settings.ts';
import { openStateStore } from '../state/open.ts';
import type { StateStore } from '../state/state-store.ts';
import { openStore } from '../storage/open.ts';
import { LocalCluster, type InvokerKind } from './cluster.ts';
import { LambdaQueryDispatcher } from './coordinator-dispatcher.ts';
import type { Invoker } from './invoker.ts';
import { QueryLogFlusher, withQueryLogTable } from './query-log.ts';
import { materializedViewStatus } from './materialized-views.ts';
import { withPipelineTables } from './pipeline-log.ts';
import { Pipelines } from './pipelines.ts';
import { QueryManager, type QueryDispatcher } from './query-manager.ts';
import { ResultKeeper } from './query-results.ts';
import { storeOptionsOf } from './worker.ts';
import { resultSignerOf } from '../storage/cloudfront-signer.ts';

export interface ControlPlaneOptions {
  settings: Settings;
  /** The tables; `puffindb.query_log` is added to them. */
  catalog: Catalog;
  /** Default: openStateStore(settings) (Redis when REDIS_URL is set), closed by close(). */
  state?: StateStore;
  /** Where fragments run (see LocalCluster). */
  invoker?: InvokerKind | Invoker;
  /**
   * Run queries on the coordinator Lambda: true uses PUFFINDB_COORDINATOR_FUNCTION when it is
   * set; a dispatcher object is used as given. Default false (run in this process).
   */
  dispatch?: boolean | QueryDispatcher;
  /** Told about failures nobody else hears of (background runs, log appends, flushes). */
  onError?: (err: unknown, context: string) => void;
  /** The clock scheduled refreshes are due by (tests move it). Default Date.now. */
  now?: () => number;
}

export interface ControlPlane {
  settings: Settings;
  state: StateStore;
  /** The tables with `puffindb.query_log`. */
  catalog: Catalog;
  cluster: LocalCluster;
  manager: QueryManager;
  flusher: QueryLogFlusher;
  /** Scheduled refreshes of materialized views (runDue() is "run what is due"). */
  pipelines: Pipelines;
  /**
   * The Iceberg REST catalog's stores when the catalog is a WarehouseCatalog (its table
   * pointers, so REST and SQL see the same tables); absent over other catalogs.
   */
  iceberg?: IcebergRestOptions;
  /** Flush the query log on the settings' interval until close(). */
  startLogFlushes(): void;
  /** Run due refreshes every minute until close(). */
  startPipelines(): void;
  /** Stop taking queries, flush the log, release everything. */
  close(): Promise<void>;
}

export async function openControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { settings } = options;
  const onError = options.onError ?? ((err, context) => console.error(JSON.stringify({ level: 'error', message: context, error: String(err) })));
  const scratch = join(settings.home, 'control');
  mkdirSync(scratch, { recursive: true });
  const ownsState = !options.state;
  const state = options.state ?? (await openStateStore(settings));
  // Parses statements and writes result and log Parquet files; it may touch only its scratch directory.
  const engine = await Engine.create({ threads: 1, allowedDirectories: [scratch] });
  const storeOptions = storeOptionsOf(settings);
  const warehouse = openStore(settings.warehouse, storeOptions);
  const io = uriTableIO(storeOptions);
  // puffindb.query_log, puffindb.refreshes and puffindb.materialized_views beside the tables.
  const catalog = withPipelineTables(withQueryLogTable(options.catalog, warehouse), warehouse, () => materializedViewStatus(options.catalog, io));
  // A server starts its worker and runner processes with itself: no query waits for them.
  const cluster = await LocalCluster.open({ settings, catalog, invoker: options.invoker, state, startProcesses: 'now' });
  const results = new ResultKeeper({ state, results: openStore(settings.resultsUrl, storeOptions), engine, scratchDir: join(scratch, 'results'), ttlMs: settings.resultTtlMs, cdn: resultSignerOf(settings) });

  let dispatcher: QueryDispatcher | undefined;
  if (typeof options.dispatch === 'object') dispatcher = options.dispatch;
  else if (options.dispatch && settings.coordinatorFunction) {
    dispatcher = new LambdaQueryDispatcher({
      functionName: settings.coordinatorFunction,
      region: settings.region,
      endpoint: settings.lambdaEndpoint,
      timeoutMs: settings.queryTimeoutMs + 30_000,
    });
  }
  const manager = new QueryManager({
    state,
    catalog,
    engine,
    results,
    executor: cluster,
    dispatcher,
    queryTimeoutMs: settings.queryTimeoutMs,
    resultInlineLimitBytes: settings.resultInlineLimitBytes,
    onError,
  });
  const pipelines = new Pipelines({ state, views: cluster.materializedViews(), now: options.now, timeoutMs: settings.queryTimeoutMs, onError });
  const flusher = new QueryLogFlusher({ state, warehouse, engine, scratchDir: join(scratch, 'logs'), onError: (err) => onError(err, 'query log flush') });

  return {
    settings,
    state,
    catalog,
    cluster,
    manager,
    flusher,
    pipelines,
    iceberg: options.catalog instanceof WarehouseCatalog ? icebergRestOptions(settings, options.catalog) : undefined,
    startLogFlushes: () => flusher.start(settings.logFlushIntervalMs),
    startPipelines: () => pipelines.start(),
    async close() {
      await pipelines.stop();
      await manager.close();
      await flusher.stop().catch((err: unknown) => onError(err, 'query log flush at shutdown'));
      if (dispatcher instanceof LambdaQueryDispatcher) dispatcher.close();
      await cluster.close();
      engine.close();
      if (ownsState) await state.close();
    },
  };
}

/**
 * Tables are the warehouse catalog's own pointers. Namespaces are kept beside them, in
 * files under <home>/catalog/iceberg-namespaces: the table pointers are files too, so a
 * namespace lives exactly where its tables do (a shared Redis for namespaces alone would
 * show one process's namespaces to another that cannot see their tables).
 */
function icebergRestOptions(settings: Settings, catalog: WarehouseCatalog): IcebergRestOptions {
  return {
    pointerStore: catalog.pointers,
    namespaceStore: new FilePointerStore(join(settings.home, 'catalog', 'iceberg-namespaces')),
    io: uriTableIO(storeOptionsOf(settings)),
    warehouseUrl: settings.warehouse,
    locations: locationPolicyOf(settings),
  };
}
