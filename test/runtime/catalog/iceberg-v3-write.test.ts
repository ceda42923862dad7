// Writing Iceberg format v3 tables: a table asks for v3 (its `format-version` property, at
// CREATE or by ALTER TABLE ... SET upgrading a v2 table); INSERT assigns row lineage (table
// next-row-id, snapshot first-row-id / added-rows, manifest-list first_row_id, data files
// inheriting theirs); merge-on-read DELETE / UPDATE write deletion vectors (Puffin
// `deletion-vector-v1`, one per data file, replacing the file's earlier one) instead of position
// delete files. Rows checked against plain DuckDB; the metadata read back from its JSON / Avro.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../../runtime/errors.ts';
import { executeWrite, type WritePlannerContext } from '../../../runtime/planner/write-planner.ts';
import { writerFixture, type WriterFixture } from './iceberg/fixtures.ts';
import { buildIcebergReadSql, planTableScan } from '../../../runtime/catalog/iceberg/index.ts';
import { loadTable } from '../../../runtime/catalog/iceberg/commit.ts';
import { readAvroContainer } from '../../../runtime/catalog/iceberg/avro.ts';
import { decodeManifest, decodeManifestList } from '../../../runtime/catalog/iceberg/manifest.ts';
import { deletionVectorBlob } from '../../../bench/iceberg/fixture-writer.ts';
import { readDeletionVector, cardinality, encodeDeletionVector, encodeRoaring64, decodeRoaring64, type PositionRanges } from '../../../runtime/catalog/iceberg/puffin.ts';
import { appendRows, createTableFromDefinitions } from '../../../runtime/catalog/iceberg/writer.ts';
import { expireSnapshots, rewriteDataFiles, rewriteManifests } from '../../../runtime/catalog/iceberg/maintenance.ts';
import { findOrphanFiles } from '../../../runtime/catalog/iceberg/orphans.ts';

let fx: WriterFixture;
let conn: DuckDBConnection;
let ctx: WritePlannerContext;

before(async () => {
  fx = await writerFixture('puffindb-v3-write-');
  ({ conn, ctx } = fx);
});
after(() => fx?.close());

async function state(name: string) {
  const t = await loadTable(ctx.store, name, ctx.io);
  const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io: ctx.io });
  const json = JSON.parse(await readFile(fileURLToPath(t.metadataLocation), 'utf8')) as Record<string, unknown>;
  return { t, scan, json };
}

async function icebergRows(name: string): Promise<string> {
  const { scan } = await state(name);
  return JSON.stringify((await conn.runAndReadAll(`SELECT * FROM (${buildIcebergReadSql(scan)}) ORDER BY ALL`)).getRowsJson());
}

async function both(name: string, sql: string): Promise<number> {
  const r = await executeWrite(sql, ctx);
  await conn.run(sql.replace(new RegExp(`\\b${name}\\b`, 'g'), `ref_${name}`));
  const plain = JSON.stringify((await conn.runAndReadAll(`SELECT * FROM ref_${name} ORDER BY ALL`)).getRowsJson());
  assert.equal(await icebergRows(name), plain, sql);
  return r.rowsAffected;
}

/** Every live data file's first row id (inherited from its manifest when not explicit). */
async function dataFileRowIds(name: string): Promise<{ path: string; first: bigint; count: number }[]> {
  const { t } = await state(name);
  const snap = t.metadata.snapshots.find((s) => s.snapshotId === t.metadata.currentSnapshotId);
  const listBytes = await ctx.io.read(snap!.manifestList!);
  const list = readAvroContainer(listBytes, 'list');
  assert.equal(list.metadata['format-version'], '3');
  const manifests = decodeManifestList(listBytes, 'list');
  const out: { path: string; first: bigint; count: number }[] = [];
  manifests.forEach((mf, i) => {
    const raw = list.records[i] as Record<string, unknown>;
    if (mf.content !== 'data') {
      assert.equal(raw.first_row_id, null, 'delete manifests have no first_row_id');
      return;
    }
    assert.equal(typeof raw.first_row_id, 'bigint', `data manifest ${mf.path} has a first_row_id`);
    out.push({ path: mf.path, first: raw.first_row_id as bigint, count: -1 });
  });
  const files: { path: string; first: bigint; count: number }[] = [];
  for (const m of out) {
    const manifest = decodeManifest(await ctx.io.read(m.path), m.path);
    // Manifests written before a v2 table was upgraded stay v2 files.
    assert.ok(manifest.formatVersion === 3 || (manifest.formatVersion === 2 && manifest.entries.every((e) => e.file.firstRowId === undefined)));
    let next = m.first;
    for (const e of manifest.entries) {
      const first = e.file.firstRowId ?? next;
      if (e.file.firstRowId === undefined) next += BigInt(e.file.recordCount);
      if (e.status !== 2) files.push({ path: e.file.filePath, first, count: e.file.recordCount });
    }
  }
  return files;
}

function assertDisjoint(files: { first: bigint; count: number }[], nextRowId: bigint): void {
  const sorted = [...files].sort((a, b) => (a.first < b.first ? -1 : 1));
  for (let i = 0; i < sorted.length; i++) {
    const end = sorted[i].first + BigInt(sorted[i].count);
    assert.ok(end <= nextRowId, `row ids below next-row-id (${end} > ${nextRowId})`);
    if (i + 1 < sorted.length) assert.ok(end <= sorted[i + 1].first, 'row id ranges do not overlap');
  }
}

describe('Iceberg format v3 writes', () => {
  test('Roaring bitmaps round-trip (arrays, bitmap containers, 64-bit keys)', () => {
    const ranges: PositionRanges = [[0n, 1n], [5n, 9n], [70000n, 75000n], [(1n << 32n) + 3n, (1n << 32n) + 4n]];
    assert.deepEqual(decodeRoaring64(encodeRoaring64(ranges)), ranges);
    assert.equal(cardinality(ranges), 1n + 4n + 5000n + 1n);
    // Byte for byte what the fixture writer (bench/iceberg/fixture-writer.ts) lays out.
    const positions = [0n, 5n, 65543n, ...Array.from({ length: 5000 }, (_, i) => 131072n + BigInt(i * 3)), (1n << 32n) + 1n];
    assert.ok(Buffer.from(encodeDeletionVector(positions.map((p) => [p, p + 1n] as [bigint, bigint]))).equals(Buffer.from(deletionVectorBlob(positions))));
  });

  test('a new table is v2 by default, v3 when its format-version property asks; other values are refused', async () => {
    await executeWrite('CREATE TABLE plain2 (id INTEGER)', ctx);
    assert.equal((await state('plain2')).t.metadata.formatVersion, 2);
    await createTableFromDefinitions(ctx, 'direct3', 'id INTEGER', { properties: { 'format-version': '3' } });
    const d = await state('direct3');
    assert.equal(d.json['format-version'], 3);
    assert.equal(d.json['next-row-id'], 0);
    assert.equal((d.json.properties as Record<string, string>)['format-version'], undefined, 'format-version is reserved, not kept as a property');
    await assert.rejects(createTableFromDefinitions(ctx, 'bad4', 'id INTEGER', { properties: { 'format-version': '4' } }), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /format-version/.test(e.message));
    assert.equal(await ctx.store.get('bad4'), undefined);
  });

  test("SQL asks for v3 with CREATE TABLE ... WITH ('format-version' = '3'), other properties kept; bad ones refused before the table exists", async () => {
    await executeWrite("CREATE TABLE sql3 (id INTEGER, s VARCHAR) WITH ('format-version' = '3', 'write.delete.mode' = 'merge-on-read')", ctx);
    const d = await state('sql3');
    assert.equal(d.json['format-version'], 3);
    assert.equal((d.json.properties as Record<string, string>)['write.delete.mode'], 'merge-on-read');
    await executeWrite("CREATE TABLE ctas3 PARTITIONED BY (g) WITH ('format-version' = '3') AS SELECT range AS id, range % 3 AS g FROM range(10)", ctx);
    const c = await state('ctas3');
    assert.equal(c.json['format-version'], 3);
    assert.equal(c.json['next-row-id'], 10);
    assert.equal(c.t.metadata.partitionSpecs.find((p) => p.specId === c.t.metadata.defaultSpecId)?.fields.length, 1);
    for (const [sql, message] of [
      ["CREATE TABLE bad5 (id INTEGER) WITH ('write.delete.mode' = 'sometimes')", /must be 'copy-on-write' or 'merge-on-read'/],
      ["CREATE TABLE bad6 (id INTEGER) WITH ('location' = '/elsewhere')", /cannot be set with CREATE TABLE ... WITH/],
      ["CREATE TABLE bad7 WITH ('format-version' = '9') AS SELECT 1 AS id", /format-version/],
      ["CREATE TABLE bad8 (id INTEGER) WITH (format-version)", /expected 'property' = 'value'/],
    ] as const) {
      await assert.rejects(executeWrite(sql, ctx), (e: unknown) => e instanceof PuffinError && message.test(e.message), sql);
    }
    for (const t of ['bad5', 'bad6', 'bad7', 'bad8']) assert.equal(await ctx.store.get(t), undefined, t);
  });

  test('INSERT, merge-on-read DELETE and UPDATE on a v3 table: deletion vectors, row lineage, rows as plain DuckDB', async () => {
    const select = "SELECT i::INTEGER AS id, 'v' || i AS v, (i % 3)::INTEGER AS k FROM range(0, 3000) t(i)";
    await executeWrite('CREATE TABLE t3 (id INTEGER, v VARCHAR, k INTEGER) PARTITIONED BY (k)', ctx);
    await executeWrite("ALTER TABLE t3 SET ('format-version' = '3', 'write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read')", ctx);
    await conn.run('CREATE TABLE ref_t3 (id INTEGER, v VARCHAR, k INTEGER)');
    assert.equal((await state('t3')).t.metadata.formatVersion, 3);

    assert.equal(await both('t3', `INSERT INTO t3 ${select}`), 3000);
    let s = await state('t3');
    assert.equal(s.json['next-row-id'], 3000);
    const snaps = s.json.snapshots as Record<string, unknown>[];
    assert.equal(snaps.at(-1)?.['first-row-id'], 0);
    assert.equal(snaps.at(-1)?.['added-rows'], 3000);
    assertDisjoint(await dataFileRowIds('t3'), 3000n);

    assert.equal(await both('t3', "INSERT INTO t3 SELECT i::INTEGER, 'w' || i, (i % 3)::INTEGER FROM range(5000, 5010) t(i)"), 10);
    s = await state('t3');
    assert.equal(s.json['next-row-id'], 3010);
    assert.equal((s.json.snapshots as Record<string, unknown>[]).at(-1)?.['first-row-id'], 3000);
    assertDisjoint(await dataFileRowIds('t3'), 3010n);
    const dataBefore = new Set(s.scan.dataFiles.map((f) => f.path));

    // DELETE: deletion vectors, no position delete file, no data file rewritten.
    assert.equal(await both('t3', 'DELETE FROM t3 WHERE id % 7 = 0'), 429 + 1); // 0..2996 and 5005
    s = await state('t3');
    for (const f of s.scan.dataFiles) assert.ok(dataBefore.has(f.path), 'no data file rewritten');
    const dvs = s.scan.dataFiles.flatMap((f) => f.deletes);
    assert.ok(dvs.length > 0 && dvs.every((d) => d.format === 'puffin' && d.content === 'position'), JSON.stringify(dvs.map((d) => d.format)));
    for (const f of s.scan.dataFiles) assert.ok(f.deletes.length <= 1, 'at most one deletion vector per data file');
    assert.equal(s.json['next-row-id'], 3010, 'a delete assigns no row ids');

    // A second DELETE on the same files: the new vector holds the old positions too, the old one is removed.
    const firstDvs = new Set(dvs.map((d) => `${d.path}#${d.referencedDataFile}`));
    assert.equal(await both('t3', 'DELETE FROM t3 WHERE id % 11 = 0'), 273 - 39);
    s = await state('t3');
    let replaced = 0;
    for (const f of s.scan.dataFiles) {
      assert.ok(f.deletes.length <= 1, 'still one deletion vector per data file');
      const d = f.deletes[0];
      if (!d) continue;
      if (!firstDvs.has(`${d.path}#${d.referencedDataFile}`)) replaced++;
      const ranges = readDeletionVector(fileURLToPath(d.uri), d.contentOffset!, d.contentSizeInBytes!, d.path);
      assert.equal(Number(cardinality(ranges)), d.rowCount, 'record_count is the vector cardinality');
    }
    // The three files of ids 0..2999 (one per partition) had rows deleted again; 5000..5009's not.
    assert.equal(replaced, 3, 'the earlier vectors of the files deleted from again were replaced');
    assert.equal(Number((await state('t3')).t.metadata.snapshots.at(-1)!.summary['removed-delete-files']), 3);
    const puffin = s.scan.dataFiles.find((f) => f.deletes.length)!.deletes[0];
    const bytes = await readFile(fileURLToPath(puffin.uri));
    assert.equal(bytes.subarray(0, 4).toString('latin1'), 'PFA1');
    assert.equal(bytes.subarray(bytes.length - 4).toString('latin1'), 'PFA1');
    const payloadLen = bytes.readUInt32LE(bytes.length - 12);
    const footer = JSON.parse(bytes.subarray(bytes.length - 12 - payloadLen, bytes.length - 12).toString('utf8')) as { blobs: { type: string; properties: Record<string, string> }[] };
    assert.ok(footer.blobs.every((b) => b.type === 'deletion-vector-v1' && b.properties['referenced-data-file']));

    // UPDATE (merge-on-read): vectors for the old versions, new rows appended with new row ids.
    const updated = Number((await conn.runAndReadAll('SELECT count(*) FROM ref_t3 WHERE id % 5 = 1')).getRowsJson()[0][0]);
    assert.ok(updated > 0);
    assert.equal(await both('t3', "UPDATE t3 SET v = v || '!' WHERE id % 5 = 1"), updated);
    s = await state('t3');
    assert.equal(s.json['next-row-id'], 3010 + updated, 'the new row versions got row ids');
    assertDisjoint(await dataFileRowIds('t3'), BigInt(3010 + updated));
    for (const f of s.scan.dataFiles) assert.ok(f.deletes.length <= 1);
    assert.ok(s.scan.dataFiles.every((f) => f.deletes.every((d) => d.format === 'puffin')));

    // Copy-on-write DELETE on the v3 table keeps lineage metadata consistent too.
    await executeWrite("ALTER TABLE t3 SET ('write.delete.mode' = 'copy-on-write')", ctx);
    await both('t3', 'DELETE FROM t3 WHERE k = 2');
    s = await state('t3');
    assert.equal(s.t.metadata.formatVersion, 3);
    assertDisjoint(await dataFileRowIds('t3'), BigInt(s.json['next-row-id'] as number));
  });

  test('concurrent INSERTs into a v3 table: the commit that retries takes the next row ids', async () => {
    await createTableFromDefinitions(ctx, 'race3', 'id INTEGER', { properties: { 'format-version': '3' } });
    await Promise.all([0, 1, 2, 3].map((i) => appendRows(ctx, 'race3', `SELECT (${i * 100} + range)::INTEGER FROM range(0, ${10 + i})`)));
    const s = await state('race3');
    assert.equal(s.json['next-row-id'], 10 + 11 + 12 + 13);
    const files = await dataFileRowIds('race3');
    assert.equal(files.length, 4);
    assertDisjoint(files, 46n);
    const firsts = (s.json.snapshots as Record<string, unknown>[]).map((x) => x['first-row-id']);
    assert.equal(new Set(firsts).size, 4, 'each snapshot starts its own range');
  });

  test('a v2 table stays v2: position delete files, no row lineage fields; format-version never goes down', async () => {
    await executeWrite("CREATE TABLE t2 AS SELECT i::INTEGER AS id FROM range(0, 100) t(i)", ctx);
    await executeWrite("ALTER TABLE t2 SET ('write.delete.mode' = 'merge-on-read')", ctx);
    await executeWrite('DELETE FROM t2 WHERE id < 10', ctx);
    const s = await state('t2');
    assert.equal(s.json['format-version'], 2);
    assert.equal(s.json['next-row-id'], undefined);
    assert.ok(s.scan.dataFiles.flatMap((f) => f.deletes).every((d) => d.format === 'parquet'));
    const snap = s.t.metadata.snapshots.at(-1)!;
    assert.equal(readAvroContainer(await ctx.io.read(snap.manifestList!), 'l').metadata['format-version'], '2');
    await executeWrite("ALTER TABLE t3 SET ('format-version' = '3')", ctx); // no-op on a v3 table
    await assert.rejects(executeWrite("ALTER TABLE t3 SET ('format-version' = '2')", ctx), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /never lowered/.test(e.message));
  });

  test('upgrading a v2 table with rows and position deletes to v3: the next DELETE writes a vector holding both', async () => {
    await executeWrite('CREATE TABLE up AS SELECT i::INTEGER AS id FROM range(0, 200) t(i)', ctx);
    await conn.run('CREATE TABLE ref_up AS SELECT i::INTEGER AS id FROM range(0, 200) t(i)');
    await executeWrite("ALTER TABLE up SET ('write.delete.mode' = 'merge-on-read')", ctx);
    await both('up', 'DELETE FROM up WHERE id < 50');
    await executeWrite("ALTER TABLE up SET ('format-version' = '3')", ctx);
    let s = await state('up');
    assert.equal(s.json['format-version'], 3);
    assert.equal(s.json['next-row-id'], 0);
    await both('up', 'DELETE FROM up WHERE id >= 190');
    s = await state('up');
    const [file] = s.scan.dataFiles;
    assert.deepEqual(file.deletes.map((d) => d.format), ['puffin'], 'the vector supersedes the position delete file');
    const ranges = readDeletionVector(fileURLToPath(file.deletes[0].uri), file.deletes[0].contentOffset!, file.deletes[0].contentSizeInBytes!, 'dv');
    assert.deepEqual(ranges, [[0n, 50n], [190n, 200n]]);
    // The pre-upgrade manifest got its first row ids at the first v3 commit.
    assertDisjoint(await dataFileRowIds('up'), BigInt(s.json['next-row-id'] as number));
    assert.equal(s.json['next-row-id'], 200);
    await both('up', 'INSERT INTO up VALUES (1000)');
  });

  test('MERGE on a v3 table, copy-on-write and merge-on-read: rows as plain DuckDB, row lineage advanced, deletion vectors (no position delete files)', async () => {
    const select = "SELECT i::INTEGER AS id, 'v' || i AS v, (i % 3)::INTEGER AS k FROM range(0, 300) t(i)";
    const merge = (name: string, from: number, to: number) => `MERGE INTO ${name} AS t USING (SELECT i::INTEGER AS id, 'n' || i AS v FROM range(${from}, ${to}) r(i)) AS s ON t.id = s.id ` +
      'WHEN MATCHED AND t.id % 5 = 0 THEN DELETE WHEN MATCHED AND t.id % 5 = 1 THEN UPDATE SET v = s.v ' +
      'WHEN NOT MATCHED THEN INSERT (id, v, k) VALUES (s.id, s.v, s.id % 3)';
    for (const mode of ['copy-on-write', 'merge-on-read'] as const) {
      const name = mode === 'copy-on-write' ? 'mcow3' : 'mmor3';
      await executeWrite(`CREATE TABLE ${name} PARTITIONED BY (k) WITH ('format-version' = '3', 'write.merge.mode' = '${mode}', 'write.delete.mode' = '${mode}') AS ${select}`, ctx);
      await conn.run(`CREATE TABLE ref_${name} AS ${select}`);
      const before = await state(name);
      assert.equal(before.json['next-row-id'], 300);
      const expected = Number((await conn.runAndReadAll(merge(`ref_${name}`, 250, 350))).getRowsJson()[0][0]);
      const r = await executeWrite(merge(name, 250, 350), ctx);
      assert.equal(r.rowsAffected, expected, `${mode}: rows affected as DuckDB's MERGE`);
      assert.equal(r.rowsAffected, 10 + 10 + 50);
      assert.equal(await icebergRows(name), JSON.stringify((await conn.runAndReadAll(`SELECT * FROM ref_${name} ORDER BY ALL`)).getRowsJson()), mode);
      let s = await state(name);
      assert.equal(s.json['format-version'], 3);
      const snap = (s.json.snapshots as Record<string, unknown>[]).at(-1)!;
      assert.equal(snap['first-row-id'], 300, `${mode}: the MERGE's snapshot takes the next row ids`);
      if (mode === 'copy-on-write') {
        // The rewritten files' rows (untouched, updated, inserted) all get new ids.
        const rewritten = s.scan.dataFiles.filter((f) => !before.scan.dataFiles.some((b) => b.path === f.path)).reduce((n, f) => n + f.rowCount, 0);
        assert.ok(rewritten >= 50 + 10, `${mode}: ${rewritten} rows written`);
        assert.equal(s.json['next-row-id'], 300 + rewritten);
        assert.ok(s.scan.dataFiles.every((f) => f.deletes.length === 0), 'copy-on-write writes no delete file');
      } else {
        assert.equal(s.json['next-row-id'], 300 + 10 + 50, 'updated and inserted rows got row ids');
        for (const f of before.scan.dataFiles) assert.ok(s.scan.dataFiles.some((x) => x.path === f.path), 'no data file rewritten');
        const dvs = s.scan.dataFiles.flatMap((f) => f.deletes);
        assert.ok(dvs.length > 0 && dvs.every((d) => d.format === 'puffin' && d.content === 'position' && d.referencedDataFile), JSON.stringify(dvs.map((d) => d.format)));
        const positions = dvs.reduce((n, d) => n + cardinality(readDeletionVector(fileURLToPath(d.uri), d.contentOffset!, d.contentSizeInBytes!, d.path)), 0n);
        assert.equal(positions, 20n, '10 deleted, 10 updated');
      }
      assertDisjoint(await dataFileRowIds(name), BigInt(s.json['next-row-id'] as number));

      // A DELETE, then a second MERGE over the same files: in merge-on-read each file's vector
      // holds the earlier positions too and the old vector is removed in the same commit.
      await both(name, 'DELETE FROM mcow3 WHERE id % 7 = 3'.replace('mcow3', name));
      const vectorsBefore = (await state(name)).scan.dataFiles.flatMap((f) => f.deletes.map((d) => d.path));
      const expected2 = Number((await conn.runAndReadAll(merge(`ref_${name}`, 200, 400))).getRowsJson()[0][0]);
      assert.equal((await executeWrite(merge(name, 200, 400), ctx)).rowsAffected, expected2);
      assert.equal(await icebergRows(name), JSON.stringify((await conn.runAndReadAll(`SELECT * FROM ref_${name} ORDER BY ALL`)).getRowsJson()), `${mode}, second MERGE`);
      s = await state(name);
      assertDisjoint(await dataFileRowIds(name), BigInt(s.json['next-row-id'] as number));
      if (mode === 'merge-on-read') {
        const last = s.t.metadata.snapshots.at(-1)!;
        assert.ok(Number(last.summary['removed-delete-files']) > 0, 'the replaced vectors are removed');
        for (const f of s.scan.dataFiles) {
          assert.ok(f.deletes.length <= 1 && f.deletes.every((d) => d.format === 'puffin'), 'one vector per data file');
          for (const d of f.deletes) {
            assert.ok(cardinality(readDeletionVector(fileURLToPath(d.uri), d.contentOffset!, d.contentSizeInBytes!, d.path)) > 0n);
          }
        }
        // Every data file the second MERGE deleted from had a vector before: it was replaced, not kept beside the new one.
        assert.ok(vectorsBefore.length > 0);
        const live = new Set(s.scan.dataFiles.flatMap((f) => f.deletes.map((d) => d.path)));
        assert.ok(vectorsBefore.some((p) => !live.has(p)), 'an earlier vector is gone');
      }
    }
  });

  /** Live entries of the current snapshot's delete manifests. */
  async function liveDeleteFiles(name: string): Promise<string[]> {
    const { t } = await state(name);
    const snap = t.metadata.snapshots.find((x) => x.snapshotId === t.metadata.currentSnapshotId)!;
    const out: string[] = [];
    for (const mf of decodeManifestList(await ctx.io.read(snap.manifestList!), 'list')) {
      if (mf.content === 'data') continue;
      for (const e of decodeManifest(await ctx.io.read(mf.path), mf.path).entries) if (e.status !== 2) out.push(e.file.filePath);
    }
    return out;
  }

  test('compaction on a v3 table applies deletion vectors, removes them with their files, and gives the new files fresh row ids', async () => {
    await executeWrite("CREATE TABLE c3 (id INTEGER, v VARCHAR) WITH ('format-version' = '3', 'write.delete.mode' = 'merge-on-read')", ctx);
    await conn.run('CREATE TABLE ref_c3 (id INTEGER, v VARCHAR)');
    for (let i = 0; i < 4; i++) await both('c3', `INSERT INTO c3 SELECT j::INTEGER, 'v' || j FROM range(${i * 100}, ${i * 100 + 100}) t(j)`);
    await both('c3', 'DELETE FROM c3 WHERE id % 7 = 0');
    let s = await state('c3');
    assert.equal(s.scan.dataFiles.length, 4);
    const vectors = await liveDeleteFiles('c3');
    assert.ok(vectors.length > 0 && vectors.every((p) => p.endsWith('.puffin')));
    // Live deletion vectors are referenced: orphan removal would keep them.
    const orphans = await findOrphanFiles(ctx.store, 'c3', ctx.io);
    assert.ok(!orphans.orphans.some((p) => p.endsWith('.puffin')), JSON.stringify(orphans.orphans));
    const nextBefore = BigInt(s.json['next-row-id'] as number);
    assert.equal(nextBefore, 400n);

    const snapshotsBefore = s.t.metadata.snapshots.length;
    const r = await rewriteDataFiles(ctx, 'c3');
    assert.equal(r.filesRewritten, 4);
    assert.equal(r.rows, 400 - 58);
    s = await state('c3');
    // One replace snapshot removes the files and their vectors together.
    assert.equal(s.t.metadata.snapshots.length, snapshotsBefore + 1);
    assert.equal(s.t.metadata.snapshots.at(-1)!.summary.operation, 'replace');
    assert.equal(s.t.metadata.snapshots.at(-1)!.summary['removed-delete-files'], String(vectors.length), 'one entry per data file\'s vector');
    assert.equal(await icebergRows('c3'), JSON.stringify((await conn.runAndReadAll('SELECT * FROM ref_c3 ORDER BY ALL')).getRowsJson()));
    assert.equal(s.scan.dataFiles.length, r.filesAdded);
    assert.ok(s.scan.dataFiles.every((f) => f.deletes.length === 0));
    assert.deepEqual(await liveDeleteFiles('c3'), [], 'no deletion vector outlives its data file');
    assert.equal(s.t.metadata.snapshots.at(-1)!.summary['total-delete-files'], '0');
    // The moved rows got new ids (compaction does not carry _row_id yet).
    assert.equal(BigInt(s.json['next-row-id'] as number), nextBefore + BigInt(r.rows));
    const ids = await dataFileRowIds('c3');
    assert.ok(ids.every((f) => f.first >= nextBefore));
    assertDisjoint(ids, nextBefore + BigInt(r.rows));

    // Expiring the older snapshots deletes the vectors of the replaced files, and only those.
    const e = await expireSnapshots(ctx.store, 'c3', ctx.io, { olderThanMs: Date.now() + 1000 });
    assert.equal(e.deleteFilesDeleted, new Set(vectors).size);
    assert.ok(e.deleted.some((p) => p.endsWith('.puffin')));
    assert.equal(await icebergRows('c3'), JSON.stringify((await conn.runAndReadAll('SELECT * FROM ref_c3 ORDER BY ALL')).getRowsJson()));
    await both('c3', 'DELETE FROM c3 WHERE id % 5 = 0');
    assert.equal((await rewriteDataFiles(ctx, 'c3')).filesRewritten, 1);
    assert.deepEqual(await liveDeleteFiles('c3'), []);
  });

  test('rewrite_manifests on a v3 table keeps every data file\'s first row id and next-row-id', async () => {
    await createTableFromDefinitions(ctx, 'rm3', 'id INTEGER', { properties: { 'format-version': '3', 'write.delete.mode': 'merge-on-read' } });
    await conn.run('CREATE TABLE ref_rm3 (id INTEGER)');
    for (let i = 0; i < 5; i++) await both('rm3', `INSERT INTO rm3 SELECT j::INTEGER FROM range(${i * 10}, ${i * 10 + 10 + i}) t(j)`);
    await both('rm3', 'DELETE FROM rm3 WHERE id % 4 = 0');
    const before = await dataFileRowIds('rm3');
    const next = (await state('rm3')).json['next-row-id'];
    const r = await rewriteManifests(ctx.store, 'rm3', ctx.io);
    assert.equal(r.manifestsRewritten, 5);
    assert.equal(r.manifestsAdded, 1);
    const s = await state('rm3');
    assert.equal(s.json['next-row-id'], next, 'no row ids assigned');
    const snap = (s.json.snapshots as Record<string, unknown>[]).at(-1)!;
    assert.equal(snap.operation ?? (snap.summary as Record<string, string>).operation, 'replace');
    assert.equal(snap['added-rows'], 0);
    const after = await dataFileRowIds('rm3');
    const byPath = (x: { path: string }[]) => [...x].sort((a, b) => (a.path < b.path ? -1 : 1));
    assert.deepEqual(byPath(after), byPath(before));
    // Read back: the rewritten manifest records every id explicitly.
    const list = decodeManifestList(await ctx.io.read(s.t.metadata.snapshots.at(-1)!.manifestList!), 'list');
    const rewritten = list.filter((mf) => mf.content === 'data');
    assert.equal(rewritten.length, 1);
    const entries = decodeManifest(await ctx.io.read(rewritten[0].path), rewritten[0].path).entries;
    assert.equal(entries.length, 5);
    assert.ok(entries.every((e) => e.file.firstRowId !== undefined));
    assert.equal(await icebergRows('rm3'), JSON.stringify((await conn.runAndReadAll('SELECT * FROM ref_rm3 ORDER BY ALL')).getRowsJson()));
    assert.equal((await liveDeleteFiles('rm3')).length > 0, true, 'delete manifests are kept as they are');
  });
});
