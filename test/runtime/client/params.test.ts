// Positional parameters of the Node library and POST /v1/query: found by the classifier's
// lexer (never inside strings, identifiers or comments), bound as literals that cannot end
// their token, counted against the values given.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bindParams } from '../../../runtime/client/params.ts';
import { PuffinError } from '../../../runtime/errors.ts';

const refused = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && message.test(e.message));

describe('bindParams', () => {
  test('$n and ? become literals; placeholders in strings, identifiers and comments stay', () => {
    assert.equal(bindParams('SELECT $1, $2, $1', ['a', 2]), "SELECT  ('a') ,  (2) ,  ('a') ");
    assert.equal(bindParams('SELECT ? + ?', [1n, -2.5]), 'SELECT  (1)  +  (-2.5::DOUBLE) ');
    assert.equal(bindParams(`SELECT '$1 ?', "$1?" /* $1 ? */ , ? -- ?\n`, [true]), `SELECT '$1 ?', "$1?" /* $1 ? */ ,  TRUE  -- ?\n`);
    assert.equal(bindParams('SELECT $1, $2, $3, $4', [null, new Date(0), Uint8Array.from([1, 255]), false]), "SELECT  NULL ,  (CAST('1970-01-01T00:00:00.000Z' AS TIMESTAMPTZ)) ,  (from_hex('01ff')) ,  FALSE ");
    assert.equal(bindParams('SELECT 1', undefined), 'SELECT 1');
  });

  test('a value cannot end its literal or join a neighbouring token', () => {
    assert.equal(bindParams('SELECT ?', ["x'); DROP TABLE t; --"]), "SELECT  ('x''); DROP TABLE t; --') ");
    // `-$1` with a negative value would read as a comment if pasted bare.
    assert.equal(bindParams('SELECT 1-$1', [-1]), 'SELECT 1- (-1) ');
    assert.equal(bindParams('SELECT $1$2', ['a', 'b']), "SELECT  ('a')  ('b') ");
  });

  test('counts and kinds are checked', () => {
    refused(() => bindParams('SELECT $1, $2', [1]), /takes 2 parameter/);
    refused(() => bindParams('SELECT ?', [1, 2]), /takes 1 parameter/);
    refused(() => bindParams('SELECT 1', [1]), /no \$1 or \? placeholder/);
    refused(() => bindParams('SELECT $1, ?', [1, 2]), /mixes/);
    refused(() => bindParams('SELECT $0', []), /start at \$1/);
    refused(() => bindParams('SELECT ?', [Number.NaN]), /NaN/);
    refused(() => bindParams('SELECT ?', [2 ** 60]), /beyond 2\^53/);
    refused(() => bindParams('SELECT ?', [{ a: 1 }]), /is a object/);
    refused(() => bindParams('SELECT ?', [[1]]), /an array/);
    refused(() => bindParams('SELECT ?', ['a\u0000b']), /NUL/);
    refused(() => bindParams('SELECT ?', 'x' as unknown as unknown[]), /must be an array/);
  });
});
