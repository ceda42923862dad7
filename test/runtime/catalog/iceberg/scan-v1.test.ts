// A format v1 table end to end: a single `schema` and `partition-spec` in the metadata, a
// snapshot listing its manifests inline (no manifest list), and a v1 manifest (no content,
// no sequence numbers, the deprecated block_size_in_bytes).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAvroContainer } from '../../../../runtime/catalog/iceberg/avro.ts';
import { encodeBound } from '../../../../runtime/catalog/iceberg/bounds.ts';
import { planTableScan } from '../../../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { tempDir } from './fixtures.ts';

const dir = tempDir('iceberg-v1');
after(() => dir.remove());

const kv = (name: string, keyId: number, valueId: number, value: string) => ({
  type: 'array', logicalType: 'map',
  items: { type: 'record', name, fields: [{ name: 'key', type: 'int', 'field-id': keyId }, { name: 'value', type: value, 'field-id': valueId }] },
});

before(() => {
  mkdirSync(join(dir.path, 'metadata'), { recursive: true });
  const schema = {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: 'long', 'field-id': 1 },
      {
        name: 'data_file', 'field-id': 2,
        type: {
          type: 'record', name: 'r2',
          fields: [
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            { name: 'partition', 'field-id': 102, type: { type: 'record', name: 'r102', fields: [{ name: 'category', type: ['null', 'string'], 'field-id': 1000 }] } },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            { name: 'block_size_in_bytes', type: 'long', 'field-id': 105 },
            { name: 'lower_bounds', type: ['null', kv('k126_v127', 126, 127, 'bytes')], default: null, 'field-id': 125 },
            { name: 'upper_bounds', type: ['null', kv('k129_v130', 129, 130, 'bytes')], default: null, 'field-id': 128 },
          ],
        },
      },
    ],
  };
  const file = (path: string, category: string, lo: bigint, hi: bigint) => ({
    status: 1,
    snapshot_id: 1n,
    data_file: {
      file_path: `s3://bucket/t/data/${path}`, file_format: 'PARQUET', partition: { category }, record_count: 10n, file_size_in_bytes: 100n, block_size_in_bytes: 67108864n,
      lower_bounds: [{ key: 1, value: Buffer.from(encodeBound({ kind: 'long' }, lo)) }],
      upper_bounds: [{ key: 1, value: Buffer.from(encodeBound({ kind: 'long' }, hi)) }],
    },
  });
  writeFileSync(join(dir.path, 'metadata', 'm1.avro'), writeAvroContainer(schema, [file('a.parquet', 'x', 1n, 10n), file('b.parquet', 'y', 11n, 20n)], {
    'partition-spec': JSON.stringify([{ name: 'category', transform: 'identity', 'source-id': 2, 'field-id': 1000 }]),
    schema: '{}',
  }));
  writeFileSync(join(dir.path, 'metadata', 'v1.metadata.json'), JSON.stringify({
    'format-version': 1,
    location: 's3://bucket/t',
    'last-updated-ms': 1600000000000,
    'last-column-id': 2,
    schema: { type: 'struct', fields: [{ id: 1, name: 'id', required: true, type: 'long' }, { id: 2, name: 'category', required: false, type: 'string' }] },
    'partition-spec': [{ name: 'category', transform: 'identity', 'source-id': 2 }],
    'current-snapshot-id': 1,
    snapshots: [{ 'snapshot-id': 1, 'timestamp-ms': 1600000000000, manifests: ['s3://bucket/t/metadata/m1.avro'] }],
  }));
});

describe('a format v1 table', () => {
  test('plans from inline manifests, with sequence number 0 and the v1 spec\'s field ids', async () => {
    const table = await openIcebergTable(dir.path, { reroot: true });
    const scan = await planTableScan(table);
    assert.equal(scan.snapshotId, '1');
    assert.deepEqual(scan.dataFiles.map((d) => [d.uri.split('/').pop(), d.sequenceNumber, d.partition.category]), [['a.parquet', 0, 'x'], ['b.parquet', 0, 'y']]);
    assert.equal(scan.dataFiles[0].uri, `file://${dir.path}/data/a.parquet`);
    const byCategory = await planTableScan(table, { filter: { op: '=', column: 'category', value: 'y' } });
    assert.deepEqual(byCategory.dataFiles.map((d) => d.path), ['s3://bucket/t/data/b.parquet']);
    const byId = await planTableScan(table, { filter: { op: '<', column: 'id', value: 5 } });
    assert.deepEqual(byId.dataFiles.map((d) => d.path), ['s3://bucket/t/data/a.parquet']);
    assert.deepEqual(byId.dataFiles[0].readSchema.find((f) => f.name === 'category')?.defaultValue, 'x');
  });
});
