// Shared pieces of the shuffle tests (local store here, S3 through s3rver in
// test/integration/shuffle-s3.test.ts): a table of many types, an ObjectStore wrapper that
// counts calls, and a producer -> consumer round trip over real DuckDB.

import type { DuckDBConnection } from '@duckdb/node-api';
import assert from 'node:assert/strict';
import { runQuery } from '../../../runtime/engine/engine.ts';
import { sqlIdent } from '../../../runtime/sql/quote.ts';
import type { ObjectInfo, ObjectStore, PutOptions } from '../../../runtime/storage/object-store.ts';
import {
  readShufflePartition, writeShuffle,
  type ShuffleIndex, type ShuffleKeyLayout, type ShufflePartitioning, type ShuffleReadResult,
} from '../../../runtime/exec/shuffle.ts';

/** Counts every call to the wrapped store (our own interface, so this is exact). */
export class CountingStore implements ObjectStore {
  calls = { get: 0, getRange: 0, put: 0, list: 0, head: 0, delete: 0 };
  rangeBytes = 0;
  constructor(private readonly inner: ObjectStore) {}
  get url(): string {
    return this.inner.url;
  }
  reset(): void {
    for (const k of Object.keys(this.calls) as (keyof CountingStore['calls'])[]) this.calls[k] = 0;
    this.rangeBytes = 0;
  }
  get(key: string): Promise<Uint8Array> {
    this.calls.get += 1;
    return this.inner.get(key);
  }
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    this.calls.getRange += 1;
    const bytes = await this.inner.getRange(key, offset, length);
    this.rangeBytes += bytes.byteLength;
    return bytes;
  }
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    this.calls.put += 1;
    return this.inner.put(key, body, options);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    this.calls.list += 1;
    return this.inner.list(prefix);
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    this.calls.head += 1;
    return this.inner.head(key);
  }
  delete(key: string): Promise<void> {
    this.calls.delete += 1;
    return this.inner.delete(key);
  }
}

/**
 * `rows` rows of many types: integers, decimals, HUGEINT, unicode strings, dates,
 * timestamps (with and without time zone, nanoseconds), intervals with microseconds, TIME
 * WITH TIME ZONE, booleans, blobs, UUIDs, ENUM, lists, structs, maps, fixed arrays, NULLs,
 * and a column name with quotes, a comma, a dot and non-ASCII letters.
 */
export function manyTypesSql(rows: number): string {
  return `SELECT
    i::INTEGER AS id,
    (i % 97)::INTEGER AS k_int,
    CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 50)::BIGINT END AS k_null,
    CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 1.25)::DECIMAL(18,2) END AS dec,
    (i::DECIMAL(38,10) / 7)::DECIMAL(38,10) AS dec38,
    CASE WHEN i % 17 = 0 THEN NULL ELSE i::HUGEINT * 10000000000000000000000000::HUGEINT + 1 END AS huge,
    CASE WHEN i % 5 = 0 THEN NULL ELSE 'ü-' || i || '-日本語-🦆-''q"' END AS s,
    DATE '2020-01-01' + (i % 1000)::INTEGER AS d,
    TIMESTAMP '2020-01-01 00:00:00.000001' + to_seconds(i) AS ts,
    TIMESTAMPTZ '2021-06-01 12:00:00.123456+00' + to_microseconds(i) AS tstz,
    '2020-01-01 00:00:00.123456789'::TIMESTAMP_NS AS tsns,
    to_months(i % 3) + to_days(i % 5) + to_microseconds(i) AS iv,
    '01:02:03.000001+05'::TIMETZ AS ttz,
    (i % 2 = 0) AS b,
    CASE WHEN i % 3 = 0 THEN NULL ELSE ('\\x00\\xFF' || i)::BLOB END AS bl,
    ('00000000-0000-0000-0000-' || lpad(i::VARCHAR, 12, '0'))::UUID AS u,
    (['red', 'green', 'blue'][i % 3 + 1])::ENUM('red', 'green', 'blue') AS e,
    CASE WHEN i % 19 = 0 THEN NULL ELSE [i, NULL, i + 1] END AS lst,
    {'a': i, 'b': 's' || i, 'h': i::HUGEINT} AS st,
    MAP {'k' || (i % 4): [to_microseconds(i)]} AS m,
    [i, i * 2]::INTEGER[2] AS arr,
    CASE WHEN i % 23 = 0 THEN NULL ELSE i / 3.0 END::DOUBLE AS dbl,
    i % 4 AS "we""ird ü, name.x"
  FROM range(${rows}) r(i)`;
}

export interface RoundTrip {
  indexes: ShuffleIndex[];
  reads: ShuffleReadResult[];
  /** SQL of every partition's rows with a column p: the partition it came from. */
  unionSql: string;
  puts: number;
  release(): Promise<void>;
}

/**
 * Every source SQL in `producers` written as one producer task, then every partition read
 * back as view `<viewPrefix><p>` on `conn`.
 */
export async function roundTrip(args: {
  conn: DuckDBConnection;
  store: ObjectStore;
  producers: string[];
  partitioning: ShufflePartitioning;
  scratchDir: string;
  queryId?: string;
  stageId?: string;
  inlineLimitBytes?: number;
  viewPrefix?: string;
  layout?: ShuffleKeyLayout;
  sortByPartition?: boolean | 'auto';
}): Promise<RoundTrip> {
  const queryId = args.queryId ?? 'q1';
  const stageId = args.stageId ?? 's1';
  const viewPrefix = args.viewPrefix ?? 'part_';
  const indexes: ShuffleIndex[] = [];
  let puts = 0;
  for (const [i, sourceSql] of args.producers.entries()) {
    const written = await writeShuffle({
      conn: args.conn, store: args.store, sourceSql, partitioning: args.partitioning, queryId, stageId, taskId: `t${i}`,
      scratchDir: args.scratchDir, inlineLimitBytes: args.inlineLimitBytes ?? 0, ...args.layout,
      ...(args.sortByPartition !== undefined ? { sortByPartition: args.sortByPartition } : {}),
    });
    // What the coordinator receives has crossed a process boundary as JSON.
    indexes.push(JSON.parse(JSON.stringify(written.index)) as ShuffleIndex);
    puts += written.puts;
  }
  const partitions = indexes[0].partitions;
  const reads: ShuffleReadResult[] = [];
  for (let p = 0; p < partitions; p++) {
    reads.push(await readShufflePartition({
      conn: args.conn, store: args.store, sources: { indexes, partition: p }, viewName: `${viewPrefix}${p}`, scratchDir: args.scratchDir, concurrency: 4,
      // Exact GET counts: no hedged duplicates on a loaded test machine (hedging has its own test).
      hedge: false,
    }));
  }
  const unionSql = reads.map((r, p) => `SELECT *, ${p} AS p FROM ${sqlIdent(r.view)}`).join(' UNION ALL ');
  return {
    indexes, reads, unionSql, puts,
    async release() {
      for (const r of reads) await r.release();
    },
  };
}

export async function scalar(conn: DuckDBConnection, sql: string): Promise<unknown> {
  return (await runQuery(conn, sql)).rows[0]?.[0];
}

/** The multiset of `a`'s rows equals `b`'s. */
export async function assertSameRows(conn: DuckDBConnection, a: string, b: string): Promise<void> {
  const count = async (sql: string) => Number(await scalar(conn, `SELECT count(*) FROM (${sql})`));
  assert.equal(await count(a), await count(b), 'row counts');
  assert.equal(await count(`(${a}) EXCEPT ALL (${b})`), 0, 'rows of the input missing from the output');
  assert.equal(await count(`(${b}) EXCEPT ALL (${a})`), 0, 'rows of the output not in the input');
}
