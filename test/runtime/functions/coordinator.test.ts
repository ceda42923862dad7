// The coordinator Lambda: its two events (a query recorded by the admin API, or SQL given
// directly), the structured log line, bad events, and the admin API delegating to it
// through the real Lambda Invoke API (served locally), synchronously and asynchronously,
// including a cancellation made in the admin process while the coordinator runs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LambdaQueryDispatcher } from '../../../runtime/exec/coordinator-dispatcher.ts';
import { openControlPlane, type ControlPlane } from '../../../runtime/exec/control-plane.ts';
import { startLocalLambda, type LocalLambda } from '../../../runtime/exec/local-lambda.ts';
import { createCoordinatorHandler, type CoordinatorHandler } from '../../../runtime/functions/coordinator.ts';
import { borrowed, controlFixture, eventually, type ControlFixture } from '../../helpers/control-plane.ts';
import { ADMIN_KEY, appFor, caller, errorOf } from '../../helpers/api.ts';

let f: ControlFixture;
let handler: CoordinatorHandler;
const lines: Record<string, unknown>[] = [];

before(async () => {
  f = await controlFixture({ PUFFINDB_CONCURRENCY: '1' });
  handler = createCoordinatorHandler(async () => f.plane, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
});
after(async () => {
  await f.close();
});

describe('coordinator Lambda', () => {
  test('an event with SQL plans and runs it; the record and result are in the state store', async () => {
    const record = await handler({ sql: 'SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY g', user: 'etl' });
    assert.equal(record.status, 'succeeded');
    assert.equal(record.user, 'etl');
    assert.equal(record.progress.fragmentsDone, 3);
    const kept = await f.plane.manager.result(record.id);
    assert.equal(kept.kind === 'inline' && kept.result.rows.length, 7);
    const line = lines.at(-1)!;
    assert.deepEqual({ level: line.level, message: line.message, function: line.function, queryId: line.queryId, coldStart: line.coldStart, status: line.status }, { level: 'info', message: 'query', function: 'coordinator', queryId: record.id, coldStart: true, status: 'succeeded' });
    assert.equal(typeof line.durationMs, 'number');
  });

  test("a 'run' event runs a query the admin API recorded as queued", async () => {
    const queued = await f.plane.manager.enqueue('SELECT max(d) AS top FROM t', { user: 'api-key-1' });
    const record = await handler({ action: 'run', queryId: queued.id, format: 'csv' });
    assert.equal(record.id, queued.id);
    assert.equal(record.status, 'succeeded');
    assert.equal(lines.at(-1)!.coldStart, false);
    // A second delivery of the same event (Lambda retries Event invocations) runs nothing.
    const invocations = f.invoker.invocations;
    assert.equal((await handler({ action: 'run', queryId: queued.id })).status, 'succeeded');
    assert.equal(f.invoker.invocations, invocations);
  });

  test('a failing query is answered with its failed record and logged as an error', async () => {
    const record = await handler({ sql: 'SELECT nope FROM t' });
    assert.equal(record.status, 'failed');
    assert.equal(record.error?.code, 'binder_error');
    assert.equal(lines.at(-1)!.level, 'error');
  });

  test('a malformed event is a function error carrying a bad_request PuffinError', async () => {
    for (const event of [null, [], {}, { sql: '' }, { queryId: 5 }, { sql: 'SELECT 1', fragments: 0 }, { sql: 'SELECT 1', format: 'xml' }]) {
      await assert.rejects(handler(event), (err: Error) => {
        assert.equal(err.name, 'PuffinError');
        assert.equal((JSON.parse(err.message) as { error: { code: string } }).error.code, 'bad_request', JSON.stringify(event));
        return true;
      });
    }
  });
});

describe('the admin API delegating to the coordinator Lambda', () => {
  let lambda: LocalLambda;
  let admin: ControlPlane;

  before(async () => {
    lambda = await startLocalLambda({ coordinator: createCoordinatorHandler(async () => f.plane, () => undefined) });
    const dispatcher = new LambdaQueryDispatcher({ functionName: 'coordinator', region: 'us-east-1', endpoint: lambda.url, timeoutMs: 30_000, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    // The admin side: its own control plane over the same state store and tables.
    admin = await openControlPlane({ settings: f.settings, catalog: f.fx.catalog, state: f.state, invoker: borrowed(f.invoker), dispatch: dispatcher, onError: () => undefined });
  });
  after(async () => {
    await admin.close();
    await lambda.close();
  });

  test('synchronous and asynchronous queries run on the coordinator; cancellation reaches it', async () => {
    const app = await appFor({ ...f, plane: admin });
    const call = caller(app);
    const key = { key: ADMIN_KEY };
    const sql = 'SELECT g, sum(d) AS total FROM t GROUP BY g ORDER BY g';
    const sync = await call('POST', '/v1/query', { ...key, body: { sql } });
    assert.equal(sync.status, 200);
    const body = (await sync.json()) as { rows: { g: number }[]; stats: { fragments: number } };
    assert.deepEqual(body.rows.map((r) => r.g), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(body.stats.fragments, 3);

    const failed = await call('POST', '/v1/query', { ...key, body: { sql: 'SELECT nope FROM t' } });
    assert.equal((await errorOf(failed, 400)).code, 'binder_error');

    const submitted = (await (await call('POST', '/v1/queries', { ...key, body: { sql: 'SELECT count(*) AS n FROM t' } })).json()) as { queryId: string };
    const done = await eventually('the delegated query', async () => {
      const s = (await (await call('GET', `/v1/queries/${submitted.queryId}`, key)).json()) as { status: string };
      return s.status === 'succeeded' ? s : undefined;
    });
    assert.equal(done.status, 'succeeded');
    const result = (await (await call('GET', `/v1/queries/${submitted.queryId}/result`, key)).json()) as { rows: { n: number }[] };
    assert.deepEqual(result.rows, [{ n: 3000 }]);

    f.invoker.delayMs = 500;
    try {
      const before = f.invoker.invocations;
      const slow = (await (await call('POST', '/v1/queries', { ...key, body: { sql: 'SELECT min(f) FROM t WHERE g < 5' } })).json()) as { queryId: string };
      await eventually('the coordinator to start the slow query', async () => (f.invoker.invocations > before ? true : undefined));
      // The coordinator notices a cancellation written by another process from its record.
      const cancelled = (await (await call('DELETE', `/v1/queries/${slow.queryId}`, key)).json()) as { status: string };
      assert.equal(cancelled.status, 'cancelled');
      await new Promise((r) => setTimeout(r, 900));
      assert.equal(f.invoker.invocations - before, 1, 'pending fragments were not started');
      assert.equal((await admin.manager.get(slow.queryId))?.status, 'cancelled');
    } finally {
      f.invoker.delayMs = 0;
    }
  });

  test('a coordinator that cannot be invoked: 503, and the query ends failed rather than queued', async () => {
    const unreachable = new LambdaQueryDispatcher({ functionName: 'coordinator', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', timeoutMs: 5_000, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const plane = await openControlPlane({ settings: f.settings, catalog: f.fx.catalog, state: f.state, invoker: borrowed(f.invoker), dispatch: unreachable, onError: () => undefined });
    try {
      const call = caller(await appFor({ ...f, plane }));
      const res = await call('POST', '/v1/queries', { key: ADMIN_KEY, body: { sql: 'SELECT 1' } });
      assert.match((await errorOf(res, 503)).message, /coordinator Lambda 'coordinator' could not be invoked/);
      const [last] = await f.state.listQueries({ limit: 1 });
      assert.equal(last.status, 'failed');
      assert.equal(last.error?.code, 'unavailable');
    } finally {
      await plane.close();
    }
  });
});
