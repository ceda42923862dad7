// DESCRIBE, SHOW TABLES, SHOW ALL TABLES, SUMMARIZE and information_schema answered from
// the catalog (runtime/exec/catalog-statements.ts), compared with plain DuckDB's answers
// over the same Parquet files (the planner fixture's views): through the local cluster
// with the in-process workers, and through POST /v1/query with a reader key. One control
// plane for the file.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QueryResult } from '../../runtime/engine/engine.ts';
import type { QueryService } from '../../runtime/exec/query-service.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { appFor, caller, errorOf, newKey, ADMIN_KEY, type Caller } from '../helpers/api.ts';
import { controlFixture, type ControlFixture } from '../helpers/control-plane.ts';

let f: ControlFixture;
let call: Caller;
let readerKey: string;
let service: QueryService;

before(async () => {
  f = await controlFixture();
  // The cluster answers them (LocalCluster.query/explain), behind every front end.
  service = f.plane.cluster;
  call = caller(await appFor(f));
  readerKey = (await newKey(call, 'reader')).key;
});
after(async () => {
  await f.close();
});

/** Plain DuckDB's answer over the fixture's views. */
function duck(sql: string): Promise<QueryResult> {
  return f.fx.engine.query(sql);
}

const reader = { role: 'reader' as const };
const admin = { role: 'admin' as const };

function column(outcome: QueryResult, name: string): unknown[] {
  const i = outcome.columns.findIndex((c) => c.name === name);
  assert.ok(i >= 0, `column ${name}`);
  return outcome.rows.map((r) => r[i]);
}

describe('catalog statements through the cluster', () => {
  test('DESCRIBE t and DESCRIBE SELECT answer what DuckDB answers over the same data', async () => {
    for (const sql of ['DESCRIBE t', 'DESC dim', 'SHOW t', 'DESCRIBE SELECT g, sum(d) AS total, avg(f) FROM t JOIN dim USING (g) GROUP BY g']) {
      const got = await service.query(sql, reader);
      const want = await duck(sql);
      assert.deepEqual(got.columns, want.columns, sql);
      assert.deepEqual(got.rows, want.rows, sql);
      assert.equal(got.stats.fragments, 0, `${sql} reads no data`);
    }
  });

  test('SHOW TABLES and SHOW ALL TABLES: DuckDB shape, the catalog\'s tables; puffindb.query_log for admin only', async () => {
    const shown = await service.query('SHOW TABLES', reader);
    assert.deepEqual(shown.columns, [{ name: 'name', type: 'VARCHAR' }]);
    assert.deepEqual(column(shown, 'name'), ['dim', 'empty', 't']);

    const all = await service.query('SHOW ALL TABLES', reader);
    assert.deepEqual(all.columns, (await duck('SHOW ALL TABLES')).columns);
    // SHOW ALL TABLES lists the system tables every role may read too; puffindb.query_log only for admins.
    assert.deepEqual(column(all, 'name'), ['dim', 'empty', 't', 'materialized_views', 'refreshes']);
    const t = all.rows[column(all, 'name').indexOf('t')];
    const describeT = await duck('DESCRIBE t');
    assert.deepEqual(t.slice(3, 5), [column(describeT, 'column_name'), column(describeT, 'column_type')]);

    const forAdmin = await service.query('SHOW ALL TABLES', admin);
    assert.deepEqual(forAdmin.rows.map((r) => `${r[1]}.${r[2]}`), ['main.dim', 'main.empty', 'main.t', 'puffindb.materialized_views', 'puffindb.query_log', 'puffindb.refreshes']);
    assert.equal((await service.query('DESCRIBE puffindb.query_log', admin)).rows[0][0], 'id');
  });

  test('information_schema.tables and .columns list the catalog', async () => {
    const tables = await service.query("SELECT table_schema, table_name FROM information_schema.tables ORDER BY 2", reader);
    assert.deepEqual(tables.rows, [['main', 'dim'], ['main', 'empty'], ['puffindb', 'materialized_views'], ['puffindb', 'refreshes'], ['main', 't']]);
    const sql = "SELECT column_name, data_type, ordinal_position FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position";
    assert.deepEqual((await service.query(sql, reader)).rows, (await duck(sql)).rows);
  });

  test('SUMMARIZE runs as a distributed aggregate and matches DuckDB\'s SUMMARIZE', async () => {
    for (const sql of ['SUMMARIZE t', 'SUMMARIZE SELECT id, d, s FROM t WHERE id < 1200']) {
      const got = await service.query(sql, reader);
      const want = await duck(sql);
      assert.deepEqual(got.columns, want.columns, sql);
      assert.ok(got.stats.fragments > 0, `${sql} read the data in fragments`);
      for (const name of ['column_name', 'column_type', 'min', 'max', 'count', 'null_percentage']) assert.deepEqual(column(got, name), column(want, name), `${sql}: ${name}`);
      // Floating-point sums and approximate sketches may differ in their last digits with the order rows arrive in.
      for (const name of ['avg', 'std', 'q50']) {
        column(got, name).forEach((v, i) => {
          const w = column(want, name)[i];
          if (v === null || w === null || Number.isNaN(Number(w))) assert.equal(v === null, w === null, `${sql}: ${name}[${i}]`);
          else assert.ok(Math.abs(Number(v) - Number(w)) <= 1e-6 * Math.max(1, Math.abs(Number(w))) + (name === 'q50' ? 0.05 * Math.abs(Number(w)) + 1 : 0), `${sql}: ${name}[${i}] ${v} vs ${w}`);
        });
      }
    }
    const empty = await service.query('SUMMARIZE empty', reader);
    assert.deepEqual(column(empty, 'count'), column(await duck('SUMMARIZE empty'), 'count'));
    assert.deepEqual(column(empty, 'null_percentage'), column(await duck('SUMMARIZE empty'), 'null_percentage'));
  });

  test('the classifier marks catalog statements; answers from the mirror are never result-cached, SUMMARIZE is (by its tables\' snapshots)', async () => {
    const of = (sql: string) => f.plane.manager.classify(sql);
    for (const sql of ['DESCRIBE t', 'SHOW TABLES', 'SHOW ALL TABLES', 'SELECT * FROM information_schema.columns']) {
      const c = await of(sql);
      assert.equal(c.catalog?.kind, 'mirror', sql);
      assert.equal(c.deterministic, false, sql);
      assert.equal(c.access, 'read', sql);
    }
    assert.equal((await of('SUMMARIZE t')).catalog?.kind, 'summarize');
    assert.equal((await of('SUMMARIZE t')).deterministic, true);
    assert.equal((await of('SELECT * FROM t')).catalog, undefined);
    assert.equal((await of('SELECT * FROM t, information_schema.tables')).catalog, undefined, 'data and catalog mixed: the planner\'s');
  });

  test('bad input is a PuffinError: unknown tables, admin-only tables, SUMMARIZE inside a query', async () => {
    const refused = async (sql: string, role: 'reader' | 'admin', code: string) => {
      await assert.rejects(service.query(sql, { role }), (err: unknown) => err instanceof PuffinError && err.code === code && /\S/.test(err.message), sql);
    };
    await refused('DESCRIBE nope', 'reader', 'unknown_table');
    await refused('SUMMARIZE nope', 'reader', 'unknown_table');
    await refused('DESCRIBE puffindb.query_log', 'reader', 'forbidden');
    await refused('SUMMARIZE puffindb.query_log', 'reader', 'forbidden');
    await refused('SELECT * FROM (SUMMARIZE t)', 'reader', 'unsupported');
    const err = await service.query('DESCRIBE nope', reader).catch((e: PuffinError) => e);
    assert.ok(!String((err as PuffinError).message).includes('query_log'), 'a reader is not told of admin-only tables');
  });
});

describe('catalog statements through POST /v1/query', () => {
  test('a reader key can DESCRIBE, SHOW TABLES and SUMMARIZE', async () => {
    const post = (sql: string) => call('POST', '/v1/query', { key: readerKey, body: { sql } });
    const described = await post('DESCRIBE t');
    assert.equal(described.status, 200, await described.clone().text());
    const body = (await described.json()) as { columns: { name: string }[]; rows: Record<string, unknown>[] };
    assert.deepEqual(body.columns.map((c) => c.name), ['column_name', 'column_type', 'null', 'key', 'default', 'extra']);
    assert.deepEqual(body.rows.map((r) => r.column_name), column(await duck('DESCRIBE t'), 'column_name'));

    const tables = (await (await post('SHOW TABLES')).json()) as { rows: { name: string }[] };
    assert.deepEqual(tables.rows.map((r) => r.name), ['dim', 'empty', 't']);

    const summary = (await (await post('SUMMARIZE dim')).json()) as { rows: Record<string, unknown>[] };
    assert.deepEqual(summary.rows.map((r) => [r.column_name, r.min, r.max, r.count]), [['g', '0', '6', 7], ['gname', 'name0', 'name6', 7]]);

    assert.equal((await errorOf(await post('DESCRIBE nope'), 404)).code, 'unknown_table');
    assert.equal((await errorOf(await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'DESCRIBE nope' } }))).code, 'unknown_table');
  });
});
