// The query lifecycle over real DuckDB, real in-process workers and the in-memory state
// store: statuses and progress, deadlines and cancellation, the result cache, large results
// on the object store, and the query log flushed to Parquet and queried with SQL.

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PuffinError } from '../../../runtime/errors.ts';
import { QUERY_LOG_PREFIX } from '../../../runtime/exec/query-log.ts';
import type { QueryRecord } from '../../../runtime/state/state-store.ts';
import { controlFixture, eventually, type ControlFixture } from '../../helpers/control-plane.ts';

const AGG = 'SELECT g, count(*) AS n, sum(d) AS total FROM t GROUP BY g ORDER BY g';

let f: ControlFixture;

before(async () => {
  f = await controlFixture({ PUFFINDB_CONCURRENCY: '1' });
});
after(async () => {
  await f.close();
});

async function rejectsWith(work: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof PuffinError, `expected a PuffinError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

async function finished(id: string): Promise<QueryRecord> {
  return eventually(`query ${id} to finish`, async () => {
    const r = await f.plane.manager.get(id);
    return r && ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
  });
}

describe('query lifecycle', () => {
  test('a synchronous query ends succeeded with timings, progress and the right rows', async () => {
    const done = await f.plane.manager.run(AGG, { user: 'u1' });
    const r = done.record;
    assert.equal(r.status, 'succeeded');
    assert.equal(r.user, 'u1');
    assert.equal(r.shape, 'scan-aggregate');
    assert.ok(r.startedAt! >= r.submittedAt && r.finishedAt! >= r.startedAt!);
    assert.equal(r.progress.fragmentsTotal, 3);
    assert.equal(r.progress.fragmentsDone, 3);
    assert.ok(r.progress.bytesScanned > 0);
    assert.equal(done.result.kind, 'inline');
    const want = await f.fx.engine.query(AGG);
    assert.deepEqual(done.result.kind === 'inline' && done.result.result.rows, want.rows);
  });

  test('an asynchronous query goes queued -> running -> succeeded and keeps its result', async () => {
    const record = await f.plane.manager.submit('SELECT count(*) AS n FROM t WHERE g = 3', { user: 'u1' });
    assert.equal(record.status, 'queued');
    const done = await finished(record.id);
    assert.equal(done.status, 'succeeded');
    const kept = await f.plane.manager.result(record.id);
    assert.equal(kept.kind, 'inline');
    const want = await f.fx.engine.query('SELECT count(*) AS n FROM t WHERE g = 3');
    assert.deepEqual(kept.kind === 'inline' && kept.result.rows, want.rows);
  });

  test('a failing query ends failed with its error, and the synchronous caller hears it', async () => {
    await rejectsWith(f.plane.manager.run('SELECT nope FROM t', { user: 'u1' }), 'binder_error', /nope/);
    const [last] = await f.plane.manager.list({ limit: 1 });
    assert.equal(last.status, 'failed');
    assert.equal(last.error?.code, 'binder_error');
    await rejectsWith(f.plane.manager.result(last.id), 'conflict', /failed \(binder_error\)/);
  });

  test('cancelling a slow query: status cancelled, pending fragments never start, no result', async () => {
    f.invoker.delayMs = 400;
    try {
      const before = f.invoker.invocations;
      const record = await f.plane.manager.submit('SELECT sum(id) FROM t', { user: 'u1' });
      await eventually('the first fragment to start', async () => (f.invoker.invocations > before ? true : undefined));
      const cancelled = await f.plane.manager.cancel(record.id, 'test');
      assert.equal(cancelled.status, 'cancelled');
      assert.equal(cancelled.error?.code, 'cancelled');
      // Concurrency is 1: the other two fragments were pending and must never be invoked.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(f.invoker.invocations - before, 1);
      assert.equal((await f.plane.manager.get(record.id))?.status, 'cancelled');
      await rejectsWith(f.plane.manager.result(record.id), 'conflict', /cancelled/);
      // Cancelling again is harmless; cancelling a finished query is a conflict.
      assert.equal((await f.plane.manager.cancel(record.id)).status, 'cancelled');
    } finally {
      f.invoker.delayMs = 0;
    }
    const done = await f.plane.manager.run('SELECT 1 AS x', { user: 'u1' });
    await rejectsWith(f.plane.manager.cancel(done.record.id), 'conflict', /already succeeded/);
  });

  test('a query past its deadline ends failed with timeout, never stuck in running', async () => {
    f.invoker.delayMs = 2_000;
    try {
      await rejectsWith(f.plane.manager.run('SELECT max(id) FROM t', { user: 'u1', timeoutMs: 150 }), 'timeout');
    } finally {
      f.invoker.delayMs = 0;
    }
    const [last] = await f.plane.manager.list({ limit: 1 });
    assert.equal(last.status, 'failed');
    assert.equal(last.error?.code, 'timeout');
  });

  test('a record whose runner vanished is failed once past its deadline', async () => {
    const id = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    await f.state.createQuery({ id, user: 'u1', sql: 'SELECT 1', status: 'running', submittedAt: Date.now() - 60_000, deadline: Date.now() - 30_000, progress: { fragmentsDone: 0, fragmentsTotal: 2, bytesScanned: 0 } });
    const r = await f.plane.manager.get(id);
    assert.equal(r?.status, 'failed');
    assert.equal(r?.error?.code, 'timeout');
  });

  test('unknown and malformed query ids are not found', async () => {
    assert.equal(await f.plane.manager.get('nope'), undefined);
    await rejectsWith(f.plane.manager.result('01ARZ3NDEKTSV4RRFFQ69G5FAW'), 'not_found');
    await rejectsWith(f.plane.manager.cancel('../etc'), 'not_found');
  });

  test('SELECT is a read; anything else is a write; more than one statement is refused', async () => {
    assert.equal((await f.plane.manager.classify('SELECT * FROM t')).access, 'read');
    assert.equal((await f.plane.manager.classify('WITH x AS (SELECT 1) SELECT * FROM x')).access, 'read');
    for (const sql of ['CREATE TABLE x AS SELECT 1', 'INSERT INTO t VALUES (1)', "COPY t TO 'x.parquet'", 'DROP TABLE t', "SET threads = 1"]) {
      assert.equal((await f.plane.manager.classify(sql)).access, 'write', sql);
    }
    await rejectsWith(f.plane.manager.classify('SELECT 1; DELETE FROM t'), 'bad_request');
    await rejectsWith(f.plane.manager.classify('SELEC 1'), 'syntax_error');
  });
});

describe('result cache', () => {
  test('a repeat query over unchanged tables invokes no worker', async () => {
    const first = await f.plane.manager.run('SELECT g, min(f) AS lo FROM t GROUP BY g ORDER BY g', { user: 'u1' });
    assert.equal(first.record.cacheHit, false);
    const invocations = f.invoker.invocations;
    // Spacing and keyword case do not matter: the key is DuckDB's re-printed statement.
    const second = await f.plane.manager.run('select g,   MIN(f) as lo from t group by g order by g', { user: 'u2' });
    assert.equal(second.record.cacheHit, true);
    assert.equal(f.invoker.invocations, invocations, 'no fragment ran');
    assert.deepEqual(second.result, first.result);
    // Another response format is another entry.
    const csv = await f.plane.manager.run('SELECT g, min(f) AS lo FROM t GROUP BY g ORDER BY g', { user: 'u1', format: 'csv' });
    assert.equal(csv.record.cacheHit, false);
  });

  test('a new snapshot of a table read misses the cache', async () => {
    const sql = 'SELECT count(*) AS n FROM t WHERE b';
    await f.plane.manager.run(sql, { user: 'u1' });
    const t = (await f.fx.catalog.getTable('t'))!;
    f.fx.catalog.set({ ...t, snapshotId: `${t.snapshotId}-next` });
    const invocations = f.invoker.invocations;
    const again = await f.plane.manager.run(sql, { user: 'u1' });
    assert.equal(again.record.cacheHit, false);
    assert.ok(f.invoker.invocations > invocations);
  });

  test('volatile functions are never cached', async () => {
    await f.plane.manager.run('SELECT random() < 2 AS r, count(*) FROM t', { user: 'u1' });
    const again = await f.plane.manager.run('SELECT random() < 2 AS r, count(*) FROM t', { user: 'u1' });
    assert.equal(again.record.cacheHit, false);
    const today = await f.plane.manager.run('SELECT current_date - dt AS age FROM t ORDER BY id LIMIT 1', { user: 'u1' });
    const todayAgain = await f.plane.manager.run('SELECT current_date - dt AS age FROM t ORDER BY id LIMIT 1', { user: 'u1' });
    assert.equal(today.record.cacheHit, false);
    assert.equal(todayAgain.record.cacheHit, false);
  });
});

describe('query log', () => {
  test('every query is logged, flushed as Parquet under _puffindb/logs/, and queryable as puffindb.query_log', async () => {
    const marker = await f.plane.manager.run("SELECT 'log-marker' AS m", { user: 'logger' });
    const flushed = await f.plane.flusher.flush();
    assert.equal(flushed.flushed, true);
    assert.ok(flushed.entries >= 8, `flushed ${flushed.entries}`);
    const dir = join(fileURLToPath(f.settings.warehouse), QUERY_LOG_PREFIX);
    assert.ok((await readdir(dir)).some((name) => name.endsWith('.parquet')));
    assert.equal((await f.state.readLog(null, 10)).items.length, 0, 'flushed entries are trimmed from the stream');

    const logged = await f.plane.manager.run(
      `SELECT id, "user", status, cache_hit, fragments, bytes_scanned, duration_ms, error FROM puffindb.query_log WHERE id = '${marker.record.id}'`,
      { user: 'u1', role: 'admin' },
    );
    assert.equal(logged.result.kind, 'inline');
    const rows = logged.result.kind === 'inline' ? logged.result.result.rows : [];
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0].slice(0, 4), [marker.record.id, 'logger', 'succeeded', false]);
    const statuses = await f.plane.manager.run('SELECT status, count(*) AS n FROM puffindb.query_log GROUP BY status ORDER BY status', { user: 'u1', role: 'admin' });
    await rejectsWith(f.plane.manager.run('SELECT count(*) FROM puffindb.query_log', { user: 'u1', role: 'writer' }), 'forbidden');
    await rejectsWith(f.plane.manager.run('SELECT count(*) FROM (SELECT * FROM t WHERE g IN (SELECT "user" FROM puffindb.query_log))', { user: 'u1' }), 'forbidden');
    const byStatus = Object.fromEntries(statuses.result.kind === 'inline' ? statuses.result.result.rows.map((r) => [r[0], Number(r[1])]) : []);
    assert.ok(byStatus.succeeded >= 5 && byStatus.failed >= 2 && byStatus.cancelled >= 1, JSON.stringify(byStatus));
  });

  test('only the holder of the flush lock flushes', async () => {
    await f.plane.manager.run('SELECT 2 AS x', { user: 'u1' });
    const lease = await f.state.acquireLock('puffindb:query-log-flush', 5_000);
    assert.ok(lease);
    assert.equal((await f.plane.flusher.flush()).flushed, false);
    assert.ok((await f.state.readLog(null, 10)).items.length > 0, 'entries wait for the lock holder');
    await f.state.releaseLock(lease);
    assert.equal((await f.plane.flusher.flush()).flushed, true);
  });
});

describe('results over the inline limit, and expiry', () => {
  let tight: ControlFixture;
  before(async () => {
    tight = await controlFixture({ PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '2000', PUFFINDB_RESULT_TTL_MS: '400' });
  });
  after(async () => {
    await tight.close();
  });

  test('a large result is written as Parquet under the results prefix and answered with its location', async () => {
    const sql = 'SELECT id, d, s, dt FROM t WHERE id < 700 ORDER BY id';
    const done = await tight.plane.manager.run(sql, { user: 'u1' });
    assert.equal(done.result.kind, 'stored');
    const location = done.result.kind === 'stored' ? done.result.location : '';
    assert.ok(location.startsWith(tight.settings.resultsUrl), location);
    assert.equal(done.record.resultUri, location);
    const back = await tight.fx.engine.query(`SELECT * FROM read_parquet('${fileURLToPath(location)}') ORDER BY id`);
    const want = await tight.fx.engine.query(sql);
    assert.deepEqual(back.columns, want.columns);
    assert.deepEqual(back.rows, want.rows);
  });

  test("a small result expires after the result TTL: 'not_found'", async () => {
    const done = await tight.plane.manager.run('SELECT 42 AS answer', { user: 'u1' });
    assert.equal((await tight.plane.manager.result(done.record.id)).kind, 'inline');
    await new Promise((r) => setTimeout(r, 600));
    await rejectsWith(tight.plane.manager.result(done.record.id), 'not_found', /expired/);
  });
});
