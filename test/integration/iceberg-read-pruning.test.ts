// Scan planning of reads with the query's filters (WarehouseCatalog.deferredTable, planned by
// the planner with the pushable predicates): whole manifests skipped by the manifest list's
// partition summaries (counted in the plan's scan report), files by partition values and
// bounds, on a table whose partitioning evolved (two specs), with answers checked against
// plain DuckDB over the same rows. And files whose field ids differ from the current
// schema's names (a renamed column; a column dropped and added again under its old name)
// still read right while files that match read by name.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { buildIcebergReadSql } from '../../runtime/catalog/iceberg/read.ts';
import { formatPlan } from '../../runtime/planner/explain.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';

let dir: string;
let engine: Engine;
let cluster: LocalCluster;
let catalog: WarehouseCatalog;
let instance: DuckDBInstance;
let plain: DuckDBConnection;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-read-pruning-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse, { recursive: true });
  engine = await Engine.create({ threads: 2 });
  catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  instance = await DuckDBInstance.create(':memory:');
  plain = await instance.connect();
});

after(async () => {
  await cluster?.close();
  engine?.close();
  plain?.closeSync();
  instance?.closeSync();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = (rows: unknown[][]): string[] => rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).sort();

/** Run on the cluster and on plain DuckDB's copy; the rows must agree. */
async function same(sql: string): Promise<void> {
  const got = (await cluster.query(sql)).rows;
  const want = (await plain.runAndReadAll(sql)).getRows();
  assert.deepEqual(text(got), text(want), sql);
}

/** Both the Iceberg table (through SQL) and the plain copy. */
async function both(sql: string, plainSql = sql): Promise<void> {
  await cluster.query(sql);
  await plain.run(plainSql);
}

async function manifests(sql: string): Promise<{ total: number; read: number }> {
  const plan = await cluster.explain(sql);
  const scan = plan.scans.find((s) => s.table === 'ev');
  assert.ok(scan?.manifests, `the plan reports the manifests of ev: ${JSON.stringify(plan.scans)}`);
  return scan.manifests;
}

describe('reads planned with the query\'s filter', () => {
  test('manifests skipped by partition summaries; the same answers as plain DuckDB', async () => {
    const rows = 'SELECT i::INTEGER AS id, (i % 4)::INTEGER AS g FROM range(40) r(i)';
    await both(`CREATE TABLE ev PARTITIONED BY (g) AS ${rows}`, `CREATE TABLE ev AS ${rows}`);
    for (const g of [10, 11, 12]) await both(`INSERT INTO ev SELECT (100 * ${g} + i)::INTEGER, ${g} FROM range(5) r(i)`);
    await both('INSERT INTO ev VALUES (999, NULL)');
    // One manifest per commit; only the one holding g = 11 can match.
    assert.deepEqual(await manifests('SELECT count(*) FROM ev WHERE g = 11'), { total: 5, read: 1 });
    assert.match(formatPlan(await cluster.explain('SELECT count(*) FROM ev WHERE g = 11')), /manifests: 1 of 5 read, 4 skipped by their partition summaries/);
    assert.deepEqual(await manifests('SELECT count(*) FROM ev WHERE g IN (10, 12)'), { total: 5, read: 2 });
    assert.deepEqual(await manifests('SELECT count(*) FROM ev WHERE g IS NULL'), { total: 5, read: 1 });
    // A reference without a filter reads every manifest; an OR of references, the union.
    assert.deepEqual(await manifests('SELECT count(*) FROM ev a, ev b WHERE a.id = b.id AND a.g = 11'), { total: 5, read: 5 });
    assert.deepEqual(await manifests('SELECT (SELECT count(*) FROM ev WHERE g = 10) + (SELECT count(*) FROM ev WHERE g = 12)'), { total: 5, read: 2 });
    for (const where of ['g = 11', 'g IN (10, 12)', 'g IS NULL', "g = '11'", 'g = 11.5', 'g > 10.5', 'id BETWEEN 1000 AND 1102', 'g = 1 OR id = 999']) {
      await same(`SELECT id, g FROM ev WHERE ${where}`);
    }
  });

  test('a partition-evolved table (two specs) answers right under pruning', async () => {
    await both('ALTER TABLE ev SET PARTITIONED BY (bucket(4, id))', 'SELECT 1');
    await both('INSERT INTO ev SELECT (2000 + i)::INTEGER, 20 FROM range(8) r(i)');
    await both('INSERT INTO ev SELECT (3000 + i)::INTEGER, 11 FROM range(3) r(i)');
    // g = 11 matches the old spec's g = 11 manifest and the new spec's manifests, whose
    // partition (a bucket of id) says nothing about g; files are then pruned by bounds.
    const m = await manifests('SELECT count(*) FROM ev WHERE g = 11');
    assert.equal(m.total, 7);
    assert.equal(m.read, 3, JSON.stringify(m));
    for (const where of ['g = 11', 'g = 20', 'id = 2005', 'id IN (2001, 3002, 1101)', 'g IS NULL OR g = 20']) {
      await same(`SELECT id, g FROM ev WHERE ${where}`);
    }
    await same('SELECT g, count(*), sum(id) FROM ev GROUP BY g');
  });
});

describe('files whose field ids differ from the current names', () => {
  test('a renamed column, a column dropped and added again: old files by id, new ones by name', async () => {
    await both("CREATE TABLE fid AS SELECT i::INTEGER AS id, 'a' || i AS v FROM range(5) r(i)", "CREATE TABLE fid AS SELECT i::INTEGER AS id, NULL::VARCHAR AS v FROM range(5) r(i)");
    await cluster.query('ALTER TABLE fid DROP COLUMN v');
    await cluster.query('ALTER TABLE fid ADD COLUMN v VARCHAR');
    await both("INSERT INTO fid VALUES (10, 'new')");
    await cluster.query('ALTER TABLE fid RENAME COLUMN id TO ident');
    await plain.run('ALTER TABLE fid RENAME COLUMN id TO ident');
    await both("INSERT INTO fid VALUES (11, 'x')");
    for (const where of ['true', 'v IS NULL', "v = 'a1'", "v = 'new'", 'ident > 3', 'ident = 11']) await same(`SELECT ident, v FROM fid WHERE ${where}`);
    // v alone: the oldest files hold a column named v, under the dropped column's id.
    await same('SELECT v FROM fid');
    await same("SELECT count(*) FROM fid WHERE v IS NULL OR v = 'a1'");
  });

  test('the read SQL: by name when the footer\'s ids carry the current names, by field id otherwise', () => {
    const fields = [
      { fieldId: 1, name: 'ident', type: 'INTEGER', defaultValue: null },
      { fieldId: 3, name: 'v', type: 'VARCHAR', defaultValue: null },
    ];
    const file = (uri: string) => ({ uri, path: uri, format: 'parquet', readSchema: fields, deletes: [] });
    const footers: Record<string, { hasFieldIds: boolean; columns: string[]; fields: { name: string; fieldId: number | null; children: [] }[] }> = {
      'file:///new.parquet': { hasFieldIds: true, columns: ['ident', 'v'], fields: [{ name: 'ident', fieldId: 1, children: [] }, { name: 'v', fieldId: 3, children: [] }] },
      // Written before the rename, and with the dropped column 2 named v.
      'file:///old.parquet': { hasFieldIds: true, columns: ['id', 'v'], fields: [{ name: 'id', fieldId: 1, children: [] }, { name: 'v', fieldId: 2, children: [] }] },
      // Lacks v, and has no other column of that name: v is its default.
      'file:///lacks.parquet': { hasFieldIds: true, columns: ['ident'], fields: [{ name: 'ident', fieldId: 1, children: [] }] },
    };
    const sql = (uri: string) => buildIcebergReadSql({ fields, dataFiles: [file(uri)] }, undefined, { fileSchemas: (u) => footers[u] });
    assert.match(sql('file:///new.parquet'), /read_parquet\(\['\/new\.parquet'\], union_by_name = true/);
    assert.doesNotMatch(sql('file:///new.parquet'), /schema = MAP/);
    assert.match(sql('file:///old.parquet'), /schema = MAP \{1: \{name: 'ident'/);
    assert.match(sql('file:///lacks.parquet'), /CAST\(NULL AS VARCHAR\) AS "v"/);
    assert.doesNotMatch(sql('file:///lacks.parquet'), /schema = MAP/);
  });
});
