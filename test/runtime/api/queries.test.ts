// Asynchronous queries through the API: submit, poll to succeeded, the result as JSON, CSV
// and Arrow, cancellation of a slow query, the result cache, and queries kept private to
// the key that submitted them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tableFromIPC } from 'apache-arrow';
import { controlFixture, eventually, type ControlFixture } from '../../helpers/control-plane.ts';
import { ADMIN_KEY, appFor, caller, errorOf, newKey, type Caller } from '../../helpers/api.ts';

let f: ControlFixture;
let call: Caller;
let reader: string;

interface Status {
  queryId: string;
  status: string;
  progress: { fragmentsDone: number; fragmentsTotal: number; bytesScanned: number };
  error?: { code: string; message: string };
  cacheHit?: boolean;
  result?: { path?: string; location?: string };
}

before(async () => {
  f = await controlFixture({ PUFFINDB_CONCURRENCY: '1' });
  call = caller(await appFor(f));
  reader = (await newKey(call, 'reader')).key;
});
after(async () => {
  await f.close();
});

async function submit(sql: string, key = reader): Promise<Status> {
  const res = await call('POST', '/v1/queries', { key, body: { sql } });
  assert.equal(res.status, 202);
  const body = (await res.json()) as Status;
  assert.equal(res.headers.get('location'), `/v1/queries/${body.queryId}`);
  return body;
}

async function poll(id: string, key = reader): Promise<Status> {
  return eventually(`query ${id} to finish`, async () => {
    const res = await call('GET', `/v1/queries/${id}`, { key });
    assert.equal(res.status, 200);
    const s = (await res.json()) as Status;
    return ['succeeded', 'failed', 'cancelled'].includes(s.status) ? s : undefined;
  });
}

describe('asynchronous queries', () => {
  const SQL = 'SELECT g, count(*) AS n, sum(d) AS total, min(dt) AS first_day, max(id) AS top FROM t GROUP BY g ORDER BY g';

  test('submit, poll to succeeded, and fetch the result as JSON, CSV and Arrow', async () => {
    const queued = await submit(SQL);
    assert.equal(queued.status, 'queued');
    const done = await poll(queued.queryId);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.progress.fragmentsTotal, 3);
    assert.equal(done.progress.fragmentsDone, 3);
    assert.ok(done.progress.bytesScanned > 0);
    assert.deepEqual(done.result, { path: `/v1/queries/${queued.queryId}/result` });
    const want = await f.fx.engine.query(SQL);

    const json = await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader });
    assert.equal(json.status, 200);
    const body = (await json.json()) as { queryId: string; rows: Record<string, unknown>[] };
    assert.equal(body.queryId, queued.queryId);
    assert.deepEqual(body.rows.map((r) => [r.g, r.n]), want.rows.map((r) => [r[0], Number(r[1])]));

    const csv = await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader, headers: { accept: 'text/csv' } });
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines[0], 'g,n,total,first_day,top');
    assert.equal(lines[1], want.rows[0].join(','));

    const arrow = await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader, headers: { accept: 'application/vnd.apache.arrow.stream' } });
    assert.equal(arrow.headers.get('content-type'), 'application/vnd.apache.arrow.stream');
    const table = tableFromIPC(new Uint8Array(await arrow.arrayBuffer()));
    assert.deepEqual(table.schema.fields.map((x) => `${x.name}:${x.type}`), ['g:Int32', 'n:Int64', 'total:Decimal[38e+2]', 'first_day:Date32<DAY>', 'top:Int64']);
    assert.equal(table.numRows, want.rows.length);
    assert.deepEqual([...table.getChild('n')!].map(String), want.rows.map((r) => String(r[1])));
    assert.deepEqual([...table.getChild('top')!].map(String), want.rows.map((r) => String(r[4])));
  });

  test('a failed query reports its error; its result is a 409', async () => {
    const queued = await submit('SELECT missing_column FROM t');
    const done = await poll(queued.queryId);
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'binder_error');
    assert.equal((await errorOf(await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader }), 409)).code, 'conflict');
  });

  test('DELETE cancels a slow query: status cancelled, no result, pending fragments not started', async () => {
    f.invoker.delayMs = 500;
    try {
      const before = f.invoker.invocations;
      const queued = await submit('SELECT avg(f) FROM t WHERE g > 1');
      await eventually('the query to be running', async () => {
        const s = (await (await call('GET', `/v1/queries/${queued.queryId}`, { key: reader })).json()) as Status;
        return s.status === 'running' && f.invoker.invocations > before ? s : undefined;
      });
      const pending = await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader });
      assert.match((await errorOf(pending, 409)).message, /is running/);
      const res = await call('DELETE', `/v1/queries/${queued.queryId}`, { key: reader });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as Status).status, 'cancelled');
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(f.invoker.invocations - before, 1, 'the other fragments were never invoked');
      const status = (await (await call('GET', `/v1/queries/${queued.queryId}`, { key: reader })).json()) as Status;
      assert.equal(status.status, 'cancelled');
      assert.equal(status.error?.code, 'cancelled');
      const result = await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader });
      assert.match((await errorOf(result, 409)).message, /cancelled/);
    } finally {
      f.invoker.delayMs = 0;
    }
  });

  test('a finished query cannot be cancelled', async () => {
    const queued = await submit('SELECT 7 AS seven');
    await poll(queued.queryId);
    assert.match((await errorOf(await call('DELETE', `/v1/queries/${queued.queryId}`, { key: reader }), 409)).message, /already succeeded/);
  });

  test("another key's queries are invisible; an admin sees them", async () => {
    const other = (await newKey(call, 'reader', 'other reader')).key;
    const queued = await submit('SELECT 8 AS eight');
    await poll(queued.queryId);
    assert.equal((await errorOf(await call('GET', `/v1/queries/${queued.queryId}`, { key: other }), 404)).code, 'not_found');
    assert.equal((await errorOf(await call('DELETE', `/v1/queries/${queued.queryId}`, { key: other }), 404)).code, 'not_found');
    const mine = (await (await call('GET', '/v1/queries', { key: other })).json()) as { queries: Status[] };
    assert.equal(mine.queries.length, 0);
    assert.equal((await call('GET', `/v1/queries/${queued.queryId}`, { key: ADMIN_KEY })).status, 200);
    const all = (await (await call('GET', '/v1/queries?limit=1000', { key: ADMIN_KEY })).json()) as { queries: Status[] };
    assert.ok(all.queries.some((q) => q.queryId === queued.queryId));
  });
});

describe('result cache through the API', () => {
  test('the repeat of a synchronous query is a cache hit and invokes no worker', async () => {
    const sql = 'SELECT s, count(*) AS n FROM t GROUP BY s ORDER BY s';
    const first = (await (await call('POST', '/v1/query', { key: reader, body: { sql } })).json()) as { cacheHit: boolean; rows: unknown[] };
    assert.equal(first.cacheHit, false);
    const invocations = f.invoker.invocations;
    const second = (await (await call('POST', '/v1/query', { key: reader, body: { sql: `${sql}  ` } })).json()) as { cacheHit: boolean; rows: unknown[]; stats: { fragments: number } };
    assert.equal(second.cacheHit, true);
    assert.deepEqual(second.rows, first.rows);
    assert.equal(f.invoker.invocations, invocations);
    // An asynchronous repeat is answered from the cache too.
    const queued = await submit(sql);
    const done = await poll(queued.queryId);
    assert.equal(done.cacheHit, true);
    assert.equal(f.invoker.invocations, invocations);
  });
});
