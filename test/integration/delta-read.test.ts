// The Delta Lake fixtures (../shared/fixtures/delta/, real tables written by Spark, Databricks
// and delta-rs) registered in the warehouse catalog and queried with SQL through the local
// cluster, with the in-process invoker and with the pool of worker processes. The answers
// are the fixtures README's (an independent replay of each log over the raw Parquet files).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine, type JsonValue } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';
import { deletionVectorFile, inlineDeletionVector, metaData, protocol, writeCommit, writeDataFile } from '../helpers/delta-writer.ts';

const FIXTURES = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/fixtures/delta');

const dir = tempDir('delta-cluster');
let engine: Engine;
let catalog: WarehouseCatalog;

before(async () => {
  assert.ok(existsSync(FIXTURES), `the Delta fixtures are expected at ${FIXTURES}`);
  engine = await Engine.create({ threads: 2 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);
  await catalog.registerDelta('simple_table', join(FIXTURES, 'simple_table'));
  await catalog.registerDelta('partitioned', join(FIXTURES, 'delta-0.8.0-partitioned'));
  await catalog.registerDelta('dv_small', join(FIXTURES, 'table-with-dv-small'));
  await catalog.registerDelta('column_mapping', join(FIXTURES, 'table_with_column_mapping'));
  // Written here: column mapping 'name', a partition column, an inline deletion vector and
  // one in a file, so both travel to worker processes.
  const w = join(dir.path, 'written');
  const fields = [{ name: 'k', type: 'long', physicalName: 'c1', id: 1 }, { name: 'p', type: 'string', physicalName: 'c2', id: 2 }];
  const [dv] = deletionVectorFile(w, [[0, 2, 4]]);
  const a = await writeDataFile(engine, w, 'a.parquet', 'SELECT i::BIGINT AS c1 FROM range(0, 10) t(i)', { partitionValues: { c2: 'x' }, deletionVector: dv });
  const b = await writeDataFile(engine, w, 'b.parquet', 'SELECT i::BIGINT AS c1 FROM range(10, 20) t(i)', { partitionValues: { c2: 'y' }, deletionVector: inlineDeletionVector([9]) });
  writeCommit(w, 0, [protocol(3, ['columnMapping', 'deletionVectors']), metaData(fields, ['p'], { 'delta.columnMapping.mode': 'name' }), a, b]);
  await catalog.registerDelta('written', w);
});

after(() => {
  engine.close();
  dir.remove();
});

test('the catalog sees the fixtures as Delta tables at their newest versions', async () => {
  assert.deepEqual(await catalog.listTables(), ['column_mapping', 'dv_small', 'partitioned', 'simple_table', 'written']);
  const simple = await catalog.getTable('simple_table');
  assert.equal(simple?.kind, 'delta');
  assert.equal(simple?.snapshotId, '4:5fba94ed-9794-4965-ba6e-6ee3c0d22af9'); // version:metaData.id; _delta_log/.tmp/ is not part of the log
  assert.equal(simple?.files.length, 5);
  const dv = await catalog.getTable('dv_small');
  assert.deepEqual(dv?.files[0].stats.value, { min: '0', max: '9' }); // tightBounds false: no null count
  assert.equal(dv?.files[0].iceberg?.deletes[0].uri, `file://${join(FIXTURES, 'table-with-dv-small', 'deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin')}`);
  const cm = await catalog.getTable('column_mapping');
  assert.deepEqual(cm?.columns, [{ name: 'Company Very Short', type: 'VARCHAR' }, { name: 'Super Name', type: 'VARCHAR' }]);
});

for (const invoker of ['in-process', 'pool'] as const) {
  describe(`Delta fixtures through the cluster (${invoker} invoker)`, () => {
    let cluster: LocalCluster;
    const rows = async (sql: string, fragments?: number): Promise<JsonValue[][]> => (await cluster.query(sql, { fragments })).rows;

    before(async () => {
      const home = join(dir.path, `home-${invoker}`);
      const settings = loadSettings({}, {
        home,
        warehouse: toRootUrl(join(dir.path, 'warehouse')),
        shuffleUrl: toRootUrl(join(home, 'shuffle')),
        cacheDir: join(home, 'cache'),
        threads: 1,
        workers: 2,
        maxFragments: 3,
      });
      cluster = await LocalCluster.open({ settings, catalog, invoker });
    });
    after(async () => {
      await cluster.close();
    });

    test('simple_table: 3 rows, id = 5, 7, 9', async () => {
      for (const fragments of [1, 3]) assert.deepEqual(await rows('SELECT id FROM simple_table ORDER BY id', fragments), [[5], [7], [9]].map(([v]) => [String(v)]));
    });

    test('simple_table: time travel by version and by commit timestamp', async () => {
      assert.deepEqual(await rows('SELECT count(*) FROM simple_table AT (VERSION => 0)'), [['5']]);
      assert.deepEqual(await rows('SELECT count(*) FROM simple_table AT (VERSION => 4)'), [['3']]);
      // commitInfo.timestamp of version 1 is 1587968596254, of version 2 1587968604143.
      assert.deepEqual(await rows("SELECT count(*) FROM simple_table AT (TIMESTAMP => TIMESTAMPTZ '2020-04-27 06:23:20+00')"), await rows('SELECT count(*) FROM simple_table AT (VERSION => 1)'));
      await assert.rejects(cluster.query('SELECT count(*) FROM simple_table AT (VERSION => 5)'), /version 5 does not exist: the table's newest version is 4/);
      await assert.rejects(cluster.query("SELECT count(*) FROM simple_table AT (TIMESTAMP => TIMESTAMP '2000-01-01')"), /no version at or before 2000-01-01/);
    });

    test('delta-0.8.0-partitioned: 7 rows, partition values from the log, pruned by them', async () => {
      assert.deepEqual(await rows('SELECT count(*) FROM partitioned'), [['7']]);
      assert.deepEqual(await rows('SELECT year, month, day, value FROM partitioned ORDER BY value'), [
        ['2020', '1', '1', '1'], ['2020', '2', '3', '2'], ['2020', '2', '5', '3'], ['2021', '4', '5', '4'], ['2021', '12', '4', '5'], ['2021', '12', '20', '6'], ['2021', '12', '20', '7'],
      ]);
      const r = await cluster.query("SELECT value FROM partitioned WHERE year = '2021' AND month = '12' ORDER BY value");
      assert.deepEqual(r.rows, [['5'], ['6'], ['7']]);
      assert.equal(r.plan.scans[0].filesTotal, 6);
      assert.equal(r.plan.scans[0].filesKept, 2);
    });

    test('table-with-dv-small: 8 rows (the deletion vector file removes 0 and 9)', async () => {
      assert.deepEqual(await rows('SELECT count(*), min(value), max(value) FROM dv_small'), [['8', 1, 8]]);
      assert.deepEqual(await rows('SELECT count(*) FROM dv_small AT (VERSION => 0)'), [['10']]);
      assert.deepEqual(await rows('SELECT value FROM dv_small WHERE value IN (0, 1, 9) ORDER BY 1'), [[1]]);
    });

    test('table_with_column_mapping: 5 rows by physical names, partition column from the log', async () => {
      assert.deepEqual(await rows('SELECT "Company Very Short", count(*) FROM column_mapping GROUP BY 1 ORDER BY 1'), [['BME', '1'], ['BMS', '4']]);
      const r = await cluster.query(`SELECT "Super Name" FROM column_mapping WHERE "Super Name" >= 'T' ORDER BY 1`);
      assert.deepEqual(r.rows, [['Timothy Lamb']]);
      assert.equal(r.plan.scans[0].filesKept, 1); // BMS's file holds names up to 'Stephanie Mcgrath'
    });

    test('a written table: column mapping, deletion vectors in a file and inline', async () => {
      for (const fragments of [1, 2]) {
        assert.deepEqual(await rows('SELECT p, count(*), sum(k) FROM written GROUP BY p ORDER BY p', fragments), [['x', '7', String(45 - 6)], ['y', '9', String(145 - 19)]]);
      }
    });

    test('Delta and other tables in one query', async () => {
      assert.deepEqual(await rows('SELECT s.id, d.value FROM simple_table s JOIN dv_small d ON s.id = d.value ORDER BY 1'), [['5', 5], ['7', 7]]);
    });

    test('writes to a Delta table are refused', async () => {
      await assert.rejects(cluster.query('INSERT INTO simple_table VALUES (1)'), (err: unknown) => err instanceof Error && !/internal/i.test((err as { code?: string }).code ?? ''));
    });
  });
}
