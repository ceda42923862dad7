// Each pruning operator over synthetic per-file statistics: the files kept are exactly
// those whose [min, max] range (and NULL counts) can hold a matching row.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Column, ColumnStats, DataFile } from '../../../runtime/catalog/types.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { conjuncts } from '../../../runtime/planner/ast.ts';
import { assignFiles } from '../../../runtime/planner/assign.ts';
import { pruneFiles } from '../../../runtime/planner/prune.ts';
import { parseStatement, printNodes } from '../../../runtime/sql/parse.ts';

const columns: Column[] = [
  { name: 'n', type: 'INTEGER' },
  { name: 'd', type: 'DATE' },
  { name: 's', type: 'VARCHAR' },
  { name: 'x', type: 'DOUBLE' },
  { name: 'm', type: 'DECIMAL(15,2)' },
];

// file i: n in [i*10, i*10+9]; d in 2020-0(i+1)-01..28; s in [chr(a+i)..]; file 3 is all-NULL n; file 4 unknown stats.
const files: DataFile[] = [0, 1, 2, 3, 4].map((i): DataFile => ({
  uri: `file:///f${i}.parquet`,
  sizeBytes: 100,
  rowCount: 10,
  stats: i === 4 ? {} as Record<string, ColumnStats> : {
    n: i === 3 ? { min: null, max: null, nulls: 10 } : { min: String(i * 10), max: String(i * 10 + 9), nulls: i === 1 ? 2 : 0 },
    d: { min: `2020-0${i + 1}-01`, max: `2020-0${i + 1}-28`, nulls: 0 },
    s: { min: `${String.fromCharCode(97 + i)}a`, max: `${String.fromCharCode(97 + i)}z`, nulls: 0 },
    x: { min: '0', max: '1', nulls: 0 },
    m: { min: `${i}.50`, max: `${i}.99`, nulls: 0 },
  },
}));

let engine: Engine;
let conn: DuckDBConnection;
before(async () => { engine = await Engine.create({ threads: 1 }); conn = await engine.connect(); });
after(() => { conn.closeSync(); engine.close(); });

async function kept(where: string): Promise<number[]> {
  const parsed = await parseStatement(conn, `SELECT 1 FROM t WHERE ${where}`);
  const filters = conjuncts(parsed.node.where_clause);
  const result = await pruneFiles(conn, files, columns, filters, async (p) => {
    const [sql] = await printNodes(conn, [{ ...parsed.node, where_clause: p }]);
    return sql.slice(sql.indexOf(' WHERE ') + 7);
  });
  return result.kept;
}

describe('pruning operators', () => {
  test('=', async () => assert.deepEqual(await kept('n = 15'), [1, 4]));
  test('= with the constant on the left', async () => assert.deepEqual(await kept('15 = n'), [1, 4]));
  test('<', async () => assert.deepEqual(await kept('n < 10'), [0, 4]));
  test('<=', async () => assert.deepEqual(await kept('n <= 10'), [0, 1, 4]));
  test('>', async () => assert.deepEqual(await kept('n > 29'), [4]));
  test('>=', async () => assert.deepEqual(await kept('n >= 29'), [2, 4]));
  test('BETWEEN', async () => assert.deepEqual(await kept('n BETWEEN 9 AND 10'), [0, 1, 4]));
  test('IN', async () => assert.deepEqual(await kept('n IN (5, 25)'), [0, 2, 4]));
  test('IS NULL keeps files with NULLs or unknown counts', async () => assert.deepEqual(await kept('n IS NULL'), [1, 3, 4]));
  test('IS NOT NULL drops all-NULL files', async () => assert.deepEqual(await kept('n IS NOT NULL'), [0, 1, 2, 4]));
  test('conjunction', async () => assert.deepEqual(await kept('n >= 10 AND d < DATE \'2020-03-01\''), [1, 4]));
  test('disjunction', async () => assert.deepEqual(await kept('n < 5 OR n > 25'), [0, 2, 4]));
  test('dates compare as dates, with casts of constants', async () => assert.deepEqual(await kept("d >= '2020-04-15'"), [3, 4]));
  test('dates with interval arithmetic on the constant', async () => assert.deepEqual(await kept("d < DATE '2020-01-01' + INTERVAL 40 DAY"), [0, 1, 4]));
  test('strings compare as strings', async () => assert.deepEqual(await kept("s = 'cm'"), [2, 4]));
  test('decimals compare as decimals', async () => assert.deepEqual(await kept('m > 2.98'), [2, 3, 4]));
  test('a comparison on an all-NULL file prunes it', async () => assert.equal((await kept('n < 100')).includes(3), false));
  test('float columns are never pruned (NaN is outside min/max)', async () => assert.deepEqual(await kept('x > 5'), [0, 1, 2, 3, 4]));
  test('unsupported predicates keep every file', async () => assert.deepEqual(await kept('n + 1 = 3 AND s LIKE \'x%\''), [0, 1, 2, 3, 4]));
  test('an OR with an unsupported side keeps every file', async () => assert.deepEqual(await kept('n = 1 OR s LIKE \'x%\''), [0, 1, 2, 3, 4]));
});

describe('assignFiles', () => {
  test('balances bytes across fragments', () => {
    const sizes = [90, 80, 70, 60, 50, 40, 30, 20, 10, 10];
    const refs = sizes.map((s, i) => ({ uri: `f${i}`, sizeBytes: s, rowCount: 1 }));
    const groups = assignFiles(refs, 3);
    assert.equal(groups.length, 3);
    const loads = groups.map((g) => g.reduce((s, f) => s + f.sizeBytes, 0));
    assert.equal(loads.reduce((a, b) => a + b), 460);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 20, `loads ${loads}`);
    assert.deepEqual(groups.flat().map((f) => f.uri).sort(), refs.map((f) => f.uri).sort());
  });
  test('never more fragments than files, at least one', () => {
    assert.equal(assignFiles([{ uri: 'a', sizeBytes: 1, rowCount: 1 }], 7).length, 1);
    assert.deepEqual(assignFiles([], 7), [[]]);
  });
  test('splits a file larger than one fragment\'s share along its row groups', () => {
    // One file of 6 row groups (10 rows each, 100..600 bytes) and two small files.
    const rowGroups = [100, 100, 100, 100, 100, 100].map((bytes) => ({ rows: 10, bytes }));
    const big = { uri: 'big', sizeBytes: 620, rowCount: 60, rowGroups };
    const refs = [big, { uri: 's1', sizeBytes: 50, rowCount: 5 }, { uri: 's2', sizeBytes: 50, rowCount: 5 }];
    const groups = assignFiles(refs, 4);
    assert.equal(groups.length, 4);
    const splits = groups.flat().filter((f) => f.uri === 'big');
    // Share 180 bytes: the 620-byte file becomes ceil(620/180) = 4 ranges of whole groups.
    assert.equal(splits.length, 4);
    const ranges = splits.map((f) => f.rows!).sort((a, b) => a.start - b.start);
    assert.equal(ranges[0].start, 0);
    assert.equal(ranges[ranges.length - 1].end, 60);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i].start, ranges[i - 1].end, 'ranges are contiguous');
    for (const r of ranges) assert.equal(r.start % 10, 0, 'ranges cut at row-group boundaries');
    assert.equal(splits.reduce((n, f) => n + f.rowCount, 0), 60);
    assert.equal(splits.reduce((n, f) => n + f.sizeBytes, 0), 620, 'split sizes add up to the file size');
    assert.ok(groups.flat().every((f) => !('rowGroups' in f)), 'no split carries the layout to a worker');
    // Small files are never split; one fragment never splits; a file of one group never splits.
    assert.ok(groups.flat().filter((f) => f.uri !== 'big').every((f) => !f.rows));
    assert.deepEqual(assignFiles([big], 1).flat().map((f) => f.rows), [undefined]);
    assert.equal(assignFiles([{ ...big, rowGroups: [{ rows: 60, bytes: 600 }] }], 4).flat().length, 1);
  });
  test('a table of one file spreads over as many fragments as it has row groups, no more', () => {
    const rowGroups = [300, 300, 300].map((bytes) => ({ rows: 4096, bytes }));
    const groups = assignFiles([{ uri: 'supplier', sizeBytes: 910, rowCount: 12288, rowGroups }], 8);
    assert.equal(groups.length, 3);
    assert.deepEqual(groups.map((g) => g.map((f) => f.rows)), [[{ start: 0, end: 4096 }], [{ start: 4096, end: 8192 }], [{ start: 8192, end: 12288 }]]);
  });
});
