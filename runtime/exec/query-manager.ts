// The query lifecycle over a QueryService and the state store: a query is recorded as
// queued, runs (status running, progress as fragments finish), and ends succeeded,
// failed or cancelled, whatever happens: every path out of a run writes a terminal
// status, and a record whose runner vanished is failed once its deadline has passed.
// Results are kept for retrieval (small ones in the state store, large ones as Parquet
// under the results prefix), repeat queries over unchanged tables are answered from the
// result cache without invoking a worker, and every finished query is appended to the
// query log stream.
//
// A query runs where the manager has an executor (this process), or, with a dispatcher,
// on a coordinator Lambda that calls runQueued() with the same state store. Cancellation
// works across processes: cancel() marks the record, and a runner watches its record.

import { ulid } from 'ulid';
import { bodyBytes, encodeResult, type ResultFormat } from '../results/formats.ts';
import type { Catalog } from '../catalog/types.ts';
import type { Engine } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { Plan } from '../planner/plan.ts';
import { classifyStatement, type ClassifiedStatement } from '../sql/classify.ts';
import { formatAst, parseToAst } from '../sql/ast-api.ts';
import type { AstNode } from '../sql/parse.ts';
import { TERMINAL_STATUSES, type QueryLogEntry, type QueryRecord, type QuerySourceText, type QueryStatus, type StateStore } from '../state/state-store.ts';
import type { CallerRole, QueryService, QueryStats, Statement } from './query-service.ts';
import type { KeptResult, ResultKeeper, ResultReader } from './query-results.ts';
import { isCacheable, resultCacheKey, snapshotsOf } from './result-cache.ts';

export interface RunOptions {
  /** The caller's role (default 'reader'); only 'admin' reads admin-only tables. Travels with a dispatched query. */
  role?: CallerRole;
  /** Response format the result is sized for (and cached under). Default 'json'. */
  format?: ResultFormat;
  /** Upper bound on fragments per split table. */
  fragments?: number;
}

export interface SubmitOptions extends RunOptions {
  /** Who submits: an API key id, or 'local'. */
  user: string;
  /** Deadline of this query in ms from submission (default: the manager's). */
  timeoutMs?: number;
  /** Synchronous queries only: aborting (the client went away) cancels the query. */
  signal?: AbortSignal;
  /** What the client sent when it was not DuckDB SQL (PRQL, another dialect): recorded beside the SQL that runs. */
  source?: QuerySourceText;
}

/** What a finished query answers with. */
export interface FinishedQuery {
  record: QueryRecord;
  result: KeptResult;
  /** Execution statistics; absent on a cache hit or when the query ran elsewhere. */
  stats?: QueryStats;
}

/** Runs queued queries somewhere else (a coordinator Lambda). */
export interface QueryDispatcher {
  /** Start `queryId`; with `wait`, resolve once it has reached a terminal status. */
  dispatch(request: DispatchRequest, wait: boolean): Promise<void>;
}

export interface DispatchRequest extends RunOptions {
  queryId: string;
}

export interface QueryManagerOptions {
  state: StateStore;
  /** Plans and resolves snapshot ids for cache keys. */
  catalog: Catalog;
  /** Parses statements (classification, cacheability); a sandboxed engine is fine. */
  engine: Engine;
  results: ResultKeeper;
  /** Plans (explain, cache keys) and runs queries in this process. */
  executor: QueryService;
  /** Runs queries elsewhere (a coordinator Lambda) instead of in this process. */
  dispatcher?: QueryDispatcher;
  /** Default deadline of a query. */
  queryTimeoutMs: number;
  /** Results whose encoded body is over this size are written as Parquet. */
  resultInlineLimitBytes: number;
  /** How often a runner checks its record for a cancellation made elsewhere. Default 250 ms. */
  cancelPollMs?: number;
  /** How long past its deadline an unfinished record is declared failed. Default 10 s. */
  staleGraceMs?: number;
  /** Told about failures that have no caller to throw to (log appends, background runs). */
  onError?: (err: unknown, context: string) => void;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export class QueryManager {
  private readonly running = new Map<string, AbortController>();
  private readonly background = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly options: QueryManagerOptions) {}

  /** The distributed plan of a statement, without running it. */
  explain(statement: Statement, options: RunOptions = {}): Promise<Plan> {
    return this.options.executor.explain(statement, { fragments: options.fragments, role: options.role });
  }

  /**
   * What the statement is (runtime/sql/classify.ts): the one classification that decides
   * authorization, caching and execution. Callers pass the result on to run()/submit().
   */
  classify(sql: string): Promise<ClassifiedStatement> {
    return classifyStatement(this.options.engine, sql);
  }

  /** DuckDB's AST of one SELECT statement (POST /v1/parse); nothing runs. */
  parse(sql: string): Promise<AstNode> {
    return parseToAst(this.options.engine, sql);
  }

  /** SQL printed back from a statement's AST, laid out on several lines when `pretty` (POST /v1/format); nothing runs. */
  format(ast: unknown, pretty?: boolean): Promise<string> {
    return formatAst(this.options.engine, ast, pretty);
  }

  /** Record a query as queued without starting it (runQueued() runs it). */
  enqueue(statement: Statement, options: SubmitOptions): Promise<QueryRecord> {
    return this.create(statement, options);
  }

  /** Record a query and start it; it runs in the background (or on a coordinator). */
  async submit(statement: Statement, options: SubmitOptions): Promise<QueryRecord> {
    const classified = await this.classified(statement);
    const record = await this.create(classified, options);
    const request: DispatchRequest = { queryId: record.id, format: options.format, fragments: options.fragments, role: options.role };
    if (this.options.dispatcher) {
      await this.dispatch(this.options.dispatcher, request, false);
    } else {
      this.track(this.runRecorded(record.id, request, classified));
    }
    return record;
  }

  /** Run a query to the end and answer with its result; a failure rejects with its error. */
  async run(statement: Statement, options: SubmitOptions): Promise<FinishedQuery> {
    const classified = await this.classified(statement);
    const record = await this.create(classified, options);
    const request: DispatchRequest = { queryId: record.id, format: options.format, fragments: options.fragments, role: options.role };
    const onAbort = () => void this.cancel(record.id, 'the client went away').catch(() => undefined);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (this.options.dispatcher) {
        await this.dispatch(this.options.dispatcher, request, true);
        const done = await this.get(record.id);
        if (!done) throw new PuffinError('internal', `query ${record.id} vanished from the state store`);
        // The synchronous caller hears the query's own error, as when it runs here.
        if (done.status === 'failed' && done.error) throw PuffinError.fromJSON({ error: done.error });
        return { record: done, result: await this.result(record.id) };
      }
      return await this.execute(record.id, request, classified);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Hand a query to the dispatcher; one that could not be handed over ends failed, not queued. */
  private async dispatch(dispatcher: QueryDispatcher, request: DispatchRequest, wait: boolean): Promise<void> {
    try {
      await dispatcher.dispatch(request, wait);
    } catch (err) {
      await this.finish(request.queryId, 'failed', toPuffinError(err)).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Run a query recorded as queued (by this process or by an admin API elsewhere) and
   * return its final record. A query no longer queued (cancelled, or taken by another
   * runner) is left alone.
   */
  runQueued(queryId: string, options: RunOptions = {}): Promise<QueryRecord> {
    return this.runRecorded(queryId, { ...options, queryId });
  }

  /** Run a recorded query (classified already, or here) and answer with its final record. */
  private async runRecorded(queryId: string, request: DispatchRequest, statement?: ClassifiedStatement): Promise<QueryRecord> {
    try {
      return (await this.execute(queryId, request, statement)).record;
    } catch (err) {
      const record = await this.options.state.getQuery(queryId).catch(() => undefined);
      if (record) return record;
      throw err;
    }
  }

  /** The record, with a runner that vanished past the deadline turned into a failure. */
  async get(queryId: string): Promise<QueryRecord | undefined> {
    if (!ULID.test(queryId)) return undefined;
    const record = await this.options.state.getQuery(queryId);
    if (!record || TERMINAL_STATUSES.includes(record.status)) return record;
    if (Date.now() <= record.deadline + (this.options.staleGraceMs ?? 10_000)) return record;
    const error = new PuffinError('timeout', `query ${queryId} did not finish by its deadline and its runner stopped reporting; it was marked failed`);
    return (await this.finish(queryId, 'failed', error)) ?? this.options.state.getQuery(queryId);
  }

  async list(options: { limit?: number; status?: QueryStatus } = {}): Promise<QueryRecord[]> {
    return this.options.state.listQueries(options);
  }

  /** Reads kept results back: rows in windows, or Parquet (GET /v1/queries/{id}/result). */
  get resultReader(): ResultReader {
    return this.options.results.reader;
  }

  /** A finished query's result; a 4xx PuffinError when there is none (yet, or any more). */
  async result(queryId: string): Promise<KeptResult> {
    const record = await this.get(queryId);
    if (!record) throw unknownQuery(queryId);
    switch (record.status) {
      case 'queued':
      case 'running': {
        const p = record.progress;
        throw new PuffinError('conflict', `query ${queryId} is ${record.status} (${p.fragmentsDone} of ${p.fragmentsTotal} fragments done); poll GET /v1/queries/${queryId} until its status is succeeded`);
      }
      case 'cancelled':
        throw new PuffinError('conflict', `query ${queryId} was cancelled; it has no result`);
      case 'failed':
        throw new PuffinError('conflict', `query ${queryId} failed (${record.error?.code ?? 'internal'}): ${record.error?.message ?? 'no message'}; it has no result`);
      case 'succeeded':
        break;
    }
    const kept = await this.options.results.loadFor(queryId);
    if (!kept) throw new PuffinError('not_found', `the result of query ${queryId} expired; run the query again`);
    return kept;
  }

  /** Cancel a queued or running query; cancelling a cancelled one is a no-op. */
  async cancel(queryId: string, reason = 'cancelled'): Promise<QueryRecord> {
    const record = await this.get(queryId);
    if (!record) throw unknownQuery(queryId);
    if (record.status === 'cancelled') return record;
    if (TERMINAL_STATUSES.includes(record.status)) {
      throw new PuffinError('conflict', `query ${queryId} already ${record.status}; there is nothing to cancel`);
    }
    const error = new PuffinError('conflict', `query ${queryId} was cancelled: ${reason}`);
    const cancelled = await this.finish(queryId, 'cancelled', error);
    // Pending fragments are not started and running ones are abandoned once this fires.
    this.running.get(queryId)?.abort(error);
    return cancelled ?? (await this.options.state.getQuery(queryId)) ?? record;
  }

  /** Abandon running queries (they end cancelled) and wait for background runs to settle. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running.keys()].map((id) => this.cancel(id, 'the server is shutting down')));
    await Promise.allSettled([...this.background]);
  }

  private classified(statement: Statement): Promise<ClassifiedStatement> {
    return typeof statement === 'string' ? this.classify(statement) : Promise.resolve(statement);
  }

  private async create(statement: Statement, options: SubmitOptions): Promise<QueryRecord> {
    if (this.closed) throw new PuffinError('unavailable', 'the query manager is shutting down');
    const sql = typeof statement === 'string' ? statement : statement.sql;
    if (typeof sql !== 'string' || sql.trim() === '') throw new PuffinError('bad_request', 'the SQL text is empty');
    const now = Date.now();
    const record: QueryRecord = {
      id: ulid(now),
      user: options.user,
      sql,
      ...(options.source ? { source: options.source } : {}),
      status: 'queued',
      submittedAt: now,
      deadline: now + (options.timeoutMs ?? this.options.queryTimeoutMs),
      progress: { fragmentsDone: 0, fragmentsTotal: 0, bytesScanned: 0 },
    };
    await this.options.state.createQuery(record);
    return record;
  }

  private track(work: Promise<unknown>): void {
    const settled = work.catch((err: unknown) => this.options.onError?.(err, 'background query'));
    this.background.add(settled);
    void settled.finally(() => this.background.delete(settled));
  }

  /** The run itself; a failure is recorded, then rejects with the query's own error. */
  private async execute(queryId: string, request: DispatchRequest, statement?: ClassifiedStatement): Promise<FinishedQuery> {
    const { state, executor } = this.options;
    const queued = await state.getQuery(queryId);
    if (!queued) throw unknownQuery(queryId);
    const started = await state.updateQuery(queryId, { status: 'running', startedAt: Date.now() }, ['queued']);
    if (!started) throw new PuffinError('conflict', `query ${queryId} is ${queued.status}, not queued; it was not run`);

    const controller = new AbortController();
    this.running.set(queryId, controller);
    const remaining = started.deadline - Date.now();
    const deadline = setTimeout(
      () => controller.abort(new PuffinError('timeout', `query ${queryId} exceeded its deadline of ${started.deadline - started.submittedAt} ms`)),
      Math.max(0, remaining),
    );
    const watcher = this.watchForCancel(queryId, controller);
    const progress = new ProgressWriter(state, queryId, (err) => this.options.onError?.(err, 'progress'));
    try {
      const format = request.format ?? 'json';
      // A query queued elsewhere (the admin API, for a coordinator Lambda) is classified
      // here by the same function over the same text, so it is the statement authorized there.
      const classified = statement ?? (await abortable(this.classify(started.sql), controller.signal));
      const planOptions = { fragments: request.fragments, role: request.role };
      const plan = await abortable(executor.explain(classified, { ...planOptions, signal: controller.signal }), controller.signal);
      // What another instance answers (THROUGH, remote tables) is not a function of local snapshots.
      const cacheKey = isCacheable(classified) && !plan.remote ? resultCacheKey(plan, await snapshotsOf(plan, this.options.catalog), format) : undefined;
      const cached = cacheKey ? await this.options.results.cacheGet(cacheKey) : undefined;
      let kept: KeptResult;
      let stats: QueryStats | undefined;
      let remote = plan.remote;
      if (cached) {
        kept = cached;
      } else {
        const snapshotsBefore = cacheKey ? await snapshotsOf(plan, this.options.catalog) : undefined;
        // Abortable: the record turns failed at the deadline even if the executor is slow to
        // notice (its own work is stopped through the signal).
        const outcome = await abortable(executor.query(classified, {
          ...planOptions,
          plan: classified.kind === 'select' ? plan : undefined,
          timeoutMs: Math.max(1, started.deadline - Date.now()),
          signal: controller.signal,
          queryId,
          onPlan: (p: Plan) => progress.total(p.fragments.length),
          onFragment: (done) => progress.fragment(done.bytesScanned),
        }), controller.signal);
        stats = outcome.stats;
        remote = outcome.plan.remote ?? remote;
        const result = { columns: outcome.columns, rows: outcome.rows };
        const size = bodyBytes(encodeResult(result, format).body);
        kept = size > this.options.resultInlineLimitBytes ? await this.options.results.store(queryId, result) : { kind: 'inline', result };
        // Cache only what was computed over the snapshots the key names, and never the result
        // of a query that was cancelled or passed its deadline meanwhile: it has no result.
        if (controller.signal.aborted) throw controller.signal.reason;
        if (cacheKey && snapshotsBefore && sameSnapshots(snapshotsBefore, await snapshotsOf(plan, this.options.catalog)) && !controller.signal.aborted) {
          await this.options.results.cachePut(cacheKey, kept);
        }
      }
      if (controller.signal.aborted) throw controller.signal.reason;
      await this.options.results.saveFor(queryId, kept);
      await progress.settled();
      const done = await this.finish(queryId, 'succeeded', undefined, {
        cacheHit: Boolean(cached),
        shape: plan.shape,
        ...(remote ? { remote } : {}),
        ...(stats?.singleNodeBytes !== undefined ? { singleNodeBytes: stats.singleNodeBytes } : {}),
        ...partitionCacheOf(stats),
        resultUri: kept.kind === 'stored' ? kept.location : undefined,
        resultFormat: kept.kind === 'stored' ? 'parquet' : 'json',
      }, ['running']);
      if (!done) throw controller.signal.aborted ? controller.signal.reason : new PuffinError('conflict', `query ${queryId} was cancelled`);
      return { record: done, result: kept, stats };
    } catch (err) {
      const error = controller.signal.aborted ? toPuffinError(controller.signal.reason) : toPuffinError(err);
      await progress.settled();
      await this.finish(queryId, 'failed', error);
      throw error;
    } finally {
      clearTimeout(deadline);
      clearInterval(watcher);
      this.running.delete(queryId);
    }
  }

  /** Notice a cancellation written by another process (the admin API, for a coordinator Lambda). */
  private watchForCancel(queryId: string, controller: AbortController): NodeJS.Timeout {
    const timer = setInterval(() => {
      this.options.state.getQuery(queryId).then(
        (record) => {
          if (record?.status === 'cancelled' && !controller.signal.aborted) {
            controller.abort(new PuffinError('conflict', `query ${queryId} was cancelled`));
          }
        },
        () => undefined, // an unreachable store is noticed by the run itself
      );
    }, this.options.cancelPollMs ?? 250);
    timer.unref();
    return timer;
  }

  /**
   * Move a query to a terminal status (only from `fromStatuses`) and log it. Returns the
   * final record, or undefined when it had already ended another way.
   */
  private async finish(
    queryId: string,
    status: 'succeeded' | 'failed' | 'cancelled',
    error?: PuffinError,
    extra: Partial<QueryRecord> = {},
    fromStatuses: readonly QueryStatus[] = ['queued', 'running'],
  ): Promise<QueryRecord | undefined> {
    const patch: Partial<QueryRecord> = { ...extra, status, finishedAt: Date.now() };
    if (error) patch.error = { code: status === 'cancelled' ? 'cancelled' : error.code, message: error.message };
    const record = await this.options.state.updateQuery(queryId, patch, fromStatuses);
    if (record) await this.options.state.appendLog(logEntryOf(record)).catch((err: unknown) => this.options.onError?.(err, 'query log'));
    return record;
  }
}

/** Progress updates to the state store, in order, without holding up the query. */
class ProgressWriter {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly state: StateStore,
    private readonly queryId: string,
    private readonly onError: (err: unknown) => void,
  ) {}

  total(fragments: number): void {
    this.enqueue(() => this.state.addProgress(this.queryId, { fragmentsTotal: fragments }));
  }

  fragment(bytesScanned: number): void {
    this.enqueue(() => this.state.addProgress(this.queryId, { fragmentsDone: 1, bytesScanned }));
  }

  settled(): Promise<void> {
    return this.chain;
  }

  private enqueue(write: () => Promise<void>): void {
    this.chain = this.chain.then(write).catch(this.onError);
  }
}

/** The partition cache's figures summed over the stages that report them (none: no field). */
export function partitionCacheOf(stats: QueryStats | undefined): Pick<QueryRecord, 'partitionCache'> {
  const stages = (stats?.stages ?? []).filter((s) => s.cacheHits !== undefined || s.cacheMisses !== undefined);
  if (stages.length === 0) return {};
  const sum = (f: (s: (typeof stages)[number]) => number | undefined) => stages.reduce((n, s) => n + (f(s) ?? 0), 0);
  return { partitionCache: { hits: sum((s) => s.cacheHits), misses: sum((s) => s.cacheMisses), bytesSaved: sum((s) => s.cacheBytesSaved) } };
}

export function logEntryOf(record: QueryRecord): QueryLogEntry {
  return {
    id: record.id,
    user: record.user,
    sql: record.sql,
    ...(record.source ? { source: record.source } : {}),
    ...(record.remote ? { remote: record.remote } : {}),
    status: record.status,
    submittedAt: record.submittedAt,
    durationMs: (record.finishedAt ?? Date.now()) - record.submittedAt,
    bytesScanned: record.progress.bytesScanned,
    fragments: record.progress.fragmentsTotal,
    cacheHit: record.cacheHit ?? false,
    error: record.error ? `${record.error.code}: ${record.error.message}` : null,
  };
}

function unknownQuery(queryId: string): PuffinError {
  return new PuffinError('not_found', `no query with id '${queryId}'`);
}

function sameSnapshots(a: [string, string][], b: [string, string][]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Settle with `work`, or reject as soon as `signal` aborts. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
