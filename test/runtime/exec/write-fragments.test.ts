// Distributed writes (runtime/exec/write-fragments.ts, cluster.ts, merge-fragments.ts) through
// a LocalCluster of in-process workers and three fragments: a copy-on-write DELETE / UPDATE
// reports its fragments and bytes, and a write whose fragment fails (INSERT, CTAS, UPDATE's
// rewrite, MERGE's rewrite) leaves no data file behind, the table as it was.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import type { LocalCluster } from '../../../runtime/exec/cluster.ts';
import { writtenPaths } from '../../../runtime/exec/write-fragments.ts';
import { openWarehouseCluster, type WarehouseCluster } from '../../helpers/warehouse-cluster.ts';

let warehouse: string;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;

let opened: WarehouseCluster;

before(async () => {
  opened = await openWarehouseCluster('puffin-write-frag-', { PUFFINDB_MAX_FRAGMENTS: '3' });
  ({ warehouse, catalog, cluster } = opened);
  // Four data files of 50 rows each: every write below spans three fragments.
  await cluster.query('CREATE TABLE src AS SELECT i AS id, i % 7 AS v FROM range(0, 50) t(i)');
  for (const lo of [50, 100, 150]) await cluster.query(`INSERT INTO src SELECT i, i % 7 FROM range(${lo}, ${lo + 50}) t(i)`);
});

after(async () => {
  await opened?.close();
});

/** Every file under a table's data directory. */
function dataFiles(table: string): string[] {
  const root = join(warehouse, table, 'data');
  if (!existsSync(root)) return [];
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  return walk(root).sort();
}

async function rowsOf(table: string): Promise<unknown[][]> {
  return (await cluster.query(`SELECT * FROM ${table} ORDER BY ALL`)).rows;
}

/** The statement fails with `pattern`, and the table keeps its pointer, its files and its rows. */
async function failsLeavingNothing(sql: string, table: string, pattern: RegExp): Promise<void> {
  const pointer = await catalog.pointers!.get(table);
  const files = dataFiles(table);
  const rows = await rowsOf(table);
  await assert.rejects(cluster.query(sql), (err: Error) => {
    assert.match(err.message, pattern);
    return true;
  });
  assert.equal(await catalog.pointers!.get(table), pointer, `${sql}: nothing committed`);
  assert.deepEqual(dataFiles(table), files, `${sql}: no data file left behind`);
  assert.deepEqual(await rowsOf(table), rows, `${sql}: the table reads as before`);
}

describe('distributed writes', () => {
  test('copy-on-write DELETE and UPDATE report the fragments that rewrote the files', async () => {
    await cluster.query('CREATE TABLE st AS SELECT * FROM src');
    assert.ok(dataFiles('st').length >= 2, 'a multi-file table');
    const deleted = await cluster.query('DELETE FROM st WHERE v = 3');
    assert.equal(deleted.rows[0][2], '29');
    assert.ok(deleted.stats.fragments > 1, JSON.stringify(deleted.stats));
    assert.ok(deleted.stats.bytesScanned > 0, JSON.stringify(deleted.stats));
    assert.ok(deleted.plan.fragments.length > 1, 'the plan shows the rewrite fragments');
    assert.match(deleted.plan.reason, /rewrite of \d+ data file/);
    const updated = await cluster.query('UPDATE st SET v = -1 WHERE id % 50 = 0');
    assert.equal(updated.rows[0][2], '3');
    assert.ok(updated.stats.fragments > 1 && updated.stats.bytesScanned > 0, JSON.stringify(updated.stats));
    assert.deepEqual((await cluster.query('SELECT count(*), sum(v) FROM st')).rows, [['171', '501']]);
  });

  test('a failing fragment: INSERT, CTAS, UPDATE and MERGE leave no data file and change nothing', async () => {
    await cluster.query('CREATE TABLE dst AS SELECT * FROM src WHERE id < 10');
    // error() raised only for a row of one of the four files: the other fragments finish and write theirs.
    await failsLeavingNothing("INSERT INTO dst SELECT id, CASE WHEN id = 160 THEN error('boom-insert') ELSE v END FROM src", 'dst', /boom-insert/);

    await assert.rejects(cluster.query("CREATE TABLE ctas_fail AS SELECT id, CASE WHEN id = 10 THEN error('boom-ctas') ELSE v END AS v FROM src"), /boom-ctas/);
    assert.equal(await catalog.pointers!.get('ctas_fail'), undefined, 'no table left');
    assert.deepEqual(dataFiles('ctas_fail'), [], 'no data file left');

    await cluster.query('CREATE TABLE rw AS SELECT * FROM src');
    // The WHERE is counted first (it would fail there); the SET runs in the rewrite fragments only.
    await failsLeavingNothing("UPDATE rw SET v = CASE WHEN id = 150 THEN error('boom-update')::INTEGER ELSE 0 END WHERE v = 3", 'rw', /boom-update/);
    await failsLeavingNothing("MERGE INTO rw AS t USING (SELECT i AS id FROM range(0, 200, 10) r(i)) s ON t.id = s.id WHEN MATCHED AND t.id = 180 THEN ERROR 'boom-merge' WHEN MATCHED THEN UPDATE SET v = 0", 'rw', /boom-merge/);
    // And the same statements, once they do not fail, change what they should.
    const merged = await cluster.query('MERGE INTO rw AS t USING (SELECT i AS id FROM range(0, 200, 10) r(i)) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 0');
    assert.equal(merged.rows[0][2], '20');
    assert.ok(merged.stats.fragments > 1);
  });

  test('writtenPaths reads file descriptions, not setup answers', () => {
    assert.deepEqual(writtenPaths([[JSON.stringify({ path: 'file:///a.parquet', recordCount: 1 })], [JSON.stringify({ setup: 1, rows: [[3]] })], ['not json']]), ['file:///a.parquet']);
  });
});
