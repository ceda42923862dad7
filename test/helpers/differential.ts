// The differential suites' common ground: the query list, the data (TPC-H at scale 0.01,
// a table of NULLs, an empty one, two skewed ones) registered both in a Parquet catalog and
// as views of a plain DuckDB, and the comparison of a cluster's answer with DuckDB's.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetCatalog } from '../../runtime/catalog/parquet-catalog.ts';
import { generateTpch } from '../../runtime/demo/tpch.ts';
import { Engine, type QueryResult } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString, sqlStringList } from '../../runtime/sql/quote.ts';
import { assertSameResult, isOrdered } from './compare.ts';

/** Queries beyond TPC-H: each names what it exercises (and the shape it must get, at a 256 KB broadcast limit). */
/** `materialized`: the query runs subqueries as steps first (with PUFFINDB_SUBQUERY_STAGE_BYTES=0). */
export const QUERIES: { name: string; sql: string; shape?: string; materialized?: boolean }[] = [
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
  { name: 'join of two large tables', shape: 'scan-aggregate', sql: "SELECT count(*), sum(l_quantity) FROM orders JOIN lineitem ON o_orderkey = l_orderkey WHERE o_orderdate < DATE '1993-01-01'" },
  { name: 'an outer join preserving the small table (right)', sql: 'SELECT n_name, count(c_custkey) AS n, sum(c_acctbal) AS b FROM customer RIGHT JOIN nation ON c_nationkey = n_nationkey AND c_acctbal < -900 GROUP BY 1 ORDER BY 1' },
  { name: 'an outer join preserving the small table (left), many groups', sql: 'SELECT c_custkey, count(o_orderkey) AS n FROM customer LEFT JOIN orders ON c_custkey = o_custkey AND o_orderpriority = \'1-URGENT\' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20' },
  { name: 'a table with column aliases, joined', sql: 'SELECT count(*), sum(b) AS s FROM orders AS o(a, b) JOIN lineitem ON a = l_orderkey WHERE l_quantity > 40' },
  { name: 'self-join', shape: 'single-node', sql: 'SELECT count(*) FROM nation a JOIN nation b ON a.n_regionkey = b.n_regionkey' },
  // windows, CTEs, subqueries, set operations, single-node aggregates
  { name: 'window: row_number', shape: 'single-node', sql: 'SELECT o_custkey, o_orderkey, row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderdate, o_orderkey) AS rn FROM orders WHERE o_custkey < 20 ORDER BY o_custkey, rn' },
  { name: 'window: partition count', shape: 'single-node', sql: 'SELECT n_regionkey, n_name, count(*) OVER (PARTITION BY n_regionkey) AS c FROM nation ORDER BY 2' },
  { name: 'QUALIFY', shape: 'single-node', sql: 'SELECT o_custkey, o_orderkey FROM orders QUALIFY row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderkey) = 1 ORDER BY 1 LIMIT 10' },
  { name: 'DISTINCT ON', shape: 'single-node', sql: 'SELECT DISTINCT ON (o_custkey) o_custkey, o_orderkey FROM orders ORDER BY o_custkey, o_orderkey LIMIT 10' },
  { name: 'CTE', shape: 'scan-aggregate', materialized: true, sql: 'WITH big AS (SELECT o_custkey, sum(o_totalprice) AS t FROM orders GROUP BY 1) SELECT count(*), max(t) FROM big' },
  { name: 'two CTEs joined', shape: 'scan', materialized: true, sql: 'WITH a AS (SELECT n_regionkey, count(*) AS n FROM nation GROUP BY 1), b AS (SELECT r_regionkey, r_name FROM region) SELECT r_name, n FROM a JOIN b ON n_regionkey = r_regionkey ORDER BY 1' },
  { name: 'IN subquery', shape: 'scan-aggregate', materialized: true, sql: "SELECT count(*) FROM orders WHERE o_custkey IN (SELECT c_custkey FROM customer WHERE c_mktsegment = 'BUILDING')" },
  { name: 'correlated EXISTS', shape: 'scan-aggregate', materialized: true, sql: 'SELECT count(*) FROM customer c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.o_custkey = c.c_custkey AND o_totalprice > 300000)' },
  { name: 'scalar subquery', shape: 'scan-aggregate', materialized: true, sql: 'SELECT count(*) FROM lineitem WHERE l_quantity > (SELECT avg(l_quantity) FROM lineitem)' },
  { name: 'derived table', shape: 'scan-aggregate', materialized: true, sql: 'SELECT avg(cnt) FROM (SELECT o_custkey, count(*) AS cnt FROM orders GROUP BY 1)' },
  // Materialized subqueries (runtime/planner/materialize.ts): each runs first as a query of
  // its own; its rows (a table the rest reads) or its value (a constant) feed the rest.
  { name: 'CTE used twice', materialized: true, sql: 'WITH t AS (SELECT o_custkey, count(*) AS n FROM orders GROUP BY 1) SELECT a.n, count(*) AS pairs FROM t a JOIN t b ON a.o_custkey = b.o_custkey + 1 GROUP BY 1 ORDER BY 1' },
  { name: 'CTE reading an earlier CTE, column aliases', materialized: true, sql: 'WITH a (k, total) AS (SELECT o_custkey, sum(o_totalprice) FROM orders GROUP BY 1), b AS (SELECT k, total FROM a WHERE total > 300000) SELECT count(*), min(total), max(k) FROM b' },
  { name: 'NOT IN over a result holding NULL', materialized: true, sql: 'SELECT count(*) FROM nullable WHERE grp NOT IN (SELECT grp FROM nullable WHERE id < 50)' },
  { name: 'NOT IN over a result without NULL', materialized: true, sql: 'SELECT count(*), sum(id) FROM nullable WHERE grp NOT IN (SELECT grp FROM nullable WHERE grp IS NOT NULL AND grp > 0)' },
  { name: 'scalar subquery over an empty table is NULL', materialized: true, sql: 'SELECT count(*) FROM orders WHERE o_totalprice > (SELECT max(x) FROM empty_t)' },
  { name: 'uncorrelated EXISTS, false', materialized: true, sql: 'SELECT count(*) FROM lineitem WHERE EXISTS (SELECT 1 FROM orders WHERE o_totalprice > 1e9)' },
  { name: 'uncorrelated NOT EXISTS, true', materialized: true, sql: 'SELECT count(*) FROM customer WHERE NOT EXISTS (SELECT 1 FROM orders WHERE o_totalprice > 1e9)' },
  { name: 'scalar subquery in the select list', materialized: true, sql: 'SELECT o_orderpriority, count(*) AS n, (SELECT count(*) FROM customer) AS customers FROM orders GROUP BY 1 ORDER BY 1' },
  { name: 'derived table with column aliases joined to a table', materialized: true, sql: 'SELECT c_mktsegment, avg(n) AS a, count(*) AS c FROM customer JOIN (SELECT o_custkey, count(*) FROM orders GROUP BY 1) AS t(k, n) ON c_custkey = k GROUP BY 1 ORDER BY 1' },
  { name: 'IN subquery with ORDER BY ... LIMIT', materialized: true, sql: 'SELECT count(*), sum(l_quantity) FROM lineitem WHERE l_orderkey IN (SELECT o_orderkey FROM orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 10)' },
  { name: '> ANY subquery', materialized: true, sql: "SELECT count(*) FROM orders WHERE o_totalprice > ANY (SELECT o_totalprice FROM orders WHERE o_orderpriority = '1-URGENT' ORDER BY 1 DESC LIMIT 3)" },
  { name: 'IN subquery holding a scalar subquery', materialized: true, sql: 'SELECT count(*) FROM orders WHERE o_custkey IN (SELECT c_custkey FROM customer WHERE c_acctbal > (SELECT avg(c_acctbal) FROM customer))' },
  { name: 'scalar subquery: an exact DECIMAL', materialized: true, sql: 'SELECT count(*), min(l_orderkey) FROM lineitem WHERE l_extendedprice = (SELECT max(l_extendedprice) FROM lineitem)' },
  { name: 'scalar subquery: a DOUBLE round trip', materialized: true, sql: 'SELECT count(*) FROM lineitem WHERE l_discount::DOUBLE * 1.1 >= (SELECT avg(l_discount::DOUBLE * 1.1) FROM lineitem)' },
  { name: 'scalar subquery: a DATE', materialized: true, sql: 'SELECT count(*) FROM orders WHERE o_orderdate = (SELECT max(o_orderdate) FROM orders)' },
  { name: 'scalar subquery: text with a quote', materialized: true, sql: "SELECT count(*) FROM nation WHERE n_name || '''' < (SELECT max(n_name) || '''x' FROM nation)" },
  { name: 'derived table over UNION ALL', materialized: true, sql: 'SELECT k, count(*) AS n FROM (SELECT o_custkey AS k FROM orders UNION ALL SELECT c_custkey FROM customer) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5' },
  { name: 'derived table with ORDER BY ... LIMIT, then aggregated', materialized: true, sql: 'SELECT count(*), sum(t) FROM (SELECT o_totalprice AS t FROM orders ORDER BY t DESC LIMIT 25)' },
  // View merging (runtime/planner/flatten.ts): a derived table that filters and projects a join.
  { name: 'a merged derived table over a left join, filtered on its null-supplying side', shape: 'scan-aggregate', sql: 'SELECT c_mktsegment, count(*) AS n FROM (SELECT c_mktsegment, o_orderkey FROM customer LEFT JOIN orders ON c_custkey = o_custkey AND o_totalprice > 400000) d WHERE o_orderkey IS NULL GROUP BY 1 ORDER BY 1' },
  { name: 'a merged derived table grouped by a computed key holding NULLs', shape: 'scan-aggregate', sql: 'SELECT b, count(*) AS n, sum(v) AS sv, count(s) AS cs FROM (SELECT grp % 3 AS b, v, s FROM nullable WHERE id > 10) AS d GROUP BY b ORDER BY b NULLS FIRST' },
  { name: 'a merged derived table of a join, its columns renamed', shape: 'scan-aggregate', sql: 'SELECT seg, nat, count(*) AS n FROM (SELECT c_mktsegment, n_name FROM customer JOIN nation ON c_nationkey = n_nationkey WHERE c_acctbal > 0) AS d(seg, nat) GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT 7' },
  // Decorrelation (runtime/planner/decorrelate.ts): semi, anti and aggregate joins.
  { name: 'decorrelated NOT EXISTS keeps rows whose key is NULL', materialized: true, sql: 'SELECT count(*), sum(id) FROM nullable a WHERE NOT EXISTS (SELECT 1 FROM nullable b WHERE b.grp = a.grp AND b.id > 250)' },
  { name: 'decorrelated EXISTS over inner NULL keys', materialized: true, sql: 'SELECT count(*) FROM nullable a WHERE EXISTS (SELECT 1 FROM nullable b WHERE a.grp = b.grp AND b.s IS NULL)' },
  { name: 'count(*) = 0 in a correlated subquery is not decorrelated (0, not NULL, for no rows)', sql: 'SELECT count(*) FROM customer c WHERE 0 = (SELECT count(*) FROM orders o WHERE o.o_custkey = c.c_custkey)' },
  { name: 'decorrelated scalar subquery on two keys', materialized: true, sql: 'SELECT count(*), sum(ps_availqty) FROM partsupp WHERE ps_availqty > (SELECT 0.5 * sum(l_quantity) FROM lineitem WHERE l_partkey = ps_partkey AND l_suppkey = ps_suppkey)' },
  { name: 'decorrelated scalar subquery over NULL keys', materialized: true, sql: 'SELECT count(*), sum(id) FROM nullable a WHERE v > (SELECT avg(v) FROM nullable b WHERE b.grp = a.grp)' },
  { name: 'a correlation by < stays inline', sql: 'SELECT count(*) FROM nullable a WHERE EXISTS (SELECT 1 FROM nullable b WHERE b.grp = a.grp AND b.id < a.id)' },
  { name: 'decorrelated EXISTS with an inequality (min/max of the group)', materialized: true, sql: 'SELECT count(*), sum(id) FROM nullable a WHERE EXISTS (SELECT 1 FROM nullable b WHERE b.grp = a.grp AND b.id <> a.id)' },
  { name: 'decorrelated NOT EXISTS with an inequality, NULLs on both sides', materialized: true, sql: "SELECT count(*), sum(id) FROM nullable a WHERE NOT EXISTS (SELECT 1 FROM nullable b WHERE b.grp = a.grp AND b.s <> a.s AND b.v > 100)" },
  { name: 'decorrelated EXISTS and NOT EXISTS with inequalities (Q21 form)', materialized: true, sql: 'SELECT l1.l_suppkey, count(*) AS n FROM lineitem l1, orders WHERE o_orderkey = l1.l_orderkey AND EXISTS (SELECT * FROM lineitem l2 WHERE l2.l_orderkey = l1.l_orderkey AND l2.l_suppkey <> l1.l_suppkey) AND NOT EXISTS (SELECT * FROM lineitem l3 WHERE l3.l_orderkey = l1.l_orderkey AND l3.l_suppkey <> l1.l_suppkey AND l3.l_receiptdate > l3.l_commitdate) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10' },
  { name: 'a correlated subquery stays inline beside a materialized one', materialized: true, sql: 'SELECT count(*) FROM orders o WHERE o_custkey IN (SELECT c_custkey FROM customer WHERE c_nationkey < 10) AND o_totalprice > (SELECT avg(o_totalprice) FROM orders i WHERE i.o_custkey = o.o_custkey)' },
  // Key-partitioned: lineitem's rows hash-partitioned on the column the windows and groups are by, the small tables read whole by every task.
  { name: 'window PARTITION BY a column of the large table, joined with a small one', shape: 'key-partitioned', sql: 'SELECT l_orderkey, l_linenumber, p_brand, row_number() OVER (PARTITION BY l_partkey ORDER BY l_orderkey, l_linenumber) AS rn FROM lineitem JOIN part ON l_partkey = p_partkey WHERE p_size < 5 ORDER BY 1, 2' },
  { name: 'median by group, filtered by an IN subquery', materialized: true, sql: 'SELECT l_suppkey, median(l_quantity) AS m, quantile_disc(l_discount, 0.9) AS d, count(*) AS n FROM lineitem WHERE l_suppkey IN (SELECT s_suppkey FROM supplier WHERE s_nationkey < 5) GROUP BY 1 ORDER BY 1' },
  { name: 'a holistic aggregate over the preserved side of a left join', sql: "SELECT l_orderkey, max(p_name) AS p, string_agg(l_linenumber::VARCHAR, ',' ORDER BY l_linenumber) AS lines FROM lineitem LEFT JOIN part ON l_partkey = p_partkey AND p_size < 3 WHERE l_orderkey < 3000 GROUP BY 1 ORDER BY 1" },
  { name: 'UNION ALL', shape: 'single-node', sql: "SELECT 'o' AS k, count(*) AS n FROM orders UNION ALL SELECT 'l', count(*) FROM lineitem ORDER BY 1" },
  { name: 'median and quantile', shape: 'single-node', sql: 'SELECT median(l_quantity), quantile_cont(l_extendedprice, 0.25) FROM lineitem' },
  { name: 'ROLLUP', shape: 'single-node', sql: 'SELECT l_returnflag, l_linestatus, count(*) FROM lineitem GROUP BY ROLLUP (1, 2) ORDER BY 1 NULLS FIRST, 2 NULLS FIRST' },
  { name: 'ordered string_agg', shape: 'single-node', sql: "SELECT n_regionkey, string_agg(n_name, ',' ORDER BY n_name) FROM nation GROUP BY 1 ORDER BY 1" },
  { name: 'no table', shape: 'local', sql: "SELECT 42 AS answer, 'x' || 'y' AS xy" },
  { name: 'unnest', shape: 'local', sql: 'SELECT unnest([3, 1, 2]) AS x ORDER BY x' },
];

/**
 * Queries for the rewrites of a query that runs on one node (its subqueries' partial
 * aggregates, eager aggregation): run on the cluster that never runs subqueries first, where
 * they plan so. (On the main cluster their subqueries would become steps.)
 */
export const SINGLE_NODE_QUERIES: { name: string; sql: string }[] = [
  // Subqueries that aggregate (Planner.aggregatedSubqueries): their fragments send partial
  // aggregates (or a top-k) and the single-node step finishes them.
  { name: 'an aggregating derived table with HAVING and count(DISTINCT), joined back over NULL keys', sql: 'SELECT a.grp, a.id, m, ds FROM nullable a JOIN (SELECT grp, max(v) AS m, count(DISTINCT s) AS ds FROM nullable GROUP BY grp HAVING count(*) > 1) b ON a.grp IS NOT DISTINCT FROM b.grp WHERE a.v = m ORDER BY 1 NULLS FIRST, 2' },
  { name: 'a scalar subquery in HAVING (Q11 form)', sql: 'SELECT o_custkey, sum(o_totalprice) AS t FROM orders GROUP BY 1 HAVING sum(o_totalprice) > (SELECT sum(o_totalprice) / 500 FROM orders) ORDER BY 2 DESC, 1' },
  { name: 'a top-k derived table joined to a table', sql: 'SELECT c_name, t FROM customer, (SELECT o_custkey, o_totalprice AS t FROM orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 7) WHERE c_custkey = o_custkey ORDER BY 2 DESC, 1' },
  { name: 'an aggregating CTE read three times', sql: 'WITH s AS (SELECT l_orderkey AS k, count(*) AS n, sum(l_quantity) AS q FROM lineitem GROUP BY 1) SELECT (SELECT count(*) FROM s WHERE n > 5) AS many, (SELECT max(q) FROM s) AS top, count(*) AS small FROM s WHERE q < 50' },
  { name: 'an aggregating derived table over an empty table', sql: 'SELECT count(*), max(c) FROM (SELECT x, count(*) AS c FROM empty_t GROUP BY 1) d, nation WHERE n_nationkey = c' },
  { name: 'an aggregating derived table inside another', sql: 'SELECT n, count(*) AS customers FROM (SELECT c, count(*) AS n FROM (SELECT o_custkey AS c, o_orderkey FROM orders WHERE o_totalprice > 100000) GROUP BY c) GROUP BY 1 ORDER BY 1' },
  // Eager aggregation (runtime/planner/eager.ts) of a grouped join that runs on one node.
  { name: 'eager aggregation: counts per customer of a LEFT JOIN, grouped again (Q13 form, many unmatched)', sql: "SELECT c_count, count(*) AS custdist FROM (SELECT c_custkey, count(o_orderkey) AS c_count, sum(o_totalprice) AS t, min(o_orderdate) AS d FROM customer LEFT JOIN orders ON c_custkey = o_custkey AND o_orderpriority = '1-URGENT' GROUP BY c_custkey) AS x GROUP BY c_count ORDER BY custdist DESC, c_count DESC" },
  { name: 'eager aggregation: an inner join with count(*), the aggregated side on the left, NULL keys', sql: 'SELECT n, count(*) AS k FROM (SELECT a.id, count(*) AS n, max(b.v) AS mv FROM nullable b JOIN nullable a ON b.grp = a.id GROUP BY a.id HAVING count(*) > 0) AS x GROUP BY n ORDER BY n' },
];

/**
 * Queries for multi-stage plans: joins of two large tables of every type, self-joins,
 * multi-way joins, derived tables, a CTE used twice, windows, ORDER BY without LIMIT over a
 * large output, set operations, many-group and holistic aggregates, skewed keys, NULL join
 * keys, empty partitions. `staged`: the plan must hash-partition (a partitioned join) when
 * every table is over the broadcast limit.
 */
export const STAGE_QUERIES: { name: string; sql: string; staged?: boolean; keyed?: boolean }[] = [
  { name: 'inner join of two large tables by group', staged: true, sql: 'SELECT o_orderpriority, count(*), sum(l_extendedprice) FROM orders JOIN lineitem ON o_orderkey = l_orderkey GROUP BY 1 ORDER BY 1' },
  { name: 'inner join in WHERE', staged: true, sql: "SELECT count(*), max(l_shipdate) FROM orders, lineitem WHERE o_orderkey = l_orderkey AND o_orderstatus = 'F'" },
  { name: 'left join keeps unmatched rows', staged: true, sql: 'SELECT o_orderstatus, count(*), count(l_orderkey) FROM orders LEFT JOIN lineitem ON o_orderkey = l_orderkey AND l_quantity > 45 GROUP BY 1 ORDER BY 1' },
  { name: 'right join', staged: true, sql: 'SELECT count(*), count(l_orderkey), count(o_orderkey) FROM lineitem RIGHT JOIN orders ON l_orderkey = o_orderkey AND l_linenumber = 7' },
  { name: 'full outer join', staged: true, sql: 'SELECT count(*), count(o_orderkey), count(l_orderkey) FROM orders FULL OUTER JOIN lineitem ON o_orderkey = l_orderkey AND l_linenumber = 1 AND o_orderdate < DATE \'1995-01-01\'' },
  { name: 'left join, many groups (customers without orders)', staged: true, sql: 'SELECT c_custkey, count(o_orderkey) AS n FROM customer LEFT JOIN orders ON c_custkey = o_custkey GROUP BY 1 ORDER BY n, c_custkey LIMIT 20' },
  { name: 'top-k over a partitioned join', staged: true, sql: 'SELECT o_orderkey, l_linenumber, l_extendedprice FROM orders JOIN lineitem ON o_orderkey = l_orderkey ORDER BY l_extendedprice DESC, 1, 2 LIMIT 10' },
  { name: 'scan over a partitioned join', staged: true, sql: 'SELECT o_orderkey, l_linenumber, o_totalprice FROM orders JOIN lineitem ON o_orderkey = l_orderkey WHERE o_orderkey < 300 ORDER BY 1, 2' },
  { name: 'distinct aggregate over a partitioned join', staged: true, sql: 'SELECT o_orderpriority, count(DISTINCT l_suppkey) FROM orders JOIN lineitem ON o_orderkey = l_orderkey GROUP BY 1 ORDER BY 1' },
  { name: 'keys of different types cast to a common type', staged: true, sql: 'SELECT count(*), sum(v) FROM nullable JOIN orders ON grp = o_orderkey' },
  { name: 'NULL join keys never match (inner)', staged: true, sql: 'SELECT count(*) FROM nullable a JOIN skew_a b ON a.grp = b.n' },
  { name: 'NULL join keys are kept once (full outer)', staged: true, sql: 'SELECT count(*), count(a.id), count(b.id) FROM nullable a FULL JOIN skew_b b ON a.grp = b.n' },
  { name: 'skewed keys (half the rows share one key)', staged: true, sql: 'SELECT a.k = 0 AS hot, count(*), sum(b.n) FROM skew_a a JOIN skew_b b ON a.k = b.k GROUP BY 1 ORDER BY 1' },
  { name: 'empty partitions (few keys survive the filter)', staged: true, sql: 'SELECT o_orderkey, count(*) FROM orders JOIN lineitem ON o_orderkey = l_orderkey WHERE o_orderkey < 8 GROUP BY 1 ORDER BY 1' },
  { name: 'join with an empty table', staged: true, sql: 'SELECT count(*) FROM lineitem JOIN empty_t ON l_linenumber = x' },
  { name: 'left join with an empty table', staged: true, sql: 'SELECT count(*), count(x) FROM region LEFT JOIN empty_t ON r_regionkey = x' },
  { name: 'partitioned join, aggregate with HAVING', staged: true, sql: 'SELECT l_orderkey, sum(l_quantity) AS q FROM orders JOIN lineitem ON o_orderkey = l_orderkey GROUP BY 1 HAVING sum(l_quantity) > 250 ORDER BY q DESC, 1 LIMIT 15' },
  { name: 'self-join of a large table', staged: true, sql: 'SELECT count(*) FROM lineitem a JOIN lineitem b ON a.l_orderkey = b.l_orderkey AND a.l_linenumber = b.l_linenumber + 1' },
  { name: 'left self-join, many groups', staged: true, sql: 'SELECT a.o_custkey, count(*) AS n, count(b.o_orderkey) AS earlier FROM orders a LEFT JOIN orders b ON a.o_custkey = b.o_custkey AND b.o_orderkey < a.o_orderkey AND b.o_totalprice > 250000 GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT 12' },
  { name: 'self-join with NULL keys', staged: true, sql: 'SELECT count(*), sum(a.id - b.id) FROM nullable a JOIN nullable b ON a.grp = b.grp AND a.s = b.s' },
  { name: 'self-join on different columns', sql: 'SELECT count(*) FROM nullable a JOIN nullable b ON a.id = b.grp * 100' },
  { name: 'three-way join of large tables', sql: 'SELECT c_mktsegment, count(*), sum(l_quantity) FROM customer JOIN orders ON c_custkey = o_custkey JOIN lineitem ON o_orderkey = l_orderkey GROUP BY 1 ORDER BY 1' },
  { name: 'multi-way join with small tables', sql: 'SELECT n_name, count(*) FROM customer, orders, nation WHERE c_custkey = o_custkey AND c_nationkey = n_nationkey GROUP BY 1 ORDER BY 1' },
  { name: 'derived table of many groups', sql: 'SELECT avg(c), max(c) FROM (SELECT l_orderkey, count(*) AS c FROM lineitem GROUP BY 1)' },
  { name: 'CTE used twice', sql: 'WITH t AS (SELECT o_custkey, sum(o_totalprice) AS s FROM orders GROUP BY 1) SELECT count(*), sum(a.s - b.s) FROM t a JOIN t b ON a.o_custkey = b.o_custkey + 1' },
  { name: 'window with PARTITION BY', keyed: true, sql: 'SELECT l_returnflag, l_orderkey, l_linenumber, rank() OVER (PARTITION BY l_returnflag ORDER BY l_extendedprice DESC, l_orderkey, l_linenumber) AS r FROM lineitem QUALIFY r <= 3 ORDER BY 1, 4' },
  { name: 'window without PARTITION BY', sql: 'SELECT o_orderkey, sum(o_totalprice) OVER (ORDER BY o_orderkey ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s FROM orders WHERE o_orderkey < 200 ORDER BY 1' },
  { name: 'ORDER BY without LIMIT over a large output', sql: 'SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem WHERE l_quantity > 40 ORDER BY l_extendedprice, l_orderkey, l_linenumber' },
  { name: 'UNION of two large tables', keyed: true, sql: 'SELECT l_orderkey AS k FROM lineitem WHERE l_quantity > 48 UNION SELECT o_orderkey FROM orders WHERE o_totalprice > 400000 ORDER BY 1' },
  { name: 'EXCEPT', keyed: true, sql: 'SELECT o_custkey FROM orders EXCEPT SELECT c_custkey FROM customer WHERE c_acctbal > 0 ORDER BY 1' },
  { name: 'INTERSECT', keyed: true, sql: 'SELECT l_orderkey FROM lineitem WHERE l_quantity > 49 INTERSECT SELECT o_orderkey FROM orders WHERE o_orderpriority = \'1-URGENT\' ORDER BY 1' },
  { name: 'EXCEPT ALL on two columns', keyed: true, sql: 'SELECT l_suppkey, l_partkey FROM lineitem WHERE l_quantity > 45 EXCEPT ALL SELECT ps_suppkey, ps_partkey FROM partsupp WHERE ps_availqty > 5000 ORDER BY 1, 2' },
  { name: 'INTERSECT ALL with NULLs', keyed: true, sql: 'SELECT grp, s FROM nullable WHERE id < 150 INTERSECT ALL SELECT grp, s FROM nullable WHERE id > 100 ORDER BY 1 NULLS FIRST, 2 NULLS FIRST' },
  { name: 'nested set operations, ORDER BY ... LIMIT', keyed: true, sql: "(SELECT o_custkey FROM orders WHERE o_totalprice > 200000 UNION SELECT c_custkey FROM customer WHERE c_acctbal < 0) EXCEPT SELECT o_custkey FROM orders WHERE o_orderpriority = '1-URGENT' ORDER BY 1 LIMIT 25" },
  { name: 'UNION of integers of two widths', keyed: true, sql: 'SELECT n FROM skew_a UNION SELECT id::INTEGER FROM nullable ORDER BY 1 NULLS FIRST' },
  { name: 'UNION of aggregated branches', sql: 'SELECT o_orderpriority, count(*) FROM orders GROUP BY 1 UNION SELECT l_shipmode, count(*) FROM lineitem GROUP BY 1 ORDER BY 1, 2' },
  { name: 'UNION of DOUBLE values stays on one node', sql: 'SELECT l_discount FROM lineitem WHERE l_orderkey < 100 UNION SELECT o_totalprice::DOUBLE / 1e6 FROM orders WHERE o_orderkey < 100 ORDER BY 1' },
  { name: 'many-group aggregate', sql: 'SELECT l_orderkey, sum(l_quantity), count(*) FROM lineitem GROUP BY 1 ORDER BY 1' },
  { name: 'holistic: median by group', keyed: true, sql: 'SELECT l_shipmode, median(l_extendedprice), quantile_disc(l_quantity, 0.9) FROM lineitem GROUP BY 1 ORDER BY 1' },
  { name: 'holistic: string_agg over many groups', keyed: true, sql: "SELECT o_custkey, string_agg(o_orderpriority, ',' ORDER BY o_orderkey) FROM orders WHERE o_custkey < 100 GROUP BY 1 ORDER BY 1" },
  // Key-partitioned (every table over the broadcast limit: single-table queries).
  { name: 'key-partitioned: a running sum PARTITION BY a many-valued key', keyed: true, sql: 'SELECT l_orderkey, l_linenumber, sum(l_quantity) OVER (PARTITION BY l_orderkey ORDER BY l_linenumber) AS running FROM lineitem WHERE l_orderkey < 500 ORDER BY 1, 2' },
  { name: 'key-partitioned: holistic aggregates on two keys with NULL groups', keyed: true, sql: "SELECT grp, s, list_sort(list(v)) AS vs, string_agg(id::VARCHAR, ',' ORDER BY id) AS ids FROM nullable GROUP BY grp, s ORDER BY grp NULLS FIRST, s NULLS FIRST" },
  { name: 'key-partitioned: a quantile over skewed keys, top groups', keyed: true, sql: 'SELECT k, quantile_cont(n, 0.5) AS q, count(*) AS c FROM skew_a GROUP BY k ORDER BY c DESC, k LIMIT 5' },
  { name: 'key-partitioned: a window over groups by a group key, with median', keyed: true, sql: 'SELECT l_orderkey, sum(l_quantity) AS q, sum(sum(l_quantity)) OVER (PARTITION BY l_orderkey) AS t, median(l_discount) AS md FROM lineitem GROUP BY l_orderkey, l_linenumber ORDER BY 1, 2 LIMIT 40' },
  { name: 'key-partitioned: DISTINCT over window values', keyed: true, sql: 'SELECT DISTINCT count(*) OVER (PARTITION BY l_orderkey) AS n FROM lineitem ORDER BY 1' },
  { name: 'key-partitioned: median and a filtered count(DISTINCT), ORDER BY ... LIMIT', keyed: true, sql: 'SELECT o_custkey, median(o_totalprice) AS m, count(DISTINCT o_orderstatus) FILTER (WHERE o_totalprice > 100000) AS s FROM orders GROUP BY 1 ORDER BY m DESC, 1 LIMIT 10' },
  { name: 'count distinct on several keys', sql: 'SELECT count(DISTINCT (l_partkey, l_suppkey)), count(DISTINCT l_partkey) FROM lineitem' },
  { name: 'EXISTS (semi join)', sql: 'SELECT count(*) FROM orders WHERE EXISTS (SELECT 1 FROM lineitem WHERE l_orderkey = o_orderkey AND l_quantity > 49)' },
  { name: 'NOT EXISTS (anti join)', sql: 'SELECT count(*) FROM customer WHERE NOT EXISTS (SELECT 1 FROM orders WHERE o_custkey = c_custkey)' },
  { name: 'correlated scalar subquery', sql: 'SELECT count(*) FROM orders o WHERE o_totalprice > (SELECT 2 * avg(o_totalprice) FROM orders i WHERE i.o_custkey = o.o_custkey)' },
];

export interface DifferentialFixture {
  reference: Engine;
  cluster: LocalCluster;
  /**
   * A second cluster over the same tables with these settings as well (its own home), when
   * openDifferential was given them: e.g. subqueries always run as steps.
   */
  also?: LocalCluster;
  /** Another cluster over the same data with these settings on top of the fixture's (closed with it). */
  variant(env: Record<string, string>): Promise<LocalCluster>;
  /** DuckDB's answer to each query run so far. */
  answers: Map<string, Promise<QueryResult>>;
  /** The (query, plan) pairs already run: the answer is a function of the plan. */
  plansRun: Set<string>;
  close(): Promise<void>;
}

/** The settings `also` may change: read by the planner only, so a plan runs alike on both clusters. */
const PLANNING_ONLY = new Set(['PUFFINDB_SUBQUERY_STAGE_BYTES']);

/** The data, a plain DuckDB over it, and a local cluster (two workers: processes unless `invoker` says in-process) with these settings. */
export async function openDifferential(env: Record<string, string>, invoker: 'pool' | 'in-process' = 'pool', alsoEnv?: Record<string, string>): Promise<DifferentialFixture> {
  for (const name of Object.keys(alsoEnv ?? {})) assert.ok(PLANNING_ONLY.has(name), `the second cluster may change planning settings only (${[...PLANNING_ONLY].join(', ')}), not ${name}: use variant()`);
  const dir = mkdtempSync(join(tmpdir(), 'puffin-diff-'));
  const data = join(dir, 'warehouse');
  mkdirSync(data, { recursive: true });
  const setupEngine = await Engine.create({ threads: 2 });
  const tables = await generateTpch(setupEngine, join(data, 'tpch'), { scale: 0.01 });

  // Extra tables: NULLs in every column kind, spread over several files; an empty one; and
  // two whose join key is skewed (half the rows share one key).
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
  for (const [name, rows] of [['skew_a', 4000], ['skew_b', 3000]] as const) {
    mkdirSync(join(data, name));
    for (let i = 0; i < 2; i++) {
      await setupEngine.exec(`COPY (SELECT ${i} * ${rows} + range AS id, CASE WHEN range % 2 = 0 THEN 0 ELSE (range % 97)::BIGINT END AS k,
          CASE WHEN range % 11 = 0 THEN NULL ELSE range % 7 END AS n
        FROM range(${rows})) TO ${sqlString(join(data, name, `part-${i}.parquet`))} (FORMAT parquet)`);
    }
  }

  // Two tables written in key order (each file a disjoint range of k), for co-split joins:
  // ranged's k is NULL on every tenth row of its middle file (NULL keys match nothing, and
  // may not be grouped per file); ranged_b holds every other key up to 1198, so it
  // holds keys ranged lacks and the reverse, for the outer joins.
  for (const [name, cuts, step] of [['ranged', [0, 300, 600, 900], 1], ['ranged_b', [0, 300, 600, 1200], 2]] as const) {
    mkdirSync(join(data, name));
    for (let i = 0; i + 1 < cuts.length; i++) {
      const nulls = name === 'ranged' && i === 1 ? 'CASE WHEN range % 10 = 0 THEN NULL ELSE range END' : 'range';
      await setupEngine.exec(`COPY (SELECT (${nulls})::BIGINT AS k, (range % 7)::INTEGER AS g, (range * 3 % 101)::INTEGER AS v
        FROM range(${cuts[i]}, ${cuts[i + 1]}, ${step})) TO ${sqlString(join(data, name, `part-${i}.parquet`))} (FORMAT parquet)`);
    }
  }

  const home = join(dir, 'home');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), setupEngine);
  const reference = await Engine.create({ threads: 2 });
  const register = async (name: string, path: string) => {
    await catalog.addTable(name, path);
    const files = readdirSync(path).filter((f) => f.endsWith('.parquet')).map((f) => join(path, f)).sort();
    await reference.exec(`CREATE VIEW ${name} AS SELECT * FROM read_parquet(${sqlStringList(files)})`);
  };
  for (const t of tables) await register(t.table, join(data, 'tpch', t.table));
  for (const extra of ['nullable', 'empty_t', 'skew_a', 'skew_b', 'ranged', 'ranged_b']) await register(extra, join(data, extra));
  assert.ok((await catalog.getTable('lineitem'))!.files.length >= 7, 'lineitem has at least 7 files, so 7 fragments are 7');

  // One task per shuffle partition unless a suite says otherwise: at this data size every
  // shuffle would otherwise be grouped into one task (PUFFINDB_STAGE_TASK_BYTES), and the
  // suites check 1, 3 and 8 partitions as 1, 3 and 8 tasks.
  const base = { PUFFINDB_WAREHOUSE: data, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1', PUFFINDB_STAGE_TASK_BYTES: '0' };
  const settings = loadSettings({ PUFFINDB_HOME: home, ...base, ...env });
  const cluster = await LocalCluster.open({ settings, catalog, invoker });
  const also = alsoEnv
    ? await LocalCluster.open({ settings: loadSettings({ PUFFINDB_HOME: join(dir, 'home-also'), ...base, ...env, ...alsoEnv }), catalog, invoker })
    : undefined;
  const variants: LocalCluster[] = [];
  return {
    reference,
    cluster,
    ...(also ? { also } : {}),
    async variant(more) {
      const v = await LocalCluster.open({ settings: loadSettings({ PUFFINDB_HOME: join(dir, `home-v${variants.length}`), ...base, ...env, ...more }), catalog, invoker });
      variants.push(v);
      return v;
    },
    answers: new Map(),
    plansRun: new Set(),
    async close() {
      for (const v of variants) await v.close();
      await also?.close();
      await cluster.close();
      reference.close();
      setupEngine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How many runs were skipped because an identical plan of the query had run (for the log). */
export const skippedIdenticalPlans = { count: 0 };

/** The cluster's answer under `options` equals DuckDB's: columns, types, rows, order where fixed. */
export async function assertSameAsDuckDB(f: DifferentialFixture, name: string, sql: string, options: { fragments?: number; partitions?: number }, check?: (plan: Awaited<ReturnType<LocalCluster['query']>>['plan']) => void, cluster: LocalCluster = f.cluster): Promise<void> {
  // DuckDB's answer to a query is computed once per fixture, whatever the options.
  if (!f.answers.has(sql)) f.answers.set(sql, f.reference.query(sql));
  const want = await f.answers.get(sql)!;
  // Options that give the same plan as an earlier run (a table of three files at 7 fragments
  // plans the 3 fragments it did at 3) are checked once: planned (cheap), not run again.
  const planned = await cluster.explain(sql, { ...options, role: 'admin' });
  // `also` differs from `cluster` in planning settings only (openDifferential checks): the
  // same plan runs the same on both. A variant may differ in how plans run: its own key.
  const key = `${cluster === f.cluster || cluster === f.also ? '' : `${String(cluster.settings.home)}\n`}${sql}\n${JSON.stringify(planned)}`;
  // A staged plan's steps are planned when they run: it does not show what will run.
  if (planned.shape !== 'staged' && f.plansRun.has(key)) {
    check?.(planned);
    skippedIdenticalPlans.count++;
    return;
  }
  f.plansRun.add(key);
  const got = await cluster.query(sql, { ...options, role: 'admin' });
  check?.(got.plan);
  assertSameResult(got, want, { ordered: isOrdered(sql) }, `${name} [${JSON.stringify(options)}, ${got.plan.shape}${got.plan.stages?.length ? ', staged' : ''}]`);
}
