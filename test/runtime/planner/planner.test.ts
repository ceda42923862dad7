// The planner's rewrites, checked against plain DuckDB over the same files with 1, 2 and
// 7 fragments: every aggregate rule, top-k, scan, broadcast join, and the fallbacks.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AGGREGATE_RULES } from '../../../runtime/planner/aggregates.ts';
import { joinRowsEstimate, Planner } from '../../../runtime/planner/planner.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';
import { assertSameResult, isOrdered } from '../../helpers/compare.ts';
import { runPlanLocally } from '../../helpers/run-plan.ts';
import { plannerFixture, type PlannerFixture } from './fixture.ts';

let fx: PlannerFixture;
before(async () => { fx = await plannerFixture(); });
after(() => fx.close());

async function check(sql: string, expectShape?: string): Promise<void> {
  const want = await fx.engine.query(sql);
  for (const n of [1, 2, 7]) {
    const plan = await fx.planner(n).plan(sql);
    if (expectShape) assert.equal(plan.shape, expectShape, `${sql}: shape (${plan.reason})`);
    // At most n fragments per table read (a reduce view, or a leaf stage of a partitioned join).
    assert.ok(plan.fragments.length <= Math.max(n, plan.reduce.views.length * n, new Set(plan.fragments.map((f) => f.output)).size * n), 'fragment bound');
    const got = await runPlanLocally(fx.engine, plan);
    assertSameResult(got, want, { ordered: isOrdered(sql) }, `${sql} [${n} fragments]`);
    // A plan is plain data: it survives JSON as is.
    assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan);
  }
}

describe('aggregate rules: partial/final equals DuckDB', () => {
  const cases: [string, string][] = [
    ['count(*)', 'count(*)'], ['count', 'count(d)'], ['count_if', 'count_if(b)'], ['sum int', 'sum(id)'],
    ['sum decimal', 'sum(d)'], ['sum double', 'sum(f)'], ['fsum', 'fsum(f)'], ['min/max', 'min(s), max(s), min(dt), max(dt), min(d), max(f)'],
    ['avg', 'avg(d), avg(id), mean(f)'], ['favg', 'favg(f)'], ['var_pop', 'var_pop(f)'], ['var_samp', 'var_samp(d), variance(id)'],
    ['stddev', 'stddev(f), stddev_samp(id), stddev_pop(d)'], ['bool', 'bool_and(b), bool_or(b)'],
    ['bit', 'bit_and(id), bit_or(id), bit_xor(id)'], ['product', 'product(CASE WHEN id < 20 THEN 1.01 END)'],
    ['regr_count', 'regr_count(f, d)'],
    ['distinct', 'count(DISTINCT s), sum(DISTINCT g), avg(DISTINCT g), min(DISTINCT s)'],
  ];
  for (const [name, aggs] of cases) {
    test(`${name}: ungrouped`, () => check(`SELECT ${aggs} FROM t`, 'scan-aggregate'));
    test(`${name}: grouped, filtered`, () => check(`SELECT g, ${aggs} FROM t WHERE id % 3 <> 1 GROUP BY g ORDER BY g`, 'scan-aggregate'));
  }
  test('every rule in the table is exercised above', () => {
    const covered = cases.map((c) => c[1].toLowerCase()).join(' ');
    for (const rule of AGGREGATE_RULES) {
      assert.ok(rule.names.some((n) => covered.includes(n === 'count_star' ? 'count(*)' : `${n}(`)), `rule ${rule.names[0]} has a test`);
    }
  });
  test('FILTER clauses', () => check(`SELECT g, sum(d) FILTER (WHERE b), count(*) FILTER (WHERE f > 0) FROM t GROUP BY g`, 'scan-aggregate'));
  test('expressions over aggregates and group keys, HAVING, ORDER BY alias', () => check(
    `SELECT g + 1 AS g1, sum(d) / count(*) AS ratio, max(id) - min(id) AS spread FROM t GROUP BY g + 1 HAVING count(*) > 10 ORDER BY ratio DESC`, 'scan-aggregate'));
  test('GROUP BY ALL', () => check(`SELECT s, g % 2 AS parity, count(*) AS n FROM t GROUP BY ALL ORDER BY 1, 2`, 'scan-aggregate'));
  test('GROUP BY ordinals and a window over aggregates', () => check(
    `SELECT s, g, count(*) AS n, rank() OVER (ORDER BY count(*) DESC, s, g) AS r FROM t GROUP BY 1, 2 ORDER BY 1, 2`, 'scan-aggregate'));
  test('aggregates over an empty table', () => check(`SELECT count(*), sum(d), avg(f), min(s), count(DISTINCT g) FROM empty`, 'scan-aggregate'));
  test('grouped aggregate with no matching rows', () => check(`SELECT g, count(*) FROM t WHERE id < 0 GROUP BY g`, 'scan-aggregate'));
  test('NULL group keys', () => check(`SELECT nullable_i, count(*), sum(d) FROM t GROUP BY nullable_i ORDER BY nullable_i NULLS FIRST`, 'scan-aggregate'));
  test('DISTINCT over aggregates with LIMIT', () => check(`SELECT DISTINCT count(*) AS n FROM t GROUP BY g ORDER BY n LIMIT 3`, 'scan-aggregate'));
});

describe('partitioned final aggregation', () => {
  // Partial rows are per group key and DISTINCT argument: g has 7 values, but the partials of
  // count(DISTINCT id) hold a row per (g, id), up to every row read. The estimate uses both.
  test('count(DISTINCT) of a many-valued column over few groups is partitioned; without DISTINCT it is not', async () => {
    const planner = new Planner({ engine: fx.sandboxed, catalog: fx.catalog, maxFragments: 3, broadcastLimitBytes: 1 << 20, partitionedAggregateGroups: 1000 });
    const distinct = await planner.plan('SELECT g, count(DISTINCT id) AS n FROM t GROUP BY g');
    assert.deepEqual(distinct.stages?.map((s) => s.id), ['__final'], distinct.reason);
    // (Its answers through the stage: test/integration/differential-stages.test.ts.)
    assert.ok(distinct.fragments.every((x) => x.shuffleWrite?.partitioning.keys.length === 1), 'partials hashed on the group key alone');
    const plain = await planner.plan('SELECT g, count(id) AS n FROM t GROUP BY g');
    assert.equal(plain.stages, undefined, plain.reason);
  });
});

describe('other shapes', () => {
  test('top-k', () => check(`SELECT id, s, d FROM t ORDER BY d DESC NULLS LAST, id LIMIT 7`, 'top-k'));
  test('top-k with OFFSET and a hidden order key', () => check(`SELECT s FROM t ORDER BY id DESC LIMIT 5 OFFSET 3`, 'top-k'));
  test('top-k over a star', () => check(`SELECT * FROM t ORDER BY id LIMIT 4`, 'top-k'));
  // ORDER BY ALL sorts by every output column in order (with its direction and NULLS order),
  // not by the first one only: g and s repeat, so a first-column sort gets the rows wrong.
  test('ORDER BY ALL: scan', () => check(`SELECT g, s, id FROM t WHERE id < 400 ORDER BY ALL`, 'scan'));
  test('ORDER BY ALL DESC NULLS FIRST: top-k', () => check(`SELECT nullable_i, g, d, id FROM t ORDER BY ALL DESC NULLS FIRST LIMIT 30`, 'top-k'));
  test('ORDER BY ALL over a star: top-k with OFFSET', () => check(`SELECT * FROM t ORDER BY ALL LIMIT 9 OFFSET 4`, 'top-k'));
  test('ORDER BY ALL with DISTINCT', () => check(`SELECT DISTINCT s, g FROM t ORDER BY ALL DESC`, 'scan'));
  test('ORDER BY ALL over aggregates', () => check(`SELECT g, b, count(*) AS n, sum(d) AS total FROM t GROUP BY ALL ORDER BY ALL DESC`, 'scan-aggregate'));
  test('ORDER BY ALL over aggregates with LIMIT', () => check(`SELECT g % 3 AS k, s, count(*) AS n FROM t GROUP BY ALL ORDER BY ALL LIMIT 8`, 'scan-aggregate'));
  test('ORDER BY ALL: the reported rows (1,2,b), (1,1,c), (0,5,a)', async () => {
    const plan = await fx.planner(2).plan(`SELECT g, id, s FROM t WHERE id IN (1, 8, 15, 1003, 1010) ORDER BY ALL`);
    const got = await runPlanLocally(fx.engine, plan);
    const want = await fx.engine.query(`SELECT g, id, s FROM t WHERE id IN (1, 8, 15, 1003, 1010) ORDER BY g, id, s`);
    assert.deepEqual(got.rows, want.rows);
  });
  test('scan with filter', () => check(`SELECT id, f FROM t WHERE id BETWEEN 990 AND 1010`, 'scan'));
  test('scan with DISTINCT', () => check(`SELECT DISTINCT s, g FROM t`, 'scan'));
  test('scan with ORDER BY, no LIMIT', () => check(`SELECT id, s FROM t WHERE s = 'k3' ORDER BY id DESC`, 'scan'));
  test('LIMIT without ORDER BY returns that many rows', async () => {
    const plan = await fx.planner(3).plan('SELECT id FROM t LIMIT 5');
    assert.equal(plan.shape, 'scan');
    const got = await runPlanLocally(fx.engine, plan);
    assert.equal(got.rows.length, 5);
  });
  test('broadcast join with aggregate', () => check(`SELECT gname, sum(d) AS total FROM t JOIN dim ON t.g = dim.g GROUP BY gname ORDER BY total DESC`, 'scan-aggregate'));
  test('broadcast join, left join keeps the split side', () => check(`SELECT t.id, dim.gname FROM t LEFT JOIN dim ON t.g = dim.g AND dim.g < 3 WHERE t.id < 20 ORDER BY t.id`, 'scan'));
  test('a shuffle gets fewer consumers when producers x consumers would pass the GET budget', async () => {
    const sql = `SELECT dim.g, count(t.id) FROM t RIGHT JOIN dim ON t.g = dim.g GROUP BY dim.g`;
    const planner = (maxShuffleGets?: number) => new Planner({ engine: fx.sandboxed, catalog: fx.catalog, maxFragments: 6, broadcastLimitBytes: 1 << 20, shufflePartitions: 5, maxShuffleGets });
    // 6 + 1 producer tasks (t's six files, dim's one): 5 partitions would take 35 GETs.
    const free = await planner().plan(sql);
    assert.equal(free.stages![0].tasks, 5);
    const capped = await planner(14).plan(sql);
    assert.equal(capped.stages![0].tasks, 2, capped.stages![0].reason);
    assert.ok(capped.fragments.every((f) => f.shuffleWrite?.partitioning.count === 2));
    assert.match(capped.stages![0].reason, /7 x 2 piece GETs at most/);
    // Never fewer than one.
    assert.equal((await planner(1).plan(sql)).stages![0].tasks, 1);
  });
  test('a join whose small side is preserved is not split: both are hash-partitioned on the key', async () => {
    const sql = `SELECT dim.g, count(t.id) FROM t RIGHT JOIN dim ON t.g = dim.g AND t.id < 0 GROUP BY dim.g`;
    const plan = await fx.planner(3).plan(sql);
    assert.equal(plan.shape, 'scan-aggregate');
    assert.ok(plan.join?.partitioned, plan.reason);
    assert.match(plan.reason, /hash-partitioned on/);
    // (Its answer through a real cluster's stages: the differential suite's 'an outer join
    // preserving the small table' queries.)
    // No equality to partition on: the query runs on one node.
    const cross = await fx.planner(3).plan(`SELECT dim.g, count(t.id) FROM t RIGHT JOIN dim ON t.g < dim.g GROUP BY dim.g`);
    assert.equal(cross.shape, 'single-node');
    assert.match(cross.reason, /outer or positional join keeps rows/);
  });
  test('a column only a side\'s pushed filter reads is not shuffled (TPC-H Q13\'s o_comment)', async () => {
    const sql = `SELECT dim.g, count(t.id) FROM dim LEFT JOIN t ON t.g = dim.g AND t.s NOT LIKE '%7%' GROUP BY dim.g`;
    const plan = await fx.planner(3).plan(sql);
    assert.ok(plan.join?.partitioned, plan.reason);
    const leaves = plan.fragments.filter((f) => f.output === 't');
    assert.ok(leaves.length > 0);
    for (const f of leaves) {
      // The leaf filters by s and sends g and id only.
      assert.match(f.sql, /^SELECT id, g FROM t WHERE/);
      assert.match(f.sql, /!~~ '%7%'/);
    }
    assert.deepEqual(plan.stages![0].reads.find((r) => r.view === 't')!.columns.map((c) => c.name), ['id', 'g']);
    // The join holds as TRUE what the leaf applied.
    assert.doesNotMatch(plan.stages![0].sql, /%7%/);
    assert.match(plan.stages![0].sql, /LEFT JOIN t ON \(\(\(?t\.g = dim\.g\)? AND true\)\)/i);
  });
  test('a table over the broadcast limit makes the join single-node', async () => {
    const plan = await fx.planner(3, 10).plan(`SELECT count(*) FROM t JOIN dim USING (g)`);
    assert.equal(plan.shape, 'single-node');
    assert.match(plan.reason, /broadcast limit/);
  });
  test('no table: local', () => check(`SELECT 1 + 1 AS two, 'x' AS s`, 'local'));
});

describe('eager aggregation: a single-node grouped join aggregates the joined table first', () => {
  const eager = async (sql: string) => {
    const plan = await fx.planner(3).plan(sql);
    assert.match(plan.reason, /eager aggregation: t aggregated by g before its join/, plan.reason);
    // t's fragments send its partial aggregates by g, not its rows.
    assert.ok(plan.fragments.some((f) => f.output === 't_partials'), plan.reason);
    assert.ok(!plan.reduce.views.some((v) => v.name === 't'), plan.reason);
    await check(sql, 'single-node');
  };
  const not = async (sql: string) => {
    const plan = await fx.planner(3).plan(sql);
    assert.doesNotMatch(plan.reason, /eager aggregation/, plan.reason);
    await check(sql);
  };
  test('count, sum, min, max over the null-supplying side of a LEFT JOIN (TPC-H Q13 form)', async () => {
    await eager(`SELECT c, count(*) AS n FROM (SELECT dim.g, count(t.id) AS c FROM dim LEFT JOIN t ON dim.g = t.g AND t.s NOT LIKE '%7%' GROUP BY dim.g) x GROUP BY c ORDER BY ALL`);
    // Unmatched rows: count 0, sum/min/max NULL; a HAVING and ORDER BY over the aggregates.
    await eager(`SELECT * FROM (SELECT dim.gname, count(t.id) AS c, sum(t.d) AS sd, min(t.s) AS lo, max(t.f) AS hi FROM dim LEFT JOIN t ON dim.g = t.g AND t.id < 0 GROUP BY dim.gname HAVING count(t.id) = 0) x ORDER BY 1`);
    await eager(`SELECT * FROM (SELECT dim.gname AS k, sum(t.d) + 1 AS sd1, count(t.nullable_i) AS ci FROM dim LEFT JOIN t ON t.g = dim.g WHERE dim.g < 5 GROUP BY dim.gname ORDER BY sd1 DESC) x ORDER BY k`);
    // INNER: count(*) too.
    await eager(`SELECT * FROM (SELECT gname, count(*) AS n, max(id) AS m FROM t JOIN dim ON t.g = dim.g GROUP BY gname) x ORDER BY 1`);
  });
  test('what is not the same query is left as written', async () => {
    // count(*) over a LEFT JOIN counts an unmatched row once.
    await not(`SELECT * FROM (SELECT dim.g, count(*) AS n FROM dim LEFT JOIN t ON dim.g = t.g AND t.id < 5 GROUP BY dim.g) x ORDER BY 1`);
    await not(`SELECT * FROM (SELECT dim.g, count(DISTINCT t.s) AS n FROM dim LEFT JOIN t ON dim.g = t.g GROUP BY dim.g) x ORDER BY 1`);
    await not(`SELECT * FROM (SELECT dim.g, avg(t.d) AS a FROM dim LEFT JOIN t ON dim.g = t.g GROUP BY dim.g) x ORDER BY 1`);
    // The preserved side's rows would be aggregated: t is not the null-supplying side.
    await not(`SELECT * FROM (SELECT dim.g, count(t.id) AS n FROM t LEFT JOIN dim ON dim.g = t.g GROUP BY dim.g) x ORDER BY 1 NULLS FIRST`);
    // A filter of t in WHERE, a column of t outside the aggregates, an ON conjunct over dim.
    await not(`SELECT * FROM (SELECT dim.g, count(t.id) AS n FROM dim LEFT JOIN t ON dim.g = t.g WHERE t.id IS NULL OR t.id > 10 GROUP BY dim.g) x ORDER BY 1`);
    await not(`SELECT * FROM (SELECT t.g, count(t.id) AS n FROM dim JOIN t ON dim.g = t.g GROUP BY t.g) x ORDER BY 1`);
    await not(`SELECT * FROM (SELECT dim.g, count(t.id) AS n FROM dim LEFT JOIN t ON dim.g = t.g AND dim.gname <> 'name2' GROUP BY dim.g) x ORDER BY 1`);
  });
});

describe('view merging: a derived table that filters and projects a join', () => {
  const merged = async (sql: string, expectShape?: string) => {
    const plan = await fx.planner(3).plan(sql);
    assert.match(plan.reason, /^derived table .* merged into the query; /, plan.reason);
    await check(sql, expectShape);
    return plan;
  };
  const kept = async (sql: string, run = true) => {
    const plan = await fx.planner(3).plan(sql);
    assert.doesNotMatch(plan.reason, /merged into the query/, plan.reason);
    if (run) await check(sql);
  };
  test('an aggregate over the derived table becomes partial aggregates over its tables (TPC-H Q07-Q09 form)', async () => {
    const plan = await merged('SELECT k, sum(v) AS s, count(*) FROM (SELECT g AS k, d * 2 AS v FROM t WHERE id < 2000) x WHERE v > 1 GROUP BY k ORDER BY k', 'scan-aggregate');
    assert.match(plan.reason, /partial aggregates per fragment/);
    await merged('SELECT gname, count(*) AS n, max(x.id) FROM (SELECT dim.gname, t.id FROM t JOIN dim ON t.g = dim.g WHERE t.b) x GROUP BY 1 ORDER BY 1', 'scan-aggregate');
    // Column aliases, qualified names, an unaliased item keeps its name, ORDER BY a select alias.
    await merged('SELECT a, count(*) AS c FROM (SELECT g, s FROM t) AS x(a, b) GROUP BY a ORDER BY c DESC, a', 'scan-aggregate');
    await merged('SELECT x.k, max(x.v) FROM (SELECT g AS k, id AS v FROM t) x WHERE x.v > 10 GROUP BY x.k ORDER BY 1', 'scan-aggregate');
    await merged('SELECT k * 10 AS k10, v FROM (SELECT g AS k, id AS v FROM t WHERE id % 7 = 0) x ORDER BY v DESC LIMIT 5', 'top-k');
    // Column aliases that swap the body's names.
    await merged('SELECT a, b FROM (SELECT g AS a, id AS b FROM t WHERE id < 40) AS x(b, a) ORDER BY a, b', 'scan');
  });
  test('what is not plainly the same query is left as written', async () => {
    await kept('SELECT max(c) FROM (SELECT g, count(*) AS c FROM t GROUP BY g) x');
    await kept('SELECT count(*) FROM (SELECT DISTINCT g FROM t) x');
    await kept('SELECT sum(id) FROM (SELECT id FROM t ORDER BY id DESC LIMIT 5) x');
    await kept('SELECT k, r FROM (SELECT g AS k, row_number() OVER (ORDER BY id) AS r FROM t) x WHERE r < 4 ORDER BY r');
    // ORDER BY v is the select alias (v + 1), not the derived column.
    await kept('SELECT v + 1 AS v FROM (SELECT id AS v FROM t WHERE id < 20) x ORDER BY v DESC LIMIT 3');
    // The alias g names a column of t, which the merged v (g + 1) reads.
    await kept('SELECT k AS g, v FROM (SELECT id AS k, g + 1 AS v FROM t WHERE id < 30) x ORDER BY v, g');
    // HAVING id is the alias; merged, it could bind to t.id.
    await kept('SELECT k, count(*) AS id FROM (SELECT g AS k FROM t) x GROUP BY k HAVING id > 5 ORDER BY k');
    // A subquery in the outer query binds names in a scope of its own.
    await kept(`SELECT k FROM (SELECT g AS k FROM t WHERE id < 50) x WHERE k IN (SELECT g FROM dim WHERE gname = 'name3') ORDER BY 1`);
    // Another FROM item beside the derived table.
    await kept('SELECT count(*) FROM dim, (SELECT g AS k FROM t) x WHERE dim.g = x.k');
    // Volatile: merged, random() would be drawn once per reference.
    await kept('SELECT k, k = k FROM (SELECT random() AS k FROM t) x', false);
  });
});

describe('pushdown + single-node: aggregating subqueries sent as partials', () => {
  const views = (plan: { reduce: { views: { name: string }[] } }) => plan.reduce.views.map((v) => v.name).sort();
  test('a derived table read twice (TPC-H Q15 form): t is not pulled up, one set of partials serves both', async () => {
    const body = 'SELECT g AS k, sum(d) AS total FROM t WHERE id < 2000 GROUP BY g';
    const sql = `SELECT dim.g, gname, total FROM dim, (${body}) r WHERE dim.g = k AND total = (SELECT max(total) FROM (${body}) r2) ORDER BY 1`;
    const plan = await fx.planner(3).plan(sql);
    assert.equal(plan.shape, 'single-node');
    assert.deepEqual(views(plan), ['dim', 't_partials']);
    const partials = plan.fragments.filter((f) => f.output === 't_partials');
    assert.equal(partials.length, 3);
    for (const f of partials) assert.match(f.sql, /sum\(d\).*GROUP BY g/);
    // The single-node step finishes the aggregate over the partials, for both references.
    assert.equal(plan.reduce.sql.match(/FROM t_partials/g)?.length, 2);
    assert.match(plan.reason, /partial aggregates per fragment for an aggregate subquery over t/);
    await check(sql, 'single-node');
  });
  test('a CTE, a scalar subquery, a top-k derived table; not where the table is pulled up anyway (TPC-H Q11 form)', async () => {
    // The outer aggregate is single-node (a subquery in HAVING) and pulls t up: the subquery
    // is aggregated over those rows, not over a second scan of t.
    const having = 'SELECT g, sum(d) AS s FROM t GROUP BY g HAVING sum(d) > (SELECT sum(d) / 10 FROM t WHERE b) ORDER BY g';
    assert.deepEqual(views(await fx.planner(3).plan(having)), ['t']);
    await check(having, 'single-node');
    const scalar = 'SELECT gname FROM (SELECT g, gname FROM dim) x WHERE g = (SELECT max(g) FROM t WHERE id < 100) OR g = (SELECT min(nullable_i) FROM t) ORDER BY 1';
    assert.deepEqual(views(await fx.planner(3).plan(scalar)), ['dim', 't_partials', 't_partials2']);
    await check(scalar);
    const cte = 'WITH x AS (SELECT g, sum(d) AS sd, count(DISTINCT s) AS n FROM t GROUP BY g) SELECT * FROM x WHERE sd > 100 ORDER BY g';
    assert.deepEqual(views(await fx.planner(3).plan(cte)), ['t_partials']);
    await check(cte, 'single-node');
    const topK = 'SELECT gname, d FROM dim, (SELECT g, d FROM t ORDER BY d DESC, id LIMIT 5) x WHERE dim.g = x.g ORDER BY 2 DESC, 1';
    const plan = await fx.planner(3).plan(topK);
    assert.deepEqual(views(plan), ['dim', 't_partials']);
    assert.match(plan.reason, /a top-k subquery over t/);
    await check(topK, 'single-node');
  });
  test('what does not split stays pulled up: correlated, holistic, volatile, a CTE of the query around it', async () => {
    // t in the derived table is the CTE, not the table t: on its own it would bind to the table.
    const cte = 'WITH t AS (SELECT g, 1.5 AS d FROM dim) SELECT * FROM (SELECT t.g, sum(t.d) AS s, count(dim.gname) AS n FROM t JOIN dim ON t.g = dim.g GROUP BY t.g) x ORDER BY 1';
    assert.deepEqual(views(await fx.planner(3).plan(cte)), ['dim']);
    await check(cte, 'single-node');
    const correlated = 'SELECT count(*) FROM (SELECT g FROM t a WHERE d > (SELECT avg(d) FROM t b WHERE b.g = a.g)) x';
    assert.deepEqual(views(await fx.planner(3).plan(correlated)), ['t']);
    await check(correlated);
    const holistic = 'SELECT max(m) FROM (SELECT g, median(d) AS m FROM t GROUP BY g) x';
    assert.deepEqual(views(await fx.planner(3).plan(holistic)), ['t']);
    await check(holistic, 'single-node');
    // random() would be drawn by other rows, and once for two equal bodies.
    const volatile = 'SELECT count(*) FROM (SELECT g, sum(d * random()) AS r FROM t GROUP BY g) x, (SELECT g, sum(d * random()) AS r FROM t GROUP BY g) y WHERE x.g = y.g';
    assert.deepEqual(views(await fx.planner(3).plan(volatile)), ['t']);
  });
});

describe('pushdown + single-node', () => {
  const queries = [
    'SELECT median(d), quantile_cont(f, 0.9) FROM t',
    'WITH x AS (SELECT g, sum(d) AS sd FROM t GROUP BY g) SELECT * FROM x WHERE sd > 100 ORDER BY g',
    'SELECT id, sum(d) OVER (PARTITION BY g ORDER BY id) AS running FROM t WHERE id < 40 ORDER BY id',
    'SELECT s FROM t WHERE id IN (SELECT max(id) FROM t GROUP BY g) ORDER BY s',
    'SELECT a.id, b.id FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.id < 5 ORDER BY 1',
    'SELECT g, count(DISTINCT s) FILTER (WHERE b) FROM t GROUP BY g ORDER BY g',
    'SELECT id FROM t WHERE id < 3 UNION ALL SELECT g FROM dim ORDER BY 1',
    'SELECT g, s, count(*) FROM t GROUP BY ROLLUP (g, s) ORDER BY ALL NULLS FIRST',
    'SELECT string_agg(s, \',\' ORDER BY s) FROM (SELECT DISTINCT s FROM t)',
    'SELECT count(*) FROM t WHERE EXISTS (SELECT * FROM dim WHERE dim.g = t.g AND gname = \'name3\')',
  ];
  for (const q of queries) test(q, () => check(q, 'single-node'));
  test('projection and filters are pushed down, files pruned', async () => {
    const plan = await fx.planner(3).plan(`SELECT median(d) FROM t WHERE id >= 2600`);
    assert.equal(plan.shape, 'single-node');
    // id is read by the filter alone, which the fragments apply: it is not pulled up, and
    // the single-node step does not filter again.
    assert.deepEqual(plan.scans[0].columns, ['d']);
    assert.equal(plan.scans[0].filesKept, 1);
    assert.match(plan.fragments[0].sql, /WHERE \(?id >= 2600\)?/);
    assert.doesNotMatch(plan.reduce.sql, /2600/);
  });
  test('a column only a pushed filter reads is not pulled up, outer joins included', async () => {
    // The ON filter of the null-supplying side is applied below the join (TPC-H Q13's shape,
    // with avg, which eager aggregation leaves as it is: with count, t is aggregated first).
    const q13 = `SELECT c, count(*) AS n FROM (SELECT dim.g, avg(t.id) AS c FROM dim LEFT JOIN t ON dim.g = t.g AND t.s NOT LIKE '%7%' GROUP BY dim.g) x GROUP BY c ORDER BY ALL`;
    const plan = await fx.planner(3).plan(q13);
    assert.equal(plan.shape, 'single-node');
    assert.deepEqual(plan.reduce.views.find((v) => v.name === 't')!.columns.map((c) => c.name).sort(), ['g', 'id']);
    await check(q13, 'single-node');
    // A WHERE filter on the null-supplying side is not pushable (it removes null-extended
    // rows): it stays in the single-node step, and the answer is DuckDB's.
    await check(`SELECT * FROM (SELECT dim.g, t.id FROM dim LEFT JOIN t ON dim.g = t.g AND t.id < 30 WHERE t.s IS NULL OR t.s <> 'x') x ORDER BY ALL`, 'single-node');
    await check(`SELECT * FROM (SELECT dim.g, count(t.id) FROM dim LEFT JOIN t ON dim.g = t.g WHERE t.id IS NULL OR t.id > 2990 GROUP BY ALL) x ORDER BY ALL`, 'single-node');
    await check(`SELECT * FROM (SELECT dim.g, t.id FROM t RIGHT JOIN dim ON dim.g = t.g AND t.s LIKE '%1%' WHERE dim.gname <> 'name2') x ORDER BY ALL`, 'single-node');
  });
  test('a table referenced twice is pulled up with the OR of its filters', async () => {
    const sql = `SELECT count(*) FROM t a, t b WHERE a.id < 10 AND b.id > 2990 AND a.g = b.g`;
    const plan = await fx.planner(3).plan(sql);
    assert.equal(plan.scans[0].filesKept, 2);
    await check(sql);
  });
});

describe('plan cache', () => {
  test('a repeated query reuses its plan until a table it read changes', async () => {
    const planner = fx.planner(3);
    const sql = 'SELECT g, count(*) FROM t GROUP BY g';
    const first = await planner.plan(sql);
    assert.equal(await planner.plan(sql), first, 'same plan object from the cache');
    assert.notEqual(await planner.plan(sql, { fragments: 2 }), first, 'the fragment count is part of the key');
    const t = (await fx.catalog.getTable('t'))!;
    fx.catalog.set({ ...t, files: t.files.slice(0, 2), snapshotId: `${t.snapshotId}-changed` });
    try {
      const replanned = await planner.plan(sql);
      assert.notEqual(replanned, first);
      assert.equal(replanned.scans[0].filesTotal, 2);
    } finally {
      fx.catalog.set(t);
    }
  });
});

describe('exact constants', () => {
  test('integer constants beyond 2^53 survive the AST round trip', async () => {
    const sql = 'SELECT 9007199254740993 AS a, -9223372036854775808 AS b, 170141183460469231731687303715884105727 AS c, count(*) AS n FROM t WHERE id < 9007199254740993';
    const plan = await fx.planner(2).plan(sql);
    assert.match(plan.sql, /9007199254740993/);
    const got = await runPlanLocally(fx.engine, plan);
    const want = await fx.engine.query(sql);
    assert.deepEqual(got.rows, want.rows);
    assert.equal(got.rows[0][0], '9007199254740993');
  });
  test('a schema change without a new snapshot replans', async () => {
    const planner = fx.planner(3);
    const t = (await fx.catalog.getTable('t'))!;
    const first = await planner.plan('SELECT * FROM t LIMIT 1');
    fx.catalog.set({ ...t, columns: t.columns.slice(0, 3) });
    try {
      const second = await planner.plan('SELECT * FROM t LIMIT 1');
      assert.notEqual(second, first);
      assert.equal(second.output.length, 3);
    } finally {
      fx.catalog.set(t);
    }
  });
});

describe('semi-join reduction', () => {
  test('a pulled-up table keeps only rows that can join a small filtered table', async () => {
    // The subquery forces single-node; t joins dim on g with a filter on dim.
    const sql = `SELECT count(*) AS n, (SELECT count(*) FROM dim) AS d FROM t, dim WHERE t.g = dim.g AND dim.gname IN ('name1', 'name2')`;
    const plan = await fx.planner(3).plan(sql);
    assert.equal(plan.shape, 'single-node');
    assert.match(plan.reason, /semi-join reduction: t by dim/);
    const tFragments = plan.fragments.filter((f) => f.output === 't');
    assert.ok(tFragments.every((f) => f.inputs.some((i) => i.table === 'dim')), 'dim is broadcast to the fragments of t');
    assert.match(tFragments[0].sql, /g = ANY\(SELECT g FROM dim WHERE/);
    await check(sql);
  });
  test('the reduction chains: t by dim, dim by a smaller filtered table; never by a larger one', async () => {
    // dim has no filter of its own; it joins `regions`, which is filtered: t keeps the rows
    // whose g is among the dims in region 'r1'.
    const path = join(fx.dir, 'regions.parquet');
    await fx.engine.exec(`COPY (SELECT 'name' || range AS gname, 'r' || (range % 2) AS region FROM range(7) WHERE range < 3) TO ${sqlString(path)} (FORMAT parquet)`);
    await fx.catalog.addFiles(fx.engine, 'regions', [path]);
    await fx.engine.exec(`CREATE OR REPLACE VIEW regions AS SELECT * FROM read_parquet(${sqlString(path)})`);
    const sql = `SELECT count(*) AS n, sum(t.id) AS s, (SELECT count(*) FROM dim) AS d FROM t, dim, regions WHERE t.g = dim.g AND dim.gname = regions.gname AND regions.region = 'r1'`;
    const plan = await fx.planner(3).plan(sql);
    assert.equal(plan.shape, 'single-node');
    assert.match(plan.reason, /semi-join reduction: t by dim by regions/);
    const tFragments = plan.fragments.filter((f) => f.output === 't');
    assert.ok(tFragments.every((f) => ['dim', 'regions'].every((x) => f.inputs.some((i) => i.table === x))), 'both small tables reach the fragments of t');
    // dim (7 rows) is not reduced by t, which is larger.
    assert.doesNotMatch(plan.reason, /dim by t/);
    await check(sql);
  });
  test('no reduction across an outer join', async () => {
    const sql = `SELECT count(*), (SELECT 1) FROM t LEFT JOIN dim ON t.g = dim.g AND dim.gname = 'name1'`;
    const plan = await fx.planner(3).plan(sql);
    assert.doesNotMatch(plan.reason, /semi-join/);
    await check(sql);
  });
});

describe('semi-join reduction through correlation', () => {
  test('a correlated subquery\'s table is reduced by the filtered outer table', async () => {
    // Shaped like TPC-H Q17: the inner t is correlated with dim.g, and dim is filtered.
    const sql = `SELECT count(*) AS n FROM t, dim WHERE t.g = dim.g AND dim.gname = 'name2'
      AND t.id > (SELECT avg(t2.id) FROM t t2 WHERE t2.g = dim.g)`;
    const plan = await fx.planner(3).plan(sql);
    assert.equal(plan.shape, 'single-node');
    const tFragments = plan.fragments.filter((f) => f.output === 't');
    // Both references of t (outer and correlated) are reduced, so their OR is too.
    assert.ok(tFragments.every((f) => /ANY\(SELECT g FROM dim WHERE/.test(f.sql)), tFragments[0]?.sql);
    await check(sql);
  });
  test('the outer table is not reduced by the inner one (outer rows may lack inner matches)', async () => {
    const sql = `SELECT dim.gname, (SELECT count(*) FROM t WHERE t.g = dim.g AND t.id < 10) AS c FROM dim ORDER BY 1`;
    const plan = await fx.planner(3).plan(sql);
    const dimFragments = plan.fragments.filter((f) => f.output === 'dim');
    assert.ok(dimFragments.every((f) => !/ANY\(/.test(f.sql)), dimFragments[0]?.sql);
    await check(sql);
  });
  test('no reduction from an unfiltered outer table', async () => {
    const sql = `SELECT count(*) FROM dim WHERE EXISTS (SELECT 1 FROM t WHERE t.g = dim.g AND t.id < 5)`;
    const plan = await fx.planner(3).plan(sql);
    assert.doesNotMatch(plan.reason, /semi-join/);
    await check(sql);
  });
});

describe('joinRowsEstimate', () => {
  const table = (name: string, rows: number, stats: Record<string, [number, number]>) => ({
    name, kind: 'parquet' as const, snapshotId: '1',
    columns: Object.keys(stats).map((n) => ({ name: n, type: 'BIGINT' })).concat([{ name: 'note', type: 'VARCHAR' }]),
    files: [{ uri: `file:///${name}.parquet`, sizeBytes: rows * 10, rowCount: rows, stats: Object.fromEntries(Object.entries(stats).map(([k, [lo, hi]]) => [k, { min: String(lo), max: String(hi) }])) }],
  });
  const col = (name: string, type = 'BIGINT') => ({ name, type });
  const customer = table('customer', 150_000, { c_custkey: [1, 150_000], c_nationkey: [0, 24] });
  const supplier = table('supplier', 10_000, { s_suppkey: [1, 10_000], s_nationkey: [0, 24] });
  const orders = table('orders', 1_500_000, { o_custkey: [1, 149_999], o_orderkey: [1, 6_000_000] });

  test('a key join gives about the rows of its larger side; a join on a low-cardinality key multiplies', () => {
    assert.equal(Math.round(joinRowsEstimate(customer, col('c_custkey'), orders, col('o_custkey'))), 1_500_000);
    assert.equal(joinRowsEstimate(customer, col('c_nationkey'), supplier, col('s_nationkey')), (150_000 * 10_000) / 25);
  });

  test('a key without statistics: the other one divides; with none, a key join', () => {
    const result = { ...table('__pdb_m1', 200_000, {}), columns: [col('c_nationkey')] };
    assert.equal(joinRowsEstimate(result, col('c_nationkey'), supplier, col('s_nationkey')), (200_000 * 10_000) / 25);
    assert.equal(joinRowsEstimate(result, col('x'), { ...result, name: 'other' }, col('x')), 200_000);
    // A text key has no range: only the other side's counts.
    assert.equal(joinRowsEstimate(customer, col('note', 'VARCHAR'), supplier, col('s_suppkey')), 150_000);
  });
});
