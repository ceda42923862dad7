// The admin API with its state in a real redis-server: keys, the asynchronous lifecycle,
// the result cache and the query log all go through Redis; when Redis stops, requests get a
// 503 naming the problem (never a crash, never a 401), and the service recovers by itself
// when Redis is back.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tableFromIPC } from 'apache-arrow';
import type { ApiApp } from '../../runtime/api/app.ts';
import { RedisStateStore } from '../../runtime/state/redis-store.ts';
import { controlFixture, eventually, type ControlFixture } from '../helpers/control-plane.ts';
import { ADMIN_KEY, appFor, caller, errorOf, newKey, type Caller } from '../helpers/api.ts';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.ts';

let redis: TestRedis;
let f: ControlFixture;
let app: ApiApp;
let call: Caller;
const admin = { key: ADMIN_KEY };

before(async () => {
  // Append-only persistence, so keys and records survive the restart of the outage test.
  redis = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  const state = await RedisStateStore.connect({ url: redis.url, connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, keyPrefix: 'admin-test:' });
  f = await controlFixture({ REDIS_URL: redis.url }, state);
  app = await appFor(f);
  call = caller(app);
});
after(async () => {
  await f?.close();
  await redis?.close();
});

async function poll(id: string, key = ADMIN_KEY): Promise<{ status: string; cacheHit?: boolean }> {
  return eventually(`query ${id} to finish`, async () => {
    const s = (await (await call('GET', `/v1/queries/${id}`, { key })).json()) as { status: string; cacheHit?: boolean };
    return ['succeeded', 'failed', 'cancelled'].includes(s.status) ? s : undefined;
  });
}

describe('admin API on Redis', () => {
  test('the asynchronous lifecycle, with results as JSON, CSV and Arrow', async () => {
    const { key } = await newKey(call, 'reader');
    const sql = 'SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY g';
    const res = await call('POST', '/v1/queries', { key, body: { sql } });
    assert.equal(res.status, 202);
    const { queryId } = (await res.json()) as { queryId: string };
    assert.equal((await poll(queryId, key)).status, 'succeeded');
    const want = await f.fx.engine.query(sql);
    const json = (await (await call('GET', `/v1/queries/${queryId}/result`, { key })).json()) as { rows: { g: number; n: number }[] };
    assert.deepEqual(json.rows.map((r) => [r.g, r.n]), want.rows.map((r) => [r[0], Number(r[1])]));
    const csv = await (await call('GET', `/v1/queries/${queryId}/result`, { key, headers: { accept: 'text/csv' } })).text();
    assert.equal(csv.split('\r\n')[1], want.rows[0].join(','));
    const arrow = await call('GET', `/v1/queries/${queryId}/result`, { key, headers: { accept: 'application/vnd.apache.arrow.stream' } });
    const table = tableFromIPC(new Uint8Array(await arrow.arrayBuffer()));
    assert.deepEqual([...table.getChild('n')!].map(Number), want.rows.map((r) => Number(r[1])));
    // A reader's write is refused before anything is recorded.
    assert.equal((await errorOf(await call('POST', '/v1/queries', { key, body: { sql: 'DROP TABLE t' } }), 403)).code, 'forbidden');
  });

  test('the result cache lives in Redis: a repeat invokes no worker', async () => {
    const sql = 'SELECT max(id) AS top FROM t WHERE g = 2';
    const first = (await (await call('POST', '/v1/query', { ...admin, body: { sql } })).json()) as { cacheHit: boolean };
    assert.equal(first.cacheHit, false);
    const invocations = f.invoker.invocations;
    const second = (await (await call('POST', '/v1/query', { ...admin, body: { sql } })).json()) as { cacheHit: boolean };
    assert.equal(second.cacheHit, true);
    assert.equal(f.invoker.invocations, invocations);
  });

  test('the query log flows through the Redis stream to Parquet and back with SQL', async () => {
    const flushed = await f.plane.flusher.flush();
    assert.ok(flushed.flushed && flushed.entries >= 3, JSON.stringify(flushed));
    const res = await call('POST', '/v1/query', { ...admin, body: { sql: "SELECT count(*) AS n FROM puffindb.query_log WHERE status = 'succeeded'" } });
    const body = (await res.json()) as { rows: { n: number }[] };
    assert.ok(body.rows[0].n >= 3, JSON.stringify(body));
  });

  test('Redis stopped: 503 with a clear message; restarted: the service recovers by itself', async () => {
    await redis.stop();
    const health = await call('GET', '/v1/health');
    const e = await errorOf(health, 503);
    assert.equal(e.code, 'unavailable');
    assert.match(e.message, /Redis/);
    // Authentication needs the store too: the answer is 503, not a misleading 401.
    assert.equal((await errorOf(await call('GET', '/v1/tables', admin), 503)).code, 'unavailable');
    assert.equal((await errorOf(await call('POST', '/v1/query', { ...admin, body: { sql: 'SELECT 1' } }), 503)).code, 'unavailable');

    await redis.start();
    await eventually('the API to answer again', async () => ((await call('GET', '/v1/health')).status === 200 ? true : undefined), 15_000);
    const res = await call('POST', '/v1/query', { ...admin, body: { sql: 'SELECT count(*) AS n FROM t' } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(((await res.json()) as { rows: unknown[] }).rows, [{ n: 3000 }]);
  });
});
