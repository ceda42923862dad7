// An Iceberg table whose column names differ only by case (`user_id`, `uSeR_Id`), as Spark with
// spark.sql.caseSensitive or PyIceberg write them: readable through SQL, each column under a
// distinct name DuckDB can hold (column-names.ts), pruned by the right column's bounds, and
// writable without mixing the two columns up.

import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeFixtureTable, type FixtureFile } from '../../bench/iceberg/fixture-writer.ts';
import { exposedNames, exposedSchema } from '../../runtime/catalog/iceberg/column-names.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';

const dir = tempDir('iceberg-case-names');
let engine: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;

/** Rows: file 0 has user_id in a..c and uSeR_Id in x..z; file 1 the other way round. */
const PARTS = [
  `SELECT i::BIGINT AS id, ['a', 'b', 'c'][1 + i % 3] AS a, ['x', 'y', 'z'][1 + i % 3] AS b, i::INTEGER AS n FROM range(0, 6) r(i)`,
  `SELECT i::BIGINT AS id, ['x', 'y', 'z'][1 + i % 3] AS a, ['a', 'b', 'c'][1 + i % 3] AS b, i::INTEGER AS n FROM range(6, 12) r(i)`,
];
const ALL = PARTS.join(' UNION ALL ');

before(async () => {
  engine = await Engine.create({ threads: 2 });
  const root = join(dir.path, 'warehouse', 'cased');
  mkdirSync(join(root, 'data'), { recursive: true });
  const files: FixtureFile[] = [];
  for (const [n, sql] of PARTS.entries()) {
    // Parquet names do not matter: the table reads its files by field id.
    const path = join(root, 'data', `part-${n}.parquet`);
    const r = await engine.query(`COPY (${sql}) TO ${sqlString(path)} (FORMAT parquet, FIELD_IDS {id: 1, a: 2, b: 3, n: 4})`);
    const [lo2, hi2, lo3, hi3] = n === 0 ? ['a', 'c', 'x', 'z'] : ['x', 'z', 'a', 'c'];
    files.push({ path: `data/part-${n}.parquet`, recordCount: Number(r.rows[0][0]), sizeBytes: statSync(path).size, lower: { 2: lo2, 3: lo3 }, upper: { 2: hi2, 3: hi3 } });
  }
  writeFixtureTable(root, {
    schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'user_id', type: 'string' }, { id: 3, name: 'uSeR_Id', type: 'string' }, { id: 4, name: 'n', type: 'int' }] }],
    snapshots: [{ snapshotId: 21n, sequenceNumber: 1n, timestampMs: Date.UTC(2024, 0, 1), manifests: [{ content: 'data', sequenceNumber: 1n, addedSnapshotId: 21n, files }] }],
  });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);
  await catalog.registerIceberg('cased', root);
  const settings = loadSettings({ PUFFINDB_HOME: join(dir.path, 'home'), PUFFINDB_WAREHOUSE: join(dir.path, 'warehouse'), PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  dir.remove();
});

const expected = async (sql: string) => (await engine.query(sql.replace('{t}', `(SELECT id, a AS user_id, b AS "uSeR_Id_3", n FROM (${ALL}))`))).rows;

describe('column names that differ only by case', () => {
  test('exposed names: the first keeps its name, later ones get _<field id>, unique against every name', () => {
    assert.deepEqual(exposedNames([{ id: 1, name: 'user_id' }, { id: 2, name: 'uSeR_Id' }]), ['user_id', 'uSeR_Id_2']);
    assert.deepEqual(exposedNames([{ id: 1, name: 'A' }, { id: 2, name: 'a' }, { id: 3, name: 'a_2' }, { id: 4, name: 'x' }]), ['A', 'a_2_2', 'a_2', 'x']);
    const schema = { schemaId: 0, identifierFieldIds: [], fields: [{ id: 1, name: 'x', required: false, type: { kind: 'int' as const } }] };
    assert.equal(exposedSchema(schema), schema, 'unchanged (same object) without collisions');
  });

  test('the table reads: SELECT * has both columns, under distinct names', async () => {
    const r = await cluster.query('SELECT * FROM cased ORDER BY id');
    assert.deepEqual(r.columns.map((c) => c.name), ['id', 'user_id', 'uSeR_Id_3', 'n']);
    assert.deepEqual(r.rows, await expected('SELECT * FROM {t} ORDER BY id'));
  });

  test('predicates on either column return the rows plain DuckDB returns (bounds of the right column prune)', async () => {
    for (const q of [
      "SELECT id FROM cased WHERE user_id = 'a' ORDER BY id",
      `SELECT id FROM cased WHERE "uSeR_Id_3" = 'a' ORDER BY id`,
      "SELECT id FROM cased WHERE user_id > 'w' ORDER BY id",
      `SELECT user_id, "uSeR_Id_3", count(*) FROM cased WHERE "uSeR_Id_3" < 'y' GROUP BY ALL ORDER BY ALL`,
    ]) {
      assert.deepEqual((await cluster.query(q)).rows, await expected(q.replace('cased', '{t}')), q);
    }
    // DuckDB resolves identifiers without regard to case: uSeR_Id is user_id here, as in any DuckDB relation.
    assert.deepEqual((await cluster.query("SELECT count(*) FROM cased WHERE uSeR_Id = 'a'")).rows, [['2']]);
  });

  test('DELETE and UPDATE keep the two columns apart', async () => {
    await cluster.query(`UPDATE cased SET "uSeR_Id_3" = 'q' WHERE n = 1`);
    await cluster.query(`DELETE FROM cased WHERE user_id = 'z'`);
    await cluster.query(`INSERT INTO cased VALUES (100, 'u1', 'U2', 100)`);
    const want = (await engine.query(`SELECT id, a AS user_id, CASE WHEN n = 1 THEN 'q' ELSE b END AS "uSeR_Id_3", n FROM (${ALL}) WHERE a <> 'z' UNION ALL SELECT 100, 'u1', 'U2', 100 ORDER BY id`)).rows;
    assert.deepEqual((await cluster.query('SELECT * FROM cased ORDER BY id')).rows, want);
  });
});
