import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import avro from 'avsc';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../../../runtime/errors.ts';
import { openIcebergTable, planTableScan, buildIcebergReadSql } from '../../../../runtime/catalog/iceberg/index.ts';
import { commitTable, loadTable } from '../../../../runtime/catalog/iceberg/commit.ts';
import { localTableIO, objectStoreTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';
import { findOrphanFiles } from '../../../../runtime/catalog/iceberg/orphans.ts';
import { LocalObjectStore } from '../../../../runtime/storage/local-store.ts';
import { writeDataFiles } from '../../../../runtime/catalog/iceberg/writer-data.ts';
import { dataFileFromJson, dataFileToJson, type DataFileJson } from '../../../../runtime/catalog/iceberg/writer-manifest.ts';
import { appendDataFiles, appendRows, createTableAsSelect, createTableFromDefinitions, deleteRows, updateRows, type WriterContext } from '../../../../runtime/catalog/iceberg/writer.ts';
import { MemoryPointerStore } from '../../../../runtime/catalog/iceberg/memory-pointer-store.ts';

/** Rows of a query as JSON text lines, sorted, for exact comparison. */
async function rowsOf(conn: DuckDBConnection, sql: string): Promise<string[]> {
  const r = await conn.runAndReadAll(sql);
  return r.getRowsJson().map((row) => JSON.stringify(row)).sort();
}

async function readBack(conn: DuckDBConnection, ctx: WriterContext, name: string, where?: string): Promise<string[]> {
  const table = await openIcebergTable((await ctx.store.get(name)) as string);
  const scan = await planTableScan(table);
  return rowsOf(conn, `SELECT * FROM (${buildIcebergReadSql(scan)}) t${where ? ` WHERE ${where}` : ''}`);
}

/** Avro longs as BigInt, through avsc's documented custom-long hook (snapshot ids pass 2^53). */
const exactLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** Decode an Avro container with avsc's own file decoder: independent of the runtime's reader. */
async function rawAvro(path: string): Promise<{ schema: Record<string, unknown>; records: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const records: Record<string, unknown>[] = [];
    let schema: Record<string, unknown> = {};
    avro
      .createFileDecoder(path, { parseHook: (schema: unknown) => avro.Type.forSchema(schema as avro.Schema, { registry: { long: exactLong } }) } as never)
      .on('metadata', (_type: unknown, _codec: unknown, header: { meta: Record<string, Buffer> }) => {
        schema = JSON.parse(header.meta['avro.schema'].toString('utf8'));
      })
      .on('data', (r: Record<string, unknown>) => records.push(r))
      .on('error', reject)
      .on('end', () => resolve({ schema, records }));
  });
}

function fieldIds(schema: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  const visit = (s: unknown, prefix: string): void => {
    if (Array.isArray(s)) return s.forEach((b) => visit(b, prefix));
    if (!s || typeof s !== 'object') return;
    const o = s as { type?: unknown; fields?: { name: string; type: unknown; 'field-id'?: number }[]; items?: unknown };
    if (o.type === 'record') for (const f of o.fields ?? []) {
      if (typeof f['field-id'] === 'number') out[`${prefix}${f.name}`] = f['field-id'];
      visit(f.type, `${prefix}${f.name}.`);
    }
    if (o.type === 'array') visit(o.items, prefix);
  };
  visit(schema, '');
  return out;
}

const ALL_TYPES = `SELECT
  i::INTEGER AS id,
  (i % 2 = 0) AS b,
  (i - 3)::TINYINT AS ti,
  (i * 300)::SMALLINT AS si,
  (i * 3000000000)::BIGINT AS bi,
  (i * 7)::UINTEGER AS ui,
  (i / 4)::FLOAT AS f,
  (i / 3)::DOUBLE AS d,
  (i * 1.25)::DECIMAL(9,2) AS d9,
  (i * -123456.789)::DECIMAL(18,4) AS d18,
  (i * 12345678901234567890.123)::DECIMAL(38,10) AS d38,
  DATE '1969-12-25' + i::INTEGER AS dt,
  TIME '23:59:59.999999' - to_seconds(i) AS tm,
  TIMESTAMP '1965-06-01 12:34:56.789012' + to_hours(i * 1000) AS ts,
  TIMESTAMPTZ '2024-02-29 23:00:00+00' + to_minutes(i * 37) AS tstz,
  'héllo ' || i || repeat('x', i::INTEGER * 10) AS s,
  uuid_extract_timestamp IS NULL AS dummy,
  ('00000000-0000-0000-0000-' || lpad(i::VARCHAR, 12, '0'))::UUID AS u,
  ('\\x00\\xFF' || i::VARCHAR)::BLOB AS bl,
  [i, i + 1, NULL]::INTEGER[] AS l,
  {'x': i, 'y': 'q' || i}::STRUCT(x BIGINT, y VARCHAR) AS st,
  MAP {'k' || i: i * 2.5} AS m
FROM range(12) r(i)`.replace('  uuid_extract_timestamp IS NULL AS dummy,\n', '');

const NULL_ROW = `SELECT 100, NULL::BOOLEAN, NULL::TINYINT, NULL::SMALLINT, NULL::BIGINT, NULL::UINTEGER, NULL::FLOAT, NULL::DOUBLE, NULL::DECIMAL(9,2), NULL::DECIMAL(18,4), NULL::DECIMAL(38,10),
  NULL::DATE, NULL::TIME, NULL::TIMESTAMP, NULL::TIMESTAMPTZ, NULL::VARCHAR, NULL::UUID, NULL::BLOB, NULL::INTEGER[], NULL::STRUCT(x BIGINT, y VARCHAR), NULL::MAP(VARCHAR, DECIMAL(11,1))`;

describe('Iceberg writer', () => {
  let dir: string;
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  let ctx: WriterContext;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-writer-'));
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
    ctx = { conn, store: new MemoryPointerStore(), io: localTableIO(), stagingDir: join(dir, 'staging'), warehouseUri: pathToFileURL(join(dir, 'warehouse')).href };
  });
  after(async () => {
    conn?.closeSync();
    instance?.closeSync();
    await rm(dir, { recursive: true, force: true });
  });

  test('every supported type, with NULLs, reads back exactly (unpartitioned)', async () => {
    await createTableAsSelect(ctx, 'all_types', `${ALL_TYPES} UNION ALL ${NULL_ROW}`);
    // UINTEGER is widened to long: compare against the source read as BIGINT.
    const expected = await rowsOf(conn, `SELECT * REPLACE (ui::BIGINT AS ui) FROM (${ALL_TYPES} UNION ALL ${NULL_ROW})`);
    assert.equal(expected.length, 13);
    assert.deepEqual(await readBack(conn, ctx, 'all_types'), expected);
    const t = await loadTable(ctx.store, 'all_types', ctx.io);
    const types = Object.fromEntries(t.metadata.schemas[0].fields.map((f) => [f.name, f.type.kind]));
    assert.deepEqual(
      [types.ti, types.si, types.ui, types.d38, types.tstz, types.u, types.bl, types.l, types.st, types.m],
      ['int', 'int', 'long', 'decimal', 'timestamptz', 'uuid', 'binary', 'list', 'struct', 'map'],
    );
  });

  test('bounds written by the writer prune exactly: a predicate on any column returns what DuckDB returns', async () => {
    for (const where of ['d38 > 100000000000000000000', 'ts < TIMESTAMP \'1965-06-20\'', 's >= \'héllo 5\'', 'u = \'00000000-0000-0000-0000-000000000003\'', 'tstz >= TIMESTAMPTZ \'2024-03-01 04:00:00+00\'', 'bl > \'\\x00\\xFF5\'::BLOB']) {
      const table = await openIcebergTable((await ctx.store.get('all_types')) as string);
      const expected = await rowsOf(conn, `SELECT * REPLACE (ui::BIGINT AS ui) FROM (${ALL_TYPES} UNION ALL ${NULL_ROW}) WHERE ${where}`);
      assert.deepEqual(await readBack(conn, ctx, 'all_types', where), expected, where);
      assert.ok(table.metadata.currentSnapshotId !== null);
    }
  });

  test('partitioned by identity, bucket, truncate, year, month, day and hour: rows and partition values read back', async () => {
    await createTableFromDefinitions(ctx, 'parts', 'id BIGINT NOT NULL, region VARCHAR, ts TIMESTAMP, tz TIMESTAMPTZ, d DATE, amount DECIMAL(10,2)', {
      partitionBy: 'region, bucket(8, id), truncate(3, region), year(d), month(ts), day(tz), hour(ts), truncate(100, amount)',
    });
    const rows = `SELECT i::BIGINT AS id, CASE WHEN i % 5 = 0 THEN NULL ELSE 'r' || (i % 3) || 'long' END AS region, TIMESTAMP '1969-12-31 22:00:00' + to_hours(i * 13) AS ts,
      TIMESTAMPTZ '1969-12-31 23:30:00+00' + to_hours(i * 5) AS tz, DATE '1968-11-30' + (i * 40)::INTEGER AS d, (i * 3.37 - 20)::DECIMAL(10,2) AS amount FROM range(40) r(i)`;
    const r = await appendRows(ctx, 'parts', rows);
    assert.equal(r.rowsAffected, 40);
    assert.deepEqual(await readBack(conn, ctx, 'parts'), await rowsOf(conn, rows));

    // The partition tuple of each file agrees with the spec's transforms of the file's rows.
    const table = await openIcebergTable((await ctx.store.get('parts')) as string);
    const scan = await planTableScan(table);
    assert.ok(scan.dataFiles.length > 10);
    for (const f of scan.dataFiles) {
      const check = await rowsOf(conn, `SELECT DISTINCT region, year(d) - 1970, (year(ts) - 1970) * 12 + month(ts) - 1, (epoch_us(tz) // 86400000000 - CASE WHEN epoch_us(tz) % 86400000000 < 0 THEN 1 ELSE 0 END)::INTEGER, (epoch_us(ts) // 3600000000 - CASE WHEN epoch_us(ts) % 3600000000 < 0 THEN 1 ELSE 0 END)::INTEGER, left(region, 3), ((amount * 100)::BIGINT - (((amount * 100)::BIGINT % 100) + 100) % 100) / 100.0 FROM read_parquet('${fileURLToPath(f.uri)}')`);
      assert.equal(check.length, 1, `file ${f.path} holds one partition`);
      const [region, year, month, day, hour, regionTrunc, amountTrunc] = JSON.parse(check[0]);
      assert.equal(f.partition.region_trunc, regionTrunc === null ? null : String(regionTrunc));
      assert.equal(Number(f.partition.amount_trunc), Number(amountTrunc), `truncate(100) of the amounts in ${f.path}`);
      assert.equal(f.partition.region, region === null ? null : String(region));
      assert.equal(f.partition.d_year, String(year));
      assert.equal(f.partition.ts_month, String(month));
      assert.equal(f.partition.tz_day, String(day));
      assert.equal(f.partition.ts_hour, String(hour));
    }

    // Pruning by an identity partition and by bucket keeps fewer files and the right rows.
    const pruned = await planTableScan(table, { filter: { op: '=', column: 'id', value: 7 } });
    assert.ok(pruned.dataFiles.length < scan.dataFiles.length);
    assert.deepEqual(await rowsOf(conn, `SELECT * FROM (${buildIcebergReadSql(pruned)}) WHERE id = 7`), await rowsOf(conn, `SELECT * FROM (${rows}) WHERE id = 7`));
  });

  test('identity-partitioned on TIMESTAMP, TIMESTAMPTZ and TIME: written (the manifest keeps the logical types), read back, pruned, one partition deleted', async () => {
    await createTableFromDefinitions(ctx, 'tsparts', 'ts TIMESTAMP, tz TIMESTAMPTZ, tm TIME, v INTEGER', { partitionBy: 'ts, tz, tm' });
    const rows = `SELECT TIMESTAMP '2024-01-01 10:00:00' + to_hours(i % 3) AS ts, TIMESTAMPTZ '1969-12-31 23:59:59.5+00' + to_days(i % 3) AS tz, TIME '12:34:56.789012' + to_minutes(i % 3) AS tm, i::INTEGER AS v FROM range(9) r(i)
      UNION ALL SELECT NULL, NULL, NULL, 100`;
    const r = await appendRows(ctx, 'tsparts', rows);
    assert.equal(r.rowsAffected, 10);
    assert.deepEqual(await readBack(conn, ctx, 'tsparts'), await rowsOf(conn, rows));

    const table = await openIcebergTable((await ctx.store.get('tsparts')) as string);
    const scan = await planTableScan(table);
    assert.equal(scan.dataFiles.length, 4);
    // Pruned by the partition: one file of the four, the right rows.
    const pruned = await planTableScan(table, { filter: { op: '=', column: 'ts', value: '2024-01-01 11:00:00' } });
    assert.equal(pruned.dataFiles.length, 1);
    assert.deepEqual(await rowsOf(conn, `SELECT v FROM (${buildIcebergReadSql(pruned)}) ORDER BY v`), ['[1]', '[4]', '[7]']);

    // The manifest, decoded by avsc alone: the spec's Avro types for these partition fields
    // (long with timestamp-micros / time-micros and adjust-to-utc) and the values in microseconds.
    const snapshots = (await loadTable(ctx.store, 'tsparts', ctx.io)).metadata.snapshots;
    const list = await rawAvro(fileURLToPath(snapshots[snapshots.length - 1].manifestList as string));
    const manifest = await rawAvro(fileURLToPath(String(list.records[0].manifest_path)));
    const partitionType = ((manifest.schema.fields as { name: string; type: { fields: { name: string; type: unknown }[] } }[]).find((f) => f.name === 'data_file')?.type.fields.find((f) => f.name === 'partition')?.type) as unknown as { fields: { name: string; type: unknown; 'field-id': number }[] };
    assert.deepEqual(partitionType.fields.map((f) => [f.name, f.type]), [
      ['ts', ['null', { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false }]],
      ['tz', ['null', { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true }]],
      ['tm', ['null', { type: 'long', logicalType: 'time-micros' }]],
    ]);
    const values = manifest.records.map((e) => {
      const p = (e.data_file as { partition: Record<string, unknown> }).partition;
      return JSON.stringify([p.ts, p.tz, p.tm].map((x) => (x === null ? null : Number(x))));
    }).sort();
    const us = Date.UTC(2024, 0, 1, 10) * 1000;
    const expected = [0, 1, 2].map((k) => JSON.stringify([us + k * 3_600_000_000, -500_000 + k * 86_400_000_000, ((12 * 60 + 34 + k) * 60 + 56) * 1_000_000 + 789_012])).concat(JSON.stringify([null, null, null])).sort();
    assert.deepEqual(values, expected);

    // DELETE one partition: only its file goes, the rest read back.
    const d = await deleteRows(ctx, 'tsparts', `ts = TIMESTAMP '2024-01-01 11:00:00'`);
    assert.equal(d.rowsAffected, 3);
    assert.deepEqual(await readBack(conn, ctx, 'tsparts'), await rowsOf(conn, `SELECT * FROM (${rows}) WHERE ts IS DISTINCT FROM TIMESTAMP '2024-01-01 11:00:00'`));
    const after = await planTableScan(await openIcebergTable((await ctx.store.get('tsparts')) as string));
    assert.equal(after.dataFiles.length, 3);
  });

  test('manifests and manifest lists carry the spec field ids (raw avsc decode), sequence numbers and summaries', async () => {
    await createTableFromDefinitions(ctx, 'seq', 'a INTEGER, b VARCHAR');
    await appendRows(ctx, 'seq', `SELECT i, 'x' FROM range(5) r(i)`);
    await appendRows(ctx, 'seq', `SELECT i, 'y' FROM range(5, 8) r(i)`);
    await deleteRows(ctx, 'seq', 'a < 2');
    const t = await loadTable(ctx.store, 'seq', ctx.io);
    const snaps = t.metadata.snapshots;
    assert.equal(snaps.length, 3);
    assert.deepEqual(snaps.map((s) => s.sequenceNumber), [1n, 2n, 3n]);
    assert.equal(t.metadata.lastSequenceNumber, 3n);
    assert.equal(snaps[0].parentSnapshotId, undefined);
    assert.equal(snaps[1].parentSnapshotId, snaps[0].snapshotId);
    assert.equal(snaps[2].parentSnapshotId, snaps[1].snapshotId);
    assert.deepEqual(snaps.map((s) => s.summary.operation), ['append', 'append', 'overwrite']);
    assert.deepEqual(snaps.map((s) => s.summary['total-records']), ['5', '8', '6']);
    assert.equal(snaps[1].summary['added-records'], '3');
    assert.equal(snaps[2].summary['deleted-records'], '5');
    assert.equal(snaps[2].summary['added-records'], '3');
    assert.equal(t.metadata.snapshotLog.length, 3);
    assert.equal(t.metadata.metadataLog.length, 3);
    assert.equal(t.metadata.formatVersion, 2);

    const list = await rawAvro(fileURLToPath(snaps[2].manifestList as string));
    const listIds = fieldIds(list.schema);
    assert.deepEqual(
      [listIds.manifest_path, listIds.manifest_length, listIds.partition_spec_id, listIds.content, listIds.sequence_number, listIds.min_sequence_number, listIds.added_snapshot_id, listIds.added_files_count, listIds.existing_files_count, listIds.deleted_files_count, listIds.added_rows_count, listIds.existing_rows_count, listIds.deleted_rows_count, listIds.partitions],
      [500, 501, 502, 517, 515, 516, 503, 504, 505, 506, 512, 513, 514, 507],
    );
    // The overwrite's list: its new manifest (seq 3), the rewritten manifest holding the DELETED entry (seq 3, min seq 1 for the surviving EXISTING file... ) and the untouched second append (seq 2).
    assert.equal(list.records.length, 3);
    const seqs = list.records.map((r) => Number(r.sequence_number)).sort();
    assert.deepEqual(seqs, [2, 3, 3]);
    const rewritten = list.records.find((r) => Number(r.deleted_files_count) === 1) as Record<string, unknown>;
    assert.ok(rewritten);
    const manifest = await rawAvro(fileURLToPath(String(rewritten.manifest_path)));
    const ids = fieldIds(manifest.schema);
    assert.deepEqual([ids.status, ids.snapshot_id, ids.sequence_number, ids.file_sequence_number, ids.data_file], [0, 1, 3, 4, 2]);
    assert.deepEqual(
      [ids['data_file.content'], ids['data_file.file_path'], ids['data_file.file_format'], ids['data_file.partition'], ids['data_file.record_count'], ids['data_file.file_size_in_bytes'], ids['data_file.value_counts'], ids['data_file.null_value_counts'], ids['data_file.lower_bounds'], ids['data_file.upper_bounds']],
      [134, 100, 101, 102, 103, 104, 109, 110, 125, 128],
    );
    const deleted = manifest.records.find((r) => r.status === 2) as Record<string, unknown>;
    assert.ok(deleted, 'the removed file is recorded as DELETED');
    assert.equal(Number(deleted.sequence_number), 1, 'a deleted entry keeps its data sequence number');
    // A new file's entry inherits: null snapshot id and sequence numbers.
    const added = await rawAvro(fileURLToPath(String(list.records.find((r) => Number(r.added_files_count) === 1)?.manifest_path)));
    assert.equal(added.records[0].status, 1);
    assert.equal(added.records[0].sequence_number, null);
    assert.equal(added.records[0].snapshot_id, null);
    const df = added.records[0].data_file as { lower_bounds: { key: number; value: Buffer }[] };
    const lowerA = df.lower_bounds.find((kv) => kv.key === 1);
    assert.equal(lowerA?.value.readInt32LE(0), 2, 'lower bound of a (field 1) is 4-byte little-endian 2');

    assert.deepEqual(await readBack(conn, ctx, 'seq'), await rowsOf(conn, `SELECT i::INTEGER, 'x' FROM range(2, 5) r(i) UNION ALL SELECT i::INTEGER, 'y' FROM range(5, 8) r(i)`));
  });

  test('manifest-list partition summaries cover DELETED entries too (as Java writes them)', async () => {
    await createTableFromDefinitions(ctx, 'summ', 'k INTEGER, p VARCHAR, n INTEGER', { partitionBy: 'p, n' });
    // One append, one manifest: partitions ('a', 1), ('b', 2), ('z', NULL).
    await appendRows(ctx, 'summ', `SELECT i, ['a', 'b', 'z'][1 + i % 3], [1, 2, NULL][1 + i % 3] FROM range(9) r(i)`);
    // Removes the files of 'z' (n NULL) and of 'a': what remains live is only ('b', 2).
    const r = await deleteRows(ctx, 'summ', `p <> 'b'`);
    assert.equal(r.rowsAffected, 6);
    const t = await loadTable(ctx.store, 'summ', ctx.io);
    const snap = t.metadata.snapshots.at(-1)!;
    assert.equal(snap.summary.operation, 'overwrite');
    const list = await rawAvro(fileURLToPath(snap.manifestList as string));
    const rewritten = list.records.find((x) => Number(x.deleted_files_count) === 2) as Record<string, unknown>;
    assert.ok(rewritten, 'the rewritten manifest records the two removed files as DELETED');
    assert.equal(Number(rewritten.existing_files_count), 1);
    const manifest = await rawAvro(fileURLToPath(String(rewritten.manifest_path)));
    assert.deepEqual(manifest.records.map((e) => e.status).sort(), [0, 2, 2]);
    const [pSummary, nSummary] = rewritten.partitions as { contains_null: boolean; lower_bound: Buffer | null; upper_bound: Buffer | null }[];
    // Over all three entries ('a', 'b' and 'z'), not only the live 'b'.
    assert.equal(pSummary.lower_bound?.toString('utf8'), 'a');
    assert.equal(pSummary.upper_bound?.toString('utf8'), 'z');
    assert.equal(pSummary.contains_null, false);
    assert.equal(nSummary.lower_bound?.readInt32LE(0), 1);
    assert.equal(nSummary.upper_bound?.readInt32LE(0), 2);
    assert.equal(nSummary.contains_null, true, 'the DELETED entry with a NULL partition value counts');
    // Reads (and pruning by those summaries) are unaffected.
    assert.deepEqual(await readBack(conn, ctx, 'summ'), await rowsOf(conn, `SELECT i::INTEGER, 'b', 2 FROM range(9) r(i) WHERE i % 3 = 1`));
  });

  test('a DELETE whose rewrite misses a file holding matched rows fails and commits nothing', async () => {
    await createTableFromDefinitions(ctx, 'acct', 'k INTEGER, p VARCHAR', { partitionBy: 'p' });
    await appendRows(ctx, 'acct', `SELECT 1, 'a' UNION ALL SELECT 2, 'b'`);
    const before = await loadTable(ctx.store, 'acct', ctx.io);
    const scan = await planTableScan(await openIcebergTable(before.metadataLocation));
    const fileA = scan.dataFiles.find((f) => f.partition.p === 'a')!;
    // A rewriter that, like a pruning bug, chose only the file of partition 'a' for `k > 0`.
    const pruned: WriterContext = { ...ctx, rewriteFiles: async () => ({ added: [], removed: [fileA.path], matched: 2 }) };
    await assert.rejects(deleteRows(pruned, 'acct', 'k > 0'), (err: unknown) => err instanceof PuffinError && err.code === 'internal' && /matched 2 row\(s\), but rewriting the 1 data file\(s\) chosen for it removes 1; nothing was committed/.test(err.message));
    assert.equal((await loadTable(ctx.store, 'acct', ctx.io)).metadataLocation, before.metadataLocation, 'the table is unchanged');
    // The same rewriter choosing both files accounts for both rows, and commits.
    const fileB = scan.dataFiles.find((f) => f.partition.p === 'b')!;
    const both: WriterContext = { ...ctx, rewriteFiles: async () => ({ added: [], removed: [fileA.path, fileB.path], matched: 2 }) };
    assert.equal((await deleteRows(both, 'acct', 'k > 0')).rowsAffected, 2);
    assert.deepEqual(await readBack(conn, ctx, 'acct'), []);
  });

  test('UPDATE rewrites the affected files and moves rows across partitions', async () => {
    await createTableFromDefinitions(ctx, 'upd', 'k INTEGER, grp VARCHAR, v DOUBLE', { partitionBy: 'grp' });
    await appendRows(ctx, 'upd', `SELECT i, 'g' || (i % 3), i * 1.5 FROM range(30) r(i)`);
    const r = await updateRows(ctx, 'upd', [{ column: 'grp', expression: `'moved'` }, { column: 'v', expression: 'v * 2' }], 'k % 10 = 0');
    assert.equal(r.rowsAffected, 3);
    assert.deepEqual(
      await readBack(conn, ctx, 'upd'),
      await rowsOf(conn, `SELECT i::INTEGER, CASE WHEN i % 10 = 0 THEN 'moved' ELSE 'g' || (i % 3) END, (CASE WHEN i % 10 = 0 THEN i * 3.0 ELSE i * 1.5 END)::DOUBLE FROM range(30) r(i)`),
    );
    const none = await deleteRows(ctx, 'upd', 'k > 1000');
    assert.equal(none.rowsAffected, 0);
    assert.equal(none.snapshotId, null);
  });

  test('bad input: unmappable types name the column; NOT NULL and arity are checked; the table is unchanged', async () => {
    for (const [type, word] of [['HUGEINT', 'long'], ['INTERVAL', 'interval'], ['UNION(a INT, b VARCHAR)', 'union'], ["ENUM('a', 'b')", 'enum'], ['TIMESTAMP_NS', 'microseconds'], ['UBIGINT', 'long']]) {
      await assert.rejects(createTableFromDefinitions(ctx, 'bad', `ok INTEGER, "weird col" ${type}`), (err: unknown) => {
        assert.ok(err instanceof PuffinError);
        assert.equal(err.code, 'unsupported');
        assert.match(err.message, /column 'weird col'/);
        assert.match(err.message.toLowerCase(), new RegExp(word));
        return true;
      });
    }
    await assert.rejects(createTableFromDefinitions(ctx, 'bad', 'a STRUCT(x INTEGER, y INTERVAL)'), /column 'a\.y'/);
    assert.equal(await ctx.store.get('bad'), undefined);

    await createTableFromDefinitions(ctx, 'strict', 'a INTEGER NOT NULL, b VARCHAR');
    const before = await ctx.store.get('strict');
    await assert.rejects(appendRows(ctx, 'strict', `VALUES (1, 'x'), (NULL, 'y')`), /column 'a' is NOT NULL/);
    await assert.rejects(appendRows(ctx, 'strict', `VALUES (1, 'x', 3)`), /table 'strict' has 2 columns/);
    await assert.rejects(appendRows(ctx, 'strict', `VALUES ('not a number', 'x')`), /strict/);
    await assert.rejects(deleteRows(ctx, 'strict', 'no_such_column = 1'), (err: unknown) => err instanceof PuffinError && /no_such_column/.test(err.message));
    assert.equal(await ctx.store.get('strict'), before);
    await assert.rejects(createTableFromDefinitions(ctx, 'pbad', 'a INTEGER, f DOUBLE', { partitionBy: 'bucket(4, f)' }), /cannot partition by bucket\[4\] of column 'f'/);
    await assert.rejects(createTableFromDefinitions(ctx, 'pbad', 'a INTEGER', { partitionBy: 'nope' }), /partition column 'nope'/);
  });

  test('a commit against a table whose schema changed incompatibly fails naming the table, leaving it unchanged', async () => {
    await createTableFromDefinitions(ctx, 'evolve', 'a INTEGER');
    const base = await loadTable(ctx.store, 'evolve', ctx.io);
    // Another writer changes the schema (as the REST catalog's add-schema would).
    const changed = { ...base.metadata, schemas: [...base.metadata.schemas, { schemaId: 1, fields: [{ id: 1, name: 'a', required: false, type: { kind: 'long' as const } }], identifierFieldIds: [] }], currentSchemaId: 1 };
    const { writeMetadataFile } = await import('../../../../runtime/catalog/iceberg/commit.ts');
    const loc = await writeMetadataFile(ctx.io, changed, base.metadataLocation, 'evolve');
    assert.ok(await ctx.store.compareAndSwap('evolve', base.metadataLocation, loc));
    await assert.rejects(commitTable(ctx.store, 'evolve', { operation: 'append', files: [] }, { io: ctx.io, base }), (err: unknown) => {
      assert.ok(err instanceof PuffinError);
      assert.equal(err.code, 'conflict');
      assert.match(err.message, /table 'evolve'.*schema changed/);
      return true;
    });
    assert.equal(await ctx.store.get('evolve'), loc);
  });

  test('tables in an ObjectStore warehouse: written, committed, listed for orphans, read back', async () => {
    const store = new LocalObjectStore(join(dir, 'object-store'));
    const fetched: string[] = [];
    const octx: WriterContext = {
      ...ctx,
      io: objectStoreTableIO(store),
      warehouseUri: `${store.url}warehouse`,
      // Stands in for the worker file cache: files are read through the copies it returns.
      localFile: async (uri) => {
        fetched.push(uri);
        return store.localPath?.(uri.slice(store.url.length)) as string;
      },
    };
    await createTableFromDefinitions(octx, 'in_store', 'a INTEGER, b VARCHAR', { partitionBy: 'b' });
    await appendRows(octx, 'in_store', `SELECT i, 'p' || (i % 2) FROM range(6) r(i)`);
    await deleteRows(octx, 'in_store', 'a = 0');
    assert.deepEqual(await readBack(conn, octx, 'in_store'), await rowsOf(conn, `SELECT i::INTEGER, 'p' || (i % 2) FROM range(1, 6) r(i)`));
    const keys = (await store.list('warehouse/in_store/')).map((o) => o.key);
    assert.ok(keys.some((k) => k.startsWith('warehouse/in_store/data/b=p1/')));
    assert.ok(keys.some((k) => /warehouse\/in_store\/metadata\/00002-.*\.metadata\.json$/.test(k)));
    assert.deepEqual((await findOrphanFiles(octx.store, 'in_store', octx.io)).orphans, []);
    assert.ok(fetched.length >= 2, 'DELETE read the table through localFile');
  });

  test('distributed append: fragments on their own DuckDB instances write files, the coordinator commits them once', async () => {
    await createTableFromDefinitions(ctx, 'dist', 'k BIGINT, d DECIMAL(20,3), u UUID', { partitionBy: 'bucket(3, k), truncate(10, k)' });
    const base = await loadTable(ctx.store, 'dist', ctx.io);
    const shares = [0, 1, 2];
    const returned = await Promise.all(shares.map(async (share) => {
      const fragment = await DuckDBInstance.create(':memory:');
      const fconn = await fragment.connect();
      try {
        const w = await writeDataFiles({ conn: fconn, table: 'dist', metadata: base.metadata, selectSql: `SELECT k, k * 1.5, uuid() FROM range(${share * 20}, ${share * 20 + 20}) r(k)`, stagingDir: join(dir, `frag-${share}`), io: ctx.io });
        return JSON.stringify(w.files.map(dataFileToJson));
      } finally {
        fconn.closeSync();
        fragment.closeSync();
      }
    }));
    const files = returned.flatMap((text) => (JSON.parse(text) as DataFileJson[]).map(dataFileFromJson));
    const r = await appendDataFiles(ctx, 'dist', files, base);
    assert.equal(r.rowsAffected, 60);
    const readSql = buildIcebergReadSql(await planTableScan(await openIcebergTable((await ctx.store.get('dist')) as string)));
    assert.deepEqual(await rowsOf(conn, `SELECT k, d FROM (${readSql})`), await rowsOf(conn, `SELECT range::BIGINT AS k, (range * 1.5)::DECIMAL(20,3) AS d FROM range(60)`));
    assert.deepEqual(await rowsOf(conn, `SELECT count(DISTINCT u) FROM (${readSql})`), ['["60"]']);
    const t = await loadTable(ctx.store, 'dist', ctx.io);
    assert.equal(t.metadata.snapshots.length, 1, 'one snapshot for all fragments');
  });

  test('staging leaves nothing behind', async () => {
    assert.deepEqual(await readdir(join(dir, 'staging')), []);
  });
});
