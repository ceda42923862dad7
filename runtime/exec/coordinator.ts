// Runs a distributed plan: hands every fragment to an Invoker under a concurrency bound,
// retries failed fragments, enforces the query deadline, gathers the partials into a scratch
// directory and runs the reduce step over them in the coordinator's own sandboxed DuckDB.
// Fragments fan out synchronously (one held call per running fragment) or, for queries with
// many fragments, asynchronously (Event invocations, completions from the state store: see
// async-fanout.ts); the retry, deadline and cancellation rules are the same for both.

import { setMaxListeners } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ulid } from 'ulid';
import { PuffinError, toPuffinError, type ErrorCode } from '../errors.ts';
import { assertSandboxed, type Engine, type QueryResult } from '../engine/engine.ts';
import { EngineRunner, type SqlRunner } from './sql-runner.ts';
import { openStore, resolveUri, type StoreOptions } from '../storage/open.ts';
import type { FileRef, Fragment, Partitioning, Plan, Stage, StageStats } from '../planner/plan.ts';
import type { ColumnStats } from '../catalog/types.ts';

export type { StageStats };
import { DEFAULT_STAGE_TASK_BYTES, assertCompatible, coalescePartitions, joinAdjacentSources, partitionBytes, partitionSlicer, type ShuffleIndex } from './shuffle-index.ts';
import { DEFAULT_COMBINE_ABOVE, combineGrid, combineSourceOf, shouldCombine } from './shuffle-combine.ts';
import { deleteQueryShuffle, deleteShuffleObjects } from './shuffle-read.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { FragmentRequest, FragmentResult, Invoker } from './invoker.ts';
import { runAsyncFanout, type AsyncFanoutOptions } from './async-fanout.ts';
import { pause } from './signals.ts';
import { assertSafeId } from './wire.ts';
import { parquetViewSql } from './views.ts';

export interface CoordinatorOptions {
  invoker: Invoker;
  /**
   * The coordinator's DuckDB. Without a runner the reduce step runs on it, so it must be
   * sandboxed to a set of directories containing scratchDir.
   */
  engine: Engine;
  /**
   * Where the reduce step runs (runtime/exec/sql-runner.ts): a slot that sees only this
   * query's partials and is killed at the deadline. With a runner, no engine needs to be able
   * to read scratchDir, so a query's SQL can never read another query's partials.
   */
  runner?: SqlRunner;
  /** Where partials are gathered for the reduce step; one subdirectory per query, removed after. */
  scratchDir: string;
  /** Fragments invoked at once. */
  concurrency: number;
  /** Retries of a failed fragment before the query fails. */
  retries: number;
  /** Deadline of a query unless execute() is given its own. */
  queryTimeoutMs: number;
  /** Partials larger than this are stored under the shuffle prefix rather than returned inline. */
  inlineLimitBytes: number;
  /** How stored partials are fetched and deleted (S3 endpoint, region, ...). */
  storeOptions: StoreOptions;
  /**
   * Root URL of the shuffle prefix. When set, a stored partial outside it is refused: the
   * coordinator deletes stored partials after the query and must never delete anything else.
   */
  shuffleUrl?: string;
  /** First pause between attempts of a fragment, doubled on each retry (capped at 1 s). Default 50. */
  retryDelayMs?: number;
  /**
   * Asynchronous fan-out (Event invocations, completions from the state store). Without it
   * every query fans out synchronously through `invoker`.
   */
  asyncFanout?: AsyncFanoutOptions;
  /**
   * Straggler mitigation (synchronous fan-out): once half a stage's tasks are done, a task
   * running past `factor` times their median duration, and at least `minMs`, gets a
   * duplicate attempt; the first to finish wins and the other is cancelled. Default
   * {factor: 3, minMs: 1000}; factor 0 turns it off.
   */
  stragglers?: { factor: number; minMs: number };
  /**
   * A stage whose producers stored at least this many shuffle objects is read through the
   * combining exchange (exec/shuffle-combine.ts): a round of about that many combiner tasks
   * cuts each consumer's GETs from one per producer to about sqrt(producers). Default
   * DEFAULT_COMBINE_ABOVE; 0 turns it off.
   */
  shuffleCombineAbove?: number;
  /**
   * Shuffle bytes a later stage's task reads, about: its partitions are grouped into tasks of
   * about this many bytes of its producers' pieces (coalescePartitions). Default
   * DEFAULT_STAGE_TASK_BYTES; 0: one task per partition.
   */
  stageTaskBytes?: number;
}

const DEFAULT_STRAGGLERS = { factor: 3, minMs: 1000 };
/** How often a running task is checked against its stage's median. */
const STRAGGLER_POLL_MS = 25;

/** 'auto': asynchronous when asyncFanout is configured and the plan has at least its threshold of fragments. */
export type FanoutMode = 'auto' | 'sync' | 'async';

export interface ExecuteOptions {
  queryId?: string;
  /** Deadline of this query in ms; defaults to the coordinator's queryTimeoutMs. */
  timeoutMs?: number;
  /** Aborting cancels the query; a PuffinError reason is what execute() rejects with. */
  signal?: AbortSignal;
  /** How fragments are invoked; default 'auto'. */
  mode?: FanoutMode;
  /** Told each time a fragment's partial has landed (its successful attempt), in either fan-out. */
  onFragment?: (done: { fragmentId: string; bytesScanned: number; cache?: FragmentResult['cache'] }) => void;
}

export interface ExecuteStats {
  /** How the fragments were invoked. */
  mode: 'sync' | 'async';
  fragments: number;
  retries: number;
  /** Bytes of table data read by the fragments' successful attempts. */
  bytesScanned: number;
  /** Bytes of partials moved from workers to the coordinator. */
  bytesShuffled: number;
  executeMs: number;
  reduceMs: number;
  /** The most bytes read by any step that runs as one task: the reduce step, or a stage of one task. */
  singleNodeBytes: number;
  stages: StageStats[];
  /** Duplicate attempts started for stragglers, and how many of them finished first. */
  duplicates: number;
  duplicateWins: number;
}

/** A file of a stored result, with its integer columns' statistics when its worker gave them (FragmentResult.columnStats). */
export type StoredFile = FileRef & { stats?: Record<string, ColumnStats> };

export interface ExecuteOutcome extends QueryResult {
  stats: ExecuteStats;
  /**
   * A plan that stores its result (Plan.stored): the files its last output's tasks wrote,
   * under the shuffle prefix. They outlive the execution; the caller deletes them (discard).
   */
  stored?: StoredFile[];
}

/** Errors a retry would only repeat: the query itself is wrong, not allowed, or too big. */
const FINAL_CODES: ReadonlySet<ErrorCode> = new Set(['syntax_error', 'binder_error', 'access_denied', 'bad_request', 'unsupported', 'payload_too_large']);
const MAX_RETRY_DELAY_MS = 1_000;

/** Everything one execution must undo, whether it succeeds or fails. */
interface QueryRun {
  queryId: string;
  deadline: number;
  signal: AbortSignal;
  workDir: string;
  /** Partial files per reduce view name. */
  partials: Map<string, string[]>;
  /** Stored partials to delete once the query is over. */
  storedUris: string[];
  /** The output whose partials are the stored result (Plan.stored), and the files so far. */
  storedOutput?: string;
  stored: StoredFile[];
  /** Shuffle indexes of hash-partitioned outputs, by output (stage) name, in task order. */
  shuffles: Map<string, ShuffleIndex[]>;
  /** Every task that may have written a shuffle object, for cleanup by prefix after a failure. */
  shuffleTasks: { stageId: string; taskId: string }[];
  /** Producers' indexes replaced by their combined ones (their objects are deleted at the end). */
  combinedAway: ShuffleIndex[];
  /** Per stage (leaf outputs and later stages): what its tasks did. */
  stageStats: Map<string, StageStats>;
  /** When each stage started (for its wall time). */
  stageStarted: Map<string, number>;
  /** Durations (ms) of each stage's finished tasks, for straggler detection. */
  taskMs: Map<string, number[]>;
  stats: ExecuteStats;
  onFragment?: ExecuteOptions['onFragment'];
}

export class Coordinator {
  private readonly retryDelayMs: number;

  private readonly runner: SqlRunner;

  constructor(private readonly options: CoordinatorOptions) {
    if (!options.runner) {
      assertSandboxed(options.engine);
      const scratch = `${resolve(options.scratchDir)}/`;
      const allowed = options.engine.options.allowedDirectories ?? [];
      if (!allowed.some((d) => scratch.startsWith(d.endsWith('/') ? d : `${d}/`))) {
        throw new PuffinError('internal', `coordinator scratch directory ${scratch} is outside the engine's allowed directories`);
      }
    }
    this.runner = options.runner ?? new EngineRunner(options.engine);
    if (!(options.concurrency >= 1)) throw new PuffinError('internal', `coordinator concurrency must be at least 1, got ${options.concurrency}`);
    if (!(options.retries >= 0)) throw new PuffinError('internal', `coordinator retries must be 0 or more, got ${options.retries}`);
    this.retryDelayMs = options.retryDelayMs ?? 50;
    const fanout = options.asyncFanout;
    if (fanout && !(fanout.completionTimeoutMs > 0)) throw new PuffinError('internal', `asynchronous fan-out needs a positive completion timeout, got ${fanout.completionTimeoutMs}`);
  }

  /** The fan-out a plan of `fragments` fragments gets under `mode`. */
  fanoutFor(fragments: number, mode: FanoutMode = 'auto'): 'sync' | 'async' {
    const fanout = this.options.asyncFanout;
    if (mode === 'async') {
      if (!fanout) throw new PuffinError('bad_request', 'asynchronous fan-out needs a state store and a worker Lambda; this coordinator has neither configured');
      return 'async';
    }
    if (mode === 'sync' || !fanout || fanout.threshold <= 0) return 'sync';
    return fragments >= fanout.threshold ? 'async' : 'sync';
  }

  async execute(plan: Plan, options: ExecuteOptions = {}): Promise<ExecuteOutcome> {
    const queryId = assertSafeId('queryId', options.queryId ?? ulid());
    checkPlan(plan);
    const mode = this.fanoutFor(plan.fragments.length, options.mode);
    const timeoutMs = options.timeoutMs ?? this.options.queryTimeoutMs;
    const controller = new AbortController();
    // Every call in flight listens to the query's signal: up to a few per concurrent fragment.
    setMaxListeners(this.options.concurrency * 4 + 16, controller.signal);
    const timer = setTimeout(
      () => controller.abort(new PuffinError('timeout', `query ${queryId} exceeded its deadline of ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onCallerAbort = () => controller.abort(callerAbortReason(queryId, options.signal?.reason));
    if (options.signal?.aborted) onCallerAbort();
    else options.signal?.addEventListener('abort', onCallerAbort, { once: true });

    const run: QueryRun = {
      queryId,
      deadline: Date.now() + timeoutMs,
      signal: controller.signal,
      workDir: join(resolve(this.options.scratchDir), `${queryId}-${randomUUID()}`),
      partials: new Map(plan.reduce.views.map((v) => [v.name, []])),
      storedUris: [],
      ...(plan.stored ? { storedOutput: plan.stored } : {}),
      stored: [],
      shuffles: new Map(),
      shuffleTasks: [],
      combinedAway: [],
      stageStats: new Map(),
      stageStarted: new Map(),
      taskMs: new Map(),
      stats: { mode, fragments: plan.fragments.length, retries: 0, bytesScanned: 0, bytesShuffled: 0, executeMs: 0, reduceMs: 0, singleNodeBytes: 0, stages: [], duplicates: 0, duplicateWins: 0 },
      onFragment: options.onFragment,
    };
    let failed = true;
    try {
      await mkdir(run.workDir, { recursive: true });
      const executeStart = Date.now();
      // The leaf stages (every fragment, whatever its output) run at once; each later stage
      // starts when the stages it reads are done. A failed task is retried alone.
      this.startStages(run, leafStages(plan));
      if (mode === 'async') await this.runFragmentsAsync(plan.fragments, run, controller);
      else await this.runFragments(plan.fragments, run, controller);
      for (const stage of plan.stages ?? []) {
        // Its tasks: contiguous ranges of its partitions, sized by the bytes its producers wrote.
        const ranges = this.taskRanges(stage, run);
        for (const read of stage.reads) await this.combineIfMany(read.stage, ranges.length, run, controller, mode);
        const tasks = this.stageTasks(stage, run, ranges);
        this.startStages(run, [{ id: stage.id, tasks: tasks.length, output: stage.output.partitioning, partitions: stage.tasks }]);
        if (mode === 'async') await this.runFragmentsAsync(tasks, run, controller);
        else await this.runFragments(tasks, run, controller);
      }
      run.stats.executeMs = Date.now() - executeStart;
      const reduceStart = Date.now();
      const result = plan.stored ? { columns: [], rows: [] } : await this.reduce(plan, run);
      run.stats.reduceMs = Date.now() - reduceStart;
      run.stats.stages = [...run.stageStats.values()];
      run.stats.singleNodeBytes = Math.max(
        [...run.partials.values()].reduce((sum, files) => sum + files.length, 0) > 0 ? run.stats.bytesShuffled : 0,
        ...run.stats.stages.filter((st) => st.tasks === 1).map((st) => st.bytesIn),
      );
      failed = false;
      return { ...result, stats: run.stats, ...(plan.stored ? { stored: run.stored } : {}) };
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCallerAbort);
      // Stops invocations still outstanding when the query failed; a no-op after success.
      controller.abort(new PuffinError('internal', `query ${queryId} is over`));
      await this.cleanUp(run, failed);
    }
  }

  private startStages(run: QueryRun, stages: { id: string; tasks: number; output: Partitioning; partitions?: number }[]): void {
    for (const st of stages) {
      run.stageStats.set(st.id, {
        stage: st.id, tasks: st.tasks, rowsOut: 0, bytesOut: 0, bytesIn: 0, shuffleGets: 0, shufflePuts: 0, ms: 0,
        output: st.output.kind === 'hash' ? `hash(${st.output.count})` : 'single',
        ...(st.partitions !== undefined && st.partitions !== st.tasks ? { partitions: st.partitions } : {}),
      });
      run.stageStarted.set(st.id, Date.now());
    }
  }

  /**
   * A later stage's tasks as ranges of its partitions (shuffle-index.ts coalescePartitions):
   * about CoordinatorOptions.stageTaskBytes of its producers' pieces each, never more tasks
   * than partitions. A stage that reads no shuffle keeps one task per partition.
   */
  private taskRanges(stage: Stage, run: QueryRun): [number, number][] {
    const reads = stage.reads.map((read) => run.shuffles.get(read.stage) ?? []);
    if (!reads.some((indexes) => indexes.length)) return Array.from({ length: stage.tasks }, (_, p): [number, number] => [p, p + 1]);
    return coalescePartitions(partitionBytes(reads, stage.tasks), this.options.stageTaskBytes ?? DEFAULT_STAGE_TASK_BYTES);
  }

  /**
   * The tasks of a later stage, made once the stages it reads are done: task j reads its
   * range of partitions of every producer of each stage it reads (one ranged GET per
   * producer object), and every broadcast table whole.
   */
  private stageTasks(stage: Stage, run: QueryRun, ranges: [number, number][]): Fragment[] {
    const tasks: Fragment[] = [];
    // Each task is sent its own partitions' pieces only (checked once per stage read).
    const slicers = stage.reads.map((read) => partitionSlicer(run.shuffles.get(read.stage) ?? []));
    const piecesOf = (r: number, [from, to]: [number, number]) => {
      const pieces = [];
      for (let p = from; p < to; p++) pieces.push(...slicers[r](p));
      return joinAdjacentSources(pieces);
    };
    for (const [j, range] of ranges.entries()) {
      const task: Fragment = {
        id: `${stage.id.replace(/[^A-Za-z0-9_-]/g, '_')}-t${j}`,
        output: stage.id,
        inputs: stage.tables,
        sql: stage.sql,
        shuffleReads: stage.reads.map((read, r) => ({ view: read.view, columns: read.columns, partition: range[0], sources: piecesOf(r, range) })),
      };
      if (stage.output.partitioning.kind === 'hash') task.shuffleWrite = { stage: stage.id, partitioning: stage.output.partitioning };
      if (stage.output.store) task.store = true;
      tasks.push(task);
    }
    return tasks;
  }

  /**
   * The combining exchange for one producer stage, when its stored objects are many (see
   * CoordinatorOptions.shuffleCombineAbove): a round of combiner tasks laid out as a grid
   * (shuffle-combine.ts combineGrid), whose indexes then stand for the producers'. A stage
   * read by several later stages is combined once.
   */
  private async combineIfMany(producer: string, consumers: number, run: QueryRun, controller: AbortController, mode: 'sync' | 'async'): Promise<void> {
    const indexes = run.shuffles.get(producer);
    const stageId = `${producer.replace(/[^A-Za-z0-9_-]/g, '_')}-combine`;
    if (!indexes?.length || run.stageStats.has(stageId)) return;
    if (!shouldCombine(indexes, consumers, this.options.shuffleCombineAbove ?? DEFAULT_COMBINE_ABOVE)) return;
    assertCompatible(indexes);
    const { partitions, columns, duckdb } = indexes[0];
    const tasks: Fragment[] = combineGrid(indexes.length, partitions).map((cell, i) => {
      const [from, to] = cell.partitions;
      return {
        id: `${stageId}-t${i}`, output: stageId, inputs: [], sql: '-- shuffle combiner: moves bytes, runs no SQL',
        shuffleCombine: { stage: stageId, partitions, columns, duckdb, from, to, sources: indexes.slice(cell.producers[0], cell.producers[1]).map((index) => combineSourceOf(index, from, to)) },
      };
    });
    this.startStages(run, [{ id: stageId, tasks: tasks.length, output: { kind: 'hash', keys: [], count: partitions } }]);
    run.shuffleTasks.push(...tasks.map((t) => ({ stageId, taskId: t.id })));
    if (mode === 'async') await this.runFragmentsAsync(tasks, run, controller);
    else await this.runFragments(tasks, run, controller);
    // Task order, as producers' indexes are kept: a stage's pieces are then read in a fixed order.
    const byTask = new Map((run.shuffles.get(stageId) ?? []).map((index) => [index.taskId, index]));
    run.shuffles.delete(stageId);
    run.combinedAway.push(...indexes);
    run.shuffles.set(producer, tasks.map((t) => {
      const index = byTask.get(t.id);
      if (!index) throw new PuffinError('internal', `combiner ${t.id} of query ${run.queryId} returned no shuffle index`);
      return index;
    }));
  }

  /** Invoke every fragment, at most `concurrency` at once; the first failure aborts the rest. */
  private async runFragments(fragments: Fragment[], run: QueryRun, controller: AbortController): Promise<void> {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < fragments.length && !run.signal.aborted) {
        const fragment = fragments[next++];
        try {
          const result = await this.runWithRetries(fragment, run);
          await this.landPartial(fragment, result, run);
        } catch (err) {
          controller.abort(toPuffinError(err));
          return;
        }
      }
    };
    const lanes = Array.from({ length: Math.min(this.options.concurrency, fragments.length) }, lane);
    // Wait for every lane, so no partial is still being written when cleanup starts.
    await Promise.allSettled(lanes);
    if (run.signal.aborted) throw run.signal.reason;
  }

  /** Start every fragment with an Event invocation and gather the reports from the state store. */
  private async runFragmentsAsync(fragments: Fragment[], run: QueryRun, controller: AbortController): Promise<void> {
    try {
      await runAsyncFanout(fragments, this.options.asyncFanout!, {
        queryId: run.queryId,
        deadline: run.deadline,
        signal: run.signal,
        concurrency: this.options.concurrency,
        request: (fragment) => this.requestFor(fragment, run),
        land: (fragment, result) => this.landPartial(fragment, result, run),
        onFailure: (fragment, attempt, error) => this.afterFailure(fragment, attempt, error, run),
        discard: (result) => this.discardLate(result),
        fail: (error) => controller.abort(error),
        runSync: (fragment) => this.runWithRetries(fragment, run),
      });
    } catch (err) {
      controller.abort(toPuffinError(err));
    }
    if (run.signal.aborted) throw run.signal.reason;
  }

  private requestFor(fragment: Fragment, run: QueryRun): FragmentRequest {
    return { queryId: run.queryId, fragment, deadline: run.deadline, inlineLimitBytes: this.options.inlineLimitBytes };
  }

  /**
   * The policy for a failed attempt: errors a retry would only repeat end the query at once;
   * others are retried after a doubling pause until the retry bound is spent.
   */
  private afterFailure(fragment: Fragment, attempt: number, error: PuffinError, run: QueryRun): number | PuffinError {
    if (FINAL_CODES.has(error.code)) {
      return new PuffinError(error.code, error.message, { ...error.details, fragmentId: fragment.id });
    }
    if (attempt > this.options.retries) {
      // An invoker that had no worker to run on and says when to come back (the process pool
      // restarting crashed workers) answers 503: the fragment never ran, nothing about it failed.
      const noWorker = error.code === 'unavailable' && typeof error.details?.retryAfterMs === 'number';
      return new PuffinError(
        noWorker ? 'unavailable' : 'fragment_failed',
        `fragment ${fragment.id} of query ${run.queryId} failed after ${attempt} attempt(s); last error (${error.code}): ${error.message}`,
        { fragmentId: fragment.id, attempts: attempt, lastError: error.toJSON().error },
      );
    }
    run.stats.retries++;
    return Math.min(MAX_RETRY_DELAY_MS, this.retryDelayMs * 2 ** (attempt - 1));
  }

  private async runWithRetries(fragment: Fragment, run: QueryRun): Promise<FragmentResult> {
    const request = this.requestFor(fragment, run);
    if (fragment.shuffleWrite) run.shuffleTasks.push({ stageId: fragment.shuffleWrite.stage, taskId: fragment.id });
    for (let attempt = 1; ; attempt++) {
      if (run.signal.aborted) throw run.signal.reason;
      let error: PuffinError;
      try {
        return await this.invokeWithDuplicate(fragment, request, run);
      } catch (err) {
        if (run.signal.aborted) throw run.signal.reason;
        error = toPuffinError(err);
      }
      const next = this.afterFailure(fragment, attempt, error, run);
      if (next instanceof PuffinError) throw next;
      await pause(next, run.signal);
    }
  }

  /**
   * One attempt of a fragment, with a duplicate if it straggles (see
   * CoordinatorOptions.stragglers): resolves with the first result to arrive, cancels the
   * other attempt, and discards whatever that one still returns. Rejects when every attempt
   * started has failed (the caller's retry policy then applies), or with the query's reason.
   */
  private invokeWithDuplicate(fragment: Fragment, request: FragmentRequest, run: QueryRun): Promise<FragmentResult> {
    const started = Date.now();
    const { factor, minMs } = this.options.stragglers ?? DEFAULT_STRAGGLERS;
    return new Promise<FragmentResult>((resolvePromise, reject) => {
      const attempts: AbortController[] = [];
      let settled = false;
      let failures = 0;
      let firstError: unknown;
      let timer: ReturnType<typeof setInterval> | undefined;
      const settle = () => {
        settled = true;
        if (timer) clearInterval(timer);
        run.signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        settle();
        reject(run.signal.reason);
      };
      run.signal.addEventListener('abort', onAbort, { once: true });
      const launch = (duplicate: boolean) => {
        const controller = new AbortController();
        attempts.push(controller);
        const signal = AbortSignal.any([run.signal, controller.signal]);
        this.options.invoker.invoke(request, signal).then((result) => {
          if (settled) return this.discardLate(result);
          if (result.fragmentId !== fragment.id) throw new PuffinError('internal', `worker answered fragment ${fragment.id} with the result of ${result.fragmentId}`);
          settle();
          for (const other of attempts) if (other !== controller) other.abort(new PuffinError('internal', `fragment ${fragment.id}: another attempt finished first`));
          if (duplicate) run.stats.duplicateWins++;
          const list = run.taskMs.get(fragment.output) ?? [];
          list.push(Date.now() - started);
          run.taskMs.set(fragment.output, list);
          resolvePromise(result);
        }).catch((err: unknown) => {
          if (settled) return;
          failures++;
          firstError ??= err;
          // A duplicate still running may yet succeed; with none, the attempt has failed.
          if (failures === attempts.length) {
            settle();
            reject(firstError);
          }
        });
      };
      launch(false);
      // A task alone in its stage has no median to straggle behind: no timer for it.
      const tasks = run.stageStats.get(fragment.output)?.tasks ?? 0;
      if (!(factor > 0) || tasks < 2) return;
      timer = setInterval(() => {
        if (settled || attempts.length > 1 || run.signal.aborted) return;
        const done = run.taskMs.get(fragment.output) ?? [];
        if (done.length < Math.ceil(tasks / 2)) return;
        const sorted = [...done].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)];
        if (Date.now() - started <= Math.max(factor * median, minMs)) return;
        run.stats.duplicates++;
        launch(true);
      }, STRAGGLER_POLL_MS);
    });
  }

  /** Bring one partial into the scratch directory (or record a shuffle output's index). */
  private async landPartial(fragment: Fragment, result: FragmentResult, run: QueryRun): Promise<void> {
    const stage = run.stageStats.get(fragment.output);
    if (stage) {
      stage.rowsOut += result.rows;
      stage.bytesOut += result.bytes;
      stage.bytesIn += result.bytesScanned;
      stage.shuffleGets += result.shuffle?.gets ?? 0;
      stage.shufflePuts += result.shuffle?.puts ?? 0;
      if (result.cache) {
        stage.cacheHits = (stage.cacheHits ?? 0) + result.cache.hits;
        stage.cacheMisses = (stage.cacheMisses ?? 0) + result.cache.misses;
        stage.cacheBytesSaved = (stage.cacheBytesSaved ?? 0) + result.cache.bytesSaved;
      }
      stage.ms = Date.now() - (run.stageStarted.get(fragment.output) ?? Date.now());
    }
    if (result.partial.kind === 'shuffle') {
      const list = run.shuffles.get(fragment.output) ?? [];
      list.push(result.partial.index);
      run.shuffles.set(fragment.output, list);
      run.stats.bytesScanned += result.bytesScanned;
      tellLanded(run, fragment, result);
      return;
    }
    if (fragment.output === run.storedOutput) {
      // A file of the stored result: it stays where the worker put it.
      if (result.partial.kind !== 'stored') throw new PuffinError('internal', `fragment ${fragment.id} was to store its partial, and returned it ${result.partial.kind}`);
      this.checkShuffleUri(result.partial.uri);
      run.stored.push({ uri: result.partial.uri, sizeBytes: result.bytes, rowCount: result.rows, ...(result.columnStats ? { stats: result.columnStats } : {}) });
      run.stats.bytesScanned += result.bytesScanned;
      tellLanded(run, fragment, result);
      return;
    }
    let bytes: Uint8Array;
    if (result.partial.kind === 'inline') {
      bytes = Buffer.from(result.partial.parquetBase64, 'base64');
    } else {
      const uri = result.partial.uri;
      this.checkShuffleUri(uri);
      run.storedUris.push(uri);
      const { store, key } = resolveUri(uri, this.options.storeOptions);
      bytes = await store.get(key);
    }
    const path = join(run.workDir, `${fragment.id}.parquet`);
    await writeFile(path, bytes);
    run.partials.get(fragment.output)!.push(path);
    run.stats.bytesShuffled += bytes.byteLength;
    run.stats.bytesScanned += result.bytesScanned;
    tellLanded(run, fragment, result);
  }

  /** The reduce step (the whole query for 'local' and single-node plans), in a runner slot. */
  private async reduce(plan: Plan, run: QueryRun): Promise<QueryResult> {
    const views = plan.reduce.views.map((view) => ({ view, files: run.partials.get(view.name) ?? [] }));
    return this.runner.run({
      files: views.flatMap((v) => v.files),
      build: (paths) => {
        let next = 0;
        const setup = views.map(({ view, files }) => parquetViewSql(view.name, view.columns, paths.slice(next, (next += files.length))));
        return { setup, sql: plan.reduce.sql };
      },
    }, run.signal);
  }

  private checkShuffleUri(uri: string): void {
    const root = this.options.shuffleUrl;
    if (root && !uri.startsWith(root.endsWith('/') ? root : `${root}/`)) {
      throw new PuffinError('internal', `worker stored a partial at ${uri}, outside the shuffle prefix ${root}`);
    }
  }

  /** A result that arrives after its query gave up on it: its stored partial would be orphaned. */
  private discardLate(result: FragmentResult): void {
    if (result.partial.kind === 'shuffle') {
      const index = result.partial.index;
      if (this.shuffleStore) void deleteShuffleObjects(this.shuffleStore, [index]).catch(() => undefined);
      return;
    }
    if (result.partial.kind !== 'stored') return;
    const uri = result.partial.uri;
    void this.deleteStored([uri]);
  }

  /** Delete the files of a stored result (ExecuteOutcome.stored) once nothing reads them. */
  async discard(files: readonly FileRef[]): Promise<void> {
    await this.deleteStored(files.map((f) => f.uri));
  }

  private async deleteStored(uris: string[]): Promise<void> {
    await Promise.allSettled(
      uris.map(async (uri) => {
        this.checkShuffleUri(uri);
        const { store, key } = resolveUri(uri, this.options.storeOptions);
        await store.delete(key);
      }),
    );
  }

  private async cleanUp(run: QueryRun, failed: boolean): Promise<void> {
    const shuffles = [...run.shuffles.values(), run.combinedAway].flat();
    const store = this.shuffleStore;
    await Promise.allSettled([
      rm(run.workDir, { recursive: true, force: true }),
      this.deleteStored(failed ? [...run.storedUris, ...run.stored.map((f) => f.uri)] : run.storedUris),
      // The objects the indexes name; after a failure or cancel also whatever an attempt
      // that never reported may have written (listed by the query's prefixes).
      store && shuffles.length ? deleteShuffleObjects(store, shuffles) : undefined,
      // (A cancelled duplicate attempt is such an attempt too.)
      store && (failed || run.stats.duplicates > 0) && run.shuffleTasks.length ? deleteQueryShuffle(store, run.queryId, { tasks: run.shuffleTasks }) : undefined,
    ]);
  }

  /** Where workers write shuffle objects (the shuffle prefix), when one is configured. */
  private get shuffleStore(): ObjectStore | undefined {
    const url = this.options.shuffleUrl;
    if (!url) return undefined;
    this.shuffleStoreCache ??= openStore(url, this.options.storeOptions);
    return this.shuffleStoreCache;
  }

  private shuffleStoreCache: ObjectStore | undefined;
}

/** Tell the progress listener a fragment's partial landed; progress is reporting only, a failing listener must not fail the query. */
function tellLanded(run: QueryRun, fragment: Fragment, result: FragmentResult): void {
  try {
    run.onFragment?.({ fragmentId: fragment.id, bytesScanned: result.bytesScanned, ...(result.cache ? { cache: result.cache } : {}) });
  } catch {
    // Ignored: see above.
  }
}

/** The leaf stages of a plan: its fragments grouped by output. */
function leafStages(plan: Plan): { id: string; tasks: number; output: Partitioning }[] {
  const byOutput = new Map<string, { id: string; tasks: number; output: Partitioning }>();
  for (const f of plan.fragments) {
    const entry = byOutput.get(f.output) ?? { id: f.output, tasks: 0, output: f.shuffleWrite?.partitioning ?? { kind: 'single' } };
    entry.tasks++;
    byOutput.set(f.output, entry);
  }
  return [...byOutput.values()];
}

/**
 * A plan's fragment ids name files; every single output must be a reduce view, and every
 * hash-partitioned one must be read by a later stage (and produced before it).
 */
function checkPlan(plan: Plan): void {
  const views = new Set(plan.reduce.views.map((v) => v.name));
  const shuffled = new Set<string>();
  const ids = new Set<string>();
  // Outputs some task produces: a stage may read an output no task produces (a table whose
  // files were all pruned), which is empty.
  const produced = new Set([...plan.fragments.map((f) => f.output), ...(plan.stages ?? []).map((s) => s.id)]);
  for (const fragment of plan.fragments) {
    assertSafeId('fragment id', fragment.id);
    if (ids.has(fragment.id)) throw new PuffinError('internal', `plan has two fragments with id ${fragment.id}`);
    ids.add(fragment.id);
    if (fragment.shuffleWrite) {
      if (fragment.shuffleWrite.stage !== fragment.output) throw new PuffinError('internal', `fragment ${fragment.id} shuffles as '${fragment.shuffleWrite.stage}' but outputs to '${fragment.output}'`);
      shuffled.add(fragment.output);
    } else if (fragment.output === plan.stored) {
      if (!fragment.store) throw new PuffinError('internal', `fragment ${fragment.id} outputs the stored result '${plan.stored}' but does not store it`);
    } else if (!views.has(fragment.output)) {
      throw new PuffinError('internal', `fragment ${fragment.id} outputs to '${fragment.output}', which no reduce view declares`);
    }
  }
  for (const stage of plan.stages ?? []) {
    assertSafeId('stage id', stage.id.replace(/[^A-Za-z0-9_-]/g, '_'));
    for (const read of stage.reads) {
      if (!shuffled.has(read.stage) && produced.has(read.stage)) throw new PuffinError('internal', `stage ${stage.id} reads '${read.stage}', which no earlier stage hash-partitions`);
    }
    if (stage.output.partitioning.kind === 'hash') shuffled.add(stage.id);
    else if (stage.id === plan.stored) {
      if (!stage.output.store) throw new PuffinError('internal', `stage ${stage.id} outputs the stored result but does not store it`);
    } else if (!views.has(stage.id)) throw new PuffinError('internal', `stage ${stage.id} outputs to the reduce step, which declares no view '${stage.id}'`);
  }
}

function callerAbortReason(queryId: string, reason: unknown): PuffinError {
  return reason instanceof PuffinError ? reason : new PuffinError('timeout', `query ${queryId} was cancelled`);
}
