// MERGE INTO run in the fragments (runtime/exec/merge-fragments.ts, copy-on-write): through a
// LocalCluster of in-process workers and three fragments, each statement checked against
// plain DuckDB's MERGE on the same rows (its count and the table's rows).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadTable } from '../../../runtime/catalog/iceberg/commit.ts';
import { buildIcebergReadSql } from '../../../runtime/catalog/iceberg/read.ts';
import { planTableScan } from '../../../runtime/catalog/iceberg/scan.ts';
import { uriTableIO } from '../../../runtime/catalog/iceberg/writer-io.ts';
import type { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import type { LocalCluster } from '../../../runtime/exec/cluster.ts';
import type { QueryOutcome } from '../../../runtime/exec/query-service.ts';
import { decodeFragment } from '../../../runtime/exec/wire.ts';
import type { MergeFragmentsOutcome, MergeFragmentsRequest } from '../../../runtime/catalog/iceberg/merge.ts';
import { executeWrite, type WritePlannerContext } from '../../../runtime/planner/write-planner.ts';
import { assertSameResult } from '../../helpers/compare.ts';
import { openWarehouseCluster, type WarehouseCluster } from '../../helpers/warehouse-cluster.ts';

let dir: string;
let warehouse: string;
let engine: Engine;
let reference: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;

let opened: WarehouseCluster;

before(async () => {
  opened = await openWarehouseCluster('puffin-merge-dist-', { PUFFINDB_MAX_FRAGMENTS: '3' }, 2);
  ({ dir, warehouse, engine, catalog, cluster } = opened);
  reference = await Engine.create({ threads: 2 });
});

after(async () => {
  await opened?.close();
  reference?.close();
});

/** The statement on the Iceberg table and on the plain one; the counts agree. */
async function both(sql: string, referenceSql = sql): Promise<QueryOutcome> {
  const got = await cluster.query(sql);
  const want = await reference.query(referenceSql);
  if (/^\s*MERGE/i.test(sql)) assert.equal(got.rows[0][2], String(want.rows[0][0]), `rows affected: ${sql}`);
  return got;
}

async function same(table: string, label: string): Promise<void> {
  const q = `SELECT * FROM ${table}`;
  assertSameResult(await cluster.query(q), await reference.query(q), {}, `${label} ${table}`);
}

/** id -> (_row_id, _last_updated_sequence_number) of a v3 table's live rows, by the read side. */
async function lineageOf(table: string): Promise<Map<number, { rowId: number; seq: number }>> {
  const io = uriTableIO();
  const t = await loadTable(catalog.pointers!, table, io);
  const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io });
  const sql = buildIcebergReadSql(scan, ['id', '_row_id', '_last_updated_sequence_number']);
  const rows = (await engine.query(`SELECT * FROM (${sql})`)).rows;
  return new Map(rows.map((r) => [Number(r[0]), { rowId: Number(r[1]), seq: Number(r[2]) }]));
}

/** Data and delete files under a table's data directory. */
function dataFiles(table: string): string[] {
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));
  return walk(join(warehouse, table, 'data'));
}

describe('MERGE INTO in the fragments (copy-on-write)', () => {
  test('UPDATE / DELETE / INSERT mixes, conditions, stars, BY SOURCE and no-match sources equal plain DuckDB', async () => {
    await both("CREATE TABLE tgt AS SELECT i AS id, i % 7 AS v, 'a' || i AS tag FROM range(0, 40) t(i)");
    // Several files, so a MERGE touches some of them, over several fragments.
    for (const [lo, hi] of [[40, 80], [80, 120], [120, 160], [160, 200]]) await both(`INSERT INTO tgt SELECT i, i % 7, 'b' || i FROM range(${lo}, ${hi}) t(i)`);
    await both("CREATE TABLE src AS SELECT i AS id, i % 13 AS v, 's' || i AS tag FROM range(30, 230, 3) t(i)");

    const first = await both("MERGE INTO tgt USING src ON tgt.id = src.id WHEN MATCHED AND src.v > 8 THEN UPDATE SET v = src.v, tag = 'u' WHEN MATCHED AND src.v < 2 THEN DELETE WHEN NOT MATCHED AND src.id % 2 = 0 THEN INSERT VALUES (src.id, src.v, 'ins')");
    assert.ok(first.plan.fragments.length > 1, `fragments: ${first.plan.fragments.length}`);
    assert.ok(first.stats.fragments > 1 && first.stats.bytesScanned > 0, JSON.stringify(first.stats));
    assert.match(first.plan.reason, /distributed/);
    await same('tgt', 'after UPDATE/DELETE/INSERT');

    const merges = [
      'MERGE INTO tgt AS t USING src AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *',
      // DuckDB's positional UPDATE / INSERT without a list, DO NOTHING, a CASE inside a clause.
      "MERGE INTO tgt AS t USING (SELECT id + 1 AS id, v, tag FROM src) AS s ON t.id = s.id WHEN MATCHED AND s.v = 0 THEN DO NOTHING WHEN MATCHED AND s.v < 6 THEN UPDATE WHEN MATCHED THEN UPDATE SET tag = CASE WHEN s.v > 10 THEN 'big' ELSE 'small' END WHEN NOT MATCHED THEN INSERT",
      "MERGE INTO tgt t USING (SELECT i AS id FROM range(50, 70) r(i)) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = -1 WHEN NOT MATCHED BY SOURCE AND t.id > 190 THEN DELETE WHEN NOT MATCHED BY SOURCE AND t.id < 5 THEN UPDATE SET tag = 'orphan'",
      // INSERT clauses only, some source rows matching: nothing is rewritten.
      "MERGE INTO tgt AS t USING (SELECT i AS id, 1 AS v, 'n' AS tag FROM range(180, 260, 2) r(i)) s ON t.id = s.id WHEN NOT MATCHED AND s.id % 4 = 0 THEN INSERT *",
      // A source matching nothing: only inserts; column aliases on the source.
      "MERGE INTO tgt AS t USING (VALUES (1001, 'x'), (1002, 'y')) AS s(id, tag) ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT (id, tag) VALUES (s.id, s.tag)",
    ];
    for (const m of merges) {
      await both(m);
      await same('tgt', m);
    }
    const before = await catalog.pointers.get('tgt');
    const none = await both('MERGE INTO tgt USING (SELECT -5 AS id) s ON tgt.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED AND s.id > 0 THEN INSERT (id) VALUES (s.id)');
    assert.equal(none.rows[0][3], null);
    assert.equal(await catalog.pointers.get('tgt'), before, 'nothing changed: no commit');
  });

  test('a target row matched by two source rows fails the statement before anything is written', async () => {
    await both('CREATE TABLE card AS SELECT i AS id, i AS v FROM range(0, 30) t(i)');
    await both('INSERT INTO card SELECT i, i FROM range(30, 60) t(i)');
    const before = await catalog.pointers.get('card');
    const files = dataFiles('card');
    await assert.rejects(cluster.query('MERGE INTO card AS t USING (SELECT 45 AS id UNION ALL SELECT 45 UNION ALL SELECT 3) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 0 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1)'), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'bad_request', err.message);
      assert.match(err.message, /matches 2 source rows .*cardinality violation/);
      return true;
    });
    assert.equal(await catalog.pointers.get('card'), before);
    assert.deepEqual(dataFiles('card').sort(), files.sort(), 'no data file written');
    // DuckDB's ERROR action, raised in a fragment, fails the statement too.
    await assert.rejects(cluster.query("MERGE INTO card AS t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN ERROR 'boom'"), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'bad_request', err.message);
      assert.match(err.message, /boom/);
      return true;
    });
    assert.equal(await catalog.pointers.get('card'), before);
    await same('card', 'after the refused MERGE');
  });

  test('a partitioned table: rows move between partitions', async () => {
    await cluster.query("CREATE TABLE part PARTITIONED BY (region) AS SELECT i AS id, ['n', 's', 'e'][i % 3 + 1] AS region, i AS v FROM range(0, 90) t(i)");
    await reference.exec("CREATE TABLE part AS SELECT i AS id, ['n', 's', 'e'][i % 3 + 1] AS region, i AS v FROM range(0, 90) t(i)");
    const got = await both("MERGE INTO part AS p USING (SELECT i AS id, 'w' AS region FROM range(0, 100, 4) t(i)) s ON p.id = s.id WHEN MATCHED AND p.region = 'n' THEN UPDATE SET region = s.region WHEN MATCHED AND p.region = 's' THEN DELETE WHEN NOT MATCHED THEN INSERT (id, region, v) VALUES (s.id, s.region, -1)");
    assert.ok(got.plan.fragments.length > 1);
    await same('part', 'partitioned');
  });

  test('a v3 table', async () => {
    await cluster.query("CREATE TABLE v3t WITH ('format-version' = '3') AS SELECT i AS id, i * 2 AS v FROM range(0, 50) t(i)");
    await cluster.query('INSERT INTO v3t SELECT i, i * 2 FROM range(50, 100) t(i)');
    await reference.exec('CREATE TABLE v3t AS SELECT i AS id, i * 2 AS v FROM range(0, 100) t(i)');
    const lineageBefore = await lineageOf('v3t');
    await both('MERGE INTO v3t USING (SELECT i AS id FROM range(40, 140, 5) t(i)) s ON v3t.id = s.id WHEN MATCHED THEN UPDATE SET v = 0 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 7)');
    await same('v3t', 'v3');
    const t = await loadTable(catalog.pointers, 'v3t', uriTableIO());
    assert.equal(t.metadata.formatVersion, 3);
    // Row lineage: every surviving row keeps its _row_id; updated rows take the commit's
    // sequence number, the others keep theirs; inserted rows get fresh ids.
    const lineageAfter = await lineageOf('v3t');
    const seq = Number(t.metadata.lastSequenceNumber);
    const oldIds = new Set([...lineageBefore.values()].map((l) => l.rowId));
    for (const [id, l] of lineageAfter) {
      const was = lineageBefore.get(id);
      if (!was) {
        assert.ok(!oldIds.has(l.rowId) && l.seq === seq, `inserted row ${id}: ${JSON.stringify(l)}`);
        continue;
      }
      assert.equal(l.rowId, was.rowId, `row ${id} keeps its _row_id`);
      assert.equal(l.seq, id >= 40 && id % 5 === 0 ? seq : was.seq, `row ${id}'s _last_updated_sequence_number`);
    }
    assert.equal(new Set([...lineageAfter.values()].map((l) => l.rowId)).size, lineageAfter.size, 'row ids are unique');
    // DuckDB's positional UPDATE, spelled out over the lineage columns.
    await both('MERGE INTO v3t AS t USING (SELECT i AS id, -i AS v FROM range(0, 30, 3) r(i)) s ON t.id = s.id WHEN MATCHED AND s.id > 10 THEN UPDATE WHEN MATCHED THEN UPDATE BY NAME');
    await same('v3t', 'v3 positional UPDATE');
    const ids = await lineageOf('v3t');
    for (const id of [0, 3, 27]) assert.equal(ids.get(id)?.rowId, lineageBefore.get(id)?.rowId);
  });

  test('an empty table takes the inserts; a write fragment\'s setup statements cross the wire', async () => {
    await both('CREATE TABLE empty_t (id INTEGER, v VARCHAR)');
    await both("MERGE INTO empty_t AS t USING (SELECT i AS id FROM range(0, 5) r(i)) s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'e')");
    await same('empty_t', 'empty target');
    const fragment = { id: 'w0', output: '__written', inputs: [], sql: 'SELECT 1', write: { table: 't', metadataLocation: 'file:///m.json', setup: ['CREATE TEMP TABLE w AS SELECT 1', 'SELECT 2'] } };
    assert.deepEqual(decodeFragment('f', JSON.parse(JSON.stringify(fragment))).write, fragment.write);
    assert.throws(() => decodeFragment('f', { ...fragment, write: { ...fragment.write, setup: ['ok', 3] } }), (err: { code?: string; message: string }) => err.code === 'bad_request' && /f\.write\.setup/.test(err.message));
  });

  test('INSERT clauses only: a concurrent rewrite of a file holding a matched row conflicts, and the inserted files go', async () => {
    await both('CREATE TABLE cm AS SELECT i AS id, i AS v FROM range(0, 30) t(i)');
    await both('INSERT INTO cm SELECT i, i FROM range(30, 60) t(i)');
    // The cluster's own hook, with a DELETE committed between the fragments' work and the MERGE's commit.
    const hook = cluster as unknown as { mergeInFragments(r: MergeFragmentsRequest, queryId: string, o: object): Promise<{ outcome: MergeFragmentsOutcome }> };
    let afterDelete: string[] = [];
    const stagingDir = mkdtempSync(join(dir, 'staging-'));
    const conn = await engine.connect();
    const ctx: WritePlannerContext = {
      conn, store: catalog.pointers!, io: uriTableIO(), stagingDir, warehouseUri: warehouse,
      mergeFiles: async (request) => {
        const { outcome } = await hook.mergeInFragments(request, 'cm-merge', {});
        assert.equal(outcome.removed.length, 0);
        assert.equal(outcome.candidates.length, 1);
        await cluster.query('DELETE FROM cm WHERE id = 57');
        afterDelete = dataFiles('cm');
        return outcome;
      },
    };
    try {
      await assert.rejects(executeWrite('MERGE INTO cm AS t USING (SELECT i AS id FROM range(55, 65) r(i)) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, 0)', ctx), (err: { code?: string }) => err.code === 'conflict');
    } finally {
      conn.closeSync();
    }
    assert.deepEqual(dataFiles('cm').sort(), afterDelete.sort(), 'the MERGE\'s inserted files were removed');
    await reference.exec('DELETE FROM cm WHERE id = 57');
    await same('cm', 'after the conflicting MERGE');
  });

  test('merge-on-read stays on the coordinator', async () => {
    await both('CREATE TABLE morm AS SELECT i AS id, i AS v FROM range(0, 20) t(i)');
    await cluster.query("ALTER TABLE morm SET ('write.merge.mode' = 'merge-on-read')");
    const got = await both('MERGE INTO morm USING (SELECT i AS id FROM range(10, 30) t(i)) s ON morm.id = s.id WHEN MATCHED THEN UPDATE SET v = 0 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1)');
    assert.equal(got.stats.fragments, 0);
    assert.equal(got.plan.fragments.length, 0);
    await same('morm', 'merge-on-read');
  });
});
