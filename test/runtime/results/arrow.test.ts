// Arrow IPC results read back with apache-arrow's own reader: the schema DuckDB would
// export and the exact values DuckDB computed, including big integers, decimals, dates and
// timestamps, NULLs and values before the epoch.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DataType, RecordBatchReader, tableFromIPC, TimeUnit, type Table } from 'apache-arrow';
import { arrowTypeOf, toArrowIpc } from '../../../runtime/results/arrow.ts';
import { Engine, type QueryResult } from '../../../runtime/engine/engine.ts';

let engine: Engine;
let result: QueryResult;
let table: Table;

const SQL = `SELECT * FROM (VALUES
  (1::TINYINT, 300::SMALLINT, 70000::INTEGER, 9007199254740993::BIGINT, 123456789012345678.90::DECIMAL(38,2), -0.05::DECIMAL(4,2), 1.5::DOUBLE, 0.25::FLOAT,
   'héllo, "world"', true, DATE '2024-02-29', TIMESTAMP '2024-02-29 23:59:59.123456', TIMESTAMPTZ '2024-01-01 00:00:00+00', TIME '13:14:15.5', 200::UTINYINT, 18446744073709551615::UBIGINT, 170141183460469231731687303715884105::HUGEINT, [1, 2]),
  (NULL, NULL, NULL, (-9223372036854775807 - 1)::BIGINT, NULL, NULL, 'NaN'::DOUBLE, NULL,
   NULL, false, DATE '1969-12-31', TIMESTAMP '1969-12-31 23:59:59.999999', NULL, NULL, NULL, NULL, -1::HUGEINT, NULL),
  (-1::TINYINT, NULL, NULL, NULL, -0.01::DECIMAL(38,2), NULL, NULL, NULL, '', NULL, DATE '0044-03-15 (BC)', NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS v(i8, i16, i32, i64, dec, dec_small, f64, f32, s, b, d, ts, tstz, tm, u8, u64, huge, list)`;

before(async () => {
  engine = await Engine.create({ threads: 1 });
  result = await engine.query(SQL);
  table = tableFromIPC(toArrowIpc(result));
});
after(() => engine.close());

function column(name: string) {
  const vector = table.getChild(name);
  assert.ok(vector, `column ${name}`);
  return vector;
}

test('the schema has the Arrow types DuckDB exports', () => {
  const types = Object.fromEntries(table.schema.fields.map((f) => [f.name, f.type]));
  assert.ok(DataType.isInt(types.i8) && types.i8.bitWidth === 8 && types.i8.isSigned);
  assert.ok(DataType.isInt(types.i64) && types.i64.bitWidth === 64 && types.i64.isSigned);
  assert.ok(DataType.isInt(types.u64) && types.u64.bitWidth === 64 && !types.u64.isSigned);
  assert.ok(DataType.isDecimal(types.dec) && types.dec.precision === 38 && types.dec.scale === 2 && types.dec.bitWidth === 128);
  assert.ok(DataType.isDecimal(types.dec_small) && types.dec_small.precision === 4 && types.dec_small.scale === 2);
  assert.ok(DataType.isDecimal(types.huge) && types.huge.precision === 38 && types.huge.scale === 0);
  assert.ok(DataType.isFloat(types.f64) && DataType.isFloat(types.f32));
  assert.ok(DataType.isUtf8(types.s) && DataType.isBool(types.b));
  assert.ok(DataType.isDate(types.d));
  assert.ok(DataType.isTimestamp(types.ts) && types.ts.unit === TimeUnit.MICROSECOND && types.ts.timezone === null);
  assert.ok(DataType.isTimestamp(types.tstz) && types.tstz.timezone === 'UTC');
  assert.ok(DataType.isTime(types.tm) && types.tm.unit === TimeUnit.MICROSECOND);
  assert.ok(DataType.isUtf8(types.list), 'nested types travel as JSON text');
  assert.deepEqual(table.schema.fields.map((f) => f.name), result.columns.map((c) => c.name));
  assert.equal(table.numRows, 3);
});

test('integers, including 64-bit ones past 2^53, are exact', () => {
  assert.deepEqual([...column('i8')], [1, null, -1]);
  assert.deepEqual([...column('i16')], [300, null, null]);
  assert.deepEqual([...column('i64')], [9007199254740993n, -9223372036854775808n, null]);
  assert.deepEqual([...column('u64')], [18446744073709551615n, null, null]);
  assert.deepEqual([...column('u8')], [200, null, null]);
});

test('decimals and HUGEINT are exact unscaled 128-bit values', () => {
  // A decimal value is its unscaled integer as four little-endian 32-bit words.
  const int128 = (words: Uint32Array) => BigInt.asIntN(128, [...words].reverse().reduce((acc, w) => (acc << 32n) | BigInt(w), 0n));
  const unscaled = (name: string) => [...column(name)].map((v) => (v === null ? null : int128(v as Uint32Array)));
  assert.deepEqual(unscaled('dec'), [12345678901234567890n, null, -1n]);
  assert.deepEqual(unscaled('dec_small'), [-5n, null, null]);
  assert.deepEqual(unscaled('huge'), [170141183460469231731687303715884105n, -1n, null]);
});

test('doubles, floats, strings, booleans', () => {
  const f64 = [...column('f64')];
  assert.equal(f64[0], 1.5);
  assert.ok(Number.isNaN(f64[1]));
  assert.equal(f64[2], null);
  assert.deepEqual([...column('f32')], [0.25, null, null]);
  assert.deepEqual([...column('s')], ['héllo, "world"', null, '']);
  assert.deepEqual([...column('b')], [true, false, null]);
});

test('dates, timestamps and times match DuckDB epoch values', async () => {
  const epochs = await engine.query(`SELECT (d - DATE '1970-01-01')::INTEGER, epoch_us(ts)::VARCHAR, epoch_us(tstz)::VARCHAR FROM (${SQL})`);
  const days = (column('d').data[0].values as Int32Array).subarray(0, 3);
  assert.deepEqual([...days], epochs.rows.map((r) => r[0]));
  const micros = column('ts').data[0].values as BigInt64Array;
  assert.equal(micros[0].toString(), epochs.rows[0][1]);
  assert.equal(micros[1].toString(), epochs.rows[1][1]);
  assert.equal(column('ts').get(2), null);
  assert.equal((column('tstz').data[0].values as BigInt64Array)[0].toString(), epochs.rows[0][2]);
  assert.equal((column('tm').data[0].values as BigInt64Array)[0], (13n * 3600n + 14n * 60n + 15n) * 1_000_000n + 500_000n);
});

test('a stream reader sees the same, and an empty result still carries its schema', async () => {
  const reader = RecordBatchReader.from(toArrowIpc(result));
  const batches = [...reader];
  assert.equal(batches.reduce((n, b) => n + b.numRows, 0), 3);
  assert.deepEqual(batches[0].schema.fields.map((f) => f.name), result.columns.map((c) => c.name));
  const empty = tableFromIPC(toArrowIpc({ columns: result.columns, rows: [] }));
  assert.equal(empty.numRows, 0);
  assert.equal(empty.schema.fields.length, result.columns.length);
});

test('type mapping by DuckDB type name', () => {
  assert.ok(DataType.isDecimal(arrowTypeOf('DECIMAL(15,2)')));
  assert.ok(DataType.isTimestamp(arrowTypeOf('TIMESTAMP_NS')));
  assert.ok(DataType.isUtf8(arrowTypeOf('STRUCT("a" INTEGER)')));
});
