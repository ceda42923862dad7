// The writer computes partition values in DuckDB SQL (writer-data.ts); scan planning computes
// them in TypeScript (transforms.ts). Both must give the spec's value exactly, for every
// transform and edge value: a partition value off by one unit silently prunes the file that
// holds the row (DELETE reports the row deleted, and it stays).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parseValue } from '../../../../runtime/catalog/iceberg/literals.ts';
import { valuePasses, type ValueTest } from '../../../../runtime/catalog/iceberg/predicate.ts';
import { applyTransform, bucketValue, icebergHash, parseTransform, projectTest, transformResultType, type Transform } from '../../../../runtime/catalog/iceberg/transforms.ts';
import { parseType, type PrimitiveType } from '../../../../runtime/catalog/iceberg/types.ts';
import { compareValues, valueKey, type IcebergValue } from '../../../../runtime/catalog/iceberg/values.ts';
import { canonicalSql, transformSql, valueFromCanonical } from '../../../../runtime/catalog/iceberg/writer-data.ts';
import { sqlString } from '../../../../runtime/sql/quote.ts';

const t = (json: string): PrimitiveType => parseType(json, { file: 'test', column: 'c' }) as PrimitiveType;

let instance: DuckDBInstance;
let conn: DuckDBConnection;

before(async () => {
  instance = await DuckDBInstance.create(':memory:');
  conn = await instance.connect();
  // Partition values must not depend on the session's time zone.
  await conn.run(`SET TimeZone = 'America/Los_Angeles'`);
});
after(() => {
  conn?.closeSync();
  instance?.closeSync();
});

async function scalar(sql: string): Promise<string | null> {
  const r = await conn.runAndReadAll(sql);
  const v = r.getRowsJson()[0][0];
  return v === null ? null : String(v);
}

/** The writer's SQL value of `transform` of the DuckDB literal, as an Iceberg value. */
async function sqlValue(duckType: string, literal: string, transform: Transform, type: PrimitiveType): Promise<IcebergValue | null> {
  const col = `CAST(${sqlString(literal)} AS ${duckType})`;
  const result = transformResultType(transform, type) as PrimitiveType;
  if (transform.kind === 'bucket') {
    const text = await scalar(`SELECT ${canonicalSql(col, type)}`);
    return text === null ? null : bucketValue(type, valueFromCanonical(type, text), transform.n);
  }
  const text = await scalar(`SELECT ${transformSql(col, { name: 'p', transform }, type)}`);
  return text === null ? null : valueFromCanonical(result, text);
}

const show = (v: IcebergValue | null): string => (v === null ? 'null' : valueKey(v));

/** Source value (independently parsed), its canonical SQL form, and every transform agree. */
async function checkAll(icebergType: string, duckType: string, literals: string[], transforms: string[]): Promise<void> {
  const type = t(icebergType);
  for (const literal of literals) {
    const value = parseValue(type, literal);
    const canonical = await scalar(`SELECT ${canonicalSql(`CAST(${sqlString(literal)} AS ${duckType})`, type)}`);
    assert.equal(show(valueFromCanonical(type, canonical as string)), show(value), `canonical form of ${duckType} ${literal}`);
    for (const name of transforms) {
      const transform = parseTransform(name);
      const want = applyTransform(transform, type, value);
      const got = await sqlValue(duckType, literal, transform, type);
      assert.equal(show(got), show(want), `${name} of ${duckType} ${literal}: SQL ${show(got)}, TypeScript ${show(want)}`);
    }
  }
}

describe('spec values (Appendix B hashes, truncate examples), computed the way the writer computes them', () => {
  const hashes: [string, string, string, number][] = [
    ['int', 'INTEGER', '34', 2017239379],
    ['long', 'BIGINT', '34', 2017239379],
    ['decimal(4,2)', 'DECIMAL(4,2)', '14.20', -500754589],
    ['decimal(9,2)', 'DECIMAL(9,2)', '14.20', -500754589],
    ['date', 'DATE', '2017-11-16', -653330422],
    ['time', 'TIME', '22:31:08', -662762989],
    ['timestamp', 'TIMESTAMP', '2017-11-16 22:31:08', -2047944441],
    ['timestamp', 'TIMESTAMP', '2017-11-16 22:31:08.000001', -1207196810],
    ['timestamptz', 'TIMESTAMPTZ', '2017-11-16 14:31:08-08:00', -2047944441],
    ['timestamptz', 'TIMESTAMPTZ', '2017-11-16 14:31:08.000001-08:00', -1207196810],
    ['string', 'VARCHAR', 'iceberg', 1210000089],
    ['uuid', 'UUID', 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 1488055340],
    ['binary', 'BLOB', '\\x00\\x01\\x02\\x03', -188683207],
  ];
  for (const [icebergType, duckType, literal, hash] of hashes) {
    test(`bucket hash of ${duckType} ${literal} is ${hash}`, async () => {
      const type = t(icebergType);
      const text = await scalar(`SELECT ${canonicalSql(`CAST(${sqlString(literal)} AS ${duckType})`, type)}`);
      assert.equal(icebergHash(type, valueFromCanonical(type, text as string)), hash);
      assert.equal(icebergHash(type, parseValue(type, literal)), hash);
      for (const n of [1, 7, 16, 1000]) {
        assert.equal(await sqlValue(duckType, literal, parseTransform(`bucket[${n}]`), type), (hash & 0x7fffffff) % n);
      }
    });
  }

  test('truncate: 1 and -1 width 10 -> 0 and -10 (int, long); 10.65 width 50 -> 10.50; iceberg width 3 -> ice; binary width 3', async () => {
    const tr10 = parseTransform('truncate[10]');
    assert.equal(await sqlValue('INTEGER', '1', tr10, t('int')), 0);
    assert.equal(await sqlValue('INTEGER', '-1', tr10, t('int')), -10);
    assert.equal(await sqlValue('BIGINT', '1', tr10, t('long')), 0n);
    assert.equal(await sqlValue('BIGINT', '-1', tr10, t('long')), -10n);
    assert.equal(await sqlValue('DECIMAL(9,2)', '10.65', parseTransform('truncate[50]'), t('decimal(9,2)')), 1050n);
    assert.equal(await sqlValue('VARCHAR', 'iceberg', parseTransform('truncate[3]'), t('string')), 'ice');
    assert.deepEqual(await sqlValue('BLOB', '\\x01\\x02\\x03\\x04\\x05', parseTransform('truncate[3]'), t('binary')), Uint8Array.of(1, 2, 3));
    assert.equal(applyTransform(parseTransform('truncate[50]'), t('decimal(9,2)'), 1065n), 1050n);
  });

  test('the reported loss: truncate(10) of 2.50 DECIMAL(12,2) is 2.50, not 2.40', async () => {
    assert.equal(await sqlValue('DECIMAL(12,2)', '2.50', tr(10), t('decimal(12,2)')), 250n);
    assert.equal(applyTransform(tr(10), t('decimal(12,2)'), 250n), 250n);
  });
});

const tr = (w: number): Transform => parseTransform(`truncate[${w}]`);

describe('SQL (writer) and TypeScript (scan planning) agree on edge values', () => {
  const ints = ['0', '1', '-1', '9', '10', '11', '-9', '-10', '-11', '99', '100', '-100', '-101', '2147483647', '2147483646', '-2147483648', '-2147483647', '-2147483641', '-2147483640', '-2147483639'];
  test('int: identity, truncate (Java wrap-around at the minimum), bucket', async () => {
    await checkAll('int', 'INTEGER', ints, ['identity', 'truncate[1]', 'truncate[3]', 'truncate[10]', 'truncate[16]', 'truncate[1073741824]', 'truncate[2147483647]', 'bucket[16]', 'bucket[1]']);
  });
  test('int: Java wraps truncate[10] of values below -2147483640 to 2147483646', () => {
    assert.equal(applyTransform(tr(10), t('int'), -2147483648), 2147483646);
    assert.equal(applyTransform(tr(10), t('int'), -2147483640), -2147483640);
  });

  const longs = ['0', '-1', '10', '-10', '-11', '3000000000', '-3000000001', '9223372036854775807', '-9223372036854775808', '-9223372036854775801', '-9223372036854775800', '-9223372036854775799'];
  test('long: identity, truncate, bucket', async () => {
    await checkAll('long', 'BIGINT', longs, ['identity', 'truncate[1]', 'truncate[10]', 'truncate[7]', 'truncate[2147483647]', 'bucket[16]', 'bucket[1000]']);
  });

  test('decimal: identity, truncate on the unscaled value (multiples of W stay), bucket', async () => {
    const d12 = ['2.50', '-2.50', '2.49', '2.40', '0.00', '0.10', '-0.01', '-0.10', '-0.11', '9999999999.99', '-9999999999.99', '14.20', '10.65'];
    await checkAll('decimal(12,2)', 'DECIMAL(12,2)', d12, ['identity', 'truncate[1]', 'truncate[10]', 'truncate[50]', 'truncate[100]', 'truncate[3]', 'bucket[16]']);
    // A result that needs more digits than the type's precision (-9.99 -> -10.00).
    await checkAll('decimal(3,2)', 'DECIMAL(3,2)', ['-9.99', '9.99', '-0.01'], ['identity', 'truncate[10]', 'truncate[7]', 'bucket[4]']);
    await checkAll('decimal(38,10)', 'DECIMAL(38,10)', ['9999999999999999999999999999.9999999999', '-9999999999999999999999999999.9999999999', '-0.0000000001', '1234567.8900000000'], ['identity', 'truncate[10]', 'truncate[1000]', 'truncate[2147483647]', 'bucket[32]']);
    await checkAll('decimal(18,0)', 'DECIMAL(18,0)', ['-999999999999999999', '0', '15', '-15'], ['identity', 'truncate[10]', 'bucket[8]']);
  });

  test('string and binary: truncate by code points / bytes, identity, bucket', async () => {
    await checkAll('string', 'VARCHAR', ['iceberg', '', 'ab', '𝄞𝄞𝄞', 'e\u0301x', 'héllo', "it's"], ['identity', 'truncate[1]', 'truncate[2]', 'truncate[3]', 'truncate[100]', 'bucket[16]']);
    await checkAll('binary', 'BLOB', ['\\x01\\x02\\x03\\x04\\x05', '', '\\x00', '\\xFF\\xFEab'], ['identity', 'truncate[1]', 'truncate[3]', 'truncate[10]', 'bucket[16]']);
  });

  test('date: year, month, day (before 1970, year 1 and 9999, leap days), identity, bucket', async () => {
    const dates = ['1970-01-01', '1969-12-31', '1969-01-01', '1968-12-31', '2017-11-16', '2000-02-29', '1900-03-01', '0001-01-01', '9999-12-31', '1600-02-29'];
    await checkAll('date', 'DATE', dates, ['identity', 'year', 'month', 'day', 'bucket[16]']);
  });

  test('timestamp and timestamptz (session zone not UTC): year, month, day, hour, identity, bucket', async () => {
    const ts = ['1970-01-01 00:00:00', '1969-12-31 23:59:59.999999', '1969-12-31 23:00:00', '1969-12-31 22:59:59.999999', '2017-11-16 22:31:08.000001', '0001-01-01 00:00:00', '9999-12-31 23:59:59.999999', '1900-01-01 00:30:00'];
    await checkAll('timestamp', 'TIMESTAMP', ts, ['identity', 'year', 'month', 'day', 'hour', 'bucket[16]']);
    const tz = ['1970-01-01 00:00:00+00', '1969-12-31 16:00:00-08:00', '1970-01-01 07:59:59.999999+08:00', '2017-11-16 14:31:08.000001-08:00', '2000-01-01 00:00:00+14:00', '1969-12-31 23:59:59.999999+00'];
    await checkAll('timestamptz', 'TIMESTAMPTZ', tz, ['identity', 'year', 'month', 'day', 'hour', 'bucket[16]']);
  });

  test('time, uuid, boolean, float, double: identity (and bucket where it applies)', async () => {
    await checkAll('time', 'TIME', ['00:00:00', '22:31:08', '23:59:59.999999'], ['identity', 'bucket[16]']);
    await checkAll('uuid', 'UUID', ['f79c3e09-677c-4bbd-a479-3f349cb785e7', '00000000-0000-0000-0000-000000000000'], ['identity', 'bucket[16]']);
    await checkAll('boolean', 'BOOLEAN', ['true', 'false'], ['identity']);
    await checkAll('double', 'DOUBLE', ['0.1', '-2.5', '1e300', '5e-324', '0.30000000000000004'], ['identity']);
    await checkAll('float', 'FLOAT', ['0.5', '-2.5', '1048576.5', '3.4028234663852886e38'], ['identity']); // exactly representable: parseValue refuses 0.1 as a float
  });
});

describe('projection stays inclusive where Java wraps truncate around', () => {
  // Every value passing the source test must land in a partition passing the projection.
  function assertInclusive(type: PrimitiveType, width: number, test: ValueTest, values: (number | bigint)[]): void {
    const projected = projectTest(tr(width), type, test);
    if (!projected) return;
    for (const v of values) {
      if (!valuePasses(test, v)) continue;
      const p = applyTransform(tr(width), type, v);
      assert.ok(valuePasses(projected, p), `${JSON.stringify(test, (_, x) => (typeof x === 'bigint' ? String(x) : x))}: ${v} in partition ${p} fails ${JSON.stringify(projected, (_, x) => (typeof x === 'bigint' ? String(x) : x))}`);
    }
  }
  const intValues = [-2147483648, -2147483647, -2147483641, -2147483640, -2147483639, -11, -10, -1, 0, 5, 9, 10, 2147483640, 2147483646, 2147483647];
  const longValues = [-9223372036854775808n, -9223372036854775801n, -9223372036854775800n, -1n, 0n, 10n, 9223372036854775807n];

  test('ranges, open ends, exclusive ends and IN lists over int and long', () => {
    const tests = (lo: number | bigint | undefined, hi: number | bigint | undefined): ValueTest[] => [
      { kind: 'range', ...(lo !== undefined ? { lo } : {}), ...(hi !== undefined ? { hi } : {}), loInclusive: true, hiInclusive: true },
      { kind: 'range', ...(lo !== undefined ? { lo } : {}), ...(hi !== undefined ? { hi } : {}), loInclusive: false, hiInclusive: false },
    ];
    for (const width of [1, 3, 10, 16, 1 << 20]) {
      for (const [lo, hi] of [[undefined, 5], [-2147483648, undefined], [-2147483648, -2147483645], [undefined, undefined], [-3000000000, 3000000000], [0, 10], [2147483647, undefined]] as const) {
        for (const test of tests(lo, hi)) assertInclusive(t('int'), width, test, intValues);
      }
      for (const v of intValues) assertInclusive(t('int'), width, { kind: 'in', ranges: [{ lo: v, hi: v }] }, intValues);
      for (const [lo, hi] of [[undefined, 0n], [-9223372036854775808n, -9223372036854775800n], [undefined, undefined]] as const) {
        for (const test of tests(lo, hi)) assertInclusive(t('long'), width, test, longValues);
      }
    }
  });

  test('a range still prunes ordinary partitions', () => {
    const p = projectTest(tr(10), t('int'), { kind: 'range', lo: 100, hi: 200, loInclusive: true, hiInclusive: false });
    assert.deepEqual(p, { kind: 'range', lo: 100, hi: 190, loInclusive: true, hiInclusive: true });
    const open = projectTest(tr(10), t('int'), { kind: 'range', hi: 5, loInclusive: true, hiInclusive: true });
    assert.ok(open && !valuePasses(open, 10) && valuePasses(open, 0) && valuePasses(open, 2147483646));
    assert.equal(compareValues(applyTransform(tr(10), t('long'), 25n) as bigint, 20n), 0);
  });
});
