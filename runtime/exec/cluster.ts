// The local cluster: planner, catalog and coordinator in this process, fragments on a pool
// of worker processes (or on Lambda when a worker function is configured, or in-process
// for tests). It is the QueryService that `puffindb query`, `puffindb serve` and
// `npm start` talk to.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ulid } from 'ulid';
import type { Catalog, TableSnapshot, TableSummary } from '../catalog/types.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { Plan } from '../planner/plan.ts';
import { Planner } from '../planner/planner.ts';
import type { Settings } from '../settings.ts';
import { Coordinator } from './coordinator.ts';
import { InProcessInvoker } from './in-process-invoker.ts';
import type { FragmentRequest, FragmentResult, Invoker } from './invoker.ts';
import { LambdaInvoker } from './lambda-invoker.ts';
import { ProcessPoolInvoker } from './process-pool-invoker.ts';
import type { FragmentDone, QueryOptions, QueryOutcome, QueryService } from './query-service.ts';
import { storeOptionsOf } from './worker.ts';

export type InvokerKind = 'pool' | 'in-process' | 'lambda';

export interface ClusterOptions {
  settings: Settings;
  catalog: Catalog;
  /** Where fragments run; default: Lambda when settings.workerFunction is set, else the process pool. */
  invoker?: InvokerKind | Invoker;
}

export class LocalCluster implements QueryService {
  private constructor(
    readonly settings: Settings,
    readonly catalog: Catalog,
    private readonly engine: Engine,
    private readonly planner: Planner,
    private readonly coordinator: Coordinator,
    private readonly invoker: ProgressInvoker,
  ) {}

  static async open(options: ClusterOptions): Promise<LocalCluster> {
    const { settings, catalog } = options;
    const scratch = join(settings.home, 'coordinator');
    mkdirSync(scratch, { recursive: true });
    // The coordinator's DuckDB plans, prunes and reduces; it reads only its scratch directory.
    const engine = await Engine.create({ threads: settings.threads, memoryLimit: settings.memoryLimit, allowedDirectories: [scratch] });
    const invoker = new ProgressInvoker(typeof options.invoker === 'object' ? options.invoker : await createInvoker(settings, options.invoker));
    const planner = new Planner({ engine, catalog, maxFragments: settings.maxFragments, broadcastLimitBytes: settings.broadcastLimitBytes });
    const coordinator = new Coordinator({
      invoker,
      engine,
      scratchDir: join(scratch, 'partials'),
      concurrency: settings.concurrency,
      retries: settings.retries,
      queryTimeoutMs: settings.queryTimeoutMs,
      inlineLimitBytes: settings.inlineLimitBytes,
      storeOptions: storeOptionsOf(settings),
      shuffleUrl: settings.shuffleUrl,
    });
    return new LocalCluster(settings, catalog, engine, planner, coordinator, invoker);
  }

  async explain(sql: string, options: QueryOptions = {}): Promise<Plan> {
    return this.planner.plan(sql, { fragments: options.fragments });
  }

  async query(sql: string, options: QueryOptions = {}): Promise<QueryOutcome> {
    const queryId = options.queryId ?? ulid();
    const started = performance.now();
    const deadline = Date.now() + (options.timeoutMs ?? this.settings.queryTimeoutMs);
    const plan = await this.planner.plan(sql, { fragments: options.fragments });
    const planMs = performance.now() - started;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new PuffinError('timeout', `query ${queryId} passed its deadline while planning`);
    options.onPlan?.(plan);
    const stopWatching = options.onFragment ? this.invoker.watch(queryId, options.onFragment) : undefined;
    let outcome;
    try {
      outcome = await this.coordinator.execute(plan, { queryId, timeoutMs: remaining, signal: options.signal });
    } finally {
      stopWatching?.();
    }
    return {
      queryId,
      columns: outcome.columns,
      rows: outcome.rows,
      plan,
      stats: {
        fragments: outcome.stats.fragments,
        retries: outcome.stats.retries,
        bytesScanned: outcome.stats.bytesScanned,
        bytesShuffled: outcome.stats.bytesShuffled,
        planMs,
        executeMs: outcome.stats.executeMs,
        reduceMs: outcome.stats.reduceMs,
        totalMs: performance.now() - started,
      },
    };
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

  async close(): Promise<void> {
    await this.invoker.close();
    this.engine.close();
  }
}

/** What a listing shows of a table: its shape and size, not its files. */
export function tableSummary(t: TableSnapshot): TableSummary {
  return {
    name: t.name,
    kind: t.kind,
    columns: t.columns,
    fileCount: t.files.length,
    rowCount: t.files.reduce((s, f) => s + f.rowCount, 0),
    sizeBytes: t.files.reduce((s, f) => s + f.sizeBytes, 0),
    snapshotId: t.snapshotId,
  };
}

/**
 * Passes invocations through and tells a query's watcher about each fragment that finished,
 * so the query's progress can be reported while it runs.
 */
class ProgressInvoker implements Invoker {
  private readonly watchers = new Map<string, (done: FragmentDone) => void>();

  constructor(private readonly inner: Invoker) {}

  /** Report `queryId`'s finished fragments to `onFragment`; returns the function that stops it. */
  watch(queryId: string, onFragment: (done: FragmentDone) => void): () => void {
    this.watchers.set(queryId, onFragment);
    return () => this.watchers.delete(queryId);
  }

  async invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    const result = await this.inner.invoke(request, signal);
    const watcher = this.watchers.get(request.queryId);
    if (watcher && !signal?.aborted) {
      try {
        watcher({ fragmentId: result.fragmentId, bytesScanned: result.bytesScanned });
      } catch {
        // Progress is reporting only; a failing watcher must not fail the fragment.
      }
    }
    return result;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

async function createInvoker(settings: Settings, kind?: InvokerKind): Promise<Invoker> {
  const chosen = kind ?? (settings.workerFunction ? 'lambda' : 'pool');
  switch (chosen) {
    case 'in-process':
      return InProcessInvoker.create(settings);
    case 'lambda':
      if (!settings.workerFunction) throw new PuffinError('bad_request', 'PUFFINDB_WORKER_FUNCTION must name the worker Lambda to run fragments on Lambda');
      return new LambdaInvoker({ functionName: settings.workerFunction, region: settings.region, endpoint: settings.lambdaEndpoint, invokeTimeoutMs: settings.invokeTimeoutMs });
    case 'pool':
      // The machine's threads are shared among the worker processes, not multiplied.
      return new ProcessPoolInvoker({ settings: { ...settings, threads: Math.max(1, Math.floor(settings.threads / settings.workers)) }, size: settings.workers });
  }
}
