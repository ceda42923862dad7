import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseValue } from '../../../../runtime/catalog/iceberg/literals.ts';
import { murmur3x86_32 } from '../../../../runtime/catalog/iceberg/murmur3.ts';
import { mightMatch, valuePasses, type ValueTest } from '../../../../runtime/catalog/iceberg/predicate.ts';
import { applyTransform, bucketValue, icebergHash, parseTransform, projectTest, transformResultType } from '../../../../runtime/catalog/iceberg/transforms.ts';
import { parseType, type PrimitiveType } from '../../../../runtime/catalog/iceberg/types.ts';

const t = (json: string): PrimitiveType => parseType(json, { file: 'test', column: 'c' }) as PrimitiveType;

describe('murmur3 bucket hash (spec Appendix B test values)', () => {
  const cases: [string, string, number][] = [
    ['int', '34', 2017239379],
    ['long', '34', 2017239379],
    ['decimal(4,2)', '14.20', -500754589],
    ['date', '2017-11-16', -653330422],
    ['time', '22:31:08', -662762989],
    ['timestamp', '2017-11-16 22:31:08', -2047944441],
    ['timestamp', '2017-11-16 22:31:08.000001', -1207196810],
    ['timestamptz', '2017-11-16 14:31:08-08:00', -2047944441],
    ['timestamptz', '2017-11-16 14:31:08.000001-08:00', -1207196810],
    ['string', 'iceberg', 1210000089],
    ['string', '34', -427558391], // from the spec's type-promotion note
    ['uuid', 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 1488055340],
    ['fixed[4]', '\\x00\\x01\\x02\\x03', -188683207],
    ['binary', '\\x00\\x01\\x02\\x03', -188683207],
  ];
  for (const [type, literal, expected] of cases) {
    test(`${type} ${literal} -> ${expected}`, () => {
      assert.equal(icebergHash(t(type), parseValue(t(type), literal)), expected);
    });
  }

  test('the x86 32-bit variant with seed 0, over any tail length', () => {
    assert.equal(murmur3x86_32(new Uint8Array(0)), 0);
    // Known vectors of MurmurHash3_x86_32 (seed 0).
    assert.equal(murmur3x86_32(new TextEncoder().encode('hello')) >>> 0, 0x248bfa47);
    assert.equal(murmur3x86_32(new TextEncoder().encode('The quick brown fox jumps over the lazy dog')) >>> 0, 0x2e4ff723);
  });

  test('bucket[N] drops the sign bit, then takes the remainder', () => {
    assert.equal(bucketValue(t('int'), 34, 16), 2017239379 % 16);
    assert.equal(bucketValue(t('string'), 'iceberg', 100), 1210000089 % 100);
    assert.equal(bucketValue(t('date'), parseValue(t('date'), '2017-11-16'), 7), (-653330422 & 0x7fffffff) % 7);
  });
});

describe('partition transforms', () => {
  test('truncate follows the spec examples', () => {
    const tr = parseTransform('truncate[10]');
    assert.equal(applyTransform(tr, t('int'), 1), 0);
    assert.equal(applyTransform(tr, t('int'), -1), -10);
    assert.equal(applyTransform(tr, t('long'), -1n), -10n);
    assert.equal(applyTransform(parseTransform('truncate[50]'), t('decimal(9,2)'), 1065n), 1050n); // 10.65 -> 10.50
    assert.equal(applyTransform(parseTransform('truncate[3]'), t('string'), 'iceberg'), 'ice');
    assert.equal(applyTransform(parseTransform('truncate[2]'), t('string'), '𝄞𝄞𝄞'), '𝄞𝄞'); // code points, not UTF-16 units
    assert.deepEqual(applyTransform(parseTransform('truncate[3]'), t('binary'), Uint8Array.of(1, 2, 3, 4, 5)), Uint8Array.of(1, 2, 3));
  });

  test('year, month, day and hour count from 1970, flooring before it', () => {
    const ts = parseValue(t('timestamp'), '2017-11-16 22:31:08');
    assert.equal(applyTransform(parseTransform('year'), t('timestamp'), ts), 47);
    assert.equal(applyTransform(parseTransform('month'), t('timestamp'), ts), 47 * 12 + 10);
    assert.equal(applyTransform(parseTransform('day'), t('timestamp'), ts), 17486);
    assert.equal(applyTransform(parseTransform('hour'), t('timestamp'), ts), 17486 * 24 + 22);
    assert.equal(applyTransform(parseTransform('day'), t('date'), 17486), 17486);
    const before = parseValue(t('timestamp'), '1969-12-31 23:00:00');
    assert.equal(applyTransform(parseTransform('day'), t('timestamp'), before), -1);
    assert.equal(applyTransform(parseTransform('hour'), t('timestamp'), before), -1);
    assert.equal(applyTransform(parseTransform('month'), t('date'), -1), -1);
    assert.equal(applyTransform(parseTransform('year'), t('date'), -1), -1);
  });

  test('void is always null; null stays null', () => {
    assert.equal(applyTransform(parseTransform('void'), t('int'), 5), null);
    assert.equal(applyTransform(parseTransform('bucket[4]'), t('int'), null), null);
  });

  test('unknown transforms and invalid sources have no result type (ignored by pruning)', () => {
    assert.equal(parseTransform('zorder').kind, 'unknown');
    assert.equal(transformResultType(parseTransform('zorder'), t('int')), undefined);
    assert.equal(transformResultType(parseTransform('hour'), t('date')), undefined);
    assert.equal(transformResultType(parseTransform('bucket[4]'), t('double')), undefined);
    assert.deepEqual(transformResultType(parseTransform('day'), t('timestamptz')), { kind: 'int' });
  });
});

describe('inclusive projection of predicates onto partition values', () => {
  const ts = t('timestamp');
  const at = (text: string): bigint => parseValue(ts, text) as bigint;

  test('ts >= X projects to day(ts) >= day(X); ts < midnight to the day before', () => {
    const day = parseTransform('day');
    const ge = projectTest(day, ts, { kind: 'range', lo: at('2023-01-05 10:00:00'), loInclusive: true, hiInclusive: true });
    assert.deepEqual(ge, { kind: 'range', lo: 19362, loInclusive: true, hiInclusive: true });
    const lt = projectTest(day, ts, { kind: 'range', hi: at('2023-01-06 00:00:00'), hiInclusive: false, loInclusive: true });
    assert.deepEqual(lt, { kind: 'range', hi: 19362, hiInclusive: true, loInclusive: true });
    // Any row passing the source test lies in a partition passing the projection.
    for (const v of ['2023-01-05 10:00:00', '2023-01-05 23:59:59.999999', '2023-01-09 00:00:00']) {
      const d = applyTransform(day, ts, at(v));
      assert.equal(valuePasses(ge as ValueTest, d), true, v);
    }
  });

  test('bucket projects equality and IN only', () => {
    const bucket = parseTransform('bucket[16]');
    const eq = projectTest(bucket, t('int'), { kind: 'range', lo: 34, hi: 34, loInclusive: true, hiInclusive: true });
    assert.deepEqual(eq, { kind: 'in', ranges: [{ lo: 2017239379 % 16, hi: 2017239379 % 16 }] });
    assert.equal(projectTest(bucket, t('int'), { kind: 'range', lo: 34, loInclusive: true, hiInclusive: true }), undefined);
    const inList = projectTest(bucket, t('string'), { kind: 'in', ranges: [{ lo: 'a', hi: 'a' }, { lo: 'b', hi: 'b' }] });
    assert.equal(inList?.kind, 'in');
    assert.equal(projectTest(bucket, t('int'), { kind: 'ne', value: 3 }), undefined);
  });

  test('truncate projects ranges; identity passes tests through; void projects nothing', () => {
    const tr = parseTransform('truncate[3]');
    assert.deepEqual(projectTest(tr, t('string'), { kind: 'range', hi: 'abcz', hiInclusive: false, loInclusive: true }), { kind: 'range', hi: 'abc', hiInclusive: true, loInclusive: true });
    const ne: ValueTest = { kind: 'ne', value: 5 };
    assert.equal(projectTest(parseTransform('identity'), t('int'), ne), ne);
    assert.equal(projectTest(parseTransform('void'), t('int'), ne), undefined);
    assert.deepEqual(projectTest(parseTransform('day'), ts, { kind: 'is_null' }), { kind: 'is_null' });
  });
});

describe('might-match over metadata', () => {
  test('bounds, nulls and NaN decide; unknowns keep', () => {
    const gt5: ValueTest = { kind: 'range', lo: 5, loInclusive: false, hiInclusive: true };
    assert.equal(mightMatch(gt5, { lower: 1, upper: 5 }), false);
    assert.equal(mightMatch(gt5, { lower: 1, upper: 6 }), true);
    assert.equal(mightMatch(gt5, { lower: 1 }), true);
    assert.equal(mightMatch(gt5, {}), true);
    assert.equal(mightMatch(gt5, { allNull: true }), false);
    // NaN sorts above every number in DuckDB: an open-ended `>` may match a NaN row.
    assert.equal(mightMatch(gt5, { lower: 1, upper: 2, floating: true }), true);
    assert.equal(mightMatch(gt5, { lower: 1, upper: 2, floating: true, hasNaN: false }), false);
    assert.equal(mightMatch({ kind: 'is_null' }, { hasNull: false }), false);
    assert.equal(mightMatch({ kind: 'is_null' }, {}), true);
    assert.equal(mightMatch({ kind: 'not_null' }, { allNull: true }), false);
    assert.equal(mightMatch({ kind: 'ne', value: 3 }, { lower: 3, upper: 3 }), false);
    assert.equal(mightMatch({ kind: 'ne', value: 3 }, { lower: 3, upper: 4 }), true);
  });
});
