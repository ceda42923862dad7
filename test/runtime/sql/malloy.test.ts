// Malloy as a query language (runtime/sql/malloy.ts behind runtime/sql/frontends.ts): a
// Malloy text on POST /v1/query compiles against the schemas of the tables the caller may
// read and answers what the hand-written DuckDB SQL answers; the query record and the log
// keep the Malloy text and the SQL that ran; errors are 400/404 naming Malloy's problem and
// position; and what Malloy compiles meets the classifier, roles and sandbox like SQL does.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_KEY, apiFixture, appFor, errorOf, newKey, type Caller } from '../../helpers/api.ts';
import { startServer } from '../../../runtime/api/server.ts';
import { connect } from '../../../runtime/client/index.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';
import { classifyStatement } from '../../../runtime/sql/classify.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { catalogTables, compileMalloy, type MalloyTables } from '../../../runtime/sql/malloy.ts';
import type { Catalog } from '../../../runtime/catalog/types.ts';
import { toDuckdbSql } from '../../../runtime/sql/frontends.ts';
import { duckdbText } from '../../../runtime/cli/frontend-commands.ts';

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

const malloy = (sql: string, key = reader) => answer({ language: 'malloy', sql }, key);
const values = (a: Answer) => a.rows.map((r) => Object.values(r));
const recordedCount = async () => (await f.state.listQueries({ limit: 1000 })).length;

describe('Malloy on the query routes', () => {
  test('group_by, aggregate and where: the answer of the hand-written DuckDB SQL', async () => {
    const m = await malloy("run: t -> {\n  where: g < 5 and s != 'k3'\n  group_by: g\n  aggregate: n is count(), total is d.sum(), top is max(id)\n  order_by: g\n}");
    const sql = await answer({ sql: "SELECT g, count(*) AS n, coalesce(sum(d), 0) AS total, max(id) AS top FROM t WHERE g < 5 AND s <> 'k3' GROUP BY g ORDER BY g" });
    assert.equal(m.rows.length, 5);
    assert.deepEqual(values(m), values(sql));
    assert.deepEqual(Object.keys(m.rows[0]), ['g', 'n', 'total', 'top']);
  });

  test('sources the text defines (measures, a join to a catalog table) and duckdb.table()', async () => {
    const text = [
      "source: facts is duckdb.table('t') extend {",
      '  join_one: dim on g = dim.g',
      '  measure: n is count()',
      '  dimension: even is g % 2 = 0',
      '}',
      'run: facts -> { group_by: dim.gname, even; aggregate: n; order_by: gname }',
    ].join('\n');
    const m = await malloy(text);
    const sql = await answer({ sql: 'SELECT dim.gname, t.g % 2 = 0 AS even, count(*) AS n FROM t LEFT JOIN dim ON t.g = dim.g GROUP BY ALL ORDER BY dim.gname' });
    assert.deepEqual(values(m), values(sql));
    // The last query definition runs when there is no run: statement.
    const named = await malloy('query: by_b is t -> { group_by: b; aggregate: n is count() }');
    assert.deepEqual(values(named).sort(), values(await answer({ sql: 'SELECT b, count(*) FROM t GROUP BY b' })).sort());
  });

  test('nest: each group holds its sub-groups, as the flat GROUP BY counts them', async () => {
    const m = await malloy('run: t -> { group_by: g; aggregate: n is count(); nest: by_b is { group_by: b; aggregate: c is count() } }');
    const flat = (await answer({ sql: 'SELECT g, b, count(*) AS c FROM t GROUP BY g, b' })).rows;
    assert.equal(m.rows.length, 7);
    for (const row of m.rows) {
      // Integers inside a list of structs come as JSON strings (exact int64).
      const nested = (row.by_b as { b: boolean; c: string }[]).map((x) => [x.b, Number(x.c)]).sort();
      assert.deepEqual(nested, flat.filter((r) => r.g === row.g).map((r) => [r.b, r.c]).sort());
      assert.equal(row.n, nested.reduce((s, [, c]) => s + Number(c), 0));
    }
  });

  test('the query record and the query log keep the Malloy text and the SQL that ran', async () => {
    const text = 'run: t -> { where: id < 3; select: id; order_by: id }';
    const res = await call('POST', '/v1/queries', { key: reader, body: { language: 'malloy', sql: text } });
    assert.equal(res.status, 202, await res.clone().text());
    const queued = (await res.json()) as { queryId: string; sql: string; source: unknown };
    assert.deepEqual(queued.source, { language: 'malloy', text });
    assert.match(queued.sql, /^SELECT\s+base\."id" as "id"\s+FROM t as base\s+WHERE base\."id"<3\s+ORDER BY 1 ASC/i);
    const ran = await malloy(text);
    assert.deepEqual(values(ran), [[0], [1], [2]]);
    const entry = (await f.state.readLog(null, 1000)).items.find((e) => e.id === ran.queryId);
    assert.deepEqual(entry?.source, { language: 'malloy', text });
    assert.equal(entry?.sql, queued.sql);
  });

  test('explain and parse take Malloy', async () => {
    const explain = await call('POST', '/v1/explain', { key: reader, body: { language: 'malloy', sql: 'run: t -> { aggregate: n is count() }' } });
    assert.equal(explain.status, 200, await explain.clone().text());
    assert.equal(((await explain.json()) as { shape: string }).shape, 'scan-aggregate');
    const parsed = (await (await call('POST', '/v1/parse', { key: reader, body: { language: 'malloy', sql: 'run: t -> { group_by: s }' } })).json()) as { sql: string; ast: { node: { type: string } } };
    assert.equal(parsed.ast.node.type, 'SELECT_NODE');
    assert.match(parsed.sql, /GROUP BY 1/);
    const openapi = await (await call('GET', '/v1/openapi.json', { key: reader })).text();
    assert.ok(openapi.includes('"enum":["sql","prql","malloy"]'), 'the OpenAPI document lists malloy');
  });

  test("errors are 400 (syntax, semantics) or 404 (no such table) with Malloy's message and position; nothing is recorded", async () => {
    const before = await recordedCount();
    const syntax = await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: 'run: t -> {\n  group_by: g\n  aggregate: n is count(\n}' } }), 400);
    assert.equal(syntax.code, 'syntax_error');
    assert.match(syntax.message, /^Malloy: .* at line 4, column 1/);
    const field = await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: 'run: t -> { group_by: nope }' } }), 400);
    assert.equal(field.message, "Malloy: 'nope' is not defined at line 1, column 23");
    const bare = await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: 'run: missing -> { select: * }' } }), 404);
    assert.equal(bare.code, 'unknown_table');
    assert.match(bare.message, /'missing' is neither a source the text defines nor a table this key may read .* at line 1, column 6$/);
    const table = await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: "run: duckdb.table('missing') -> { select: * }" } }), 404);
    assert.match(table.message, /no table named 'missing' that this key may read/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: "run: duckdb.sql('SELECT 1') -> { select: * }" } }), 400)).message, /duckdb\.sql\(\) sources are not supported/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: "import 'https://example.com/x.malloy'\nrun: t -> { select: id }" } }), 400)).message, /imports are not supported/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: "source: a is duckdb.table('t')" } }), 400)).message, /no query to run/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', dialect: 'mysql', sql: 'run: t -> { select: id }' } }), 400)).message, /'dialect' applies to language 'sql' only/);
    assert.match((await errorOf(await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: 'run: t -> { select: id }', params: [1] } }), 400)).message, /'params' apply to DuckDB SQL only/);
    assert.equal(await recordedCount(), before);
  });
});

describe('what Malloy compiles meets the classifier, roles and sandbox', () => {
  test("a reader's Malloy runs, and its SQL is a read-only SELECT", async () => {
    const text = 'run: t -> { group_by: s; aggregate: n is count() }';
    const { sql } = await toDuckdbSql({ text, language: 'malloy', tables: tablesOf({ t: [{ name: 's', type: 'VARCHAR' }] }) });
    const engine = await Engine.create({ threads: 1 });
    const statement = await classifyStatement(engine, sql).finally(() => engine.close());
    assert.equal(statement.kind, 'select');
    assert.equal(statement.access, 'read');
    assert.equal((await malloy(text)).rows.length, 13);
  });

  test('raw SQL through Malloy (sql_number, a smuggled statement, a file read) is refused as that SQL would be', async () => {
    const before = await recordedCount();
    const raw = (expr: string) => `##! experimental.sql_functions\nrun: t -> { select: x is sql_number("${expr}") }`;
    for (const key of [reader, ADMIN_KEY]) {
      const e = await errorOf(await call('POST', '/v1/query', { key, body: { language: 'malloy', sql: raw('1); DELETE FROM t; SELECT (1') } }), 400);
      assert.equal(e.code, 'syntax_error', e.message);
    }
    assert.equal(await recordedCount(), before);
    const file = await call('POST', '/v1/query', { key: reader, body: { language: 'malloy', sql: raw("(SELECT count(*) FROM read_csv('/etc/passwd'))") } });
    const body = await file.text();
    assert.equal(file.status, 403, body);
    assert.match(body, /read_csv\(\) reads files directly, which queries may not do/);
    assert.equal((await answer({ sql: 'SELECT count(*) AS n FROM t' })).rows[0].n, 3000);
  });

  test("tables a key may not read (admin-only ones) do not exist for its Malloy", async () => {
    const tables: Record<string, { name: string; adminOnly?: boolean; columns: { name: string; type: string }[] }> = {
      t: { name: 't', columns: [{ name: 'id', type: 'BIGINT' }] },
      secret: { name: 'secret', adminOnly: true, columns: [{ name: 'pin', type: 'INTEGER' }] },
      'puffindb.query_log': { name: 'puffindb.query_log', adminOnly: true, columns: [{ name: 'sql', type: 'VARCHAR' }] },
    };
    const catalog = { listTables: async () => Object.keys(tables).sort(), getTable: async (name: string) => tables[name] } as unknown as Catalog;
    const log = "run: duckdb.table('puffindb.query_log') -> { select: `sql` }";
    await assert.rejects(compileMalloy(log, catalogTables(catalog, 'reader')), (e: Error & { code?: string }) => e.code === 'unknown_table' && /no table named 'puffindb.query_log' that this key may read/.test(e.message));
    await assert.rejects(compileMalloy('run: secret -> { select: pin }', catalogTables(catalog, 'writer')), (e: Error & { code?: string }) => e.code === 'unknown_table' && /'secret' is neither a source the text defines nor a table this key may read .* at line 1, column 6$/.test(e.message));
    assert.match(await compileMalloy(log, catalogTables(catalog, 'admin')), /FROM puffindb\.query_log as base/);
    assert.match(await compileMalloy('run: secret -> { select: pin }', catalogTables(catalog, 'admin')), /FROM secret as base/);
  });

  test("a text nested past the compiler's stack is a 400 saying so", async () => {
    const tables = tablesOf({ t: [{ name: 'g', type: 'INTEGER' }] });
    await assert.rejects(compileMalloy(`run: t -> { select: x is ${'('.repeat(3000)}g${')'.repeat(3000)} }`, tables), (e: Error & { code?: string }) => e.code === 'bad_request' && /^Malloy: the compiler could not compile this text: it is nested too deep/.test(e.message));
    assert.match(await compileMalloy('run: t -> { select: x is ((g)) }', tables), /FROM t as base/);
  });
});

describe('the CLI and library paths', () => {
  test("the library's query options: connect() sends the language, the server compiles it against the key's tables", async () => {
    const server = await startServer(await appFor(f), { port: 0, host: '127.0.0.1' });
    const remote = await connect({ url: server.url, key: reader });
    try {
      const text = 'run: t -> { where: g = 3; group_by: b; aggregate: n is count(); order_by: b }';
      const expected = (await answer({ sql: 'SELECT b, count(*) AS n FROM t WHERE g = 3 GROUP BY b ORDER BY b' })).rows;
      assert.deepEqual((await remote.query(text, { language: 'malloy' })).rows, expected);
      assert.equal(((await remote.explain(text, { language: 'malloy' })) as { shape: string }).shape, 'scan-aggregate');
      await assert.rejects(remote.query(text, { language: 'malloy', params: [1] }), /'params' apply to DuckDB SQL only/);
      await assert.rejects(remote.query(text, { language: 'cobol' as 'sql' }), /'language' must be one of sql, prql, malloy/);
      await assert.rejects(remote.query('run: missing -> { select: * }', { language: 'malloy' }), (e: Error & { code?: string }) => e.code === 'unknown_table');
    } finally {
      await remote.close();
      await server.close();
    }
  });

  test('--lang malloy compiles against the tables it is given; Malloy without a catalog is refused', async () => {
    const tables = tablesOf({ orders: [{ name: 'amount', type: 'DECIMAL(10,2)' }, { name: 'region', type: 'VARCHAR' }] });
    assert.match(await duckdbText('run: orders -> { group_by: region; aggregate: total is amount.sum() }', { lang: 'malloy' }, tables), /SUM\(base\."amount"\).*FROM orders as base/s);
    // A source the text defines under a table's own name is the text's.
    assert.match(await duckdbText("source: orders is duckdb.table('orders') extend { measure: n is count() }\nrun: orders -> { aggregate: n }", { lang: 'malloy' }, tables), /COUNT\(1\)/);
    await assert.rejects(duckdbText('run: orders -> { select: * }', { lang: 'malloy' }), /Malloy compiles against the tables of a warehouse/);
    await assert.rejects(duckdbText('x', { lang: 'cobol' }), /--lang must be one of sql, prql, malloy/);
  });
});

/** A MalloyTables over fixed schemas. */
function tablesOf(tables: Record<string, { name: string; type: string }[]>): MalloyTables {
  return { columns: async (name) => tables[name], names: async () => Object.keys(tables) };
}
