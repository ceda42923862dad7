import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../../runtime/errors.ts';
import { executeWrite, parseWrite, type WritePlannerContext } from '../../../runtime/planner/write-planner.ts';
import { writerFixture, type WriterFixture } from '../catalog/iceberg/fixtures.ts';
import { buildIcebergReadSql, openIcebergTable, planTableScan } from '../../../runtime/catalog/iceberg/index.ts';
import { loadTable } from '../../../runtime/catalog/iceberg/commit.ts';

describe('parseWrite', () => {
  test('recognizes each write statement and carves out its pieces', () => {
    assert.deepEqual(parseWrite(`-- make it\ncreate table if not exists "Sales".t (a INTEGER NOT NULL, "b c" VARCHAR) PARTITIONED BY (bucket(4, a), day(ts));`), {
      kind: 'create', table: 'Sales.t', ifNotExists: true, definitions: 'a INTEGER NOT NULL, "b c" VARCHAR', partitionBy: 'bucket(4, a), day(ts)',
    });
    assert.deepEqual(parseWrite(`CREATE TABLE t2 PARTITIONED BY (k) AS SELECT 1 AS k`), { kind: 'ctas', table: 't2', ifNotExists: false, select: 'SELECT 1 AS k', partitionBy: 'k' });
    assert.deepEqual(parseWrite(`INSERT INTO t (b, a) VALUES ('x', 1), ('y)', 2)`), { kind: 'insert', table: 't', columns: ['b', 'a'], select: `VALUES ('x', 1), ('y)', 2)` });
    assert.deepEqual(parseWrite(`insert into t (select * from u)`), { kind: 'insert', table: 't', select: '(select * from u)' });
    assert.deepEqual(parseWrite(`INSERT INTO t WITH q AS (SELECT 1) SELECT * FROM q`), { kind: 'insert', table: 't', select: 'WITH q AS (SELECT 1) SELECT * FROM q' });
    assert.deepEqual(parseWrite(`DELETE FROM db.t WHERE a IN (SELECT 1 WHERE true)`), { kind: 'delete', table: 'db.t', where: 'a IN (SELECT 1 WHERE true)' });
    assert.deepEqual(parseWrite(`DELETE FROM t`), { kind: 'delete', table: 't' });
    assert.deepEqual(parseWrite(`UPDATE t SET a = a + 1, b = 'where, = x' WHERE a > (SELECT 2 WHERE 1 = 1)`), {
      kind: 'update', table: 't', assignments: [{ column: 'a', expression: 'a + 1' }, { column: 'b', expression: `'where, = x'` }], where: 'a > (SELECT 2 WHERE 1 = 1)',
    });
  });

  test('is undefined for reads and refuses what Iceberg tables cannot do, by name', () => {
    assert.equal(parseWrite('SELECT 1'), undefined);
    assert.equal(parseWrite('CREATE VIEW v AS SELECT 1'), undefined);
    assert.throws(() => parseWrite('CREATE OR REPLACE TABLE t AS SELECT 1'), /CREATE OR REPLACE/);
    assert.throws(() => parseWrite('INSERT OR REPLACE INTO t VALUES (1)'), /OR REPLACE/);
    assert.throws(() => parseWrite('UPDATE t SET a = u.a FROM u WHERE t.k = u.k'), /UPDATE \.\.\. FROM/);
    assert.throws(() => parseWrite('INSERT INTO t VALUES (1) RETURNING *'), /RETURNING/);
    assert.throws(() => parseWrite('DELETE FROM t USING u WHERE 1'), /only a WHERE/);
    assert.throws(() => parseWrite('CREATE TABLE t'), (err: unknown) => err instanceof PuffinError && err.code === 'syntax_error');
  });

  test('DDL and MERGE statements', () => {
    const alter = (sql: string) => {
      const w = parseWrite(sql);
      assert.ok(w?.kind === 'alter', sql);
      return w.action;
    };
    assert.deepEqual(alter('ALTER TABLE t ADD COLUMN IF NOT EXISTS "x y" DECIMAL(9, 2)'), { op: 'add_column', column: 'x y', definition: '"x y" DECIMAL(9, 2)', ifNotExists: true });
    assert.deepEqual(alter('alter table t drop c'), { op: 'drop_column', column: 'c', ifExists: false });
    assert.deepEqual(alter('ALTER TABLE t RENAME COLUMN a TO "B"'), { op: 'rename_column', column: 'a', to: 'B' });
    assert.deepEqual(alter('ALTER TABLE t RENAME TO db.u'), { op: 'rename_table', to: 'db.u' });
    assert.deepEqual(alter('ALTER TABLE t ALTER COLUMN a SET DATA TYPE DECIMAL(18, 2)'), { op: 'set_type', column: 'a', type: 'DECIMAL(18, 2)' });
    assert.deepEqual(alter('ALTER TABLE t ALTER a DROP NOT NULL'), { op: 'drop_not_null', column: 'a' });
    assert.deepEqual(alter('ALTER TABLE t SET PARTITIONED BY (bucket(4, a), day(ts))'), { op: 'set_partitioning', partitionBy: 'bucket(4, a), day(ts)' });
    assert.deepEqual(alter('ALTER TABLE t RESET PARTITIONED BY'), { op: 'set_partitioning', partitionBy: '' });
    assert.deepEqual(alter("ALTER TABLE t SET ('write.delete.mode' = 'merge-on-read', 'a.b' = 'it''s')"), { op: 'set_properties', properties: { 'write.delete.mode': 'merge-on-read', 'a.b': "it's" } });
    assert.deepEqual(parseWrite('ALTER TABLE IF EXISTS t DROP COLUMN IF EXISTS c'), { kind: 'alter', table: 't', ifExists: true, action: { op: 'drop_column', column: 'c', ifExists: true } });
    assert.throws(() => parseWrite('ALTER TABLE t ALTER COLUMN a TYPE BIGINT USING a::BIGINT'), /USING/);
    assert.throws(() => parseWrite('ALTER TABLE t ALTER COLUMN a SET DEFAULT 1'), /defaults/);
    assert.deepEqual(parseWrite('DROP TABLE IF EXISTS db.t PURGE'), { kind: 'drop', table: 'db.t', ifExists: true, purge: true });
    assert.equal(parseWrite('DROP VIEW v'), undefined);
    assert.deepEqual(parseWrite('TRUNCATE TABLE t'), { kind: 'truncate', table: 't' });
    assert.deepEqual(parseWrite('MERGE INTO db.t AS x USING (SELECT 1 AS id) s ON x.id = s.id WHEN MATCHED THEN DELETE'), {
      kind: 'merge', table: 'db.t', merge: { table: 'db.t', targetAlias: 'x', sourceSql: 'SELECT 1 AS id', sourceAlias: 's', clauses: 'ON x.id = s.id WHEN MATCHED THEN DELETE' },
    });
    assert.deepEqual(parseWrite('MERGE INTO t USING src ON t.id = src.id WHEN NOT MATCHED THEN INSERT *'), {
      kind: 'merge', table: 't', merge: { table: 't', targetAlias: 't', sourceSql: 'SELECT * FROM "src"', sourceAlias: 'src', clauses: 'ON t.id = src.id WHEN NOT MATCHED THEN INSERT *' },
    });
    const values = parseWrite("MERGE INTO t USING (VALUES (1, 'a')) AS s(id, v) ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v");
    assert.ok(values?.kind === 'merge' && values.merge.sourceColumns === 'id, v' && values.merge.sourceSql === "VALUES (1, 'a')");
    assert.throws(() => parseWrite('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING *'), /RETURNING/);
    assert.throws(() => parseWrite('MERGE INTO t USING s WHEN MATCHED THEN DELETE'), /expected ON/);
  });
});

describe('executeWrite', () => {
  let fx: WriterFixture;
    let conn: DuckDBConnection;
  let ctx: WritePlannerContext;

  before(async () => {
    fx = await writerFixture('puffindb-write-planner-');
    ({ conn, ctx } = fx);
  });
  after(() => fx?.close());

  async function rows(name: string): Promise<unknown[][]> {
    const scan = await planTableScan(await openIcebergTable((await ctx.store.get(name)) as string));
    return (await conn.runAndReadAll(`SELECT * FROM (${buildIcebergReadSql(scan)}) ORDER BY ALL`)).getRowsJson();
  }

  test('CREATE, INSERT (VALUES, column list, SELECT), CTAS, DELETE and UPDATE commit and read back', async () => {
    let r = await executeWrite(`CREATE TABLE trips (id INTEGER NOT NULL, city VARCHAR, fare DECIMAL(8,2), ts TIMESTAMP) PARTITIONED BY (city, month(ts))`, ctx);
    assert.deepEqual({ ...r, metadataLocation: undefined }, { operation: 'create', table: 'trips', rowsAffected: 0, snapshotId: null, metadataLocation: undefined });
    r = await executeWrite(`INSERT INTO trips VALUES (1, 'paris', 10.5, TIMESTAMP '2024-01-03 10:00'), (2, 'rome', 7.25, TIMESTAMP '2024-02-01 00:00')`, ctx);
    assert.equal(r.rowsAffected, 2);
    assert.match(String(r.snapshotId), /^\d+$/);
    r = await executeWrite(`INSERT INTO trips (fare, id) SELECT 1.0, 3`, ctx);
    assert.equal(r.rowsAffected, 1);
    assert.deepEqual(await rows('trips'), [
      [1, 'paris', '10.50', '2024-01-03 10:00:00'],
      [2, 'rome', '7.25', '2024-02-01 00:00:00'],
      [3, null, '1.00', null],
    ]);
    r = await executeWrite(`CREATE TABLE paris AS SELECT id, fare * 2 AS double_fare FROM trips WHERE city = 'paris'`, ctx);
    assert.deepEqual([r.operation, r.rowsAffected], ['ctas', 1]);
    assert.deepEqual(await rows('paris'), [[1, '21.00']]);
    r = await executeWrite(`UPDATE trips SET fare = fare + 1, city = 'lyon' WHERE id = 1`, ctx);
    assert.deepEqual([r.operation, r.rowsAffected], ['update', 1]);
    r = await executeWrite(`DELETE FROM trips WHERE city IS NULL`, ctx);
    assert.deepEqual([r.operation, r.rowsAffected], ['delete', 1]);
    assert.deepEqual(await rows('trips'), [
      [1, 'lyon', '11.50', '2024-01-03 10:00:00'],
      [2, 'rome', '7.25', '2024-02-01 00:00:00'],
    ]);
    const t = await loadTable(ctx.store, 'trips', ctx.io);
    assert.deepEqual(t.metadata.snapshots.map((s) => s.summary.operation), ['append', 'append', 'overwrite', 'overwrite']);
    r = await executeWrite(`CREATE TABLE IF NOT EXISTS trips (x INTEGER)`, ctx);
    assert.equal(r.rowsAffected, 0);
  });

  test('resolveSelect feeds INSERT from elsewhere (the coordinator can run the SELECT distributed)', async () => {
    const seen: string[] = [];
    const withResolver: WritePlannerContext = { ...ctx, resolveSelect: async (sql) => (seen.push(sql), `SELECT 10 + k AS id, 'x' AS note FROM range(3) r(k)`) };
    await executeWrite(`CREATE TABLE notes (id BIGINT, note VARCHAR)`, ctx);
    const r = await executeWrite(`INSERT INTO notes SELECT * FROM somewhere_remote`, withResolver);
    assert.equal(r.rowsAffected, 3);
    assert.deepEqual(seen, ['SELECT * FROM somewhere_remote']);
    assert.deepEqual(await rows('notes'), [['10', 'x'], ['11', 'x'], ['12', 'x']]);
  });

  test('bad statements fail naming the problem and change nothing', async () => {
    const before = await ctx.store.get('trips');
    await assert.rejects(executeWrite(`INSERT INTO trips (nope) VALUES (1)`, ctx), /table 'trips' has no column 'nope'/);
    await assert.rejects(executeWrite(`UPDATE trips SET nope = 1`, ctx), /no column 'nope'/);
    await assert.rejects(executeWrite(`DELETE FROM trips WHERE id = `, ctx), (err: unknown) => err instanceof PuffinError);
    await assert.rejects(executeWrite(`DELETE FROM trips WHERE id = 1) OR (true`, ctx), /unbalanced '\)'/);
    await assert.rejects(executeWrite(`DELETE FROM trips WHERE id = 1 /* /* */`, ctx), (err: unknown) => err instanceof PuffinError && err.code === 'syntax_error');
    await assert.rejects(executeWrite(`UPDATE trips SET fare = 1); SELECT (1`, ctx), (err: unknown) => err instanceof PuffinError && err.code === 'syntax_error');
    await assert.rejects(executeWrite(`INSERT INTO missing VALUES (1)`, ctx), (err: unknown) => err instanceof PuffinError && err.code === 'unknown_table');
    await assert.rejects(executeWrite(`CREATE TABLE trips (x INTEGER)`, ctx), (err: unknown) => err instanceof PuffinError && err.code === 'conflict');
    await assert.rejects(executeWrite(`CREATE TABLE iv (x INTERVAL)`, ctx), /column 'x' has DuckDB type INTERVAL/);
    await assert.rejects(executeWrite('SELECT 1', ctx), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported');
    assert.equal(await ctx.store.get('trips'), before);
    assert.equal(await ctx.store.get('iv'), undefined);
  });
});
