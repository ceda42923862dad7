// The query log on the lake: entries wait in the state store's log stream until a flusher
// writes them as one Parquet file under `_puffindb/logs/` on the warehouse, and the table
// `puffindb.query_log` reads those files with SQL like any other table.
//
// One process flushes at a time: the flusher holds a lock with a lease, renews it before it
// writes, and trims the stream only after the file is stored. A flusher that dies between
// the write and the trim leaves entries that the next flush writes again (at-least-once);
// file names carry the first and last query id, so that flush overwrites the same file
// when no entry arrived in between.

import { createHash } from 'node:crypto';
import type { Catalog, Column, DataFile, TableSnapshot } from '../catalog/types.ts';
import type { Engine, JsonValue } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { QueryLogEntry, StateStore } from '../state/state-store.ts';
import { joinUrl } from '../storage/open.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { writeParquet } from './parquet-writer.ts';

/** The name the planner resolves `puffindb.query_log` to. */
export const QUERY_LOG_TABLE = 'puffindb.query_log';
/** Where flushed log files live, relative to the warehouse root. */
export const QUERY_LOG_PREFIX = '_puffindb/logs/';

export const QUERY_LOG_COLUMNS: readonly Column[] = [
  { name: 'id', type: 'VARCHAR' },
  { name: 'user', type: 'VARCHAR' },
  { name: 'sql', type: 'VARCHAR' },
  { name: 'status', type: 'VARCHAR' },
  { name: 'submitted_at', type: 'TIMESTAMP' },
  { name: 'duration_ms', type: 'BIGINT' },
  { name: 'bytes_scanned', type: 'BIGINT' },
  { name: 'fragments', type: 'INTEGER' },
  { name: 'cache_hit', type: 'BOOLEAN' },
  { name: 'error', type: 'VARCHAR' },
];

const FLUSH_LOCK = 'puffindb:query-log-flush';
/** '<first query id>-<last query id>-<rows>.parquet' */
const LOG_FILE = /^([0-9A-Za-z]+)-([0-9A-Za-z]+)-(\d+)\.parquet$/;

function logRow(entry: QueryLogEntry): JsonValue[] {
  // TIMESTAMP text without a zone: the log's times are UTC.
  const submitted = new Date(entry.submittedAt).toISOString().replace('T', ' ').replace('Z', '');
  return [entry.id, entry.user, entry.sql, entry.status, submitted, Math.round(entry.durationMs), entry.bytesScanned, entry.fragments, entry.cacheHit, entry.error];
}

export interface QueryLogFlusherOptions {
  state: StateStore;
  /** The warehouse's object store; files go under QUERY_LOG_PREFIX. */
  warehouse: ObjectStore;
  /** Writes the Parquet files; must be allowed to use scratchDir. */
  engine: Engine;
  scratchDir: string;
  /** Entries per file. Default 10,000. */
  batchSize?: number;
  /** Lease of the flush lock. Default 60 s. */
  lockTtlMs?: number;
  /** Told about failed interval flushes, which have no caller to throw to. */
  onError?: (err: unknown) => void;
}

export interface FlushReport {
  /** False when another process held the flush lock. */
  flushed: boolean;
  entries: number;
  files: string[];
}

export class QueryLogFlusher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<FlushReport> | undefined;

  constructor(private readonly options: QueryLogFlusherOptions) {}

  /** Write every entry now in the stream to the lake, unless another process is flushing. */
  flush(): Promise<FlushReport> {
    // One flush at a time in this process too; a second caller waits for the first.
    this.running ??= this.flushOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Flush every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    if (this.timer || intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.flush().catch((err: unknown) => this.options.onError?.(err));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stop the interval and flush what is left (the shutdown flush). */
  async stop(): Promise<FlushReport> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.flush();
  }

  private async flushOnce(): Promise<FlushReport> {
    const { state, warehouse } = this.options;
    const batchSize = this.options.batchSize ?? 10_000;
    const ttl = this.options.lockTtlMs ?? 60_000;
    let lease = await state.acquireLock(FLUSH_LOCK, ttl);
    if (!lease) return { flushed: false, entries: 0, files: [] };
    const report: FlushReport = { flushed: true, entries: 0, files: [] };
    try {
      for (;;) {
        const batch = await state.readLog(null, batchSize);
        if (batch.items.length === 0 || batch.cursor === null) break;
        const bytes = await writeParquet(this.options.engine, this.options.scratchDir, QUERY_LOG_COLUMNS, batch.items.map(logRow));
        // Writing may have taken a while: only a holder of the lock may store and trim.
        lease = await state.renewLock(lease, ttl);
        if (!lease) throw new PuffinError('conflict', 'the query log flush lock expired while a file was being written; the entries stay in the stream for the next flush');
        const first = batch.items[0].id;
        const last = batch.items[batch.items.length - 1].id;
        const key = `${QUERY_LOG_PREFIX}${first}-${last}-${batch.items.length}.parquet`;
        await warehouse.put(key, bytes, { contentType: 'application/vnd.apache.parquet' });
        await state.trimLog(batch.cursor);
        report.entries += batch.items.length;
        report.files.push(key);
        if (batch.items.length < batchSize) break;
      }
      return report;
    } finally {
      if (lease) await state.releaseLock(lease).catch(() => false);
    }
  }
}

/**
 * `base` plus the table `puffindb.query_log` over the flushed log files. Its snapshot id
 * changes whenever a file is added, so cached results over it are not reused across flushes.
 */
export function withQueryLogTable(base: Catalog, warehouse: ObjectStore): Catalog {
  return {
    async listTables() {
      return [...(await base.listTables()), QUERY_LOG_TABLE].sort();
    },
    async getTable(name) {
      if (name.toLowerCase() !== QUERY_LOG_TABLE) return base.getTable(name);
      return queryLogSnapshot(warehouse);
    },
    // The base catalog's other capabilities pass through: time travel and Iceberg writes.
    ...(base.getTableAt ? { getTableAt: base.getTableAt.bind(base) } : {}),
    ...(base.pointers ? { pointers: base.pointers } : {}),
  };
}

async function queryLogSnapshot(warehouse: ObjectStore): Promise<TableSnapshot> {
  const files: DataFile[] = [];
  for (const object of await warehouse.list(QUERY_LOG_PREFIX)) {
    const m = LOG_FILE.exec(object.key.slice(QUERY_LOG_PREFIX.length));
    // Anything else under the prefix (a partial upload, a stray file) is not part of the log.
    if (!m) continue;
    files.push({ uri: joinUrl(warehouse.url, object.key), sizeBytes: object.size, rowCount: Number(m[3]), stats: {} });
  }
  const identity = files.map((f) => `${f.uri}|${f.sizeBytes}`).join('\n');
  return {
    name: QUERY_LOG_TABLE,
    kind: 'parquet',
    // Every user's SQL text, which may carry literals a user would not show another: admin
    // information, like GET /v1/logs. A reader sees its own queries at GET /v1/queries.
    adminOnly: true,
    columns: [...QUERY_LOG_COLUMNS],
    files,
    snapshotId: createHash('sha256').update(identity).digest('hex').slice(0, 16),
  };
}
