import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type QueryResult } from '../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import { generateTpch, TPCH_TABLES, type TpchTableOutput } from '../../../runtime/demo/tpch.ts';
import { loadTpchQueries, type TpchQuery } from '../../../runtime/demo/tpch-queries.ts';
import { sqlStringList } from '../../../runtime/sql/quote.ts';

/** DuckDB's tpch extension schema (dbgen.cpp), column by column. */
const SCHEMA: Record<string, string> = {
  region: 'r_regionkey INTEGER, r_name VARCHAR, r_comment VARCHAR',
  nation: 'n_nationkey INTEGER, n_name VARCHAR, n_regionkey INTEGER, n_comment VARCHAR',
  supplier: 's_suppkey BIGINT, s_name VARCHAR, s_address VARCHAR, s_nationkey INTEGER, s_phone VARCHAR, s_acctbal DECIMAL(15,2), s_comment VARCHAR',
  customer: 'c_custkey BIGINT, c_name VARCHAR, c_address VARCHAR, c_nationkey INTEGER, c_phone VARCHAR, c_acctbal DECIMAL(15,2), c_mktsegment VARCHAR, c_comment VARCHAR',
  part: 'p_partkey BIGINT, p_name VARCHAR, p_mfgr VARCHAR, p_brand VARCHAR, p_type VARCHAR, p_size INTEGER, p_container VARCHAR, p_retailprice DECIMAL(15,2), p_comment VARCHAR',
  partsupp: 'ps_partkey BIGINT, ps_suppkey BIGINT, ps_availqty BIGINT, ps_supplycost DECIMAL(15,2), ps_comment VARCHAR',
  orders: 'o_orderkey BIGINT, o_custkey BIGINT, o_orderstatus VARCHAR, o_totalprice DECIMAL(15,2), o_orderdate DATE, o_orderpriority VARCHAR, o_clerk VARCHAR, o_shippriority INTEGER, o_comment VARCHAR',
  lineitem: 'l_orderkey BIGINT, l_partkey BIGINT, l_suppkey BIGINT, l_linenumber BIGINT, l_quantity DECIMAL(15,2), l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2), l_tax DECIMAL(15,2), l_returnflag VARCHAR, l_linestatus VARCHAR, l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE, l_shipinstruct VARCHAR, l_shipmode VARCHAR, l_comment VARCHAR',
};

describe('TPC-H generator at scale 0.01', () => {
  let engine: Engine;
  let dir: string;
  let first: TpchTableOutput[];
  let second: TpchTableOutput[];
  let queries: TpchQuery[];
  /** Plain DuckDB over the first generation's files, as views named like the tables. */
  let plain: Engine;
  let replay: Engine;

  const viewsOver = async (tables: TpchTableOutput[]) => {
    const e = await Engine.create({ threads: 2 });
    for (const t of tables) await e.exec(`CREATE VIEW ${t.table} AS SELECT * FROM read_parquet(${sqlStringList(t.files)})`);
    return e;
  };
  const value = async (sql: string) => Number((await plain.query(sql)).rows[0][0]);
  const zero = async (sql: string, what: string) => assert.equal(await value(sql), 0, what);

  before(async () => {
    engine = await Engine.create({ threads: 2 });
    dir = await mkdtemp(join(tmpdir(), 'puffin-tpch-'));
    first = await generateTpch(engine, join(dir, 'a'), { scale: 0.01 });
    second = await generateTpch(engine, join(dir, 'b'), { scale: 0.01 });
    plain = await viewsOver(first);
    replay = await viewsOver(second);
    queries = await loadTpchQueries();
  });

  after(async () => {
    plain?.close();
    replay?.close();
    engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('writes all eight tables, one directory each, with the spec row counts', async () => {
    assert.deepEqual(first.map((t) => t.table), [...TPCH_TABLES]);
    const expected: Record<string, number> = { region: 5, nation: 25, supplier: 100, customer: 1500, part: 2000, partsupp: 8000, orders: 15000 };
    for (const t of first) {
      assert.deepEqual(await readdir(join(dir, 'a', t.table)), t.files.map((f) => f.split('/').pop()).sort(), t.table);
      assert.equal(await value(`SELECT count(*) FROM ${t.table}`), t.rows, `${t.table}: reported rows`);
      if (t.table !== 'lineitem') assert.equal(t.rows, expected[t.table], t.table);
    }
    const lineitem = first.find((t) => t.table === 'lineitem')!;
    // 1 to 7 lines per order, 4 on average.
    assert.ok(lineitem.rows > 57_000 && lineitem.rows < 63_000, `lineitem rows ${lineitem.rows}`);
    const files = Object.fromEntries(first.map((t) => [t.table, t.files.length]));
    assert.deepEqual(files, { region: 1, nation: 1, supplier: 1, customer: 1, part: 1, partsupp: 1, orders: 8, lineitem: 8 });
  });

  test('has the column names and types of DuckDB\'s tpch schema', async () => {
    for (const t of TPCH_TABLES) {
      const described = await plain.query(`DESCRIBE ${t}`);
      assert.equal(described.rows.map(([name, type]) => `${name} ${type}`).join(', '), SCHEMA[t], t);
    }
  });

  test('two generations hold the same rows and give byte-identical query results', async () => {
    for (const t of first) {
      const other = second.find((s) => s.table === t.table)!;
      const diff = await engine.query(
        `SELECT count(*) FROM (SELECT * FROM read_parquet(${sqlStringList(t.files)}) EXCEPT ALL SELECT * FROM read_parquet(${sqlStringList(other.files)}))`,
      );
      assert.equal(Number(diff.rows[0][0]), 0, `${t.table} differs`);
      assert.equal(other.rows, t.rows, t.table);
    }
    for (const q of queries) {
      assert.equal(JSON.stringify(await replay.query(q.sql)), JSON.stringify(await plain.query(q.sql)), q.id);
    }
  });

  test('keys are unique and every foreign key resolves', async () => {
    await zero(`SELECT count(*) - count(DISTINCT (l_orderkey, l_linenumber)) FROM lineitem`, 'lineitem key');
    await zero(`SELECT count(*) - count(DISTINCT o_orderkey) FROM orders`, 'orders key');
    await zero(`SELECT count(*) - count(DISTINCT (ps_partkey, ps_suppkey)) FROM partsupp`, 'partsupp key');
    await zero(`SELECT count(*) FROM (SELECT ps_partkey FROM partsupp GROUP BY 1 HAVING count(*) <> 4)`, 'four suppliers per part');
    await zero(`SELECT count(*) FROM lineitem l ANTI JOIN partsupp ps ON l.l_partkey = ps.ps_partkey AND l.l_suppkey = ps.ps_suppkey`, 'lineitem (part, supplier) in partsupp');
    await zero(`SELECT count(*) FROM lineitem ANTI JOIN orders ON l_orderkey = o_orderkey`, 'lineitem -> orders');
    await zero(`SELECT count(*) FROM orders ANTI JOIN lineitem ON l_orderkey = o_orderkey`, 'every order has lines');
    await zero(`SELECT count(*) FROM orders ANTI JOIN customer ON o_custkey = c_custkey`, 'orders -> customer');
    await zero(`SELECT count(*) FROM partsupp ANTI JOIN part ON ps_partkey = p_partkey`, 'partsupp -> part');
    await zero(`SELECT count(*) FROM partsupp ANTI JOIN supplier ON ps_suppkey = s_suppkey`, 'partsupp -> supplier');
    await zero(`SELECT count(*) FROM supplier ANTI JOIN nation ON s_nationkey = n_nationkey`, 'supplier -> nation');
    await zero(`SELECT count(*) FROM customer ANTI JOIN nation ON c_nationkey = n_nationkey`, 'customer -> nation');
    await zero(`SELECT count(*) FROM nation ANTI JOIN region ON n_regionkey = r_regionkey`, 'nation -> region');
    // A third of the customers (keys divisible by 3) never order: Q13 and Q22 look for them.
    await zero(`SELECT count(*) FROM orders WHERE o_custkey % 3 = 0`, 'no orders from every third customer');
    assert.equal(await value(`SELECT count(*) FROM customer ANTI JOIN orders ON o_custkey = c_custkey`), 500);
  });

  test('values stay in the spec domains the queries filter on', async () => {
    await zero(`SELECT count(*) FROM lineitem JOIN orders ON l_orderkey = o_orderkey
                 WHERE l_shipdate - o_orderdate NOT BETWEEN 1 AND 121 OR l_commitdate - o_orderdate NOT BETWEEN 30 AND 90
                    OR l_receiptdate - l_shipdate NOT BETWEEN 1 AND 30`, 'line dates follow the order date');
    await zero(`SELECT count(*) FROM orders WHERE o_orderdate NOT BETWEEN DATE '1992-01-01' AND DATE '1998-08-02'`, 'order dates');
    await zero(`SELECT count(*) FROM lineitem WHERE (l_returnflag = 'N') <> (l_receiptdate > DATE '1995-06-17')
                    OR l_returnflag NOT IN ('R', 'A', 'N') OR (l_linestatus = 'O') <> (l_shipdate > DATE '1995-06-17')`, 'flags from dates');
    await zero(`SELECT count(*) FROM orders JOIN (SELECT l_orderkey, bool_and(l_linestatus = 'F') f, bool_and(l_linestatus = 'O') o,
                       sum(l_extendedprice * (1 + l_tax) * (1 - l_discount)) AS charge, count(*) AS n FROM lineitem GROUP BY 1) ON l_orderkey = o_orderkey
                 WHERE o_orderstatus <> CASE WHEN f THEN 'F' WHEN o THEN 'O' ELSE 'P' END OR abs(o_totalprice - charge) > 0.03 * n`, 'order status and total from lines (dbgen truncates cents twice per line)');
    await zero(`SELECT count(*) FROM lineitem JOIN part ON l_partkey = p_partkey WHERE l_extendedprice <> l_quantity * p_retailprice`, 'extended price');
    await zero(`SELECT count(*) FROM lineitem WHERE l_quantity NOT BETWEEN 1 AND 50 OR l_discount NOT BETWEEN 0 AND 0.10 OR l_tax NOT BETWEEN 0 AND 0.08`, 'line numbers');
    await zero(`SELECT count(*) FROM customer WHERE c_phone NOT LIKE (10 + c_nationkey)::VARCHAR || '-___-___-____' OR c_acctbal NOT BETWEEN -999.99 AND 9999.99`, 'customer phone and balance');
    await zero(`SELECT count(*) FROM supplier WHERE s_phone NOT LIKE (10 + s_nationkey)::VARCHAR || '-___-___-____' OR s_acctbal NOT BETWEEN -999.99 AND 9999.99`, 'supplier phone and balance');
    await zero(`SELECT count(*) FROM part WHERE NOT regexp_full_match(p_brand, 'Brand#[1-5][1-5]') OR p_mfgr <> 'Manufacturer#' || p_brand[7]
                    OR NOT regexp_full_match(p_type, '(STANDARD|SMALL|MEDIUM|LARGE|ECONOMY|PROMO) (ANODIZED|BURNISHED|PLATED|POLISHED|BRUSHED) (TIN|NICKEL|BRASS|STEEL|COPPER)')
                    OR NOT regexp_full_match(p_container, '(SM|LG|MED|JUMBO|WRAP) (CASE|BOX|BAG|JAR|PKG|PACK|CAN|DRUM)')
                    OR p_size NOT BETWEEN 1 AND 50 OR len(list_distinct(string_split(p_name, ' '))) <> 5`, 'part attributes');
    await zero(`SELECT count(*) FROM lineitem WHERE l_shipmode NOT IN ('REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB')
                    OR l_shipinstruct NOT IN ('DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN')`, 'ship modes and instructions');
    await zero(`SELECT count(*) FROM orders WHERE o_orderpriority NOT IN ('1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW')`, 'priorities');
    const names = await plain.query(`SELECT string_agg(n_name || ':' || r_name, ',' ORDER BY n_nationkey) FROM nation JOIN region ON n_regionkey = r_regionkey`);
    assert.match(String(names.rows[0][0]), /^ALGERIA:AFRICA,ARGENTINA:AMERICA,.*,GERMANY:EUROPE,.*,SAUDI ARABIA:MIDDLE EAST,.*,UNITED STATES:AMERICA$/);
    for (const [sql, what] of [
      [`SELECT count(*) FROM part WHERE p_name LIKE 'forest%'`, 'forest parts (Q20)'],
      [`SELECT count(*) FROM part WHERE p_name LIKE '%green%'`, 'green parts (Q9)'],
      [`SELECT count(*) FROM supplier WHERE s_comment LIKE '%Customer%Complaints%'`, 'complaints (Q16)'],
      [`SELECT count(*) FROM supplier WHERE s_comment LIKE '%Customer%Recommends%'`, 'recommendations'],
      [`SELECT count(*) FROM orders WHERE o_comment LIKE '%special%requests%'`, 'special requests (Q13)'],
      [`SELECT count(*) FROM orders WHERE o_comment NOT LIKE '%special%requests%'`, 'other comments (Q13)'],
    ] as const) {
      assert.ok((await value(sql)) > 0, what);
    }
  });

  test('large tables are split by key range, and lineitem file k holds the lines of orders file k', async () => {
    const orders = first.find((t) => t.table === 'orders')!.files;
    const lines = first.find((t) => t.table === 'lineitem')!.files;
    let previousMax = 0;
    for (let k = 0; k < orders.length; k++) {
      const o = await engine.query(`SELECT min(o_orderkey), max(o_orderkey) FROM read_parquet(${sqlStringList([orders[k]])})`);
      const l = await engine.query(`SELECT min(l_orderkey), max(l_orderkey) FROM read_parquet(${sqlStringList([lines[k]])})`);
      assert.deepEqual(l.rows, o.rows, `file ${k}`);
      assert.ok(Number(o.rows[0][0]) > previousMax, `file ${k} starts after file ${k - 1}`);
      previousMax = Number(o.rows[0][1]);
    }
  });

  test('every file is in key order', async () => {
    const keys: Record<string, string> = {
      region: 'r_regionkey', nation: 'n_nationkey', supplier: 's_suppkey', customer: 'c_custkey', part: 'p_partkey',
      partsupp: 'ps_partkey', orders: 'o_orderkey', lineitem: 'l_orderkey, l_linenumber',
    };
    for (const t of first) {
      for (const file of t.files) {
        const misplaced = await engine.query(
          `SELECT count(*) FROM (SELECT file_row_number, row_number() OVER (ORDER BY ${keys[t.table]}, file_row_number) - 1 AS by_key
             FROM read_parquet(${sqlStringList([file])}, file_row_number = true)) WHERE file_row_number <> by_key`,
        );
        assert.equal(Number(misplaced.rows[0][0]), 0, file);
      }
    }
  });

  test('each of the 22 queries selects rows over plain DuckDB', async () => {
    assert.deepEqual(queries.map((q) => q.id), Array.from({ length: 22 }, (_, i) => `q${String(i + 1).padStart(2, '0')}`));
    const empty: string[] = [];
    for (const q of queries) {
      const result: QueryResult = await plain.query(q.sql);
      // An aggregate over nothing is one row of NULLs: that selected nothing either.
      if (result.rows.length === 0 || result.rows[0].every((v) => v === null)) empty.push(q.id);
    }
    assert.deepEqual(empty, [], `queries without rows: ${empty.join(', ')}`);
  });

  test('a second run into the same directory replaces the earlier files', async () => {
    const out = join(dir, 'rerun');
    await generateTpch(engine, out, { scale: 0.01, filesPerLargeTable: 8 });
    const again = await generateTpch(engine, out, { scale: 0.01, filesPerLargeTable: 3 });
    assert.equal((await readdir(join(out, 'lineitem'))).length, 3);
    assert.equal(again.find((t) => t.table === 'orders')!.files.length, 3);
    const count = await engine.query(`SELECT count(*) FROM read_parquet(${sqlStringList(again.find((t) => t.table === 'orders')!.files)})`);
    assert.equal(Number(count.rows[0][0]), 15000);
  });

  test('bad options are a bad_request', async () => {
    for (const options of [{ scale: 0 }, { scale: -1 }, { scale: Number.NaN }, { scale: 0.0001 }, { scale: 1, filesPerLargeTable: 0 }, { scale: 1, filesPerLargeTable: 1.5 }, { scale: 1, seed: -1 }]) {
      await assert.rejects(generateTpch(engine, join(dir, 'never'), options), (err: unknown) =>
        err instanceof PuffinError && err.code === 'bad_request', JSON.stringify(options));
    }
  });
});
