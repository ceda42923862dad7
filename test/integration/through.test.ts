// Queries across two PuffinDB servers on loopback, each over its own warehouse (issue 14,
// item 4): `west` (the local one: customers) and `east` (orders), each registered on the other
// with a reader key of its own. SELECT ... THROUGH answers what the remote answers; a chain
// west -> east -> west cascades; a join of a local table and east.orders runs locally over
// what east sent, with the pushed-down SQL in the query record and in explain, and the pushed
// filter reduces the rows fetched; an aggregate over east.orders alone is pushed whole.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import { startServer, type RunningServer } from '../../runtime/api/server.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { ADMIN_KEY, caller, newKey, type Caller } from '../helpers/api.ts';
import { controlFixture, type ControlFixture } from '../helpers/control-plane.ts';

interface Side {
  f: ControlFixture;
  server: RunningServer;
  call: Caller;
  reader: string;
}

let west: Side;
let east: Side;

async function side(table: string, select: string, env: Record<string, string> = {}): Promise<Side> {
  const f = await controlFixture(env);
  const path = join(f.fx.dir, `${table}.parquet`);
  await f.fx.engine.exec(`COPY (${select}) TO ${sqlString(path)} (FORMAT parquet)`);
  await f.fx.catalog.addFiles(f.fx.engine, table, [path]);
  await f.fx.engine.exec(`CREATE VIEW ${table} AS SELECT * FROM read_parquet(${sqlString(path)})`);
  await bootstrapAdminKey(f.state, ADMIN_KEY);
  const app = createApp({ manager: f.plane.manager, state: f.state, catalog: f.plane.catalog, settings: { ...f.settings, apiLoginFailureBurst: 0 }, adminKey: ADMIN_KEY });
  const server = await startServer(app, { port: 0 });
  const call = caller(app);
  return { f, server, call, reader: (await newKey(call, 'reader')).key };
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

/** POST /v1/query's answer, with the rows of a stored result fetched from where it says. */
async function query(s: Side, sql: string, key = s.reader): Promise<any> {
  const answer = await s.call('POST', '/v1/query', { key, body: { sql } }).then(json);
  if (!answer.result) return answer;
  return { ...answer, ...(await s.call('GET', `${answer.result}?format=json`, { key }).then(json)) };
}
before(async () => {
  [west, east] = await Promise.all([
    side('customers', "SELECT range::INTEGER AS id, 'c' || range AS name, range % 3 = 0 AS vip FROM range(20)"),
    // east keeps results over 1000 bytes (a remote's answer of a few dozen rows) for its result route.
    side('orders', 'SELECT range AS id, (range % 20)::INTEGER AS cust, (range * 1.5)::DECIMAL(10,2) AS amount, DATE \'2024-01-01\' + (range % 30)::INTEGER AS day FROM range(200)', { PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '1000' }),
  ]);
  process.env.PUFFINDB_TEST_EAST_KEY = east.reader;
  process.env.PUFFINDB_TEST_WEST_KEY = west.reader;
  for (const [at, name, to, env] of [[west, 'east', east, 'PUFFINDB_TEST_EAST_KEY'], [east, 'west', west, 'PUFFINDB_TEST_WEST_KEY']] as const) {
    const res = await at.call('POST', '/v1/remotes', { key: ADMIN_KEY, body: { name, url: `${to.server.url}/`, keyEnv: env } });
    assert.equal(res.status, 201, await res.text());
  }
});

after(async () => {
  for (const s of [west, east]) {
    await s?.server.close();
    await s?.f.close();
  }
});

describe('SELECT ... THROUGH', () => {
  test("answers the remote's rows, equal to running the statement there", async () => {
    const sql = 'SELECT * FROM orders WHERE cust < 3 ORDER BY id';
    const there = await query(east, sql);
    const through = await query(west, `SELECT * THROUGH '${east.server.url}/' FROM orders WHERE cust < 3 ORDER BY id`);
    assert.deepEqual(through.columns, there.columns);
    assert.deepEqual(through.rows, there.rows);
    assert.equal(through.rows.length, 30);
    assert.ok(there.result, 'east answered with a stored result, which THROUGH fetched from its result route');
    const record = await west.call('GET', `/v1/queries/${through.queryId}`, { key: west.reader }).then(json);
    assert.match(record.sql, /THROUGH/);
    assert.deepEqual(record.remote, [{ remote: 'east', url: `${east.server.url}/`, sql: 'SELECT * FROM orders WHERE cust < 3 ORDER BY id', rows: 30 }]);
  });

  test('a chain cascades: west -> east -> west answers west\'s own table', async () => {
    const mine = await query(west, 'SELECT name, vip FROM customers WHERE id % 4 = 1 ORDER BY id');
    const round = await query(west, `SELECT name, vip THROUGH '${east.server.url}/' THROUGH '${west.server.url}/' FROM customers WHERE id % 4 = 1 ORDER BY id`);
    assert.deepEqual(round.rows, mine.rows);
    // east received the statement with the rest of the chain, and sent it on.
    const sent = await west.call('GET', `/v1/queries/${round.queryId}`, { key: west.reader }).then(json);
    assert.match(sent.remote[0].sql, new RegExp(`THROUGH '${west.server.url}/'`));
  });
});

describe('remote tables as name.table', () => {
  const joinSql = 'SELECT c.name, count(*) AS n, sum(o.amount) AS total FROM east.orders o JOIN customers c ON o.cust = c.id WHERE o.amount > 200 AND c.vip GROUP BY c.name ORDER BY c.name';

  test('a join of a local and a remote table answers what DuckDB answers over both, with the pushed SQL recorded', async () => {
    const got = await query(west, joinSql);
    // The reference: plain DuckDB over both servers' files.
    const orders = join(east.f.fx.dir, 'orders.parquet');
    const expected = await west.f.fx.engine.query(joinSql.replace('east.orders', `read_parquet(${sqlString(orders)})`));
    assert.deepEqual(got.rows, expected.rows.map(([name, n, total]) => ({ name, n: Number(n), total: Number(total) })));
    const record = await west.call('GET', `/v1/queries/${got.queryId}`, { key: west.reader }).then(json);
    assert.equal(record.remote.length, 1);
    const pushed = record.remote[0];
    assert.equal(pushed.remote, 'east');
    assert.equal(pushed.table, 'orders');
    // Partial aggregates grouped by the join key, with the filter on orders alone (not c.vip).
    assert.match(pushed.sql, /^SELECT o\.cust, count_star\(\) AS __pdb_p0_0, sum\(o\.amount\) AS __pdb_p1_0 FROM orders AS o WHERE \(?\(?o\.amount > 200\)?\)? GROUP BY o\.cust$/);
    assert.ok(pushed.rows <= 20, `one row per customer, not per order: ${pushed.rows}`);
  });

  test('aggregates over a join push partial aggregates and answer as DuckDB does; others fall back to the scan', async () => {
    const orders = join(east.f.fx.dir, 'orders.parquet');
    const cases: [string, 'partial aggregate' | 'scan'][] = [
      // Several local rows per key (c.id % 10): each partial row stands for its rows every time it joins.
      ['SELECT c.vip, count(*) AS n, count(o.amount) AS k, sum(o.amount) AS s, avg(o.amount) AS a, min(o.day) AS d0, max(o.amount) AS m FROM east.orders o JOIN customers c ON o.cust = c.id % 10 GROUP BY c.vip ORDER BY c.vip', 'partial aggregate'],
      ['SELECT o.day, count(*) AS n FROM east.orders o, customers c WHERE o.cust = c.id AND c.name <> \'c3\' GROUP BY o.day HAVING sum(o.amount) > 500 ORDER BY o.day', 'partial aggregate'],
      ['SELECT count(*) AS n, sum(o.amount) AS s FROM east.orders o JOIN customers c ON o.cust = c.id WHERE o.id < 0', 'partial aggregate'],
      // A local column inside an aggregate, and the remote table on the NULL side: the scan.
      ['SELECT o.cust, sum(c.id) AS s FROM east.orders o JOIN customers c ON o.cust = c.id GROUP BY o.cust ORDER BY o.cust', 'scan'],
      ['SELECT c.name, count(o.id) AS n FROM customers c LEFT JOIN east.orders o ON o.cust = c.id AND o.amount > 250 GROUP BY c.name ORDER BY c.name', 'scan'],
      ['SELECT c.vip, count(DISTINCT o.day) AS d FROM east.orders o JOIN customers c ON o.cust = c.id GROUP BY c.vip ORDER BY c.vip', 'scan'],
    ];
    for (const [sql, how] of cases) {
      const got = await query(west, sql);
      const expected = await west.f.fx.engine.query(sql.replace('east.orders', `read_parquet(${sqlString(orders)})`));
      const record = await west.call('GET', `/v1/queries/${got.queryId}`, { key: west.reader }).then(json);
      assert.equal(/GROUP BY/.test(record.remote[0].sql), how === 'partial aggregate', `${sql}: ${record.remote[0].sql}`);
      // JSON numbers against DuckDB's BIGINT/DECIMAL strings: compared as numbers (6 places).
      const norm = (v: unknown) => (typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) ? Number(Number(v).toFixed(6)) : String(v));
      assert.deepEqual(got.rows.map((r: Record<string, unknown>) => Object.values(r).map(norm)), expected.rows.map((r) => r.map(norm)), sql);
    }
  });

  test('explain shows the remote inputs and what they are fetched with', async () => {
    const plan = await west.call('POST', '/v1/explain', { key: west.reader, body: { sql: joinSql } }).then(json);
    assert.equal(plan.remote?.[0]?.remote, 'east');
    assert.match(plan.remote[0].sql, /o\.amount > 200/);
    assert.match(plan.reason, /east\.orders fetched as __pdb_mr/);
  });

  test('the pushed filter reduces the rows fetched', async () => {
    const run = async (sql: string) => {
      const got = await query(west, sql);
      const record = await west.call('GET', `/v1/queries/${got.queryId}`, { key: west.reader }).then(json);
      return record.remote[0].rows as number;
    };
    assert.equal(await run('SELECT o.id, c.name FROM east.orders o JOIN customers c ON o.cust = c.id'), 200);
    assert.equal(await run('SELECT o.id, c.name FROM east.orders o JOIN customers c ON o.cust = c.id WHERE o.day = DATE \'2024-01-05\''), 7);
  });

  test('an aggregate over the remote table alone is pushed whole', async () => {
    const sql = 'SELECT cust, count(*) AS n, sum(amount) AS total FROM east.orders WHERE cust < 5 GROUP BY cust ORDER BY cust';
    const got = await query(west, sql);
    const there = await query(east, sql.replace('east.orders', 'orders'));
    assert.deepEqual(got.rows, there.rows);
    const record = await west.call('GET', `/v1/queries/${got.queryId}`, { key: west.reader }).then(json);
    assert.match(record.remote[0].sql, /GROUP BY cust/);
  });
});
