// Partition values of tables PuffinDB writes, recomputed from the rows: every data file's
// recorded partition tuple must be the spec's transform of each of its rows, and DELETE /
// UPDATE WHERE col = value (whose files are chosen by scan planning over those partition
// values) must remove / change exactly the rows plain DuckDB finds. The edge values are
// negatives, multiples of the truncate width, the values either side of them, and the
// boundaries of the types and of days and hours.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { valueToSql } from '../../runtime/catalog/iceberg/bounds.ts';
import { planTableScan } from '../../runtime/catalog/iceberg/index.ts';
import { parseValue } from '../../runtime/catalog/iceberg/literals.ts';
import { applyTransform, transformResultType } from '../../runtime/catalog/iceberg/transforms.ts';
import { isPrimitive, type PrimitiveType } from '../../runtime/catalog/iceberg/types.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

let dir: string;
let engine: Engine;
let cluster: LocalCluster;
let catalog: WarehouseCatalog;
let instance: DuckDBInstance;
/** Plain DuckDB holding the same rows, for the expected answers; UTC. */
let plain: DuckDBConnection;
let copies = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-partition-exact-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse, { recursive: true });
  engine = await Engine.create({ threads: 2 });
  catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  instance = await DuckDBInstance.create(':memory:');
  plain = await instance.connect();
  await plain.run(`SET TimeZone = 'UTC'`);
});

after(async () => {
  await cluster?.close();
  engine?.close();
  plain?.closeSync();
  instance?.closeSync();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const list = (values: string[]): string => `[${values.join(', ')}]`;
const pick = (values: string[], modulus: number): string => `${list(values)}[1 + (k * ${modulus}) % ${values.length}]`;

const AMOUNTS = ['2.50', '-2.50', '2.49', '2.40', '2.51', '0.00', '-0.01', '-0.10', '-0.11', '0.10', '9999999999.99', '-9999999999.99', '10.65', '10.50', '-10.50', '0.09'].map((v) => `(${v})::DECIMAL(12,2)`);
const INTS = ['0', '1', '-1', '9', '10', '11', '-9', '-10', '-11', '2147483647', '-2147483648', '-2147483641', '-2147483640', '100', '-100'].map((v) => `(${v})::INTEGER`);
const LONGS = ['0', '-1', '5', '-5', '-6', '3000000000', '-3000000001', '9223372036854775807', '-9223372036854775808', '-9223372036854775805', '-9223372036854775803'].map((v) => `(${v})::BIGINT`);
const STRINGS = ["'iceberg'", "''", "'ab'", "'abc'", "'abd'", "'𝄞𝄞𝄞'", "'e\u0301x'", "'ice'"];
const DATES = ['1970-01-01', '1969-12-31', '1969-01-01', '2017-11-16', '2000-02-29', '0001-01-01', '9999-12-31'].map((v) => `DATE '${v}'`);
const TS = ['1970-01-01 00:00:00', '1969-12-31 23:59:59.999999', '1969-12-31 23:00:00', '1969-12-31 22:59:59.999999', '2017-11-16 22:31:08.000001', '0001-01-01 00:00:00'].map((v) => `TIMESTAMP '${v}'`);
const TZ = ['1970-01-01 00:00:00+00', '1969-12-31 16:00:00-08:00', '1970-01-01 07:59:59.999999+08:00', '2017-11-16 14:31:08.000001-08:00'].map((v) => `TIMESTAMPTZ '${v}'`);
const BLOBS = ["'\\x01\\x02\\x03'", "''", "'\\x01\\x02'", "'\\xFF'"].map((v) => `${v}::BLOB`);

const ROWS = `SELECT k::INTEGER AS k, ${pick(AMOUNTS, 1)} AS amount, ${pick(INTS, 1)} AS i, ${pick(LONGS, 1)} AS l, ${pick(STRINGS, 1)} AS s,
  ${pick(DATES, 1)} AS d, ${pick(TS, 1)} AS ts, ${pick(TZ, 1)} AS tz, ${pick(BLOBS, 1)} AS b, 'v' AS note
  FROM range(0, 48) r(k) UNION ALL SELECT 1000, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'v'`;

/** Each data file's partition tuple equals the transform of every one of its rows. */
async function checkPartitionValues(name: string): Promise<number> {
  const opened = await catalog.openIceberg(name);
  assert.ok(opened, name);
  const { table } = opened;
  const scan = await planTableScan(table);
  const spec = table.metadata.partitionSpecs.find((s) => s.specId === table.metadata.defaultSpecId)!;
  const schema = table.metadata.schemas.find((s) => s.schemaId === table.metadata.currentSchemaId)!;
  let rows = 0;
  for (const f of scan.dataFiles) {
    for (const pf of spec.fields) {
      const source = schema.fields.find((x) => x.id === pf.sourceId)!;
      assert.ok(isPrimitive(source.type));
      const type = source.type as PrimitiveType;
      const result = transformResultType(pf.transform, type) as PrimitiveType;
      // The rows' values as DuckDB prints them (UTC), parsed independently of the writer.
      const cast = type.kind === 'binary' ? `'\\x' || hex(${source.name})` : type.kind === 'timestamptz' ? `strftime(${source.name}, '%Y-%m-%d %H:%M:%S.%f+00')` : `${source.name}::VARCHAR`;
      // A copy under a plain, fresh name, read through the table's own FileIO (how paths map
      // to files is not what this test is about; read_parquet globs its argument).
      const copy = join(dir, `check-${copies++}.parquet`);
      writeFileSync(copy, await table.io.read(f.uri));
      const r = await plain.runAndReadAll(`SELECT ${cast} FROM read_parquet(${sqlString(copy)})`);
      for (const [text] of r.getRowsJson()) {
        let literal = text === null ? null : String(text);
        if (literal !== null && type.kind === 'binary') literal = literal.replace(/^\\x$/, '').replace(/^\\x([0-9A-F]+)$/i, (_, h: string) => h.replace(/../g, (b) => `\\x${b}`));
        const value = literal === null ? null : parseValue(type, literal);
        const want = applyTransform(pf.transform, type, value);
        const recorded = f.partition[pf.name];
        assert.equal(recorded, want === null ? null : valueToSql(result, want), `${name}: ${pf.name} of ${source.name} = ${literal} in ${f.path}`);
        rows++;
      }
    }
  }
  return rows;
}

async function sameRows(name: string, reference: string): Promise<void> {
  const got = (await cluster.query(`SELECT * FROM ${name} ORDER BY k`)).rows.map((r) => JSON.stringify(r));
  const want = (await plain.runAndReadAll(`SELECT * FROM ${reference} ORDER BY k`)).getRowsJson().map((r) => JSON.stringify(r));
  assert.deepEqual(got, want);
}

describe('partition values written by PuffinDB are exact', () => {
  const tables: [string, string][] = [
    ['p_num', 'truncate(10, amount), truncate(10, i), truncate(5, l)'],
    ['p_amount50', 'truncate(50, amount), bucket(3, amount)'],
    ['p_text', 'truncate(2, s), bucket(4, s), truncate(2, b), bucket(5, b)'],
    ['p_time', 'day(ts), hour(tz), month(d), year(d), bucket(4, ts), bucket(3, d), day(tz), year(ts), month(tz)'],
    ['p_ints', 'bucket(7, i), bucket(6, l), truncate(3, i), truncate(1000, l)'],
  ];

  before(async () => {
    await plain.run(`CREATE TABLE source AS ${ROWS}`);
  });

  for (const [name, partitionBy] of tables) {
    test(`${name} PARTITIONED BY (${partitionBy}): partition values, then DELETE and UPDATE WHERE col = value`, async () => {
      await cluster.query(`CREATE TABLE ${name} PARTITIONED BY (${partitionBy}) AS ${ROWS}`);
      await plain.run(`CREATE TABLE ${name} AS SELECT * FROM source`);
      await sameRows(name, name);
      assert.ok((await checkPartitionValues(name)) > 0);

      // Each equality below must remove / change exactly what DuckDB finds.
      const deletes = [
        'amount = 2.50', 'amount = -2.50', 'amount = 0.00', 'amount = -0.10', 'amount = 10.50', 'amount = 9999999999.99',
        'i = 10', 'i = -10', 'i = -2147483648', 'i = 2147483647', 'l = -9223372036854775808', 'l = 5', 'l = -5',
        "s = 'ab'", "s = ''", "s = '𝄞𝄞𝄞'", "b = '\\x01\\x02'::BLOB",
        "d = DATE '1969-12-31'", "ts = TIMESTAMP '1969-12-31 23:00:00'", "tz = TIMESTAMPTZ '1969-12-31 16:00:00-08:00'",
        'amount IS NULL',
      ];
      // Only the equalities on the table's partition source columns choose files by its
      // partition values (the others read every file, as any unpartitioned table does).
      const sources = new Set([...partitionBy.matchAll(/(\w+)\)/g)].map((m) => m[1]));
      for (const where of deletes.filter((w) => sources.has(w.split(' ')[0]))) {
        const [[n]] = (await plain.runAndReadAll(`SELECT count(*) FROM ${name} WHERE ${where}`)).getRowsJson();
        const r = await cluster.query(`DELETE FROM ${name} WHERE ${where}`);
        assert.equal(String(r.rows[0][2]), String(n), `DELETE ... WHERE ${where}: rows reported`);
        await plain.run(`DELETE FROM ${name} WHERE ${where}`);
      }
      // Each statement's reported count matched DuckDB's above; the rows are compared once
      // after the deletes and once after the updates (a whole-table read per statement made
      // this file the slowest of the suite).
      await sameRows(name, name);
      const updates = ['amount = 2.40', 'i = 0', "s = 'iceberg'", "d = DATE '1970-01-01'", 'l = 0'];
      for (const where of updates.filter((w) => sources.has(w.split(' ')[0]))) {
        const [[n]] = (await plain.runAndReadAll(`SELECT count(*) FROM ${name} WHERE ${where}`)).getRowsJson();
        const r = await cluster.query(`UPDATE ${name} SET note = 'changed' WHERE ${where}`);
        assert.equal(String(r.rows[0][2]), String(n), `UPDATE ... WHERE ${where}: rows reported`);
        await plain.run(`UPDATE ${name} SET note = 'changed' WHERE ${where}`);
      }
      await sameRows(name, name);
      await checkPartitionValues(name);
    });
  }

  test('the reported case: truncate(10) of 2.50 DECIMAL(12,2), then DELETE WHERE amount = 2.50 leaves nothing', async () => {
    await cluster.query('CREATE TABLE reported PARTITIONED BY (truncate(10, amount)) AS SELECT 2.50::DECIMAL(12,2) AS amount');
    const opened = await catalog.openIceberg('reported');
    const scan = await planTableScan(opened!.table);
    assert.deepEqual(scan.dataFiles.map((f) => f.partition.amount_trunc), ['2.50']);
    const r = await cluster.query('DELETE FROM reported WHERE amount = 2.50');
    assert.equal(String(r.rows[0][2]), '1');
    assert.deepEqual((await cluster.query('SELECT count(*) FROM reported')).rows, [['0']]);
  });
});
