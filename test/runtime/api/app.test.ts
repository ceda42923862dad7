// The HTTP API over a real local cluster (in-process workers) and the in-memory state
// store: every route answers, and every kind of bad input is a 4xx with a clear JSON error.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUERY_OR_GENERATOR_REQUEST } from '../../../runtime/api/generators.ts';
import { toJsonSchema } from '../../../runtime/api/schema.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';
import { ADMIN_KEY, apiFixture, appFor, caller, errorOf, type Caller } from '../../helpers/api.ts';

let f: ControlFixture;
let call: Caller;

before(async () => ({ f, call } = await apiFixture()));
after(() => f.close());

const admin = { key: ADMIN_KEY };

function query(sql: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return call('POST', '/v1/query', { ...admin, body: { sql, ...extra }, headers });
}

describe('HTTP API routes', () => {
  test('GET /v1/health needs no key', async () => {
    const res = await call('GET', '/v1/health');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', version: 'dev', state: 'ok', workers: 'ok' });
  });

  test('POST /v1/query answers rows, with exact decimals', async () => {
    const sql = 'SELECT g, count(*) AS n, sum(d) AS total FROM t GROUP BY g ORDER BY g LIMIT 2';
    const res = await query(sql);
    assert.equal(res.status, 200);
    const text = await res.text();
    const body = JSON.parse(text) as { queryId: string; shape: string; cacheHit: boolean; rows: Record<string, unknown>[]; columns: unknown[] };
    assert.equal(body.shape, 'scan-aggregate');
    assert.equal(body.cacheHit, false);
    assert.match(body.queryId, /^[0-9A-Z]{26}$/);
    assert.equal(res.headers.get('x-puffindb-query-id'), body.queryId);
    const want = await f.fx.engine.query(sql);
    assert.deepEqual(body.rows.map((r) => r.g), want.rows.map((r) => r[0]));
    assert.ok(text.includes(`"total": ${want.rows[0][2]}`), 'decimal written digit for digit as a JSON number');
  });

  test('Accept: text/csv answers CSV', async () => {
    const res = await query("SELECT 'a,b' AS s, 1 AS n", {}, { accept: 'text/csv' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
    assert.equal(await res.text(), 's,n\r\n"a,b",1\r\n');
  });

  test('POST /v1/explain returns the plan', async () => {
    const res = await call('POST', '/v1/explain', { ...admin, body: { sql: 'SELECT * FROM t ORDER BY id LIMIT 3', fragments: 2 } });
    assert.equal(res.status, 200);
    const plan = (await res.json()) as { shape: string; fragments: unknown[] };
    assert.equal(plan.shape, 'top-k');
    assert.equal(plan.fragments.length, 2);
  });

  test('GET /v1/tables lists tables, with the system tables (query log, materialized views, refreshes)', async () => {
    const body = (await (await call('GET', '/v1/tables', admin)).json()) as { tables: { name: string; fileCount: number }[] };
    assert.deepEqual(body.tables.map((t) => t.name), ['dim', 'empty', 'puffindb.materialized_views', 'puffindb.query_log', 'puffindb.refreshes', 't']);
    assert.equal(body.tables.find((t) => t.name === 't')?.fileCount, 6);
  });

  test('GET /v1/tables/{name}: schema, snapshot, file count and size', async () => {
    const res = await call('GET', '/v1/tables/t', admin);
    assert.equal(res.status, 200);
    const t = (await res.json()) as { name: string; columns: { name: string; type: string }[]; snapshotId: string; fileCount: number; sizeBytes: number; rowCount: number };
    const snapshot = (await f.fx.catalog.getTable('t'))!;
    assert.equal(t.snapshotId, snapshot.snapshotId);
    assert.equal(t.fileCount, 6);
    assert.equal(t.rowCount, 3000);
    assert.equal(t.sizeBytes, snapshot.files.reduce((s, x) => s + x.sizeBytes, 0));
    assert.deepEqual(t.columns.find((c) => c.name === 'd'), { name: 'd', type: 'DECIMAL(15,2)' });
    const missing = await call('GET', '/v1/tables/nope', admin);
    assert.equal((await errorOf(missing, 404)).code, 'unknown_table');
  });

  test('GET /v1/logs pages through the query log stream', async () => {
    await query('SELECT 1 AS one');
    const first = (await (await call('GET', '/v1/logs?limit=1', admin)).json()) as { entries: { id: string; status: string; user: string }[]; cursor: string; table: string };
    assert.equal(first.entries.length, 1);
    assert.equal(first.table, 'puffindb.query_log');
    const next = (await (await call('GET', `/v1/logs?limit=100&cursor=${encodeURIComponent(first.cursor)}`, admin)).json()) as { entries: { id: string }[] };
    assert.ok(next.entries.length >= 1);
    assert.ok(!next.entries.some((e) => e.id === first.entries[0].id), 'the cursor moves on');
  });

  test('GET /v1/config shows settings, never the admin key', async () => {
    const res = await call('GET', '/v1/config', admin);
    assert.equal(res.status, 200);
    const text = await res.text();
    const body = JSON.parse(text) as { settings: Record<string, { env: string; value: unknown }> };
    assert.equal(body.settings.warehouse.value, f.settings.warehouse);
    assert.equal(body.settings.resultInlineLimitBytes.env, 'PUFFINDB_RESULT_INLINE_LIMIT_BYTES');
    assert.equal(body.settings.adminKey, undefined);
    assert.ok(!text.includes(ADMIN_KEY), 'the admin key is not in the config');
  });

  test('GET /v1/config removes credentials from URLs', async () => {
    const withRedis = await appFor(f, { redisUrl: 'rediss://user:s3cret@cache.example:6379' });
    const text = await (await caller(withRedis)('GET', '/v1/config', admin)).text();
    assert.ok(!text.includes('s3cret'));
    assert.ok(text.includes('rediss://cache.example:6379'));
  });

  test('GET /v1/openapi.json describes every route, with the schemas that validate requests', async () => {
    const res = await call('GET', '/v1/openapi.json', admin);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> }; security?: unknown[]; parameters?: { name: string }[] }>> };
    assert.equal(doc.openapi, '3.1.0');
    const expected = [
      'get /v1/health', 'post /v1/query', 'post /v1/explain', 'post /v1/queries', 'get /v1/queries', 'get /v1/queries/{id}', 'get /v1/queries/{id}/result',
      'delete /v1/queries/{id}', 'get /v1/tables', 'get /v1/tables/{name}', 'get /v1/tables/{name}/files', 'get /v1/logs', 'post /v1/keys', 'get /v1/keys', 'delete /v1/keys/{id}', 'get /v1/config', 'get /v1/openapi.json',
      'post /v1/translate', 'post /v1/parse', 'post /v1/format', 'get /v1/generators', 'post /v1/generators', 'delete /v1/generators/{name}',
      'get /v1/catalogs', 'post /v1/catalogs', 'delete /v1/catalogs/{name}',
      'get /v1/remotes', 'post /v1/remotes', 'delete /v1/remotes/{name}',
    ];
    const listed = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    assert.deepEqual(listed.sort(), expected.sort());
    const schema = doc.paths['/v1/query'].post.requestBody?.content['application/json'].schema;
    // sql, or generator with input (runtime/api/generators.ts): exactly one, checked by the handler.
    assert.deepEqual(schema, toJsonSchema(QUERY_OR_GENERATOR_REQUEST));
    assert.equal((schema as { required?: string[] }).required, undefined);
    assert.ok(['sql', 'generator', 'input', 'params'].every((k) => k in (schema as { properties: object }).properties));
    assert.deepEqual(doc.paths['/v1/health'].get.security, []);
    assert.deepEqual(doc.paths['/v1/logs'].get.parameters?.map((p) => p.name), ['limit', 'cursor']);
  });
});

describe('bad input is a 4xx with {error: {code, message}}', () => {
  test('a syntax error carries DuckDB message and position', async () => {
    const e = await errorOf(await query('SELEC 1'), 400);
    assert.equal(e.code, 'syntax_error');
    assert.match(e.message, /syntax error at or near "SELEC"/);
  });

  test('an unknown table names it and lists the known ones', async () => {
    const e = await errorOf(await query('SELECT * FROM nope'), 404);
    assert.equal(e.code, 'unknown_table');
    assert.match(e.message, /'nope'.*dim, empty, puffindb\.materialized_views, puffindb\.query_log, puffindb\.refreshes, t/);
  });

  test('an unknown column is a binder error', async () => {
    const e = await errorOf(await query('SELECT nope FROM t'), 400);
    assert.equal(e.code, 'binder_error');
    assert.match(e.message, /nope/);
  });

  test('queries reaching outside the warehouse are refused', async () => {
    for (const sql of ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'", "COPY (SELECT 1) TO '/tmp/x.parquet'"]) {
      const res = await query(sql);
      assert.ok(res.status === 403 || res.status === 400, `${sql}: ${res.status}`);
      const e = await errorOf(res);
      assert.ok(['access_denied', 'unsupported'].includes(e.code), `${sql}: ${e.code} ${e.message}`);
    }
  });

  test('malformed JSON, missing or wrong-typed fields, unknown fields, oversize bodies', async () => {
    const post = (body: string) => call('POST', '/v1/query', { ...admin, body });
    assert.equal((await errorOf(await post('{nope'), 400)).code, 'bad_request');
    assert.match((await errorOf(await post('[1]'), 400)).message, /JSON object/);
    assert.match((await errorOf(await post('{}'), 400)).message, /'sql' is required/);
    assert.match((await errorOf(await post(JSON.stringify({ sql: 5 })), 400)).message, /'sql' must be a string/);
    assert.match((await errorOf(await post(JSON.stringify({ sql: '  ' })), 400)).message, /'sql' is empty/);
    assert.match((await errorOf(await post(JSON.stringify({ sql: 'SELECT 1', fragments: 0 })), 400)).message, /'fragments' must be an integer from 1/);
    assert.match((await errorOf(await post(JSON.stringify({ sql: 'SELECT 1', timeoutMs: 'soon' })), 400)).message, /'timeoutMs'/);
    assert.match((await errorOf(await post(JSON.stringify({ sql: 'SELECT 1', frgments: 2 })), 400)).message, /unknown field\(s\): frgments/);
    assert.match((await errorOf(await call('POST', '/v1/keys', { ...admin, body: { name: 'x', role: 'root' } }), 400)).message, /'role' must be one of reader, writer, admin/);
    const big = await post(JSON.stringify({ sql: `SELECT '${'x'.repeat(5000)}'` }));
    assert.equal((await errorOf(big, 413)).code, 'payload_too_large');
  });

  test('bad query-string parameters', async () => {
    assert.match((await errorOf(await call('GET', '/v1/queries?limit=many', admin), 400)).message, /'limit' must be an integer/);
    assert.match((await errorOf(await call('GET', '/v1/queries?status=done', admin), 400)).message, /'status' must be one of/);
    assert.match((await errorOf(await call('GET', '/v1/logs?since=1', admin), 400)).message, /unknown field\(s\): since/);
  });

  test('an Accept header naming no format we produce', async () => {
    const e = await errorOf(await query('SELECT 1', {}, { accept: 'application/xml' }), 400);
    assert.match(e.message, /application\/xml/);
  });

  test('unknown routes are 404 JSON (401 first without a key)', async () => {
    assert.equal((await errorOf(await call('GET', '/v1/nope', admin), 404)).code, 'not_found');
    assert.equal((await errorOf(await call('GET', '/v1/nope'), 401)).code, 'unauthorized');
    assert.equal((await errorOf(await call('GET', '/elsewhere'), 404)).code, 'not_found');
    assert.equal((await errorOf(await call('PUT', '/v1/query', admin), 404)).code, 'not_found');
  });

  test('unknown query ids, and a succeeded query whose result expired', async () => {
    assert.equal((await errorOf(await call('GET', '/v1/queries/01ARZ3NDEKTSV4RRFFQ69G5FAV', admin), 404)).code, 'not_found');
    assert.match((await errorOf(await call('GET', '/v1/queries/not-an-id/result', admin), 400)).message, /"not-an-id" is not a query id/);
    assert.equal((await errorOf(await call('DELETE', '/v1/queries/01ARZ3NDEKTSV4RRFFQ69G5FAV', admin), 404)).code, 'not_found');
    const id = '01ARZ3NDEKTSV4RRFFQ69G5FAX';
    const now = Date.now();
    await f.state.createQuery({ id, user: 'bootstrap-admin', sql: 'SELECT 1', status: 'succeeded', submittedAt: now, finishedAt: now, deadline: now + 1000, progress: { fragmentsDone: 0, fragmentsTotal: 0, bytesScanned: 0 } });
    const e = await errorOf(await call('GET', `/v1/queries/${id}/result`, admin), 404);
    assert.match(e.message, /expired/);
  });
});
