// v3 row lineage of rewritten rows (spec: Row Lineage): copy-on-write DELETE and UPDATE (on
// the writer's connection and in a cluster's fragments), merge-on-read UPDATE's new row
// versions, and compaction store each copied row's `_row_id` (field id 2147483540) and
// `_last_updated_sequence_number` (2147483539) explicitly, so surviving rows keep both and
// updated rows keep their id with a null sequence number (the commit's, inherited); new rows
// get fresh ids beyond the table's old next-row-id. v2 tables' files never get the columns.
// Checked two ways: the Parquet files read directly by field id, and the read side
// (buildIcebergReadSql's `_row_id` / `_last_updated_sequence_number` columns).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DuckDBConnection } from '@duckdb/node-api';
import { executeWrite, type WritePlannerContext } from '../../../runtime/planner/write-planner.ts';
import { writerFixture, type WriterFixture } from './iceberg/fixtures.ts';
import { buildIcebergReadSql, planTableScan } from '../../../runtime/catalog/iceberg/index.ts';
import { loadTable } from '../../../runtime/catalog/iceberg/commit.ts';
import { createTableFromDefinitions } from '../../../runtime/catalog/iceberg/writer.ts';
import { rewriteDataFiles } from '../../../runtime/catalog/iceberg/maintenance.ts';
import { markUpdatedRows } from '../../../runtime/catalog/iceberg/lineage.ts';
import type { PointerStore } from '../../../runtime/catalog/iceberg/pointer-store.ts';
import { localTableIO, type TableIO } from '../../../runtime/catalog/iceberg/writer-io.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';
import { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { LocalCluster } from '../../../runtime/exec/cluster.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { decodeIcebergFile } from '../../../runtime/exec/wire-iceberg.ts';
import { decodeFragment } from '../../../runtime/exec/wire.ts';

type Lineage = { v: string; rowId: number; seq: number };
type Stored = { id: number; rowId: number | null; seq: number | null };

let fx: WriterFixture;
let conn: DuckDBConnection;
let ctx: WritePlannerContext;

before(async () => {
  fx = await writerFixture('puffindb-v3-lineage-');
  ({ conn, ctx } = fx);
});
after(() => fx?.close());

async function live(store: PointerStore, io: TableIO, name: string) {
  const t = await loadTable(store, name, io);
  const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io });
  return { t, scan };
}

/** id -> lineage, through the read side. */
async function lineageOf(c: DuckDBConnection, store: PointerStore, io: TableIO, name: string): Promise<Map<number, Lineage>> {
  const { scan } = await live(store, io, name);
  const sql = buildIcebergReadSql(scan, ['id', 'v', '_row_id', '_last_updated_sequence_number']);
  const rows = (await c.runAndReadAll(`SELECT * FROM (${sql}) ORDER BY id`)).getRowsJson();
  return new Map(rows.map((r) => [Number(r[0]), { v: String(r[1]), rowId: Number(r[2]), seq: Number(r[3]) }]));
}

/** What the live data files store in the reserved columns, read by field id; and whether any file has them. */
async function storedOf(c: DuckDBConnection, store: PointerStore, io: TableIO, name: string): Promise<{ rows: Map<number, Stored>; filesWithColumns: number; files: number }> {
  const { scan } = await live(store, io, name);
  const rows = new Map<number, Stored>();
  let filesWithColumns = 0;
  for (const f of scan.dataFiles) {
    const path = fileURLToPath(f.uri);
    const ids = (await c.runAndReadAll(`SELECT field_id FROM parquet_schema(${sqlString(path)}) WHERE field_id IN (2147483540, 2147483539)`)).getRowsJson();
    if (ids.length > 0) {
      assert.equal(ids.length, 2, `${path} has both lineage columns or neither`);
      filesWithColumns++;
    }
    const map = `MAP {1: {name: 'id', type: 'INTEGER', default_value: NULL}, 2147483540: {name: 'r', type: 'BIGINT', default_value: NULL}, 2147483539: {name: 's', type: 'BIGINT', default_value: NULL}}`;
    for (const r of (await c.runAndReadAll(`SELECT id, r, s FROM read_parquet(${sqlString(path)}, schema = ${map})`)).getRowsJson()) {
      // Deletion vectors are not applied here: a row in two files reads from the one storing lineage.
      if (ids.length === 0 && rows.has(Number(r[0]))) continue;
      rows.set(Number(r[0]), { id: Number(r[0]), rowId: r[1] === null ? null : Number(r[1]), seq: r[2] === null ? null : Number(r[2]) });
    }
  }
  return { rows, filesWithColumns, files: scan.dataFiles.length };
}

async function seqOf(store: PointerStore, io: TableIO, name: string): Promise<{ seq: number; nextRowId: number }> {
  const t = await loadTable(store, name, io);
  const s = t.metadata.snapshots.find((x) => x.snapshotId === t.metadata.currentSnapshotId);
  return { seq: Number(s?.sequenceNumber), nextRowId: Number(t.metadata.nextRowId ?? -1) };
}

/** Survivors of `before` in `after` keep both lineage values, except the listed updated ids. */
function assertKept(before: Map<number, Lineage>, after: Map<number, Lineage>, updated: Set<number>, updateSeq?: number): void {
  for (const [id, a] of after) {
    const b = before.get(id);
    if (!b) continue;
    assert.equal(a.rowId, b.rowId, `row ${id} keeps its _row_id`);
    if (updated.has(id)) assert.equal(a.seq, updateSeq, `updated row ${id} reads the update's sequence number`);
    else assert.equal(a.seq, b.seq, `row ${id} keeps its _last_updated_sequence_number`);
  }
}

describe('v3 row lineage of rewritten rows (writer connection)', () => {
  test('CoW DELETE and UPDATE, then INSERT and compaction: ids kept, updated rows null-sequenced in the file, new ids fresh', async () => {
    const { store, io } = ctx;
    await createTableFromDefinitions(ctx, 'l3', 'id INTEGER, v VARCHAR', { properties: { 'format-version': '3' } });
    await executeWrite(`INSERT INTO l3 SELECT i::INTEGER, 'a' || i FROM range(0, 5) r(i)`, ctx);
    await executeWrite(`INSERT INTO l3 SELECT i::INTEGER, 'b' || i FROM range(5, 10) r(i)`, ctx);
    const l0 = await lineageOf(conn, store, io, 'l3');
    assert.deepEqual([...l0.values()].map((x) => x.rowId).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'ids assigned by inheritance');
    assert.deepEqual([...l0.values()].map((x) => x.seq), [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert.equal((await storedOf(conn, store, io, 'l3')).filesWithColumns, 0, 'appended files store no lineage (inherited)');

    // DELETE (CoW) rewrites the first file: its survivors store their ids and sequence numbers.
    assert.equal((await executeWrite('DELETE FROM l3 WHERE id = 3', ctx)).rowsAffected, 1);
    const l1 = await lineageOf(conn, store, io, 'l3');
    assert.equal(l1.size, 9);
    assertKept(l0, l1, new Set());
    const s1 = await storedOf(conn, store, io, 'l3');
    assert.equal(s1.filesWithColumns, 1, 'the rewritten file stores lineage, the untouched one does not');
    for (const id of [0, 1, 2, 4]) assert.deepEqual(s1.rows.get(id), { id, rowId: l0.get(id)!.rowId, seq: 1 });

    // UPDATE (CoW) rewrites the second file: the updated row keeps its id with a null sequence number.
    assert.equal((await executeWrite(`UPDATE l3 SET v = 'changed' WHERE id = 6`, ctx)).rowsAffected, 1);
    const { seq: updateSeq, nextRowId } = await seqOf(store, io, 'l3');
    const l2 = await lineageOf(conn, store, io, 'l3');
    assert.equal(l2.get(6)!.v, 'changed');
    assertKept(l1, l2, new Set([6]), updateSeq);
    const s2 = await storedOf(conn, store, io, 'l3');
    assert.deepEqual(s2.rows.get(6), { id: 6, rowId: l0.get(6)!.rowId, seq: null }, 'updated: id kept, sequence number null in the file');
    assert.deepEqual(s2.rows.get(7), { id: 7, rowId: l0.get(7)!.rowId, seq: 2 }, 'untouched neighbour: both stored');

    // A new row: a fresh id at or beyond the next-row-id before its commit.
    await executeWrite(`INSERT INTO l3 VALUES (100, 'new')`, ctx);
    const l3 = await lineageOf(conn, store, io, 'l3');
    assert.ok(l3.get(100)!.rowId >= nextRowId, `new row id ${l3.get(100)!.rowId} >= ${nextRowId}`);
    assert.equal(new Set([...l3.values()].map((x) => x.rowId)).size, l3.size, 'ids stay unique');

    // A user's rows cannot pass as lineage: columns named like the internal ones are just extra columns.
    await assert.rejects(executeWrite(`INSERT INTO l3 SELECT 200, 'x', 0::BIGINT AS __puffin_row_id, 1::BIGINT AS __puffin_last_updated_seq`, ctx), /has 2 columns/);

    // Compaction: every row keeps both values, now stored in the one new file.
    const before = await lineageOf(conn, store, io, 'l3');
    const r = await rewriteDataFiles(ctx, 'l3');
    assert.ok(r.filesRewritten >= 2 && r.filesAdded === 1, JSON.stringify(r));
    const compacted = await lineageOf(conn, store, io, 'l3');
    assert.deepEqual([...compacted.entries()], [...before.entries()], 'compaction keeps every row and its lineage');
    const s3 = await storedOf(conn, store, io, 'l3');
    assert.equal(s3.files, 1);
    assert.deepEqual(s3.rows.get(6), { id: 6, rowId: l0.get(6)!.rowId, seq: updateSeq }, "the updated row's sequence number is now explicit");
    assert.equal(s3.rows.get(100)!.rowId, before.get(100)!.rowId);
  });

  test('merge-on-read UPDATE: the new row versions keep their ids, null-sequenced', async () => {
    const { store, io } = ctx;
    await createTableFromDefinitions(ctx, 'm3', 'id INTEGER, v VARCHAR', { properties: { 'format-version': '3', 'write.update.mode': 'merge-on-read' } });
    await executeWrite(`INSERT INTO m3 SELECT i::INTEGER, 'a' || i FROM range(0, 4) r(i)`, ctx);
    const l0 = await lineageOf(conn, store, io, 'm3');
    await executeWrite(`UPDATE m3 SET v = 'z' WHERE id >= 2`, ctx);
    const { seq } = await seqOf(store, io, 'm3');
    const l1 = await lineageOf(conn, store, io, 'm3');
    assertKept(l0, l1, new Set([2, 3]), seq);
    const s = await storedOf(conn, store, io, 'm3');
    assert.deepEqual(s.rows.get(3), { id: 3, rowId: l0.get(3)!.rowId, seq: null });
  });

  test('MERGE on the writer connection, copy-on-write and merge-on-read: ids kept, updated rows null-sequenced, inserted rows fresh', async () => {
    const { store, io } = ctx;
    for (const [name, mode] of [['mc3', 'copy-on-write'], ['mm3', 'merge-on-read']] as const) {
      await createTableFromDefinitions(ctx, name, 'id INTEGER, v VARCHAR', { properties: { 'format-version': '3', 'write.merge.mode': mode } });
      await executeWrite(`INSERT INTO ${name} SELECT i::INTEGER, 'a' || i FROM range(0, 5) r(i)`, ctx);
      await executeWrite(`INSERT INTO ${name} SELECT i::INTEGER, 'b' || i FROM range(5, 10) r(i)`, ctx);
      const l0 = await lineageOf(conn, store, io, name);
      const { nextRowId } = await seqOf(store, io, name);
      // Updates 1 (positional UPDATE, spelled out), 2 (to its own value: unchanged for
      // merge-on-read) and 6; deletes 3; inserts 20 and 21 (bare positional INSERT, INSERT BY NAME).
      const merged = await executeWrite(
        `MERGE INTO ${name} AS t USING (VALUES (1, 'u1'), (2, 'a2'), (3, 'gone'), (6, 'u6'), (20, 'n20'), (21, 'n21')) AS s(id, v) ON t.id = s.id
         WHEN MATCHED AND s.id = 3 THEN DELETE WHEN MATCHED AND s.id = 1 THEN UPDATE WHEN MATCHED THEN UPDATE SET v = s.v
         WHEN NOT MATCHED AND s.id = 20 THEN INSERT WHEN NOT MATCHED THEN INSERT BY NAME`, ctx);
      assert.equal(merged.rowsAffected, 6, name);
      const { seq } = await seqOf(store, io, name);
      const l1 = await lineageOf(conn, store, io, name);
      assert.deepEqual([...l1.keys()].sort((a, b) => a - b), [0, 1, 2, 4, 5, 6, 7, 8, 9, 20, 21], name);
      assert.equal(l1.get(1)!.v, 'u1');
      assert.equal(l1.get(6)!.v, 'u6');
      const updated = mode === 'copy-on-write' ? new Set([1, 2, 6]) : new Set([1, 6]);
      assertKept(l0, l1, updated, seq);
      for (const id of [20, 21]) {
        assert.ok(l1.get(id)!.rowId >= nextRowId, `${name}: inserted row ${id} has a fresh id (${l1.get(id)!.rowId} >= ${nextRowId})`);
        assert.equal(l1.get(id)!.seq, seq);
      }
      assert.equal(new Set([...l1.values()].map((x) => x.rowId)).size, l1.size, `${name}: ids stay unique`);
      // In the files, by field id: updated rows keep the id with a null sequence number,
      // copied rows store both, inserted rows store neither.
      const s = await storedOf(conn, store, io, name);
      for (const id of updated) assert.deepEqual(s.rows.get(id), { id, rowId: l0.get(id)!.rowId, seq: null }, `${name}: updated row ${id}`);
      for (const id of [20, 21]) assert.deepEqual(s.rows.get(id), { id, rowId: null, seq: null }, `${name}: inserted row ${id}`);
      if (mode === 'copy-on-write') {
        // Both files held a matched row: both replaced by the rewrite, which stores every row's lineage.
        assert.equal(s.filesWithColumns, s.files, `${name}: every live file is the rewrite's`);
        for (const id of [0, 4, 5, 7]) assert.deepEqual(s.rows.get(id), { id, rowId: l0.get(id)!.rowId, seq: l0.get(id)!.seq }, `${name}: copied row ${id}`);
      } else {
        // Untouched rows stay in their old files (no lineage stored there); 2 was not rewritten.
        assert.deepEqual(s.rows.get(2), { id: 2, rowId: null, seq: null }, `${name}: unchanged row 2 stays in its old file`);
      }
    }
  });

  test("columns named filename and _row_id: the table's own, lineage still kept (stored under another name, the reserved id)", async () => {
    const { store, io } = ctx;
    await createTableFromDefinitions(ctx, 'c3', 'id INTEGER, filename VARCHAR, "_row_id" INTEGER', { properties: { 'format-version': '3' } });
    await executeWrite(`INSERT INTO c3 SELECT i::INTEGER, 'f' || i, (i * 100)::INTEGER FROM range(0, 4) r(i)`, ctx);
    await executeWrite('DELETE FROM c3 WHERE id = 1', ctx);
    const { scan } = await live(store, io, 'c3');
    const sql = buildIcebergReadSql(scan, ['id', 'filename', '_row_id', '__puffin_row_id']);
    assert.deepEqual((await conn.runAndReadAll(`SELECT * FROM (${sql}) ORDER BY id`)).getRowsJson(), [[0, 'f0', 0, '0'], [2, 'f2', 200, '2'], [3, 'f3', 300, '3']]);
    const s = await storedOf(conn, store, io, 'c3');
    assert.deepEqual(s.rows.get(3), { id: 3, rowId: 3, seq: 1 });
  });

  test('v2 tables: rewritten files carry no lineage columns', async () => {
    const { store, io } = ctx;
    await createTableFromDefinitions(ctx, 'l2', 'id INTEGER, v VARCHAR');
    await executeWrite(`INSERT INTO l2 SELECT i::INTEGER, 'a' || i FROM range(0, 4) r(i)`, ctx);
    await executeWrite(`INSERT INTO l2 SELECT i::INTEGER, 'b' || i FROM range(4, 8) r(i)`, ctx);
    await executeWrite('DELETE FROM l2 WHERE id = 1', ctx);
    await executeWrite(`UPDATE l2 SET v = 'x' WHERE id = 5`, ctx);
    await executeWrite(`MERGE INTO l2 USING (SELECT 2 AS id) s ON l2.id = s.id WHEN MATCHED THEN UPDATE SET v = 'm' WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'n')`, ctx);
    await rewriteDataFiles(ctx, 'l2');
    const s = await storedOf(conn, store, io, 'l2');
    assert.equal(s.filesWithColumns, 0);
    assert.equal(s.rows.size, 7);
  });

  test("a fragment carries its files' first_row_id and its write's lineage flag across the wire", () => {
    const file = { path: 'p', format: 'parquet', sequenceNumber: 3, partition: {}, readSchema: [], deletes: [] };
    assert.equal(decodeIcebergFile('f', { ...file, firstRowId: 42 }).firstRowId, 42);
    assert.equal('firstRowId' in decodeIcebergFile('f', file), false);
    const fragment = { id: 'f0', output: 'w', inputs: [], sql: 'SELECT 1', write: { table: 't', metadataLocation: 'file:///m.json', lineage: true } };
    assert.equal(decodeFragment('fragment', fragment).write?.lineage, true);
    assert.throws(() => decodeFragment('fragment', { ...fragment, write: { ...fragment.write, lineage: 'yes' } }), /lineage/);
  });

  test('markUpdatedRows: every UPDATE SET also nulls the sequence number, and DuckDB runs the MERGE', async () => {
    const clauses = `ON t.id = s.id WHEN MATCHED AND s.v = 'UPDATE SET' THEN DELETE WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)`;
    const marked = markUpdatedRows(clauses);
    assert.equal(marked.match(/__puffin_last_updated_seq/g)?.length, 1, 'the string literal is left alone');
    await conn.run(`CREATE TEMP TABLE mt AS SELECT * FROM (VALUES (1, 'a', 10::BIGINT, 1::BIGINT), (2, 'b', 11, 1)) x(id, v, __puffin_row_id, __puffin_last_updated_seq)`);
    await conn.run(`CREATE TEMP TABLE ms AS SELECT * FROM (VALUES (2, 'B'), (3, 'C')) x(id, v)`);
    await conn.run(`MERGE INTO mt AS t USING ms AS s ${marked}`);
    const rows = (await conn.runAndReadAll('SELECT * FROM mt ORDER BY id')).getRowsJson();
    assert.deepEqual(rows, [[1, 'a', '10', '1'], [2, 'B', '11', null], [3, 'C', null, null]]);
  });
});

describe('v3 row lineage of rewritten rows (cluster fragments)', () => {
  let dir: WriterFixture;
  let engine: Engine;
  let cluster: LocalCluster;
  let catalog: WarehouseCatalog;

  before(async () => {
    dir = await writerFixture('puffindb-v3-lineage-cluster-');
    engine = await Engine.create({ threads: 1 });
    mkdirSync(join(dir.dir, 'warehouse'), { recursive: true });
    catalog = await WarehouseCatalog.open(join(dir.dir, 'home', 'catalog'), engine);
    const settings = loadSettings({ PUFFINDB_HOME: join(dir.dir, 'home'), PUFFINDB_WAREHOUSE: join(dir.dir, 'warehouse'), PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
    cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  });
  after(async () => {
    await cluster?.close();
    engine?.close();
    await dir?.close();
  });

  test('DELETE and UPDATE rewritten by fragments keep the rows\' ids; v2 files get no lineage', async () => {
    const store = catalog.pointers!;
    const io = localTableIO();
    for (const [name, v3] of [['f3', true], ['f2', false]] as const) {
      await cluster.query(`CREATE TABLE ${name} (id INTEGER, v VARCHAR)${v3 ? ` WITH ('format-version' = '3')` : ''}`);
      await cluster.query(`INSERT INTO ${name} VALUES (0, 'a'), (1, 'b'), (2, 'c')`);
      await cluster.query(`INSERT INTO ${name} VALUES (3, 'd'), (4, 'e'), (5, 'f')`);
      const l0 = v3 ? await lineageOf(dir.conn, store, io, name) : undefined;
      await cluster.query(`DELETE FROM ${name} WHERE id = 1`);
      await cluster.query(`UPDATE ${name} SET v = 'x' WHERE id IN (0, 4)`);
      const s = await storedOf(dir.conn, store, io, name);
      assert.equal(s.rows.size, 5);
      if (!v3) {
        assert.equal(s.filesWithColumns, 0, 'v2: no lineage columns');
        continue;
      }
      const { seq } = await seqOf(store, io, name);
      const l1 = await lineageOf(dir.conn, store, io, name);
      assertKept(l0!, l1, new Set([0, 4]), seq);
      assert.equal(s.filesWithColumns, s.files, 'every rewritten file stores lineage');
      assert.deepEqual(s.rows.get(4), { id: 4, rowId: l0!.get(4)!.rowId, seq: null });
      assert.deepEqual(s.rows.get(5), { id: 5, rowId: l0!.get(5)!.rowId, seq: l0!.get(5)!.seq });
    }
  });
});
