import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAvroContainer, writeAvroContainer } from '../../../../runtime/catalog/iceberg/avro.ts';
import { boundToSql } from '../../../../runtime/catalog/iceberg/bounds.ts';
import { ManifestCache } from '../../../../runtime/catalog/iceberg/manifest-cache.ts';
import { localFileIO, toUri } from '../../../../runtime/catalog/iceberg/io.ts';
import {
  ADDED,
  DELETED,
  EXISTING,
  dataSequenceNumber,
  decodeManifest,
  decodeManifestList,
  fileSequenceNumber,
  lookup,
  type ManifestEntry,
  type ManifestFile,
} from '../../../../runtime/catalog/iceberg/manifest.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import { LINEITEM, MYTABLE, MYTABLE_PARTITIONED, rawRecords, tempDir } from './fixtures.ts';

const scratch = tempDir('iceberg-manifest');
after(() => scratch.remove());

const read = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

describe('manifest lists', () => {
  test('fields are found by id whatever the writer named them (Iceberg 1.0 and 1.8 files)', () => {
    // lineitem (Iceberg 1.0) names field 504 `added_data_files_count`; mytable (1.8) `added_files_count`.
    const old = decodeManifestList(read(join(LINEITEM, 'metadata/snap-2354745328521181395-1-179b4fb1-0366-4f7d-ad35-99ee8da0abf5.avro')), 'lineitem list');
    assert.deepEqual(old.map((m) => [m.content, m.sequenceNumber, m.addedSnapshotId, m.addedFilesCount, m.deletedFilesCount, m.deletedRowsCount]), [
      ['data', 2n, 2354745328521181395n, 1, 0, 0n],
      ['data', 2n, 2354745328521181395n, 0, 1, 60175n],
    ]);
    const recent = decodeManifestList(read(join(MYTABLE, 'metadata/snap-1916084761853986166-1-61648895-78fc-44d6-bf55-298a7614c4f8.avro')), 'mytable list');
    assert.deepEqual(recent.map((m) => [m.content, m.sequenceNumber, m.addedFilesCount]), [
      ['data', 5n, 1], ['data', 1n, 1], ['deletes', 6n, 1], ['deletes', 4n, 1], ['deletes', 3n, 1], ['deletes', 2n, 1],
    ]);
  });

  test('partition summaries decode', () => {
    const list = decodeManifestList(read(join(MYTABLE_PARTITIONED, 'metadata/snap-3138177759849079112-1-ff275eec-b23b-435f-a6a5-1ab7ce1c8749.avro')), 'l');
    const s = list[1].partitions?.[0];
    assert.equal(s?.containsNull, false);
    assert.equal(s?.containsNaN, false);
    assert.equal(boundToSql({ kind: 'string' }, s?.lowerBound as Uint8Array), 'a');
    assert.equal(boundToSql({ kind: 'string' }, s?.upperBound as Uint8Array), 'd');
  });
});

describe('manifests', () => {
  test('agree with an independent avsc decode of the same file, field by field', async () => {
    const path = join(LINEITEM, 'metadata/179b4fb1-0366-4f7d-ad35-99ee8da0abf5-m1.avro');
    const manifest = decodeManifest(read(path), path);
    const raw = await rawRecords(path);
    assert.equal(manifest.entries.length, raw.records.length);
    // The writer schema carries Iceberg field ids: data_file is id 2, file_path 100.
    const dataFileField = (raw.schema as { fields: { name: string; 'field-id': number; type: { fields: { name: string; 'field-id': number }[] } }[] }).fields.find((f) => f['field-id'] === 2);
    assert.equal(dataFileField?.type.fields.find((f) => f['field-id'] === 100)?.name, 'file_path');
    for (let i = 0; i < raw.records.length; i++) {
      const r = raw.records[i] as { status: number; snapshot_id: bigint; data_file: Record<string, unknown> };
      const e = manifest.entries[i];
      assert.equal(e.status, r.status);
      assert.equal(e.snapshotId, r.snapshot_id);
      assert.equal(e.file.filePath, r.data_file.file_path);
      assert.equal(e.file.recordCount, Number(r.data_file.record_count));
      assert.equal(e.file.fileSizeInBytes, Number(r.data_file.file_size_in_bytes));
      for (const kv of r.data_file.lower_bounds as { key: number; value: Buffer }[]) {
        assert.deepEqual(Buffer.from(lookup(e.file.lowerBounds, kv.key) as Uint8Array), kv.value);
      }
      for (const kv of r.data_file.null_value_counts as { key: number; value: bigint }[]) {
        assert.equal(lookup(e.file.nullValueCounts, kv.key), Number(kv.value));
      }
      for (const kv of r.data_file.column_sizes as { key: number; value: bigint }[]) {
        assert.equal(lookup(e.file.columnSizes, kv.key), Number(kv.value));
      }
      assert.deepEqual(e.file.valueCounts?.entries(), (r.data_file.value_counts as { key: number; value: bigint }[]).map((kv) => [kv.key, Number(kv.value)]));
      assert.equal(e.file.sortOrderId, r.data_file.sort_order_id);
      assert.equal(e.file.content, 'data');
      assert.equal(e.file.fileFormat, r.data_file.file_format);
      assert.deepEqual(e.file.lowerBounds?.entries().map(([k]) => k), (r.data_file.lower_bounds as { key: number }[]).map((kv) => kv.key));
    }
    assert.equal(manifest.content, 'data');
    assert.equal(manifest.partitionSpecId, 0);
  });

  test('equality delete manifests: content, equality ids, partition tuple', () => {
    const path = join(MYTABLE_PARTITIONED, 'metadata/36f9b154-c2d2-411f-9f29-9d23d46d688b-m0.avro');
    const m = decodeManifest(read(path), path);
    assert.equal(m.content, 'deletes');
    assert.deepEqual(m.partitionFieldIds, [1000]);
    const f = m.entries[0].file;
    assert.equal(f.content, 'equality');
    assert.deepEqual(f.equalityIds, [2, 1]);
    assert.deepEqual(f.partition, ['c']);
    assert.equal(m.entries[0].sequenceNumber, null);
  });

  test('sequence number inheritance: null inherits for ADDED only', () => {
    const mf = { sequenceNumber: 7n, addedSnapshotId: 1n } as ManifestFile;
    const entry = (status: 0 | 1 | 2, seq: bigint | null): ManifestEntry => ({ status, snapshotId: null, sequenceNumber: seq, fileSequenceNumber: seq, file: {} as ManifestEntry['file'] });
    assert.equal(dataSequenceNumber(entry(ADDED, null), mf), 7n);
    assert.equal(fileSequenceNumber(entry(ADDED, null), mf), 7n);
    assert.equal(dataSequenceNumber(entry(ADDED, 3n), mf), 3n); // written explicitly: an older data sequence number
    assert.equal(dataSequenceNumber(entry(EXISTING, 3n), mf), 3n);
    assert.equal(dataSequenceNumber(entry(EXISTING, null), mf), 0n); // v1 manifests: no column, default 0
    assert.equal(dataSequenceNumber(entry(DELETED, 5n), mf), 5n);
  });

  test('format v1 manifests (no content, no sequence numbers) read with the spec defaults', () => {
    const schema = {
      type: 'record',
      name: 'manifest_entry',
      fields: [
        { name: 'status', type: 'int', 'field-id': 0 },
        { name: 'snapshot_id', type: 'long', 'field-id': 1 },
        {
          name: 'data_file',
          'field-id': 2,
          type: {
            type: 'record',
            name: 'r2',
            fields: [
              { name: 'file_path', type: 'string', 'field-id': 100 },
              { name: 'file_format', type: 'string', 'field-id': 101 },
              { name: 'partition', 'field-id': 102, type: { type: 'record', name: 'r102', fields: [{ name: 'd_day', type: ['null', 'int'], 'field-id': 1000 }] } },
              { name: 'record_count', type: 'long', 'field-id': 103 },
              { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
              { name: 'block_size_in_bytes', type: 'long', 'field-id': 105 },
            ],
          },
        },
      ],
    };
    const bytes = writeAvroContainer(schema, [
      { status: 1, snapshot_id: 9007199254740993n, data_file: { file_path: 's3://b/t/data/a.parquet', file_format: 'PARQUET', partition: { d_day: 19000 }, record_count: 10n, file_size_in_bytes: 100n, block_size_in_bytes: 67108864n } },
    ], { 'partition-spec': JSON.stringify([{ name: 'd_day', transform: 'day', 'source-id': 2, 'field-id': 1000 }]), schema: '{}' });
    const m = decodeManifest(bytes, 'v1-manifest.avro');
    const e = m.entries[0];
    assert.equal(e.file.content, 'data');
    assert.equal(e.snapshotId, 9007199254740993n); // 2^53 + 1: exact
    assert.equal(e.sequenceNumber, null);
    assert.equal(dataSequenceNumber(e, { sequenceNumber: 0n } as ManifestFile), 0n);
    assert.deepEqual(e.file.partition, [19000]);
    assert.equal(m.formatVersion, 1);
  });

  test('63-bit longs survive a write/read round trip exactly', () => {
    const schema = { type: 'record', name: 'r', fields: [{ name: 'id', type: 'long' }, { name: 'maybe', type: ['null', 'long'] }] };
    const values = [9223372036854775807n, -9223372036854775808n, 4611686018427387905n, 0n, -1n, 2n ** 53n + 1n];
    const bytes = writeAvroContainer(schema, values.map((id) => ({ id, maybe: id / 3n })), {}, { blockSize: 2 });
    const back = readAvroContainer(bytes, 'longs').records as { id: bigint; maybe: bigint }[];
    assert.deepEqual(back.map((r) => r.id), values);
    assert.deepEqual(back.map((r) => r.maybe), values.map((v) => v / 3n));
    assert.throws(() => writeAvroContainer(schema, [{ id: 2n ** 63n, maybe: null }]), /not a 64-bit integer/);
  });

  test('a manifest that does not decode is an error naming the file', () => {
    const path = join(LINEITEM, 'metadata/179b4fb1-0366-4f7d-ad35-99ee8da0abf5-m1.avro');
    const good = read(path);
    const named = (pattern: RegExp) => (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && pattern.test(err.message);
    assert.throws(() => decodeManifest(good.subarray(0, good.length - 40), 'truncated.avro'), named(/^truncated\.avro is not a readable Avro file/));
    assert.throws(() => decodeManifest(new TextEncoder().encode('{"not": "avro"}'), 'json.avro'), named(/^json\.avro is not a readable Avro file: missing the Avro magic bytes/));
    const flipped = good.slice();
    flipped[flipped.length - 100] ^= 0xff; // inside the deflated block
    assert.throws(() => decodeManifest(flipped, 'flipped.avro'), named(/^flipped\.avro is not a readable Avro file/));
    assert.throws(() => decodeManifestList(good, 'a-manifest-not-a-list.avro'), named(/^a-manifest-not-a-list\.avro is not a manifest list: no manifest_path field \(id 500\)/));
  });

  test('the cache reads a file once, reports a missing file as not_found naming it, and stays bounded', async () => {
    const cache = new ManifestCache(3);
    const io = localFileIO();
    const path = toUri(join(MYTABLE, 'metadata/61648895-78fc-44d6-bf55-298a7614c4f8-m0.avro'));
    const [a, b] = await Promise.all([cache.manifest(path, io), cache.manifest(path, io)]);
    assert.equal(a, b);
    assert.equal(cache.stats().misses, 1);
    await cache.manifest(path, io);
    assert.equal(cache.stats().hits, 1);
    await assert.rejects(cache.manifest(`${path}.missing`, io), (err: unknown) => err instanceof PuffinError && err.code === 'not_found' && /manifest .*m0\.avro\.missing does not exist/.test(err.message));
    const other = toUri(join(MYTABLE, 'metadata/c4028cec-4266-45e9-bf74-77cbf1b55328-m0.avro'));
    await cache.manifest(other, io); // each weighs 2 (1 + one entry): the first is evicted
    assert.ok(cache.stats().size <= 3);
    assert.equal(cache.stats().files, 1);
  });

  test('a file written with an unsupported codec is refused naming the codec and file', () => {
    const path = join(scratch.path, 'snappy.avro');
    const bytes = Buffer.from(writeAvroContainer({ type: 'record', name: 'r', fields: [{ name: 'a', type: 'int' }] }, [{ a: 1 }], {}, { codec: 'null' }));
    // Rewrite the codec name in the header (same length keeps the file well formed).
    const patched = Buffer.from(bytes.toString('latin1').replace('null', 'zstd'), 'latin1');
    writeFileSync(path, patched);
    assert.throws(() => readAvroContainer(read(path), path), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /snappy\.avro uses the Avro codec 'zstd'/.test(err.message));
  });
});
