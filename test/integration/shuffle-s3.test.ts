// The shuffle through S3 (s3rver on loopback, through @aws-sdk/client-s3 and S3ObjectStore):
// producers PUT one object each, consumers read their partition with ranged GETs, and the
// query's cleanup leaves nothing under its prefixes.

import type { DuckDBConnection } from '@duckdb/node-api';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../runtime/engine/engine.ts';
import { deleteQueryShuffle } from '../../runtime/exec/shuffle.ts';
import { S3ObjectStore } from '../../runtime/storage/s3-store.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';
import { CountingStore, assertSameRows, manyTypesSql, roundTrip, scalar } from '../runtime/exec/shuffle-fixtures.ts';

let s3: TestS3;
let root: string;
let engine: Engine;
let conn: DuckDBConnection;

before(async () => {
  s3 = await startS3rver();
  root = await mkdtemp(join(tmpdir(), 'puffindb-shuffle-s3-'));
  engine = await Engine.create({ threads: 2, allowedDirectories: [root] });
  conn = await engine.connect();
  await conn.run(`CREATE TABLE many AS ${manyTypesSql(3000)}`);
});
after(async () => {
  conn.closeSync();
  engine.close();
  await s3.stop();
  await rm(root, { recursive: true, force: true });
});

describe('shuffle through S3 (s3rver)', () => {
  test('3 producers x 3 partitions: same rows, one PUT per producer, ranged GETs only, cleanup empties the prefix', async () => {
    const store = new CountingStore(new S3ObjectStore({ bucket: s3.bucket, prefix: 'shuffle/', client: s3.client }));
    const producers = [0, 1, 2].map((j) => `SELECT * FROM many WHERE id % 3 = ${j}`);
    const rt = await roundTrip({
      conn, store, producers, scratchDir: root, queryId: 'qs3',
      partitioning: { kind: 'hash', keys: [{ expr: 'k_int', type: 'BIGINT' }, { expr: 'k_null', type: 'BIGINT' }], count: 3 },
    });
    try {
      assert.equal(store.calls.put, 3);
      assert.equal(store.calls.get, 0);
      const pieces = rt.indexes.reduce((s, i) => s + i.lengths.filter((l) => l > 0).length, 0);
      assert.equal(store.calls.getRange, pieces);
      assert.equal(store.rangeBytes, rt.indexes.reduce((s, i) => s + i.totalBytes, 0));
      await assertSameRows(conn, 'SELECT * FROM many', `SELECT * EXCLUDE (p) FROM (${rt.unionSql})`);
      const spread = await scalar(conn, `SELECT count(*) FROM (SELECT k_int, k_null FROM (${rt.unionSql}) GROUP BY ALL HAVING count(DISTINCT p) > 1)`);
      assert.equal(Number(spread), 0);
    } finally {
      await rt.release();
    }
    // The objects are in the bucket under the store's prefix, spread over several top-level prefixes.
    const keys = (await store.list('')).map((o) => o.key);
    assert.equal(keys.length, 3);
    assert.ok(keys.every((k) => /^[0-9a-f]{2}\/qs3\/s1\/t\d-a0-[0-9a-f]{12}\.shuffle$/.test(k)), keys.join(' '));
    // The plan knows its producer tasks: one LIST per spread they hash to, not 256.
    const tasks = [0, 1, 2].map((t) => ({ stageId: 's1', taskId: `t${t}` }));
    store.reset();
    const result = await deleteQueryShuffle(store, 'qs3', { tasks });
    assert.equal(result.deleted, 3);
    assert.equal(store.calls.list, new Set(keys.map((k) => k.split('/')[0])).size);
    assert.deepEqual(await store.list(''), []);
  });

  test('8 partitions with an empty one and inline producers mixed in', async () => {
    const store = new CountingStore(new S3ObjectStore({ bucket: s3.bucket, prefix: 'shuffle/', client: s3.client }));
    // Producer 0 is large (stored), producer 1 tiny (inline under a 16 KiB limit; producer 0 is ~32 KB); keys 1..5 leave partitions empty.
    const producers = ['SELECT * FROM many WHERE k_int BETWEEN 1 AND 5', 'SELECT * FROM many WHERE k_int = 1 AND id < 200'];
    const rt = await roundTrip({
      conn, store, producers, scratchDir: root, queryId: 'qmix', layout: { prefixDigits: 1 }, inlineLimitBytes: 16 * 1024, viewPrefix: 'mix_',
      partitioning: { kind: 'hash', keys: [{ expr: 'k_int', type: 'BIGINT' }], count: 8 },
    });
    try {
      assert.deepEqual(rt.indexes.map((i) => i.location.kind), ['object', 'inline']);
      assert.equal(store.calls.put, 1);
      assert.ok(rt.reads.some((r) => r.rows === 0), 'an empty partition');
      assert.equal(store.calls.getRange, rt.indexes[0].lengths.filter((l) => l > 0).length);
      await assertSameRows(conn, producers.join(' UNION ALL '), `SELECT * EXCLUDE (p) FROM (${rt.unionSql})`);
    } finally {
      await rt.release();
    }
    // The full sweep over all 16 spreads of a one-digit layout.
    assert.equal((await deleteQueryShuffle(store, 'qmix', { prefixDigits: 1 })).deleted, 1);
    assert.deepEqual(await store.list(''), []);
  });
});
