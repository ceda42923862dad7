// Views and materialized views through the local cluster (real DuckDB, real Iceberg files):
// views are expanded before planning (over views, cycles refused, roles applied to what
// they read); materialized views refresh incrementally after appends (appending, or merging
// aggregates by group, NULL groups included) and fully after a DELETE, each time equal to
// plain DuckDB over the source rows.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadTable } from '../../runtime/catalog/iceberg/commit.ts';
import { uriTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { withQueryLogTable } from '../../runtime/exec/query-log.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { classifyStatement } from '../../runtime/sql/classify.ts';
import { openStore } from '../../runtime/storage/open.ts';
import { appFor, caller, errorOf, newKey } from '../helpers/api.ts';
import type { ControlFixture } from '../helpers/control-plane.ts';
import { openControlPlane } from '../../runtime/exec/control-plane.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';

let dir: string;
let engine: Engine;
let reference: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-views-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse, { recursive: true });
  engine = await Engine.create({ threads: 1 });
  reference = await Engine.create({ threads: 1 });
  catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  // As servers and the CLI run queries: with puffindb.query_log beside the catalog's tables.
  cluster = await LocalCluster.open({ settings, catalog: withQueryLogTable(catalog, openStore(settings.warehouse)), invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  reference?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const admin = { role: 'admin' as const };
const rows = async (sql: string, role: 'admin' | 'writer' | 'reader' = 'admin') => (await cluster.query(sql, { role })).rows;
const text = (r: unknown[][]) => r.map((x) => x.map((v) => (v === null ? null : String(v))));
async function refRows(sql: string) {
  return text((await reference.query(sql)).rows);
}
/** Run a write on the cluster and the same statement on the reference DuckDB. */
async function both(sql: string) {
  await cluster.query(sql, admin);
  await reference.exec(sql);
}

describe('views', () => {
  test('create, query, view over view, replace, cycle, describe, drop', async () => {
    await cluster.query('CREATE TABLE src (k VARCHAR, v INTEGER)', admin);
    await cluster.query("INSERT INTO src VALUES ('a', 1), ('b', 2), (NULL, 3), ('a', 4)", admin);
    const created = await cluster.query('CREATE VIEW v1 AS SELECT k, v * 10 AS w FROM src WHERE v > 1', { role: 'writer' });
    assert.deepEqual(created.rows, [['create_view', 'v1', '0', null]]);
    assert.deepEqual(text(await rows('SELECT * FROM v1 ORDER BY w')), [['b', '20'], [null, '30'], ['a', '40']]);
    // Qualified columns through the view's name, and a reference's own alias.
    assert.deepEqual(text(await rows('SELECT v1.w FROM v1 JOIN src s ON s.k = v1.k ORDER BY 1')), [['20'], ['40'], ['40']]);
    await cluster.query('CREATE VIEW v2 (kk, total) AS SELECT k, sum(w) FROM v1 GROUP BY k', admin);
    assert.deepEqual(text(await rows("SELECT total FROM v2 WHERE kk = 'a'")), [['40']]);
    assert.deepEqual(text(await rows('SELECT x.a FROM v2 AS x(a, b) WHERE b = 20')), [['b']]);
    // A CTE of the same name hides the view.
    assert.deepEqual(text(await rows('WITH v1 AS (SELECT 7 AS w) SELECT w FROM v1')), [['7']]);

    await assert.rejects(cluster.query('CREATE OR REPLACE VIEW v1 AS SELECT kk AS k, total AS w FROM v2', admin), /refers to itself: v1 -> v2 -> v1/);
    await assert.rejects(cluster.query('CREATE VIEW v1 AS SELECT 1', admin), /already exists/);
    await assert.rejects(cluster.query('CREATE TABLE v1 (a INTEGER)', admin), /is a view/);
    await assert.rejects(cluster.query('CREATE VIEW src AS SELECT 1', admin), /is a table/);
    await cluster.query('CREATE OR REPLACE VIEW v1 AS SELECT k, v AS w FROM src', admin);
    assert.deepEqual(text(await rows("SELECT total FROM v2 WHERE kk = 'a'")), [['5']]);

    const described = await rows('DESCRIBE v2');
    assert.deepEqual(described.map((r) => r[0]), ['kk', 'total']);
    assert.ok((await rows('SHOW TABLES')).some((r) => r[0] === 'v1'));
    const plan = await cluster.explain('SELECT * FROM v2', admin);
    assert.match(plan.sql, /src/);

    // Writes read views too: CTAS, INSERT ... SELECT and COPY (SELECT ...) TO.
    await cluster.query('CREATE TABLE from_view AS SELECT kk, CAST(total AS BIGINT) AS total FROM v2', admin);
    await cluster.query("INSERT INTO from_view SELECT kk, total FROM v2 WHERE kk = 'a'", admin);
    assert.deepEqual(text(await rows("SELECT count(*) FROM from_view WHERE kk = 'a'")), [['2']]);
    await cluster.query('MERGE INTO from_view t USING (SELECT kk, total FROM v2) s ON t.kk IS NOT DISTINCT FROM s.kk WHEN MATCHED THEN UPDATE SET total = 0', admin);
    assert.deepEqual(text(await rows('SELECT DISTINCT total FROM from_view')), [['0']]);
    const copied = await cluster.query("COPY (SELECT * FROM v2) TO 'v2_copy' (FORMAT csv)", admin);
    assert.equal(copied.rows.reduce((n, r) => n + Number(r[1]), 0), 3);

    // A view calling random() makes a statement naming it volatile (never served from the result cache).
    await cluster.query('CREATE VIEW vr AS SELECT k, random() AS r FROM src', admin);
    const classified = await classifyStatement(engine, 'SELECT count(*) FROM vr');
    assert.equal(classified.deterministic, true);
    await cluster.explain(classified, admin);
    assert.equal(classified.deterministic, false);

    await cluster.query('DROP VIEW v2', admin);
    await assert.rejects(rows('SELECT * FROM v2'), /unknown table/i);
    await cluster.query('DROP VIEW IF EXISTS v2', admin);
    await assert.rejects(cluster.query('DROP VIEW v2', admin), /unknown view/);
  });

  test('checked at creation: files and refused calls; roles apply to what a view reads', async () => {
    await assert.rejects(cluster.query(`CREATE VIEW f AS SELECT * FROM read_parquet('${join(dir, 'x.parquet')}')`, admin), (e: Error & { code?: string }) => e.code === 'access_denied');
    await assert.rejects(cluster.query("CREATE VIEW f AS SELECT getenv('HOME')", admin), (e: Error & { code?: string }) => e.code === 'access_denied');
    await assert.rejects(cluster.query('CREATE VIEW f AS SELECT nope FROM src', admin), /nope/);
    // A writer may not define a view over the admin-only log; an admin may, and readers still cannot read it.
    await assert.rejects(cluster.query('CREATE VIEW logv AS SELECT count(*) AS n FROM puffindb.query_log', { role: 'writer' }), (e: Error & { code?: string }) => e.code === 'forbidden');
    await cluster.query('CREATE VIEW logv AS SELECT count(*) AS n FROM puffindb.query_log', admin);
    await assert.rejects(rows('SELECT * FROM logv', 'reader'), (e: Error & { code?: string }) => e.code === 'forbidden');
    assert.equal((await rows('SELECT * FROM logv', 'admin')).length, 1);
    assert.ok(!(await rows('SHOW TABLES', 'reader')).some((r) => r[0] === 'logv'));
    // View statements are writes: a reader key is refused them (HTTP 403 below, pgwire) by their access.
    for (const sql of ['CREATE VIEW x AS SELECT 1', 'DROP VIEW x', 'CREATE MATERIALIZED VIEW m AS SELECT 1', 'REFRESH MATERIALIZED VIEW m', 'DROP MATERIALIZED VIEW m']) {
      const c = await classifyStatement(engine, sql);
      assert.equal(c.access, 'write', sql);
      assert.notEqual(c.kind, 'other', sql);
    }
  });
});

test('over HTTP: a reader key gets 403 for view statements, reads views, not one over the query log', async () => {
  // The control plane over this test's warehouse catalog (it adds puffindb.query_log, as servers do).
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'http-home'), PUFFINDB_WAREHOUSE: join(dir, 'warehouse'), PUFFINDB_WORKERS: '1', PUFFINDB_THREADS: '1' });
  const state = new MemoryStateStore();
  const plane = await openControlPlane({ settings, catalog, state, invoker: 'in-process', onError: () => undefined });
  try {
    const call = caller(await appFor({ plane, state, settings } as unknown as ControlFixture));
    const reader = await newKey(call, 'reader');
    const writer = await newKey(call, 'writer');
    const post = (key: string, sql: string) => call('POST', '/v1/query', { key, body: { sql } });
    for (const sql of ['CREATE VIEW x AS SELECT 1 AS a', 'DROP VIEW IF EXISTS x', 'CREATE MATERIALIZED VIEW m AS SELECT 1 AS a', 'REFRESH MATERIALIZED VIEW m', 'DROP MATERIALIZED VIEW m']) {
      const e = await errorOf(await post(reader.key, sql), 403);
      assert.match(e.message, /reader/, sql);
    }
    const created = await post(writer.key, 'CREATE VIEW http_v AS SELECT k FROM src WHERE v = 4');
    assert.equal(created.status, 200, await created.clone().text());
    const read = await post(reader.key, 'SELECT * FROM http_v');
    assert.equal(read.status, 200, await read.clone().text());
    assert.deepEqual(((await read.json()) as { rows: unknown[] }).rows, [{ k: 'a' }]);
    await errorOf(await post(reader.key, 'SELECT * FROM logv'), 403);
  } finally {
    await plane.close();
  }
});

describe('materialized views', () => {
  const AGG = 'SELECT g, count(*) AS n, count(x) AS nx, sum(x) AS s, min(x) AS lo, max(x) AS hi FROM facts GROUP BY g';
  const PROJ = 'SELECT g, x * 2 AS y FROM facts WHERE x > 1';
  const AVG = 'SELECT g, avg(x) AS a FROM facts GROUP BY g';

  async function refresh(name: string) {
    const r = await cluster.query(`REFRESH MATERIALIZED VIEW ${name}`, admin);
    return { mode: r.rows[0][1], added: Number(r.rows[0][2]), reason: String(r.rows[0][5]) };
  }
  async function same(name: string, sql: string) {
    assert.deepEqual(text(await rows(`SELECT * FROM ${name} ORDER BY ALL`)), await refRows(`SELECT * FROM (${sql}) ORDER BY ALL`), name);
  }

  test('create, incremental refresh after appends, full after a DELETE, drop', async () => {
    await both('CREATE TABLE facts (g VARCHAR, x INTEGER)');
    await both("INSERT INTO facts VALUES ('a', 1), ('a', 2), (NULL, 3), ('b', NULL)");
    await cluster.query(`CREATE MATERIALIZED VIEW mv_agg AS ${AGG}`, admin);
    await cluster.query(`CREATE MATERIALIZED VIEW mv_proj PARTITIONED BY (g) AS ${PROJ}`, admin);
    await cluster.query(`CREATE MATERIALIZED VIEW mv_avg AS ${AVG}`, admin);
    await same('mv_agg', AGG);
    await same('mv_proj', PROJ);

    // Appends: new groups, the NULL group again, NULL values.
    await both("INSERT INTO facts VALUES ('a', 5), (NULL, 7), ('c', 4), ('b', 6), (NULL, NULL)");
    const proj = await refresh('mv_proj');
    assert.equal(proj.mode, 'incremental', proj.reason);
    assert.equal(proj.added, 4);
    await same('mv_proj', PROJ);
    const agg = await refresh('mv_agg');
    assert.equal(agg.mode, 'incremental', agg.reason);
    assert.match(agg.reason, /merged/);
    await same('mv_agg', AGG);
    const avg = await refresh('mv_avg');
    assert.equal(avg.mode, 'full');
    await same('mv_avg', AVG);
    assert.equal((await refresh('mv_agg')).mode, 'incremental'); // nothing new

    // A DELETE in the source: recomputed.
    await both('DELETE FROM facts WHERE x = 1 OR x = 7');
    const full = await refresh('mv_agg');
    assert.equal(full.mode, 'full');
    assert.match(full.reason, /delete|overwrite/);
    await same('mv_agg', AGG);
    assert.equal((await refresh('mv_proj')).mode, 'full');
    await same('mv_proj', PROJ);
    // And incremental again after that.
    await both("INSERT INTO facts VALUES ('a', 10), (NULL, 1)");
    assert.equal((await refresh('mv_agg')).mode, 'incremental');
    await same('mv_agg', AGG);

    // What it reflects is in its table's properties, with the refresh history.
    const t = await loadTable(catalog.pointers, 'mv_agg', uriTableIO());
    const sources = JSON.parse(t.metadata.properties['puffindb.mv.sources']) as { table: string; snapshotId: string }[];
    assert.equal(sources[0].table, 'facts');
    assert.equal(sources[0].snapshotId, (await catalog.getTable('facts'))!.snapshotId);
    const history = JSON.parse(t.metadata.properties['puffindb.mv.refreshes']) as { mode: string }[];
    assert.deepEqual(history.map((h) => h.mode), ['full', 'incremental', 'full', 'incremental']);

    // An inner join: incremental when one side had appends, recomputed when both changed.
    const JOIN = 'SELECT d.label, count(*) AS n, sum(f.x) AS s FROM facts f JOIN dims d ON f.g = d.g GROUP BY d.label';
    await both('CREATE TABLE dims (g VARCHAR, label VARCHAR)');
    await both("INSERT INTO dims VALUES ('a', 'A'), ('b', 'B')");
    await cluster.query(`CREATE MATERIALIZED VIEW mv_join AS ${JOIN}`, admin);
    await both("INSERT INTO facts VALUES ('b', 3), ('c', 8)");
    assert.equal((await refresh('mv_join')).mode, 'incremental');
    await same('mv_join', JOIN);
    await both("INSERT INTO dims VALUES ('c', 'C'), ('z', NULL)");
    assert.equal((await refresh('mv_join')).mode, 'incremental');
    await same('mv_join', JOIN);
    await both("INSERT INTO dims VALUES ('a', 'A2')");
    await both("INSERT INTO facts VALUES ('a', 100)");
    assert.equal((await refresh('mv_join')).mode, 'full');
    await same('mv_join', JOIN);

    await assert.rejects(cluster.query('REFRESH MATERIALIZED VIEW facts', admin), /not a materialized view/);
    await cluster.query('DROP MATERIALIZED VIEW mv_proj', admin);
    await assert.rejects(rows('SELECT * FROM mv_proj'), /unknown table/i);
    assert.ok(!(await catalog.listTables()).some((n) => n.includes('__mv_refresh_')), 'no staging table left');
  });
});
