import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { localFileIO, toUri } from '../../../../runtime/catalog/iceberg/io.ts';
import { decodeTableMetadata, findCurrentMetadataFile, parseTableMetadata, schemaFor, selectSnapshot } from '../../../../runtime/catalog/iceberg/metadata.ts';
import { openIcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import { LINEITEM, MYTABLE, MYTABLE_PARTITIONED, NULL_STATS, PARTITION_INTEGER, tempDir } from './fixtures.ts';

const scratch = tempDir('iceberg-metadata');
after(() => scratch.remove());

function rejectsWith(code: string, pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof PuffinError, `expected a PuffinError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('finding the current metadata file', () => {
  test('version-hint.text names it in the Spark fixtures', async () => {
    const io = localFileIO();
    assert.match(await findCurrentMetadataFile(toUri(LINEITEM), io), /lineitem_iceberg\/metadata\/v2\.metadata\.json$/);
    assert.match(await findCurrentMetadataFile(toUri(MYTABLE), io), /mytable\/metadata\/v7\.metadata\.json$/);
    assert.match(await findCurrentMetadataFile(toUri(MYTABLE_PARTITIONED), io), /v6\.metadata\.json$/);
    assert.match(await findCurrentMetadataFile(toUri(PARTITION_INTEGER), io), /v2\.metadata\.json$/);
  });

  test('without a hint, the highest NNNNN-uuid.metadata.json wins', async () => {
    assert.match(await findCurrentMetadataFile(toUri(NULL_STATS), localFileIO()), /\/00003-9d6a621e-8a72-4190-a880-f6ca02e32b86\.metadata\.json$/);
  });

  test('without a hint, the highest vN.metadata.json wins (numerically, not as text)', async () => {
    const dir = join(scratch.path, 'versions');
    mkdirSync(join(dir, 'metadata'), { recursive: true });
    for (const n of [1, 2, 9, 10]) writeFileSync(join(dir, 'metadata', `v${n}.metadata.json`), '{}');
    assert.match(await findCurrentMetadataFile(toUri(dir), localFileIO()), /\/v10\.metadata\.json$/);
  });

  test('a lagging hint is advanced to the newest metadata file', async () => {
    const dir = join(scratch.path, 'lagging');
    mkdirSync(join(dir, 'metadata'), { recursive: true });
    for (const n of [1, 2, 3]) writeFileSync(join(dir, 'metadata', `v${n}.metadata.json`), '{}');
    writeFileSync(join(dir, 'metadata', 'version-hint.text'), '2\n');
    assert.match(await findCurrentMetadataFile(toUri(dir), localFileIO()), /\/v3\.metadata\.json$/);
  });

  test('a hint holding a bare file name (00001-<uuid>, no .metadata.json) names exactly that file, as DuckDB and Spark read it', async () => {
    const dir = join(scratch.path, 'bare-name');
    mkdirSync(join(dir, 'metadata'), { recursive: true });
    const names = ['00001-aaaa1111-0000-0000-0000-000000000000', '00002-bbbb2222-0000-0000-0000-000000000000', '00002-cccc3333-0000-0000-0000-000000000000', '00003-dddd4444-0000-0000-0000-000000000000'];
    for (const n of names) writeFileSync(join(dir, 'metadata', `${n}.metadata.json`), '{}');
    for (const hint of [names[0], names[1], names[2], `${names[1]}\n`, `metadata/${names[2]}`]) {
      writeFileSync(join(dir, 'metadata', 'version-hint.text'), hint);
      const want = hint.trim().split('/').pop() as string;
      // Not advanced to 00003: another uuid's file with a higher number may be a failed commit.
      assert.ok((await findCurrentMetadataFile(toUri(dir), localFileIO())).endsWith(`/metadata/${want}.metadata.json`), hint);
    }
    // The full name still works; a bare number still means v<N>.metadata.json (Hadoop).
    writeFileSync(join(dir, 'metadata', 'version-hint.text'), `${names[2]}.metadata.json`);
    assert.ok((await findCurrentMetadataFile(toUri(dir), localFileIO())).endsWith(`/${names[2]}.metadata.json`));
    writeFileSync(join(dir, 'metadata', 'version-hint.text'), 'no-such-file');
    await assert.rejects(findCurrentMetadataFile(toUri(dir), localFileIO()), rejectsWith('not_found', /names version 'no-such-file'/));

    const hadoop = join(scratch.path, 'bare-number');
    mkdirSync(join(hadoop, 'metadata'), { recursive: true });
    writeFileSync(join(hadoop, 'metadata', 'v1.metadata.json'), '{}');
    writeFileSync(join(hadoop, 'metadata', 'version-hint.text'), '1');
    assert.match(await findCurrentMetadataFile(toUri(hadoop), localFileIO()), /\/metadata\/v1\.metadata\.json$/);
  });

  test('a table opens at the version a bare-name hint gives (a copy of the null_stats fixture)', async () => {
    const dir = join(scratch.path, 'null-stats-hint');
    cpSync(NULL_STATS, dir, { recursive: true });
    writeFileSync(join(dir, 'metadata', 'version-hint.text'), '00002-066881b3-e853-4868-9a22-db18cdbc2a68');
    const table = await openIcebergTable(dir);
    assert.match(table.metadataLocation, /\/00002-066881b3-e853-4868-9a22-db18cdbc2a68\.metadata\.json$/);
    assert.equal(table.metadata.currentSnapshotId, 9136741709133330043n);
  });

  test('a hint naming a missing version, or a directory with no metadata, is not_found naming it', async () => {
    const dir = join(scratch.path, 'badhint');
    mkdirSync(join(dir, 'metadata'), { recursive: true });
    writeFileSync(join(dir, 'metadata', 'version-hint.text'), '7');
    await assert.rejects(findCurrentMetadataFile(toUri(dir), localFileIO()), rejectsWith('not_found', /version-hint\.text names version '7'/));
    await assert.rejects(openIcebergTable(join(scratch.path, 'nothing-here')), rejectsWith('not_found', /nothing-here has no Iceberg metadata/));
  });
});

describe('parsing table metadata', () => {
  test('format v2 (lineitem, written by Spark): schemas, specs, snapshots with exact 63-bit ids', async () => {
    const table = await openIcebergTable(LINEITEM);
    const m = table.metadata;
    assert.equal(m.formatVersion, 2);
    assert.equal(m.location, './lineitem_iceberg');
    assert.equal(m.lastSequenceNumber, 2n);
    assert.equal(m.currentSnapshotId, 2354745328521181395n);
    assert.deepEqual(m.snapshots.map((s) => s.snapshotId), [7817332053627255703n, 2354745328521181395n]);
    assert.equal(m.snapshots[1].parentSnapshotId, 7817332053627255703n);
    assert.equal(m.snapshots[1].summary.operation, 'overwrite');
    assert.equal(m.refs.main.snapshotId, 2354745328521181395n);
    assert.equal(m.snapshotLog.length, 2);
    assert.equal(m.properties['write.update.mode'], 'merge-on-read');
    const schema = m.schemas[0];
    assert.equal(schema.fields.length, 16);
    assert.deepEqual(schema.fields[4], { id: 5, name: 'l_quantity', required: false, type: { kind: 'decimal', precision: 15, scale: 2 } });
    assert.deepEqual(m.partitionSpecs, [{ specId: 0, fields: [] }]);
  });

  test('identity partition specs and timestamptz columns', async () => {
    const p = (await openIcebergTable(PARTITION_INTEGER)).metadata;
    assert.deepEqual(p.partitionSpecs[0].fields, [{ sourceId: 1, fieldId: 1000, name: 'partition_col', transform: { kind: 'identity' } }]);
    const n = (await openIcebergTable(NULL_STATS)).metadata;
    assert.deepEqual(n.schemas[0].fields.map((f) => f.type.kind), ['int', 'string', 'timestamptz', 'boolean']);
  });

  test('format v1: a single schema and partition spec, field ids from 1000, inline manifests', () => {
    const m = parseTableMetadata(
      JSON.stringify({
        'format-version': 1,
        location: 's3://bucket/wh/t',
        'last-updated-ms': 1600000000000,
        'last-column-id': 2,
        schema: { type: 'struct', fields: [{ id: 1, name: 'id', required: true, type: 'long' }, { id: 2, name: 'd', required: false, type: 'date' }] },
        'partition-spec': [{ name: 'd_day', transform: 'day', 'source-id': 2 }, { name: 'b', transform: 'bucket[4]', 'source-id': 1 }],
        'current-snapshot-id': 3,
        snapshots: [{ 'snapshot-id': 3, 'timestamp-ms': 1600000000000, manifests: ['s3://bucket/wh/t/metadata/m1.avro'] }],
      }),
      'v1.metadata.json',
    );
    assert.equal(m.formatVersion, 1);
    assert.equal(m.lastSequenceNumber, 0n);
    assert.deepEqual(m.partitionSpecs[0].fields.map((f) => [f.fieldId, f.transform]), [[1000, { kind: 'day' }], [1001, { kind: 'bucket', n: 4 }]]);
    assert.equal(m.snapshots[0].sequenceNumber, 0n);
    assert.deepEqual(m.snapshots[0].manifests, ['s3://bucket/wh/t/metadata/m1.avro']);
    assert.equal(m.currentSchemaId, 0);
  });

  test('gzip-compressed metadata decodes', () => {
    const text = JSON.stringify({ 'format-version': 2, 'table-uuid': 'u', location: '/t', 'last-sequence-number': 0, 'last-updated-ms': 1, 'last-column-id': 1, 'current-schema-id': 0, schemas: [{ type: 'struct', 'schema-id': 0, fields: [] }], 'partition-specs': [{ 'spec-id': 0, fields: [] }], 'default-spec-id': 0, 'last-partition-id': 999, 'sort-orders': [], 'default-sort-order-id': 0 });
    assert.equal(decodeTableMetadata(gzipSync(text), 'x.gz.metadata.json').location, '/t');
  });

  test('integers of 16+ digits inside strings are left alone', () => {
    const text = JSON.stringify({ 'format-version': 2, 'table-uuid': 'u', location: '/t', 'last-sequence-number': 0, 'last-updated-ms': 1, 'last-column-id': 1, 'current-schema-id': 0, schemas: [{ type: 'struct', 'schema-id': 0, fields: [] }], 'partition-specs': [{ 'spec-id': 0, fields: [] }], 'default-spec-id': 0, 'last-partition-id': 999, 'sort-orders': [], 'default-sort-order-id': 0, properties: { note: 'id 12345678901234567890 and "quoted"' } });
    assert.equal(parseTableMetadata(text, 'f').properties.note, 'id 12345678901234567890 and "quoted"');
  });
});

describe('bad metadata is a clear error naming the file', () => {
  const write = (name: string, body: string): string => {
    const dir = join(scratch.path, name, 'metadata');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'v1.metadata.json');
    writeFileSync(file, body);
    return file;
  };

  test('corrupt JSON', async () => {
    const file = write('corrupt', '{"format-version": 2, "location": ');
    await assert.rejects(openIcebergTable(file), rejectsWith('bad_request', /corrupt\/metadata\/v1\.metadata\.json is not an Iceberg metadata file \(not valid JSON\)/));
  });

  test('an unsupported format version', async () => {
    const file = write('v4', JSON.stringify({ 'format-version': 4, location: '/x' }));
    await assert.rejects(openIcebergTable(file), rejectsWith('unsupported', /v4\/metadata\/v1\.metadata\.json: Iceberg format version 4 is not supported; this reader implements format versions 1, 2 and 3/));
    const unknown = write('v0', JSON.stringify({ 'format-version': 'two', location: '/x' }));
    await assert.rejects(openIcebergTable(unknown), rejectsWith('bad_request', /'format-version' must be 1, 2 or 3/));
  });

  test('a missing required field, and a current snapshot that does not exist', async () => {
    const noLocation = write('nolocation', JSON.stringify({ 'format-version': 2, schemas: [{ type: 'struct', 'schema-id': 0, fields: [] }], 'current-schema-id': 0, 'partition-specs': [], 'last-sequence-number': 0 }));
    await assert.rejects(openIcebergTable(noLocation), rejectsWith('bad_request', /nolocation\/metadata\/v1\.metadata\.json: required field 'location' is missing/));
    const base = JSON.parse(JSON.stringify({ 'format-version': 2, 'table-uuid': 'u', location: '/t', 'last-sequence-number': 0, 'last-updated-ms': 1, 'last-column-id': 1, 'current-schema-id': 0, schemas: [{ type: 'struct', 'schema-id': 0, fields: [] }], 'partition-specs': [{ 'spec-id': 0, fields: [] }], 'default-spec-id': 0, 'last-partition-id': 999, 'sort-orders': [], 'default-sort-order-id': 0 }));
    const dangling = write('dangling', JSON.stringify({ ...base, 'current-snapshot-id': 42, snapshots: [] }));
    await assert.rejects(openIcebergTable(dangling), rejectsWith('bad_request', /current-snapshot-id 42 names no snapshot/));
  });

  test('an unknown column type names the column and the file', async () => {
    const file = write('badtype', JSON.stringify({ 'format-version': 2, location: '/t', schemas: [{ type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'shape', required: false, type: 'geometry' }] }] }));
    await assert.rejects(openIcebergTable(file), rejectsWith('unsupported', /badtype\/metadata\/v1\.metadata\.json: column 'shape' has the Iceberg v3 type 'geometry'/));
  });

  test('a missing metadata file', async () => {
    await assert.rejects(openIcebergTable(join(scratch.path, 'none', 'metadata', 'v9.metadata.json')), rejectsWith('not_found', /v9\.metadata\.json does not exist/));
  });
});

describe('choosing a snapshot (time travel)', () => {
  test('current, by id, by timestamp (newest at or before it), and errors', async () => {
    const m = (await openIcebergTable(LINEITEM)).metadata;
    assert.equal(selectSnapshot(m)?.snapshotId, 2354745328521181395n);
    assert.equal(selectSnapshot(m, { snapshotId: '7817332053627255703' })?.snapshotId, 7817332053627255703n);
    assert.equal(selectSnapshot(m, { asOfTimestampMs: 1746188479060 })?.snapshotId, 7817332053627255703n);
    assert.equal(selectSnapshot(m, { asOfTimestampMs: 1746188480004 })?.snapshotId, 7817332053627255703n);
    assert.equal(selectSnapshot(m, { asOfTimestampMs: 1746188480005 })?.snapshotId, 2354745328521181395n);
    assert.equal(selectSnapshot(m, { ref: 'main' })?.snapshotId, 2354745328521181395n);
    assert.throws(() => selectSnapshot(m, { asOfTimestampMs: 1746188479059 }, 'lineitem'), rejectsWith('not_found', /lineitem: no snapshot at or before 2025-05-02T12:21:19\.059Z/));
    assert.throws(() => selectSnapshot(m, { snapshotId: 1n }), rejectsWith('not_found', /snapshot 1 does not exist/));
    assert.throws(() => selectSnapshot(m, { ref: 'nope' }), rejectsWith('not_found', /no branch or tag named 'nope'/));
  });

  test('a table with no snapshot has no current snapshot; time travel uses the snapshot\'s schema', async () => {
    const v1 = join(MYTABLE, 'metadata', 'v1.metadata.json');
    const empty = (await openIcebergTable(v1)).metadata;
    assert.equal(empty.currentSnapshotId, null);
    assert.equal(selectSnapshot(empty), undefined);
    const m = (await openIcebergTable(MYTABLE)).metadata;
    assert.equal(schemaFor(m, selectSnapshot(m), false).schemaId, 0);
  });
});
