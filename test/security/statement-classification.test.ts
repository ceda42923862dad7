// Finding 1 of the attack run: a reader key ran INSERT, DELETE and CREATE TABLE by hiding
// them from the reader check in nested comments, and a NUL byte cut a statement short.
// One classification (runtime/sql/classify.ts) now decides authorization, caching and
// execution. Each attack runs against a real `puffindb serve`, synchronously and
// asynchronously, and must be refused with a 4xx while the table keeps every row.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { refusal, serveKey, startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
let reader: string;
let writer: string;

async function rows(sql: string, key = server.adminKey): Promise<Record<string, unknown>[]> {
  const res = await server.query(sql, key);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { rows: Record<string, unknown>[] }).rows;
}

async function count(table: string): Promise<number> {
  return Number((await rows(`SELECT count(*) AS n FROM ${table}`))[0].n);
}

async function tables(): Promise<string[]> {
  const res = await server.call('GET', '/v1/tables', { key: server.adminKey });
  return ((await res.json()) as { tables: { name: string }[] }).tables.map((t) => t.name).sort();
}

/** Wait until an asynchronous query has ended; returns its status record. */
async function settle(id: string, key: string): Promise<{ status: string; error?: { code: string } }> {
  for (let i = 0; i < 200; i++) {
    const res = await server.call('GET', `/v1/queries/${id}`, { key });
    const record = (await res.json()) as { status: string; error?: { code: string } };
    if (!['queued', 'running'].includes(record.status)) return record;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`query ${id} did not end`);
}

before(async () => {
  server = await startServe({ demoScale: 0.01 });
  reader = await serveKey(server, 'reader');
  writer = await serveKey(server, 'writer');
  assert.equal((await rows('CREATE TABLE t AS SELECT n_nationkey AS k, n_name AS name FROM nation', writer)).length, 1);
});
after(() => server?.close());

const HIDDEN_WRITES = [
  // The finding's examples: DuckDB sees the write; a non-nesting scanner saw SELECT 1.
  '/* /* */ SELECT 1 -- */ INSERT INTO t SELECT * FROM t LIMIT 5',
  "/* /* */ SELECT 1 -- */ DELETE FROM t WHERE k < 10 AND '*/ SELECT 1 --' <> ''",
  '/* /* */ SELECT 1 -- */ CREATE TABLE stolen AS SELECT * FROM t',
  '/* /* /* */ */ SELECT 1 -- */ UPDATE t SET name = \'x\'',
  // Plain and decorated writes.
  'INSERT INTO t SELECT * FROM t',
  '  -- a note\n  delete from t',
  '(DELETE FROM t)',
  'CREATE TABLE stolen2 (x INTEGER)',
  'DROP TABLE t',
  'DROP TABLE t PURGE',
  '/* PURGE */ DROP TABLE IF EXISTS t PURGE',
  'ALTER TABLE t ADD COLUMN z INTEGER',
  'ALTER TABLE t RENAME TO t2',
  'TRUNCATE t',
  'MERGE INTO t USING (SELECT 1 AS k) s ON t.k = s.k WHEN MATCHED THEN DELETE',
  "COPY t TO 'exports/t.parquet'",
  'WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM t',
  // Vector indexes (runtime/exec/vector-index.ts) write tables too.
  'CREATE INDEX stolen_ivf ON t USING ivf (k) WITH (lists = 2)',
  '/* /* */ SELECT 1 -- */ DROP INDEX IF EXISTS some_ivf',
];

describe('a reader key cannot write', () => {
  test('hidden and plain writes are refused on /v1/query, /v1/queries and /v1/explain; nothing changes', async () => {
    const before = await count('t');
    const tablesBefore = await tables();
    for (const sql of HIDDEN_WRITES) {
      for (const path of ['/v1/query', '/v1/queries', '/v1/explain']) {
        const res = await server.call('POST', path, { key: reader, body: { sql } });
        const e = await refusal(res);
        assert.ok(e.status >= 400 && e.status < 500, `${path} ${JSON.stringify(sql)} -> ${e.status} ${e.message}`);
        assert.ok(['forbidden', 'bad_request', 'syntax_error'].includes(e.code), `${path} ${JSON.stringify(sql)}: ${e.code} ${e.message}`);
      }
    }
    assert.equal(await count('t'), before);
    assert.deepEqual(await tables(), tablesBefore);
  });

  test('what DuckDB reads as a SELECT runs as that SELECT, for the reader and the writer alike', async () => {
    const before = await count('t');
    for (const key of [reader, writer]) {
      const got = await rows('/* /* */ INSERT INTO t SELECT * FROM t LIMIT 5 -- */ SELECT 1 AS one', key);
      assert.deepEqual(got, [{ one: 1 }]);
      const res = await server.call('POST', '/v1/queries', { key, body: { sql: '/* /* */ INSERT INTO t SELECT * FROM t -- */ SELECT 2 AS two' } });
      assert.equal(res.status, 202);
      const { queryId } = (await res.json()) as { queryId: string };
      assert.equal((await settle(queryId, key)).status, 'succeeded');
    }
    assert.equal(await count('t'), before, 'no hidden INSERT ran');
  });

  test('a writer\'s hidden write runs as the statement DuckDB reads', async () => {
    const before = await count('t');
    const res = await server.query('/* /* */ SELECT 1 -- */ INSERT INTO t SELECT k + 1000, name FROM t WHERE k < 3', writer);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(await count('t'), before + 3);
    await rows('DELETE FROM t WHERE k >= 1000', writer);
    assert.equal(await count('t'), before);
  });
});

describe('statements are one and whole', () => {
  test('more than one statement is refused for every role', async () => {
    const before = await count('t');
    for (const key of [reader, writer, server.adminKey]) {
      for (const sql of ['SELECT 1; DELETE FROM t', 'SELECT 1; SELECT 2', "SELECT ';'; DROP TABLE t", 'SELECT 1 /* ; */; INSERT INTO t SELECT * FROM t']) {
        const e = await refusal(await server.query(sql, key));
        assert.equal(e.status, 400, `${sql}: ${e.message}`);
        assert.match(e.message, /one SQL statement/);
      }
    }
    assert.equal(await count('t'), before);
  });

  test('a NUL byte is refused, not a place where the statement silently ends', async () => {
    for (const sql of ['SELECT 1\u0000; SELECT 2', 'SELECT 1\u0000', 'DELETE FROM t\u0000 WHERE k = 1']) {
      const e = await refusal(await server.query(sql, server.adminKey));
      assert.equal(e.status, 400, JSON.stringify(sql));
      assert.match(e.message, /NUL/);
    }
  });

  test('engine statements are refused: a reader gets 403, a writer 400', async () => {
    for (const sql of ["SET threads = 1", 'PRAGMA version', "ATTACH '/tmp/x.db'", 'INSTALL httpfs', 'LOAD httpfs', "EXPORT DATABASE '/tmp/x'", 'CALL pragma_version()', 'CHECKPOINT']) {
      assert.equal((await refusal(await server.query(sql, reader))).status, 403, sql);
      const e = await refusal(await server.query(sql, writer));
      assert.equal(e.status, 400, `${sql}: ${e.message}`);
      assert.equal(e.code, 'unsupported', sql);
    }
  });
});

describe('puffindb.query_log is admin information', () => {
  test('readers and writers cannot read it, directly or through subqueries, CTEs or writes', async () => {
    for (const key of [reader, writer]) {
      for (const sql of [
        'SELECT sql FROM puffindb.query_log',
        'SELECT count(*) FROM (SELECT * FROM puffindb.query_log) q',
        'WITH q AS (SELECT * FROM puffindb.query_log) SELECT * FROM q',
        'SELECT * FROM nation WHERE n_name IN (SELECT sql FROM puffindb.query_log)',
      ]) {
        const e = await refusal(await server.query(sql, key));
        assert.equal(e.status, 403, `${sql}: ${e.message}`);
        assert.equal(e.code, 'forbidden');
      }
    }
    const e = await refusal(await server.query('INSERT INTO t SELECT 1, sql FROM puffindb.query_log', writer));
    assert.equal(e.status, 403, e.message);
    const admin = await rows('SELECT count(*) AS n FROM puffindb.query_log');
    assert.equal(admin.length, 1);
  });
});
