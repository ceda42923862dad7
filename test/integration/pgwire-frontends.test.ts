// Query front ends over the Postgres wire protocol, against a real `puffindb serve
// --pg-port` driven by node-postgres: `SET puffindb.dialect` / `SET puffindb.language`
// make a session's statements Snowflake, T-SQL or PRQL, each translated to DuckDB SQL and
// then classified and authorized as an HTTP query is. Answers equal those of the DuckDB
// query written by hand.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { freePort } from '../helpers/redis-server.ts';
import { serveKey, startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
let pgPort: number;
let readerKey: string;

before(async () => {
  pgPort = await freePort();
  server = await startServe({ demoScale: 0.01, args: ['--pg-port', String(pgPort)] });
  readerKey = await serveKey(server, 'reader');
});
after(() => server?.close());

async function session<T>(password: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'analyst', database: 'puffindb', password, connectionTimeoutMillis: 20_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Rows as arrays of text, over the simple query protocol (psql's). */
async function rows(c: pg.Client, sql: string): Promise<string[][]> {
  const res = await c.query({ text: sql, rowMode: 'array' });
  return (res.rows as unknown[][]).map((r) => r.map((v) => (v === null ? '' : String(v))));
}

async function refused(c: pg.Client, sql: string): Promise<{ code: string; message: string }> {
  try {
    await c.query(sql);
  } catch (err) {
    const e = err as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  assert.fail(`expected ${sql} to be refused`);
}

const DUCKDB_NATIONS = "SELECT n_name, coalesce(NULL, n_regionkey) AS r, CASE WHEN n_nationkey > 2 THEN 'big' ELSE 'small' END AS band FROM nation ORDER BY n_nationkey LIMIT 4";

test('a Snowflake and a T-SQL session answer what the hand-written DuckDB query answers; RESET goes back to DuckDB SQL', async () => {
  await session(readerKey, async (c) => {
    const expected = await rows(c, DUCKDB_NATIONS);
    assert.equal(expected.length, 4);
    assert.deepEqual(await rows(c, 'SHOW puffindb.dialect'), [['duckdb']]);

    await c.query("SET puffindb.dialect = 'snowflake'");
    assert.deepEqual(await rows(c, 'SHOW puffindb.dialect'), [['snowflake']]);
    assert.deepEqual(await rows(c, "SELECT TOP 4 \"N_NAME\", NVL(NULL, n_regionkey) AS r, IFF(n_nationkey > 2, 'big', 'small') AS band FROM nation ORDER BY n_nationkey"), expected);
    // The extended protocol (a parameter) translates too.
    const p = await c.query({ text: 'SELECT TOP 4 n_name, NVL(NULL, n_regionkey) AS r, IFF(n_nationkey > $1, \'big\', \'small\') AS band FROM nation ORDER BY n_nationkey', values: [2], rowMode: 'array' });
    assert.deepEqual((p.rows as unknown[][]).map((r) => r.map(String)), expected);
    // A catalog query a BI tool sends is PostgreSQL SQL and still answered by the mirror.
    const tables = await rows(c, "SELECT table_name FROM information_schema.tables WHERE table_name = 'nation'");
    assert.deepEqual(tables, [['nation']]);

    await c.query('SET puffindb.dialect TO tsql');
    assert.deepEqual(await rows(c, "SELECT TOP 4 [n_name], ISNULL(NULL, n_regionkey) AS r, CASE WHEN n_nationkey > 2 THEN 'big' ELSE 'small' END AS band FROM nation ORDER BY n_nationkey"), expected);
    const grouped = await rows(c, 'SELECT TOP 3 n_regionkey, COUNT(*) AS n, MAX(LEN(n_name)) AS l FROM nation GROUP BY n_regionkey ORDER BY n_regionkey');
    assert.deepEqual(grouped, await session(readerKey, (d) => rows(d, 'SELECT n_regionkey, count(*) AS n, max(length(n_name)) AS l FROM nation GROUP BY n_regionkey ORDER BY n_regionkey LIMIT 3')));
    // A construct the translator cannot keep the meaning of is an error naming it; the session goes on.
    const untranslatable = await refused(c, 'SELECT DATEPART(weekday, o_orderdate) FROM orders');
    assert.match(untranslatable.message, /day of the week/);
    assert.deepEqual(await rows(c, 'SHOW puffindb.dialect'), [['tsql']]);

    await c.query('RESET puffindb.dialect');
    assert.deepEqual(await rows(c, 'SHOW puffindb.dialect'), [['duckdb']]);
    // DuckDB SQL again: T-SQL's TOP is a syntax error.
    assert.match((await refused(c, 'SELECT TOP 4 n_name FROM nation')).message, /syntax/i);
    assert.deepEqual(await rows(c, DUCKDB_NATIONS), expected);

    // A SET earlier in one message applies to the statements after it in that message.
    const multi = await c.query({ text: "SET puffindb.dialect = 'snowflake'; SELECT TOP 1 n_name FROM nation ORDER BY n_nationkey; RESET puffindb.dialect; SELECT n_name FROM nation ORDER BY n_nationkey LIMIT 1", rowMode: 'array' });
    const results = multi as unknown as pg.QueryResult[];
    assert.equal(results[1].rows[0][0], expected[0][0]);
    assert.equal(results[3].rows[0][0], expected[0][0]);
    assert.deepEqual(await rows(c, 'SHOW puffindb.dialect'), [['duckdb']]);
  });
});

test('the query record keeps the text sent beside the SQL that ran', async () => {
  const marker = `pgwire_source_${Date.now()}`;
  await session(server.adminKey, async (c) => {
    await c.query("SET puffindb.dialect = 'snowflake'");
    await c.query(`SELECT TOP 1 n_name AS ${marker} FROM nation`);
  });
  const res = await server.call('GET', '/v1/queries?limit=20', { key: server.adminKey });
  const body = (await res.json()) as { queries: { sql: string; source?: { language: string; dialect?: string; text: string } }[] };
  const q = body.queries.find((r) => r.source?.text.includes(marker));
  assert.ok(q, JSON.stringify(body.queries.map((r) => r.sql)));
  assert.equal(q.source?.dialect, 'snowflake');
  assert.match(q.sql, /LIMIT 1/);
  assert.doesNotMatch(q.sql, /TOP/);
});

// A reader's translated writes: test/security/pgwire-attacks.test.ts.
test('bad settings are errors and the session goes on', async () => {
  await session(readerKey, async (c) => {
    const [[before]] = await rows(c, 'SELECT count(*) FROM nation');
    await c.query("SET puffindb.dialect = 'snowflake'");
    const bad = await refused(c, "SET puffindb.dialect = 'cobol'");
    assert.match(bad.message, /"cobol" is not a SQL dialect .*snowflake, bigquery/);
    assert.match((await refused(c, "SET puffindb.dialekt = 'tsql'")).message, /unknown PuffinDB setting "puffindb.dialekt".*puffindb.dialect/);
    const malloy = await refused(c, "SET puffindb.language = 'malloy'");
    assert.match(malloy.message, /HTTP .*CLI/);
    assert.deepEqual(await rows(c, 'SHOW puffindb.dialect'), [['snowflake']], 'a refused SET leaves the setting as it was');
    assert.deepEqual(await rows(c, 'SHOW puffindb.language'), [['sql']]);
    await c.query('RESET ALL');
    assert.deepEqual(await rows(c, 'SELECT count(*) FROM nation'), [[before]]);
  });
});

test("current_setting answers the session's puffindb settings, as SHOW does, and the parameters SHOW answers", async () => {
  await session(readerKey, async (c) => {
    const settings = "SELECT current_setting('puffindb.dialect') AS d, current_setting('PUFFINDB.LANGUAGE') AS l";
    assert.deepEqual(await rows(c, settings), [['duckdb', 'sql']]);
    await c.query("SET puffindb.dialect = 'snowflake'");
    // A catalog query is PostgreSQL SQL in any dialect; the value is this session's.
    assert.deepEqual(await rows(c, settings), [['snowflake', 'sql']]);
    const named = await c.query("SELECT current_setting('puffindb.dialect')");
    assert.deepEqual(named.fields.map((f) => f.name), ['current_setting']);
    // Another session at the same time has its own.
    assert.deepEqual(await session(readerKey, (d) => rows(d, settings)), [['duckdb', 'sql']]);
    // In one message, each statement sees the SETs before it.
    const multi = (await c.query({ text: `SET puffindb.dialect = 'tsql'; ${settings}; RESET puffindb.dialect; ${settings}`, rowMode: 'array' })) as unknown as pg.QueryResult[];
    assert.deepEqual(multi[1].rows, [['tsql', 'sql']]);
    assert.deepEqual(multi[3].rows, [['duckdb', 'sql']]);
    for (const name of ['server_version_num', 'TimeZone', 'standard_conforming_strings', 'transaction_isolation', 'search_path']) {
      const [[shown]] = await rows(c, `SHOW ${name}`);
      assert.deepEqual(await rows(c, `SELECT current_setting('${name}')`), [[shown]], name);
    }
  });
});

test('a PRQL session: pipelines answer what the DuckDB query answers; SET and SHOW still work', async () => {
  await session(readerKey, async (c) => {
    const expected = await rows(c, 'SELECT n_name, n_regionkey FROM nation WHERE n_nationkey < 5 ORDER BY n_nationkey');
    await c.query("SET puffindb.language = 'prql'");
    assert.deepEqual(await rows(c, 'SHOW puffindb.language'), [['prql']]);
    // psql sends the closing ';' and PRQL's '#' comments need not lex as SQL.
    assert.deepEqual(await rows(c, "from nation # it's a comment\nfilter n_nationkey < 5\nsort n_nationkey\nselect {n_name, n_regionkey};"), expected);
    assert.match((await refused(c, 'from nation | selec {n_name}')).message, /selec|unknown|PRQL/i);
    await c.query('SET puffindb.language = sql');
    assert.deepEqual(await rows(c, 'SELECT n_name, n_regionkey FROM nation WHERE n_nationkey < 5 ORDER BY n_nationkey'), expected);
  });
});
