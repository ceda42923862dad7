// A deterministic TPC-H-shaped data set written as Parquet by DuckDB SQL alone (the tpch
// extension cannot be downloaded here). Tables, columns, types, row counts per scale factor
// and value domains follow the TPC-H specification and DuckDB's tpch schema, so the 22
// queries select rows; the values themselves differ from dbgen's, so official answers do
// not apply.
//
// Every value is a function of a row key and a per-column stream number through DuckDB's
// hash(), never random(): two runs (with the same DuckDB version) write the same rows.
// Large tables are split into several files by key range, so each file's min/max
// statistics name a narrow slice of keys (useful for pruning), and lineitem's file k holds
// exactly the orders of orders' file k. Each file is one streaming COPY from range() in key
// order (DuckDB preserves insertion order), with no sort and no intermediate table, so
// memory stays flat whatever the scale; orders recompute their lines' draws instead of
// reading lineitem back.
//
// Deviations from dbgen, none of which a query can see: partsupp's four suppliers of a part
// are spaced a quarter of the supplier range apart (dbgen's formula repeats a supplier at
// some small scale factors); a part's five colour words are distinct but drawn in colour-
// list order from a random start; comments are slices of a 1 MiB text pool (dbgen's is 10 MiB).

import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Engine } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlString, sqlStringList } from '../sql/quote.ts';
import { buildCharPool, buildTextPool, COLORS } from './tpch-text.ts';

export const TPCH_TABLES = ['region', 'nation', 'supplier', 'customer', 'part', 'partsupp', 'orders', 'lineitem'] as const;
export type TpchTable = (typeof TPCH_TABLES)[number];

export interface TpchOptions {
  /** Scale factor: 1 is about 6 million lineitem rows (about 1 GB as CSV). At least 0.001. */
  scale: number;
  /** Files for lineitem and orders (and, from scale 0.1, partsupp, part and customer). Default 8. */
  filesPerLargeTable?: number;
  /** Selects one of many data sets of the same shape. The default's SF 0.01 data gives all 22 queries rows. */
  seed?: number;
}

export interface TpchTableOutput {
  table: TpchTable;
  /** Absolute paths, in key order. */
  files: string[];
  rows: number;
}

const MIN_SCALE = 0.001;
/**
 * At SF 0.01 a few queries expect about one qualifying row (Q18 0.6 orders, Q19 1.1 lines),
 * so for some seeds they come back empty; this one gives every query rows (see tpch.test.ts).
 */
const DEFAULT_SEED = 2;
const TEXT_POOL_BYTES = 1 << 20;
const CHAR_POOL_BYTES = 1 << 16;
/** The spec's "current date": items received by then may be returned, shipped by then are final. */
const CURRENT_DATE = `DATE '1995-06-17'`;
const START_DATE = `DATE '1992-01-01'`;
/** Orders are placed from 1992-01-01 to 1998-08-02, 151 days before the end date (1998-12-31), so every item ships in range. */
const ORDER_DAYS = (Date.UTC(1998, 7, 2) - Date.UTC(1992, 0, 1)) / 86_400_000;

const REGIONS = ['AFRICA', 'AMERICA', 'ASIA', 'EUROPE', 'MIDDLE EAST'];
/** [name, regionkey]; the nation key is the index. */
const NATIONS: [string, number][] = [
  ['ALGERIA', 0], ['ARGENTINA', 1], ['BRAZIL', 1], ['CANADA', 1], ['EGYPT', 4], ['ETHIOPIA', 0], ['FRANCE', 3],
  ['GERMANY', 3], ['INDIA', 2], ['INDONESIA', 2], ['IRAN', 4], ['IRAQ', 4], ['JAPAN', 2], ['JORDAN', 4],
  ['KENYA', 0], ['MOROCCO', 0], ['MOZAMBIQUE', 0], ['PERU', 1], ['CHINA', 2], ['ROMANIA', 3], ['SAUDI ARABIA', 4],
  ['VIETNAM', 2], ['RUSSIA', 3], ['UNITED KINGDOM', 3], ['UNITED STATES', 1],
];
const SEGMENTS = ['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY'];
const PRIORITIES = ['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'];
const INSTRUCTIONS = ['DELIVER IN PERSON', 'COLLECT COD', 'TAKE BACK RETURN', 'NONE'];
const MODES = ['REG AIR', 'AIR', 'RAIL', 'TRUCK', 'MAIL', 'FOB', 'SHIP'];
const TYPE_SIZES = ['STANDARD', 'SMALL', 'MEDIUM', 'LARGE', 'ECONOMY', 'PROMO'];
const TYPE_FINISHES = ['ANODIZED', 'BURNISHED', 'PLATED', 'POLISHED', 'BRUSHED'];
const TYPE_METALS = ['TIN', 'NICKEL', 'BRASS', 'STEEL', 'COPPER'];
const CONTAINER_SIZES = ['SM', 'LG', 'MED', 'JUMBO', 'WRAP'];
const CONTAINER_KINDS = ['CASE', 'BOX', 'BAG', 'JAR', 'PACK', 'PKG', 'CAN', 'DRUM'];

/** One stream number per generated column, so no two columns share their randomness. */
const S = {
  RegionComment: 1, NationComment: 2, SuppAddress: 3, SuppNation: 4, SuppPhone: 5, SuppBalance: 6, SuppComment: 7,
  SuppBbbRank: 8, SuppBbbMiddle: 9, SuppBbbTail: 10, CustAddress: 11, CustNation: 12, CustPhone: 13, CustBalance: 14,
  CustSegment: 15, CustComment: 16, PartName: 17, PartMfgr: 18, PartBrand: 19, PartTypeSize: 20, PartTypeFinish: 21,
  PartTypeMetal: 22, PartSize: 23, PartContainer1: 24, PartContainer2: 25, PartComment: 26, PsQty: 27, PsCost: 28,
  PsComment: 29, OrderDate: 30, OrderLines: 31, OrderCust: 32, OrderPriority: 33, OrderClerk: 34, OrderComment: 35,
  LinePart: 36, LineSupp: 37, LineQty: 38, LineDiscount: 39, LineTax: 40, LineShip: 41, LineCommit: 42,
  LineReceipt: 43, LineFlag: 44, LineInstruct: 45, LineMode: 46, LineComment: 47,
} as const;

/** Streams and their offsets below stay under this, so (key, stream) pairs never collide. */
const STREAMS = 8192;

/**
 * A pseudo-random UBIGINT for (key, stream), the same in every run. The pair is folded into
 * one integer before hashing: DuckDB's multi-argument hash(k, s) combines weakly (its low
 * bits for two streams of the same key are correlated), while its single-value hash mixes
 * well. The seed's mask then selects one of many equally random data sets.
 */
function rand(key: string, stream: number): string {
  return `xor(hash((${key}) * ${STREAMS} + ${stream}), getvariable('tpch_seed_mask'))`;
}

/** Uniform integer in [lo, hi] drawn from (key, stream). */
function int(key: string, stream: number, lo: number, hi: number): string {
  return `(${lo} + (${rand(key, stream)} % ${hi - lo + 1})::BIGINT)`;
}

function pick(key: string, stream: number, values: readonly string[]): string {
  return `${sqlStringList(values)}[1 + (${rand(key, stream)} % ${values.length})::BIGINT]`;
}

/** A slice of the text pool, between lo and hi characters long. */
function text(key: string, stream: number, lo: number, hi: number): string {
  return `substr(getvariable('tpch_text'), 1 + (${rand(key, stream)} % ${TEXT_POOL_BYTES - hi})::BIGINT, ${int(key, stream + 1000, lo, hi)})`;
}

function vstring(key: string, stream: number, lo: number, hi: number): string {
  return `substr(getvariable('tpch_chars'), 1 + (${rand(key, stream)} % ${CHAR_POOL_BYTES - hi})::BIGINT, ${int(key, stream + 1000, lo, hi)})`;
}

/** splitmix64: spreads a small seed over all 64 bits. */
function seedMask(seed: number): bigint {
  const M = (1n << 64n) - 1n;
  let z = (BigInt(seed) + 0x9e3779b97f4a7c15n) & M;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  return z ^ (z >> 31n);
}

/** Exact DECIMAL(15,2) from integer cents (cents stay far below 2^53, so the double is exact enough). */
function money(cents: string): string {
  return `(${cents} / 100.0)::DECIMAL(15,2)`;
}

function phone(key: string, stream: number, nationkey: string): string {
  return `(10 + ${nationkey})::VARCHAR || '-' || ${int(key, stream, 100, 999)} || '-' || ${int(key, stream + 2000, 100, 999)} || '-' || ${int(key, stream + 3000, 1000, 9999)}`;
}

function padded(prefix: string, key: string): string {
  return `'${prefix}' || lpad((${key})::VARCHAR, 9, '0')`;
}

interface Sizes {
  suppliers: number;
  parts: number;
  customers: number;
  orders: number;
  clerks: number;
}

function sizesOf(scale: number): Sizes {
  const n = (base: number) => Math.max(1, Math.round(base * scale));
  return { suppliers: n(10_000), parts: n(200_000), customers: n(150_000), orders: n(1_500_000), clerks: n(1_000) };
}

/** The k-th supplier (k in 0..3) of a part: four distinct suppliers a quarter of the range apart. */
function supplierOf(partkey: string, k: string, suppliers: number): string {
  return `((${partkey} - 1 + (${partkey} - 1) // ${suppliers} + ${k} * ${Math.floor(suppliers / 4)}) % ${suppliers} + 1)`;
}

/** Retail price in cents, the spec's formula of the part key. */
function retailCents(partkey: string): string {
  return `(90000 + ((${partkey}) // 10) % 20001 + 100 * ((${partkey}) % 1000))`;
}

/** Inclusive 1-based key ranges splitting 1..n into `parts` contiguous slices. */
function keyRanges(n: number, parts: number): [number, number][] {
  const count = Math.max(1, Math.min(parts, n));
  const ranges: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    ranges.push([Math.floor((i * n) / count) + 1, Math.floor(((i + 1) * n) / count)]);
  }
  return ranges;
}

/** A few row groups per file so a reader can split a file, within DuckDB's usual bounds. */
function rowGroupSize(rowsPerFile: number): number {
  const quarter = Math.ceil(rowsPerFile / 4 / 2048) * 2048;
  return Math.min(122_880, Math.max(2048, quarter));
}

export async function generateTpch(engine: Engine, outDir: string, options: TpchOptions): Promise<TpchTableOutput[]> {
  const { scale } = options;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale < MIN_SCALE) {
    throw new PuffinError('bad_request', `TPC-H scale factor must be a number of at least ${MIN_SCALE}, got ${String(scale)}`);
  }
  const filesPerLargeTable = options.filesPerLargeTable ?? 8;
  if (!Number.isInteger(filesPerLargeTable) || filesPerLargeTable < 1 || filesPerLargeTable > 10_000) {
    throw new PuffinError('bad_request', `filesPerLargeTable must be an integer from 1 to 10000, got ${String(filesPerLargeTable)}`);
  }
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new PuffinError('bad_request', `seed must be a non-negative integer, got ${String(seed)}`);
  }
  const root = resolve(outDir);
  const sizes = sizesOf(scale);
  // customer, part and partsupp are worth splitting from SF 0.1 (15k, 20k, 80k rows) up.
  const midTableFiles = scale >= 0.1 ? filesPerLargeTable : 1;

  const conn = await engine.connect();
  try {
    await loadPools(conn, seed);
    const writer = new TableWriter(conn, root);
    const out: TpchTableOutput[] = [];
    out.push(await writer.write('region', [[0, REGIONS.length - 1]], () => regionSql()));
    out.push(await writer.write('nation', [[0, NATIONS.length - 1]], () => nationSql()));
    out.push(await writer.write('supplier', keyRanges(sizes.suppliers, 1), (lo, hi) => supplierSql(lo, hi, sizes)));
    out.push(await writer.write('customer', keyRanges(sizes.customers, midTableFiles), (lo, hi) => customerSql(lo, hi)));
    out.push(await writer.write('part', keyRanges(sizes.parts, midTableFiles), (lo, hi) => partSql(lo, hi)));
    out.push(await writer.write('partsupp', keyRanges(sizes.parts, midTableFiles), (lo, hi) => partsuppSql(lo, hi, sizes), 4));
    const orderRanges = keyRanges(sizes.orders, filesPerLargeTable);
    out.push(await writer.write('orders', orderRanges, (lo, hi) => ordersSql(lo, hi, sizes)));
    out.push(await writer.write('lineitem', orderRanges, (lo, hi) => lineitemSql(lo, hi, sizes), 4));
    return out;
  } catch (err) {
    throw toPuffinError(err);
  } finally {
    conn.closeSync();
  }
}

async function loadPools(conn: DuckDBConnection, seed: number): Promise<void> {
  await conn.run(`SET VARIABLE tpch_seed_mask = ${seedMask(seed)}::UBIGINT`);
  await conn.run(`CREATE OR REPLACE TEMP TABLE tpch_pools AS SELECT $1::VARCHAR AS text_pool, $2::VARCHAR AS char_pool`, [
    buildTextPool(TEXT_POOL_BYTES).slice(0, TEXT_POOL_BYTES),
    buildCharPool(CHAR_POOL_BYTES),
  ]);
  await conn.run(`SET VARIABLE tpch_text = (SELECT text_pool FROM tpch_pools)`);
  await conn.run(`SET VARIABLE tpch_chars = (SELECT char_pool FROM tpch_pools)`);
}

/** Writes each table's files into <root>/<table>/, replacing files an earlier run left there. */
class TableWriter {
  constructor(
    private readonly conn: DuckDBConnection,
    private readonly root: string,
  ) {}

  private async prepare(table: TpchTable): Promise<string> {
    const dir = join(this.root, table);
    await mkdir(dir, { recursive: true });
    const ours = new RegExp(`^${table}-\\d+\\.parquet$`);
    for (const name of await readdir(dir)) if (ours.test(name)) await rm(join(dir, name));
    return dir;
  }

  private fileName(dir: string, table: TpchTable, index: number): string {
    return join(dir, `${table}-${String(index).padStart(3, '0')}.parquet`);
  }

  private async copy(select: string, path: string, expectedRows: number): Promise<number> {
    const result = await this.conn.runAndReadAll(
      `COPY (${select}) TO ${sqlString(path)} (FORMAT parquet, ROW_GROUP_SIZE ${rowGroupSize(expectedRows)})`,
    );
    return Number(result.getRows()[0]?.[0] ?? 0);
  }

  /** One file per key range; `rowsPerKey` estimates rows for sizing row groups. */
  async write(
    table: TpchTable,
    ranges: [number, number][],
    sql: (lo: number, hi: number) => string,
    rowsPerKey = 1,
  ): Promise<TpchTableOutput> {
    const dir = await this.prepare(table);
    const files: string[] = [];
    let rows = 0;
    for (const [i, [lo, hi]] of ranges.entries()) {
      const path = this.fileName(dir, table, i);
      rows += await this.copy(sql(lo, hi), path, (hi - lo + 1) * rowsPerKey);
      files.push(path);
    }
    return { table, files, rows };
  }
}

function regionSql(): string {
  const rows = REGIONS.map((name, key) => `(${key}, ${sqlString(name)})`).join(', ');
  return `SELECT r_regionkey::INTEGER AS r_regionkey, r_name, ${text('r_regionkey', S.RegionComment, 31, 115)} AS r_comment
            FROM (VALUES ${rows}) t(r_regionkey, r_name) ORDER BY r_regionkey`;
}

function nationSql(): string {
  const rows = NATIONS.map(([name, region], key) => `(${key}, ${sqlString(name)}, ${region})`).join(', ');
  return `SELECT n_nationkey::INTEGER AS n_nationkey, n_name, n_regionkey::INTEGER AS n_regionkey,
                 ${text('n_nationkey', S.NationComment, 31, 114)} AS n_comment
            FROM (VALUES ${rows}) t(n_nationkey, n_name, n_regionkey) ORDER BY n_nationkey`;
}

/**
 * About 5 per 10,000 suppliers (at least one each) get a comment with 'Customer ...
 * Complaints' (Q16 leaves them out) and as many 'Customer ... Recommends'.
 */
function supplierSql(lo: number, hi: number, sizes: Sizes): string {
  const special = Math.max(1, Math.round((sizes.suppliers * 5) / 10_000));
  const bbb = (word: string) =>
    `${text('k', S.SuppComment, 0, 30)} || 'Customer ' || ${text('k', S.SuppBbbMiddle, 6, 20)} || '${word}' || ${text('k', S.SuppBbbTail, 0, 30)}`;
  return `SELECT k::BIGINT AS s_suppkey, ${padded('Supplier#', 'k')} AS s_name, ${vstring('k', S.SuppAddress, 10, 40)} AS s_address,
                 nationkey::INTEGER AS s_nationkey, ${phone('k', S.SuppPhone, 'nationkey')} AS s_phone,
                 ${money(int('k', S.SuppBalance, -99_999, 999_999))} AS s_acctbal,
                 CASE WHEN bbb_rank <= ${special} THEN ${bbb('Complaints')}
                      WHEN bbb_rank <= ${2 * special} THEN ${bbb('Recommends')}
                      ELSE ${text('k', S.SuppComment, 25, 100)} END AS s_comment
            FROM (SELECT k, ${int('k', S.SuppNation, 0, 24)} AS nationkey,
                         row_number() OVER (ORDER BY ${rand('k', S.SuppBbbRank)}, k) AS bbb_rank
                    FROM range(${lo}, ${hi + 1}) t(k))
           ORDER BY s_suppkey`;
}

function customerSql(lo: number, hi: number): string {
  return `SELECT k::BIGINT AS c_custkey, ${padded('Customer#', 'k')} AS c_name, ${vstring('k', S.CustAddress, 10, 40)} AS c_address,
                 nationkey::INTEGER AS c_nationkey, ${phone('k', S.CustPhone, 'nationkey')} AS c_phone,
                 ${money(int('k', S.CustBalance, -99_999, 999_999))} AS c_acctbal,
                 ${pick('k', S.CustSegment, SEGMENTS)} AS c_mktsegment, ${text('k', S.CustComment, 29, 116)} AS c_comment
            FROM (SELECT k, ${int('k', S.CustNation, 0, 24)} AS nationkey FROM range(${lo}, ${hi + 1}) t(k))`;
}

function partSql(lo: number, hi: number): string {
  // Five distinct colours: a random start, then four steps of 1..18 along the list (at most
  // 72 in all, less than its 92 words, so no word repeats).
  const step = (n: number) => int('k', S.PartName + 100 * n, 1, 18);
  const colours = sqlStringList(COLORS);
  const word = (offset: string) => `${colours}[1 + (c1 + ${offset}) % ${COLORS.length}]`;
  return `SELECT k::BIGINT AS p_partkey,
                 concat_ws(' ', ${word('0')}, ${word('o2')}, ${word('o3')}, ${word('o4')}, ${word('o5')}) AS p_name,
                 'Manufacturer#' || mfgr AS p_mfgr, 'Brand#' || mfgr || ${int('k', S.PartBrand, 1, 5)} AS p_brand,
                 concat_ws(' ', ${pick('k', S.PartTypeSize, TYPE_SIZES)}, ${pick('k', S.PartTypeFinish, TYPE_FINISHES)}, ${pick('k', S.PartTypeMetal, TYPE_METALS)}) AS p_type,
                 ${int('k', S.PartSize, 1, 50)}::INTEGER AS p_size,
                 ${pick('k', S.PartContainer1, CONTAINER_SIZES)} || ' ' || ${pick('k', S.PartContainer2, CONTAINER_KINDS)} AS p_container,
                 ${money(retailCents('k'))} AS p_retailprice, ${text('k', S.PartComment, 5, 22)} AS p_comment
            FROM (SELECT k, ${int('k', S.PartMfgr, 1, 5)} AS mfgr, ${int('k', S.PartName, 0, COLORS.length - 1)} AS c1,
                         ${step(2)} AS o2, ${step(2)} + ${step(3)} AS o3, ${step(2)} + ${step(3)} + ${step(4)} AS o4,
                         ${step(2)} + ${step(3)} + ${step(4)} + ${step(5)} AS o5
                    FROM range(${lo}, ${hi + 1}) t(k))`;
}

function partsuppSql(lo: number, hi: number, sizes: Sizes): string {
  return `SELECT k::BIGINT AS ps_partkey, ${supplierOf('k', 'j', sizes.suppliers)}::BIGINT AS ps_suppkey,
                 ${int('id', S.PsQty, 1, 9999)}::BIGINT AS ps_availqty, ${money(int('id', S.PsCost, 100, 100_000))} AS ps_supplycost,
                 ${text('id', S.PsComment, 49, 198)} AS ps_comment
            FROM (SELECT k, j, k * 4 + j AS id FROM (SELECT k, unnest(range(4)) AS j FROM range(${lo}, ${hi + 1}) t(k)))`;
}

/** The orders with indexes lo..hi: sparse keys (8 of every 32, as dbgen), dates, line counts. */
function orderBaseSql(lo: number, hi: number, sizes: Sizes): string {
  // Customers whose key is a multiple of 3 place no orders (Q13 and Q22 look for them): draw
  // among the others and map the n-th of them to its key.
  const orderingCustomers = sizes.customers - Math.floor(sizes.customers / 3);
  return `SELECT i, ((i >> 3) << 5) | (i & 7) AS okey, ${START_DATE} + ${int('i', S.OrderDate, 0, ORDER_DAYS)}::INTEGER AS odate,
                 ${int('i', S.OrderLines, 1, 7)} AS nlines, ${int('i', S.OrderCust, 0, orderingCustomers - 1)} AS nth_customer
            FROM range(${lo}, ${hi + 1}) t(i)`;
}

/** Per-line draws as SQL of the line's key (order index * 8 + line number). */
function lineDraws(sizes: Sizes) {
  const draws = {
    partkey: (lk: string) => int(lk, S.LinePart, 1, sizes.parts),
    supplier: (lk: string) => int(lk, S.LineSupp, 0, 3),
    quantity: (lk: string) => int(lk, S.LineQty, 1, 50),
    discount: (lk: string) => int(lk, S.LineDiscount, 0, 10),
    tax: (lk: string) => int(lk, S.LineTax, 0, 8),
    shipDays: (lk: string) => int(lk, S.LineShip, 1, 121),
    commitDays: (lk: string) => int(lk, S.LineCommit, 30, 90),
    receiptDays: (lk: string) => int(lk, S.LineReceipt, 1, 30),
    /** dbgen's charge in cents, truncating as it does; summed into o_totalprice. */
    chargeCents: (lk: string) =>
      `(${draws.quantity(lk)} * ${retailCents(draws.partkey(lk))} * (100 - ${draws.discount(lk)}) // 100) * (100 + ${draws.tax(lk)}) // 100`,
  };
  return draws;
}

function lineitemSql(lo: number, hi: number, sizes: Sizes): string {
  const d = lineDraws(sizes);
  return `SELECT okey::BIGINT AS l_orderkey, partkey::BIGINT AS l_partkey, ${supplierOf('partkey', 'supplier', sizes.suppliers)}::BIGINT AS l_suppkey,
                 ln::BIGINT AS l_linenumber, quantity::DECIMAL(15,2) AS l_quantity,
                 ${money(`quantity * ${retailCents('partkey')}`)} AS l_extendedprice,
                 ${money('discount')} AS l_discount, ${money('tax')} AS l_tax,
                 CASE WHEN receiptdate <= ${CURRENT_DATE} THEN ${pick('lk', S.LineFlag, ['R', 'A'])} ELSE 'N' END AS l_returnflag,
                 CASE WHEN shipdate > ${CURRENT_DATE} THEN 'O' ELSE 'F' END AS l_linestatus,
                 shipdate AS l_shipdate, commitdate AS l_commitdate, receiptdate AS l_receiptdate,
                 ${pick('lk', S.LineInstruct, INSTRUCTIONS)} AS l_shipinstruct, ${pick('lk', S.LineMode, MODES)} AS l_shipmode,
                 ${text('lk', S.LineComment, 10, 43)} AS l_comment
            FROM (SELECT *, shipdate + ${d.receiptDays('lk')}::INTEGER AS receiptdate
                    FROM (SELECT okey, ln, lk, ${d.partkey('lk')} AS partkey, ${d.supplier('lk')} AS supplier,
                                 ${d.quantity('lk')} AS quantity, ${d.discount('lk')} AS discount, ${d.tax('lk')} AS tax,
                                 odate + ${d.shipDays('lk')}::INTEGER AS shipdate, odate + ${d.commitDays('lk')}::INTEGER AS commitdate
                            FROM (SELECT okey, odate, ln, i * 8 + ln AS lk
                                    FROM (SELECT i, okey, odate, unnest(range(1, nlines + 1)) AS ln FROM (${orderBaseSql(lo, hi, sizes)})))))`;
}

/**
 * Orders fold their own lines, redrawn from the same keys rather than read back: the status
 * from how many lines ship after the current date, the total from the lines' charges.
 */
function ordersSql(lo: number, hi: number, sizes: Sizes): string {
  const d = lineDraws(sizes);
  const overLines = (expression: string) => `list_sum(list_transform(range(1, nlines + 1), lambda ln: ${expression}))`;
  return `SELECT okey::BIGINT AS o_orderkey, (nth_customer + nth_customer // 2 + 1)::BIGINT AS o_custkey,
                 CASE open_lines WHEN 0 THEN 'F' WHEN nlines THEN 'O' ELSE 'P' END AS o_orderstatus,
                 ${money('total_cents')} AS o_totalprice, odate AS o_orderdate,
                 ${pick('i', S.OrderPriority, PRIORITIES)} AS o_orderpriority,
                 ${padded('Clerk#', int('i', S.OrderClerk, 1, sizes.clerks))} AS o_clerk,
                 0::INTEGER AS o_shippriority, ${text('i', S.OrderComment, 19, 78)} AS o_comment
            FROM (SELECT *, ${overLines(`(odate + ${d.shipDays('(i * 8 + ln)')}::INTEGER > ${CURRENT_DATE})::INTEGER`)} AS open_lines,
                         ${overLines(d.chargeCents('(i * 8 + ln)'))} AS total_cents
                    FROM (${orderBaseSql(lo, hi, sizes)}))`;
}
