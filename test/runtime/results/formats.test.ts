import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeResult, negotiateFormat, toCsv, toJsonRows, toTextTable } from '../../../runtime/results/formats.ts';
import { PuffinError } from '../../../runtime/errors.ts';
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

test('Accept picks the format: best quality first, wildcards mean JSON, unknown types are refused', () => {
  assert.equal(negotiateFormat(undefined), 'json');
  assert.equal(negotiateFormat(''), 'json');
  assert.equal(negotiateFormat('text/csv'), 'csv');
  assert.equal(negotiateFormat('application/vnd.apache.arrow.stream'), 'arrow');
  assert.equal(negotiateFormat('text/html,application/xhtml+xml,*/*;q=0.8'), 'json');
  assert.equal(negotiateFormat('application/json;q=0.5, text/csv'), 'csv');
  assert.equal(negotiateFormat('text/csv;q=0, application/json'), 'json');
  assert.throws(() => negotiateFormat('application/xml'), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /application\/xml/.test(e.message));
});

test('encoded JSON carries the envelope and exact rows', () => {
  const { body, contentType } = encodeResult(result, 'json', { queryId: 'q1' });
  assert.match(contentType, /application\/json/);
  const parsed = JSON.parse(String(body)) as { queryId: string; rows: unknown[]; columns: unknown[] };
  assert.equal(parsed.queryId, 'q1');
  assert.equal(parsed.rows.length, 2);
  assert.ok(String(body).includes('"d": 123456789012345678.90'));
  assert.equal(JSON.parse(String(encodeResult(result, 'json').body)).columns.length, 4);
});
