// Partition ids as DuckDB SQL expressions: hash partitioning for joins and aggregates, range
// partitioning (sampled split points) for a distributed ORDER BY, and the sampler that
// picks the split points.

import type { DuckDBConnection } from '@duckdb/node-api';
import { runQuery, type JsonValue } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { sqlIdent, sqlString } from '../sql/quote.ts';

/** A partitioning key: an expression over the source's columns and the type it is cast to. */
export interface ShuffleKey {
  /** SQL expression over the source relation's columns, e.g. '"o_custkey"'. */
  expr: string;
  /**
   * The type both sides are cast to before hashing: for a join, the common type of the two
   * sides' keys (INTEGER 1, BIGINT 1 and DECIMAL 1.0 hash alike only once cast to one type).
   */
  type: string;
}

/**
 * Where rows with a NULL key go.
 * - 'hash' (default): NULL is hashed like a value (DuckDB's hash of NULL is one constant
 *   whatever the type), so the rows of one GROUP BY group, NULLs included, meet in one
 *   partition, and a null-safe join (IS NOT DISTINCT FROM) stays correct. In an equi-join
 *   NULL keys never match, so wherever they go each is emitted once by an outer join.
 * - 'zero': any row with a NULL in any key goes to partition 0. Deterministic and easy to
 *   reason about; concentrates NULLs in one task.
 * Neither spreads a single-key NULL-heavy input: for an equi-join the planner may filter
 *   NULL keys out of an inner join's sides before shuffling, which is always correct.
 */
export type NullKeys = 'hash' | 'zero';

export const PARTITION_COLUMN = '__puffin_pid';

/**
 * Partition id in 0..count-1 of a row: `hash(hash(CAST(k1 AS T1), CAST(k2 AS T2), ...)) % count`.
 *
 * The outer hash() re-mixes the key's hash before the modulo. The consumer's DuckDB builds
 * its join and aggregate hash tables from the same hash values, taking slots from the low
 * bits (and radix partitions and salts from the high ones); `hash % 2^k` would hand every
 * consumer keys whose low k bits are all equal, so its tables would use 1/2^k of their
 * slots. Re-mixed, the partition says nothing about any bit of the key's hash. Measured
 * (DuckDB 1.5.6, 1 thread, a loaded 2-core machine, one 3M-row partition, 5 runs): a
 * self-join took min 626 / median 1080 ms with `hash % 4` against 511 / 686 ms re-mixed,
 * and 429 / 668 against 304 / 536 ms at 16 partitions; GROUP BY showed no difference.
 *
 * DuckDB's hash() (the one its own hash joins use) is deterministic across processes and
 * machines for one DuckDB build, but DuckDB does not promise it across versions. Every
 * worker and the coordinator run the same bundled @duckdb/node-api (package-lock), and each
 * shuffle index records version() so producers of different builds are refused
 * (assertCompatible in shuffle-index.ts). hash() also treats -0.0 and 0.0 alike, and every
 * NaN alike, as equality does (checked by the tests).
 */
export function hashPartitionSql(keys: readonly ShuffleKey[], count: number, nulls: NullKeys = 'hash'): string {
  checkCount(count);
  if (keys.length === 0) throw new PuffinError('internal', 'hash partitioning needs at least one key');
  if (count === 1) return '0';
  const cast = keys.map((k) => `CAST((${k.expr}) AS ${k.type})`);
  const id = `CAST(hash(hash(${cast.join(', ')})) % ${count} AS INTEGER)`;
  if (nulls === 'hash') return id;
  return `CASE WHEN ${keys.map((k) => `(${k.expr}) IS NULL`).join(' OR ')} THEN 0 ELSE ${id} END`;
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) {
    throw new PuffinError('internal', `partition count must be an integer in 1..1000000, got ${count}`);
  }
}

// ---- range partitioning --------------------------------------------------------------

export interface SortKey extends ShuffleKey {
  descending?: boolean;
  /** Default false: NULLS LAST, DuckDB's default for both directions. */
  nullsFirst?: boolean;
}

function orderOf(k: SortKey): string {
  return `${k.descending ? 'DESC' : 'ASC'} NULLS ${k.nullsFirst ? 'FIRST' : 'LAST'}`;
}

/**
 * A BLOB whose byte order is the ORDER BY order of the keys (DuckDB's create_sort_key), so
 * that a multi-column key with mixed directions and NULL orders compares with one `>=`.
 */
export function sortKeySql(keys: readonly SortKey[]): string {
  if (keys.length === 0) throw new PuffinError('internal', 'range partitioning needs at least one key');
  return `create_sort_key(${keys.map((k) => `CAST((${k.expr}) AS ${k.type}), ${sqlString(orderOf(k))}`).join(', ')})`;
}

/** A JSON value (as DuckDB's getRowsJson gives it) as a typed SQL literal. */
export function sqlLiteral(value: unknown, type: string): string {
  if (value === null || value === undefined) return `CAST(NULL AS ${type})`;
  if (typeof value === 'object') return `CAST(CAST(${sqlString(JSON.stringify(value))} AS JSON) AS ${type})`;
  if (typeof value === 'number' && !Number.isFinite(value)) return `CAST(${sqlString(String(value))} AS ${type})`;
  return `CAST(${sqlString(String(value))} AS ${type})`;
}

/**
 * Range partition id of a row: the number of split points <= the row's key in the sort
 * order (ASC/DESC and NULLS FIRST/LAST per key), so partition 0 holds the smallest keys and
 * concatenating partitions 0..B in order gives the whole sorted output. `bounds` are B
 * rows of key values in sort order (duplicates allowed; the partitions between equal bounds
 * are empty). Evaluated as a balanced tree of CASEs over the row's sort key: log2(B+1)
 * comparisons per row. `rowSortKey` is the row's sort key SQL; pass a column that holds
 * sortKeySql(keys) to compute it once per row.
 */
export function rangePartitionSql(keys: readonly SortKey[], bounds: readonly (readonly unknown[])[], rowSortKey = sortKeySql(keys)): string {
  checkCount(bounds.length + 1);
  if (bounds.length === 0) return '0';
  const boundKeys = bounds.map((b, i) => {
    if (!Array.isArray(b) || b.length !== keys.length) throw new PuffinError('internal', `range bound ${i} must have ${keys.length} values`);
    return `create_sort_key(${keys.map((k, j) => `${sqlLiteral(b[j], k.type)}, ${sqlString(orderOf(k))}`).join(', ')})`;
  });
  // count in [lo, hi]: compare with bound index mid-1 (the mid-th bound).
  const tree = (lo: number, hi: number): string => {
    if (lo === hi) return String(lo);
    const mid = Math.floor((lo + hi + 1) / 2);
    return `CASE WHEN ${rowSortKey} >= ${boundKeys[mid - 1]} THEN ${tree(mid, hi)} ELSE ${tree(lo, mid - 1)} END`;
  };
  return `CAST(${tree(0, bounds.length)} AS INTEGER)`;
}

export interface SampleOptions {
  /** Rows kept by the reservoir sample; default 10,000 (~100 per partition at 100). */
  sampleRows?: number;
  /** REPEATABLE seed, so a retried task picks the same bounds; default 42. */
  seed?: number;
}

/**
 * partitions-1 split points for range partitioning `sourceSql` on `keys`: a reservoir
 * sample (DuckDB USING SAMPLE), sorted in the keys' order, cut at equal-count positions.
 * Returns fewer bounds only when the sample has fewer rows than partitions-1 (an empty
 * input gives none). To sample a stage distributed over tasks, run this over the union
 * of each task's sample (`sampleKeysSql` per task).
 */
export async function sampleRangeBounds(conn: DuckDBConnection, sourceSql: string, keys: readonly SortKey[], partitions: number, options: SampleOptions = {}): Promise<JsonValue[][]> {
  checkCount(partitions);
  if (partitions === 1) return [];
  const k = keys.map((_, i) => sqlIdent(`k${i}`));
  const order = keys.map((key, i) => `${k[i]} ${orderOf(key)}`).join(', ');
  const sql = `SELECT ${k.join(', ')} FROM (${sampleKeysSql(sourceSql, keys, options)}) ORDER BY ${order}`;
  const sample = (await runQuery(conn, sql)).rows;
  if (sample.length === 0) return [];
  const want = Math.min(partitions - 1, sample.length);
  const bounds: JsonValue[][] = [];
  for (let i = 1; i <= want; i++) bounds.push(sample[Math.min(sample.length - 1, Math.floor((i * sample.length) / (want + 1)))]);
  return bounds;
}

/** SQL of a reservoir sample of the keys of `sourceSql`, as columns k0, k1, ... cast to the keys' types. */
export function sampleKeysSql(sourceSql: string, keys: readonly SortKey[], options: SampleOptions = {}): string {
  const rows = options.sampleRows ?? 10_000;
  const seed = options.seed ?? 42;
  if (!Number.isSafeInteger(rows) || rows < 1) throw new PuffinError('internal', `sampleRows must be a positive integer, got ${rows}`);
  if (!Number.isSafeInteger(seed)) throw new PuffinError('internal', `seed must be an integer, got ${seed}`);
  const cols = keys.map((key, i) => `CAST((${key.expr}) AS ${key.type}) AS ${sqlIdent(`k${i}`)}`).join(', ');
  return `SELECT ${cols} FROM (${sourceSql}) AS __puffin_src USING SAMPLE reservoir(${rows} ROWS) REPEATABLE (${seed})`;
}
