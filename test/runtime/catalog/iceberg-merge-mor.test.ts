// MERGE INTO with write.merge.mode = merge-on-read: matched rows deleted or updated get position
// deletes, changed and inserted rows are appended, no data file is rewritten, one row-delta
// snapshot; rows checked against plain DuckDB's MERGE of the same data. Cardinality check,
// and MERGE vs a concurrent DELETE (deterministic race through the pointer store).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../../runtime/errors.ts';
import { executeWrite, type WritePlannerContext } from '../../../runtime/planner/write-planner.ts';
import { writerFixture, type WriterFixture } from './iceberg/fixtures.ts';
import { buildIcebergReadSql, planTableScan } from '../../../runtime/catalog/iceberg/index.ts';
import { loadTable } from '../../../runtime/catalog/iceberg/commit.ts';
import { expandStars } from '../../../runtime/catalog/iceberg/merge.ts';

let fx: WriterFixture;
let conn: DuckDBConnection;
let ctx: WritePlannerContext;

before(async () => {
  fx = await writerFixture('puffindb-merge-mor-');
  ({ conn, ctx } = fx);
});
after(() => fx?.close());

async function files(name: string) {
  const t = await loadTable(ctx.store, name, ctx.io);
  const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io: ctx.io });
  return { t, scan, data: new Set(scan.dataFiles.map((f) => f.path)), deletes: new Set(scan.dataFiles.flatMap((f) => f.deletes.map((d) => d.path))) };
}

async function icebergRows(name: string): Promise<string> {
  const { scan } = await files(name);
  return JSON.stringify((await conn.runAndReadAll(`SELECT * FROM (${buildIcebergReadSql(scan)}) ORDER BY ALL`)).getRowsJson());
}

async function plainRows(name: string): Promise<string> {
  return JSON.stringify((await conn.runAndReadAll(`SELECT * FROM ${name} ORDER BY ALL`)).getRowsJson());
}

/** Run on the Iceberg table `name` and on the plain DuckDB table `ref_name`. */
async function both(name: string, sql: string): Promise<number> {
  const r = await executeWrite(sql, ctx);
  const plain = (await conn.runAndReadAll(sql.replace(new RegExp(`\\b${name}\\b`, 'g'), `ref_${name}`))).getRowsJson();
  if (/^\s*MERGE/i.test(sql)) assert.equal(r.rowsAffected, Number(plain[0]?.[0] ?? 0), `rows affected: ${sql}`);
  assert.equal(await icebergRows(name), await plainRows(`ref_${name}`), sql);
  return r.rowsAffected;
}

async function setup(name: string, select: string, props: string): Promise<void> {
  await executeWrite(`CREATE TABLE ${name} PARTITIONED BY (k) AS ${select}`, ctx);
  await conn.run(`CREATE TABLE ref_${name} AS ${select}`);
  await executeWrite(`ALTER TABLE ${name} SET (${props})`, ctx);
}

describe('MERGE INTO, merge-on-read', () => {
  test('UPDATE / DELETE / INSERT clauses write position deletes, rewrite no data file, and match plain DuckDB', async () => {
    await setup('m1', "SELECT i::INTEGER AS id, 'v' || i AS v, (i % 3)::INTEGER AS k FROM range(0, 300) t(i)", "'write.merge.mode' = 'merge-on-read'");
    const before = await files('m1');
    const m = "MERGE INTO m1 AS t USING (SELECT i::INTEGER AS id, 'n' || i AS v FROM range(250, 350) r(i)) AS s ON t.id = s.id " +
      "WHEN MATCHED AND t.id % 5 = 0 THEN DELETE WHEN MATCHED AND t.id % 5 = 1 THEN UPDATE SET v = s.v WHEN MATCHED AND t.id % 5 = 2 THEN UPDATE SET v = t.v " +
      'WHEN NOT MATCHED THEN INSERT (id, v, k) VALUES (s.id, s.v, s.id % 3)';
    const n = await both('m1', m);
    assert.equal(n, 30 + 50, 'matched rows a clause acted on, and inserts');
    const afterMerge = await files('m1');
    for (const f of before.data) assert.ok(afterMerge.data.has(f), 'no data file rewritten');
    assert.ok(afterMerge.deletes.size > 0 && afterMerge.deletes.size <= before.data.size, `one delete file per touched data file: ${afterMerge.deletes.size} for ${before.data.size}`);
    for (const d of afterMerge.deletes) assert.ok(d.startsWith(`${afterMerge.t.metadata.location}/data/`), d);
    const snap = afterMerge.t.metadata.snapshots.find((s) => s.snapshotId === afterMerge.t.metadata.currentSnapshotId)!;
    assert.equal(snap.summary.operation, 'overwrite');
    assert.equal(snap.summary['puffindb.operation'], 'merge');
    // 10 deleted + 10 updated (ids 250..299: %5 = 0 and 1); the 10 set to their own value are untouched.
    assert.equal(snap.summary['added-position-deletes'], '20');
    assert.equal(snap.summary['added-records'], String(10 + 50));
    assert.equal(afterMerge.t.metadata.snapshots.length, before.t.metadata.snapshots.length + 1, 'one snapshot');
  });

  test('over prior delete files (DELETE / UPDATE merge-on-read, then MERGE twice), with UPDATE SET * and INSERT *', async () => {
    await setup('m2', "SELECT i::INTEGER AS id, i * 10 AS v, (i % 2)::INTEGER AS k FROM range(0, 200) t(i)",
      "'write.merge.mode' = 'merge-on-read', 'write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read'");
    await both('m2', 'DELETE FROM m2 WHERE id % 7 = 0');
    await both('m2', 'UPDATE m2 SET v = -v WHERE id BETWEEN 50 AND 80');
    assert.ok((await files('m2')).deletes.size > 0, 'the table carries position deletes');
    const src = '(SELECT i::INTEGER AS id, (i * 100)::BIGINT AS v, (i % 2)::INTEGER AS k FROM range(60, 260) r(i))';
    await both('m2', `MERGE INTO m2 AS t USING ${src} AS s ON t.id = s.id WHEN MATCHED AND t.v < 0 THEN DELETE WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED AND s.id % 3 = 0 THEN INSERT *`);
    // Rows the previous MERGE wrote (in new data files) and rows under two delete files.
    await both('m2', 'MERGE INTO m2 USING (SELECT i::INTEGER AS id FROM range(0, 300, 4) r(i)) s ON m2.id = s.id WHEN MATCHED THEN UPDATE SET v = m2.v + 1 WHEN NOT MATCHED BY SOURCE AND m2.id > 240 THEN DELETE');
    // Inserts only: a row delta without delete files.
    await both('m2', 'MERGE INTO m2 USING (SELECT 1000 AS id) s ON m2.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, 7, 1)');
    // Nothing matched and nothing inserted: no commit.
    const pointer = await ctx.store.get('m2');
    assert.equal(await both('m2', 'MERGE INTO m2 USING (SELECT -1 AS id) s ON m2.id = s.id WHEN MATCHED THEN DELETE'), 0);
    assert.equal(await ctx.store.get('m2'), pointer);
  });

  test('a target row matched by several source rows is an error, nothing written', async () => {
    await setup('m3', 'SELECT i::INTEGER AS id, i AS v, 0 AS k FROM range(0, 10) t(i)', "'write.merge.mode' = 'merge-on-read'");
    const pointer = await ctx.store.get('m3');
    const { t } = await files('m3');
    await assert.rejects(
      executeWrite('MERGE INTO m3 AS t USING (SELECT 3 AS id UNION ALL SELECT 3) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 0', ctx),
      (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /cardinality violation/.test(err.message),
    );
    await assert.rejects(
      executeWrite('MERGE INTO m3 AS t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * ', ctx),
      (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /source columns/.test(err.message),
    );
    assert.equal(await ctx.store.get('m3'), pointer);
    const { readdir } = await import('node:fs/promises');
    const dataDir = new URL(`${t.metadata.location}/data/`);
    const listed = await readdir(dataDir, { recursive: true });
    assert.ok(!listed.some((f) => f.endsWith('-deletes.parquet')), 'no delete file left behind');
  });

  test('MERGE vs concurrent commits: a DELETE conflicts, an append conflicts only when the ON condition matches its rows', async () => {
    await setup('m4', 'SELECT i::INTEGER AS id, i AS v, (i % 2)::INTEGER AS k FROM range(0, 100) t(i)', "'write.merge.mode' = 'merge-on-read', 'write.delete.mode' = 'merge-on-read'");
    // The DELETE commits right before the MERGE's first pointer swap.
    const racing = (sql: string): WritePlannerContext => {
      let fired = false;
      const store = Object.create(ctx.store) as typeof ctx.store;
      store.compareAndSwap = async (name, expected, next) => {
        if (!fired) {
          fired = true;
          await executeWrite(sql, ctx);
        }
        return ctx.store.compareAndSwap(name, expected, next);
      };
      return { ...ctx, store };
    };
    // Matches even ids only (partition k = 0); the DELETE deletes in the same file.
    const merge = 'MERGE INTO m4 AS t USING (SELECT i::INTEGER AS id FROM range(0, 40, 2) r(i)) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = -t.v';
    const pointer = await ctx.store.get('m4');
    await assert.rejects(executeWrite(merge, racing('DELETE FROM m4 WHERE id = 10')), (err: unknown) => err instanceof PuffinError && err.code === 'conflict');
    await conn.run('DELETE FROM ref_m4 WHERE id = 10');
    assert.notEqual(await ctx.store.get('m4'), pointer);
    assert.equal(await icebergRows('m4'), await plainRows('ref_m4'), 'only the DELETE committed');
    // A concurrent append: of a row the ON condition matches conflicts (serializable), of another commits.
    const before = await ctx.store.get('m4');
    await assert.rejects(executeWrite(merge, racing('INSERT INTO m4 VALUES (200, 0, 0), (10, 10, 0)')), (err: unknown) => err instanceof PuffinError && err.code === 'conflict');
    assert.notEqual(await ctx.store.get('m4'), before);
    await conn.run('INSERT INTO ref_m4 VALUES (200, 0, 0), (10, 10, 0)');
    await executeWrite(merge, racing('INSERT INTO m4 VALUES (201, 1, 1)'));
    await conn.run('INSERT INTO ref_m4 VALUES (201, 1, 1)');
    await conn.run(merge.replace('m4', 'ref_m4'));
    assert.equal(await icebergRows('m4'), await plainRows('ref_m4'));
  });

  test('upgraded to v3 over v2 position deletes: MERGE writes deletion vectors holding the old positions, then a concurrent DELETE conflicts', async () => {
    await setup('m5', 'SELECT i::INTEGER AS id, i AS v, (i % 2)::INTEGER AS k FROM range(0, 100) t(i)', "'write.merge.mode' = 'merge-on-read'");
    await both('m5', 'MERGE INTO m5 USING (SELECT i::INTEGER AS id FROM range(0, 100, 9) r(i)) s ON m5.id = s.id WHEN MATCHED THEN DELETE');
    assert.ok([...(await files('m5')).deletes].every((d) => d.endsWith('-deletes.parquet')), 'v2: position delete files');
    await executeWrite("ALTER TABLE m5 SET ('format-version' = '3')", ctx);
    await both('m5', 'MERGE INTO m5 AS t USING (SELECT i::INTEGER AS id FROM range(50, 130, 4) r(i)) s ON t.id = s.id WHEN MATCHED AND t.id % 3 = 0 THEN DELETE WHEN MATCHED THEN UPDATE SET v = -t.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.id, s.id % 2)');
    const after = await files('m5');
    assert.equal(after.t.metadata.formatVersion, 3);
    for (const f of after.scan.dataFiles) {
      const dv = f.deletes.filter((d) => d.format === 'puffin');
      assert.ok(dv.length <= 1, 'one vector per data file');
      // A file with a vector reads by it alone (the vector holds the position files' positions too).
      if (dv.length) assert.ok(dv[0].referencedDataFile === f.path);
    }
    assert.ok(after.scan.dataFiles.some((f) => f.deletes.some((d) => d.format === 'puffin')), 'deletion vectors written');
    assert.ok(after.t.metadata.nextRowId !== undefined && after.t.metadata.nextRowId >= 100n, `next-row-id ${after.t.metadata.nextRowId}`);
    // The v3 MERGE's row delta keeps the concurrency rules: a DELETE in the same file commits first, the MERGE conflicts.
    let fired = false;
    const store = Object.create(ctx.store) as typeof ctx.store;
    store.compareAndSwap = async (name, expected, next) => {
      if (!fired) {
        fired = true;
        await executeWrite('DELETE FROM m5 WHERE id = 10', ctx);
      }
      return ctx.store.compareAndSwap(name, expected, next);
    };
    await executeWrite("ALTER TABLE m5 SET ('write.delete.mode' = 'merge-on-read')", ctx);
    await assert.rejects(
      executeWrite('MERGE INTO m5 AS t USING (SELECT i::INTEGER AS id FROM range(0, 40, 2) r(i)) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 0', { ...ctx, store }),
      (err: unknown) => err instanceof PuffinError && err.code === 'conflict',
    );
    await conn.run('DELETE FROM ref_m5 WHERE id = 10');
    assert.equal(await icebergRows('m5'), await plainRows('ref_m5'), 'only the DELETE committed');
  });

  test('expandStars spells out SET * and INSERT * outside strings', () => {
    assert.equal(
      expandStars("ON t.a = s.x WHEN MATCHED AND s.y <> 'INSERT *' THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *", ['a', 'b'], 's', ['x', 'y']),
      `ON t.a = s.x WHEN MATCHED AND s.y <> 'INSERT *' THEN UPDATE SET "a" = "s"."x", "b" = "s"."y" WHEN NOT MATCHED THEN INSERT ("a", "b") VALUES ("s"."x", "s"."y")`,
    );
    assert.equal(expandStars('ON t.a = s.x WHEN NOT MATCHED THEN insert  values (s.x, 1)', ['a', 'b'], 's', ['x']), 'ON t.a = s.x WHEN NOT MATCHED THEN INSERT ("a", "b") VALUES (s.x, 1)');
    assert.equal(expandStars('ON t.a = s.x WHEN NOT MATCHED THEN INSERT (b) VALUES (s.x)', ['a', 'b'], 's', ['x']), 'ON t.a = s.x WHEN NOT MATCHED THEN INSERT (b) VALUES (s.x)');
  });
});
