import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBound, encodeBound, valueToSql, boundToSql, twosComplementMinBytes, bigIntFromTwosComplement } from '../../../../runtime/catalog/iceberg/bounds.ts';
import { parseLiteral, parseValue } from '../../../../runtime/catalog/iceberg/literals.ts';
import { parseType, toDuckDBType, type PrimitiveType } from '../../../../runtime/catalog/iceberg/types.ts';
import type { IcebergValue } from '../../../../runtime/catalog/iceberg/values.ts';
import { Engine } from '../../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../../runtime/errors.ts';

const t = (json: string): PrimitiveType => parseType(json, { file: 'test', column: 'c' }) as PrimitiveType;
const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Literal text per type; each must survive text -> value -> bytes -> value -> text. */
const CASES: [string, string[]][] = [
  ['boolean', ['true', 'false']],
  ['int', ['0', '-1', '2147483647', '-2147483648', '42']],
  ['long', ['0', '-9223372036854775808', '9223372036854775807', '4611686018427387905']],
  ['float', ['1.5', '-0.0', '0.10000000149011612', 'Infinity', '-Infinity']],
  ['double', ['0.1', '-2.5e-300', '1.7976931348623157e+308', '-0.0']],
  ['decimal(15,2)', ['0.00', '6.00', '-0.05', '94959.74', '-9999999999999.99']],
  ['decimal(38,10)', ['1234567890123456789012345678.0123456789', '-0.0000000001']],
  ['decimal(9,0)', ['-128', '127', '128', '-129']],
  ['date', ['1970-01-01', '1992-01-02', '1969-12-31', '2000-02-29', '9999-12-31', '0001-01-01', '0044-03-15 (BC)']],
  ['time', ['00:00:00', '22:31:08', '23:59:59.999999', '12:00:00.000001']],
  ['timestamp', ['1970-01-01 00:00:00', '2017-11-16 22:31:08', '2017-11-16 22:31:08.000001', '1969-12-31 23:59:59.999999', '1900-03-01 12:00:00']],
  ['timestamptz', ['2024-03-01 13:33:20+00', '1960-06-30 01:02:03.500000+00']],
  ['string', ['', 'iceberg', 'zzle special rer', 'naïve ☃ 𝄞', "it's"]],
  ['uuid', ['f79c3e09-677c-4bbd-a479-3f349cb785e7', '00000000-0000-0000-0000-000000000000']],
  ['fixed[4]', ['\\x00\\x01\\x02\\x03', '\\xFF\\xFE\\x80\\x7F']],
  ['binary', ['', '\\x00', '\\x69\\x63\\x65']],
];

describe('bounds: Appendix D single-value serialization', () => {
  for (const [typeText, texts] of CASES) {
    test(`${typeText}: text -> value -> bytes -> value -> text round trips`, () => {
      const type = t(typeText);
      for (const text of texts) {
        const value = parseValue(type, text);
        const bytes = encodeBound(type, value);
        const back = decodeBound(type, bytes);
        assert.notEqual(back, undefined, `${typeText} ${text} decodes`);
        assert.deepEqual(toHex(encodeBound(type, back as IcebergValue)), toHex(bytes), `${typeText} ${text}: bytes are stable`);
        assert.equal(valueToSql(type, back as IcebergValue), text, `${typeText} ${text}: SQL text round trips`);
      }
    });
  }

  test('decodes bounds Spark wrote into the lineitem fixture (known values)', () => {
    const dec = t('decimal(15, 2)');
    assert.equal(boundToSql(dec, hex('0258')), '6.00'); // l_quantity lower
    assert.equal(boundToSql(dec, hex('1388')), '50.00'); // l_quantity upper
    assert.equal(boundToSql(dec, hex('0f4278')), '10000.56'); // l_extendedprice lower
    assert.equal(boundToSql(dec, hex('00')), '0.00'); // l_discount lower
    assert.equal(boundToSql(t('date'), hex('661f0000')), '1992-01-04'); // l_shipdate lower (DuckDB: min(l_shipdate) of the file)
    assert.equal(boundToSql(t('long'), hex('60ea000000000000')), '60000'); // l_orderkey upper
    assert.equal(boundToSql(t('string'), hex('7a7a6c65207370656369616c20726572')), 'zzle special rer');
    assert.equal(boundToSql(t('timestamptz'), hex('0088506b99120600')), '2024-03-01 13:33:20+00'); // null_stats ts lower
  });

  test('decimal bytes are two\'s complement big-endian in the fewest bytes', () => {
    assert.equal(toHex(twosComplementMinBytes(0n)), '00');
    assert.equal(toHex(twosComplementMinBytes(127n)), '7f');
    assert.equal(toHex(twosComplementMinBytes(128n)), '0080');
    assert.equal(toHex(twosComplementMinBytes(-1n)), 'ff');
    assert.equal(toHex(twosComplementMinBytes(-128n)), '80');
    assert.equal(toHex(twosComplementMinBytes(-129n)), 'ff7f');
    assert.equal(toHex(twosComplementMinBytes(1420n)), '058c'); // 14.20 at scale 2
    assert.equal(bigIntFromTwosComplement(hex('ff7f')), -129n);
  });

  test('bounds written before a type promotion decode by their width', () => {
    assert.equal(decodeBound(t('long'), hex('2a000000')), 42n); // int bound, column now long
    assert.equal(decodeBound(t('double'), encodeBound(t('float'), 1.5)), 1.5); // float bound, column now double
    assert.equal(boundToSql(t('timestamp'), hex('661f0000')), '1992-01-04 00:00:00'); // date bound, column now timestamp
    assert.equal(boundToSql(t('decimal(20,2)'), hex('0258')), '6.00'); // decimal widened
  });

  test('bytes that cannot be a value decode to undefined instead of throwing', () => {
    assert.equal(decodeBound(t('int'), hex('0102')), undefined);
    assert.equal(decodeBound(t('string'), hex('ff')), undefined); // not UTF-8
    assert.equal(decodeBound(t('uuid'), hex('01')), undefined);
  });

  test('encoding a value of the wrong kind is a PuffinError', () => {
    assert.throws(() => encodeBound(t('int'), 2n ** 40n), PuffinError);
    assert.throws(() => encodeBound(t('fixed[4]'), hex('00')), PuffinError);
    assert.throws(() => parseValue(t('date'), '2023-02-30'), PuffinError);
  });
});

describe('literals: what a predicate value may denote', () => {
  test('exact literals are one value', () => {
    assert.deepEqual(parseLiteral(t('decimal(15,2)'), '0.05'), { lo: 5n, hi: 5n });
    assert.deepEqual(parseLiteral(t('decimal(15,2)'), 0.07), { lo: 7n, hi: 7n });
    assert.deepEqual(parseLiteral(t('date'), "DATE '1994-01-01'"), { lo: 8766, hi: 8766 });
    assert.deepEqual(parseLiteral(t('long'), 24), { lo: 24n, hi: 24n });
  });

  test('inexact literals widen to the values around them', () => {
    assert.deepEqual(parseLiteral(t('decimal(15,2)'), '0.055'), { lo: 5n, hi: 6n });
    assert.deepEqual(parseLiteral(t('decimal(15,2)'), '-0.055'), { lo: -6n, hi: -5n });
    assert.deepEqual(parseLiteral(t('int'), 2.5), { lo: 2, hi: 3 });
    const f = parseLiteral(t('float'), 0.1);
    assert.ok(f && (f.lo as number) <= 0.1 && (f.hi as number) >= Math.fround(0.1));
    // A timestamptz without an offset depends on the session time zone: +-14 hours.
    const ts = parseLiteral(t('timestamptz'), '2024-03-05 00:00:00');
    const mid = BigInt(Date.UTC(2024, 2, 5)) * 1000n;
    assert.deepEqual(ts, { lo: mid - 14n * 3_600_000_000n, hi: mid + 14n * 3_600_000_000n });
    assert.deepEqual(parseLiteral(t('timestamptz'), '2024-03-05 02:00:00+02'), { lo: mid, hi: mid });
  });

  test('literals that do not fit the column are not understood (so files are kept)', () => {
    assert.equal(parseLiteral(t('int'), 'abc'), undefined);
    assert.equal(parseLiteral(t('date'), 42), undefined);
    assert.equal(parseLiteral(t('string'), 5), undefined);
    assert.equal(parseLiteral(t('double'), 'NaN'), undefined);
  });
});

describe('SQL text of values is castable by DuckDB to the column type', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create({ threads: 1 });
  });
  after(() => engine.close());

  test('every round-trip case casts, and casts back to the same value', async () => {
    for (const [typeText, texts] of CASES) {
      const type = t(typeText);
      const duck = toDuckDBType(type);
      for (const text of texts) {
        const sql = valueToSql(type, parseValue(type, text));
        // Casting the text to the type and re-encoding what DuckDB holds must give the same
        // value: compare through DuckDB's own rendering of both.
        const r = await engine.query(`SELECT CAST(CAST($1 AS ${duck}) AS VARCHAR) AS a, CAST(CAST($2 AS ${duck}) AS VARCHAR) AS b`, [sql, text]);
        assert.equal(r.rows[0][0], r.rows[0][1], `${typeText}: ${sql} casts to the value of ${text}`);
        assert.notEqual(r.rows[0][0], null);
      }
    }
  });
});
