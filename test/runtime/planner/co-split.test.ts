import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coSplitGroups, keyComponents, keyRanges, noNulls } from '../../../runtime/planner/co-split.ts';
import type { DataFile } from '../../../runtime/catalog/types.ts';

const file = (uri: string, min: string | null | undefined, max: string | null | undefined, sizeBytes = 100, nulls: number | null = 0): DataFile => ({
  uri, sizeBytes, rowCount: 10, stats: min === undefined && max === undefined ? {} : { K: { min, max, nulls } },
});
const ref = (f: DataFile) => ({ uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount });
const key = { name: 'k', type: 'BIGINT' };

test('keyRanges reads integer bounds (column names case-insensitive), and refuses what it cannot order', () => {
  const files = [file('a0', '1', '9'), file('a1', '-5', '0')];
  assert.deepEqual(keyRanges(files.map(ref), files, key), [{ file: ref(files[0]), min: 1n, max: 9n }, { file: ref(files[1]), min: -5n, max: 0n }]);
  // Beyond 2^53: compared exactly.
  const big = [file('b', '9007199254740993', '9007199254740995')];
  assert.equal((keyRanges(big.map(ref), big, key) as { min: bigint }[])[0].min, 9007199254740993n);
  assert.match(keyRanges(files.map(ref), files, { name: 'k', type: 'VARCHAR' }) as string, /not an integer/);
  for (const bad of [file('x', null, '3'), file('x', undefined, undefined), file('x', '4', '2'), file('x', '1.5', '3')]) {
    assert.equal(typeof keyRanges([ref(bad)], [bad], key), 'string', JSON.stringify(bad.stats));
  }
  // A file the table does not list has no bounds.
  assert.equal(typeof keyRanges([ref(file('gone', '1', '2'))], files, key), 'string');
});

test('keyComponents joins overlapping and touching-inside ranges of both tables, and only those', () => {
  const r = (uri: string, min: bigint, max: bigint) => ({ file: { uri, sizeBytes: 1, rowCount: 1 }, min, max });
  const a = [r('a0', 0n, 99n), r('a1', 100n, 199n), r('a2', 200n, 299n)];
  // b1 spans a1 and a2's boundary: a1 and a2 are one component; b0 meets a0 at 99 exactly.
  const b = [r('b0', 50n, 99n), r('b1', 150n, 250n), r('b2', 400n, 500n)];
  const parts = keyComponents(a, b).map((c) => [c.a.map((f) => f.uri), c.b.map((f) => f.uri)]);
  assert.deepEqual(parts, [[['a0'], ['b0']], [['a1', 'a2'], ['b1']], [[], ['b2']]]);
  // One table alone: disjoint files are components of their own, overlapping ones one.
  assert.equal(keyComponents(a, []).length, 3);
  assert.equal(keyComponents([...a, r('a3', 0n, 299n)], []).length, 1);
  assert.deepEqual(keyComponents([], []), []);
});

test('coSplitGroups balances components by both sides\' bytes, never splits one, keeps key order inside a group', () => {
  const f = (uri: string, sizeBytes: number) => ({ uri, sizeBytes, rowCount: 1 });
  const components = [
    { a: [f('a0', 50)], b: [f('b0', 50)] },
    { a: [f('a1', 10)], b: [] },
    { a: [f('a2', 60)], b: [f('b2', 30)] },
    { a: [f('a3', 5)], b: [f('b3', 5)] },
  ];
  const groups = coSplitGroups(components, 2);
  assert.equal(groups.length, 2);
  const bytes = groups.map((g) => [...g.a, ...g.b].reduce((n, x) => n + x.sizeBytes, 0));
  assert.deepEqual(bytes.sort((x, y) => x - y), [100, 110]);
  // Every file exactly once, each component's files together.
  const all = groups.flatMap((g) => [...g.a, ...g.b].map((x) => x.uri)).sort();
  assert.deepEqual(all, ['a0', 'a1', 'a2', 'a3', 'b0', 'b2', 'b3']);
  for (const g of groups) {
    const uris = g.a.map((x) => x.uri);
    assert.deepEqual(uris, [...uris].sort(), 'key order');
    for (const c of components) if (c.a.some((x) => uris.includes(x.uri))) for (const x of c.b) assert.ok(g.b.includes(x));
  }
  // More fragments than components: one group each; none asked: one group.
  assert.equal(coSplitGroups(components, 16).length, 4);
  assert.equal(coSplitGroups(components, 0).length, 1);
});

test('noNulls holds only when every file is known to hold no NULL', () => {
  assert.equal(noNulls([file('a', '1', '2'), file('b', '3', '4')], 'k'), true);
  assert.equal(noNulls([file('a', '1', '2'), file('b', '3', '4', 100, 2)], 'k'), false);
  assert.equal(noNulls([file('a', '1', '2', 100, null)], 'k'), false);
  assert.equal(noNulls([file('a', undefined, undefined)], 'k'), false);
});
