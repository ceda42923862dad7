import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PuffinError } from '../../../runtime/errors.ts';
import { decodeError, decodeRequest, decodeResult, encodeError, isWireError } from '../../../runtime/exec/wire.ts';
import type { FragmentRequest, FragmentResult } from '../../../runtime/exec/invoker.ts';

const request: FragmentRequest = {
  queryId: '01JABCDEF',
  fragment: {
    id: 'f0',
    output: 'partials',
    inputs: [{ view: 't', table: 't', columns: [{ name: 'x', type: 'INTEGER' }], files: [{ uri: 'file:///w/t/a.parquet', sizeBytes: 10, rowCount: 2 }] }],
    sql: 'SELECT sum(x) AS s FROM t',
  },
  deadline: 1_700_000_000_000,
  inlineLimitBytes: 1024,
};

describe('wire form', () => {
  test('a request survives JSON unchanged', () => {
    assert.deepEqual(decodeRequest(JSON.parse(JSON.stringify(request))), request);
  });

  test('a malformed request names the bad field', () => {
    const broken = JSON.parse(JSON.stringify(request));
    broken.fragment.inputs[0].files[0].sizeBytes = 'ten';
    assert.throws(() => decodeRequest(broken), { code: 'bad_request', message: /request\.fragment\.inputs\[0\]\.files\[0\]\.sizeBytes must be a byte count/ });
    assert.throws(() => decodeRequest(null), { code: 'bad_request', message: /request must be an object/ });
    assert.throws(() => decodeRequest({ ...request, queryId: 'a/../b' }), { code: 'bad_request', message: /queryId/ });
    assert.throws(() => decodeRequest({ ...request, deadline: undefined }), { code: 'bad_request', message: /deadline/ });
  });

  test('a split of a file keeps its row range; a bad range is refused', () => {
    // Dropping the range would have each split read the whole file: rows counted twice.
    const split = JSON.parse(JSON.stringify(request));
    split.fragment.inputs[0].files[0].rows = { start: 4096, end: 8192 };
    assert.deepEqual(decodeRequest(split).fragment.inputs[0].files[0].rows, { start: 4096, end: 8192 });
    for (const rows of [{ start: 5, end: 5 }, { start: -1, end: 3 }, { start: 0.5, end: 3 }, { start: 0 }, 'all']) {
      const bad = JSON.parse(JSON.stringify(request));
      bad.fragment.inputs[0].files[0].rows = rows;
      assert.throws(() => decodeRequest(bad), { code: 'bad_request', message: /files\[0\]\.rows/ });
    }
  });

  test('a result survives JSON; a malformed one is the worker’s fault', () => {
    const result: FragmentResult = { fragmentId: 'f0', partial: { kind: 'stored', uri: 's3://b/k.parquet' }, rows: 1, bytes: 5, bytesScanned: 10, durationMs: 3 };
    assert.deepEqual(decodeResult(JSON.parse(JSON.stringify(result))), result);
    assert.throws(() => decodeResult({ ...result, partial: { kind: 'pigeon' } }), { code: 'internal', message: /malformed result/ });
  });

  test('a stored result file\'s integer column statistics survive JSON; a bound that is not an integer is refused', () => {
    const result: FragmentResult = {
      fragmentId: 'f0', partial: { kind: 'stored', uri: 's3://b/k.parquet' }, rows: 3, bytes: 5, bytesScanned: 10, durationMs: 3,
      columnStats: { k: { min: '-3', max: '18446744073709551615', nulls: 1 }, empty: { min: null, max: null, nulls: 3 } },
    };
    assert.deepEqual(decodeResult(JSON.parse(JSON.stringify(result))), result);
    for (const k of [{ min: '1.5', max: '2', nulls: 0 }, { min: "1' OR 1=1", max: '2', nulls: 0 }, { min: 1, max: 2, nulls: 0 }, { min: '1', max: '2', nulls: -1 }]) {
      assert.throws(() => decodeResult({ ...result, columnStats: { k } }), { code: 'internal', message: /malformed result.*columnStats/ });
    }
  });

  test('errors keep their code and details across the boundary', () => {
    const original = new PuffinError('access_denied', 'no', { fragmentId: 'f0' });
    const wire = JSON.parse(JSON.stringify(encodeError(original)));
    assert.ok(isWireError(wire));
    const back = decodeError(wire);
    assert.equal(back.code, 'access_denied');
    assert.equal(back.message, 'no');
    assert.deepEqual(back.details, { fragmentId: 'f0' });
    assert.equal(encodeError(new Error('Parser Error: x')).error.code, 'syntax_error');
  });
});
