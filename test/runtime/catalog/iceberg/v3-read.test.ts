// Reads that used to return silent NULLs, and format v3:
//  - data files without Parquet field ids, read by the table's name mapping
//    (`schema.name-mapping.default`), and refused by name when they cannot be mapped;
//  - columns added with an `initial-default`, which older files lack;
//  - a v3 table: a deletion vector (Puffin) instead of a position delete file, nanosecond
//    timestamps, row-lineage columns in the data files, and the refusal of v3 writes.
// Expected rows are written out by hand from what each file holds.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  deletionVectorBlob,
  writeDeletionVectors,
  writeFixtureTable,
  type FixtureFile,
  type FixtureTable,
} from '../../../../bench/iceberg/fixture-writer.ts';
import { buildIcebergReadSql, type ReadSqlOptions } from '../../../../runtime/catalog/iceberg/read.ts';
import { describeParquetFiles } from '../../../../runtime/catalog/iceberg/parquet-schema.ts';
import { cardinality, decodeDeletionVector } from '../../../../runtime/catalog/iceberg/puffin.ts';
import { planTableScan, type IcebergScan } from '../../../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { assertWritableFormat } from '../../../../runtime/catalog/iceberg/metadata.ts';
import { parseSchema } from '../../../../runtime/catalog/iceberg/types.ts';
import { decodeIcebergFile, decodeIcebergInput } from '../../../../runtime/exec/wire-iceberg.ts';
import { inputViewSql } from '../../../../runtime/exec/views.ts';
import { Engine, rowObjects, type JsonValue } from '../../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import type { FragmentInput } from '../../../../runtime/planner/plan.ts';
import { tempDir } from './fixtures.ts';

const dir = tempDir('iceberg-v3');
let engine: Engine;

/** COPY a query to a Parquet file under `table`/data; field ids only when given. */
async function copy(table: string, sql: string, file: string, fieldIds?: string): Promise<FixtureFile> {
  mkdirSync(join(dir.path, table, 'data'), { recursive: true });
  const path = join(dir.path, table, 'data', file);
  await engine.exec(`COPY (${sql}) TO '${path}' (FORMAT parquet${fieldIds ? `, FIELD_IDS ${fieldIds}` : ''})`);
  return { path: `data/${file}`, recordCount: Number((await engine.query(`SELECT count(*) FROM '${path}'`)).rows[0][0]), sizeBytes: statSync(path).size };
}

function oneSnapshot(files: FixtureFile[], deletes: FixtureFile[] = [], extra: Partial<FixtureTable> = {}): Omit<FixtureTable, 'schemas'> {
  const manifests: FixtureTable['snapshots'][number]['manifests'] = [{ content: 'data', sequenceNumber: 1n, addedSnapshotId: 1n, files }];
  if (deletes.length) manifests.push({ content: 'deletes', sequenceNumber: 1n, addedSnapshotId: 1n, files: deletes });
  return { snapshots: [{ snapshotId: 1n, sequenceNumber: 1n, timestampMs: Date.UTC(2025, 0, 1), manifests }], ...extra };
}

async function rows(sql: string): Promise<Record<string, JsonValue>[]> {
  return rowObjects(await engine.query(`${sql} ORDER BY ALL`));
}

/** The footer facts of a scan's data files, as the worker looks them up. */
async function footers(scan: IcebergScan): Promise<ReadSqlOptions> {
  const conn = await engine.connect();
  try {
    const map = await describeParquetFiles(conn, scan.dataFiles.map((d) => ({ uri: d.uri, localPath: new URL(d.uri).pathname })));
    return { fileSchemas: (uri) => map.get(uri) };
  } finally {
    conn.closeSync();
  }
}

function rejects(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.match((err as Error).message, pattern);
    return true;
  };
}

before(async () => {
  engine = await Engine.create({ threads: 2, allowedDirectories: [dir.path] });
});

after(() => {
  engine.close();
  dir.remove();
});

describe('data files without field ids (name mapping)', () => {
  const schemas = [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'customer', type: 'string' }, { id: 3, name: 'amount', type: 'int' }, { id: 4, name: 'note', type: 'string' }] }];
  // `customer` was `name` in the imported files; `note` was added later (no file column).
  const mapping = JSON.stringify([
    { 'field-id': 1, names: ['id'] },
    { 'field-id': 2, names: ['customer', 'name'] },
    { 'field-id': 3, names: ['amount'] },
    { 'field-id': 4, names: [] },
  ]);

  async function build(table: string, properties: Record<string, string>): Promise<IcebergScan> {
    // Hive-style files: no field ids, old column name; one of them lacks `amount`.
    const a = await copy(table, `SELECT * FROM (VALUES (1::BIGINT, 'ann', 10), (2::BIGINT, 'bob', 20)) t(id, name, amount)`, 'a.parquet');
    const b = await copy(table, `SELECT * FROM (VALUES (3::BIGINT, 'cy')) t(id, name)`, 'b.parquet');
    // Written by an Iceberg writer after the migration: with field ids.
    const c = await copy(table, `SELECT * FROM (VALUES (4::BIGINT, 'dee', 40, 'new')) t(id, customer, amount, note)`, 'c.parquet', '{id: 1, customer: 2, amount: 3, note: 4}');
    writeFixtureTable(join(dir.path, table), { schemas, ...oneSnapshot([a, b, c], [], { properties }) });
    return planTableScan(await openIcebergTable(join(dir.path, table)));
  }

  test('files without ids are read by the mapping, files with ids by id', async () => {
    const scan = await build('mapped', { 'schema.name-mapping.default': mapping });
    assert.deepEqual(scan.fields.map((f) => f.names), [['id'], ['customer', 'name'], ['amount'], []]);
    assert.deepEqual(await rows(buildIcebergReadSql(scan, undefined, await footers(scan))), [
      { id: '1', customer: 'ann', amount: 10, note: null },
      { id: '2', customer: 'bob', amount: 20, note: null },
      { id: '3', customer: 'cy', amount: null, note: null },
      { id: '4', customer: 'dee', amount: 40, note: 'new' },
    ]);
    // Through a fragment's view, as the worker builds it (the wire form round-trips `names`).
    const input: FragmentInput = {
      view: 't',
      table: 'mapped',
      columns: scan.schema,
      files: scan.dataFiles.map((d) => ({ uri: d.uri, sizeBytes: d.sizeBytes, rowCount: d.rowCount, iceberg: decodeIcebergFile('f', JSON.parse(JSON.stringify({ ...d, deletes: d.deletes }))) })),
      iceberg: decodeIcebergInput('i', JSON.parse(JSON.stringify({ fields: scan.fields }))),
    };
    const conn = await engine.connect();
    try {
      const found = await describeParquetFiles(conn, input.files.map((f) => ({ uri: f.uri, localPath: new URL(f.uri).pathname })));
      await conn.run(inputViewSql(input, (uri) => new URL(uri).pathname, (uri) => found.get(uri)));
      const viewRows = (await conn.runAndReadAll('SELECT customer, amount FROM t ORDER BY ALL')).getRowObjectsJson();
      assert.deepEqual(viewRows, [{ customer: 'ann', amount: 10 }, { customer: 'bob', amount: 20 }, { customer: 'cy', amount: null }, { customer: 'dee', amount: 40 }]);
    } finally {
      conn.closeSync();
    }
  });

  test('a read that did not look at the footers refuses the files instead of reading NULLs', async () => {
    const scan = await build('mapped-unchecked', { 'schema.name-mapping.default': mapping });
    await assert.rejects(engine.query(buildIcebergReadSql(scan)), rejects(/data file .*\/a\.parquet has no Parquet field ids/));
  });

  test('without a name mapping, a file without ids is an error naming the file and a column', async () => {
    const scan = await build('unmapped', {});
    assert.throws(
      () => buildIcebergReadSql(scan, ['amount'], { fileSchemas: () => ({ hasFieldIds: false, columns: ['id', 'name', 'amount'] }) }),
      (err: unknown) => err instanceof PuffinError && /data file .*\/a\.parquet has no Parquet field ids and the table has no name mapping .*column 'amount'/.test(err.message),
    );
    assert.throws(() => buildIcebergReadSql(scan, undefined, { fileSchemas: () => ({ hasFieldIds: false, columns: ['x'] }) }), /no Parquet field ids/);
    await assert.rejects(engine.query(buildIcebergReadSql(scan, ['id'])), rejects(/a\.parquet has no Parquet field ids; the table has no name mapping/));
    // The footer facts as the worker finds them.
    const facts = await footers(scan);
    assert.deepEqual(facts.fileSchemas?.(scan.dataFiles[0].uri)?.columns, ['id', 'name', 'amount']);
    assert.equal(facts.fileSchemas?.(scan.dataFiles[0].uri)?.hasFieldIds, false);
    assert.deepEqual(facts.fileSchemas?.(scan.dataFiles[2].uri)?.fields?.map((f) => [f.name, f.fieldId]), [['id', 1], ['customer', 2], ['amount', 3], ['note', 4]]);
    assert.throws(() => buildIcebergReadSql(scan, undefined, facts), /a\.parquet has no Parquet field ids and the table has no name mapping/);
  });

  test('a mapping that names none of a file\'s columns is an error, not NULLs', async () => {
    const scan = await build('mismatched', { 'schema.name-mapping.default': JSON.stringify([{ 'field-id': 1, names: ['key'] }]) });
    assert.throws(() => buildIcebergReadSql(scan, undefined, { fileSchemas: () => ({ hasFieldIds: false, columns: ['id', 'name'] }) }), /none of its columns \(id, name\) is named by the table's name mapping/);
  });

  test('struct fields: renamed since the file was written (by id), mapped by name, and added with a default', async () => {
    const fields = [
      { id: 1, name: 'id', type: 'int' },
      {
        id: 2, name: 's', type: {
          type: 'struct', fields: [
            { id: 5, name: 'x', required: false, type: 'int' },
            { id: 6, name: 'b', required: false, type: 'long' },
            { id: 7, name: 'c', required: false, type: 'string', 'initial-default': 'dflt' },
          ],
        },
      },
    ];
    // With field ids: `x` was `a` when the file was written, `c` did not exist yet.
    const withIds = await copy('nested', `SELECT * FROM (VALUES (1, {'a': 10, 'b': 20}), (2, NULL)) t(id, s)`, 'n.parquet', '{id: 1, s: {__duckdb_field_id: 2, a: 5, b: 6}}');
    writeFixtureTable(join(dir.path, 'nested'), { schemas: [{ schemaId: 0, fields }], ...oneSnapshot([withIds]) });
    const byId = await planTableScan(await openIcebergTable(join(dir.path, 'nested')));
    const expected = [{ id: 1, s: { x: 10, b: '20', c: 'dflt' } }, { id: 2, s: null }];
    assert.deepEqual(await rows(buildIcebergReadSql(byId, undefined, await footers(byId))), expected);
    // A read without the footers refuses the file rather than read `x` as NULL.
    await assert.rejects(engine.query(buildIcebergReadSql(byId)), rejects(/n\.parquet names nested field id 5 a, which the table now names x: reading it needs the file footer/));
    // Without field ids, mapped by name at both levels.
    const hive = await copy('nested-mapped', `SELECT * FROM (VALUES (1, {'a': 10, 'b': 20}), (2, NULL)) t(id, s)`, 'n.parquet');
    const mapping = [{ 'field-id': 1, names: ['id'] }, { 'field-id': 2, names: ['s'], fields: [{ 'field-id': 5, names: ['a'] }, { 'field-id': 6, names: ['b'] }] }];
    writeFixtureTable(join(dir.path, 'nested-mapped'), { schemas: [{ schemaId: 0, fields }], ...oneSnapshot([hive], [], { properties: { 'schema.name-mapping.default': JSON.stringify(mapping) } }) });
    const byName = await planTableScan(await openIcebergTable(join(dir.path, 'nested-mapped')));
    assert.deepEqual(await rows(buildIcebergReadSql(byName, undefined, await footers(byName))), expected);
  });

  test('a malformed mapping names the property', async () => {
    writeFixtureTable(join(dir.path, 'badmap'), { schemas, ...oneSnapshot([], [], { properties: { 'schema.name-mapping.default': '[{"names": "id"}]' } }) });
    await assert.rejects(planTableScan(await openIcebergTable(join(dir.path, 'badmap'))), rejects(/schema\.name-mapping\.default\[0\]\.names must be a list of strings/));
  });
});

describe('initial-default', () => {
  test('rows of files written before a column was added read its initial-default', async () => {
    const old = await copy('defaults', `SELECT * FROM (VALUES (1), (2)) t(id)`, 'old.parquet', '{id: 1}');
    const recent = await copy(
      'defaults',
      `SELECT 3 AS id, 'set' AS s, 7 AS i, DATE '2020-01-01' AS d, TIMESTAMP '2020-01-01 00:00:00' AS ts, 1.50::DECIMAL(9,2) AS dec, false AS b, '\\x01'::BLOB AS bin, NULL::VARCHAR AS n`,
      'new.parquet',
      '{id: 1, s: 2, i: 3, d: 4, ts: 5, dec: 6, b: 7, bin: 8, n: 9}',
    );
    const fields = [
      { id: 1, name: 'id', type: 'int' },
      { id: 2, name: 's', type: 'string', 'initial-default': "it's" },
      { id: 3, name: 'i', type: 'long', 'initial-default': 42 },
      { id: 4, name: 'd', type: 'date', 'initial-default': '2017-11-16' },
      { id: 5, name: 'ts', type: 'timestamp', 'initial-default': '2017-11-16T22:31:08.123456' },
      { id: 6, name: 'dec', type: 'decimal(9,2)', 'initial-default': '14.20' },
      { id: 7, name: 'b', type: 'boolean', 'initial-default': true },
      { id: 8, name: 'bin', type: 'binary', 'initial-default': '00ff' },
      { id: 9, name: 'n', type: 'string' },
    ];
    writeFixtureTable(join(dir.path, 'defaults'), { schemas: [{ schemaId: 0, fields: [fields[0]] }, { schemaId: 1, fields }], ...oneSnapshot([old, recent]) });
    const scan = await planTableScan(await openIcebergTable(join(dir.path, 'defaults')));
    // Not a file statistic: only the identity-partition constant (defaultValue) is one.
    assert.equal(scan.dataFiles[0].readSchema.find((f) => f.name === 'i')?.defaultValue, null);
    const expectedOld = { s: "it's", i: '42', d: '2017-11-16', ts: '2017-11-16 22:31:08.123456', dec: '14.20', b: true, bin: '\\x00\\xFF', n: null };
    const sql = `SELECT id, s, i, d::VARCHAR AS d, ts::VARCHAR AS ts, dec::VARCHAR AS dec, b, bin::VARCHAR AS bin, n FROM (${buildIcebergReadSql(scan)})`;
    assert.deepEqual(await rows(sql), [
      { id: 1, ...expectedOld },
      { id: 2, ...expectedOld },
      { id: 3, s: 'set', i: '7', d: '2020-01-01', ts: '2020-01-01 00:00:00', dec: '1.50', b: false, bin: '\\x01', n: null },
    ]);
    // The same through files without ids read by a name mapping: the default fills the gap.
    const unnamed = await copy('defaults-mapped', `SELECT * FROM (VALUES (1), (2)) t(id)`, 'old.parquet');
    writeFixtureTable(join(dir.path, 'defaults-mapped'), {
      schemas: [{ schemaId: 0, fields: fields.slice(0, 3) }],
      ...oneSnapshot([unnamed], [], { properties: { 'schema.name-mapping.default': JSON.stringify([{ 'field-id': 1, names: ['id'] }, { 'field-id': 2, names: ['s'] }]) } }),
    });
    const mapped = await planTableScan(await openIcebergTable(join(dir.path, 'defaults-mapped')));
    assert.deepEqual(await rows(buildIcebergReadSql(mapped, undefined, await footers(mapped))), [{ id: 1, s: "it's", i: '42' }, { id: 2, s: "it's", i: '42' }]);
  });

  test('struct, list and map defaults, and a default of the wrong type', () => {
    const schema = parseSchema({
      fields: [
        { id: 1, name: 'p', required: false, type: { type: 'struct', fields: [{ id: 2, name: 'x', required: false, type: 'int', 'initial-default': 0 }, { id: 3, name: 'y', required: false, type: 'string' }] }, 'initial-default': { 3: "a'b" } },
        { id: 4, name: 'l', required: false, type: { type: 'list', 'element-id': 5, element: 'string', 'element-required': false }, 'initial-default': ['a,b', 'c'] },
        { id: 6, name: 'm', required: false, type: { type: 'map', 'key-id': 7, key: 'string', 'value-id': 8, value: 'int', 'value-required': false }, 'initial-default': { keys: ['k'], values: [1] } },
        { id: 9, name: 'bad', required: false, type: 'int', 'initial-default': 'x' },
      ],
    }, 'f');
    return (async () => {
      const { defaultValueText } = await import('../../../../runtime/catalog/iceberg/types.ts');
      const text = (i: number) => defaultValueText(schema.fields[i].type, schema.fields[i].initialDefault, { file: 'f', column: schema.fields[i].name });
      const cast = async (i: number, type: string) => (await engine.query(`SELECT to_json(CAST(${`'${(text(i) as string).replace(/'/g, "''")}'`} AS ${type}))::VARCHAR`)).rows[0][0];
      assert.equal(await cast(0, 'STRUCT(x INTEGER, y VARCHAR)'), '{"x":0,"y":"a\'b"}');
      assert.equal(await cast(1, 'VARCHAR[]'), '["a,b","c"]');
      assert.equal(await cast(2, 'MAP(VARCHAR, INTEGER)'), '{"k":1}');
      assert.throws(() => text(3), /column 'bad' has default "x", which is not a int value/);
    })();
  });
});

describe('format v3', () => {
  let scan: IcebergScan;
  const table = 'v3';
  const tableDir = join(dir.path, table);
  const uri = (file: string): string => `file://${join(tableDir, 'data', file)}`;
  // d1 rows 0..9999, a bitmap container of deletes (every odd position below 9000 -> 4500
  // positions) plus a run; d2: an array container (positions 0 and 2); d3: no deletes.
  const d1Deleted = [...Array.from({ length: 4500 }, (_, i) => BigInt(2 * i + 1)), ...Array.from({ length: 100 }, (_, i) => 9900n + BigInt(i))];

  before(async () => {
    const lineage = `NULL::BIGINT AS _row_id, NULL::BIGINT AS _last_updated_sequence_number`;
    const ids = '{id: 1, ts: 2, tz: 3, _row_id: 2147483540, _last_updated_sequence_number: 2147483539}';
    const d1 = await copy(table, `SELECT i AS id, make_timestamp_ns(1510871468123456789 + i) AS ts, make_timestamp_ns(1510871468123456789 + i)::TIMESTAMPTZ AS tz, ${lineage} FROM range(10000) t(i)`, 'd1.parquet', ids);
    const d2 = await copy(table, `SELECT 10000 + i AS id, make_timestamp_ns(i) AS ts, make_timestamp_ns(i)::TIMESTAMPTZ AS tz, ${lineage} FROM range(3) t(i)`, 'd2.parquet', ids);
    const d3 = await copy(table, `SELECT 20000 AS id, NULL::TIMESTAMP_NS AS ts, NULL::TIMESTAMPTZ AS tz, 5::BIGINT AS _row_id, 1::BIGINT AS _last_updated_sequence_number`, 'd3.parquet', ids);
    const puffin = join(tableDir, 'data', 'dv.puffin');
    const [v1, v2] = writeDeletionVectors(puffin, [
      { referencedDataFile: uri('d1.parquet'), positions: d1Deleted },
      { referencedDataFile: uri('d2.parquet'), positions: [0n, 2n], runs: true },
    ]);
    const dv = (v: typeof v1, ref: string): FixtureFile => ({
      path: 'data/dv.puffin', content: 1, format: 'PUFFIN', recordCount: v.cardinality, sizeBytes: statSync(puffin).size,
      referencedDataFile: uri(ref), contentOffset: v.offset, contentSizeInBytes: v.length,
    });
    // A v2 position delete file for d2, superseded by d2's deletion vector (which must hold
    // its deletes): row 1 must stay.
    const pos = await copy(table, `SELECT '${uri('d2.parquet')}' AS file_path, 1::BIGINT AS pos`, 'pos.parquet', '{file_path: 2147483546, pos: 2147483545}');
    writeFixtureTable(tableDir, {
      formatVersion: 3,
      schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'ts', type: 'timestamp_ns' }, { id: 3, name: 'tz', type: 'timestamptz_ns' }] }],
      ...oneSnapshot(
        [{ ...d1, firstRowId: 0n, lower: { 1: 0n }, upper: { 1: 9999n } }, { ...d2, lower: { 2: 0n }, upper: { 2: 2n } }, d3],
        [{ ...pos, content: 1, recordCount: 1 }, dv(v1, 'd1.parquet'), dv(v2, 'd2.parquet')],
      ),
    });
    scan = await planTableScan(await openIcebergTable(tableDir));
  });

  test('the table opens as v3, with nanosecond timestamp columns', async () => {
    const t = await openIcebergTable(tableDir);
    assert.equal(t.metadata.formatVersion, 3);
    assert.deepEqual(scan.schema, [{ name: 'id', type: 'BIGINT' }, { name: 'ts', type: 'TIMESTAMP_NS' }, { name: 'tz', type: 'TIMESTAMP WITH TIME ZONE' }]);
    const d2 = scan.dataFiles.find((d) => d.path.endsWith('d2.parquet'));
    // The v2 position delete file is not applied where a deletion vector is.
    assert.deepEqual(d2?.deletes.map((d) => d.format), ['puffin']);
    assert.equal(d2?.stats.ts?.max, '1970-01-01 00:00:00.000000002');
  });

  test('deletion vectors delete their positions; everything else reads back', async () => {
    const sql = buildIcebergReadSql(scan);
    const summary = rowObjects(await engine.query(`SELECT count(*) AS n, sum(id) AS s, min(ts)::VARCHAR AS lo, max(ts)::VARCHAR AS hi FROM (${sql}) WHERE id < 10000`));
    const kept = Array.from({ length: 10000 }, (_, i) => i).filter((i) => !d1Deleted.includes(BigInt(i)));
    assert.deepEqual(summary, [{ n: String(kept.length), s: String(kept.reduce((a, b) => a + b, 0)), lo: '2017-11-16 22:31:08.123456789', hi: '2017-11-16 22:31:08.123466688' }]); // id 9899
    assert.deepEqual(await rows(`SELECT id, ts::VARCHAR AS ts, tz::VARCHAR AS tz FROM (${sql}) WHERE id >= 10000`), [
      { id: '10001', ts: '1970-01-01 00:00:00.000000001', tz: '1970-01-01 00:00:00+00' },
      { id: '20000', ts: null, tz: null },
    ]);
  });

  test('nanosecond partition transforms, and an identity-partition value of a file without the column', async () => {
    const { applyTransform, parseTransform } = await import('../../../../runtime/catalog/iceberg/transforms.ts');
    const ns = 1510871468123456789n; // 2017-11-16T22:31:08.123456789
    assert.equal(applyTransform(parseTransform('day'), { kind: 'timestamp_ns' }, ns), 17486);
    assert.equal(applyTransform(parseTransform('hour'), { kind: 'timestamptz_ns' }, ns), 419686);
    assert.equal(applyTransform(parseTransform('bucket[16]'), { kind: 'timestamp_ns' }, 1510871468000001001n), applyTransform(parseTransform('bucket[16]'), { kind: 'timestamp' }, 1510871468000001n));
    const root = join(dir.path, 'v3-partitioned');
    const f = await copy('v3-partitioned', `SELECT 1::BIGINT AS id`, 'p.parquet', '{id: 1}');
    writeFixtureTable(root, {
      formatVersion: 3,
      schemas: [{ schemaId: 0, fields: [{ id: 1, name: 'id', type: 'long' }, { id: 2, name: 'ts', type: 'timestamp_ns' }] }],
      specs: [{ specId: 0, fields: [{ sourceId: 2, fieldId: 1000, name: 'ts', transform: 'identity' }, { sourceId: 2, fieldId: 1001, name: 'ts_day', transform: 'day' }] }],
      ...oneSnapshot([{ ...f, partition: { 1000: ns, 1001: 17486 } }]),
    });
    const scan = await planTableScan(await openIcebergTable(root), { filter: { op: '=', column: 'id', value: 1 } });
    assert.deepEqual(await rows(`SELECT id, ts::VARCHAR AS ts FROM (${buildIcebergReadSql(scan)})`), [{ id: '1', ts: '2017-11-16 22:31:08.123456789' }]);
  });

  test('a deletion vector that does not decode, or does not match the manifest, names itself', () => {
    const blob = deletionVectorBlob([1n, 2n]);
    blob[blob.length - 1] ^= 1;
    assert.throws(() => decodeDeletionVector(blob, 'dv'), /dv: CRC-32 mismatch/);
    const d1 = scan.dataFiles.find((d) => d.path.endsWith('d1.parquet'));
    const broken = { ...scan, dataFiles: [{ ...d1!, deletes: d1!.deletes.map((x) => ({ ...x, rowCount: 3 })) }] };
    assert.throws(() => buildIcebergReadSql(broken), /deletion vector of .*d1\.parquet in .*dv\.puffin: the vector holds 4600 positions, but the manifest records 3/);
  });

  test('roaring containers of every kind decode (array, bitmap, run; 64-bit keys)', () => {
    const positions = [0n, 5n, 65536n + 7n, ...Array.from({ length: 5000 }, (_, i) => 131072n + BigInt(i * 3)), (1n << 32n) + 1n, (5n << 32n) + 65535n];
    for (const runs of [false, true]) {
      const ranges = decodeDeletionVector(deletionVectorBlob(positions, { runs }));
      assert.equal(cardinality(ranges), BigInt(positions.length));
      const flat = ranges.flatMap(([s, e]) => Array.from({ length: Number(e - s) }, (_, i) => s + BigInt(i)));
      assert.deepEqual(flat, positions);
    }
    assert.deepEqual(decodeDeletionVector(deletionVectorBlob([])), []);
  });

  test('unknown v3 types are refused naming the column', async () => {
    for (const type of ['variant', 'unknown', 'geometry(OGC:CRS84)', 'geography']) {
      assert.throws(
        () => parseSchema({ fields: [{ id: 1, name: 'shape', required: false, type }] }, 'm.json'),
        (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && err.message.includes(`column 'shape' has the Iceberg v3 type '${type}'`),
      );
    }
  });

  test('writes refuse a format past v3 (a v3 table stamped format 4), even where v3 is written', async () => {
    const t = await openIcebergTable(tableDir);
    assert.doesNotThrow(() => assertWritableFormat(t.metadata, 'v3', { v3: true }));
    const v4 = { ...t.metadata, formatVersion: 4 } as unknown as Parameters<typeof assertWritableFormat>[0];
    for (const options of [{}, { v3: true }]) {
      assert.throws(
        () => assertWritableFormat(v4, 'v3', options),
        (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /table v3 is Iceberg format v4: PuffinDB writes format v1 to v3 only/.test(err.message),
      );
    }
  });
});
