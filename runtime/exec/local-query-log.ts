// The query log of the embedded front ends (`puffindb query`, the Node library's open()),
// which run SQL on a LocalCluster without a QueryManager: each query is appended to the
// state store's log stream as it ends, exactly as the manager logs a server's queries, and
// the stream is flushed to the lake (`_puffindb/logs/`, the table `puffindb.query_log`)
// when the front end closes. Without REDIS_URL the state store lives and dies with this
// process, so the flush at close is what keeps the entries.

import { join } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { toPuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { openStateStore } from '../state/open.ts';
import type { QueryLogEntry, StateStore } from '../state/state-store.ts';
import { openStore } from '../storage/open.ts';
import { QueryLogFlusher } from './query-log.ts';
import type { QueryOutcome } from './query-service.ts';
import { storeOptionsOf } from './worker.ts';

export interface LocalQueryLogOptions {
  settings: Settings;
  /** Writes the log's Parquet files into a scratch directory under PUFFINDB_HOME. */
  engine: Engine;
  /** Default: openStateStore(settings), opened on the first entry and closed by close(). */
  state?: StateStore;
}

/** What a finished (or failed) local query contributes to its log entry. */
export interface LocalQueryRun {
  queryId: string;
  user: string;
  sql: string;
  submittedAt: number;
  outcome?: QueryOutcome;
  error?: unknown;
  /** The caller's signal aborted it. */
  cancelled?: boolean;
}

export class LocalQueryLog {
  private state: Promise<StateStore> | undefined;
  private appended = 0;

  constructor(private readonly options: LocalQueryLogOptions) {}

  /** Append one query's entry; a log that cannot be written does not fail the query. */
  async record(run: LocalQueryRun, onError: (err: unknown) => void = () => undefined): Promise<void> {
    try {
      const state = await this.store();
      await state.appendLog(localLogEntry(run));
      this.appended++;
    } catch (err) {
      onError(err);
    }
  }

  /** Flush what this process appended to the lake, then release the state store. */
  async close(): Promise<void> {
    if (!this.state) return;
    const state = await this.state;
    try {
      if (this.appended > 0) {
        const { settings, engine } = this.options;
        const flusher = new QueryLogFlusher({ state, warehouse: openStore(settings.warehouse, storeOptionsOf(settings)), engine, scratchDir: join(settings.home, 'control', 'logs') });
        await flusher.flush();
      }
    } finally {
      if (!this.options.state) await state.close();
    }
  }

  private store(): Promise<StateStore> {
    this.state ??= this.options.state ? Promise.resolve(this.options.state) : openStateStore(this.options.settings);
    return this.state;
  }
}

export function localLogEntry(run: LocalQueryRun): QueryLogEntry {
  const error = run.error === undefined ? undefined : toPuffinError(run.error);
  return {
    id: run.queryId,
    user: run.user,
    sql: run.sql,
    status: error ? (run.cancelled ? 'cancelled' : 'failed') : 'succeeded',
    submittedAt: run.submittedAt,
    durationMs: Date.now() - run.submittedAt,
    bytesScanned: run.outcome?.stats.bytesScanned ?? 0,
    fragments: run.outcome?.stats.fragments ?? 0,
    cacheHit: false,
    error: error ? `${error.code}: ${error.message}` : null,
  };
}
