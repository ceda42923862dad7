// The producer side of a shuffle: one task's output rows, partitioned by a SQL expression
// (hash or range, see shuffle-partition.ts), written by DuckDB as one Parquet piece per
// non-empty partition (a single COPY ... PARTITION_BY), concatenated in partition order
// into ONE object per task and uploaded through the ObjectStore; or, when the whole output
// is under the inline limit, returned inline in the index instead.

import type { DuckDBConnection } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Column } from '../catalog/types.ts';
import { runQuery } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlIdent, sqlString, sqlStringList } from '../sql/quote.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import {
  SHUFFLE_FORMAT, assertShuffleable, shuffleObjectKey, travelsAsText,
  type ShuffleIndex, type ShuffleKeyLayout, type ShuffleLocation,
} from './shuffle-index.ts';
import {
  PARTITION_COLUMN, hashPartitionSql, rangePartitionSql, sortKeySql,
  type NullKeys, type ShuffleKey, type SortKey,
} from './shuffle-partition.ts';

export type ShufflePartitioning =
  | { kind: 'hash'; keys: ShuffleKey[]; count: number; nulls?: NullKeys }
  | { kind: 'range'; keys: SortKey[]; bounds: unknown[][] }
  /** A ready partition id expression over the source's columns, in 0..count-1. */
  | { kind: 'expr'; sql: string; count: number };

/** Default inline limit: outputs up to 256 KiB travel in the task result, not through S3. */
export const DEFAULT_SHUFFLE_INLINE_LIMIT = 256 * 1024;

export interface ShuffleWriteOptions extends ShuffleKeyLayout {
  /** A connection allowed to read and write scratchDir (a sandboxed worker's is fine). */
  conn: DuckDBConnection;
  /** The shuffle store; the object's key is relative to its root. */
  store: ObjectStore;
  /** The task's output: any relation SQL (a SELECT over its input views). */
  sourceSql: string;
  partitioning: ShufflePartitioning;
  queryId: string;
  stageId: string;
  taskId: string;
  /** Default 0. Recorded in the key so attempts never collide. */
  attempt?: number;
  /** Local directory for the pieces while they are written; removed afterwards. */
  scratchDir: string;
  /** Outputs of at most this many bytes are returned inline; default 256 KiB. */
  inlineLimitBytes?: number;
  /** The source's columns with their declared types; default: DuckDB's DESCRIBE of sourceSql. */
  columns?: Column[];
  /**
   * Parquet compression of the pieces; default zstd. Measured on 1M rows of 6 columns
   * (DuckDB 1.5.6, 2 threads): snappy 23.6 MB, zstd 10.9 MB, uncompressed 47.3 MB, with write
   * times within noise of each other (~2.7 s on a loaded 2-core machine). A Lambda moves
   * ~78 MB/s, so the smaller pieces win.
   */
  compression?: 'snappy' | 'zstd' | 'lz4_raw' | 'uncompressed';
  /**
   * Sort the rows by partition before writing. DuckDB's partitioned writer keeps at most
   * `partitioned_write_max_open_files` (100) files open; past that it closes and reopens
   * them, so unsorted rows give several files per partition and a slower write. Sorted
   * rows fill one partition after another. Measured (DuckDB 1.5.6, 2M rows, 2 threads, a
   * loaded machine): 1000 partitions 13.7 s unsorted (3,397 files) vs 9.8 s sorted (1,011);
   * 8-64 partitions 2.1-2.5 s unsorted vs 4.2-5.0 s sorted. 'auto' (default) sorts when the
   * partition count is above the open-file limit.
   */
  sortByPartition?: boolean | 'auto';
  signal?: AbortSignal;
}

export interface ShuffleWriteResult {
  index: ShuffleIndex;
  /** Objects written: 0 (inline) or 1. */
  puts: number;
  durationMs: number;
}

/** The source's columns as DuckDB types them. */
export async function describeSql(conn: DuckDBConnection, sourceSql: string): Promise<Column[]> {
  const described = await runQuery(conn, `DESCRIBE SELECT * FROM (${sourceSql}) AS __puffin_src`);
  return described.rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
}

export async function writeShuffle(options: ShuffleWriteOptions): Promise<ShuffleWriteResult> {
  const started = Date.now();
  const { conn, store, sourceSql, partitioning, queryId, stageId, taskId, signal } = options;
  const attempt = options.attempt ?? 0;
  const nonce = randomBytes(6).toString('hex');
  // Validates the ids before anything is written.
  const key = shuffleObjectKey({ queryId, stageId, taskId, attempt }, nonce, options);
  const inlineLimit = options.inlineLimitBytes ?? DEFAULT_SHUFFLE_INLINE_LIMIT;
  const columns = options.columns ?? await describeSql(conn, sourceSql);
  assertShuffleable(columns);
  if (columns.some((c) => c.name.toLowerCase() === PARTITION_COLUMN)) {
    throw new PuffinError('internal', `a shuffled relation may not have a column named ${PARTITION_COLUMN}`);
  }
  const count = partitioning.kind === 'range' ? partitioning.bounds.length + 1 : partitioning.count;
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) throw new PuffinError('internal', `partition count must be an integer in 1..1000000, got ${count}`);
  const duckdb = String((await runQuery(conn, 'SELECT version()')).rows[0][0]);

  const dir = join(options.scratchDir, `shuffle-w-${queryId}-${taskId}-${nonce}`);
  await mkdir(options.scratchDir, { recursive: true });
  const interrupt = () => conn.interrupt();
  signal?.addEventListener('abort', interrupt, { once: true });
  try {
    if (signal?.aborted) throw signal.reason;
    let sorted = options.sortByPartition ?? 'auto';
    if (sorted === 'auto') {
      const limit = Number((await runQuery(conn, `SELECT current_setting('partitioned_write_max_open_files')`)).rows[0][0]);
      sorted = count > (Number.isFinite(limit) ? limit : 100);
    }
    await runQuery(conn, copySql(sourceSql, columns, partitioning, dir, options.compression ?? 'zstd', sorted));
    const pieces = await collectPieces(conn, dir, count);
    if (signal?.aborted) throw signal.reason;

    const offsets: number[] = new Array(count).fill(0);
    const lengths: number[] = new Array(count).fill(0);
    const rows: number[] = new Array(count).fill(0);
    const files: Record<string, number[]> = {};
    let total = 0;
    for (let p = 0; p < count; p++) {
      offsets[p] = total;
      const piece = pieces.get(p);
      if (!piece) continue;
      for (const f of piece) rows[p] += f.rows;
      lengths[p] = piece.reduce((s, f) => s + f.size, 0);
      if (piece.length > 1) files[String(p)] = piece.map((f) => f.size);
      total += lengths[p];
    }
    // The object is assembled in one buffer of its final size (the ObjectStore takes whole
    // bodies): peak memory is the output once, not the pieces plus their concatenation.
    const body = Buffer.allocUnsafe(total);
    let at = 0;
    for (let p = 0; p < count; p++) {
      for (const f of pieces.get(p) ?? []) {
        const fh = await open(f.path, 'r');
        try {
          let got = 0;
          while (got < f.size) {
            const { bytesRead } = await fh.read(body, at + got, f.size - got, got);
            if (bytesRead === 0) throw new PuffinError('internal', `shuffle piece ${f.path} shrank while being read`);
            got += bytesRead;
          }
        } finally {
          await fh.close();
        }
        at += f.size;
      }
    }
    let location: ShuffleLocation;
    let puts = 0;
    if (total === 0 || total <= inlineLimit) {
      location = { kind: 'inline', base64: body.toString('base64') };
    } else {
      await store.put(key, body);
      puts = 1;
      location = { kind: 'object', key, size: total };
      if (signal?.aborted) {
        // Nobody will read this attempt's output any more.
        await store.delete(key).catch(() => {});
        throw signal.reason;
      }
    }
    const index: ShuffleIndex = {
      format: SHUFFLE_FORMAT, queryId, stageId, taskId, attempt, duckdb, columns: columns.map((c) => ({ name: c.name, type: c.type })),
      partitions: count, location, offsets, lengths, rows,
      ...(Object.keys(files).length ? { files } : {}),
      totalRows: rows.reduce((s, n) => s + n, 0), totalBytes: total,
    };
    return { index, puts, durationMs: Date.now() - started };
  } catch (err) {
    throw signal?.aborted ? signal.reason : toPuffinError(err);
  } finally {
    signal?.removeEventListener('abort', interrupt);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The zstd level of shuffle pieces: 1, not DuckDB's default 3. Measured (DuckDB 1.5.6, 1
 * thread, 2-core AMD EPYC, 3 runs): TPC-H SF 1 orders' 750k filtered (o_custkey, o_orderkey)
 * rows into 2 partitions took 257 ms at level 3 and 171 ms at level 1 for 2.7 and 2.8 MB
 * (the scan alone 86 ms); 1M lineitem rows of 6 columns into 8 partitions took the same
 * time at either level (~700 ms), 19.5 MB against 20.1 MB.
 */
const ZSTD_LEVEL = 1;

/** The COPY that writes every partition of the source as Parquet under dir/__puffin_pid=<p>/. */
function copySql(sourceSql: string, columns: readonly Column[], partitioning: ShufflePartitioning, dir: string, compression: string, sorted: boolean): string {
  if (!['snappy', 'zstd', 'lz4_raw', 'uncompressed'].includes(compression)) {
    throw new PuffinError('bad_request', `unknown shuffle compression ${JSON.stringify(compression)}`);
  }
  // Types DuckDB's Parquet writer would change travel as their exact text (see travelsAsText).
  const select = columns.map((c) => (travelsAsText(c.type) ? `CAST(${sqlIdent(c.name)} AS VARCHAR) AS ${sqlIdent(c.name)}` : sqlIdent(c.name)));
  let from = `(${sourceSql}) AS __puffin_src`;
  let pid: string;
  if (partitioning.kind === 'hash') pid = hashPartitionSql(partitioning.keys, partitioning.count, partitioning.nulls);
  else if (partitioning.kind === 'expr') pid = partitioning.sql;
  else {
    // The row's sort key is computed once, then compared down the tree.
    const sk = '__puffin_sk';
    from = `(SELECT *, ${sortKeySql(partitioning.keys)} AS ${sk} FROM ${from}) AS __puffin_keyed`;
    pid = rangePartitionSql(partitioning.keys, partitioning.bounds, sk);
  }
  // PARTITION_BY leaves the partition column out of the files.
  const order = sorted ? ` ORDER BY ${PARTITION_COLUMN}` : '';
  return `COPY (SELECT ${select.join(', ')}, CAST(${pid} AS INTEGER) AS ${PARTITION_COLUMN} FROM ${from}${order}) `
    + `TO ${sqlString(dir)} (FORMAT parquet, PARTITION_BY (${PARTITION_COLUMN}), COMPRESSION ${compression}${compression === 'zstd' ? `, COMPRESSION_LEVEL ${ZSTD_LEVEL}` : ''})`;
}

interface PieceFile {
  path: string;
  rows: number;
  size: number;
}

/** The files DuckDB wrote per partition (usually one; more past 100 open partitions), with row counts. */
async function collectPieces(conn: DuckDBConnection, dir: string, count: number): Promise<Map<number, PieceFile[]>> {
  const pieces = new Map<number, PieceFile[]>();
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return pieces; // no rows at all
    throw err;
  }
  const paths: string[] = [];
  for (const entry of entries) {
    const m = /^__puffin_pid=(-?\d+)$/.exec(entry);
    if (!m) throw new PuffinError('internal', `unexpected entry ${entry} in a shuffle write directory`);
    const p = Number(m[1]);
    if (!Number.isInteger(p) || p < 0 || p >= count) throw new PuffinError('internal', `partition id ${m[1]} is outside 0..${count - 1}`);
    const names = (await readdir(join(dir, entry))).filter((n) => n.endsWith('.parquet'));
    names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const list: PieceFile[] = [];
    for (const n of names) {
      const path = join(dir, entry, n);
      list.push({ path, rows: 0, size: (await stat(path)).size });
    }
    pieces.set(p, list);
    paths.push(...list.map((f) => f.path));
  }
  if (paths.length) {
    const meta = await runQuery(conn, `SELECT file_name, num_rows FROM parquet_file_metadata(${sqlStringList(paths)})`);
    const rowsOf = new Map(meta.rows.map((r) => [String(r[0]), Number(r[1])]));
    for (const list of pieces.values()) {
      for (const f of list) {
        const n = rowsOf.get(f.path);
        if (n === undefined) throw new PuffinError('internal', `no Parquet metadata for ${f.path}`);
        f.rows = n;
      }
    }
  }
  return pieces;
}
