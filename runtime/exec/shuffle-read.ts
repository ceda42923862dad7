// The consumer side of a shuffle, and its cleanup. A consumer task of partition p fetches
// p's piece of every producer (one ranged GET each, empty pieces skipped, inline pieces
// taken from the index) into local files, a bounded number at a time, and exposes them as
// one temporary DuckDB view with the declared column types.

import type { DuckDBConnection } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Column } from '../catalog/types.ts';
import { runQuery } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlIdent, sqlStringList } from '../sql/quote.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { readColumnSql } from '../sql/read-cast.ts';
import {
  assertShuffleable, partitionSources, queryShufflePrefixes,
  type PartitionSource, type ShuffleIndex, type ShuffleKeyLayout,
} from './shuffle-index.ts';

/**
 * Shuffle pieces one reader (a consumer task, or a combiner) GETs at once. A consumer of a
 * large stage reads one small piece from each of many producer objects, so its time is first
 * bytes in rounds of this many (about 100 ms each on S3), not bandwidth: 64 in flight make a
 * read of 55 pieces (a combined 3,000 x 3,000 shuffle) one round instead of four. The S3
 * client's sockets (storage/s3-store.ts) leave room for it beside the table fetches.
 */
export const DEFAULT_SHUFFLE_GET_CONCURRENCY = 64;

export interface ShuffleReadOptions {
  /** The connection the view is created on (temporary views are private to it). */
  conn: DuckDBConnection;
  store: ObjectStore;
  /** This partition's pieces (partitionSources(indexes, p)), or every producer's index and the partition. */
  sources: PartitionSource[] | { indexes: ShuffleIndex[]; partition: number };
  /** The declared columns; required with `sources` as a list (an empty partition has no file to tell). */
  columns?: Column[];
  /** Name of the temporary view to create. */
  viewName: string;
  /** Local directory DuckDB may read, for the fetched pieces. */
  scratchDir: string;
  /** GETs in flight at once; default DEFAULT_SHUFFLE_GET_CONCURRENCY. */
  concurrency?: number;
  /**
   * Straggler mitigation for reads: a GET still running past its threshold gets a duplicate,
   * and the first to answer wins (Starling's read hedging). The threshold is `factor` times
   * the median of this read's finished GETs once `minSamples` have finished (never below
   * `minMs`), `initialMs` before that. Default on: { factor: 4, minMs: 250, initialMs: 2000,
   * minSamples: 5 }; `false` turns it off.
   */
  hedge?: false | Partial<HedgeOptions>;
  signal?: AbortSignal;
}

export interface HedgeOptions {
  factor: number;
  minMs: number;
  initialMs: number;
  minSamples: number;
}

const DEFAULT_HEDGE: HedgeOptions = { factor: 4, minMs: 250, initialMs: 2000, minSamples: 5 };

export interface ShuffleReadResult {
  view: string;
  /** Local Parquet files behind the view; they live until release(). */
  files: string[];
  /** Ranged GETs issued: one per non-empty stored piece, plus hedges. */
  gets: number;
  /** Duplicate GETs started for stragglers, and how many of them answered first. */
  hedgedGets: number;
  hedgeWins: number;
  /** Bytes fetched through those GETs. */
  bytesRead: number;
  /** Pieces (and their bytes) taken from inline indexes instead. */
  inlinePieces: number;
  inlineBytes: number;
  /** Rows of the partition, from the indexes. */
  rows: number;
  durationMs: number;
  /** Drop the view (if the connection is still open) and delete the local files. */
  release(): Promise<void>;
}

export async function readShufflePartition(options: ShuffleReadOptions): Promise<ShuffleReadResult> {
  const started = Date.now();
  const { conn, store, viewName, signal } = options;
  let sources: PartitionSource[];
  let columns = options.columns;
  if (Array.isArray(options.sources)) {
    sources = options.sources;
  } else {
    sources = partitionSources(options.sources.indexes, options.sources.partition);
    columns ??= options.sources.indexes[0]?.columns;
  }
  if (!columns?.length) throw new PuffinError('internal', `shuffle view ${viewName}: the declared columns are unknown`);
  assertShuffleable(columns);
  const concurrency = options.concurrency ?? DEFAULT_SHUFFLE_GET_CONCURRENCY;
  const hedge = options.hedge === false ? undefined : { ...DEFAULT_HEDGE, ...options.hedge };
  const durations: number[] = [];
  let hedgedGets = 0;
  let hedgeWins = 0;
  const thresholdMs = (): number => {
    if (!hedge) return Number.POSITIVE_INFINITY;
    if (durations.length < hedge.minSamples) return hedge.initialMs;
    const sorted = [...durations].sort((a, b) => a - b);
    return Math.max(hedge.minMs, hedge.factor * sorted[Math.floor(sorted.length / 2)]);
  };
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new PuffinError('bad_request', `concurrency must be a positive integer, got ${concurrency}`);

  const dir = join(options.scratchDir, `shuffle-r-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  let created = false;
  const release = async () => {
    if (created) {
      created = false;
      try {
        await conn.run(`DROP VIEW IF EXISTS ${sqlIdent(viewName)}`);
      } catch {
        // The connection may be closed already; the view went with it.
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  let gets = 0;
  let bytesRead = 0;
  let inlinePieces = 0;
  let inlineBytes = 0;
  const fileLists: string[][] = new Array(sources.length);
  try {
    await forEachLimit(sources, concurrency, signal, async (source, i) => {
      if (source.length === 0) {
        fileLists[i] = [];
        return;
      }
      let bytes: Uint8Array;
      if (source.location.kind === 'inline') {
        bytes = Buffer.from(source.location.base64, 'base64').subarray(source.offset, source.offset + source.length);
        inlinePieces += 1;
        inlineBytes += bytes.byteLength;
      } else {
        gets += 1;
        const t0 = Date.now();
        const got = await hedgedGetRange(store, source.location.key, source.offset, source.length, thresholdMs(), () => {
          gets += 1;
          hedgedGets += 1;
        });
        if (got.hedgeWon) hedgeWins += 1;
        durations.push(Date.now() - t0);
        bytes = got.bytes;
        bytesRead += bytes.byteLength;
      }
      if (bytes.byteLength !== source.length) {
        throw new PuffinError('internal', `shuffle piece of task ${source.taskId}: expected ${source.length} bytes, got ${bytes.byteLength}`);
      }
      const parts = source.files.length ? source.files : [source.length];
      const paths: string[] = [];
      let at = 0;
      for (let j = 0; j < parts.length; j++) {
        const path = join(dir, `${i}-${j}.parquet`);
        await writeFile(path, bytes.subarray(at, at + parts[j]));
        at += parts[j];
        paths.push(path);
      }
      if (at !== source.length) throw new PuffinError('internal', `shuffle piece of task ${source.taskId}: file lengths do not add up`);
      fileLists[i] = paths;
    });
    if (signal?.aborted) throw signal.reason;
    const files = fileLists.flat();
    await runQuery(conn, viewSql(viewName, columns, files));
    created = true;
    return {
      view: viewName, files, gets, hedgedGets, hedgeWins, bytesRead, inlinePieces, inlineBytes,
      rows: sources.reduce((s, x) => s + x.rows, 0), durationMs: Date.now() - started, release,
    };
  } catch (err) {
    await release();
    throw signal?.aborted ? signal.reason : toPuffinError(err);
  }
}

/**
 * The view over the fetched pieces, each column cast to its declared type (columns that
 * travel as text, and ENUM, BIT, ARRAY, ..., which Parquet gives back as their base types,
 * come back as declared). No files: a typed empty view. Hive partitioning is off so that a
 * 'name=value' segment in the scratch path never adds a column.
 */
export function viewSql(viewName: string, columns: readonly Column[], files: readonly string[]): string {
  const body = files.length
    ? `SELECT ${columns.map(readColumnSql).join(', ')} FROM read_parquet(${sqlStringList(files)}, hive_partitioning = false)`
    : `SELECT ${columns.map((c) => `CAST(NULL AS ${c.type}) AS ${sqlIdent(c.name)}`).join(', ')} WHERE false`;
  return `CREATE TEMP VIEW ${sqlIdent(viewName)} AS ${body}`;
}

/**
 * One ranged GET; if it has not answered after `afterMs`, a second identical GET races it.
 * The first success wins; a failure counts only once both have failed. The loser is left to
 * finish on its own (the ObjectStore has no abort) and its bytes are dropped.
 */
export async function hedgedGetRange(
  store: ObjectStore, key: string, offset: number, length: number, afterMs: number, onHedge: () => void,
): Promise<{ bytes: Uint8Array; hedgeWon: boolean }> {
  if (!Number.isFinite(afterMs)) return { bytes: await store.getRange(key, offset, length), hedgeWon: false };
  return new Promise((resolve, reject) => {
    let done = false;
    let running = 1;
    let lastErr: unknown;
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      settle();
    };
    // A failure settles the GET only when no copy is left running: one that fails before its
    // hedge is due fails at once, as an unhedged GET would.
    const fail = (err: unknown) => {
      lastErr = err;
      running -= 1;
      if (running === 0) finish(() => reject(lastErr));
    };
    const timer = setTimeout(() => {
      if (done) return;
      running += 1;
      onHedge();
      store.getRange(key, offset, length).then((bytes) => finish(() => resolve({ bytes, hedgeWon: true })), fail);
    }, afterMs);
    store.getRange(key, offset, length).then((bytes) => finish(() => resolve({ bytes, hedgeWon: false })), fail);
  });
}

/** Run `fn` over items with at most `limit` at once; the first failure stops new starts and is thrown. */
export async function forEachLimit<T>(items: readonly T[], limit: number, signal: AbortSignal | undefined, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const lane = async () => {
    while (!failed && next < items.length) {
      if (signal?.aborted) {
        failed ??= { err: signal.reason };
        return;
      }
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed) throw failed.err;
}

// ---- cleanup -------------------------------------------------------------------------

export interface ShuffleCleanupResult {
  /** LIST calls made (paged listings count once per prefix). */
  lists: number;
  deleted: number;
}

/**
 * Delete every shuffle object of a query: list each spread prefix `<spread>/<queryId>/` and
 * delete what is there. Finds objects of attempts that never reported (a cancelled query,
 * a lost producer), which the indexes do not know. Used when a query ends or is cancelled;
 * the bucket's lifecycle rule remains the backstop for a coordinator that dies first.
 * Without `tasks` that is 16^prefixDigits LISTs (256 by default: ~0.2 s on S3 at 32 at a
 * time); with the plan's producer tasks, one LIST per distinct spread they hash to.
 */
export async function deleteQueryShuffle(
  store: ObjectStore,
  queryId: string,
  options: ShuffleKeyLayout & { concurrency?: number; tasks?: readonly { stageId: string; taskId: string }[] } = {},
): Promise<ShuffleCleanupResult> {
  const prefixes = queryShufflePrefixes(queryId, options);
  const concurrency = options.concurrency ?? 32;
  const keys: string[] = [];
  await forEachLimit(prefixes, concurrency, undefined, async (prefix) => {
    for (const o of await store.list(prefix)) keys.push(o.key);
  });
  await forEachLimit(keys, concurrency, undefined, (key) => store.delete(key));
  return { lists: prefixes.length, deleted: keys.length };
}

/** Delete the objects the given indexes name (no LIST): e.g. a stage's output once its consumers are done. */
export async function deleteShuffleObjects(store: ObjectStore, indexes: readonly ShuffleIndex[], concurrency = 32): Promise<number> {
  const keys = [...new Set(indexes.flatMap((i) => (i.location.kind === 'object' ? [i.location.key] : [])))];
  await forEachLimit(keys, concurrency, undefined, (key) => store.delete(key));
  return keys.length;
}
