// Struct field paths in pushed-down filters, through a real local cluster (in-process
// workers), each answer checked against plain DuckDB over the same files. Table `t` holds a
// column `a` and a struct `s` with a field `a` that differ on every row, over four files, so
// a filter on `s.a` pushed as `a` (its qualifier and struct path both stripped) gives a
// wrong answer, and pruning on `a` shows which one ran. DuckDB's binding rules decide what
// a dotted name means: a table reference's name (with that column) before a column, the
// innermost query before an enclosing one.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ParquetCatalog } from '../../runtime/catalog/parquet-catalog.ts';
import { scanPredicateFromSql } from '../../runtime/catalog/scan-filter.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import type { Plan } from '../../runtime/planner/plan.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { sqlString, sqlStringList } from '../../runtime/sql/quote.ts';
import { assertSameResult, isOrdered } from '../helpers/compare.ts';
import { openWarehouseCluster, type WarehouseCluster } from '../helpers/warehouse-cluster.ts';

let dir: string;
let engine: Engine;
let reference: Engine;
let cluster: LocalCluster;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-struct-'));
  const warehouse = join(dir, 'warehouse');
  engine = await Engine.create({ threads: 1 });
  reference = await Engine.create({ threads: 1 });
  const tables: Record<string, string[]> = {
    // File i: a = i, s.a = 3 - i (so s.a = 1 is file 2, a = 1 is file 1), s.b = the row.
    t: [0, 1, 2, 3].map((i) => `SELECT ${i} * 1000 + range AS id, ${i}::INTEGER AS a, {'a': (3 - ${i})::INTEGER, 'b': (range % 50)::INTEGER} AS s
      FROM range(1000)`),
    // Small: broadcast. Its own column `a`, a struct `s` with a field `a`, and no column `b`.
    u: [`SELECT range::INTEGER AS k, (3 - range)::INTEGER AS a, {'a': (range + 1) % 4} AS s FROM range(4)`],
    // A struct column named `x`, as the alias the outer query gives u below.
    w: [0, 1].map((i) => `SELECT ${i} * 100 + range AS id, {'a': (range % 5)::INTEGER} AS x FROM range(100)`),
  };
  const home = join(dir, 'home');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
  for (const [name, selects] of Object.entries(tables)) {
    mkdirSync(join(warehouse, name), { recursive: true });
    for (const [i, sql] of selects.entries()) await engine.exec(`COPY (${sql}) TO ${sqlString(join(warehouse, name, `part-${i}.parquet`))} (FORMAT parquet)`);
    await catalog.addTable(name, join(warehouse, name));
    const files = readdirSync(join(warehouse, name)).sort().map((f) => join(warehouse, name, f));
    await reference.exec(`CREATE VIEW ${name} AS SELECT * FROM read_parquet(${sqlStringList(files)})`);
  }
  // t's files are ~5 KB each: over the limit (split or pulled up); u's one file is under it.
  // Co-split joins off: t and w are written in key order, and a co-split would evaluate the
  // correlated subqueries in the fragments instead of the pushdowns and decorrelation tested here.
  const settings = loadSettings({ PUFFINDB_BROADCAST_LIMIT_BYTES: '4096', PUFFINDB_SUBQUERY_STAGE_BYTES: '0', PUFFINDB_CO_SPLIT: 'off' }, { home, warehouse: toRootUrl(warehouse), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 4 });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  reference?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The cluster's answer equals DuckDB's at 1 and 4 fragments; the plan of the last run. */
async function same(sql: string): Promise<Plan> {
  const want = await reference.query(sql);
  let plan: Plan | undefined;
  for (const fragments of [1, 4]) {
    const got = await cluster.query(sql, { fragments, role: 'admin' });
    assertSameResult(got, want, { ordered: isOrdered(sql) }, `${sql} [${fragments} fragments, ${got.plan.shape}]`);
    plan = got.plan;
  }
  return plan!;
}

/** The SQL of the fragments that read table `view` (pulled-up scans). */
function scansOf(plan: Plan, view: string): string[] {
  return plan.fragments.filter((f) => f.inputs.some((i) => i.view === view)).map((f) => f.sql);
}

describe('struct field paths in pushed filters', () => {
  test('WHERE s.a: the struct field, not the column a, filters the pulled-up rows', async () => {
    const plan = await same('SELECT id, a, s.a AS sa, row_number() OVER (ORDER BY id DESC) AS rn FROM t WHERE s.a = 1 ORDER BY id LIMIT 5');
    assert.equal(plan.shape, 'single-node', plan.reason);
    const scans = scansOf(plan, 't');
    assert.ok(scans.length > 0 && scans.every((s) => s.includes('(s.a = 1)')), `the filter is pushed as s.a: ${scans.join('; ')}`);
  });

  test('WHERE t.s.a (qualified by the table) is pushed as s.a; a filter on a prunes alongside', async () => {
    const plan = await same('SELECT id, s.b, sum(id) OVER (PARTITION BY s.b) AS total FROM t WHERE t.s.a = 0 AND t.a >= 2 ORDER BY id');
    const scans = scansOf(plan, 't');
    assert.ok(scans.length > 0 && scans.every((s) => s.includes('(s.a = 0)') && s.includes('(a >= 2)')), scans.join('; '));
    const scan = plan.scans.find((s) => s.table === 't')!;
    assert.equal(scan.filesKept, 2, 'a >= 2 keeps files 2 and 3');
  });

  test('an alias qualifier: x.s.a is the field, x.a the column', async () => {
    const plan = await same('SELECT count(*) OVER () AS n, id FROM t AS x WHERE x.s.a = 2 AND x.a = 1 ORDER BY id LIMIT 3');
    const scans = scansOf(plan, 't');
    assert.ok(scans.length > 0 && scans.every((s) => s.includes('(s.a = 2)') && s.includes('(a = 1)')), scans.join('; '));
    assert.equal(plan.scans.find((s) => s.table === 't')!.filesKept, 1);
  });

  test('JOIN ON: struct fields of either side, the small side reducing the large one', async () => {
    await same('SELECT t.id, u.k, row_number() OVER (ORDER BY t.id) AS rn FROM t JOIN u ON t.a = u.k AND t.s.a = 2 AND u.s.a = 2 ORDER BY t.id LIMIT 7');
    const plan = await same('SELECT t.id, u.k, rank() OVER (ORDER BY t.id DESC) AS r FROM t, u WHERE t.a = u.k AND u.s.a = 2 ORDER BY t.id LIMIT 7');
    // u's filter reaches t as a semi-join whose subquery reads u's own s.a (not u.a, not t.a).
    const scans = scansOf(plan, 't');
    assert.ok(scans.length > 0 && scans.every((s) => s.includes('(s.a = 2)')), scans.join('; '));
    await same('SELECT count(*), sum(t.id) FROM t JOIN u ON t.s.a = u.k AND t.s.a = 1');
    await same('SELECT t.id, u.a FROM t LEFT JOIN u ON t.a = u.k AND u.s.a = 3 WHERE t.s.b = 7 ORDER BY t.id');
  });

  test('a table alias with that column wins over a struct column; without it, the struct', async () => {
    // s is u: s.a is u's column a. t's struct column s is not meant.
    await same('SELECT t.id, s.k, dense_rank() OVER (ORDER BY t.id) AS r FROM t JOIN u AS s ON t.id = s.k * 1000 WHERE s.a = 2 ORDER BY 1');
    // w has no column a: s.a is t's struct field s.a.
    const plan = await same('SELECT t.id, s.id, dense_rank() OVER (ORDER BY t.id) AS r FROM t JOIN w AS s ON t.id = s.id + 1950 WHERE s.a = 1 ORDER BY 1');
    const scans = scansOf(plan, 't');
    assert.ok(scans.length > 0 && scans.every((s) => s.includes('(s.a = 1)')), scans.join('; '));
    // t named s: s.a is its column a, and it prunes.
    const own = await same('SELECT id, a, ntile(2) OVER (ORDER BY id) AS half FROM t AS s WHERE s.a = 1 ORDER BY id LIMIT 4');
    assert.equal(own.scans.find((s) => s.table === 't')!.filesKept, 1);
  });

  test('schema-qualified: main.t.s.a and main.t.a', async () => {
    await same('SELECT id, lag(id) OVER (ORDER BY id) AS prev FROM t WHERE main.t.s.a = 3 AND main.t.a = 0 ORDER BY id LIMIT 3');
  });

  test('a subquery: a name its own FROM binds as a struct field is not the outer alias', async () => {
    // In the subquery, x.a is w's struct field x.a (w has a column x), not u's a: uncorrelated.
    await same('SELECT count(*) FROM u AS x WHERE x.k < 3 AND EXISTS (SELECT 1 FROM w WHERE w.id = x.a + 150)');
    await same('SELECT x.k, (SELECT count(*) FROM w WHERE w.id < x.a * 10) AS n FROM u AS x ORDER BY 1');
  });
});

describe('decorrelation binds a subquery\'s names as DuckDB does (decorrelate.ts)', () => {
  // w has a struct column x with a field a: in a subquery over w, x.a is that field even
  // when the outer query calls t x (DuckDB binds in the innermost query first), so the
  // subquery is uncorrelated. The same subqueries with the outer alias y (no such column in
  // w) are correlated on t's column a, and must still be rewritten.
  const decorrelated = (plan: Plan) => plan.reason.startsWith('decorrelated:');
  const forms = [
    (q: string) => `SELECT count(*) FROM t AS ${q} WHERE EXISTS (SELECT 1 FROM w WHERE w.id = ${q}.a AND w.id >= 2)`,
    (q: string) => `SELECT count(*), sum(${q}.id) FROM t AS ${q} WHERE NOT EXISTS (SELECT 1 FROM w WHERE w.id = ${q}.a AND w.id >= 2)`,
    (q: string) => `SELECT count(*) FROM t AS ${q} WHERE ${q}.id > (SELECT max(w.id) FROM w WHERE w.id = ${q}.a AND w.id >= 2)`,
    // An inequality too: the min/max rewrite (w.id is an integer column), over two tables.
    (q: string) => `SELECT count(*) FROM t AS ${q} WHERE NOT EXISTS (SELECT 1 FROM w, u WHERE u.k = ${q}.a AND w.id = u.a + 1 AND w.id <> ${q}.a)`,
  ];

  test('x.a is w\'s struct field x.a: EXISTS, NOT EXISTS, scalar subquery are not rewritten', async () => {
    for (const form of forms) {
      const plan = await same(form('x'));
      assert.ok(!decorrelated(plan), `${form('x')}: ${plan.reason}`);
    }
  });

  test('y.a is the outer t\'s column a: the same subqueries are decorrelated', async () => {
    for (const form of forms) {
      const plan = await same(form('y'));
      assert.ok(decorrelated(plan), `${form('y')}: ${plan.reason}`);
    }
  });

  test('IN, and a struct field as the inner key or the outer one', async () => {
    // Correct: x.a in the subquery is w.x.a, so the set is {3} (a = 3: 1000 rows); read as
    // the outer x.a it would be empty for every row.
    await same('SELECT count(*) FROM t AS x WHERE x.a IN (SELECT w.x.a + 1 FROM w WHERE x.a = 2)');
    await same('SELECT count(*) FROM t AS y WHERE y.a IN (SELECT w.x.a + 1 FROM w WHERE w.id = y.id % 200)');
    // w.x.a = y.s.a: a struct field on both sides of the correlation.
    const plan = await same('SELECT count(*) FROM t AS y WHERE EXISTS (SELECT 1 FROM w WHERE w.x.a = y.s.a AND w.id < 3)');
    assert.ok(decorrelated(plan), plan.reason);
    await same('SELECT count(*) FROM t AS y WHERE NOT EXISTS (SELECT 1 FROM w WHERE x.a = y.s.a AND w.id < 2)');
  });
});

describe('GROUP BY a struct field (planner.ts aggregate rewrite)', () => {
  test('s.a and a are different keys, each found by its table-relative name', async () => {
    // Written differently in the select list (t.s.a, t.a) than in GROUP BY (s.a, a): each
    // is its own group key, not "the key whose last name part is a".
    for (const sql of [
      'SELECT t.s.a AS sa, t.a, count(*) AS n, sum(id) AS total FROM t GROUP BY s.a, a ORDER BY 1, 2',
      'SELECT t.s.a AS sa, count(*) AS n, max(a) AS top FROM t WHERE s.b < 10 GROUP BY s.a HAVING t.s.a <> 1 ORDER BY sa',
      'SELECT x.s.b AS sb, count(*) AS n FROM t AS x GROUP BY s.b, s.a ORDER BY sb, n LIMIT 5',
    ]) {
      const plan = await same(sql);
      assert.equal(plan.shape, 'scan-aggregate', `${sql}: ${plan.reason}`);
    }
    // A lambda's parameter x.a is no group key a.
    await same("SELECT a, list_transform([{'a': 5}], x -> x.a) AS l, count(*) AS n FROM t GROUP BY a ORDER BY a");
  });
});

describe('DELETE and UPDATE on an Iceberg table with WHERE on a struct field (scan-filter.ts)', () => {
  // Table ev holds a column a and a struct s with a field a, one file per INSERT: file i has
  // a = i and s.a = 3 - i. Choosing the files to rewrite by a filter on s.a read as a keeps
  // the wrong file (the DELETE then fails its own check); s.a must prune nothing or itself.
  let opened: WarehouseCluster;
  let icluster: LocalCluster;

  before(async () => {
    opened = await openWarehouseCluster('puffin-struct-ice-');
    icluster = opened.cluster;
  });

  after(async () => {
    await opened?.close();
  });

  async function both(sql: string): Promise<void> {
    await icluster.query(sql);
    await reference.exec(sql);
    const q = 'SELECT * FROM ev ORDER BY id';
    assertSameResult(await icluster.query(q), await reference.query(q), { ordered: true }, `after ${sql}`);
  }

  test('the rows left equal plain DuckDB\'s', async () => {
    await both('CREATE TABLE ev (id BIGINT, a INTEGER, s STRUCT(a INTEGER, b VARCHAR))');
    for (let i = 0; i < 4; i++) await both(`INSERT INTO ev SELECT ${i} * 10 + range, ${i}, {'a': ${3 - i}, 'b': 'r' || range} FROM range(10)`);
    await both('DELETE FROM ev WHERE s.a = 1');
    await both('UPDATE ev SET a = a + 10 WHERE s.a = 3');
    await both("UPDATE ev SET s = {'a': 9, 'b': 'new'} WHERE s.a = 2 AND id % 2 = 0");
    await both('DELETE FROM ev WHERE s.a IN (0, 9) AND a = 3');
    await both('DELETE FROM ev WHERE s.a BETWEEN 2 AND 3 OR s.b IS NULL');
  });

  test('a struct column named t: `t.a` in a DELETE is its field, not column a', async () => {
    const q = 'SELECT * FROM evt ORDER BY id';
    const run = async (sql: string) => {
      await icluster.query(sql);
      await reference.exec(sql);
      assertSameResult(await icluster.query(q), await reference.query(q), { ordered: true }, `after ${sql}`);
    };
    await icluster.query('CREATE TABLE evt (id BIGINT, a INTEGER, t STRUCT(a INTEGER))');
    await reference.exec('CREATE TABLE evt (id BIGINT, a INTEGER, t STRUCT(a INTEGER))');
    for (let i = 0; i < 3; i++) await run(`INSERT INTO evt SELECT ${i} * 10 + range, ${i}, {'a': ${2 - i}} FROM range(5)`);
    await run('DELETE FROM evt WHERE t.a = 0');
    await run('UPDATE evt SET a = 7 WHERE t.a = 2');
  });

  test('a struct field path is never read as a column when choosing files', async () => {
    assert.equal(await scanPredicateFromSql(engine, 's.a = 1'), undefined);
    assert.equal(await scanPredicateFromSql(engine, 's.a IS NULL OR a = 1'), undefined);
    assert.deepEqual(await scanPredicateFromSql(engine, 's.a = 1 AND a = 2'), { op: '=', column: 'a', value: '2' });
    assert.deepEqual(await scanPredicateFromSql(engine, 't.a BETWEEN 1 AND 2'), { op: 'between', column: 'a', low: '1', high: '2' });
    assert.equal(await scanPredicateFromSql(engine, 't.a = 1', []), undefined);
    assert.equal(await scanPredicateFromSql(engine, 'main.t.a = 1'), undefined);
    assert.equal(await scanPredicateFromSql(engine, 't.s.a IN (1, 2)'), undefined);
  });
});
