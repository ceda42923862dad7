import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toCsv, toJsonRows, toTextTable } from '../../../runtime/api/formats.ts';
import type { QueryResult } from '../../../runtime/engine/engine.ts';

const result: QueryResult = {
  columns: [{ name: 'n', type: 'BIGINT' }, { name: 'd', type: 'DECIMAL(38,2)' }, { name: 's', type: 'VARCHAR' }, { name: 'f', type: 'DOUBLE' }],
  rows: [['12345678901234567890', '123456789012345678.90', 'a"b,c', 1.5], [null, null, null, 'NaN']],
};

test('JSON keeps big integers and decimals exact, as numbers', () => {
  const text = toJsonRows(result);
  assert.ok(text.includes('"n": 12345678901234567890'));
  assert.ok(text.includes('"d": 123456789012345678.90'));
  const parsed = JSON.parse(text) as Record<string, unknown>[];
  assert.equal(parsed.length, 2);
  assert.equal(parsed[0].s, 'a"b,c');
  assert.equal(parsed[1].f, 'NaN');
  assert.equal(parsed[1].n, null);
});

test('CSV quotes fields with commas and quotes, NULL as empty', () => {
  assert.equal(toCsv(result), 'n,d,s,f\r\n12345678901234567890,123456789012345678.90,"a""b,c",1.5\r\n,,,NaN\r\n');
});

test('text table aligns columns and counts rows', () => {
  const text = toTextTable(result);
  assert.match(text, /\(2 rows\)$/);
  assert.match(text, /NULL/);
});
