import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCharPool, buildTextPool, COLORS } from '../../../runtime/demo/tpch-text.ts';

describe('TPC-H text pools', () => {
  test('the text pool is the same on every build and made of dbgen sentences', () => {
    const pool = buildTextPool(50_000);
    assert.equal(pool, buildTextPool(50_000));
    assert.notEqual(pool, buildTextPool(50_000, 1), 'another seed, another pool');
    assert.ok(pool.length >= 50_000);
    // Every sentence ends in one of dbgen's terminators and starts a new one after a space.
    const sentences = pool.split(/(?<=[.;:?!]|--) /);
    assert.ok(sentences.length > 500);
    for (const s of sentences) assert.match(s, /^[a-zA-Z][a-zA-Z ,-]*[a-z](\.|;|:|\?|!|--)$/, s);
    // The heavy words of the distributions dominate, as in dbgen; Q13 depends on them.
    const count = (w: string) => pool.split(new RegExp(`\\b${w}\\b`)).length - 1;
    assert.ok(count('special') > 50 && count('requests') > 50, 'special and requests are common');
    assert.ok(count('furiously') > count('sometimes') * 5, 'adverb weights');
    assert.match(pool, /special[^.;:?!]*requests/);
  });

  test('the character pool has the requested length and address characters only', () => {
    const pool = buildCharPool(4096);
    assert.equal(pool.length, 4096);
    assert.match(pool, /^[0-9a-zA-Z, ]+$/);
    assert.equal(pool, buildCharPool(4096));
  });

  test('the colour list is dbgen\'s 92 distinct words', () => {
    assert.equal(COLORS.length, 92);
    assert.equal(new Set(COLORS).size, 92);
    assert.ok(COLORS.includes('forest') && COLORS.includes('green'));
  });
});
