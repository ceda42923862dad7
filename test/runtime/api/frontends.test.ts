// Query front ends through the API (runtime/sql/frontends.ts in front of the classifier):
// PRQL and other SQL dialects on POST /v1/query, /v1/queries and /v1/explain, answered like
// the DuckDB SQL they become; the query record and the query log keep both texts;
// POST /v1/translate. And the attacks: a reader's PRQL or dialect SQL that becomes a write,
// several statements or a file read is refused as that SQL would be, and translate needs a
// valid key.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_KEY, apiFixture, errorOf, newKey, type Caller } from '../../helpers/api.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';

let f: ControlFixture;
let call: Caller;
let reader: string;

before(async () => {
  ({ f, call } = await apiFixture());
  reader = (await newKey(call, 'reader')).key;
});
after(() => f?.close());

interface Answer {
  queryId: string;
  rows: Record<string, unknown>[];
}

async function answer(body: Record<string, unknown>, key = reader): Promise<Answer> {
  const res = await call('POST', '/v1/query', { key, body });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text) as Answer;
}

/** Rows as value arrays: the column names of a translation may differ from the hand-written query's. */
function values(a: Answer): unknown[][] {
  return a.rows.map((r) => Object.values(r));
}

async function recordedCount(): Promise<number> {
  return (await f.state.listQueries({ limit: 1000 })).length;
}

describe('PRQL and dialects on the query routes', () => {
  test('PRQL answers what the hand-written DuckDB SQL answers', async () => {
    const prql = await answer({ language: 'prql', sql: 'from t\nfilter g == 2\ngroup {s} (aggregate {n = count this, top = max id})\nsort {-n, s}\ntake 3' });
    const sql = await answer({ sql: 'SELECT s, count(*) AS n, max(id) AS top FROM t WHERE g = 2 GROUP BY s ORDER BY n DESC, s LIMIT 3' });
    assert.deepEqual(values(prql), values(sql));
  });

  test('Snowflake and T-SQL answer what the hand-written DuckDB SQL answers', async () => {
    const snowflake = await answer({ dialect: 'snowflake', sql: 'SELECT TOP 4 id, NVL(nullable_i, -1) AS i, IFF(b, \'y\', \'n\') AS yn FROM t ORDER BY id DESC' });
    const tsql = await answer({ dialect: 'mssql', sql: 'SELECT TOP 4 [id], ISNULL(nullable_i, -1) AS i, CASE WHEN b = 1 THEN \'y\' ELSE \'n\' END AS yn FROM t ORDER BY id DESC' });
    const sql = await answer({ sql: "SELECT id, coalesce(nullable_i, -1) AS i, CASE WHEN b THEN 'y' ELSE 'n' END AS yn FROM t ORDER BY id DESC LIMIT 4" });
    assert.deepEqual(values(snowflake), values(sql));
    assert.deepEqual(values(tsql), values(sql));
  });

  test('the query record and the query log keep the source and the SQL that ran', async () => {
    const prql = 'from t | filter id < 3 | select {id} | sort id';
    const res = await call('POST', '/v1/queries', { key: reader, body: { language: 'prql', sql: prql } });
    assert.equal(res.status, 202);
    const queued = (await res.json()) as { queryId: string; sql: string; source: { language: string; text: string } };
    assert.deepEqual(queued.source, { language: 'prql', text: prql });
    assert.match(queued.sql, /^SELECT\s+id\s+FROM\s+t\s+WHERE\s+id < 3\s+ORDER BY\s+id$/);
    let status: { status: string; source?: unknown } | undefined;
    for (let i = 0; i < 200 && status?.status !== 'succeeded'; i++) {
      status = (await (await call('GET', `/v1/queries/${queued.queryId}`, { key: reader })).json()) as { status: string; source?: unknown };
      if (status.status === 'failed') assert.fail(JSON.stringify(status));
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(status?.source, { language: 'prql', text: prql });
    const result = (await (await call('GET', `/v1/queries/${queued.queryId}/result`, { key: reader })).json()) as Answer;
    assert.deepEqual(values(result), [[0], [1], [2]]);

    const ran = await answer({ dialect: 'bigquery', sql: 'SELECT IFNULL(nullable_i, 0) AS i FROM t WHERE id = 2999' });
    const log = await f.state.readLog(null, 1000);
    const entry = log.items.find((e) => e.id === ran.queryId);
    assert.deepEqual(entry?.source, { language: 'sql', dialect: 'bigquery', text: 'SELECT IFNULL(nullable_i, 0) AS i FROM t WHERE id = 2999' });
    assert.equal(entry?.sql, 'SELECT COALESCE(nullable_i, 0) AS i FROM t WHERE id = 2999');
    assert.equal(log.items.find((e) => e.sql === 'SELECT 1')?.source, undefined);
  });

  test('explain takes a language and a dialect', async () => {
    const res = await call('POST', '/v1/explain', { key: reader, body: { language: 'prql', sql: 'from t | aggregate {n = count this}' } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { shape: string }).shape, 'scan-aggregate');
    const dialect = await call('POST', '/v1/explain', { key: reader, body: { dialect: 'mysql', sql: 'SELECT `g`, COUNT(*) FROM t GROUP BY `g`' } });
    assert.equal(dialect.status, 200);
  });

  test('bad front-end input is a 400 naming the problem, and nothing is recorded', async () => {
    const before = await recordedCount();
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'cobol', sql: 'run: t -> {aggregate: n is count()}' } }), 400)).message, /'language' must be one of sql, prql, malloy/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { dialect: 'cobol', sql: 'SELECT 1' } }), 400)).message, /not a SQL dialect PuffinDB translates/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'prql', sql: 'from t | dlete' } }), 400)).message, /^PRQL: Unknown name `dlete`/);
    const construct = await errorOf(await call('POST', '/v1/query', { key: reader, body: { dialect: 'postgresql', sql: 'SELECT id / 2 FROM t' } }), 400);
    assert.match(construct.message, /^'\/' cannot be translated without changing its meaning/);
    assert.equal(await recordedCount(), before);
  });
});

describe('attacks through the front ends', () => {
  test("a reader's dialect SQL that translates to a write is refused as the write (403) and runs nothing", async () => {
    const before = await recordedCount();
    for (const [dialect, sql] of [['snowflake', 'DELETE FROM t WHERE id = 1'], ['tsql', 'TRUNCATE TABLE t'], ['mysql', 'INSERT INTO t (id) VALUES (1)'], ['postgresql', 'UPDATE t SET g = 0']]) {
      const e = await errorOf(await call('POST', '/v1/query', { key: reader, body: { dialect, sql } }), 403);
      assert.equal(e.code, 'forbidden', `${dialect}: ${sql}`);
      assert.equal((await call('POST', '/v1/queries', { key: reader, body: { dialect, sql } })).status, 403);
      assert.equal((await call('POST', '/v1/explain', { key: reader, body: { dialect, sql, analyze: true } })).status, 403);
    }
    assert.equal(await recordedCount(), before);
    const rows = await answer({ sql: 'SELECT count(*) AS n FROM t' });
    assert.equal(rows.rows[0].n, 3000);
  });

  test('PRQL s-strings that smuggle a second statement or a write are refused before anything runs', async () => {
    const before = await recordedCount();
    for (const prql of ['from t | select {x = s"1; DELETE FROM t"}', 'from t | derive {x = s"1); DROP TABLE t; SELECT (1"}', 'from s"SELECT 1; DELETE FROM t"']) {
      for (const key of [reader, ADMIN_KEY]) {
        const res = await call('POST', '/v1/query', { key, body: { language: 'prql', sql: prql } });
        assert.ok(res.status === 400 || res.status === 403, `${prql}: ${res.status} ${await res.clone().text()}`);
      }
    }
    const smuggled = await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'prql', sql: 'from t | select {x = s"1; DELETE FROM t"}' } }), 400);
    assert.match(smuggled.message, /one SQL statement per request|syntax/i);
    assert.equal(await recordedCount(), before);
    assert.equal((await answer({ sql: 'SELECT count(*) AS n FROM t' })).rows[0].n, 3000);
  });

  test('several statements in a dialect are refused, and a translated file read meets the sandbox', async () => {
    assert.match((await errorOf(await call('POST', '/v1/query', { key: ADMIN_KEY, body: { dialect: 'mysql', sql: 'SELECT 1; DROP TABLE t' } }), 400)).message, /one SQL statement per request; this text holds 2/);
    const file = await call('POST', '/v1/query', { key: reader, body: { language: 'prql', sql: 'from s"SELECT * FROM read_csv(\'/etc/passwd\')"' } });
    assert.ok(file.status >= 400 && file.status < 500, String(file.status));
    assert.doesNotMatch(await file.text(), /root:/);
  });

  test('translate, parse and format need a valid key', async () => {
    for (const [path, body] of [['/v1/translate', { sql: 'SELECT TOP 1 id FROM t', from: 'tsql' }], ['/v1/parse', { sql: 'SELECT 1' }], ['/v1/format', { ast: { node: {} } }]] as const) {
      assert.equal((await call('POST', path, { body })).status, 401, path);
      assert.equal((await call('POST', path, { key: 'not-a-key-0123456789', body })).status, 401, path);
    }
  });

  test('format prints an edited AST with its strings quoted: a constant cannot become a second statement', async () => {
    const parsed = (await (await call('POST', '/v1/parse', { key: reader, body: { sql: "SELECT 'x' AS v" } })).json()) as { ast: { node: { select_list: { value: { value: string } }[] } } };
    parsed.ast.node.select_list[0].value.value = "x'; DELETE FROM t; --";
    const res = await call('POST', '/v1/format', { key: reader, body: { ast: parsed.ast, pretty: false } });
    assert.equal(res.status, 200);
    const { sql } = (await res.json()) as { sql: string };
    assert.equal((await answer({ sql })).rows[0].v, "x'; DELETE FROM t; --");
    assert.equal((await answer({ sql: 'SELECT count(*) AS n FROM t' })).rows[0].n, 3000);
  });
});

describe('POST /v1/parse and /v1/format', () => {
  test("parse answers DuckDB's AST; format prints it back, laid out, to SQL with the same answer", async () => {
    const sql = "SELECT g, count(*) AS n FROM t WHERE s LIKE 'k1%' GROUP BY g ORDER BY g";
    const res = await call('POST', '/v1/parse', { key: reader, body: { sql } });
    assert.equal(res.status, 200);
    const parsed = (await res.json()) as { sql: string; ast: { node: { type: string } } };
    assert.equal(parsed.sql, sql);
    assert.equal(parsed.ast.node.type, 'SELECT_NODE');
    const formatted = (await (await call('POST', '/v1/format', { key: reader, body: { ast: parsed.ast } })).json()) as { sql: string };
    assert.ok(formatted.sql.includes('\n'), formatted.sql);
    assert.deepEqual(values(await answer({ sql: formatted.sql })), values(await answer({ sql })));
    const plain = (await (await call('POST', '/v1/format', { key: reader, body: { ast: parsed.ast, pretty: false } })).json()) as { sql: string };
    assert.ok(!plain.sql.includes('\n'));
  });

  test('parse takes a language or dialect; refusals are 400s naming the problem', async () => {
    const prql = (await (await call('POST', '/v1/parse', { key: reader, body: { language: 'prql', sql: 'from t | take 1' } })).json()) as { sql: string; ast: { node: { type: string } } };
    assert.equal(prql.ast.node.type, 'SELECT_NODE');
    assert.match(prql.sql, /LIMIT\s+1/);
    const syntax = await errorOf(await call('POST', '/v1/parse', { key: reader, body: { sql: 'SELEC 1' } }), 400);
    assert.equal(syntax.code, 'syntax_error');
    assert.match((await errorOf(await call('POST', '/v1/parse', { key: reader, body: { sql: 'DELETE FROM t' } }), 400)).message, /takes one SELECT statement/);
    assert.match((await errorOf(await call('POST', '/v1/parse', { key: reader, body: { sql: 'SELECT 1; SELECT 2' } }), 400)).message, /this text holds 2/);
    assert.match((await errorOf(await call('POST', '/v1/format', { key: reader, body: { ast: { node: { type: 'NOPE' } } } }), 400)).message, /not a statement DuckDB can print/);
    assert.match((await errorOf(await call('POST', '/v1/format', { key: reader, body: { ast: [1, 2] } }), 400)).message, /must be a JSON object/);
  });
});

describe('POST /v1/translate', () => {
  test('a dialect to DuckDB SQL and back, without running anything', async () => {
    const before = await recordedCount();
    const res = await call('POST', '/v1/translate', { key: reader, body: { sql: "SELECT TOP 2 NVL(a, 0), DATEADD(day, 1, d) FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1", from: 'Snowflake' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { sql: 'SELECT COALESCE(a, 0), d + INTERVAL 1 DAY FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1 LIMIT 2', from: 'snowflake', to: 'duckdb' });
    const back = await call('POST', '/v1/translate', { key: reader, body: { sql: 'SELECT "a b" FROM t LIMIT 3', from: 'duckdb', to: 'tsql' } });
    assert.deepEqual(await back.json(), { sql: 'SELECT TOP 3 [a b] FROM t', from: 'duckdb', to: 'tsql' });
    // A write is only text here: translating it runs nothing and needs no writer.
    const write = await call('POST', '/v1/translate', { key: reader, body: { sql: 'DELETE FROM t WHERE id = 1', from: 'postgres' } });
    assert.equal(write.status, 200);
    assert.equal(await recordedCount(), before);
  });

  test('refusals name the field or the construct', async () => {
    assert.match((await errorOf(await call('POST', '/v1/translate', { key: reader, body: { sql: 'SELECT 1', from: 'cobol' } }), 400)).message, /'from' "cobol" is not a SQL dialect/);
    assert.match((await errorOf(await call('POST', '/v1/translate', { key: reader, body: { sql: 'SELECT 1', from: 'mysql', to: 'tsql' } }), 400)).message, /translate from or to duckdb/);
    const e = await errorOf(await call('POST', '/v1/translate', { key: reader, body: { sql: "SELECT TO_CHAR(d, 'YYYY') FROM t", from: 'oracle' } }), 400);
    assert.match(e.message, /^the date format 'YYYY' cannot be translated/);
    assert.match((await errorOf(await call('POST', '/v1/translate', { key: reader, body: { sql: 'SELECT 1', from: 'mysql', extra: 1 } }), 400)).message, /unknown field\(s\): extra/);
  });

  test('the OpenAPI document lists the new fields and the route', async () => {
    const doc = (await (await call('GET', '/v1/openapi.json', { key: reader })).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
    assert.ok(doc.paths['/v1/translate']?.post);
    const query = doc.paths['/v1/query'].post.requestBody!.content['application/json'].schema.properties;
    assert.ok(query.language && query.dialect);
  });
});
