// The shuffle layer over real DuckDB (sandboxed like a worker's) and the local object
// store: producer -> consumer round trips of many types, hash consistency across key
// types, skew, empty partitions, ranged GETs, inline tiering, range partitioning, cleanup,
// and the sizing rules. The same round trip against S3 is in test/integration/shuffle-s3.test.ts.

import type { DuckDBConnection } from '@duckdb/node-api';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine, runQuery } from '../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import {
  DEFAULT_SHUFFLE_GET_CONCURRENCY, coalescePartitions, decodePartitionSource, decodeShuffleIndex, joinAdjacentSources, partitionBytes, partitionSlicer, deleteQueryShuffle, deleteShuffleObjects, hashPartitionSql, partitionSources, pieceOf,
  queryShufflePrefixes, rangePartitionSql, readShufflePartition, sampleRangeBounds, shuffleGetCount,
  shuffleObjectKey, travelsAsText, writeShuffle,
  type ShuffleIndex, type SortKey,
} from '../../../runtime/exec/shuffle.ts';
import { LocalObjectStore } from '../../../runtime/storage/local-store.ts';
import { CountingStore, assertSameRows, manyTypesSql, roundTrip, scalar } from './shuffle-fixtures.ts';

let root: string;
let scratch: string;
let engine: Engine;
let conn: DuckDBConnection;
let storeCount = 0;

/** A fresh local store, wrapped to count calls. */
function freshStore(): CountingStore {
  storeCount += 1;
  return new CountingStore(new LocalObjectStore(join(root, `store-${storeCount}`)));
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'puffindb-shuffle-'));
  scratch = join(root, 'scratch');
  // Sandboxed like a worker: DuckDB may touch only the scratch directory.
  engine = await Engine.create({ threads: 2, allowedDirectories: [scratch] });
  conn = await engine.connect();
  await conn.run(`CREATE TABLE many AS ${manyTypesSql(6000)}`);
});
after(async () => {
  conn.closeSync();
  engine.close();
  await rm(root, { recursive: true, force: true });
});

/** Three producers, each a third of `table`. */
const thirds = (table: string) => [0, 1, 2].map((j) => `SELECT * FROM ${table} WHERE id % 3 = ${j}`);

describe('hash shuffle round trip (local store)', () => {
  for (const n of [1, 3, 8]) {
    test(`many types through ${n} partition(s): same multiset, each key in one partition, declared types`, async () => {
      const store = freshStore();
      const rt = await roundTrip({
        conn, store, producers: thirds('many'), scratchDir: scratch, viewPrefix: `many${n}_`,
        partitioning: { kind: 'hash', keys: [{ expr: 'k_int', type: 'BIGINT' }, { expr: 'k_null', type: 'BIGINT' }], count: n },
      });
      try {
        assert.equal(rt.puts, 3, 'one object per producer task');
        assert.equal((await store.list('')).length, 3);
        await assertSameRows(conn, 'SELECT * FROM many', `SELECT * EXCLUDE (p) FROM (${rt.unionSql})`);
        const spread = await scalar(conn, `SELECT count(*) FROM (SELECT k_int, k_null FROM (${rt.unionSql}) GROUP BY ALL HAVING count(DISTINCT p) > 1)`);
        assert.equal(Number(spread), 0, 'a key in two partitions');
        // The views have exactly the declared types, including those that travel as text.
        const declared = (await runQuery(conn, 'DESCRIBE SELECT * FROM many')).rows.map((r) => `${r[0]} ${r[1]}`);
        for (const r of rt.reads) {
          const got = (await runQuery(conn, `DESCRIBE SELECT * FROM ${r.view}`)).rows.map((row) => `${row[0]} ${row[1]}`);
          assert.deepEqual(got, declared, r.view);
        }
        // Index rows agree with the views.
        for (const [p, r] of rt.reads.entries()) {
          assert.equal(Number(await scalar(conn, `SELECT count(*) FROM ${r.view}`)), r.rows, `rows of partition ${p}`);
        }
        assert.equal(rt.indexes.reduce((s, i) => s + i.totalRows, 0), 6000);
        // One ranged GET per non-empty piece, never a whole-object GET.
        const pieces = rt.indexes.reduce((s, i) => s + i.lengths.filter((l) => l > 0).length, 0);
        assert.equal(store.calls.getRange, pieces);
        assert.equal(store.calls.get, 0);
        assert.equal(rt.reads.reduce((s, r) => s + r.gets, 0), pieces);
        assert.equal(rt.reads.reduce((s, r) => s + r.bytesRead, 0), rt.indexes.reduce((s, i) => s + i.totalBytes, 0));
        assert.equal(store.rangeBytes, rt.indexes.reduce((s, i) => s + i.totalBytes, 0));
        if (n > 1) assert.ok(pieces <= shuffleGetCount(3, n));
      } finally {
        await rt.release();
      }
    });
  }

  test('values survive exactly: HUGEINT, INTERVAL microseconds, TIME WITH TIME ZONE, nested', async () => {
    const store = freshStore();
    const rt = await roundTrip({
      conn, store, producers: ['SELECT * FROM many'], scratchDir: scratch, viewPrefix: 'exact_',
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 2 },
    });
    try {
      const bad = await scalar(conn, `SELECT count(*) FROM many m JOIN (${rt.unionSql}) x USING (id)
        WHERE m.huge IS DISTINCT FROM x.huge OR m.iv IS DISTINCT FROM x.iv OR m.ttz::VARCHAR <> x.ttz::VARCHAR
           OR m.st IS DISTINCT FROM x.st OR m.m IS DISTINCT FROM x.m OR m.tsns IS DISTINCT FROM x.tsns OR m.e IS DISTINCT FROM x.e`);
      assert.equal(Number(bad), 0);
      assert.equal(await scalar(conn, `SELECT max(huge)::VARCHAR FROM (${rt.unionSql})`), '59990000000000000000000000001');
      assert.equal(await scalar(conn, `SELECT ttz::VARCHAR FROM ${rt.reads[0].view} LIMIT 1`), '01:02:03.000001+05');
    } finally {
      await rt.release();
    }
    assert.ok(travelsAsText('STRUCT(a HUGEINT)') && travelsAsText('INTERVAL[]') && travelsAsText('TIME WITH TIME ZONE'));
    assert.ok(!travelsAsText('DECIMAL(18,2)') && !travelsAsText('TIMESTAMP WITH TIME ZONE'));
  });

  test('keys of INTEGER, BIGINT and DECIMAL sides cast to one common type land in the same partition', async () => {
    await conn.run(`CREATE TABLE side_int AS SELECT i::INTEGER AS k, 'int' AS side FROM range(-200, 800) r(i)`);
    await conn.run(`CREATE TABLE side_big AS SELECT i::BIGINT AS k, 'big' AS side FROM range(-200, 800) r(i)`);
    await conn.run(`CREATE TABLE side_dec AS SELECT i::DECIMAL(9,1) AS k, 'dec' AS side FROM range(-200, 800) r(i)`);
    const store = freshStore();
    const n = 8;
    const sides: Record<string, { type: string; rt: Awaited<ReturnType<typeof roundTrip>> }> = {};
    // Join of INTEGER with BIGINT: common type BIGINT. Join of INTEGER with DECIMAL(9,1): DECIMAL(11,1).
    for (const [name, type] of [['side_int', 'BIGINT'], ['side_big', 'BIGINT'], ['side_int', 'DECIMAL(11,1)'], ['side_dec', 'DECIMAL(11,1)']] as const) {
      const tag = `${name}_${type.replace(/\W/g, '')}`;
      sides[tag] = {
        type,
        rt: await roundTrip({
          conn, store, producers: [`SELECT * FROM ${name}`], scratchDir: scratch, viewPrefix: `${tag}_`, stageId: tag,
          partitioning: { kind: 'hash', keys: [{ expr: 'k', type }], count: n },
        }),
      };
    }
    try {
      const pairs = [['side_int_BIGINT', 'side_big_BIGINT'], ['side_int_DECIMAL111', 'side_dec_DECIMAL111']];
      for (const [a, b] of pairs) {
        const mismatched = await scalar(conn, `SELECT count(*) FROM (${sides[a].rt.unionSql}) x JOIN (${sides[b].rt.unionSql}) y ON x.k = y.k WHERE x.p <> y.p`);
        const matched = await scalar(conn, `SELECT count(*) FROM (${sides[a].rt.unionSql}) x JOIN (${sides[b].rt.unionSql}) y ON x.k = y.k AND x.p = y.p`);
        assert.equal(Number(mismatched), 0, `${a} vs ${b}`);
        assert.equal(Number(matched), 1000, `${a} vs ${b}: every key joins inside its partition`);
      }
      // Without the common type the hashes differ: the cast is what makes the test pass.
      assert.notEqual(await scalar(conn, 'SELECT hash(1::INTEGER)'), await scalar(conn, 'SELECT hash(1::DECIMAL(9,1))'));
    } finally {
      for (const s of Object.values(sides)) await s.rt.release();
    }
  });

  test('a skewed input (one key holds half the rows) still round-trips; its partition holds it all', async () => {
    await conn.run(`CREATE TABLE skewed AS SELECT i::INTEGER AS id, CASE WHEN i % 2 = 0 THEN 42 ELSE i END::BIGINT AS k, repeat('x', i % 40) AS pad FROM range(20000) r(i)`);
    const store = freshStore();
    const rt = await roundTrip({
      conn, store, producers: thirds('skewed'), scratchDir: scratch, viewPrefix: 'skew_',
      partitioning: { kind: 'hash', keys: [{ expr: 'k', type: 'BIGINT' }], count: 8 },
    });
    try {
      await assertSameRows(conn, 'SELECT * FROM skewed', `SELECT * EXCLUDE (p) FROM (${rt.unionSql})`);
      const hot = Number(await scalar(conn, `SELECT any_value(p) FROM (${rt.unionSql}) WHERE k = 42`));
      assert.equal(Number(await scalar(conn, `SELECT count(DISTINCT p) FROM (${rt.unionSql}) WHERE k = 42`)), 1);
      assert.ok(rt.reads[hot].rows >= 10000, `the hot partition has ${rt.reads[hot].rows} rows`);
    } finally {
      await rt.release();
    }
  });

  test('empty partitions have no piece and give typed empty views; an empty source gives an all-empty inline index', async () => {
    const store = freshStore();
    // Two distinct keys into 8 partitions: at least 6 are empty.
    const rt = await roundTrip({
      conn, store, producers: ['SELECT * FROM many WHERE k_int IN (1, 2)'], scratchDir: scratch, viewPrefix: 'sparse_',
      partitioning: { kind: 'hash', keys: [{ expr: 'k_int', type: 'INTEGER' }], count: 8 },
    });
    try {
      const empty = rt.reads.filter((r) => r.rows === 0);
      assert.ok(empty.length >= 6, `${empty.length} empty partitions`);
      const declared = (await runQuery(conn, 'DESCRIBE SELECT * FROM many')).rows.map((r) => `${r[0]} ${r[1]}`);
      for (const r of empty) {
        assert.equal(r.gets, 0);
        assert.equal(r.files.length, 0);
        assert.equal(Number(await scalar(conn, `SELECT count(*) FROM ${r.view}`)), 0);
        assert.deepEqual((await runQuery(conn, `DESCRIBE SELECT * FROM ${r.view}`)).rows.map((row) => `${row[0]} ${row[1]}`), declared);
      }
      const index = rt.indexes[0];
      for (let p = 0; p < 8; p++) if (index.rows[p] === 0) assert.equal(pieceOf(index, p).length, 0);
      assert.equal(store.calls.getRange, 8 - empty.length);
    } finally {
      await rt.release();
    }

    const none = await writeShuffle({
      conn, store, sourceSql: 'SELECT * FROM many WHERE false', scratchDir: scratch, queryId: 'q1', stageId: 'empty', taskId: 't0',
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 4 }, inlineLimitBytes: 0,
    });
    assert.equal(none.puts, 0);
    assert.deepEqual(none.index.location, { kind: 'inline', base64: '' });
    assert.deepEqual(none.index.lengths, [0, 0, 0, 0]);
    const read = await readShufflePartition({ conn, store, sources: { indexes: [none.index], partition: 2 }, viewName: 'all_empty', scratchDir: scratch });
    try {
      assert.equal(Number(await scalar(conn, 'SELECT count(*) FROM all_empty')), 0);
      assert.equal(await scalar(conn, `SELECT typeof(huge) FROM (SELECT NULL::INTEGER AS x) LEFT JOIN all_empty ON true`), 'HUGEINT');
    } finally {
      await read.release();
    }
  });

  test('small outputs travel inline: no PUT, no GET, same rows', async () => {
    const store = freshStore();
    const rt = await roundTrip({
      conn, store, producers: ['SELECT * FROM many WHERE id < 300', 'SELECT * FROM many WHERE id >= 300 AND id < 500'], scratchDir: scratch,
      viewPrefix: 'inline_', inlineLimitBytes: 4 * 1024 * 1024,
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 3 },
    });
    try {
      assert.equal(rt.puts, 0);
      assert.ok(rt.indexes.every((i) => i.location.kind === 'inline'));
      assert.equal(store.calls.put + store.calls.getRange + store.calls.get, 0);
      assert.equal(rt.reads.reduce((s, r) => s + r.inlinePieces, 0), 6);
      await assertSameRows(conn, 'SELECT * FROM many WHERE id < 500', `SELECT * EXCLUDE (p) FROM (${rt.unionSql})`);
      // A consumer's slice carries only its own piece's bytes.
      const slice = partitionSources(rt.indexes, 1);
      const sliceBytes = slice.reduce((s, x) => s + Buffer.from((x.location as { base64: string }).base64, 'base64').byteLength, 0);
      assert.equal(sliceBytes, rt.indexes.reduce((s, i) => s + i.lengths[1], 0));
    } finally {
      await rt.release();
    }
  });

  test('past 100 open partitions DuckDB splits a piece into several files; they still read back', async () => {
    // Past the flush threshold in each of the engine's 2 threads (each writes its own share).
    await conn.run(`CREATE TABLE wide AS SELECT i::BIGINT AS id, (i * 7919 % 1000003)::BIGINT AS k FROM range(1100000) r(i)`);
    const store = freshStore();
    const rt = await roundTrip({
      conn, store, producers: ['SELECT * FROM wide'], scratchDir: scratch, viewPrefix: 'wide_', sortByPartition: false,
      partitioning: { kind: 'hash', keys: [{ expr: 'k', type: 'BIGINT' }], count: 150 },
    });
    try {
      const multi = Object.keys(rt.indexes[0].files ?? {}).length;
      // Unsorted: DuckDB flushes partitions every 524,288 rows (partitioned_write_flush_threshold)
      // and keeps 100 files open (partitioned_write_max_open_files): past both, partitions roll over.
      assert.ok(multi > 0, 'expected some multi-file pieces');
      assert.equal(store.calls.getRange, 150, 'still one GET per piece');
      assert.equal(Number(await scalar(conn, `SELECT count(*) FROM (${rt.unionSql})`)), 1100000);
      assert.equal(Number(await scalar(conn, `SELECT sum(id) FROM (${rt.unionSql})`)), (1099999 * 1100000) / 2);
      assert.equal(Number(await scalar(conn, `SELECT count(*) FROM (SELECT k FROM (${rt.unionSql}) GROUP BY k HAVING count(DISTINCT p) > 1)`)), 0);
    } finally {
      await rt.release();
    }
    // 'auto' sorts by partition past 100 partitions: (nearly) one file per piece, same rows.
    const sorted = await roundTrip({
      conn, store, producers: ['SELECT * FROM wide WHERE id < 100000'], scratchDir: scratch, viewPrefix: 'wides_', stageId: 'sorted',
      partitioning: { kind: 'hash', keys: [{ expr: 'k', type: 'BIGINT' }], count: 150 },
    });
    try {
      const files = sorted.indexes[0].lengths.reduce((s, l, p) => s + (l === 0 ? 0 : pieceOf(sorted.indexes[0], p).files.length), 0);
      assert.ok(files < 150 * 1.2, `${files} files for 150 pieces`);
      assert.equal(Number(await scalar(conn, `SELECT count(*) FROM (${sorted.unionSql})`)), 100000);
      assert.equal(Number(await scalar(conn, `SELECT sum(id) FROM (${sorted.unionSql})`)), (99999 * 100000) / 2);
      // The same rows land in the same partitions as unsorted: the partition id does not depend on the write order.
      assert.equal(Number(await scalar(conn, `SELECT count(*) FROM (${sorted.unionSql}) WHERE p <> ${hashPartitionSql([{ expr: 'k', type: 'BIGINT' }], 150)}`)), 0);
    } finally {
      await sorted.release();
    }
  });

  test('NULL keys: hashed alike by default (one partition per NULL group); all to partition 0 with nulls "zero"', async () => {
    const store = freshStore();
    const keys = [{ expr: 'k_null', type: 'BIGINT' }, { expr: 'e', type: 'VARCHAR' }];
    const hashed = await roundTrip({ conn, store, producers: thirds('many'), scratchDir: scratch, viewPrefix: 'nh_', partitioning: { kind: 'hash', keys, count: 8 } });
    const zero = await roundTrip({ conn, store, producers: thirds('many'), scratchDir: scratch, viewPrefix: 'nz_', stageId: 'zero', partitioning: { kind: 'hash', keys, count: 8, nulls: 'zero' } });
    try {
      // NULL groups (NULL, 'red'), (NULL, 'green'), ... are each in one partition, not all in one.
      assert.equal(Number(await scalar(conn, `SELECT count(*) FROM (SELECT e FROM (${hashed.unionSql}) WHERE k_null IS NULL GROUP BY e HAVING count(DISTINCT p) > 1)`)), 0);
      assert.equal(await scalar(conn, `SELECT list(DISTINCT p) FROM (${zero.unionSql}) WHERE k_null IS NULL`).then(String), '0');
      await assertSameRows(conn, 'SELECT * FROM many', `SELECT * EXCLUDE (p) FROM (${zero.unionSql})`);
      // DuckDB hashes -0.0 like 0.0 and every NaN alike, as equality has it.
      assert.equal(await scalar(conn, `SELECT hash(-0.0::DOUBLE) = hash(0.0::DOUBLE) AND hash('nan'::DOUBLE) = hash(-('nan'::DOUBLE))`), true);
      assert.equal(await scalar(conn, `SELECT hash(NULL::INTEGER) = hash(NULL::VARCHAR)`), true);
    } finally {
      await hashed.release();
      await zero.release();
    }
  });

  test('partition id SQL: constant for one partition, CAST to the common type before hash(), re-mixed', async () => {
    assert.equal(hashPartitionSql([{ expr: 'a', type: 'BIGINT' }], 1), '0');
    assert.equal(hashPartitionSql([{ expr: 'a', type: 'BIGINT' }, { expr: 'b', type: 'VARCHAR' }], 16), 'CAST(hash(hash(CAST((a) AS BIGINT), CAST((b) AS VARCHAR))) % 16 AS INTEGER)');
    assert.throws(() => hashPartitionSql([], 4), PuffinError);
    assert.throws(() => hashPartitionSql([{ expr: 'a', type: 'INT' }], 0), PuffinError);
    // The rows of one partition (of 16) have all 16 values of their key hash's low 4 bits,
    // so the consumer's own hash tables stay evenly filled.
    const pid = hashPartitionSql([{ expr: 'i', type: 'BIGINT' }], 16);
    const lowBits = await scalar(conn, `SELECT count(DISTINCT hash(i::BIGINT) % 16) FROM range(20000) r(i) WHERE ${pid} = 5`);
    assert.equal(Number(lowBits), 16);
  });
});

describe('range shuffle', () => {
  const keys: SortKey[] = [
    { expr: 'k_null', type: 'BIGINT', descending: true, nullsFirst: true },
    { expr: 's', type: 'VARCHAR' },
  ];

  test('sampled bounds split the rows into ordered partitions (DESC NULLS FIRST, then ASC NULLS LAST)', async () => {
    const bounds = await sampleRangeBounds(conn, 'SELECT * FROM many', keys, 4, { sampleRows: 500 });
    assert.equal(bounds.length, 3);
    const store = freshStore();
    const rt = await roundTrip({ conn, store, producers: thirds('many'), scratchDir: scratch, viewPrefix: 'range_', partitioning: { kind: 'range', keys, bounds } });
    try {
      assert.equal(rt.indexes[0].partitions, 4);
      await assertSameRows(conn, 'SELECT * FROM many', `SELECT * EXCLUDE (p) FROM (${rt.unionSql})`);
      // Every row of partition p sorts before every row of partition p+1.
      const sk = `create_sort_key(k_null, 'DESC NULLS FIRST', s, 'ASC NULLS LAST')`;
      const ranges = (await runQuery(conn, `SELECT p, min(${sk})::VARCHAR, max(${sk})::VARCHAR, count(*) FROM (${rt.unionSql}) GROUP BY p ORDER BY p`)).rows;
      assert.equal(ranges.length, 4, 'no empty partition with a good sample');
      const overlaps = await scalar(conn, `WITH r AS (SELECT p, min(${sk}) lo, max(${sk}) hi FROM (${rt.unionSql}) GROUP BY p)
        SELECT count(*) FROM r a JOIN r b ON b.p = a.p + 1 WHERE a.hi >= b.lo`);
      assert.equal(Number(overlaps), 0);
      // NULLS FIRST on the first key: all its NULLs are in partition 0.
      assert.equal(String(await scalar(conn, `SELECT list(DISTINCT p) FROM (${rt.unionSql}) WHERE k_null IS NULL`)), '0');
      // Roughly balanced: no partition over twice its share.
      for (const r of ranges) assert.ok(Number(r[3]) < 3000, `partition ${String(r[0])}: ${String(r[3])} rows`);
    } finally {
      await rt.release();
    }
  });

  test('bounds of decimals, timestamps, HUGEINT, dates with strings, structs with doubles: ids never decrease in sort order', async () => {
    await conn.run(`CREATE TABLE ranged AS SELECT (i * 1.37)::DECIMAL(18,2) AS dec, TIMESTAMP '2020-01-01' + to_seconds(i * 37) AS ts,
      i::HUGEINT * 100000000000000000000 AS h, DATE '2000-01-01' + (i % 5000)::INTEGER AS d, CASE WHEN i % 3 = 0 THEN NULL ELSE 'ü' || (i % 77) END AS s,
      {'a': i % 5} AS st, i / 3.0 AS dbl FROM range(20000) r(i)`);
    const cases: SortKey[][] = [
      [{ expr: 'dec', type: 'DECIMAL(18,2)' }],
      [{ expr: 'ts', type: 'TIMESTAMP', descending: true }],
      [{ expr: 'h', type: 'HUGEINT' }],
      [{ expr: 'd', type: 'DATE' }, { expr: 's', type: 'VARCHAR', nullsFirst: true }],
      [{ expr: 'st', type: 'STRUCT(a BIGINT)' }, { expr: 'dbl', type: 'DOUBLE' }],
    ];
    for (const keys of cases) {
      const bounds = await sampleRangeBounds(conn, 'SELECT * FROM ranged', keys, 5, { sampleRows: 1000 });
      assert.equal(bounds.length, 4);
      const order = keys.map((k) => `${k.expr} ${k.descending ? 'DESC' : 'ASC'} NULLS ${k.nullsFirst ? 'FIRST' : 'LAST'}`).join(', ');
      const r = (await runQuery(conn, `SELECT count(*) FILTER (WHERE p < lag_p), list(DISTINCT p ORDER BY p)::VARCHAR
        FROM (SELECT p, lag(p) OVER (ORDER BY ${order}) AS lag_p FROM (SELECT *, ${rangePartitionSql(keys, bounds)} AS p FROM ranged))`)).rows[0];
      assert.equal(Number(r[0]), 0, `${JSON.stringify(keys)}: a row in a lower partition than the row before it`);
      assert.equal(r[1], '[0, 1, 2, 3, 4]', JSON.stringify(keys));
    }
  });

  test('partition id = number of bounds <= key, duplicates and NULL bounds included', async () => {
    const k: SortKey[] = [{ expr: 'x', type: 'INTEGER' }];
    const sql = rangePartitionSql(k, [[10], [20], [20], [null]]);
    const got = (await runQuery(conn, `SELECT x, ${sql} FROM (VALUES (5), (10), (15), (20), (25), (NULL)) t(x) ORDER BY x NULLS LAST`)).rows;
    assert.deepEqual(got.map((r) => Number(r[1])), [0, 1, 1, 3, 3, 4]);
    assert.equal(rangePartitionSql(k, []), '0');
    const desc = rangePartitionSql([{ expr: 'x', type: 'INTEGER', descending: true }], [[20], [10]]);
    const d = (await runQuery(conn, `SELECT ${desc} FROM (VALUES (25), (20), (15), (5)) t(x)`)).rows.map((r) => Number(r[0]));
    assert.deepEqual(d, [0, 1, 1, 2]);
    assert.deepEqual(await sampleRangeBounds(conn, 'SELECT 1 AS x WHERE false', k, 8), []);
  });
});

describe('shuffle cleanup, keys and aborts', () => {
  test('deleteQueryShuffle removes every object of the query under every spread prefix, and only those', async () => {
    const store = freshStore();
    const partitioning = { kind: 'hash' as const, keys: [{ expr: 'id', type: 'INTEGER' }], count: 4 };
    const indexes: ShuffleIndex[] = [];
    for (const queryId of ['qa', 'qb']) {
      for (let t = 0; t < 6; t++) {
        const w = await writeShuffle({ conn, store, sourceSql: `SELECT * FROM many WHERE id % 6 = ${t}`, partitioning, queryId, stageId: 's1', taskId: `t${t}`, scratchDir: scratch, inlineLimitBytes: 0 });
        indexes.push(w.index);
      }
    }
    const keys = (await store.list('')).map((o) => o.key);
    assert.equal(keys.length, 12);
    assert.ok(new Set(keys.map((k) => k.split('/')[0])).size > 1, 'keys spread over several prefixes');
    for (const k of keys) assert.match(k, /^[0-9a-f]{2}\/q[ab]\/s1\/t\d-a0-[0-9a-f]{12}\.shuffle$/);
    store.reset();
    const result = await deleteQueryShuffle(store, 'qa');
    assert.deepEqual(result, { lists: 256, deleted: 6 });
    assert.equal(store.calls.list, 256);
    const left = (await store.list('')).map((o) => o.key);
    assert.equal(left.length, 6);
    assert.ok(left.every((k) => k.includes('/qb/')));
    for (const prefix of queryShufflePrefixes('qa')) assert.deepEqual(await store.list(prefix), []);
    // Knowing the query's tasks, cleanup lists only the spreads they hash to.
    const tasks = Array.from({ length: 6 }, (_, t) => ({ stageId: 's1', taskId: `t${t}` }));
    const spreads = new Set(left.map((k) => k.split('/')[0]));
    assert.deepEqual(queryShufflePrefixes('qb', { tasks }), [...spreads].sort().map((s) => `${s}/qb/`));
    // By index, without listing.
    assert.equal(await deleteShuffleObjects(store, indexes.filter((i) => i.queryId === 'qb')), 6);
    assert.deepEqual(await store.list(''), []);
    // No leftovers in the scratch directory either.
    assert.deepEqual((await readdir(scratch)).filter((n) => n.startsWith('shuffle-')), []);
  });

  test('key layout: spread prefix first, validated ids, optional key prefix', () => {
    const ids = { queryId: 'q1', stageId: 's2', taskId: 't3', attempt: 1 };
    assert.match(shuffleObjectKey(ids, 'abc'), /^[0-9a-f]{2}\/q1\/s2\/t3-a1-abc\.shuffle$/);
    assert.match(shuffleObjectKey(ids, 'abc', { keyPrefix: 'shuffle/', prefixDigits: 1 }), /^shuffle\/[0-9a-f]\/q1\/s2\/t3-a1-abc\.shuffle$/);
    assert.equal(shuffleObjectKey(ids, 'abc', { prefixDigits: 0 }), 'q1/s2/t3-a1-abc.shuffle');
    assert.throws(() => shuffleObjectKey({ ...ids, queryId: '../x' }, 'abc'), PuffinError);
    assert.equal(queryShufflePrefixes('q1', { prefixDigits: 1 }).length, 16);
  });

  test('an aborted producer leaves no object and no scratch files', async () => {
    const store = freshStore();
    const stop = new AbortController();
    stop.abort(new PuffinError('timeout', 'deadline passed'));
    await assert.rejects(
      writeShuffle({
        conn, store, sourceSql: 'SELECT * FROM many', scratchDir: scratch, queryId: 'q1', stageId: 's1', taskId: 't0', inlineLimitBytes: 0,
        partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 4 }, signal: stop.signal,
      }),
      (err: unknown) => err instanceof PuffinError && err.code === 'timeout',
    );
    assert.deepEqual(await store.list(''), []);
    assert.deepEqual((await readdir(scratch)).filter((n) => n.startsWith('shuffle-')), []);
  });

  test('a consumer refuses a short piece and producers of different DuckDB builds', async () => {
    const store = freshStore();
    const w = await writeShuffle({
      conn, store, sourceSql: 'SELECT * FROM many', scratchDir: scratch, queryId: 'q1', stageId: 's1', taskId: 't0', inlineLimitBytes: 0,
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 2 },
    });
    const truncated: ShuffleIndex = { ...w.index, location: { kind: 'object', key: (w.index.location as { key: string }).key, size: w.index.totalBytes } };
    await store.put(truncated.location.kind === 'object' ? truncated.location.key : '', new Uint8Array(10));
    await assert.rejects(readShufflePartition({ conn, store, sources: { indexes: [truncated], partition: 1 }, viewName: 'short', scratchDir: scratch }), /expected \d+ bytes/);
    assert.equal(await scalar(conn, `SELECT count(*) FROM duckdb_views() WHERE view_name = 'short'`).then(Number), 0);
    assert.throws(() => partitionSources([w.index, { ...w.index, taskId: 't1', duckdb: 'v0.0.1' }], 0), /different DuckDB versions/);
  });

  test('decodeShuffleIndex accepts a real index and rejects a tampered one', async () => {
    const store = freshStore();
    const w = await writeShuffle({
      conn, store, sourceSql: 'SELECT * FROM many', scratchDir: scratch, queryId: 'q1', stageId: 's1', taskId: 't0', inlineLimitBytes: 0,
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 5 },
    });
    const json = JSON.parse(JSON.stringify(w.index)) as ShuffleIndex;
    assert.deepEqual(decodeShuffleIndex(json), json);
    assert.ok(JSON.stringify(json).length < 4096, 'a small index');
    assert.throws(() => decodeShuffleIndex({ ...json, offsets: [...json.offsets.slice(0, 4), json.offsets[4] + 1] }), /contiguous/);
    assert.throws(() => decodeShuffleIndex({ ...json, partitions: 4 }), PuffinError);
    assert.throws(() => decodeShuffleIndex({ ...json, taskId: '../../etc' }), PuffinError);
  });

  test('a reader keeps DEFAULT_SHUFFLE_GET_CONCURRENCY (64) GETs in flight, never more', async () => {
    const store = freshStore();
    const w = await writeShuffle({
      conn, store, sourceSql: 'SELECT * FROM many', scratchDir: scratch, queryId: 'q1', stageId: 'wide', taskId: 't0', inlineLimitBytes: 0,
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 2 },
    });
    // 100 producers' pieces of partition 0 (the same object's, read 100 times), each GET slow.
    let inFlight = 0;
    let most = 0;
    const slow = Object.create(store) as CountingStore;
    slow.getRange = async (key, offset, length) => {
      most = Math.max(most, ++inFlight);
      try {
        await new Promise((r) => setTimeout(r, 20));
        return await store.getRange(key, offset, length);
      } finally {
        inFlight -= 1;
      }
    };
    const r = await readShufflePartition({ conn, store: slow, sources: { indexes: Array.from({ length: 100 }, () => w.index), partition: 0 }, viewName: 'wide', scratchDir: scratch });
    try {
      assert.equal(DEFAULT_SHUFFLE_GET_CONCURRENCY, 64);
      assert.equal(most, DEFAULT_SHUFFLE_GET_CONCURRENCY);
      assert.equal(r.gets, 100);
      assert.equal(Number(await scalar(conn, 'SELECT count(*) FROM wide')), 100 * w.index.rows[0]);
    } finally {
      await r.release();
    }
  });

  test('a straggling GET gets a hedged duplicate and the first answer wins', async () => {
    const store = freshStore();
    const w = await writeShuffle({
      conn, store, sourceSql: 'SELECT * FROM many', scratchDir: scratch, queryId: 'q1', stageId: 'hedge', taskId: 't0', inlineLimitBytes: 0,
      partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 2 },
    });
    // The first GET of the object hangs until released; the duplicate answers at once.
    let calls = 0;
    let releaseStraggler = () => {};
    const gate = new Promise<void>((r) => (releaseStraggler = r));
    const slow = Object.create(store) as CountingStore;
    slow.getRange = async (key, offset, length) => {
      calls += 1;
      if (calls === 1) await gate;
      return store.getRange(key, offset, length);
    };
    const started = Date.now();
    const r = await readShufflePartition({
      conn, store: slow, sources: { indexes: [w.index], partition: 0 }, viewName: 'hedged', scratchDir: scratch, hedge: { initialMs: 100 },
    });
    try {
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
      assert.deepEqual([r.gets, r.hedgedGets, r.hedgeWins], [2, 1, 1]);
      assert.equal(Number(await scalar(conn, 'SELECT count(*) FROM hedged')), w.index.rows[0]);
    } finally {
      releaseStraggler();
      await r.release();
    }
    // A GET that fails before its hedge is due fails the read at once; nothing is left behind.
    const failing = Object.create(store) as CountingStore;
    failing.getRange = async () => {
      throw new PuffinError('unavailable', 'S3 is down');
    };
    await assert.rejects(
      readShufflePartition({ conn, store: failing, sources: { indexes: [w.index], partition: 1 }, viewName: 'failed', scratchDir: scratch }),
      (err: unknown) => err instanceof PuffinError && err.code === 'unavailable',
    );
    assert.deepEqual((await readdir(scratch)).filter((n) => n.startsWith('shuffle-r-')), []);
  });

  test('pieces are zstd by default, and may be snappy or uncompressed', async () => {
    const store = freshStore();
    const sizes: number[] = [];
    for (const compression of ['uncompressed', 'snappy', undefined] as const) {
      const w = await writeShuffle({
        conn, store, sourceSql: 'SELECT id, s FROM many', scratchDir: scratch, queryId: 'q1', stageId: compression ?? 'default', taskId: 't0', inlineLimitBytes: 0,
        ...(compression ? { compression } : {}),
        partitioning: { kind: 'hash', keys: [{ expr: 'id', type: 'INTEGER' }], count: 2 },
      });
      const r = await readShufflePartition({ conn, store, sources: { indexes: [w.index], partition: 0 }, viewName: `c_${compression ?? 'default'}`, scratchDir: scratch });
      assert.equal(Number(await scalar(conn, `SELECT count(*) FROM ${r.view}`)), w.index.rows[0]);
      await r.release();
      sizes.push(w.index.totalBytes);
    }
    assert.ok(sizes[1] < sizes[0] && sizes[2] < sizes[1], `uncompressed ${sizes[0]} > snappy ${sizes[1]} > zstd ${sizes[2]}`);
    await assert.rejects(
      writeShuffle({ conn, store, sourceSql: 'SELECT 1 AS a', scratchDir: scratch, queryId: 'q1', stageId: 'bad', taskId: 't0', compression: 'gzip; DROP' as never, partitioning: { kind: 'hash', keys: [{ expr: 'a', type: 'INTEGER' }], count: 2 } }),
      /unknown shuffle compression/,
    );
  });

  test('UNION columns and duplicate names are refused', async () => {
    const store = freshStore();
    await assert.rejects(
      writeShuffle({ conn, store, sourceSql: `SELECT union_value(n := 1) AS u`, scratchDir: scratch, queryId: 'q1', stageId: 's1', taskId: 't0', partitioning: { kind: 'hash', keys: [{ expr: '1', type: 'INTEGER' }], count: 2 } }),
      (err: unknown) => err instanceof PuffinError && err.code === 'unsupported',
    );
    await assert.rejects(
      writeShuffle({
        conn, store, sourceSql: 'SELECT 1 AS a, 2 AS b', columns: [{ name: 'a', type: 'INTEGER' }, { name: 'A', type: 'INTEGER' }],
        scratchDir: scratch, queryId: 'q1', stageId: 's1', taskId: 't0', partitioning: { kind: 'hash', keys: [{ expr: 'a', type: 'INTEGER' }], count: 2 },
      }),
      /two columns named/,
    );
    await assert.rejects(
      writeShuffle({ conn, store, sourceSql: 'SELECT 1 AS __puffin_pid', scratchDir: scratch, queryId: 'q1', stageId: 's1', taskId: 't0', partitioning: { kind: 'hash', keys: [{ expr: '1', type: 'INTEGER' }], count: 2 } }),
      /__puffin_pid/,
    );
    assert.deepEqual(await store.list(''), []);
  });
});

describe('shuffle sizing', () => {
  test('GET count is producers x consumers', () => {
    assert.equal(shuffleGetCount(1000, 1000), 1_000_000);
  });
});

describe('a later stage\'s partitions grouped into tasks by their bytes', () => {
  test('contiguous ranges up to the target; a larger partition alone; every partition once', () => {
    assert.deepEqual(coalescePartitions([10, 10, 10, 10], 25), [[0, 2], [2, 4]]);
    assert.deepEqual(coalescePartitions([10, 40, 0, 0, 5, 30], 25), [[0, 1], [1, 2], [2, 5], [5, 6]]);
    // Empty partitions join their neighbours: a shuffle of few keys is few tasks.
    assert.deepEqual(coalescePartitions([0, 0, 0, 3, 0, 0, 0, 0], 25), [[0, 8]]);
    assert.deepEqual(coalescePartitions([5, 5, 5], 0), [[0, 1], [1, 2], [2, 3]]);
    assert.deepEqual(coalescePartitions([], 10), []);
    for (const target of [1, 7, 30, 1e9]) {
      const bytes = Array.from({ length: 50 }, (_, i) => (i * 37) % 11);
      const ranges = coalescePartitions(bytes, target);
      assert.equal(ranges[0][0], 0);
      assert.equal(ranges.at(-1)![1], 50);
      for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i][0], ranges[i - 1][1]);
      // Over the target only when one partition is.
      for (const [a, b] of ranges) if (b - a > 1) assert.ok(bytes.slice(a, b).reduce((x, y) => x + y, 0) <= target, `${a}..${b} at ${target}`);
    }
  });

  const index = (taskId: string, lengths: number[], location: ShuffleIndex['location'] = { kind: 'object', key: `q/${taskId}.shuffle`, size: lengths.reduce((a, b) => a + b, 0) }): ShuffleIndex => {
    const offsets = lengths.map((_, p) => lengths.slice(0, p).reduce((a, b) => a + b, 0));
    return {
      format: 'puffindb-shuffle/1', queryId: 'q', stageId: 's', taskId, attempt: 1, duckdb: 'v1', columns: [{ name: 'k', type: 'INTEGER' }], partitions: lengths.length,
      location, offsets, lengths, rows: lengths.map((l) => (l ? 1 : 0)), totalRows: lengths.filter((l) => l).length, totalBytes: lengths.reduce((a, b) => a + b, 0),
    };
  };

  test('bytes per partition over every producer of every stage read; a producer of another partition count is refused', () => {
    assert.deepEqual(partitionBytes([[index('a', [1, 2, 3]), index('b', [4, 0, 6])], [index('c', [10, 10, 10])]], 3), [15, 12, 19]);
    assert.throws(() => partitionBytes([[index('a', [1, 2])]], 3), /2 partitions/);
  });

  test('a producer\'s pieces of adjacent partitions are one ranged GET, its files in order', () => {
    const a = index('a', [3, 4, 0, 5]);
    const b = index('b', [2, 0, 6, 1]);
    const slice = partitionSlicer([a, b]);
    const pieces = [1, 2, 3].flatMap((p) => slice(p));
    const joined = joinAdjacentSources(pieces);
    assert.deepEqual(joined.map((s) => [s.taskId, s.offset, s.length, s.files, s.rows]), [['a', 3, 9, [4, 5], 2], ['b', 2, 7, [6, 1], 2]]);
    // Still a piece a worker accepts.
    for (const s of joined) decodePartitionSource(JSON.parse(JSON.stringify(s)));
    // b's partition 1 is empty, so its pieces of 0 and 2 touch; a's of 0 and 3 do not (1 lies between).
    const gap = joinAdjacentSources([...slice(0), ...slice(2), ...slice(3)]);
    assert.deepEqual(gap.map((s) => [s.taskId, s.offset, s.length]), [['a', 0, 3], ['b', 0, 9], ['a', 7, 5]]);
  });
});
