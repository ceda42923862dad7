// A table built here, with real Parquet data and delete files, to exercise what the Spark
// fixtures do not: position deletes (and their same-commit rule), the strict sequence rule of
// equality deletes, a global equality delete from an unpartitioned spec, and schema evolution
// (a renamed column, an added column, int promoted to long) read by field id.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFixtureTable, type FixtureFile, type FixtureManifest } from '../../../../bench/iceberg/fixture-writer.ts';
import { buildIcebergReadSql } from '../../../../runtime/catalog/iceberg/read.ts';
import { planTableScan, type PlanScanOptions } from '../../../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable, type IcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { Engine, rowObjects, type JsonValue } from '../../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import { tempDir } from './fixtures.ts';

const POS_FILE_PATH = 2147483546;
const POS_POS = 2147483545;

const dir = tempDir('iceberg-read');
let engine: Engine;
let table: IcebergTable;
const snapshotIds = [101n, 102n, 103n, 104n, 9_007_199_254_740_993n];

async function copy(sql: string, file: string, fieldIds: string): Promise<FixtureFile> {
  const path = join(dir.path, 'data', file);
  await engine.exec(`COPY (${sql}) TO '${path}' (FORMAT parquet, FIELD_IDS ${fieldIds})`);
  return { path: `data/${file}`, recordCount: 0, sizeBytes: statSync(path).size };
}

before(async () => {
  mkdirSync(join(dir.path, 'data'));
  engine = await Engine.create({ threads: 2, allowedDirectories: [dir.path] });
  const uri = (file: string): string => `file://${join(dir.path, 'data', file)}`;
  const eu = { 1000: 'eu' };
  const us = { 1000: 'us' };
  const ids = (lo: number, hi: number) => ({ lower: { 1: lo }, upper: { 1: hi }, nullCounts: { 1: 0 }, valueCounts: { 1: 1 } });

  // Schema 0: id int, region string, amount int; identity(region).
  const d1 = { ...(await copy(`SELECT * FROM (VALUES (1, 'eu', 10), (2, 'eu', 20), (3, 'eu', 30), (4, 'eu', 40)) t(id, region, amount)`, 'd1.parquet', '{id: 1, region: 2, amount: 3}')), partition: eu, recordCount: 4, ...ids(1, 4) };
  // Written without the identity partition column, as writers may.
  const d2 = { ...(await copy(`SELECT * FROM (VALUES (5, 50), (6, 60), (7, 70), (8, 80)) t(id, amount)`, 'd2.parquet', '{id: 1, amount: 3}')), partition: us, recordCount: 4, ...ids(5, 8) };
  const d3 = { ...(await copy(`SELECT * FROM (VALUES (9, 'eu', 90), (10, 'eu', 100)) t(id, region, amount)`, 'd3.parquet', '{id: 1, region: 2, amount: 3}')), partition: eu, recordCount: 2, ...ids(9, 10) };
  // Committed with d3: deletes d1 row 1 (id 2), d3 row 0 (id 9, same commit: applies), and
  // names d2 row 0, which sits in another partition, so the spec's scope rule ignores it.
  const pos1 = {
    ...(await copy(`SELECT * FROM (VALUES ('${uri('d1.parquet')}', 1::BIGINT), ('${uri('d2.parquet')}', 0::BIGINT), ('${uri('d3.parquet')}', 0::BIGINT)) t(file_path, pos)`, 'pos1.parquet', `{file_path: ${POS_FILE_PATH}, pos: ${POS_POS}}`)),
    content: 1 as const, partition: eu, recordCount: 3,
  };
  // Re-inserts id 3 in the same commit as eq1, which deletes id 3: eq1 must spare it.
  const d4 = { ...(await copy(`SELECT * FROM (VALUES (3, 'eu', 31)) t(id, region, amount)`, 'd4.parquet', '{id: 1, region: 2, amount: 3}')), partition: eu, recordCount: 1, ...ids(3, 3) };
  const eq1 = { ...(await copy(`SELECT * FROM (VALUES (3), (10)) t(id)`, 'eq1.parquet', '{id: 1}')), content: 2 as const, partition: eu, recordCount: 2, equalityIds: [1], ...ids(3, 10) };
  // Unpartitioned spec 1: deletes ids 6 and 4 in every partition.
  const eq2 = { ...(await copy(`SELECT * FROM (VALUES (6), (4)) t(id)`, 'eq2.parquet', '{id: 1}')), content: 2 as const, recordCount: 2, equalityIds: [1], ...ids(4, 6) };
  // Schema 1: id long, amount renamed `value`, `note` added. Id 6 comes back after eq2.
  const d5 = { ...(await copy(`SELECT * FROM (VALUES (11::BIGINT, 'us', 110, 'new'), (6::BIGINT, 'us', 61, 'again')) t(id, region, value, note)`, 'd5.parquet', '{id: 1, region: 2, value: 3, note: 4}')), partition: us, recordCount: 2, ...ids(6, 11) };

  const [s1, s2, s3, s4, s5] = snapshotIds;
  const m1: FixtureManifest = { content: 'data', sequenceNumber: 1n, addedSnapshotId: s1, files: [d1, d2] };
  const m2: FixtureManifest = { content: 'data', sequenceNumber: 2n, addedSnapshotId: s2, files: [d3] };
  const md1: FixtureManifest = { content: 'deletes', sequenceNumber: 2n, addedSnapshotId: s2, files: [pos1] };
  const m3: FixtureManifest = { content: 'data', sequenceNumber: 3n, addedSnapshotId: s3, files: [d4] };
  const md2: FixtureManifest = { content: 'deletes', sequenceNumber: 3n, addedSnapshotId: s3, files: [eq1] };
  const md3: FixtureManifest = { content: 'deletes', specId: 1, sequenceNumber: 4n, addedSnapshotId: s4, files: [eq2] };
  const m5: FixtureManifest = { content: 'data', sequenceNumber: 5n, addedSnapshotId: s5, files: [d5] };
  const t0 = Date.UTC(2024, 0, 1);
  writeFixtureTable(dir.path, {
    schemas: [
      { schemaId: 0, fields: [{ id: 1, name: 'id', type: 'int' }, { id: 2, name: 'region', type: 'string' }, { id: 3, name: 'amount', type: 'int' }] },
      { schemaId: 1, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'region', type: 'string' }, { id: 3, name: 'value', type: 'int' }, { id: 4, name: 'note', type: 'string' }] },
    ],
    currentSchemaId: 1,
    specs: [
      { specId: 0, fields: [{ sourceId: 2, fieldId: 1000, name: 'region', transform: 'identity' }] },
      { specId: 1, fields: [] },
    ],
    snapshots: [
      { snapshotId: s1, sequenceNumber: 1n, timestampMs: t0, schemaId: 0, manifests: [m1] },
      { snapshotId: s2, parentSnapshotId: s1, sequenceNumber: 2n, timestampMs: t0 + 1000, schemaId: 0, manifests: [m1, m2, md1] },
      { snapshotId: s3, parentSnapshotId: s2, sequenceNumber: 3n, timestampMs: t0 + 2000, schemaId: 0, manifests: [m1, m2, m3, md1, md2] },
      { snapshotId: s4, parentSnapshotId: s3, sequenceNumber: 4n, timestampMs: t0 + 3000, schemaId: 0, manifests: [m1, m2, m3, md1, md2, md3] },
      { snapshotId: s5, parentSnapshotId: s4, sequenceNumber: 5n, timestampMs: t0 + 4000, schemaId: 1, manifests: [m1, m2, m3, m5, md1, md2, md3] },
    ],
  });
  table = await openIcebergTable(dir.path);
});

after(() => {
  engine.close();
  dir.remove();
});

async function read(options: PlanScanOptions = {}, columns?: string[]): Promise<Record<string, JsonValue>[]> {
  const scan = await planTableScan(table, options);
  return rowObjects(await engine.query(`${buildIcebergReadSql(scan, columns)} ORDER BY ALL`));
}

describe('reading a table with position and equality deletes and an evolved schema', () => {
  test('the current snapshot: deletes applied by the sequence-number rules, columns by field id', async () => {
    // d1: id 2 by position, id 3 by eq1 (3 > 1), id 4 by the global eq2 (4 > 1) -> 1.
    // d2: eq2 deletes 6; pos1's row for d2 is in another partition -> 5, 7, 8.
    // d3: id 9 by position (same commit, <=), id 10 by eq1 -> nothing.
    // d4: eq1 has the same sequence number (not strictly greater) -> 3 stays; eq2's ids miss it.
    // d5: written after eq2 -> 6 and 11 stay. Old files have no `note` (NULL); `amount` reads
    //     as `value` (field 3); d2's region comes from its partition.
    assert.deepEqual(await read(), [
      { id: '1', region: 'eu', value: 10, note: null },
      { id: '3', region: 'eu', value: 31, note: null },
      { id: '5', region: 'us', value: 50, note: null },
      { id: '6', region: 'us', value: 61, note: 'again' },
      { id: '7', region: 'us', value: 70, note: null },
      { id: '8', region: 'us', value: 80, note: null },
      { id: '11', region: 'us', value: 110, note: 'new' },
    ]);
  });

  test('each older snapshot, read with its own schema', async () => {
    const ids = async (snapshotId: bigint): Promise<JsonValue[]> => (await read({ snapshotId }, ['id'])).map((r) => r.id);
    const [s1, s2, s3, s4, s5] = snapshotIds;
    assert.deepEqual(await ids(s1), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(await ids(s2), [1, 3, 4, 5, 6, 7, 8, 10]);
    assert.deepEqual(await ids(s3), [1, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(await ids(s4), [1, 3, 5, 7, 8]);
    assert.deepEqual(await ids(s5), ['1', '3', '5', '6', '7', '8', '11']); // schema 1: id is BIGINT
    const old = await planTableScan(table, { snapshotId: s2 });
    assert.deepEqual(old.schema, [{ name: 'id', type: 'INTEGER' }, { name: 'region', type: 'VARCHAR' }, { name: 'amount', type: 'INTEGER' }]);
    assert.deepEqual(await read({ asOfTimestampMs: Date.UTC(2024, 0, 1) + 1500 }, ['amount']), [{ amount: 10 }, { amount: 30 }, { amount: 40 }, { amount: 50 }, { amount: 60 }, { amount: 70 }, { amount: 80 }, { amount: 100 }]);
  });

  test('which delete files each data file gets', async () => {
    const scan = await planTableScan(table);
    const of = (name: string) => scan.dataFiles.find((d) => d.path.endsWith(name))?.deletes.map((x) => `${x.content}@${x.sequenceNumber}`);
    assert.deepEqual(of('d1.parquet'), ['position@2', 'equality@3', 'equality@4']);
    assert.deepEqual(of('d2.parquet'), ['equality@4']); // pos1 and eq1 are eu deletes
    assert.deepEqual(of('d3.parquet'), ['position@2', 'equality@3']); // eq2's ids [4,6] miss [9,10]
    assert.deepEqual(of('d4.parquet'), []); // eq1 same sequence; eq2 bounds miss id 3
    assert.deepEqual(of('d5.parquet'), []);
    assert.equal(scan.counts.deleteFiles, 3);
    const d2 = scan.dataFiles.find((d) => d.path.endsWith('d2.parquet'));
    assert.deepEqual(d2?.readSchema.find((f) => f.name === 'region'), { fieldId: 2, name: 'region', type: 'VARCHAR', defaultValue: 'us' });
    assert.equal(d2?.sequenceNumber, 1);
    assert.equal(scan.snapshotId, '9007199254740993');
  });

  test('pruning by partition skips manifests from their summaries and keeps the global delete', async () => {
    const scan = await planTableScan(table, { filter: { op: '=', column: 'region', value: 'us' } });
    // m2, m3 (eu data) and md1, md2 (eu deletes) are skipped; md3 is unpartitioned.
    assert.equal(scan.counts.manifestsTotal, 7);
    assert.equal(scan.counts.manifestsSkipped, 4);
    assert.deepEqual(scan.dataFiles.map((d) => d.path.split('/').pop()), ['d2.parquet', 'd5.parquet']);
    assert.equal(scan.counts.filesTotal, 5);
    const rows = rowObjects(await engine.query(`SELECT id FROM (${buildIcebergReadSql(scan)}) WHERE region = 'us' ORDER BY id`));
    assert.deepEqual(rows.map((r) => r.id), ['5', '6', '7', '8', '11']);
  });

  test('pruning by column bounds', async () => {
    const scan = await planTableScan(table, { filter: { op: '=', column: 'id', value: 6 } });
    assert.deepEqual(scan.dataFiles.map((d) => d.path.split('/').pop()), ['d2.parquet', 'd5.parquet']);
    const rows = rowObjects(await engine.query(`SELECT id, note FROM (${buildIcebergReadSql(scan)}) WHERE id = 6`));
    assert.deepEqual(rows, [{ id: '6', note: 'again' }]);
  });

  test('selecting columns without the equality column still applies equality deletes', async () => {
    assert.deepEqual((await read({}, ['note'])).length, 7);
    assert.deepEqual((await read({}, ['region'])).map((r) => r.region), ['eu', 'eu', 'us', 'us', 'us', 'us', 'us']);
  });

  test('unknown columns and non-Parquet files are refused by name', async () => {
    const scan = await planTableScan(table);
    assert.throws(() => buildIcebergReadSql(scan, ['amount']), (err: unknown) => err instanceof PuffinError && err.code === 'binder_error' && /column 'amount' does not exist/.test(err.message));
    const orc = { ...scan, dataFiles: [{ ...scan.dataFiles[0], format: 'orc' }] };
    assert.throws(() => buildIcebergReadSql(orc), (err: unknown) => err instanceof PuffinError && /is in ORC format; only Parquet/.test(err.message));
    assert.throws(() => buildIcebergReadSql({ ...scan, dataFiles: [{ ...scan.dataFiles[0], uri: 's3://b/k.parquet' }] }), /pass a localPath function/);
  });

  test('an empty scan still has the table\'s columns and types', async () => {
    const scan = await planTableScan(table, { filter: { op: '>', column: 'id', value: 1000 } });
    assert.equal(scan.dataFiles.length, 0);
    const r = await engine.query(buildIcebergReadSql(scan));
    assert.deepEqual(r.columns, [{ name: 'id', type: 'BIGINT' }, { name: 'region', type: 'VARCHAR' }, { name: 'value', type: 'INTEGER' }, { name: 'note', type: 'VARCHAR' }]);
    assert.equal(r.rows.length, 0);
  });

  test('the localPath function maps URIs to fetched copies', async () => {
    const scan = await planTableScan(table, { snapshotId: snapshotIds[0] });
    const seen: string[] = [];
    const sql = buildIcebergReadSql(scan, ['id'], { localPath: (uri) => (seen.push(uri), new URL(uri).pathname) });
    assert.equal(seen.length, 2);
    assert.equal((await engine.query(`SELECT count(*) FROM (${sql})`)).rows[0][0], '8');
  });
});
