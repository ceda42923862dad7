// SQL writes through the local cluster: CREATE TABLE, CTAS from a Parquet table, INSERT,
// DELETE and UPDATE commit to Iceberg tables and read back through the same SQL path, with
// answers equal to plain DuckDB over the same rows.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { generateTpch } from '../../runtime/demo/tpch.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlStringList } from '../../runtime/sql/quote.ts';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import { assertSameResult } from '../helpers/compare.ts';
import { CountingInvoker } from '../helpers/control-plane.ts';

let dir: string;
let engine: Engine;
let reference: Engine;
let cluster: LocalCluster;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-writes-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse, { recursive: true });
  engine = await Engine.create({ threads: 2 });
  reference = await Engine.create({ threads: 2 });
  const tables = await generateTpch(engine, join(warehouse, 'tpch'), { scale: 0.01 });
  const catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  for (const t of tables.filter((x) => ['lineitem', 'orders'].includes(x.table))) {
    await catalog.addTable(t.table, join(warehouse, 'tpch', t.table));
    const files = readdirSync(join(warehouse, 'tpch', t.table)).filter((f) => f.endsWith('.parquet')).map((f) => join(warehouse, 'tpch', t.table, f));
    await reference.exec(`CREATE VIEW ${t.table} AS SELECT * FROM read_parquet(${sqlStringList(files)})`);
  }
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  reference?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function rows(sql: string) {
  return (await cluster.query(sql)).rows;
}

describe('SQL writes to Iceberg tables', () => {
  test('CREATE TABLE, INSERT VALUES, read back', async () => {
    const created = await cluster.query('CREATE TABLE events (id BIGINT, kind VARCHAR, amount DECIMAL(12,2), day DATE) PARTITIONED BY (kind)');
    assert.equal(created.plan.shape, 'write');
    assert.equal(created.rows[0][0], 'create');
    const inserted = await cluster.query(`INSERT INTO events VALUES (1, 'a', 1.50, DATE '2024-01-01'), (2, 'b', NULL, DATE '2024-01-02'), (3, 'a', 3.25, NULL)`);
    assert.equal(inserted.rows[0][2], '3');
    assert.deepEqual(await rows('SELECT id, kind, amount, day FROM events ORDER BY id'), [
      ['1', 'a', '1.50', '2024-01-01'], ['2', 'b', null, '2024-01-02'], ['3', 'a', '3.25', null],
    ]);
    assert.deepEqual(await rows("SELECT count(*) FROM events WHERE kind = 'a'"), [['2']]);
  });

  test('CTAS from a Parquet table reads back the same answers', async () => {
    const ctas = await cluster.query('CREATE TABLE li AS SELECT * FROM lineitem WHERE l_orderkey < 20000', { fragments: 3 });
    // Written where the fragments run: several write fragments, one commit.
    assert.equal(ctas.plan.shape, 'write');
    assert.ok(ctas.plan.fragments.length > 1 && ctas.plan.fragments.every((f) => f.write?.table === 'li'), ctas.plan.reason);
    assert.equal(ctas.stats.fragments, ctas.plan.fragments.length);
    const n = Number(ctas.rows[0][2]);
    assert.ok(n > 1000, `copied ${n} rows`);
    for (const q of [
      'SELECT count(*), sum(l_quantity), sum(l_extendedprice), min(l_shipdate), max(l_comment) FROM {t}',
      'SELECT l_returnflag, l_linestatus, count(*), avg(l_discount) FROM {t} GROUP BY ALL ORDER BY 1, 2',
    ]) {
      const got = await cluster.query(q.replace('{t}', 'li'));
      const want = await reference.query(q.replace('{t}', '(SELECT * FROM lineitem WHERE l_orderkey < 20000) AS x'));
      assertSameResult(got, want, { ordered: true }, q);
    }
  });

  test('INSERT ... SELECT appends, DELETE and UPDATE rewrite', async () => {
    const before = Number((await rows('SELECT count(*) FROM li'))[0][0]);
    const added = await cluster.query('INSERT INTO li SELECT * FROM lineitem WHERE l_orderkey BETWEEN 20000 AND 20100');
    const after1 = Number((await rows('SELECT count(*) FROM li'))[0][0]);
    assert.equal(after1, before + Number(added.rows[0][2]));

    const deleted = await cluster.query('DELETE FROM li WHERE l_quantity > 45');
    const want = await reference.query('SELECT count(*) FROM lineitem WHERE (l_orderkey < 20000 OR l_orderkey BETWEEN 20000 AND 20100) AND NOT (l_quantity > 45)');
    assert.deepEqual(await rows('SELECT count(*) FROM li'), want.rows);
    assert.equal(Number(deleted.rows[0][2]), after1 - Number(want.rows[0][0]));

    await cluster.query("UPDATE li SET l_comment = 'updated' WHERE l_linenumber = 1");
    assert.deepEqual(await rows("SELECT count(*) FROM li WHERE l_linenumber = 1 AND l_comment <> 'updated'"), [['0']]);
    const ones = await reference.query('SELECT count(*) FROM lineitem WHERE (l_orderkey < 20000 OR l_orderkey BETWEEN 20000 AND 20100) AND NOT (l_quantity > 45) AND l_linenumber = 1');
    assert.deepEqual(await rows("SELECT count(*) FROM li WHERE l_comment = 'updated'"), ones.rows);
  });

  test('INSERT ... SELECT that is not a plain scan runs on the coordinator', async () => {
    const r = await cluster.query('INSERT INTO li SELECT * FROM lineitem WHERE l_orderkey < 100 ORDER BY l_orderkey, l_linenumber LIMIT 2');
    assert.equal(r.plan.fragments.length, 0);
    assert.equal(r.rows[0][2], '2');
  });

  test('writes through the process pool (fragments cross a process boundary)', async () => {
    const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home-pool'), PUFFINDB_WAREHOUSE: join(dir, 'warehouse'), PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
    const pooled = await LocalCluster.open({ settings, catalog: cluster.catalog, invoker: 'pool' });
    try {
      const r = await pooled.query('CREATE TABLE orders_ice PARTITIONED BY (o_orderstatus) AS SELECT * FROM orders', { fragments: 2 });
      assert.equal(r.plan.shape, 'write');
      assertSameResult(
        await pooled.query('SELECT o_orderstatus, count(*), sum(o_totalprice) FROM orders_ice GROUP BY 1 ORDER BY 1'),
        await reference.query('SELECT o_orderstatus, count(*), sum(o_totalprice) FROM orders GROUP BY 1 ORDER BY 1'),
        { ordered: true },
        'orders_ice',
      );
    } finally {
      await pooled.close();
    }
  });

  test('DELETE and UPDATE rewrite files in the fragments, only the files that can match', async () => {
    const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home-rewrite'), PUFFINDB_WAREHOUSE: join(dir, 'warehouse'), PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
    const counting = new CountingInvoker(await InProcessInvoker.create(settings));
    const c = await LocalCluster.open({ settings, catalog: cluster.catalog, invoker: counting });
    try {
      // Partitioned by status: a predicate on it lets scan planning keep one partition's files.
      await c.query('CREATE TABLE ord PARTITIONED BY (o_orderstatus) AS SELECT * FROM orders', { fragments: 3 });
      const files = (await c.catalog.getTable('ord'))!.files.length;
      counting.invocations = 0;
      const deleted = await c.query("DELETE FROM ord WHERE o_orderstatus = 'P' AND o_totalprice > 100000");
      assert.ok(counting.invocations > 0, 'fragments ran the rewrite');
      const want = await reference.query("SELECT count(*) FROM orders WHERE o_orderstatus = 'P' AND o_totalprice > 100000");
      assert.equal(deleted.rows[0][2], want.rows[0][0]);
      assert.deepEqual((await c.query('SELECT count(*) FROM ord')).rows, (await reference.query("SELECT count(*) FROM orders WHERE NOT (o_orderstatus = 'P' AND o_totalprice > 100000)")).rows);
      // Only the 'P' partition's files were rewritten: the others are the same files as before.
      const after = (await c.catalog.getTable('ord'))!.files;
      assert.ok(after.filter((f) => /o_orderstatus=P/.test(f.uri)).length >= 1);
      assert.ok(after.length <= files + 3, `files after delete: ${after.length} (before ${files})`);

      counting.invocations = 0;
      const updated = await c.query("UPDATE ord SET o_comment = 'checked' WHERE o_orderstatus = 'F' AND o_orderkey < 5000");
      assert.ok(counting.invocations > 0);
      const matching = await reference.query("SELECT count(*) FROM orders WHERE o_orderstatus = 'F' AND o_orderkey < 5000");
      assert.equal(updated.rows[0][2], matching.rows[0][0]);
      assert.deepEqual((await c.query("SELECT count(*) FROM ord WHERE o_comment = 'checked'")).rows, matching.rows);

      counting.invocations = 0;
      const none = await c.query('DELETE FROM ord WHERE o_orderkey < 0');
      assert.equal(none.rows[0][2], '0');
      assert.equal(none.rows[0][3], null, 'no snapshot when nothing matched');
    } finally {
      await c.close();
    }
  });

  test('a CTAS that fails leaves no table behind', async () => {
    await assert.rejects(cluster.query('CREATE TABLE broken AS SELECT l_orderkey::HUGEINT AS h FROM lineitem'));
    assert.equal((await cluster.listTables()).some((t) => t.name === 'broken'), false);
  });

  test('a join between an Iceberg table and a Parquet table', async () => {
    const sql = 'SELECT o_orderpriority, count(*) FROM {li} JOIN orders ON l_orderkey = o_orderkey WHERE l_orderkey < 20000 GROUP BY 1 ORDER BY 1';
    const got = await cluster.query(sql.replace('{li}', 'li'));
    assert.ok(got.rows.length > 0);
  });

  test('bad writes: unknown table, unmappable type; nothing changes', async () => {
    const before = await rows('SELECT count(*) FROM events');
    await assert.rejects(cluster.query("INSERT INTO nope VALUES (1)"), (err: { code: string; message: string }) => /nope/.test(err.message));
    await assert.rejects(cluster.query('CREATE TABLE bad (x HUGEINT)'), (err: { message: string }) => /HUGEINT|x/.test(err.message));
    assert.deepEqual(await rows('SELECT count(*) FROM events'), before);
  });
});
