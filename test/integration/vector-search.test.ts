// Vector search through the local cluster: fixed-size FLOAT[n] columns keep their type on
// every path (Iceberg written by PuffinDB, Iceberg written as list<float> by another writer
// and then sized, Parquet written by an Arrow writer), exact k-NN distributes as top-k and
// equals plain DuckDB's answer, and an IVF index (CREATE INDEX ... USING ivf) prunes lists as
// Iceberg partitions with recall@10 >= 0.9 at nprobe 4 of 16 lists on deterministic clustered
// data, filters combined; bad input is a 4xx naming the problem. Then the pieces that need
// no cluster: the index statements' parser, the nprobe hint, nearest lists, Arrow schemas.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Field, FixedSizeList, Float32, Float64, Int32, List, Schema, Table, tableToIPC } from 'apache-arrow';
import { fixedSizeListsOf } from '../../runtime/catalog/arrow-schema.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { nearest, parseIndexStatement, vectorType } from '../../runtime/exec/vector-index.ts';
import { nprobeHint } from '../../runtime/planner/ivf.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

const DIM = 8;
const ROWS = 2000;
// 12 clusters of ~170 vectors in 8-d: centers in 0..10, noise +-2 (the clusters overlap), all from hash().
const VECTORS = `SELECT i::INTEGER AS id, CASE WHEN i % 3 = 0 THEN 'x' ELSE 'y' END AS category,
  list_transform(range(${DIM}), lambda j: (hash(i % 12, j) % 1000) / 100.0 + ((hash(i, j) % 1000) / 1000.0 - 0.5) * 4.0)::FLOAT[${DIM}] AS v
  FROM range(${ROWS}) t(i)`;

let dir: string;
let engine: Engine;
let reference: Engine;
let cluster: LocalCluster;
let queries: string[];
let catalog: WarehouseCatalog;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-vector-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse, { recursive: true });
  engine = await Engine.create({ threads: 2 });
  reference = await Engine.create({ threads: 2 });
  await reference.exec(`CREATE TABLE vt AS ${VECTORS}`);
  // Query vectors: a few rows of the set moved a little (deterministic).
  const picked = await reference.query(`SELECT list_transform(v, lambda x: round(x + 0.05, 3))::VARCHAR FROM vt WHERE id IN (5, 101, 777, 1999) ORDER BY id`);
  queries = picked.rows.map((r) => `${String(r[0])}::FLOAT[${DIM}]`);
  // A Parquet file as Arrow writers (pyarrow, arrow-rs) write one: the column is a Parquet
  // LIST, the footer's ARROW:schema says FixedSizeList[8]<Float32>.
  const schema = new Schema([new Field('id', new Int32(), true), new Field('v', new FixedSizeList(DIM, new Field('item', new Float32(), true)), true)]);
  const ipc = tableToIPC(new Table(schema), 'stream');
  const arrowSchema = Buffer.from(ipc.subarray(0, ipc.length - 8)).toString('base64'); // the schema message, without the end-of-stream marker
  mkdirSync(join(dir, 'arrow'));
  await reference.exec(`COPY (SELECT id, CAST(v AS FLOAT[]) AS v FROM vt WHERE id < 500) TO ${sqlString(join(dir, 'arrow', 'part-0.parquet'))} (FORMAT parquet, KV_METADATA {'ARROW:schema': ${sqlString(arrowSchema)}})`);
  catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  await catalog.addTable('arrow_vectors', join(dir, 'arrow'));
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  await cluster.query(`CREATE TABLE vt AS ${VECTORS}`);
});

after(async () => {
  await cluster?.close();
  engine?.close();
  reference?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function typeOf(table: string, column: string): Promise<string> {
  const r = await cluster.query(`SELECT ${column} FROM ${table} LIMIT 1`);
  return r.columns[0].type;
}

async function rejects(sql: string, status: number, pattern: RegExp): Promise<void> {
  await assert.rejects(cluster.query(sql), (err: unknown) => {
    assert.ok(err instanceof PuffinError, `${sql}: ${String(err)}`);
    assert.equal(err.httpStatus, status, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

const ids = (rows: unknown[][]) => rows.map((r) => Number(r[0]));

describe('vector types', () => {
  test('an Iceberg table PuffinDB writes keeps FLOAT[n]; the array functions bind without a cast; a wrong length is refused', async () => {
    assert.equal(await typeOf('vt', 'v'), `FLOAT[${DIM}]`);
    const q = queries[0];
    const r = await cluster.query(`SELECT id, array_distance(v, ${q}) AS d, array_cosine_distance(v, ${q}) AS c, array_inner_product(v, ${q}) AS p FROM vt WHERE id = 5`);
    const e = await reference.query(`SELECT id, array_distance(v, ${q}) AS d, array_cosine_distance(v, ${q}) AS c, array_inner_product(v, ${q}) AS p FROM vt WHERE id = 5`);
    assert.deepEqual(r.rows, e.rows);
    await rejects(`INSERT INTO vt VALUES (9999, 'x', [1, 2, 3]::FLOAT[])`, 400, /length 3 to array with length 8/);
  });

  test('DOUBLE[n] round-trips through an Iceberg table (CTAS and INSERT); the array functions bind on it', async () => {
    const rowsOf = 'SELECT i::INTEGER AS id, [i, i / 2.0, -i, 1.5]::DOUBLE[4] AS w FROM range(20) t(i)';
    await cluster.query(`CREATE TABLE dvec AS ${rowsOf}`);
    await cluster.query('INSERT INTO dvec SELECT 99, [0.25, 0.5, 0.75, 1.0]::DOUBLE[4]');
    assert.equal(await typeOf('dvec', 'w'), 'DOUBLE[4]');
    const q = '[3.0, 1.0, -2.0, 1.5]::DOUBLE[4]';
    const sql = (from: string) => `SELECT id, array_distance(w, ${q}) AS d, array_inner_product(w, ${q}) AS p FROM ${from} ORDER BY d, id LIMIT 3`;
    assert.deepEqual((await cluster.query(sql('dvec'))).rows, (await reference.query(sql(`(${rowsOf} UNION ALL SELECT 99, [0.25, 0.5, 0.75, 1.0]::DOUBLE[4])`))).rows);
  });

  test('list<float> written without a size (as other Iceberg writers write it) is sized by ALTER COLUMN ... SET DATA TYPE FLOAT[n]', async () => {
    await cluster.query('CREATE TABLE foreign_lists (id INTEGER, v FLOAT[])');
    await cluster.query(`INSERT INTO foreign_lists SELECT id, CAST(v AS FLOAT[]) FROM vt WHERE id < 20`);
    assert.equal(await typeOf('foreign_lists', 'v'), 'FLOAT[]');
    await rejects(`SELECT array_distance(v, ${queries[0]}) FROM foreign_lists`, 400, /array_distance/);
    await cluster.query(`ALTER TABLE foreign_lists ALTER COLUMN v SET DATA TYPE FLOAT[${DIM}]`);
    assert.equal(await typeOf('foreign_lists', 'v'), `FLOAT[${DIM}]`);
    const r = await cluster.query(`SELECT id FROM foreign_lists ORDER BY array_distance(v, ${queries[0]}) LIMIT 1`);
    assert.deepEqual(ids(r.rows), [5]);
    // The table property is the documented alternative, checked like the statement.
    await rejects(`ALTER TABLE foreign_lists SET ('puffindb.array-size.1' = '8')`, 400, /column 'id' is INTEGER, not a list/);
    await rejects(`ALTER TABLE foreign_lists SET ('puffindb.array-size.2' = 'big')`, 400, /must be an integer/);
  });

  test("a Parquet file of an Arrow writer (fixed_size_list in ARROW:schema) is read as FLOAT[n]", async () => {
    assert.equal(await typeOf('arrow_vectors', 'v'), `FLOAT[${DIM}]`);
    const sql = `SELECT id, array_distance(v, ${queries[0]}) AS d FROM arrow_vectors ORDER BY d, id LIMIT 5`;
    const e = await reference.query(`SELECT id, array_distance(v, ${queries[0]}) AS d FROM vt WHERE id < 500 ORDER BY d, id LIMIT 5`);
    assert.deepEqual((await cluster.query(sql)).rows, e.rows);
  });
});

test('a Lance dataset is refused with a 400 naming the conversion (docs/ARCHITECTURE.md, "Lance")', async () => {
  mkdirSync(join(dir, 'docs.lance', '_versions'), { recursive: true });
  for (const path of [join(dir, 'docs.lance'), join(dir, 'docs.lance') + '/']) {
    await assert.rejects(catalog.addTable('docs', path), (err: unknown) => err instanceof PuffinError && err.httpStatus === 400 && /Lance dataset/.test(err.message) && /Parquet/.test(err.message));
  }
});

describe('k-NN', () => {
  test('exact k-NN distributes as top-k and equals DuckDB', async () => {
    for (const q of queries.slice(0, 3)) {
      const sql = `SELECT id, array_distance(v, ${q}) AS d FROM vt ORDER BY d, id LIMIT 10`;
      const r = await cluster.query(sql);
      assert.equal(r.plan.shape, 'top-k');
      assert.deepEqual(r.rows, (await reference.query(sql)).rows);
    }
  });

  test('IVF: CREATE INDEX, probes nprobe lists as partitions, recall@10 >= 0.9 at nprobe 4 of 16; filters combine; stale after an append; DROP INDEX', async () => {
    const created = await cluster.query('CREATE INDEX vt_v ON vt USING ivf (v) WITH (lists = 16, nprobe = 4)');
    assert.equal(created.rows[0][3], 16);
    // The index's tables are its storage: readable by name, not listed as the user's tables.
    assert.ok(await cluster.catalog.getTable('__ivf_vt_v'));
    const listed = await cluster.catalog.listTables();
    assert.ok(listed.includes('vt') && !listed.some((t) => t.startsWith('__ivf_')), listed.join(', '));
    const shown = (await cluster.query('SHOW TABLES')).rows.map((r) => String(r[0]));
    assert.ok(shown.includes('vt') && !shown.some((t) => t.startsWith('__ivf_')), shown.join(', '));
    // Recall@10 against DuckDB's exact answer, at the index's own nprobe (4) and at 1.
    const recall: Record<number, number> = {};
    for (const nprobe of [1, 4]) {
      let hits = 0;
      for (const q of queries) {
        const sql = `SELECT id FROM vt ORDER BY array_distance(v, ${q}) LIMIT 10`;
        const approx = await cluster.query(sql, nprobe === 4 ? {} : { nprobe });
        assert.match(approx.plan.reason, new RegExp(`IVF index vt_v: probed ${nprobe} of 16 lists`));
        const scan = approx.plan.scans[0];
        assert.equal(scan.table, '__ivf_vt_v');
        assert.ok(scan.filesKept < scan.filesTotal, `lists pruned as partitions: ${scan.filesKept} of ${scan.filesTotal} files`);
        const exact = new Set(ids((await reference.query(sql)).rows));
        hits += ids(approx.rows).filter((id) => exact.has(id)).length;
      }
      recall[nprobe] = hits / (10 * queries.length);
    }
    assert.ok(recall[4] >= 0.9, `recall@10 at nprobe 4: ${recall[4]}`);
    assert.ok(recall[1] <= recall[4], JSON.stringify(recall));
    // A hint comment sets nprobe from SQL alone (any front end); the query option wins over it.
    const hinted = await cluster.query(`SELECT /*+ ivf_nprobe(2) */ id FROM vt ORDER BY array_distance(v, ${queries[0]}) LIMIT 3`);
    assert.match(hinted.plan.reason, /probed 2 of 16 lists/);
    // nprobe 0: exact, the same answer as DuckDB.
    const exactSql = `SELECT id, array_distance(v, ${queries[1]}) AS d FROM vt ORDER BY d, id LIMIT 10`;
    const exact = await cluster.query(exactSql, { nprobe: 0 });
    assert.match(exact.plan.reason, /not used \(nprobe 0\)/);
    assert.deepEqual(exact.rows, (await reference.query(exactSql)).rows);

    // Filters combine: every row is of the category, and the answer is the exact filtered one's.
    const filtered = `SELECT * FROM vt WHERE category = 'x' ORDER BY array_distance(v, ${queries[2]}) LIMIT 5`;
    const f = await cluster.query(filtered, { nprobe: 8 });
    assert.deepEqual(f.columns.map((c) => c.name), ['id', 'category', 'v']);
    assert.ok(f.rows.every((r) => r[1] === 'x'));
    const fe = new Set(ids((await reference.query(filtered)).rows));
    assert.ok(ids(f.rows).filter((id) => fe.has(id)).length >= 4, JSON.stringify(ids(f.rows)));

    // An append makes the index stale: exact search until it is rebuilt.
    await cluster.query(`INSERT INTO vt SELECT 5000, 'x', ${queries[0]}`);
    const after = await cluster.query(`SELECT id FROM vt ORDER BY array_distance(v, ${queries[0]}) LIMIT 1`);
    assert.match(after.plan.reason, /stale/);
    assert.deepEqual(ids(after.rows), [5000]);

    await cluster.query('DROP INDEX vt_v');
    assert.equal(await cluster.catalog.getTable('__ivf_vt_v'), undefined);
    await rejects('DROP INDEX vt_v', 404, /index 'vt_v' does not exist/);
    await cluster.query('DROP INDEX IF EXISTS vt_v');
  });

  test('bad CREATE INDEX input is a 400 naming the problem', async () => {
    await rejects('CREATE INDEX bad ON vt USING ivf (category) WITH (lists = 4)', 400, /column 'category' of table 'vt' is VARCHAR, not a fixed-size FLOAT\[n\]/);
    await rejects('CREATE INDEX bad ON vt USING ivf (v) WITH (lists = 0)', 400, /lists .* must be an integer from 1/);
    await rejects('CREATE INDEX bad ON vt USING hnsw (v)', 400, /USING hnsw/);
    await rejects('CREATE INDEX bad ON vt USING ivf (v) WITH (depth = 3)', 400, /option 'depth = 3'/);
    await rejects('CREATE INDEX bad ON vt USING ivf (v) WITH (lists = 100000)', 400, /lists/);
    await rejects('CREATE INDEX bad ON foreign_lists_missing USING ivf (v)', 404, /does not exist/);
  });
});

describe('IVF parts without a cluster', () => {
  test('CREATE INDEX / DROP INDEX parse, and bad forms name the problem', () => {
    assert.deepEqual(parseIndexStatement('CREATE INDEX IF NOT EXISTS "Docs_V" ON app.docs USING IVF ( embedding ) WITH (lists = 64, NPROBE = 4)'), {
      kind: 'create', name: 'Docs_V', table: 'app.docs', column: 'embedding', ifNotExists: true, options: { lists: 64, nprobe: 4 },
    });
    assert.deepEqual(parseIndexStatement('drop index if exists docs_v'), { kind: 'drop', name: 'docs_v', ifExists: true });
    assert.equal(parseIndexStatement('CREATE TABLE t (x INT)'), undefined);
    const fails = (sql: string, code: string, pattern: RegExp) =>
      assert.throws(() => parseIndexStatement(sql), (e: unknown) => e instanceof PuffinError && e.code === code && pattern.test(e.message));
    fails('CREATE INDEX i ON t (v)', 'unsupported', /USING \(no method\)/);
    fails('CREATE INDEX i ON t USING hnsw (v)', 'unsupported', /USING hnsw/);
    fails('CREATE INDEX i ON t USING ivf (v) WITH (lists = 0)', 'bad_request', /lists .* from 1 to 65536, got 0/);
    fails('CREATE INDEX i ON t USING ivf (v) WITH (lists = 2.5)', 'bad_request', /got 2.5/);
    fails('CREATE INDEX i ON t USING ivf (v, w)', 'syntax_error', /expected CREATE INDEX/);
    fails('CREATE UNIQUE INDEX i ON t (v)', 'unsupported', /UNIQUE/);
    fails('DROP INDEX', 'syntax_error', /DROP INDEX \[IF EXISTS\] name/);
  });

  test('vector types, the nprobe hint, nearest lists by metric', () => {
    assert.deepEqual(vectorType('FLOAT[128]'), { element: 'FLOAT', dimension: 128 });
    assert.equal(vectorType('FLOAT[]'), undefined);
    assert.equal(vectorType('INTEGER[3]'), undefined);
    assert.equal(nprobeHint('SELECT /*+ ivf_nprobe(8) */ id FROM t'), 8);
    assert.equal(nprobeHint('SELECT id FROM t /*+ IVF_NPROBE = 3 */'), 3);
    assert.equal(nprobeHint("SELECT '/*+ ivf_nprobe(8) */' FROM t"), undefined);
    assert.equal(nprobeHint('SELECT /* ivf_nprobe(8) */ 1'), undefined);
    const c = [Float64Array.from([0, 0]), Float64Array.from([10, 0]), Float64Array.from([0, 3])];
    assert.deepEqual(nearest(c, [9, 1], 2, 'l2'), [1, 0]);
    assert.deepEqual(nearest(c, [0, 1], 1, 'cosine'), [2]);
    assert.deepEqual(nearest(c, [1, 0], 3, 'ip'), [1, 0, 2]); // ties by list id
    assert.throws(() => nearest(c, [1, 2, 3], 1, 'l2'), /3 dimensions; the index's vectors have 2/);
  });

  test("Arrow schemas: fixed-size lists by column, other lists and bad input ignored", async () => {
    const schema = new Schema([
      new Field('id', new Int32(), true),
      new Field('v', new FixedSizeList(4, new Field('item', new Float32(), true)), true),
      new Field('w', new FixedSizeList(2, new Field('item', new Float64(), true)), true),
      new Field('tags', new List(new Field('item', new Int32(), true)), true),
    ]);
    const ipc = tableToIPC(new Table(schema), 'stream');
    const sizes = await fixedSizeListsOf(Buffer.from(ipc.subarray(0, ipc.length - 8)).toString('base64'));
    assert.deepEqual([...sizes], [['v', { size: 4, element: 'FLOAT' }], ['w', { size: 2, element: 'DOUBLE' }]]);
    assert.equal((await fixedSizeListsOf('bm90IGFuIGFycm93IHNjaGVtYQ==')).size, 0);
  });
});
