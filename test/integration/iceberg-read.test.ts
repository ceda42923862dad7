// The Iceberg read side end to end: tables registered in the warehouse catalog, queried with
// SQL through the local cluster (planner, coordinator, workers reading the files by field id
// with deletes applied), with the in-process invoker and with the pool of worker processes.

import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeFixtureTable, type FixtureFile } from '../../bench/iceberg/fixture-writer.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine, type JsonValue } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { assertSameResult, isOrdered } from '../helpers/compare.ts';
import { LINEITEM, MYTABLE, MYTABLE_PARTITIONED, NULL_STATS, PARTITION_INTEGER, tempDir } from '../runtime/catalog/iceberg/fixtures.ts';

const Q6 = `SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
  WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
    AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24`;

/** lineitem_iceberg's snapshot before its DELETE (60175 rows; the current one has 51793). */
const OLD_SNAPSHOT = '7817332053627255703';
/** Between the two snapshots' commit times (see scan-fixtures.test.ts). */
const BETWEEN_SNAPSHOTS = '2025-05-02 12:21:19.5';

const dir = tempDir('iceberg-cluster');
let engine: Engine;
let catalog: WarehouseCatalog;
/** Plain DuckDB over the differential table's Parquet files. */
let plain: Engine;
let differentialFiles: string[] = [];

/** A small Iceberg table written here: two unpartitioned-spec files plus a third, by field id. */
async function writeDifferentialTable(root: string): Promise<void> {
  mkdirSync(join(root, 'data'), { recursive: true });
  const files: FixtureFile[] = [];
  const parts = [
    `SELECT i AS id, 'k' || (i % 7) AS k, (i * 37 % 1000) / 10.0 AS amount, CASE WHEN i % 5 = 0 THEN NULL ELSE DATE '2024-01-01' + i::INTEGER END AS day FROM range(0, 400) t(i)`,
    `SELECT i AS id, 'k' || (i % 3) AS k, (i * 13 % 1000) / 10.0 AS amount, DATE '2024-06-01' + (i % 50)::INTEGER AS day FROM range(400, 700) t(i)`,
    `SELECT i AS id, NULL AS k, i / 4.0 AS amount, NULL::DATE AS day FROM range(700, 720) t(i)`,
  ];
  for (let n = 0; n < parts.length; n++) {
    const path = join(root, 'data', `part-${n}.parquet`);
    const sql = `SELECT id::BIGINT AS id, k::VARCHAR AS k, amount::DECIMAL(10,2) AS amount, day::DATE AS day FROM (${parts[n]})`;
    const r = await engine.query(`COPY (${sql}) TO ${sqlString(path)} (FORMAT parquet, FIELD_IDS {id: 1, k: 2, amount: 3, day: 4})`);
    files.push({ path: `data/part-${n}.parquet`, recordCount: Number(r.rows[0][0]), sizeBytes: statSync(path).size });
    differentialFiles.push(path);
  }
  writeFixtureTable(root, {
    schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'k', type: 'string' }, { id: 3, name: 'amount', type: 'decimal(10, 2)' }, { id: 4, name: 'day', type: 'date' }] }],
    snapshots: [{ snapshotId: 11n, sequenceNumber: 1n, timestampMs: Date.UTC(2024, 0, 1), manifests: [{ content: 'data', sequenceNumber: 1n, addedSnapshotId: 11n, files }] }],
  });
}

before(async () => {
  engine = await Engine.create({ threads: 2 });
  plain = await Engine.create({ threads: 1 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);
  await catalog.registerIceberg('lineitem', LINEITEM, { reroot: true });
  await catalog.registerIceberg('mytable', MYTABLE, { reroot: true });
  await catalog.registerIceberg('mytable_partitioned', MYTABLE_PARTITIONED, { reroot: true });
  await catalog.registerIceberg('partition_integer', PARTITION_INTEGER, { reroot: true });
  await catalog.registerIceberg('null_stats', NULL_STATS, { reroot: true });
  const diff = join(dir.path, 'warehouse', 'diff');
  await writeDifferentialTable(diff);
  await catalog.registerIceberg('diff', diff);
});

after(() => {
  engine.close();
  plain.close();
  dir.remove();
});

const DIFFERENTIAL = [
  'SELECT count(*), sum(amount), min(day), max(day), count(k), count(DISTINCT k) FROM diff',
  'SELECT k, count(*), sum(amount), avg(amount) FROM diff GROUP BY k ORDER BY k NULLS FIRST',
  'SELECT id, amount FROM diff WHERE day BETWEEN DATE \'2024-03-01\' AND DATE \'2024-04-01\' ORDER BY id',
  'SELECT * FROM diff ORDER BY amount DESC, id LIMIT 5',
  'SELECT count(*) FROM diff WHERE k IS NULL OR day IS NULL',
  'SELECT d.k, count(*) FROM diff d JOIN (SELECT DISTINCT k FROM diff WHERE id < 10) s ON d.k = s.k GROUP BY 1 ORDER BY 1',
];

for (const invoker of ['in-process', 'pool'] as const) {
  describe(`Iceberg tables through the cluster (${invoker} invoker)`, () => {
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
        maxFragments: 2,
      });
      cluster = await LocalCluster.open({ settings, catalog, invoker });
    });
    after(async () => {
      await cluster.close();
    });

    test('TPC-H Q6 over lineitem_iceberg is 1077536.9101', async () => {
      const r = await cluster.query(Q6);
      assert.equal(r.rows[0][0], '1077536.9101');
      assert.equal(r.plan.shape, 'scan-aggregate');
      assert.equal(r.plan.scans[0].filesKept, 1);
    });

    test('equality deletes are applied (the rows the reader tests work out from the raw files)', async () => {
      // scan-fixtures.test.ts derives these from the raw data and delete files: a row goes when a
      // delete file with a higher sequence number in its partition (or a global one) matches it.
      assert.deepEqual(await rows('SELECT id, name FROM mytable ORDER BY id'), [[4, 'd'], [5, 'e']]);
      assert.deepEqual(await rows('SELECT id, name FROM mytable_partitioned ORDER BY id', 3), [[1, 'a'], [4, 'd'], [5, 'e']]);
      assert.deepEqual(await rows('SELECT count(*) FROM mytable_partitioned', 3), [['3']]);
    });

    test('partition_integer prunes by partition_col', async () => {
      const r = await cluster.query('SELECT partition_col, user_id, event_type FROM partition_integer WHERE partition_col = 42');
      assert.deepEqual(r.rows, [[42, '12345', 'click']]);
      assert.equal(r.plan.scans[0].filesTotal, 2);
      assert.equal(r.plan.scans[0].filesKept, 1);
      const all = await cluster.query('SELECT partition_col, count(*) FROM partition_integer GROUP BY 1 ORDER BY 1');
      assert.deepEqual(all.rows, [[42, '1'], [1337, '1']]);
      assert.equal(all.plan.scans[0].filesKept, 2);
    });

    test('null_stats reads', async () => {
      assert.deepEqual(await rows('SELECT count(*), count(flag), min(id), max(id) FROM null_stats'), [['9', '4', 1, 9]]);
      assert.deepEqual(await rows('SELECT id FROM null_stats WHERE flag IS NULL ORDER BY id'), [[4], [5], [7], [8], [9]]);
    });

    test('time travel by VERSION and by TIMESTAMP reads the snapshot before the DELETE', async () => {
      assert.deepEqual(await rows(`SELECT count(*) FROM lineitem AT (VERSION => ${OLD_SNAPSHOT})`), [['60175']]);
      assert.deepEqual(await rows(`SELECT count(*) FROM lineitem AT (TIMESTAMP => TIMESTAMP '${BETWEEN_SNAPSHOTS}')`), [['60175']]);
      assert.deepEqual(await rows(`SELECT count(*) FROM lineitem AT (TIMESTAMP => TIMESTAMPTZ '${BETWEEN_SNAPSHOTS}+00')`), [['60175']]);
      assert.deepEqual(await rows('SELECT count(*) FROM lineitem'), [['51793']]);
      // Now and then in one query: exactly the rows the DELETE removed.
      const r = await cluster.query(`SELECT (SELECT count(*) FROM lineitem AT (VERSION => ${OLD_SNAPSHOT}) WHERE l_extendedprice < 10000), (SELECT count(*) FROM lineitem WHERE l_extendedprice < 10000)`);
      assert.deepEqual(r.rows, [[String(60175 - 51793), '0']]);
      await assert.rejects(cluster.query('SELECT count(*) FROM lineitem AT (VERSION => 42)'), /snapshot 42 does not exist/);
      await assert.rejects(cluster.query("SELECT count(*) FROM lineitem AT (TIMESTAMP => TIMESTAMP '2000-01-01')"), /no snapshot at or before 2000-01-01/);
    });

    test('differential: a small Iceberg table answers as plain DuckDB over the same files', async () => {
      const files = `read_parquet([${differentialFiles.map(sqlString).join(', ')}])`;
      for (const sql of DIFFERENTIAL) {
        const expected = await plain.query(sql.replace(/\bdiff\b/g, files));
        for (const fragments of [1, 2, 3]) {
          const actual = await cluster.query(sql, { fragments });
          assertSameResult({ columns: actual.columns, rows: actual.rows }, expected, { ordered: isOrdered(sql) }, `${sql} (${fragments} fragments)`);
        }
      }
    });
  });
}
