// Name mapping, initial-default and format v3 end to end: tables registered in the warehouse
// catalog and queried with SQL through the local cluster, so the worker's footer check, the
// fragment's wire form and the view are all on the path (v3-read.test.ts covers the reader).

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeDeletionVectors, writeFixtureTable, type FixtureFile } from '../../bench/iceberg/fixture-writer.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';

const dir = tempDir('iceberg-v3-cluster');
let engine: Engine;
let catalog: WarehouseCatalog;

async function copy(root: string, sql: string, file: string, fieldIds?: string): Promise<FixtureFile> {
  mkdirSync(join(root, 'data'), { recursive: true });
  const path = join(root, 'data', file);
  const r = await engine.query(`COPY (${sql}) TO ${sqlString(path)} (FORMAT parquet${fieldIds ? `, FIELD_IDS ${fieldIds}` : ''})`);
  return { path: `data/${file}`, recordCount: Number(r.rows[0][0]), sizeBytes: statSync(path).size };
}

const snapshot = (files: FixtureFile[], deletes: FixtureFile[] = []) => {
  const manifests: { content: 'data' | 'deletes'; sequenceNumber: bigint; addedSnapshotId: bigint; files: FixtureFile[] }[] = [{ content: 'data', sequenceNumber: 1n, addedSnapshotId: 1n, files }];
  if (deletes.length) manifests.push({ content: 'deletes', sequenceNumber: 1n, addedSnapshotId: 1n, files: deletes });
  return [{ snapshotId: 1n, sequenceNumber: 1n, timestampMs: Date.UTC(2025, 0, 1), manifests }];
};

before(async () => {
  engine = await Engine.create({ threads: 2 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);

  // A migrated table: Hive files without field ids (old name `name`), one Iceberg-written file.
  for (const name of ['migrated', 'migrated_del']) {
    const migrated = join(dir.path, 'warehouse', name);
    const a = await copy(migrated, `SELECT i::BIGINT AS id, 'n' || i AS name FROM range(0, 50) t(i)`, 'a.parquet');
    const b = await copy(migrated, `SELECT i::BIGINT AS id, 'c' || i AS customer, 'x' AS note FROM range(50, 60) t(i)`, 'b.parquet', '{id: 1, customer: 2, note: 3}');
    writeFixtureTable(migrated, {
      schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'customer', type: 'string' }, { id: 3, name: 'note', type: 'string', 'initial-default': 'none' }] }],
      properties: { 'schema.name-mapping.default': JSON.stringify([{ 'field-id': 1, names: ['id'] }, { 'field-id': 2, names: ['customer', 'name'] }, { 'field-id': 3, names: ['note'] }]) },
      snapshots: snapshot([a, b]),
    });
    await catalog.registerIceberg(name, migrated);
  }

  // A struct field renamed (a -> x) after the file was written, read by field id.
  const nested = join(dir.path, 'warehouse', 'nested');
  const n = await copy(nested, `SELECT i AS id, {'a': i * 10, 'b': 'v' || i} AS s FROM range(0, 20) t(i)`, 'n.parquet', '{id: 1, s: {__duckdb_field_id: 2, a: 3, b: 4}}');
  writeFixtureTable(nested, {
    schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 's', type: { type: 'struct', fields: [{ id: 3, name: 'x', required: false, type: 'long' }, { id: 4, name: 'b', required: false, type: 'string' }] } }] }],
    snapshots: snapshot([n]),
  });
  await catalog.registerIceberg('nested', nested);

  // The same Hive file without a mapping.
  const unmapped = join(dir.path, 'warehouse', 'unmapped');
  const u = await copy(unmapped, `SELECT i::BIGINT AS id FROM range(0, 5) t(i)`, 'u.parquet');
  writeFixtureTable(unmapped, { schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }] }], snapshots: snapshot([u]) });
  await catalog.registerIceberg('unmapped', unmapped);

  // A v3 table: 1000 rows, a deletion vector removing the multiples of 3. One copy each for
  // the writes of each invoker's run.
  for (const name of ['v3', 'v3w_in_process', 'v3w_pool']) {
  const v3 = join(dir.path, 'warehouse', name);
  const d = await copy(v3, `SELECT i::BIGINT AS id, make_timestamp_ns(1700000000000000000 + i) AS ts FROM range(0, 1000) t(i)`, 'd.parquet', '{id: 1, ts: 2}');
  const puffin = join(v3, 'data', 'dv.puffin');
  const dataUri = `file://${join(v3, 'data', 'd.parquet')}`;
  const [dv] = writeDeletionVectors(puffin, [{ referencedDataFile: dataUri, positions: Array.from({ length: 334 }, (_, i) => BigInt(3 * i)) }]);
  writeFixtureTable(v3, {
    formatVersion: 3,
    schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'ts', type: 'timestamp_ns' }, { id: 3, name: 'flag', type: 'boolean', 'initial-default': true }] }],
    snapshots: snapshot([d], [{ path: 'data/dv.puffin', content: 1, format: 'PUFFIN', recordCount: dv.cardinality, sizeBytes: statSync(puffin).size, referencedDataFile: dataUri, contentOffset: dv.offset, contentSizeInBytes: dv.length }]),
  });
  await catalog.registerIceberg(name, v3);
  }
});

after(() => {
  engine.close();
  dir.remove();
});

for (const invoker of ['in-process', 'pool'] as const) {
  describe(`name mapping, defaults and v3 through the cluster (${invoker} invoker)`, () => {
    let cluster: LocalCluster;

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

    test('a migrated table reads its Hive files by name mapping, with initial-default for the added column', async () => {
      const r = await cluster.query(`SELECT count(*), count(customer), min(customer), max(customer), count(*) FILTER (WHERE note = 'none'), count(*) FILTER (WHERE note = 'x') FROM migrated`, { fragments: 2 });
      assert.deepEqual(r.rows, [['60', '60', 'c50', 'n9', '50', '10']]);
    });

    test('a struct field renamed since the file was written reads by field id', async () => {
      const r = await cluster.query(`SELECT count(s.x), sum(s.x), max(s.b) FROM nested`, { fragments: 2 });
      assert.deepEqual(r.rows, [['20', '1900', 'v9']]);
    });

    test('a file without field ids and no name mapping is an error naming it', async () => {
      await assert.rejects(cluster.query('SELECT sum(id) FROM unmapped'), /u\.parquet has no Parquet field ids and the table has no name mapping/);
    });

    test('a write that reads the migrated table (INSERT ... SELECT on the coordinator) maps its Hive files too', async () => {
      const target = `copied_${invoker.replace('-', '_')}`;
      await cluster.query(`CREATE TABLE ${target} AS SELECT id, customer, note FROM migrated WHERE id % 2 = 0 LIMIT 100`);
      const r = await cluster.query(`SELECT count(*), count(customer), count(*) FILTER (WHERE note = 'none') FROM ${target}`);
      assert.deepEqual(r.rows, [['30', '30', '25']]);
    });

    test('DELETE and UPDATE rewrite the migrated table\'s Hive files through the mapping', async () => {
      const [gone, changed] = invoker === 'in-process' ? [1, 2] : [51, 52];
      await cluster.query(`DELETE FROM migrated_del WHERE id = ${gone}`);
      await cluster.query(`UPDATE migrated_del SET customer = 'changed' WHERE id = ${changed}`);
      const r = await cluster.query(`SELECT count(*), count(customer), count(*) FILTER (WHERE customer = 'changed'), count(*) FILTER (WHERE id IN (1, 51)) FROM migrated_del`);
      assert.deepEqual(r.rows, invoker === 'in-process' ? [['59', '59', '1', '1']] : [['58', '58', '2', '0']]);
    });

    test('a v3 table: the deletion vector applies, nanosecond timestamps and defaults read', async () => {
      const r = await cluster.query(`SELECT count(*), sum(id), min(ts)::VARCHAR, bool_and(flag) FROM v3`, { fragments: 2 });
      const kept = Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 !== 0);
      assert.deepEqual(r.rows, [[String(kept.length), String(kept.reduce((x, y) => x + y, 0)), '2023-11-14 22:13:20.000000001', true]]);
    });

    test('writes to the v3 table another writer made: INSERT, merge-on-read DELETE and UPDATE (deletion vectors) answer right, and so does merge-on-read MERGE (deletion vectors, no position delete file)', async () => {
      const t = `v3w_${invoker.replace('-', '_')}`;
      await cluster.query(`ALTER TABLE ${t} SET ('write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read', 'write.merge.mode' = 'merge-on-read')`);
      await cluster.query(`INSERT INTO ${t} SELECT 5000, NULL, false`);
      // id 1 is kept by the existing vector, id 3 is deleted by it already.
      await cluster.query(`DELETE FROM ${t} WHERE id IN (1, 3)`);
      await cluster.query(`UPDATE ${t} SET flag = false WHERE id = 2`);
      const kept = Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 !== 0 && i !== 1);
      const r = await cluster.query(`SELECT count(*), sum(id), count(*) FILTER (WHERE NOT flag), count(*) FILTER (WHERE id = 2) FROM ${t}`, { fragments: 2 });
      assert.deepEqual(r.rows, [[String(kept.length + 1), String(kept.reduce((x, y) => x + y, 0) + 5000), '2', '1']]);
      const files = readdirSync(join(dir.path, 'warehouse', t, 'data')).sort();
      // MERGE: 4 deleted, 5 updated, 6 (deleted by the writer's vector) and 7000 inserted.
      await cluster.query(`MERGE INTO ${t} USING (SELECT * FROM (VALUES (4), (5), (6), (7000)) v(id)) s ON ${t}.id = s.id WHEN MATCHED AND s.id = 4 THEN DELETE WHEN MATCHED THEN UPDATE SET flag = false WHEN NOT MATCHED THEN INSERT VALUES (s.id, NULL, true)`);
      const merged = kept.filter((i) => i !== 4).concat([5000, 6, 7000]);
      const m = await cluster.query(`SELECT count(*), sum(id), count(*) FILTER (WHERE NOT flag), count(*) FILTER (WHERE id IN (4, 5, 6)) FROM ${t}`, { fragments: 2 });
      assert.deepEqual(m.rows, [[String(merged.length), String(merged.reduce((x, y) => x + y, 0)), '3', '2']]);
      const added = readdirSync(join(dir.path, 'warehouse', t, 'data')).filter((f) => !files.includes(f));
      assert.equal(added.filter((f) => f.endsWith('.puffin')).length, 1, `one deletion vector file: ${added.join(', ')}`);
      assert.deepEqual(added.filter((f) => f.endsWith('-deletes.parquet')), [], 'no position delete file');
      // The untouched copy still reads as before.
      assert.deepEqual((await cluster.query('SELECT count(*) FROM v3')).rows, [['666']]);
    });
  });
}
