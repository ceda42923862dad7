// The differential suite for multi-stage plans: with the broadcast limit at 0 every table
// is "large", so joins of two tables are hash-partitioned on their keys and run as a stage
// of one task per partition. Every query of the main suite and the multi-stage queries run
// at 1, 3 and 8 shuffle partitions and must equal plain DuckDB's answer.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import { formatPlan } from '../../runtime/planner/explain.ts';
import { assertSameResult } from '../helpers/compare.ts';
import { QUERIES, STAGE_QUERIES, assertSameAsDuckDB, openDifferential, skippedIdenticalPlans, type DifferentialFixture } from '../helpers/differential.ts';

const PARTITIONS = [1, 3, 8];

let f: DifferentialFixture;

before(async () => {
  // Every grouped aggregate over one split table also aggregates in a stage (partitioned
  // aggregation), whatever its estimated groups.
  // In-process workers: the plans and shuffles are what this suite checks; the main suite
  // runs every query through the worker processes.
  // A second cluster runs every subquery as a step first (materialized subqueries): their
  // results are then "large" too, and joined as partitioned (semi) joins.
  // Co-split joins off: the demo data is written in key order, and this suite is about the
  // hash-partitioned stages (the main suite runs co-split joins).
  f = await openDifferential({ PUFFINDB_BROADCAST_LIMIT_BYTES: '0', PUFFINDB_PARTITIONED_AGGREGATE_GROUPS: '0', PUFFINDB_CO_SPLIT: 'off' }, 'in-process', { PUFFINDB_SUBQUERY_STAGE_BYTES: '0' });
});

after(async () => {
  console.log(`runs skipped for a plan identical to one already run: ${skippedIdenticalPlans.count}`);
  await f?.close();
});

async function differential(name: string, sql: string, staged?: boolean, counts: readonly number[] = PARTITIONS, keyed?: boolean): Promise<void> {
  for (const partitions of counts) {
    await assertSameAsDuckDB(f, name, sql, { fragments: 2, partitions }, (plan) => {
      if (keyed) {
        // The table's rows hash-partitioned on the keys, the query run per partition.
        assert.equal(plan.shape, 'key-partitioned', `${name}: ${plan.reason}`);
        assert.deepEqual(plan.stages?.map((s) => [s.id, s.tasks]), [['__keyed', partitions]]);
      }
      if (staged) {
        // The join stage, then (a grouped aggregate) the stage that aggregates its partials.
        assert.ok([1, 2].includes(plan.stages?.length ?? 0), `${name}: a partitioned join (${plan.reason})`);
        assert.equal(plan.stages![0].tasks, partitions);
        if (plan.stages!.length === 2) assert.equal(plan.stages![1].id, '__final', plan.reason);
      }
    });
  }
}

describe('multi-stage: queries written for stages', () => {
  for (const q of STAGE_QUERIES) test(q.name, () => differential(q.name, q.sql, q.staged, PARTITIONS, q.keyed));
});

// Partitioned aggregation: the partials are hash-partitioned on the group keys and a stage
// of one task per partition runs the final aggregate; the reduce step orders and limits.
const AGGREGATE_STAGE_QUERIES: { name: string; sql: string }[] = [
  { name: 'many groups, ORDER BY ... LIMIT per task and again at the end', sql: 'SELECT l_orderkey, sum(l_quantity) AS q, count(*) AS n FROM lineitem GROUP BY l_orderkey ORDER BY q DESC, l_orderkey LIMIT 10' },
  { name: 'count(DISTINCT) and HAVING per group', sql: 'SELECT l_suppkey, count(DISTINCT l_partkey) AS parts, count(*) AS n FROM lineitem GROUP BY 1 HAVING count(*) > 550' },
  { name: 'OFFSET: the tasks do not limit', sql: 'SELECT o_custkey, o_orderstatus, avg(o_totalprice) AS a FROM orders GROUP BY ALL ORDER BY 1, 2 LIMIT 20 OFFSET 5' },
  { name: 'DISTINCT over the groups of every task', sql: 'SELECT DISTINCT count(*) AS n FROM lineitem GROUP BY l_orderkey ORDER BY n' },
  { name: 'NULL group keys', sql: 'SELECT grp, s, count(*) AS n, sum(v) AS v FROM nullable GROUP BY grp, s' },
  { name: 'string keys, ORDER BY ALL', sql: 'SELECT l_shipmode, l_returnflag, count(*) AS n, min(l_shipdate) AS d FROM lineitem GROUP BY ALL ORDER BY ALL' },
  { name: 'few groups: most partitions empty', sql: 'SELECT l_orderkey, count(*) AS n FROM lineitem WHERE l_orderkey < 40 GROUP BY 1 ORDER BY 1' },
  { name: 'no row survives the filter', sql: 'SELECT l_orderkey, count(*) AS n FROM lineitem WHERE l_orderkey < 0 GROUP BY 1' },
];

describe('multi-stage: partitioned aggregation after a partitioned join', () => {
  const sql = 'SELECT o_custkey, o_orderpriority, count(*) AS n, sum(l_quantity) AS q FROM orders JOIN lineitem ON o_orderkey = l_orderkey WHERE l_discount > 0.02 GROUP BY ALL HAVING count(*) > 3 ORDER BY q DESC, 1, 2 LIMIT 15';
  test('join stage -> aggregate stage -> reduce', async () => {
    for (const partitions of PARTITIONS) {
      await assertSameAsDuckDB(f, 'join then aggregate', sql, { fragments: 3, partitions }, (plan) => {
        assert.deepEqual(plan.stages?.map((s) => [s.id, s.tasks, s.output.partitioning.kind]), [['__partials', partitions, 'hash'], ['__final', partitions, 'single']], plan.reason);
      });
    }
  });
});

test('collations: a collated group key or filter gets the right answer (evaluated in one place)', async () => {
  // Half the modes upper case, half lower: seven groups under NOCASE (their counts only: which
  // spelling a group shows is DuckDB's choice).
  const sql = 'SELECT count(*) AS n FROM lineitem GROUP BY (CASE WHEN l_orderkey % 2 = 0 THEN upper(l_shipmode) ELSE lower(l_shipmode) END) COLLATE NOCASE ORDER BY 1';
  await assertSameAsDuckDB(f, 'collated key', sql, { fragments: 3, partitions: 3 }, (plan) => assert.equal(plan.stages, undefined, plan.reason));
  // Pruning by statistics must not drop files whose values match only under the collation.
  const filtered = "SELECT count(*) AS n, count(DISTINCT l_shipmode) AS modes FROM lineitem WHERE l_shipmode COLLATE NOCASE = 'air' OR l_shipmode COLLATE NOCASE IN ('mail', 'Ship')";
  await assertSameAsDuckDB(f, 'collated filter', filtered, { fragments: 3, partitions: 3 });
});

describe('multi-stage: partitioned aggregation', () => {
  for (const q of AGGREGATE_STAGE_QUERIES) {
    test(q.name, async () => {
      for (const partitions of PARTITIONS) {
        await assertSameAsDuckDB(f, q.name, q.sql, { fragments: 3, partitions }, (plan) => {
          assert.deepEqual(plan.stages?.map((s) => [s.id, s.tasks]), [['__final', partitions]], `${q.name}: ${plan.reason}`);
          assert.ok(plan.fragments.every((x) => x.shuffleWrite?.partitioning.keys.length), plan.reason);
        });
      }
    });
  }
});

describe('multi-stage: TPC-H with every table over the broadcast limit', async () => {
  const queries = await loadTpchQueries();
  for (const q of queries) test(`TPC-H ${q.id}`, () => differential(`TPC-H ${q.id}`, q.sql));
});

// A query over one table plans the same whatever the broadcast limit and the partition
// count (nothing is joined), and the main suite runs it already; the ones naming several
// tables are the ones this limit changes.
const MULTI_TABLE = /\bjoin\b|\bfrom\s+\w+(\s+\w+)?\s*,|\bunion\b|\bexcept\b|\bintersect\b|\(\s*select\b/i;

describe('multi-stage: the main suite\'s multi-table queries with every table over the broadcast limit', () => {
  for (const q of QUERIES.filter((x) => MULTI_TABLE.test(x.sql))) test(q.name, () => differential(q.name, q.sql));
});

// Materialized subqueries with every table over the broadcast limit: each subquery runs as
// a step of its own first, and its result, "large" like every table here, is split or
// hash-partitioned (an IN subquery's result as a partitioned semi join). At 3 partitions:
// the queries also run at 1, 3 and 8 above, as planned without steps.
const SUBQUERY = /\(\s*select\b|\bwith\b/i;

describe('multi-stage: subqueries as steps, their results over the broadcast limit', async () => {
  // (TPC-H Q21's subqueries are correlated by an inequality: it has no step.)
  const tpch = (await loadTpchQueries()).filter((q) => SUBQUERY.test(q.sql)).map((q) => ({ name: `TPC-H ${q.id}`, sql: q.sql, materialized: q.id !== 'q21' }));
  for (const q of [...tpch, ...QUERIES.filter((x) => x.materialized)]) {
    test(q.name, () => assertSameAsDuckDB(f, q.name, q.sql, { fragments: 2, partitions: 3 }, (plan) => {
      if (q.materialized) assert.ok((plan.materialized?.steps.length ?? 0) > 0 || plan.shape === 'staged', `${q.name}: steps first (${plan.reason})`);
    }, f.also!));
  }
});

// Joins of three or more large tables (with subqueries as steps): the smallest joined pair
// runs first as a derived table, a partitioned join of its own, until two are left.
const MULTI_WAY: { name: string; sql: string }[] = [
  { name: 'three large tables, columns of the same name on every side', sql: 'SELECT a.id AS a_id, b.id AS b_id, c.n, count(*) OVER (PARTITION BY c.k) AS w FROM nullable a JOIN skew_a b ON a.id = b.id JOIN skew_b c ON b.k = c.k AND b.n = c.n WHERE a.grp IS NOT NULL ORDER BY 1, 2, 3, 4 LIMIT 30' },
  { name: 'four large tables, comma joins, a filter on each', sql: "SELECT n_name, count(*) AS n, sum(l_extendedprice) AS s FROM customer, orders, lineitem, nation WHERE c_custkey = o_custkey AND o_orderkey = l_orderkey AND c_nationkey = n_nationkey AND l_quantity > 30 AND o_orderdate < DATE '1996-01-01' GROUP BY 1 ORDER BY 1" },
];

describe('multi-stage: joins of three or more large tables, a pair first', async () => {
  // Q07 and Q08 read nation twice (n1, n2): a table read twice is no obstacle, only a pair of
  // one table with itself is never the one joined first.
  const tpch = (await loadTpchQueries()).filter((q) => ['q03', 'q05', 'q07', 'q08', 'q10', 'q18'].includes(q.id)).map((q) => ({ name: `TPC-H ${q.id}`, sql: q.sql }));
  for (const q of [...MULTI_WAY, ...tpch]) {
    test(q.name, () => assertSameAsDuckDB(f, q.name, q.sql, { fragments: 2, partitions: 3 }, (plan) => {
      // In the query, or (Q07, Q08: the join is a derived table's) in the step that runs it.
      const reasons = [plan.reason, ...(plan.materialized?.steps ?? []).map((st) => st.plan?.reason ?? '')];
      assert.ok(reasons.some((r) => /joined first \(derived table __pdb_j\d+\)/.test(r)), reasons.join('\n'));
    }, f.also!));
  }
});

test('NOT IN and NOT EXISTS over a large result without NULLs are partitioned anti joins; NOT IN over one with a NULL is not', async () => {
  const anti = [
    // NOT EXISTS as decorrelated: (x IS NULL OR NOT x IN result); x (grp) has NULLs, which are kept.
    'SELECT count(*), sum(id) FROM nullable a WHERE NOT EXISTS (SELECT 1 FROM nullable b WHERE b.grp = a.grp AND b.id > 250)',
    // NOT IN over a result without NULL: a NULL x is dropped (the result is not empty).
    'SELECT count(*), sum(id) FROM nullable WHERE grp NOT IN (SELECT grp FROM nullable WHERE grp IS NOT NULL AND grp > 0)',
    // Q22's form: customers without orders.
    'SELECT count(*), sum(c_acctbal) FROM customer WHERE NOT EXISTS (SELECT * FROM orders WHERE o_custkey = c_custkey)',
  ];
  for (const sql of anti) {
    await assertSameAsDuckDB(f, sql, sql, { fragments: 2, partitions: 3 }, (plan) => {
      assert.match(plan.reason, /hash-partitioned on/, plan.reason);
      assert.ok(plan.join?.partitioned, plan.reason);
    }, f.also!);
  }
  // One NULL in the result makes NOT IN true for no row: not an anti join.
  const withNull = 'SELECT count(*) FROM nullable WHERE grp NOT IN (SELECT grp FROM nullable WHERE id < 50)';
  await assertSameAsDuckDB(f, withNull, withNull, { fragments: 2, partitions: 3 }, (plan) => {
    assert.equal(plan.join?.partitioned, undefined, plan.reason);
  }, f.also!);
});

test('an IN subquery over a large result is a partitioned semi join', async () => {
  const sql = 'SELECT count(*), sum(o_totalprice) AS t FROM orders WHERE o_custkey IN (SELECT c_custkey FROM customer WHERE c_acctbal > 0)';
  await assertSameAsDuckDB(f, 'semi join of a result', sql, { fragments: 2, partitions: 3 }, (plan) => {
    assert.match(plan.reason, /hash-partitioned on/, plan.reason);
    assert.equal(plan.join?.partitioned?.type !== undefined, true, plan.reason);
  }, f.also!);
});

// A later stage's partitions grouped into tasks by the bytes its producers wrote (the
// default target is megabytes, which makes every shuffle here one task; 48 KiB makes
// several tasks of a few partitions each). Every TPC-H query and the stage queries at 8
// partitions, their answers DuckDB's.
describe('multi-stage: partitions grouped into tasks by their bytes', async () => {
  const tpch = (await loadTpchQueries()).map((q) => ({ name: `TPC-H ${q.id}`, sql: q.sql }));
  let grouped: Awaited<ReturnType<DifferentialFixture['variant']>>;
  before(async () => {
    // Every shuffle piece in an object (none inline), so the GETs are counted.
    grouped = await f.variant({ PUFFINDB_STAGE_TASK_BYTES: String(48 * 1024), PUFFINDB_INLINE_LIMIT_BYTES: '0' });
  });
  for (const q of [...STAGE_QUERIES, ...tpch]) {
    test(q.name, async () => {
      await assertSameAsDuckDB(f, q.name, q.sql, { fragments: 2, partitions: 8 }, undefined, grouped);
    });
  }
  test('some stages ran fewer tasks than partitions, each task one GET per producer object', async () => {
    const sql = 'SELECT o_orderpriority, count(*) AS n, sum(l_quantity) AS q FROM orders JOIN lineitem ON o_orderkey = l_orderkey GROUP BY 1 ORDER BY 1';
    const got = await grouped.query(sql, { fragments: 2, partitions: 8, role: 'admin' });
    const join_ = (got.stats.stages ?? []).find((s) => s.stage === '__partials');
    assert.ok(join_, JSON.stringify(got.stats.stages));
    assert.equal(join_.partitions, 8, JSON.stringify(join_));
    assert.ok(join_.tasks > 1 && join_.tasks < 8, `the join's 8 partitions in 2..7 tasks: ${JSON.stringify(join_)}`);
    // Two sides of 2 producers each: a task GETs each producer's object at most once, however many partitions it reads.
    assert.ok(join_.shuffleGets <= join_.tasks * 4, JSON.stringify(join_));
    assertSameResult(got, await f.reference.query(sql), { ordered: true }, 'grouped join');
    // explain --analyze says so.
    assert.match(formatPlan(got.plan, { stages: got.stats.stages ?? [] }), new RegExp(`stage __partials: 8 task\\(s\\) on workers.*\\[actual: ${join_.tasks} task\\(s\\) for 8 partitions, `));
  });
});

// Co-split joins and key-grouped aggregates beside the hash-partitioned stages: with every
// table over the broadcast limit, a join on a key the files are written in is co-split, any
// other is hash-partitioned, and a query grouped by a ranged key under a hash-partitioned
// join must still aggregate after the join (its tasks hold rows by hash, not by file).
describe('multi-stage: co-split on, every table over the broadcast limit', async () => {
  const tpch = (await loadTpchQueries()).map((q) => ({ name: `TPC-H ${q.id}`, sql: q.sql }));
  let coSplit: Awaited<ReturnType<DifferentialFixture['variant']>>;
  before(async () => {
    coSplit = await f.variant({ PUFFINDB_CO_SPLIT: 'on' });
  });
  for (const q of [...STAGE_QUERIES, ...tpch]) {
    test(q.name, async () => {
      await assertSameAsDuckDB(f, q.name, q.sql, { fragments: 3, partitions: 3 }, undefined, coSplit);
    });
  }
  test('a hash-partitioned join grouped by a ranged key aggregates after the join', async () => {
    const sql = "SELECT l_orderkey, max(p_name) AS p, string_agg(l_linenumber::VARCHAR, ',' ORDER BY l_linenumber) AS lines FROM lineitem LEFT JOIN part ON l_partkey = p_partkey AND p_size < 3 WHERE l_orderkey < 3000 GROUP BY 1 ORDER BY 1";
    await assertSameAsDuckDB(f, sql, sql, { fragments: 2, partitions: 3 }, (plan) => {
      assert.equal(plan.join?.coSplit, undefined, plan.reason);
      assert.doesNotMatch(plan.reason, /whose values the fragments' files hold in disjoint ranges/, plan.reason);
    }, coSplit);
  });
});
