// The differential suite: every query runs through the local cluster (a pool of two worker
// processes) with 1, 2 and 7 fragments, and must equal plain DuckDB's answer over the same
// files: same columns and types, same rows as a multiset, same order where the outermost
// ORDER BY fixes it, floating point within a relative 1e-9.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ParquetCatalog } from '../../runtime/catalog/parquet-catalog.ts';
import { generateTpch } from '../../runtime/demo/tpch.ts';
import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString, sqlStringList } from '../../runtime/sql/quote.ts';
import { assertSameResult, isOrdered } from '../helpers/compare.ts';

const FRAGMENTS = [1, 2, 7];

/** Queries beyond TPC-H: each names what it exercises. */
export const QUERIES: { name: string; sql: string; shape?: string }[] = [
  // single-table aggregates, every supported function
  { name: 'count, sum, min, max, avg', shape: 'scan-aggregate', sql: 'SELECT count(*), count(l_comment), sum(l_quantity), min(l_shipdate), max(l_shipdate), avg(l_extendedprice) FROM lineitem' },
  { name: 'variance family by group', shape: 'scan-aggregate', sql: 'SELECT l_returnflag, l_linestatus, var_samp(l_discount), var_pop(l_tax), variance(l_quantity), stddev_samp(l_quantity), stddev_pop(l_extendedprice), stddev(l_discount) FROM lineitem GROUP BY ALL ORDER BY 1, 2' },
  { name: 'bool_and, bool_or', shape: 'scan-aggregate', sql: 'SELECT l_shipmode, bool_and(l_quantity > 1), bool_or(l_discount > 0.09) FROM lineitem GROUP BY 1 ORDER BY 1' },
  { name: 'count distinct by group', shape: 'scan-aggregate', sql: 'SELECT l_returnflag, count(DISTINCT l_suppkey), count(DISTINCT l_partkey), sum(DISTINCT l_linenumber) FROM lineitem GROUP BY 1 ORDER BY 1' },
  { name: 'bit_and, bit_or, bit_xor', shape: 'scan-aggregate', sql: 'SELECT bit_and(l_orderkey), bit_or(l_orderkey), bit_xor(l_linenumber) FROM lineitem' },
  { name: 'count_if, favg, fsum', shape: 'scan-aggregate', sql: 'SELECT count_if(l_discount = 0), favg(l_tax), fsum(l_tax), mean(l_discount) FROM lineitem' },
  { name: 'product, regr_count', shape: 'scan-aggregate', sql: 'SELECT o_orderpriority, product(CASE WHEN o_orderkey < 200 THEN 1.001 END), regr_count(o_totalprice, o_shippriority) FROM orders GROUP BY 1 ORDER BY 1' },
  { name: 'FILTER clauses', shape: 'scan-aggregate', sql: "SELECT count(*) FILTER (WHERE o_orderstatus = 'F'), sum(o_totalprice) FILTER (WHERE o_orderpriority = '1-URGENT') FROM orders" },
  { name: 'HAVING, ORDER BY alias, LIMIT', shape: 'scan-aggregate', sql: 'SELECT l_suppkey, sum(l_quantity) AS s FROM lineitem GROUP BY 1 HAVING sum(l_quantity) > 300 ORDER BY s DESC, l_suppkey LIMIT 10' },
  { name: 'ORDER BY an aggregate not selected', shape: 'scan-aggregate', sql: 'SELECT l_shipmode FROM lineitem GROUP BY 1 ORDER BY sum(l_quantity) DESC, 1' },
  { name: 'GROUP BY an expression', shape: 'scan-aggregate', sql: 'SELECT year(l_shipdate) % 2 = 0 AS even, count(*) FROM lineitem GROUP BY 1 ORDER BY 1' },
  { name: 'CASE inside aggregates', shape: 'scan-aggregate', sql: "SELECT sum(CASE WHEN o_orderpriority = '1-URGENT' THEN 1 ELSE 0 END) AS urgent, count(*) FROM orders" },
  { name: 'HAVING without GROUP BY', shape: 'scan-aggregate', sql: 'SELECT count(*) FROM nation HAVING count(*) > 10' },
  { name: 'window over an aggregate', shape: 'scan-aggregate', sql: 'SELECT l_returnflag, sum(l_quantity) AS s, rank() OVER (ORDER BY sum(l_quantity) DESC) AS r FROM lineitem GROUP BY 1 ORDER BY 1' },
  // top-k, scan, distinct
  { name: 'top-k', shape: 'top-k', sql: 'SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem ORDER BY l_extendedprice DESC, l_orderkey, l_linenumber LIMIT 10' },
  { name: 'top-k with OFFSET', shape: 'top-k', sql: 'SELECT o_orderkey, o_totalprice FROM orders ORDER BY o_totalprice, o_orderkey LIMIT 5 OFFSET 10' },
  { name: 'top-k by a hidden key', shape: 'top-k', sql: 'SELECT o_comment FROM orders ORDER BY o_orderkey DESC LIMIT 4' },
  { name: 'top-k over a star', shape: 'top-k', sql: 'SELECT * FROM customer ORDER BY c_acctbal DESC, c_custkey LIMIT 3' },
  // ORDER BY ALL: every output column in order (the first one alone leaves ties unsorted).
  { name: 'ORDER BY ALL top-k', shape: 'top-k', sql: 'SELECT l_returnflag, l_linestatus, l_quantity, l_orderkey, l_linenumber FROM lineitem ORDER BY ALL LIMIT 25' },
  { name: 'ORDER BY ALL DESC NULLS FIRST top-k', shape: 'top-k', sql: 'SELECT v, grp, id FROM nullable ORDER BY ALL DESC NULLS FIRST LIMIT 9' },
  { name: 'ORDER BY ALL scan', shape: 'scan', sql: 'SELECT o_orderpriority, o_orderstatus, o_orderkey FROM orders WHERE o_orderkey < 2000 ORDER BY ALL' },
  { name: 'ORDER BY ALL over a star', sql: 'SELECT * FROM nation ORDER BY ALL DESC' },
  { name: 'ORDER BY ALL aggregate', shape: 'scan-aggregate', sql: 'SELECT l_returnflag, l_linestatus, l_shipmode, count(*) AS n FROM lineitem GROUP BY ALL ORDER BY ALL' },
  { name: 'DISTINCT', shape: 'scan', sql: 'SELECT DISTINCT l_shipmode, l_shipinstruct FROM lineitem' },
  { name: 'DISTINCT ordered', shape: 'scan', sql: 'SELECT DISTINCT c_mktsegment FROM customer ORDER BY 1' },
  { name: 'projection with expressions and casts', shape: 'scan', sql: "SELECT l_orderkey::VARCHAR || ':' || l_linenumber AS k, l_quantity::DOUBLE / 3 AS third FROM lineitem WHERE l_orderkey < 40 ORDER BY 1" },
  { name: 'IN list (pruning)', shape: 'scan-aggregate', sql: 'SELECT count(*) FROM orders WHERE o_orderkey IN (1, 7, 32, 1000000)' },
  { name: 'BETWEEN on strings', shape: 'scan-aggregate', sql: "SELECT count(*) FROM customer WHERE c_mktsegment BETWEEN 'A' AND 'C'" },
  { name: 'select star ordered', sql: 'SELECT * FROM region ORDER BY r_regionkey' },
  // empty tables and empty results
  { name: 'empty result rows', shape: 'scan', sql: 'SELECT * FROM lineitem WHERE l_quantity < 0' },
  { name: 'empty result aggregate', shape: 'scan-aggregate', sql: 'SELECT count(*), sum(l_quantity), avg(l_discount), count(DISTINCT l_partkey) FROM lineitem WHERE l_quantity < 0' },
  { name: 'empty result grouped', shape: 'scan-aggregate', sql: 'SELECT l_returnflag, count(*) FROM lineitem WHERE l_quantity < 0 GROUP BY 1' },
  { name: 'empty table aggregate', shape: 'scan-aggregate', sql: 'SELECT count(*), sum(x), min(label), var_samp(x) FROM empty_t' },
  { name: 'empty table top-k', shape: 'top-k', sql: 'SELECT * FROM empty_t ORDER BY x LIMIT 3' },
  // NULLs
  { name: 'NULLs in aggregates and group keys', shape: 'scan-aggregate', sql: 'SELECT grp, count(*), count(v), sum(v), avg(v), min(s), max(s), stddev_samp(v) FROM nullable GROUP BY grp ORDER BY grp NULLS FIRST' },
  { name: 'IS NULL as a group key', shape: 'scan-aggregate', sql: 'SELECT s IS NULL AS missing, count(*) FROM nullable GROUP BY 1 ORDER BY 1' },
  { name: 'IS NULL filter', shape: 'scan-aggregate', sql: 'SELECT count(*) FROM nullable WHERE v IS NULL' },
  { name: 'NULLs FIRST in top-k', shape: 'top-k', sql: 'SELECT id, v FROM nullable ORDER BY v NULLS FIRST, id LIMIT 7' },
  { name: 'NULLs LAST descending', shape: 'top-k', sql: 'SELECT id, s FROM nullable ORDER BY s DESC NULLS LAST, id LIMIT 5' },
  // decimals, dates, strings
  { name: 'decimal arithmetic', shape: 'scan-aggregate', sql: 'SELECT sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) FROM lineitem' },
  { name: 'decimal aggregates by group', shape: 'scan-aggregate', sql: 'SELECT o_orderstatus, sum(o_totalprice), avg(o_totalprice), min(o_totalprice) FROM orders GROUP BY 1 ORDER BY 1' },
  { name: 'dates: extract year', shape: 'scan-aggregate', sql: 'SELECT extract(year FROM o_orderdate) AS y, count(*) FROM orders GROUP BY y ORDER BY y' },
  { name: 'dates: interval filter', shape: 'scan-aggregate', sql: "SELECT count(*) FROM lineitem WHERE l_shipdate BETWEEN DATE '1995-01-01' AND DATE '1995-01-01' + INTERVAL 30 DAY" },
  { name: 'dates: date_trunc', shape: 'scan-aggregate', sql: "SELECT date_trunc('month', l_shipdate) AS m, sum(l_quantity) FROM lineitem WHERE l_shipdate < DATE '1993-01-01' GROUP BY m ORDER BY m" },
  { name: 'strings: substring group', shape: 'scan-aggregate', sql: 'SELECT substring(c_phone, 1, 2) AS cc, count(*), max(c_name) FROM customer GROUP BY cc ORDER BY cc' },
  { name: 'strings: LIKE', shape: 'scan-aggregate', sql: "SELECT count(*) FROM part WHERE p_name LIKE '%green%'" },
  { name: 'strings: concatenation', shape: 'scan', sql: "SELECT upper(r_name) || '-' || r_regionkey AS label FROM region ORDER BY 1" },
  // joins
  { name: 'broadcast join aggregate', shape: 'scan-aggregate', sql: 'SELECT n_name, count(*) FROM customer JOIN nation ON c_nationkey = n_nationkey GROUP BY 1 ORDER BY 1' },
  { name: 'three-way broadcast join', shape: 'scan-aggregate', sql: 'SELECT r_name, sum(s_acctbal) FROM supplier, nation, region WHERE s_nationkey = n_nationkey AND n_regionkey = r_regionkey GROUP BY 1 ORDER BY 1' },
  { name: 'left join keeps the split side', sql: 'SELECT c_custkey, n_name FROM customer LEFT JOIN nation ON c_nationkey = n_nationkey AND n_regionkey = 1 ORDER BY c_custkey LIMIT 20' },
  { name: 'join of two large tables', shape: 'single-node', sql: "SELECT count(*), sum(l_quantity) FROM orders JOIN lineitem ON o_orderkey = l_orderkey WHERE o_orderdate < DATE '1993-01-01'" },
  { name: 'self-join', shape: 'single-node', sql: 'SELECT count(*) FROM nation a JOIN nation b ON a.n_regionkey = b.n_regionkey' },
  // windows, CTEs, subqueries, set operations, single-node aggregates
  { name: 'window: row_number', shape: 'single-node', sql: 'SELECT o_custkey, o_orderkey, row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderdate, o_orderkey) AS rn FROM orders WHERE o_custkey < 20 ORDER BY o_custkey, rn' },
  { name: 'window: partition count', shape: 'single-node', sql: 'SELECT n_regionkey, n_name, count(*) OVER (PARTITION BY n_regionkey) AS c FROM nation ORDER BY 2' },
  { name: 'QUALIFY', shape: 'single-node', sql: 'SELECT o_custkey, o_orderkey FROM orders QUALIFY row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderkey) = 1 ORDER BY 1 LIMIT 10' },
  { name: 'DISTINCT ON', shape: 'single-node', sql: 'SELECT DISTINCT ON (o_custkey) o_custkey, o_orderkey FROM orders ORDER BY o_custkey, o_orderkey LIMIT 10' },
  { name: 'CTE', shape: 'single-node', sql: 'WITH big AS (SELECT o_custkey, sum(o_totalprice) AS t FROM orders GROUP BY 1) SELECT count(*), max(t) FROM big' },
  { name: 'two CTEs joined', shape: 'single-node', sql: 'WITH a AS (SELECT n_regionkey, count(*) AS n FROM nation GROUP BY 1), b AS (SELECT r_regionkey, r_name FROM region) SELECT r_name, n FROM a JOIN b ON n_regionkey = r_regionkey ORDER BY 1' },
  { name: 'IN subquery', shape: 'single-node', sql: "SELECT count(*) FROM orders WHERE o_custkey IN (SELECT c_custkey FROM customer WHERE c_mktsegment = 'BUILDING')" },
  { name: 'correlated EXISTS', shape: 'single-node', sql: 'SELECT count(*) FROM customer c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.o_custkey = c.c_custkey AND o_totalprice > 300000)' },
  { name: 'scalar subquery', shape: 'single-node', sql: 'SELECT count(*) FROM lineitem WHERE l_quantity > (SELECT avg(l_quantity) FROM lineitem)' },
  { name: 'derived table', shape: 'single-node', sql: 'SELECT avg(cnt) FROM (SELECT o_custkey, count(*) AS cnt FROM orders GROUP BY 1)' },
  { name: 'UNION ALL', shape: 'single-node', sql: "SELECT 'o' AS k, count(*) AS n FROM orders UNION ALL SELECT 'l', count(*) FROM lineitem ORDER BY 1" },
  { name: 'median and quantile', shape: 'single-node', sql: 'SELECT median(l_quantity), quantile_cont(l_extendedprice, 0.25) FROM lineitem' },
  { name: 'ROLLUP', shape: 'single-node', sql: 'SELECT l_returnflag, l_linestatus, count(*) FROM lineitem GROUP BY ROLLUP (1, 2) ORDER BY 1 NULLS FIRST, 2 NULLS FIRST' },
  { name: 'ordered string_agg', shape: 'single-node', sql: "SELECT n_regionkey, string_agg(n_name, ',' ORDER BY n_name) FROM nation GROUP BY 1 ORDER BY 1" },
  { name: 'no table', shape: 'local', sql: "SELECT 42 AS answer, 'x' || 'y' AS xy" },
  { name: 'unnest', shape: 'local', sql: 'SELECT unnest([3, 1, 2]) AS x ORDER BY x' },
];

let dir: string;
let reference: Engine;
let cluster: LocalCluster;
let setupEngine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-diff-'));
  const data = join(dir, 'warehouse');
  mkdirSync(data, { recursive: true });
  setupEngine = await Engine.create({ threads: 2 });
  const tables = await generateTpch(setupEngine, join(data, 'tpch'), { scale: 0.01 });

  // Extra tables: NULLs in every column kind, spread over several files; and an empty one.
  mkdirSync(join(data, 'nullable'));
  for (let i = 0; i < 3; i++) {
    await setupEngine.exec(`COPY (SELECT ${i} * 100 + range AS id,
        CASE WHEN range % 4 = 0 THEN NULL ELSE (range % 3)::INTEGER END AS grp,
        CASE WHEN range % 5 = 0 THEN NULL ELSE (range * 1.5)::DECIMAL(12,2) END AS v,
        CASE WHEN range % 3 = 0 THEN NULL ELSE 's' || (range % 10) END AS s
      FROM range(100)) TO ${sqlString(join(data, 'nullable', `part-${i}.parquet`))} (FORMAT parquet)`);
  }
  mkdirSync(join(data, 'empty_t'));
  await setupEngine.exec(`COPY (SELECT 1::INTEGER AS x, 'a' AS label WHERE false) TO ${sqlString(join(data, 'empty_t', 'empty.parquet'))} (FORMAT parquet)`);

  const home = join(dir, 'home');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), setupEngine);
  reference = await Engine.create({ threads: 2 });
  const register = async (name: string, path: string) => {
    await catalog.addTable(name, path);
    const files = readdirSync(path).filter((f) => f.endsWith('.parquet')).map((f) => join(path, f)).sort();
    await reference.exec(`CREATE VIEW ${name} AS SELECT * FROM read_parquet(${sqlStringList(files)})`);
  };
  for (const t of tables) await register(t.table, join(data, 'tpch', t.table));
  await register('nullable', join(data, 'nullable'));
  await register('empty_t', join(data, 'empty_t'));
  assert.ok((await catalog.getTable('lineitem'))!.files.length >= 7, 'lineitem has at least 7 files, so 7 fragments are 7');

  // At scale 0.01, customer is ~128 KB and orders ~580 KB: a 256 KB broadcast limit keeps
  // the small tables broadcastable and makes orders x lineitem a join of two large tables.
  const settings = loadSettings({ PUFFINDB_HOME: home, PUFFINDB_WAREHOUSE: data, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1', PUFFINDB_BROADCAST_LIMIT_BYTES: String(256 * 1024) });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'pool' });
});

after(async () => {
  await cluster?.close();
  reference?.close();
  setupEngine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function differential(name: string, sql: string, shape?: string): Promise<void> {
  const want = await reference.query(sql);
  for (const fragments of FRAGMENTS) {
    const got = await cluster.query(sql, { fragments });
    if (shape) assert.equal(got.plan.shape, shape, `${name}: shape (${got.plan.reason})`);
    assertSameResult(got, want, { ordered: isOrdered(sql) }, `${name} [${fragments} fragment(s), ${got.plan.shape}]`);
  }
}

describe('differential: TPC-H over the demo data', async () => {
  const queries = await loadTpchQueries();
  test('all 22 queries are here', () => assert.equal(queries.length, 22));
  for (const q of queries) test(`TPC-H ${q.id}`, () => differential(`TPC-H ${q.id}`, q.sql));
});

describe('differential: shapes, types, NULLs, empty inputs', () => {
  for (const q of QUERIES) test(q.name, () => differential(q.name, q.sql, q.shape));
});
