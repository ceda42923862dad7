// The HTTP API over a real local cluster (in-process workers): answers, and a clear JSON
// error with a 4xx status for every kind of bad input.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Hono } from 'hono';
import { createApp } from '../../../runtime/api/app.ts';
import { LocalCluster } from '../../../runtime/exec/cluster.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { plannerFixture, type PlannerFixture } from '../planner/fixture.ts';

let fx: PlannerFixture;
let cluster: LocalCluster;
let app: Hono;

before(async () => {
  fx = await plannerFixture();
  const settings = loadSettings({ PUFFINDB_HOME: join(fx.dir, 'home'), PUFFINDB_WAREHOUSE: fx.dir, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog: fx.catalog, invoker: 'in-process' });
  app = createApp({ service: cluster, maxBodyBytes: 4096 });
});
after(async () => {
  await cluster.close();
  fx.close();
});

function post(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(app.request(path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } }));
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.ok(body.error?.code && body.error?.message, 'error body has code and message');
  return body.error;
}

describe('HTTP API', () => {
  test('GET /v1/health', async () => {
    const res = await app.request('/v1/health');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'ok');
  });

  test('POST /v1/query answers rows, with exact decimals', async () => {
    const res = await post('/v1/query', JSON.stringify({ sql: 'SELECT g, count(*) AS n, sum(d) AS total FROM t GROUP BY g ORDER BY g LIMIT 2' }));
    assert.equal(res.status, 200);
    const text = await res.text();
    const body = JSON.parse(text) as { shape: string; rows: Record<string, unknown>[]; columns: unknown[] };
    assert.equal(body.shape, 'scan-aggregate');
    const want = await fx.engine.query('SELECT g, count(*) AS n, sum(d) AS total FROM t GROUP BY g ORDER BY g LIMIT 2');
    assert.deepEqual(body.rows.map((r) => r.g), want.rows.map((r) => r[0]));
    assert.ok(text.includes(`"total": ${want.rows[0][2]}`), 'decimal written digit for digit as a JSON number');
  });

  test('Accept: text/csv answers CSV', async () => {
    const res = await post('/v1/query', JSON.stringify({ sql: "SELECT 'a,b' AS s, 1 AS n" }), { accept: 'text/csv' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 's,n\r\n"a,b",1\r\n');
  });

  test('POST /v1/explain returns the plan', async () => {
    const res = await post('/v1/explain', JSON.stringify({ sql: 'SELECT * FROM t ORDER BY id LIMIT 3', fragments: 2 }));
    assert.equal(res.status, 200);
    const plan = (await res.json()) as { shape: string; fragments: unknown[] };
    assert.equal(plan.shape, 'top-k');
    assert.equal(plan.fragments.length, 2);
  });

  test('GET /v1/tables', async () => {
    const body = (await (await app.request('/v1/tables')).json()) as { tables: { name: string; fileCount: number }[] };
    assert.deepEqual(body.tables.map((t) => t.name), ['dim', 'empty', 't']);
    assert.equal(body.tables.find((t) => t.name === 't')?.fileCount, 6);
  });

  test('a syntax error carries DuckDB message and position', async () => {
    const res = await post('/v1/query', JSON.stringify({ sql: 'SELEC 1' }));
    assert.equal(res.status, 400);
    const e = await errorOf(res);
    assert.equal(e.code, 'syntax_error');
    assert.match(e.message, /syntax error at or near "SELEC"/);
  });

  test('an unknown table names it and lists the known ones', async () => {
    const res = await post('/v1/query', JSON.stringify({ sql: 'SELECT * FROM nope' }));
    assert.equal(res.status, 404);
    const e = await errorOf(res);
    assert.equal(e.code, 'unknown_table');
    assert.match(e.message, /'nope'.*dim, empty, t/);
  });

  test('an unknown column is a binder error', async () => {
    const e = await errorOf(await post('/v1/query', JSON.stringify({ sql: 'SELECT nope FROM t' })));
    assert.equal(e.code, 'binder_error');
    assert.match(e.message, /nope/);
  });

  test('queries reaching outside the warehouse are refused', async () => {
    for (const sql of ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'", "COPY (SELECT 1) TO '/tmp/x.parquet'"]) {
      const res = await post('/v1/query', JSON.stringify({ sql }));
      assert.ok(res.status === 403 || res.status === 400, `${sql}: ${res.status}`);
      const e = await errorOf(res);
      assert.ok(['access_denied', 'unsupported'].includes(e.code), `${sql}: ${e.code} ${e.message}`);
    }
  });

  test('bad bodies: malformed JSON, missing or wrong-typed fields, unknown fields, oversize', async () => {
    assert.equal((await errorOf(await post('/v1/query', '{nope'))).code, 'bad_request');
    assert.match((await errorOf(await post('/v1/query', '{}'))).message, /'sql' is required/);
    assert.match((await errorOf(await post('/v1/query', JSON.stringify({ sql: 5 })))).message, /'sql'/);
    assert.match((await errorOf(await post('/v1/query', JSON.stringify({ sql: 'SELECT 1', fragments: 0 })))).message, /'fragments'/);
    assert.match((await errorOf(await post('/v1/query', JSON.stringify({ sql: 'SELECT 1', frgments: 2 })))).message, /unknown field/);
    const big = await post('/v1/query', JSON.stringify({ sql: `SELECT '${'x'.repeat(5000)}'` }));
    assert.equal(big.status, 413);
    assert.equal((await errorOf(big)).code, 'payload_too_large');
  });

  test('unknown routes are 404 JSON', async () => {
    const res = await app.request('/v1/nope');
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'not_found');
  });
});
