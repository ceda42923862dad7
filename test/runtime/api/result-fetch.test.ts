// GET /v1/queries/{id}/result over results too large to answer inline (kept as Parquet
// under the results prefix) and small ones: JSON pages with offset/limit and next links,
// CSV, an Arrow IPC stream of several record batches, Parquet, and refusals of bad input.
// POST /v1/query never names the server-side location of a large result.

import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RecordBatchReader, tableFromIPC } from 'apache-arrow';
import { ADMIN_KEY, apiFixture, errorOf, type Caller } from '../../helpers/api.ts';
import { eventually, type ControlFixture } from '../../helpers/control-plane.ts';

let f: ControlFixture;
let call: Caller;

before(async () => {
  ({ f, call } = await apiFixture({ PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '2000' }));
});
after(async () => {
  await f.close();
});

interface Answer {
  queryId: string;
  rowCount?: number;
  result?: string;
  rows?: unknown[];
}

interface Page {
  columns: { name: string; type: string }[];
  rows: { id: number; d: number | null; s: string }[];
  rowCount: number;
  offset: number;
  limit: number | null;
  next: string | null;
}

async function run(sql: string): Promise<Answer> {
  const res = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.doesNotMatch(text, /file:|location/, 'no server-side location in the answer');
  return JSON.parse(text) as Answer;
}

const get = (path: string, headers: Record<string, string> = {}) => call('GET', path, { key: ADMIN_KEY, headers });

describe('GET /v1/queries/{id}/result', () => {
  let large: Answer;
  before(async () => {
    large = await run('SELECT id, d, s FROM t ORDER BY id');
  });

  test('a large result is answered with its row count and the path to fetch it from', async () => {
    assert.equal(large.rowCount, 3000);
    assert.equal(large.result, `/v1/queries/${large.queryId}/result`);
    assert.equal(large.rows, undefined);
    const status = (await (await get(`/v1/queries/${large.queryId}`)).json()) as { result: unknown };
    assert.deepEqual(status.result, { path: large.result });
  });

  test('JSON pages: offset and limit, exact decimals, next links to the end', async () => {
    const res = await get(`${large.result}?format=json&offset=10&limit=5`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-puffindb-row-count'), '3000');
    const page = (await res.json()) as Page;
    assert.deepEqual(page.rows.map((r) => r.id), [10, 11, 12, 13, 14]);
    assert.deepEqual(page.columns.map((c) => c.type), ['BIGINT', 'DECIMAL(15,2)', 'VARCHAR']);
    assert.deepEqual(page.rows.map((r) => r.d), [12.5, null, 15, 16.25, 17.5]);
    assert.deepEqual([page.rowCount, page.offset, page.limit], [3000, 10, 5]);
    assert.equal(page.next, `${large.result}?format=json&offset=15&limit=5`);

    let path: string | null = `${large.result}?format=json&limit=1024`;
    const ids: number[] = [];
    while (path) {
      const p = (await (await get(path)).json()) as Page;
      ids.push(...p.rows.map((r) => r.id));
      path = p.next;
    }
    assert.equal(ids.length, 3000);
    assert.ok(ids.every((id, i) => id === i));
    const whole = (await (await get(large.result!)).json()) as Page;
    assert.deepEqual([whole.rows.length, whole.limit, whole.next], [3000, null, null]);
    const past = (await (await get(`${large.result}?offset=5000`)).json()) as Page;
    assert.deepEqual(past.rows, []);
  });

  test('CSV with a header, paged the same way', async () => {
    const res = await get(`${large.result}?offset=2998`, { accept: 'text/csv' });
    assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
    assert.equal(await res.text(), 'id,d,s\r\n2998,627.50,k4\r\n2999,628.75,k5\r\n');
  });

  test('Arrow: an IPC stream read batch by batch', async () => {
    const big = await run('SELECT range AS id, range::VARCHAR AS s FROM range(40000)');
    assert.equal(big.rowCount, 40000);
    const res = await get(`${big.result}?format=arrow`);
    assert.equal(res.headers.get('content-type'), 'application/vnd.apache.arrow.stream');
    const reader = await RecordBatchReader.from(res);
    const sizes: number[] = [];
    let last = -1n;
    for await (const batch of reader) {
      sizes.push(batch.numRows);
      last = batch.getChild('id')!.get(batch.numRows - 1) as bigint;
    }
    assert.ok(sizes.length > 1, `several record batches, got ${sizes.join(', ')}`);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 40000);
    assert.equal(last, 39999n);
    const window = tableFromIPC(new Uint8Array(await (await get(`${big.result}?format=arrow&offset=100&limit=3`)).arrayBuffer()));
    assert.deepEqual(window.getChild('id')!.toArray(), BigInt64Array.from([100n, 101n, 102n]));
  });

  test('Parquet: the stored file itself, and an inline result written as Parquet', async () => {
    const res = await get(`${large.result}?format=parquet`);
    assert.equal(res.headers.get('content-type'), 'application/vnd.apache.parquet');
    assert.match(res.headers.get('content-disposition') ?? '', new RegExp(`${large.queryId}\\.parquet`));
    const path = join(f.fx.dir, 'fetched.parquet');
    writeFileSync(path, new Uint8Array(await res.arrayBuffer()));
    const back = await f.fx.engine.query(`SELECT count(*)::INTEGER AS n, sum(d)::VARCHAR AS total FROM read_parquet('${path}')`);
    const direct = (await run('SELECT count(*)::INTEGER AS n, sum(d)::VARCHAR AS total FROM t')).rows as { n: number; total: string }[];
    assert.deepEqual(back.rows, [[direct[0].n, direct[0].total]]);

    const small = await run('SELECT 7 AS x, 2.50::DECIMAL(4,2) AS y');
    assert.ok(Array.isArray(small.rows), 'a small result comes inline');
    const inline = await get(`/v1/queries/${small.queryId}/result`, { accept: 'application/vnd.apache.parquet' });
    const inlinePath = join(f.fx.dir, 'inline.parquet');
    writeFileSync(inlinePath, new Uint8Array(await inline.arrayBuffer()));
    assert.deepEqual((await f.fx.engine.query(`SELECT x, y::VARCHAR FROM read_parquet('${inlinePath}')`)).rows, [[7, '2.50']]);
    const json = (await (await get(`/v1/queries/${small.queryId}/result?limit=1`)).json()) as Page & { rows: { x: number }[] };
    assert.deepEqual([json.rows, json.rowCount, json.next], [[{ x: 7, y: 2.5 }], 1, null]);
  });

  test('a client that goes away mid-stream leaves no scratch copy or connection behind', async () => {
    const scratch = join(f.settings.home, 'control', 'results');
    const copies = () => readdirSync(scratch).filter((n) => n.startsWith('read-'));
    for (const format of ['json', 'arrow', 'csv']) {
      const res = await get(`${large.result}?format=${format}`);
      const reader = res.body!.getReader();
      assert.equal((await reader.read()).done, false);
      await reader.cancel();
    }
    await eventually('scratch copies to be removed', async () => (copies().length === 0 ? true : undefined), 5000);
  });

  test('bad input is a 400 naming the problem', async () => {
    assert.match((await errorOf(await get(`${large.result}?format=xml`), 400)).message, /format/);
    assert.match((await errorOf(await get(`${large.result}?offset=-1`), 400)).message, /offset/);
    assert.match((await errorOf(await get(`${large.result}?limit=0`), 400)).message, /limit/);
    assert.match((await errorOf(await get(`${large.result}?limit=ten`), 400)).message, /limit/);
    assert.match((await errorOf(await get(`${large.result}?format=parquet&limit=5`), 400)).message, /whole result/);
    assert.match((await errorOf(await get(large.result!, { accept: 'image/png' }), 400)).message, /parquet/);
    assert.match((await errorOf(await get(`${large.result}?page=2`), 400)).message, /page/);
  });
});

describe('POST /v1/query params', () => {
  test('$n and ? values are bound as literals, checked and counted', async () => {
    const res = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT count(*) AS n FROM t WHERE id < $1 AND s = $2', params: [100, 'k3'] } });
    assert.deepEqual(((await res.json()) as { rows: unknown[] }).rows, [{ n: 8 }]);
    const quoted = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT ? AS v', params: ["x'); DROP TABLE t; --"] } });
    assert.deepEqual(((await quoted.json()) as { rows: unknown[] }).rows, [{ v: "x'); DROP TABLE t; --" }]);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT $1, $2', params: [1] } }), 400)).message, /takes 2 parameter/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT ?', params: [{ a: 1 }] } }), 400)).message, /parameter 1 is a object/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT ?', params: 'x' } }), 400)).message, /params.*array/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT ?', params: [1], dialect: 'snowflake' } }), 400)).message, /DuckDB SQL only/);
  });
});

test('the OpenAPI document lists the result route\'s formats, paging and media types', async () => {
  const doc = (await (await get('/v1/openapi.json')).json()) as { paths: Record<string, { get: { parameters: { name: string; schema: { enum?: string[] } }[]; responses: Record<string, { content?: Record<string, unknown> }> } }> };
  const route = doc.paths['/v1/queries/{id}/result'].get;
  assert.deepEqual(route.parameters.map((p) => p.name), ['id', 'format', 'offset', 'limit']);
  assert.deepEqual(route.parameters[1].schema.enum, ['json', 'csv', 'arrow', 'parquet']);
  assert.deepEqual(Object.keys(route.responses['200'].content ?? {}), ['application/json', 'text/csv', 'application/vnd.apache.arrow.stream', 'application/vnd.apache.parquet']);
});
