// Scheduled refreshes of materialized views across two control planes that share one Redis
// state store and one warehouse (as two servers or two coordinator Lambdas do), ticked with
// a clock the test moves: each due time is refreshed exactly once, every refresh is recorded
// in puffindb.refreshes under a query id that joins puffindb.query_log, staleness shows in
// puffindb.materialized_views, and a failed refresh is recorded too.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { openControlPlane, type ControlPlane } from '../../../runtime/exec/control-plane.ts';
import { latestDue, parseRefreshInterval, refreshLockKey, REFRESH_LEASE_MS } from '../../../runtime/exec/materialized-views.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { openStateStore } from '../../../runtime/state/open.ts';
import type { StateStore } from '../../../runtime/state/state-store.ts';
import { createCoordinatorHandler, isPipelineEvent } from '../../../runtime/functions/coordinator.ts';
import type { PipelineTick } from '../../../runtime/exec/pipelines.ts';
import { classifyStatement } from '../../../runtime/sql/classify.ts';
import { runPipelineCommand } from '../../../runtime/cli/pipeline-commands.ts';
import { openWarehouse, type Warehouse } from '../../../runtime/cli/warehouse.ts';
import { startRedisServer, type TestRedis } from '../../helpers/redis-server.ts';
import { appFor, caller, errorOf, newKey } from '../../helpers/api.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';

const MIN = 60_000;
let dir: string;
let redis: TestRedis;
const engines: Engine[] = [];
const states: StateStore[] = [];
let a: ControlPlane;
let b: ControlPlane;
let clock = Date.now();
const admin = { role: 'admin' as const };

async function plane(name: string): Promise<ControlPlane> {
  const engine = await Engine.create({ threads: 1 });
  engines.push(engine);
  // One catalog directory (the tables' pointers) and one warehouse; a home of its own each.
  const catalog = await WarehouseCatalog.open(join(dir, 'catalog'), engine);
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, name), PUFFINDB_WAREHOUSE: join(dir, 'warehouse'), PUFFINDB_WORKERS: '1', PUFFINDB_THREADS: '1', REDIS_URL: redis.url });
  const state = await openStateStore(settings);
  states.push(state);
  return openControlPlane({ settings, catalog, state, invoker: 'in-process', now: () => clock, onError: () => undefined });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-pipelines-'));
  mkdirSync(join(dir, 'warehouse'), { recursive: true });
  redis = await startRedisServer();
  a = await plane('a');
  b = await plane('b');
});

after(async () => {
  await a?.close();
  await b?.close();
  for (const s of states) await s.close();
  for (const e of engines) e.close();
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const rows = async (p: ControlPlane, sql: string) => (await p.cluster.query(sql, admin)).rows;
const AGG = 'SELECT g, count(*) AS n, sum(x) AS s FROM facts GROUP BY g';

describe('pipelines', () => {
  test('intervals and due times', () => {
    assert.equal(parseRefreshInterval('15 minutes'), 15 * MIN);
    assert.equal(parseRefreshInterval('1 hour 30 minutes'), 90 * MIN);
    assert.equal(parseRefreshInterval(' 2 days '), 2 * 24 * 60 * MIN);
    for (const bad of ['30 seconds', 'soon', '15 fortnights', '15', '']) assert.throws(() => parseRefreshInterval(bad), /interval|minute/, bad);
    const s = { every: '15 minutes', everyMs: 15 * MIN, since: 1_000 };
    assert.equal(latestDue(s, 1_000 + 14 * MIN), undefined);
    assert.equal(latestDue(s, 1_000 + 15 * MIN), 1_000 + 15 * MIN);
    assert.equal(latestDue(s, 1_000 + 44 * MIN), 1_000 + 30 * MIN);
    assert.ok(isPipelineEvent({ action: 'run-due-refreshes' }));
    assert.ok(isPipelineEvent({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }));
    assert.ok(!isPipelineEvent({ sql: 'SELECT 1' }));
  });

  test('a schedule fires once per due time across two control planes', async () => {
    await rows(a, 'CREATE TABLE facts (g VARCHAR, x INTEGER)');
    await rows(a, "INSERT INTO facts VALUES ('a', 1), ('b', 2)");
    await rows(a, `CREATE MATERIALIZED VIEW mv AS ${AGG}`);
    for (const [sql, re] of [
      ["ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '10 seconds'", /under a minute/],
      ["ALTER MATERIALIZED VIEW mv SET REFRESH EVERY 'often'", /not an interval/],
      ['ALTER MATERIALIZED VIEW mv SET REFRESH SOMETIMES', /SET REFRESH EVERY/],
      ["ALTER MATERIALIZED VIEW facts SET REFRESH EVERY '1 hour'", /not a materialized view/],
    ] as const) await assert.rejects(a.cluster.query(sql, admin), re, sql);
    const altered = await a.cluster.query("ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '15 minutes'", admin);
    assert.equal(altered.rows[0][0], 'alter_materialized_view');
    clock = Date.now();

    // Not due yet.
    clock += 5 * MIN;
    const early = await Promise.all([a.pipelines.runDue(), b.pipelines.runDue()]);
    assert.deepEqual(early.map((t) => [t.scheduled, t.ran.length]), [[1, 0], [1, 0]]);

    // First due time: both tick at once, one refreshes.
    await rows(b, "INSERT INTO facts VALUES ('a', 5), ('c', 7)");
    let stale = await rows(b, 'SELECT view, stale, schedule FROM puffindb.materialized_views');
    assert.deepEqual(stale, [['mv', true, '15 minutes']]);
    clock += 11 * MIN;
    const first = await Promise.all([a.pipelines.runDue(), b.pipelines.runDue()]);
    const ran1 = first.flatMap((t) => t.ran);
    assert.equal(ran1.length, 1, JSON.stringify(first));
    assert.equal(ran1[0].status, 'succeeded');
    assert.equal(ran1[0].mode, 'incremental');
    // Ticking again within the same due time does nothing, on either.
    clock += 2 * MIN;
    const again = await Promise.all([b.pipelines.runDue(), a.pipelines.runDue()]);
    assert.equal(again.flatMap((t) => t.ran).length, 0, JSON.stringify(again));
    assert.deepEqual(await rows(a, 'SELECT * FROM mv ORDER BY g'), await rows(a, `${AGG} ORDER BY g`));
    assert.deepEqual(await rows(a, 'SELECT stale FROM puffindb.materialized_views'), [[false]]);

    // Second due time: the other order, one refresh again (nothing changed: recorded as such).
    clock += 15 * MIN;
    const second = await Promise.all([b.pipelines.runDue(), a.pipelines.runDue()]);
    assert.equal(second.flatMap((t) => t.ran).length, 1, JSON.stringify(second));

    // A lease held elsewhere: the tick skips the view, a REFRESH statement is refused.
    const held = await a.cluster.materializedViews().leases.acquireLock(refreshLockKey('mv'), REFRESH_LEASE_MS);
    assert.ok(held);
    clock += 15 * MIN;
    const blocked = await b.pipelines.runDue();
    assert.deepEqual(blocked.skipped.map((s) => s.why), ['another process holds its refresh lease']);
    await assert.rejects(b.cluster.query('REFRESH MATERIALIZED VIEW mv', admin), /lease/);
    await a.state.releaseLock(held);
    assert.equal((await b.pipelines.runDue()).ran.length, 1);

    // Recorded: one record per due time, each joined to its query-log entry.
    await a.flusher.flush();
    const recorded = await rows(a, "SELECT r.trigger, r.status, r.mode, q.user, q.status FROM puffindb.refreshes r JOIN puffindb.query_log q ON q.id = r.query_id WHERE r.view = 'mv' ORDER BY r.due_at");
    assert.deepEqual(recorded, [
      ['schedule', 'succeeded', 'incremental', 'pipeline', 'succeeded'],
      ['schedule', 'succeeded', 'incremental', 'pipeline', 'succeeded'],
      ['schedule', 'succeeded', 'incremental', 'pipeline', 'succeeded'],
    ]);
    const dues = await rows(a, "SELECT count(DISTINCT due_at), count(*), sum(rows_added) FROM puffindb.refreshes WHERE trigger = 'schedule'");
    assert.deepEqual(dues.map((r) => r.map(Number)), [[3, 3, 2]]);

    // A query over the view reads the view's table, not its sources.
    const plan = await a.cluster.explain('SELECT sum(n) FROM mv', admin);
    assert.deepEqual([...new Set(plan.scans.map((s) => s.table))], ['mv']);

    // SET REFRESH MANUAL clears the schedule.
    await rows(a, 'ALTER MATERIALIZED VIEW mv SET REFRESH MANUAL');
    assert.equal((await a.pipelines.runDue()).scheduled, 0);
    assert.deepEqual(await rows(b, 'SELECT schedule, next_due_at FROM puffindb.materialized_views'), [[null, null]]);
  });

  test('ALTER MATERIALIZED VIEW is a write (a reader key is refused it), parsed past DuckDB', async () => {
    for (const sql of ["ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '15 minutes'", 'alter materialized view "My View" set refresh manual;']) {
      const c = await classifyStatement(engines[0], sql);
      assert.deepEqual([c.kind, c.access, c.keyword], ['refresh_view', 'write', 'ALTER MATERIALIZED VIEW'], sql);
    }
    // A second statement after it is refused, never run (DuckDB reads the text as it was sent),
    // also behind a comment; a statement inside a comment is only a comment.
    for (const sql of ["ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '1 hour'; DROP TABLE facts", "ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '1 hour' /* x */; DROP TABLE facts", "ALTER MATERIALIZED VIEW mv; DROP TABLE facts"]) {
      await assert.rejects(classifyStatement(engines[0], sql), /syntax error|one SQL statement|could not be read consistently/, sql);
    }
    const commented = await classifyStatement(engines[0], "ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '1 hour' /* ; DROP TABLE facts */");
    assert.equal(commented.text, "ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '1 hour'");
    // Over HTTP a reader key gets 403 (access 'write'), a writer key may set it.
    const call = caller(await appFor({ plane: a, state: a.state, settings: a.settings } as unknown as ControlFixture));
    const reader = await newKey(call, 'reader');
    const post = (key: string, sql: string) => call('POST', '/v1/query', { key, body: { sql } });
    await errorOf(await post(reader.key, "ALTER MATERIALIZED VIEW mv SET REFRESH EVERY '1 hour'"), 403);
    const listed = await post(reader.key, 'SELECT view FROM puffindb.materialized_views');
    assert.equal(listed.status, 200, await listed.clone().text());
  });

  test("the coordinator Lambda's schedule event runs the control plane's due refreshes", async () => {
    const tick: PipelineTick = { at: 1, scheduled: 0, ran: [], skipped: [] };
    let ticks = 0;
    const lines: string[] = [];
    const handler = createCoordinatorHandler(async () => ({ pipelines: { runDue: async () => (ticks++, tick) } }) as unknown as ControlPlane, (line) => lines.push(line));
    assert.deepEqual(await handler({ action: 'run-due-refreshes' }), tick);
    assert.equal(ticks, 1);
    assert.match(lines[0], /"message":"pipelines"/);
  });

  test('a failed refresh is recorded with its error', async () => {
    await rows(a, 'CREATE TABLE src2 (x INTEGER)');
    await rows(a, 'INSERT INTO src2 VALUES (1)');
    await rows(a, 'CREATE MATERIALIZED VIEW mv2 AS SELECT x FROM src2');
    await rows(a, 'DROP TABLE src2');
    await assert.rejects(a.cluster.query('REFRESH MATERIALIZED VIEW mv2', admin), /no longer exists/);
    const failed = await rows(b, "SELECT trigger, status, mode, error FROM puffindb.refreshes WHERE view = 'mv2'");
    assert.equal(failed.length, 1);
    assert.deepEqual(failed[0].slice(0, 3), ['statement', 'failed', null]);
    assert.match(String(failed[0][3]), /^unknown_table: .*no longer exists/);
    // The lease was released: the next attempt fails the same way, not with a conflict.
    await assert.rejects(b.cluster.query('REFRESH MATERIALIZED VIEW mv2', admin), /no longer exists/);
  });

  test('puffindb pipeline list and history read the same tables from the CLI', async () => {
    // The CLI's warehouse over the same catalog directory (<home>/catalog) and warehouse.
    const settings = loadSettings({ PUFFINDB_HOME: dir, PUFFINDB_WAREHOUSE: join(dir, 'warehouse'), PUFFINDB_THREADS: '1' });
    const withWarehouse = async <T>(fn: (w: Warehouse) => Promise<T>): Promise<T> => {
      const w = await openWarehouse(settings, { invoker: 'in-process', runners: 'in-process' });
      try {
        return await fn(w);
      } finally {
        await w.close();
      }
    };
    const lines: string[] = [];
    await runPipelineCommand(['list', '--json'], settings, withWarehouse, (l) => lines.push(l));
    const listed = JSON.parse(lines.join('\n')) as { view: string; stale: boolean; schedule: string | null }[];
    assert.deepEqual(listed.map((v) => [v.view, v.schedule]), [['mv', null], ['mv2', null]]);
    lines.length = 0;
    await runPipelineCommand(['history', 'mv2', '--json'], settings, withWarehouse, (l) => lines.push(l));
    const history = JSON.parse(lines.join('\n')) as { view: string; trigger: string; status: string; detail: string }[];
    // Both failed attempts above, newest first.
    assert.deepEqual(history.map((r) => [r.view, r.trigger, r.status]), [['mv2', 'statement', 'failed'], ['mv2', 'statement', 'failed']]);
    assert.match(history[0].detail, /no longer exists/);
    await assert.rejects(runPipelineCommand(['history', '--limit', '0'], settings, withWarehouse, () => undefined), /--limit/);
    await assert.rejects(runPipelineCommand(['frobnicate'], settings, withWarehouse, () => undefined), /unknown pipeline command/);
  });
});
